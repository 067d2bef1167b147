/**
 * The SMSC simulator's own text codec: GSM 03.38 (unpacked, one septet per octet, as SMPP carries
 * data_coding 0), UCS-2 big-endian and Latin-1, plus splitting and UDH parsing. It deliberately shares
 * no code with adapters/sms: the simulator is the oracle the gateway's codec is tested against, so a
 * bug copied into both would pass unnoticed.
 */

export type TextEncoding = 'gsm' | 'ucs2' | 'latin1';

export const DATA_CODING: Record<TextEncoding, number> = { gsm: 0x00, latin1: 0x03, ucs2: 0x08 };

/** GSM 03.38 default alphabet, indexed by septet. 0x1B is the escape to the extension table. */
const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';

const GSM_ESCAPE = 0x1b;

/** GSM 03.38 extension table: each character costs two septets, 0x1B then this one. */
const GSM_EXTENSION: ReadonlyArray<readonly [string, number]> = [
  ['\f', 0x0a],
  ['^', 0x14],
  ['{', 0x28],
  ['}', 0x29],
  ['\\', 0x2f],
  ['[', 0x3c],
  ['~', 0x3d],
  [']', 0x3e],
  ['|', 0x40],
  ['€', 0x65],
];

if ([...GSM_BASIC].length !== 128) {
  // A typo in the table would silently shift every septet after it; fail at import instead.
  throw new Error(`GSM basic table has ${[...GSM_BASIC].length} entries, expected 128`);
}

const gsmBasicEncode = new Map<string, number>();
const gsmBasicDecode: string[] = [...GSM_BASIC];
[...GSM_BASIC].forEach((ch, septet) => {
  // The escape septet is not a character a citizen can type.
  if (septet !== GSM_ESCAPE) gsmBasicEncode.set(ch, septet);
});
const gsmExtEncode = new Map<string, number>(GSM_EXTENSION);
const gsmExtDecode = new Map<number, string>(GSM_EXTENSION.map(([ch, septet]) => [septet, ch]));

/**
 * One character of the text as the octets that carry it. Parts are cut only between units, so an
 * escape pair or a surrogate pair never straddles two parts.
 */
type Unit = number[];

function gsmUnits(text: string): Unit[] | null {
  const units: Unit[] = [];
  for (const ch of text) {
    const basic = gsmBasicEncode.get(ch);
    if (basic !== undefined) {
      units.push([basic]);
      continue;
    }
    const ext = gsmExtEncode.get(ch);
    if (ext === undefined) return null;
    units.push([GSM_ESCAPE, ext]);
  }
  return units;
}

function ucs2Units(text: string): Unit[] {
  const units: Unit[] = [];
  // Iterating a string yields code points, so a surrogate pair stays one unit (4 octets).
  for (const ch of text) {
    const unit: Unit = [];
    for (let i = 0; i < ch.length; i++) {
      const cu = ch.charCodeAt(i);
      unit.push(cu >> 8, cu & 0xff);
    }
    units.push(unit);
  }
  return units;
}

function latin1Units(text: string): Unit[] | null {
  const units: Unit[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp > 0xff) return null;
    units.push([cp]);
  }
  return units;
}

function unitsFor(text: string, encoding: TextEncoding): Unit[] {
  const units = encoding === 'gsm' ? gsmUnits(text) : encoding === 'latin1' ? latin1Units(text) : ucs2Units(text);
  if (!units) throw new RangeError(`the text has characters that ${encoding} cannot carry`);
  return units;
}

/** Cost of a unit against the per-part limit: septets for GSM, UTF-16 code units for UCS-2, octets for Latin-1. */
function unitCost(unit: Unit, encoding: TextEncoding): number {
  return encoding === 'ucs2' ? unit.length / 2 : unit.length;
}

/** 'auto' is what a handset does: GSM when every character fits, UCS-2 otherwise. */
export function chooseEncoding(text: string, requested: TextEncoding | 'auto' = 'auto'): TextEncoding {
  if (requested !== 'auto') return requested;
  return gsmUnits(text) ? 'gsm' : 'ucs2';
}

export function encodeText(text: string, encoding: TextEncoding): Buffer {
  return Buffer.from(unitsFor(text, encoding).flat());
}

/** Length in the unit the limits are counted in (septets / UTF-16 code units / octets). */
export function encodedLength(text: string, encoding: TextEncoding): number {
  return unitsFor(text, encoding).reduce((sum, unit) => sum + unitCost(unit, encoding), 0);
}

export type SplitKind = 'udh8' | 'udh16' | 'sar';

/** What one SMS carries without concatenation. */
export const SINGLE_LIMIT: Record<TextEncoding, number> = { gsm: 160, ucs2: 70, latin1: 140 };

/**
 * What one part carries: 140 octets less the UDH (6 octets for 8-bit refs, 7 for 16-bit; for GSM the
 * UDH is counted in septets, rounded up). SAR parts carry no UDH in SMPP but become UDH parts on the
 * air interface, so they get the 8-bit-ref limits.
 */
