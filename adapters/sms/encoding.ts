/**
 * SMS text encodings, pure: decoding the user data of inbound PDUs and encoding replies into segments.
 * References: 3GPP TS 23.038 (GSM 7-bit default alphabet, extension table, data coding scheme groups),
 * 3GPP TS 23.040 §9.2.3.24.1 (concatenation UDH), SMPP 3.4 §5.2.19 (data_coding). SMPP carries GSM
 * text unpacked, one septet per octet, so nothing here packs septets.
 */

/** The SMPP data_coding octet. */
export type DataCoding = number;

// 3GPP TS 23.038 §6.2.1, in code order. 0x1B is the escape to the extension table, never a character.
const GSM_DEFAULT =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const ESC = 0x1b;
// 3GPP TS 23.038 §6.2.1.1: reached with ESC + code, so each costs two septets.
const GSM_EXTENSION = new Map<number, string>([
  [0x0a, '\f'], [0x14, '^'], [0x28, '{'], [0x29, '}'], [0x2f, '\\'],
  [0x3c, '['], [0x3d, '~'], [0x3e, ']'], [0x40, '|'], [0x65, '€'],
]);
/** Character → the septets that encode it (one, or ESC + code). */
const GSM_ENCODE = new Map<string, number[]>([
  ...[...GSM_DEFAULT].flatMap((ch, code): [string, number[]][] => (code === ESC ? [] : [[ch, [code]]])),
  ...[...GSM_EXTENSION].map(([code, ch]): [string, number[]] => [ch, [ESC, code]]),
]);

type Alphabet = 'gsm' | 'ascii' | 'latin1' | 'ucs2' | 'binary' | 'compressed' | 'unknown';

function alphabetOf(dc: number): Alphabet {
  if (!Number.isInteger(dc) || dc < 0 || dc > 0xff) return 'unknown';
  // 0x00–0x0F follow SMPP 3.4's own table, not the GSM DCS groups.
  const smpp: Partial<Record<number, Alphabet>> = { 0: 'gsm', 1: 'ascii', 2: 'binary', 3: 'latin1', 4: 'binary', 8: 'ucs2' };
  if (dc < 0x10) return smpp[dc] ?? 'unknown'; // JIS, Cyrillic, Hebrew, Kanji…: not expected on 1708
  const group = dc >> 4;
  if (group <= 0x7) {
    // 00xx general data coding and 01xx automatic deletion: bit 5 compressed, bits 3..2 the alphabet.
    if (dc & 0x20) return 'compressed';
    return (['gsm', 'binary', 'ucs2', 'unknown'] as const)[(dc >> 2) & 3] ?? 'unknown';
  }
  if (group === 0xc || group === 0xd) return 'gsm'; // message waiting indication, default alphabet
  if (group === 0xe) return 'ucs2'; // message waiting indication, UCS2
  if (group === 0xf) return dc & 0x04 ? 'binary' : 'gsm'; // message class group: bit 2 = 8-bit data
  return 'unknown'; // 1000..1011 reserved
}

/** Collects malformations once per kind, so a PDU full of bad bytes yields one log line, not 140. */
class Problems {
  private readonly seen = new Map<string, { at: number; count: number }>();
  add(what: string, at: number): void {
    const entry = this.seen.get(what);
    if (entry) entry.count += 1;
    else this.seen.set(what, { at, count: 1 });
  }
  list(): string[] {
    return [...this.seen].map(([what, { at, count }]) => `${what} (byte ${at}${count > 1 ? `, ${count} times` : ''})`);
  }
}

const hex = (n: number): string => (Number.isInteger(n) && n >= 0 ? `0x${n.toString(16).padStart(2, '0')}` : String(n));

function decodeGsm(bytes: Uint8Array, problems: Problems): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const septet = septetAt(bytes, i, problems);
    if (septet !== ESC) {
      out += GSM_DEFAULT[septet];
      continue;
    }
    if (i + 1 >= bytes.length) {
      // 23.038 §6.2.1 note 1: an escape that cannot be understood is displayed as a space.
      problems.add('GSM escape 0x1B at the end, shown as a space', i);
      out += ' ';
      break;
    }
    const code = septetAt(bytes, ++i, problems);
    const extended = GSM_EXTENSION.get(code);
    if (extended !== undefined) out += extended;
    else if (code === ESC) {
      // 0x1B 0x1B is reserved for a further table; the spec says to display a space meanwhile.
      problems.add('GSM escape 0x1B 0x1B (reserved), shown as a space', i - 1);
      out += ' ';
    } else {
      // 23.038 §6.2.1.1: an unknown extension code shows the default table's character.
      problems.add(`unknown GSM escape 0x1B ${hex(code)}, shown from the default table`, i - 1);
      out += GSM_DEFAULT[code];
    }
  }
  return out;
}

function septetAt(bytes: Uint8Array, i: number, problems: Problems): number {
  const byte = bytes[i] ?? 0;
  if (byte > 0x7f) problems.add('GSM byte above 0x7F masked to 7 bits', i);
  return byte & 0x7f;
}

