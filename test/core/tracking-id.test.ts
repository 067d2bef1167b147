import fc from 'fast-check';
import { describe, it, expect } from 'vitest';
import {
  TrackingIdCodec,
  dammCheckDigit,
  isDammValid,
  looksLikeTrackingId,
  parseTrackingId,
} from '../../src/core/tracking-id.ts';

const FULL = 900_000_000;
const keyArb = fc.uint8Array({ minLength: 16, maxLength: 32 });
const seqArb = fc.integer({ min: 0, max: FULL - 1 });
const fixedKey = new Uint8Array(32).map((_, i) => i * 7 + 1);
const codec = new TrackingIdCodec(fixedKey);

// A valid ID from an arbitrary codec, so properties don't depend on one key.
const idArb = fc.tuple(keyArb, seqArb).map(([key, seq]) => new TrackingIdCodec(key).fromSequence(seq));

const withDigit = (id: string, pos: number, d: number): string => id.slice(0, pos) + d + id.slice(pos + 1);
const swapAt = (id: string, pos: number): string => id.slice(0, pos) + id[pos + 1] + id[pos] + id.slice(pos + 2);

describe('Damm check digit', () => {
  it('matches the published example (572 → 4)', () => {
    expect(dammCheckDigit('572')).toBe('4');
    expect(isDammValid('5724')).toBe(true);
    expect(isDammValid('5727')).toBe(false);
  });

  it('accepts the known corpus IDs (also Verhoeff-valid)', () => {
    for (const id of ['5723181068', '7153980803']) {
      expect(isDammValid(id)).toBe(true);
      expect(parseTrackingId(id)).toEqual({ ok: true, id });
    }
  });

  it('rejects non-digit input', () => {
    expect(() => dammCheckDigit('12a')).toThrow();
    expect(isDammValid('57x4')).toBe(false);
    expect(isDammValid('')).toBe(false);
  });
});

describe('claim 1: format', () => {
  it('every id is 10 digits with a nonzero first digit and a valid check digit', () => {
    fc.assert(
      fc.property(keyArb, seqArb, (key, seq) => {
        const id = new TrackingIdCodec(key).fromSequence(seq);
        expect(id).toMatch(/^[1-9][0-9]{9}$/);
        expect(isDammValid(id)).toBe(true);
      }),
    );
  });

  it('covers the domain edges', () => {
    expect(codec.fromSequence(0)).toMatch(/^[1-9][0-9]{9}$/);
    expect(codec.fromSequence(FULL - 1)).toMatch(/^[1-9][0-9]{9}$/);
  });

  it('rejects out-of-range or non-integer sequence numbers and short keys', () => {
    for (const bad of [-1, FULL, 1.5, Number.NaN, Infinity]) expect(() => codec.fromSequence(bad)).toThrow(RangeError);
    expect(() => new TrackingIdCodec(new Uint8Array(15))).toThrow(/at least 16 bytes/);
  });
});

describe('claim 2: check digit catches typos', () => {
  const rejected = (s: string): boolean => {
    const r = parseTrackingId(s);
    return !r.ok && (r.reason === 'check_digit' || r.reason === 'format');
  };

  it('rejects every single-digit substitution', () => {
    fc.assert(
      fc.property(idArb, fc.nat(9), fc.integer({ min: 1, max: 9 }), (id, pos, shift) => {
        const d = (Number(id[pos]) + shift) % 10; // shift 1..9 guarantees a different digit
        expect(rejected(withDigit(id, pos, d))).toBe(true);
      }),
    );
  });

  it('rejects every adjacent transposition of two different digits', () => {
    fc.assert(
      fc.property(idArb, fc.nat(8), (id, pos) => {
        fc.pre(id[pos] !== id[pos + 1]);
        expect(rejected(swapAt(id, pos))).toBe(true);
      }),
    );
  });

  it('exhaustively, for a few ids, every position and digit', () => {
    const ids = ['5723181068', '7153980803', codec.fromSequence(0), codec.fromSequence(123_456_789)];
    for (const id of ids) {
      for (let pos = 0; pos < 10; pos++) {
        for (let d = 0; d < 10; d++) if (String(d) !== id[pos]) expect(rejected(withDigit(id, pos, d))).toBe(true);
        if (pos < 9 && id[pos] !== id[pos + 1]) expect(rejected(swapAt(id, pos))).toBe(true);
      }
    }
  });
});

describe('claim 3: not sequential', () => {
  const payload = (id: string): number => Number(id.slice(0, 9));

  it('consecutive sequence numbers give scattered, unordered ids', () => {
    fc.assert(
      fc.property(keyArb, fc.integer({ min: 0, max: FULL - 2001 }), (key, start) => {
        const c = new TrackingIdCodec(key);
        const p = Array.from({ length: 2000 }, (_, i) => payload(c.fromSequence(start + i)));
        const deltas = p.slice(1).map((v, i) => v - p[i]!);
        // A random permutation almost never lands within 1000 of its neighbour (p ≈ 2e-6);
        // identity or a small-step affine map always does.
        expect(deltas.filter((d) => Math.abs(d) < 1000).length).toBeLessThan(10);
        // An affine map mod N has at most two distinct deltas; a random one has ~all distinct.
        expect(new Set(deltas).size).toBeGreaterThan(1900);
        // Roughly half the steps go up (±4.5 standard deviations); a monotone map gives 0% or 100%.
        const ups = deltas.filter((d) => d > 0).length / deltas.length;
        expect(ups).toBeGreaterThan(0.4);
        expect(ups).toBeLessThan(0.6);
      }),
      { numRuns: 5 },
    );
  });

  it('different keys give different ids for the same sequence number', () => {
    fc.assert(
      fc.property(keyArb, keyArb, seqArb, (k1, k2, seq) => {
        fc.pre(Buffer.compare(k1, k2) !== 0);
        expect(new TrackingIdCodec(k1).fromSequence(seq)).not.toBe(new TrackingIdCodec(k2).fromSequence(seq));
      }),
    );
  });

  it('the key is copied, so mutating the caller array does not change ids', () => {
    const key = new Uint8Array(fixedKey);
    const c = new TrackingIdCodec(key);
    const before = c.fromSequence(42);
    key.fill(0);
    expect(c.fromSequence(42)).toBe(before);
  });
});

