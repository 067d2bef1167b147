/**
 * Citizen text as every later stage accepts it. Whatever a channel decoded (a UCS-2 SMS, a mail body,
 * a JSON string) goes through `sanitizeText` before anything acknowledges it, so no stage after the
 * acknowledgement can refuse it: PostgreSQL refuses 0x00 in `text` and `\u0000` or a lone surrogate
 * escape in `jsonb`; an SMPP C-octet string ends at 0x00; a browser or a terminal shows raw C1
 * controls as garbage or obeys them.
 *
 * What it does, and nothing else (the citizen's own characters, spaces and letters stay as written):
 * - C0 and C1 controls and DEL are removed, except tab, line feed and carriage return, which are
 *   text; the other line breaks among them (VT, FF, NEL) become a line feed, so the lines they
 *   separated do not run together.
 * - A lone UTF-16 surrogate (half of a character that was cut, or garbage) becomes U+FFFD, which
 *   shows that something was there.
 * - Non-characters (U+FDD0–U+FDEF and the last two code points of every plane) are removed: Unicode
 *   reserves them for a program's internal use, never for interchange; U+FFFE is a byte-swapped BOM.
 * It is idempotent: sanitizing sanitized text changes nothing.
 */

/** Line breaks that are controls: kept as breaks, written as a line feed. */
const LINE_BREAK_CONTROLS = new Set(['\u000b', '\u000c', '\u0085']);

/** U+nFFFE and U+nFFFF for the planes 1 to 16 (the BMP's are in the class below). */
const ASTRAL_NONCHARACTERS = Array.from({ length: 16 }, (_, i) => {
  const base = (i + 1) * 0x10000;
  return `\\u{${(base + 0xfffe).toString(16)}}\\u{${(base + 0xffff).toString(16)}}`;
}).join('');

/**
 * One pass over the text. With the `u` flag a well-formed surrogate pair is one code point, so the
 * surrogate range matches only lone surrogates.
 */
const REFUSED = new RegExp(
  `[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f\\ud800-\\udfff\\ufdd0-\\ufdef\\ufffe\\uffff${ASTRAL_NONCHARACTERS}]`,
  'gu',
);

export function sanitizeText(text: string): string {
  return text.replace(REFUSED, (ch) => {
    if (LINE_BREAK_CONTROLS.has(ch)) return '\n';
    return ch.length === 1 && ch >= '\ud800' && ch <= '\udfff' ? '\ufffd' : '';
  });
}

/**
 * Characters that show nothing: white space, controls, format characters (zero-width space,
 * joiners, word joiner, BOM, bidi marks, soft hyphen…), every default-ignorable code point (variation
 * selectors, Hangul fillers, tags…), and the blank Braille pattern, which is drawn as a space.
 */
const VISIBLE = /[^\p{White_Space}\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}\u2800]/u;

/** True when nothing would be left to read once the invisible characters are removed. */
export function isBlank(text: string): boolean {
  return !VISIBLE.test(text);
}

/** Length in characters (Unicode code points), as limits are stated: not UTF-16 units, not bytes. */
export function charLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** The first `max` characters, never cutting a surrogate pair in two. */
export function truncateChars(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = 0;
  let n = 0;
  for (const ch of text) {
    if (n === max) break;
    end += ch.length;
    n++;
  }
  return text.slice(0, end);
}