function decodeUcs2(bytes: Uint8Array, problems: Problems): string {
  const even = bytes.length & ~1;
  if (even !== bytes.length) problems.add('odd-length UCS-2, last byte dropped', even);
  const unitAt = (i: number): number => (i + 1 < even ? ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0) : 0);
  let out = '';
  for (let i = 0; i < even; i += 2) {
    const [unit, next] = [unitAt(i), unitAt(i + 2)];
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += String.fromCharCode(unit, next);
      i += 2;
    } else if (unit >= 0xd800 && unit <= 0xdfff) {
      problems.add('lone UTF-16 surrogate replaced with U+FFFD', i);
      out += '\uFFFD';
    } else out += String.fromCharCode(unit);
  }
  return out;
}

function decodeAscii(bytes: Uint8Array, problems: Problems): string {
  return Array.from(bytes, (byte, i) => {
    if (byte <= 0x7f) return String.fromCharCode(byte);
    problems.add('IA5 byte above 0x7F replaced with U+FFFD', i);
    return '\uFFFD';
  }).join('');
}

// Latin-1 proper: every octet is the code point of the same value (TextDecoder would apply windows-1252).
const decodeLatin1 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');

/**
 * Decodes the user data of one SMPP short_message / message_payload (UDH already removed). SMPP carries
 * GSM 03.38 unpacked: one septet per octet. Never throws: what is malformed is repaired as the specs say
 * and named in `problems`, for the caller to log.
 */
export function decodeUserData(bytes: Uint8Array, dataCoding: DataCoding): { text: string; problems: string[] } {
  const problems = new Problems();
  const alphabet = alphabetOf(dataCoding);
  let text = '';
  if (alphabet === 'gsm') text = decodeGsm(bytes, problems);
  else if (alphabet === 'ascii') text = decodeAscii(bytes, problems);
  else if (alphabet === 'latin1') text = decodeLatin1(bytes);
  else if (alphabet === 'ucs2') text = decodeUcs2(bytes, problems);
  else if (alphabet === 'unknown') {
    // Better a readable guess than a lost complaint; the problem tells an operator to look.
    problems.add(`unknown data_coding ${hex(dataCoding)}, decoded as Latin-1`, 0);
    text = decodeLatin1(bytes);
  } else problems.add(`${alphabet === 'binary' ? 'binary' : 'compressed'} data_coding ${hex(dataCoding)} (${bytes.length} bytes), not decoded as text`, 0);
  return { text, problems: problems.list() };
}

// Replacements for characters people (and word processors) type that GSM-7 lacks. Accented letters are
// handled by stripping diacritics (below); these are the ones Unicode does not decompose.
const each = (chars: string, to: string): [string, string][] => [...chars].map((c) => [c, to]);
const TRANSLITERATION = new Map<string, string>([
  ...each('‘’‚‛′‹›`´ʼʻ', "'"), ...each('“”„‟″«»', '"'), ...each('‐‑‒–—―−', '-'), ...each('•·∙', '*'),
  ...each('\t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000', ' '),
  ...each('\u00ad\u200b\u2060\ufeff', ''), // invisible: soft hyphen, zero widths, word joiner, BOM
  ['…', '...'], ['©', '(c)'], ['®', '(R)'], ['™', 'TM'], ['×', 'x'], ['№', 'No'], ['¦', '|'], ['²', '2'], ['³', '3'],
  ['Ð', 'D'], ['ð', 'd'], ['Đ', 'D'], ['đ', 'd'], ['Þ', 'TH'], ['þ', 'th'], ['Ħ', 'H'], ['ħ', 'h'], ['ı', 'i'],
  ['Ĳ', 'IJ'], ['ĳ', 'ij'], ['ĸ', 'k'], ['Ŀ', 'L'], ['ŀ', 'l'], ['Ł', 'L'], ['ł', 'l'], ['ŉ', "'n"], ['Ŋ', 'N'],
  ['ŋ', 'n'], ['Œ', 'OE'], ['œ', 'oe'], ['Ŧ', 'T'], ['ŧ', 't'], ['ſ', 's'],
]);

/**
 * Replaces common non-GSM characters with GSM-7 look-alikes (curly quotes, dashes, ellipsis, odd spaces,
 * accented letters GSM lacks → base letter). Letters GSM has (é, ñ, ü, Ç…) are kept; anything without a
 * fair replacement (emoji, Arabic, CJK) is kept too and makes the reply UCS-2.
 */
export function transliterate(text: string): string {
  let out = '';
  for (const ch of text.normalize('NFC')) out += GSM_ENCODE.has(ch) ? ch : (TRANSLITERATION.get(ch) ?? stripDiacritics(ch));
  return out;
}

function stripDiacritics(ch: string): string {
  const base = ch.normalize('NFD').replace(/[\u0300-\u036f]/g, '');
  // A lone combining accent goes; a letter only becomes its base when the base is GSM (ç → c, but not ǅ).
  return base === '' || gsmAtoms(base) ? base : ch;
}

function gsmAtoms(text: string): number[][] | undefined {
  const atoms: number[][] = [];
  for (const ch of text) {
    const septets = GSM_ENCODE.get(ch);
    if (!septets) return undefined;
    atoms.push(septets);
  }
  return atoms;
}

