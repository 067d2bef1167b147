// Tracking IDs for LAPOR! reports: 10 digits, first digit 1-9, last digit a Damm check digit.
// The first 9 digits are a keyed permutation of the report's sequence number, so IDs are unique
// (the permutation is a bijection) but cannot be enumerated by counting up or down.
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

// Damm's (2004) weakly totally anti-symmetric quasigroup of order 10, as printed on Wikipedia.
// Every row and column is a permutation (catches all single-digit errors) and the anti-symmetry
// catches every adjacent transposition.
const DAMM_TABLE: readonly (readonly number[])[] = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
  [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
  [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
  [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
  [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
  [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
  [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

const DIGITS = /^[0-9]+$/;
// IDs we issue have 10 digits; LAPOR! issued shorter ones before (the corpus has an 8-digit one),
// and a citizen holding one must still be answered, so parsing accepts 6 to 10 digits.
const ISSUED = /^[1-9][0-9]{9}$/;
const ACCEPTED = /^[1-9][0-9]{5,9}$/;

// Runs the digits through the quasigroup; the interim digit is 0 exactly when the check digit is right.
function dammInterim(digits: string): number {
  let interim = 0;
  for (const ch of digits) interim = DAMM_TABLE[interim]![ch.charCodeAt(0) - 48]!;
  return interim;
}

/** The Damm check digit to append to `digits` (which must be ASCII digits only). */
export function dammCheckDigit(digits: string): string {
  if (!DIGITS.test(digits)) throw new Error(`dammCheckDigit expects ASCII digits, got ${JSON.stringify(digits)}`);
  // The table has a zero diagonal, so the check digit equals the interim digit.
  return String(dammInterim(digits));
}

/** True when the last digit of `digits` is the correct Damm check digit for the rest. */
export function isDammValid(digits: string): boolean {
  return digits.length >= 2 && DIGITS.test(digits) && dammInterim(digits) === 0;
}

export type ParsedTrackingId = { ok: true; id: string } | { ok: false; reason: 'format' | 'check_digit'; input: string };

// People copy IDs as "#572-318-1068" or "572 318 1068"; separators carry no meaning, so drop them.
function normalise(input: string): string {
  const trimmed = input.trim();
  return (trimmed.startsWith('#') ? trimmed.slice(1) : trimmed).replace(/[\s.-]/g, '');
}

/**
 * Parses what a citizen typed. A well-formed ID with a wrong check digit is reported separately
 * ('check_digit') so the UI can say "check the number" rather than "report not found".
 */
export function parseTrackingId(input: string): ParsedTrackingId {
  const id = normalise(input);
  if (!ACCEPTED.test(id)) return { ok: false, reason: 'format', input };
  if (!isDammValid(id)) return { ok: false, reason: 'check_digit', input };
  return { ok: true, id };
}

/**
 * For the keyword parser: the token has the shape of an ID we issue (10 digits), whether or not its
 * check digit is right. Shorter legacy IDs count only after a keyword (CEK, BALAS…), since a message
 * that merely starts with a 6-digit number is far more likely a complaint than a follow-up.
 */
export function looksLikeTrackingId(token: string): boolean {
  return ISSUED.test(normalise(token));
}

/** The permutation domain is a×b; 30000×30000 = 9e8 fills the 9 payload digits 100000000–999999999. */
export type FeistelDomain = { a: number; b: number };

const FULL_DOMAIN: FeistelDomain = { a: 30_000, b: 30_000 };
const PAYLOAD_OFFSET = 100_000_000; // shifts the payload so the first digit is never 0
const MIN_KEY_BYTES = 16;

// Mathematical modulo: JS `%` keeps the sign of the dividend, which breaks the inverse rounds.
const mod = (x: number, n: number): number => ((x % n) + n) % n;

export class TrackingIdCodec {
  readonly #key: KeyObject;
  readonly #a: number;
  readonly #b: number;
  readonly #rounds: number;

  /** `rounds` is only configurable so tests can exercise the odd-round output rule. */
  constructor(key: Uint8Array, domain: FeistelDomain = FULL_DOMAIN, rounds = 8) {
    if (!(key instanceof Uint8Array) || key.length < MIN_KEY_BYTES) {
      throw new Error(`TrackingIdCodec key must be a Uint8Array of at least ${MIN_KEY_BYTES} bytes`);
    }
    const { a, b } = domain;
    // a*b must fit in 9 payload digits, or IDs would overflow to 11 digits.
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 1 || b < 1 || a * b > FULL_DOMAIN.a * FULL_DOMAIN.b) {
      throw new RangeError(`invalid domain ${a}x${b}: a and b must be positive integers with a*b <= 9e8`);
    }
    if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be a positive integer, got ${rounds}`);
    // createSecretKey copies the bytes, so later changes to the caller's array cannot alter IDs.
    this.#key = createSecretKey(key);
    this.#a = a;
    this.#b = b;
    this.#rounds = rounds;
  }

  /** Number of sequence numbers this codec can encode. */
  get size(): number {
    return this.#a * this.#b;
  }

  // Round function: HMAC-SHA256(key, round ‖ half), first 6 bytes as an integer, mod n.
  // 2^48 is so much larger than n that the modulo bias is negligible.
  #f(round: number, half: number, n: number): number {
    const msg = Buffer.alloc(8);
    msg.writeUInt32BE(round, 0);
    msg.writeUInt32BE(half, 4);
    return createHmac('sha256', this.#key).update(msg).digest().readUIntBE(0, 6) % n;
  }

  /** Black–Rogaway "fe2" Feistel on a×b: a keyed bijection of [0, a*b) onto itself. */
  permute(m: number): number {
    this.#checkInDomain(m);
    const a = this.#a, b = this.#b;
    let L = m % a, R = Math.floor(m / a);
    for (let j = 1; j <= this.#rounds; j++) {
      // Odd rounds produce a value mod a, even rounds mod b, so the halves alternate between
      // [0,a) and [0,b) and every intermediate pair stays inside the domain.
      const n = j % 2 === 1 ? a : b;
      const tmp = (L + this.#f(j, R, n)) % n;
      L = R;
      R = tmp;
    }
    return this.#rounds % 2 === 1 ? a * L + R : a * R + L;
  }

  /** Inverse of `permute`: runs the rounds backwards, subtracting the same round values. */
  unpermute(c: number): number {
    this.#checkInDomain(c);
    const a = this.#a, b = this.#b;
    let L: number, R: number;
    if (this.#rounds % 2 === 1) [L, R] = [Math.floor(c / a), c % a];
    else [L, R] = [c % a, Math.floor(c / a)];
    for (let j = this.#rounds; j >= 1; j--) {
      const n = j % 2 === 1 ? a : b;
      const tmp = R;
      R = L;
      L = mod(tmp - this.#f(j, R, n), n);
    }
    return a * R + L;
  }

  /** Sequence number → 10-digit tracking ID. */
  fromSequence(seq: number): string {
    const payload = String(this.permute(seq) + PAYLOAD_OFFSET);
    return payload + dammCheckDigit(payload);
  }

  /** Canonical 10-digit tracking ID → sequence number. Normalise user input with parseTrackingId first. */
  toSequence(id: string): number {
    const parsed = parseTrackingId(id);
    if (!parsed.ok || parsed.id !== id) throw new Error(`not a canonical tracking ID: ${JSON.stringify(id)}`);
    return this.unpermute(Number(id.slice(0, 9)) - PAYLOAD_OFFSET);
  }

  #checkInDomain(x: number): void {
    if (!Number.isInteger(x) || x < 0 || x >= this.size) {
      throw new RangeError(`${x} is outside the tracking-ID domain [0, ${this.size})`);
    }
  }
}
