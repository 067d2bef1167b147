import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { charLength, isBlank, sanitizeText, truncateChars } from '../../src/core/text.ts';

/**
 * The one sanitizer every channel's text goes through before it is acknowledged. Each class of code
 * point is either kept as written, removed, or replaced; the property tests check that what comes
 * out never holds a refused code point, whatever goes in, and that a second pass changes nothing.
 */

const cp = (n: number) => String.fromCodePoint(n);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Code points no later stage accepts: C0 but tab/LF/CR, DEL, C1, non-characters. */
const C0_REFUSED = range(0x00, 0x1f).filter((n) => ![0x09, 0x0a, 0x0d].includes(n));
const C1 = range(0x80, 0x9f);
const NONCHARACTERS = [...range(0xfdd0, 0xfdef), ...range(0, 16).flatMap((plane) => [plane * 0x10000 + 0xfffe, plane * 0x10000 + 0xffff])];

/** Would PostgreSQL or a later stage refuse this string? (Written independently of the implementation.) */
function refused(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        const point = text.codePointAt(i)!;
        if ((point & 0xfffe) === 0xfffe) return `non-character U+${point.toString(16)}`;
        i++;
        continue;
      }
      return `lone high surrogate at ${i}`;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return `lone low surrogate at ${i}`;
    if ((unit < 0x20 && ![0x09, 0x0a, 0x0d].includes(unit)) || (unit >= 0x7f && unit <= 0x9f)) return `control U+${unit.toString(16)}`;
    if ((unit >= 0xfdd0 && unit <= 0xfdef) || unit === 0xfffe || unit === 0xffff) return `non-character U+${unit.toString(16)}`;
  }
  return undefined;
}

describe('sanitizeText, class by class', () => {
  it.each(C0_REFUSED.filter((n) => n !== 0x0b && n !== 0x0c))('removes C0 control U+%s', (n) => {
    expect(sanitizeText(`jalan${cp(n)} rusak`)).toBe('jalan rusak');
  });

  it('removes NUL wherever it is: start, middle, end, runs', () => {
    expect(sanitizeText('\0\0Banjir\0 di\0\0 Jl. Kenanga\0')).toBe('Banjir di Jl. Kenanga');
    expect(sanitizeText('\0'.repeat(50))).toBe('');
  });

  it('keeps tab, line feed and carriage return as written', () => {
    expect(sanitizeText('a\tb\nc\r\nd\re')).toBe('a\tb\nc\r\nd\re');
  });

  it('turns the other line-break controls (VT, FF, NEL) into a line feed, so lines do not run together', () => {
    expect(sanitizeText('baris satu\u000bbaris dua\u000cbaris tiga\u0085baris empat')).toBe('baris satu\nbaris dua\nbaris tiga\nbaris empat');
  });

  it('removes DEL and every C1 control but NEL', () => {
    expect(sanitizeText('a\u007fb')).toBe('ab');
    for (const n of C1.filter((x) => x !== 0x85)) expect(sanitizeText(`a${cp(n)}b`), `U+${n.toString(16)}`).toBe('ab');
  });

  it('replaces a lone high or low surrogate with U+FFFD, anywhere', () => {
    expect(sanitizeText('a\ud83db')).toBe('a\ufffdb');
    expect(sanitizeText('a\ude21b')).toBe('a\ufffdb');
    expect(sanitizeText('\ud83d')).toBe('\ufffd');
    expect(sanitizeText('x\ude21')).toBe('x\ufffd');
    // Reversed halves are two lone surrogates, not a character.
    expect(sanitizeText('\ude21\ud83d')).toBe('\ufffd\ufffd');
    // Halves parted by a control stay parted: two replacements, the control gone.
    expect(sanitizeText('\ud83d\u0000\ude21')).toBe('\ufffd\ufffd');
  });

  it('removes every non-character: U+FDD0–U+FDEF and U+xFFFE/U+xFFFF of all 17 planes', () => {
    expect(NONCHARACTERS).toHaveLength(32 + 34);
    for (const n of NONCHARACTERS) expect(sanitizeText(`a${cp(n)}b`), `U+${n.toString(16)}`).toBe('ab');
  });

  it('keeps the neighbours of the refused ranges', () => {
    const kept = [0x20, 0x7e, 0xa0, 0xfdcf, 0xfdf0, 0xfffd, 0xfffc, 0x1fffd, 0x10000, 0x10fffd, 0xe000, 0xf8ff, 0x100000];
    for (const n of kept) expect(sanitizeText(cp(n)), `U+${n.toString(16)}`).toBe(cp(n));
  });

  it('keeps zero-width characters, BOM, joiners and bidi marks (they may mean something: an emoji ZWJ sequence)', () => {
    const text = '\ufeffKeluarga 👨\u200d👩\u200d👧 di\u200b RT\u2060 04 \u200e\u200f\u200c';
    expect(sanitizeText(text)).toBe(text);
  });

  it('keeps Indonesian text, accents, emoji and other scripts untouched', () => {
    for (const text of [
      'Jalan berlubang di depan SDN 3 Sukamaju sejak dua bulan, mohon segera diperbaiki!',
      'Café, naïve, Çanakkale — “kutipan” ‘tunggal’ … € 5',
      'Lampu jalan mati 🚧🌑 sudah 2 minggu 😡👍🏽🇮🇩',
      'ꦲꦏ꧀ꦱꦫꦗꦮ (aksara Jawa), ᮃᮊ᮪ᮞᮛ ᮞᮥᮔ᮪ᮓ (Sunda), عربي, 中文, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
      'e\u0301 (e + combining acute), 한국어',
    ]) {
      expect(sanitizeText(text)).toBe(text);
    }
  });
});