describe('claim 4: unique by construction', () => {
  // Both square and non-square domains, and both round parities (the output rule differs).
  const cases = [
    { a: 30, b: 30, rounds: 8 },
    { a: 30, b: 30, rounds: 7 },
    { a: 7, b: 11, rounds: 8 },
    { a: 7, b: 11, rounds: 7 },
    { a: 11, b: 7, rounds: 3 },
  ];
  for (const { a, b, rounds } of cases) {
    it(`permute is an exhaustive bijection on ${a}x${b} with ${rounds} rounds`, () => {
      const c = new TrackingIdCodec(fixedKey, { a, b }, rounds);
      const seen = new Set<number>();
      for (let m = 0; m < a * b; m++) {
        const x = c.permute(m);
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThan(a * b);
        expect(c.unpermute(x)).toBe(m);
        seen.add(x);
        expect(c.toSequence(c.fromSequence(m))).toBe(m);
      }
      expect(seen.size).toBe(a * b);
    });
  }

  it('the tiny-domain permutation is not the identity', () => {
    const c = new TrackingIdCodec(fixedKey, { a: 30, b: 30 });
    const fixedPoints = Array.from({ length: 900 }, (_, m) => m).filter((m) => c.permute(m) === m).length;
    expect(fixedPoints).toBeLessThan(10); // a random permutation has ~1 fixed point
  });

  it('toSequence(fromSequence(s)) === s on the full domain', () => {
    fc.assert(
      fc.property(keyArb, seqArb, (key, seq) => {
        const c = new TrackingIdCodec(key);
        expect(c.toSequence(c.fromSequence(seq))).toBe(seq);
      }),
    );
  });

  it('toSequence rejects invalid or non-canonical ids', () => {
    const id = codec.fromSequence(7);
    expect(() => codec.toSequence(withDigit(id, 9, (Number(id[9]) + 1) % 10))).toThrow();
    expect(() => codec.toSequence(`#${id}`)).toThrow();
    expect(() => codec.toSequence('123')).toThrow();
    // Tiny domain: a well-formed ID whose payload lies outside a*b is not one of ours.
    expect(() => new TrackingIdCodec(fixedKey, { a: 30, b: 30 }).toSequence('5723181068')).toThrow(RangeError);
  });

  it('rejects domains too large for 9 payload digits', () => {
    expect(() => new TrackingIdCodec(fixedKey, { a: 30_001, b: 30_000 })).toThrow(RangeError);
    expect(() => new TrackingIdCodec(fixedKey, { a: 0, b: 10 })).toThrow(RangeError);
  });
});

describe('parseTrackingId normalisation', () => {
  const cases: [string, ReturnType<typeof parseTrackingId>][] = [
    ['572-318-1068', { ok: true, id: '5723181068' }],
    [' 5723181068 ', { ok: true, id: '5723181068' }],
    ['#5723181068', { ok: true, id: '5723181068' }],
    ['572.318.1068', { ok: true, id: '5723181068' }],
    ['572 318 1068', { ok: true, id: '5723181068' }],
    ['57231', { ok: false, reason: 'format', input: '57231' }],
    // Legacy LAPOR! IDs are shorter than the 10 digits we issue, and still answered.
    ['79812002', { ok: true, id: '79812002' }],
    ['79812003', { ok: false, reason: 'check_digit', input: '79812003' }],
    ['0723181068', { ok: false, reason: 'format', input: '0723181068' }],
    ['5723181069', { ok: false, reason: 'check_digit', input: '5723181069' }],
    ['57231810680', { ok: false, reason: 'format', input: '57231810680' }],
    ['abc', { ok: false, reason: 'format', input: 'abc' }],
    ['', { ok: false, reason: 'format', input: '' }],
    ['##5723181068', { ok: false, reason: 'format', input: '##5723181068' }],
  ];
  it.each(cases)('%j → %j', (input, expected) => {
    expect(parseTrackingId(input)).toEqual(expected);
  });

  it('looksLikeTrackingId ignores the check digit but not the shape', () => {
    expect(looksLikeTrackingId('#572-318-1068')).toBe(true);
    expect(looksLikeTrackingId('5723181069')).toBe(true); // bad check digit, still ID-shaped
    expect(looksLikeTrackingId('0812345678')).toBe(false); // leading 0, e.g. a phone number
    expect(looksLikeTrackingId('572318106')).toBe(false);
    expect(looksLikeTrackingId('laporan')).toBe(false);
  });
});