/** Septets the text needs in GSM-7 (extension characters count 2), or undefined if GSM-7 can't carry it. */
export function gsmSeptets(text: string): number | undefined {
  return gsmAtoms(text)?.reduce((n, atom) => n + atom.length, 0);
}

// Units per segment: septets for GSM-7, UTF-16 code units for UCS-2 (140 octets minus the 6-octet UDH).
const CAPACITY = { 0: { single: 160, multi: 153 }, 8: { single: 70, multi: 67 } } as const;

interface Plan { dataCoding: 0 | 8; text: string; parts: number[][] }

/** Packs whole characters (an escape pair, a surrogate pair) into segments; none is ever split. */
function pack(atoms: number[][], dataCoding: 0 | 8): number[][] {
  const { single, multi } = CAPACITY[dataCoding];
  if (atoms.reduce((n, atom) => n + atom.length, 0) <= single) return [atoms.flat()];
  let current: number[] = [];
  const parts = [current];
  for (const atom of atoms) {
    if (current.length + atom.length > multi) parts.push((current = []));
    current.push(...atom);
  }
  return parts;
}

function plan(text: string, translit: boolean): Plan {
  const gsmText = translit ? transliterate(text) : text;
  const gsm = gsmAtoms(gsmText);
  if (gsm) return { dataCoding: 0, text: gsmText, parts: pack(gsm, 0) };
  // UCS-2 carries the original: once the reply is UCS-2 anyway, curly quotes and accents cost nothing.
  const units = Array.from(text, (ch) => Array.from({ length: ch.length }, (_, i) => ch.charCodeAt(i)));
  return { dataCoding: 8, text, parts: pack(units, 8) };
}

/** Segments the text needs as given (no transliteration), in the alphabet encodeSms would pick. */
export function segmentsNeeded(text: string): { dataCoding: 0 | 8; segments: number } {
  const { dataCoding, parts } = plan(text, false);
  return { dataCoding, segments: parts.length };
}

export interface EncodeOptions {
  /** Replace common non-GSM characters so the reply stays GSM-7 (160 per segment instead of 70). */
  transliterate: boolean;
  /** Most segments one notification may take; longer texts are cut, ending with an ellipsis. */
  maxSegments: number;
  /** Concatenation reference (0–255), shared by the segments of one message. */
  reference: number;
}

export interface EncodedSms {
  dataCoding: 0 | 8;
  /** Each = UDH (when more than one segment) + user data, for short_message with esm_class UDHI. */
  segments: Buffer[];
  udh: boolean;
  truncated: boolean;
  /** The text actually sent, after transliteration and truncation. */
  text: string;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Encodes a reply: GSM-7 when the text allows, else UCS-2; split with a concatenation UDH; capped. */
export function encodeSms(text: string, options: EncodeOptions): EncodedSms {
  // A lone surrogate can't be sent as valid UTF-16; U+FFFD says "something was here".
  const wellFormed = text.replace(/[\ud800-\udfff]/gu, '\uFFFD');
  // The UDH counts parts in one octet; below one part there is nothing to send.
  const max = Math.min(255, Math.max(1, Math.floor(options.maxSegments) || 1));
  let chosen = plan(wellFormed, options.transliterate);
  const truncated = chosen.parts.length > max;
  if (truncated) {
    // Cut between graphemes so no flag, accent or emoji sequence is left half-drawn.
    const pieces = Array.from(graphemes.segment(wellFormed), (s) => s.segment);
    const attempt = (count: number): Plan => {
      const kept = pieces.slice(0, count);
      while (kept.length > 0 && kept[kept.length - 1]?.trim() === '') kept.pop(); // no "word ..." gap
      const prefix = kept.join('');
      return plan(prefix + (plan(prefix, options.transliterate).dataCoding === 0 ? '...' : '…'), options.transliterate);
    };
    // attempt(0) is a bare ellipsis, which always fits; binary search for the longest prefix that does.
    let [fits, fails] = [0, pieces.length];
    while (fails - fits > 1) {
      const mid = (fits + fails) >> 1;
      if (attempt(mid).parts.length <= max) fits = mid;
      else fails = mid;
    }
    chosen = attempt(fits);
  }
  const total = chosen.parts.length;
  const reference = options.reference & 0xff;
  const segments = chosen.parts.map((units, i) => {
    const body = chosen.dataCoding === 0 ? Buffer.from(units) : utf16be(units);
    // 23.040 §9.2.3.24.1: IEI 00 (8-bit reference), length 3, reference, total, sequence from 1.
    return total === 1 ? body : Buffer.concat([Buffer.from([0x05, 0x00, 0x03, reference, total, i + 1]), body]);
  });
  return { dataCoding: chosen.dataCoding, segments, udh: total > 1, truncated, text: chosen.text };
}

// Byte by byte rather than through a Uint16Array, which would be host-endian.
const utf16be = (units: number[]): Buffer => Buffer.from(units.flatMap((unit) => [unit >> 8, unit & 0xff]));