describe('isBlank', () => {
  it.each([
    ['empty', ''],
    ['spaces, tabs, line breaks', ' \t\r\n '],
    ['no-break and ideographic spaces', '\u00a0\u2007\u202f\u3000'],
    ['zero-width space', '\u200b'],
    ['zero-width non-joiner and joiner', '\u200c\u200d'],
    ['word joiner', '\u2060'],
    ['BOM / zero-width no-break space', '\ufeff'],
    ['all five zero widths of the issue', '\u200b\u200c\u200d\u2060\ufeff'.repeat(20)],
    ['bidi marks and isolates', '\u200e\u200f\u2066\u2069\u202a\u202c'],
    ['soft hyphen', '\u00ad'],
    ['variation selectors', '\ufe0f\ufe0e'],
    ['Hangul fillers', '\u3164\u115f\u1160\uffa0'],
    ['combining grapheme joiner', '\u034f'],
    ['tag characters', '\u{e0041}\u{e007f}'],
    ['blank Braille pattern', '\u2800\u2800'],
    ['controls', '\u0000\u0007\u007f\u0085'],
    ['line and paragraph separators', '\u2028\u2029'],
  ])('%s → blank', (_name, text) => {
    expect(isBlank(text)).toBe(true);
  });

  it.each([
    ['a letter', 'a'],
    ['a digit', '7'],
    ['punctuation', '?'],
    ['an emoji', '🚧'],
    ['an emoji with variation selector', '\u2764\ufe0f'],
    ['a letter hidden among zero widths', '\u200b\u200bx\u200b'],
    ['U+FFFD', '\ufffd'],
  ])('%s → not blank', (_name, text) => {
    expect(isBlank(text)).toBe(false);
  });
});

describe('lengths in characters', () => {
  it('counts code points, not UTF-16 units or bytes', () => {
    expect(charLength('abc')).toBe(3);
    expect(charLength('🚧🚧')).toBe(2);
    expect('🚧🚧'.length).toBe(4);
    expect(charLength('ꦲꦏ꧀')).toBe(3);
    expect(charLength('')).toBe(0);
  });

  it('cuts to a number of characters without splitting a surrogate pair', () => {
    expect(truncateChars('🚧🚧🚧', 2)).toBe('🚧🚧');
    expect(truncateChars('ab🚧', 3)).toBe('ab🚧');
    expect(truncateChars('ab🚧c', 3)).toBe('ab🚧');
    expect(truncateChars('abc', 10)).toBe('abc');
  });
});

/** Strings weighted toward the classes that matter, lone surrogates included. */
const risky = fc.oneof(
  fc.constantFrom(...C0_REFUSED, ...C1, 0x7f, 0x09, 0x0a, 0x0d, ...NONCHARACTERS, 0x200b, 0xfeff, 0x200d, 0xfffd).map(cp),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((u) => String.fromCharCode(u)),
  fc.integer({ min: 0, max: 0x10ffff }).map((n) => (n >= 0xd800 && n <= 0xdfff ? String.fromCharCode(n) : cp(n))),
  fc.constantFrom('a', ' ', 'é', '🚧', '👨\u200d👩', 'jalan rusak'),
);
const anyText = fc.array(risky, { maxLength: 80 }).map((parts) => parts.join(''));

describe('sanitizeText, properties', () => {
  it('never leaves a code point a later stage refuses', () => {
    fc.assert(fc.property(anyText, (text) => refused(sanitizeText(text)) === undefined), { numRuns: 2_000 });
  });

  it('is idempotent', () => {
    fc.assert(fc.property(anyText, (text) => sanitizeText(sanitizeText(text)) === sanitizeText(text)), { numRuns: 2_000 });
  });

  it('changes nothing in text that was acceptable already', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        fc.pre(refused(text) === undefined);
        return sanitizeText(text) === text;
      }),
      { numRuns: 2_000 },
    );
  });

  it('leaves valid UTF-8 that PostgreSQL takes: round-trips through Buffer unchanged', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const clean = sanitizeText(text);
        return Buffer.from(clean, 'utf8').toString('utf8') === clean && !Buffer.from(clean, 'utf8').includes(0);
      }),
      { numRuns: 1_000 },
    );
  });
});