export function partLimit(encoding: TextEncoding, split: SplitKind): number {
  const udh16 = split === 'udh16';
  if (encoding === 'gsm') return udh16 ? 152 : 153;
  if (encoding === 'ucs2') return udh16 ? 66 : 67;
  return udh16 ? 133 : 134;
}

/** Greedy split into parts of at most `limit` (in the encoding's counting unit), cutting only between characters. */
export function splitEncoded(text: string, encoding: TextEncoding, limit: number): Buffer[] {
  const parts: Buffer[] = [];
  let current: number[] = [];
  let cost = 0;
  for (const unit of unitsFor(text, encoding)) {
    const c = unitCost(unit, encoding);
    if (cost + c > limit && current.length > 0) {
      parts.push(Buffer.from(current));
      current = [];
      cost = 0;
    }
    current.push(...unit);
    cost += c;
  }
  if (current.length > 0 || parts.length === 0) parts.push(Buffer.from(current));
  return parts;
}

export function udh8(ref: number, total: number, seq: number): Buffer {
  return Buffer.from([0x05, 0x00, 0x03, ref & 0xff, total, seq]);
}

export function udh16(ref: number, total: number, seq: number): Buffer {
  return Buffer.from([0x06, 0x08, 0x04, (ref >> 8) & 0xff, ref & 0xff, total, seq]);
}

export interface ConcatInfo {
  kind: SplitKind;
  ref: number;
  total: number;
  seq: number;
}

export interface ParsedUdh {
  /** Octets of the UDH including its length octet; the text starts after them. */
  length: number;
  concat?: ConcatInfo;
  /** False when the UDH length or an element overruns the message. */
  ok: boolean;
}

export function parseUdh(body: Buffer): ParsedUdh {
  if (body.length === 0) return { length: 0, ok: false };
  const udhl = body[0] ?? 0;
  const end = 1 + udhl;
  if (end > body.length) return { length: body.length, ok: false };
  let offset = 1;
  let concat: ConcatInfo | undefined;
  while (offset + 2 <= end) {
    const iei = body[offset] ?? 0;
    const len = body[offset + 1] ?? 0;
    const data = body.subarray(offset + 2, offset + 2 + len);
    if (offset + 2 + len > end) return { length: end, ok: false };
    if (iei === 0x00 && len === 3) {
      concat = { kind: 'udh8', ref: data[0] ?? 0, total: data[1] ?? 0, seq: data[2] ?? 0 };
    } else if (iei === 0x08 && len === 4) {
      concat = { kind: 'udh16', ref: ((data[0] ?? 0) << 8) | (data[1] ?? 0), total: data[2] ?? 0, seq: data[3] ?? 0 };
    }
    offset += 2 + len;
  }
  return concat ? { length: end, concat, ok: offset === end } : { length: end, ok: offset === end };
}

export interface DecodedText {
  text: string;
  /** Things a handset would render wrongly; the gateway should never produce them. */
  issues: string[];
}

export function decodeGsm(bytes: Buffer): DecodedText {
  const issues = new Set<string>();
  let text = '';
  for (let i = 0; i < bytes.length; i++) {
    const septet = bytes[i] ?? 0;
    if (septet > 0x7f) {
      issues.add('octet-above-0x7f');
      text += '?';
    } else if (septet === GSM_ESCAPE) {
      const next = bytes[i + 1];
      if (next === undefined) {
        // An escape at the end of a part means an extension character was split across parts.
        issues.add('trailing-escape');
        break;
      }
      i++;
      const ext = gsmExtDecode.get(next);
      if (ext === undefined) {
        // 03.38: an unknown extension shows the default-table character.
        issues.add('unknown-escape');
        text += gsmBasicDecode[next & 0x7f] ?? '?';
      } else {
        text += ext;
      }
    } else {
      text += gsmBasicDecode[septet] ?? '?';
    }
  }
  return { text, issues: [...issues] };
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function decodeUcs2(bytes: Buffer): DecodedText {
  const issues: string[] = [];
  let text = '';
  const even = bytes.length - (bytes.length % 2);
  if (even !== bytes.length) issues.push('odd-ucs2-length');
  for (let i = 0; i < even; i += 2) text += String.fromCharCode(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  if (LONE_SURROGATE.test(text)) issues.push('lone-surrogate');
  return { text, issues };
}

/** Decodes by SMPP data_coding; unknown or binary schemes come back as hex so nothing is hidden. */
export function decodeText(bytes: Buffer, dataCoding: number): DecodedText {
  // 0xF0 group: bit 2 chooses 8-bit data over the default alphabet.
  if ((dataCoding & 0xf0) === 0xf0) {
    return dataCoding & 0x04 ? { text: bytes.toString('hex'), issues: ['binary'] } : decodeGsm(bytes);
  }
  switch (dataCoding) {
    case 0x00:
      return decodeGsm(bytes);
    case 0x01:
      return { text: bytes.toString('ascii'), issues: [] };
    case 0x03:
      return { text: bytes.toString('latin1'), issues: [] };
    case 0x08:
      return decodeUcs2(bytes);
    default:
      return { text: bytes.toString('hex'), issues: [`data-coding-0x${dataCoding.toString(16)}`] };
  }
}
