import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatFromSar, concatGroupKey, parseUdh, type ConcatInfo, type UdhResult } from '../../../adapters/sms/concat.ts';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const TEXT = [0x48, 0x61, 0x69]; // "Hai"

type Expected = { headerLength: number; concat?: ConcatInfo; problem?: RegExp; ieis: number[] } | { reason: RegExp };

const cases: { name: string; message: Uint8Array; expected: Expected }[] = [
  {
    name: '8-bit reference',
    message: bytes(0x05, 0x00, 0x03, 0x2a, 0x03, 0x02, ...TEXT),
    expected: { headerLength: 6, concat: { ref: 0x2a, refBits: 8, total: 3, seq: 2 }, ieis: [0x00] },
  },
  {
    name: '16-bit reference',
    message: bytes(0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, ...TEXT),
    expected: { headerLength: 7, concat: { ref: 0x1234, refBits: 16, total: 2, seq: 1 }, ieis: [0x08] },
  },
  {
    name: 'national language shift IEs before the concat IE',
    message: bytes(0x0b, 0x24, 0x01, 0x0d, 0x25, 0x01, 0x0d, 0x00, 0x03, 0x07, 0x02, 0x02, ...TEXT),
    expected: { headerLength: 12, concat: { ref: 7, refBits: 8, total: 2, seq: 2 }, ieis: [0x24, 0x25, 0x00] },
  },
  {
    name: 'port addressing IE after the concat IE',
    message: bytes(0x0c, 0x08, 0x04, 0xff, 0xfe, 0x04, 0x04, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, ...TEXT),
    expected: { headerLength: 13, concat: { ref: 0xfffe, refBits: 16, total: 4, seq: 4 }, ieis: [0x08, 0x05] },
  },
  {
    name: 'no concat IE (a single message with a header)',
    message: bytes(0x03, 0x24, 0x01, 0x0d, ...TEXT),
    expected: { headerLength: 4, ieis: [0x24] },
  },
  {
    name: 'UDHL 0 (header with no IE)',
    message: bytes(0x00, ...TEXT),
    expected: { headerLength: 1, ieis: [] },
  },
  {
    name: 'UDH taking the whole message (empty text)',
    message: bytes(0x05, 0x00, 0x03, 0x01, 0x02, 0x01),
    expected: { headerLength: 6, concat: { ref: 1, refBits: 8, total: 2, seq: 1 }, ieis: [0x00] },
  },
  {
    name: 'a repeated concat IE: the last one counts (23.040)',
    message: bytes(0x0a, 0x00, 0x03, 0x01, 0x02, 0x01, 0x00, 0x03, 0x09, 0x03, 0x03, ...TEXT),
    expected: { headerLength: 11, concat: { ref: 9, refBits: 8, total: 3, seq: 3 }, ieis: [0x00, 0x00] },
  },
  // A broken concat IE leaves the header parseable: stored as a single message, with the reason.
  { name: 'total 0', message: bytes(0x05, 0x00, 0x03, 0x01, 0x00, 0x01, ...TEXT), expected: { headerLength: 6, problem: /total is 0/, ieis: [0x00] } },
  { name: 'seq 0', message: bytes(0x05, 0x00, 0x03, 0x01, 0x02, 0x00, ...TEXT), expected: { headerLength: 6, problem: /sequence number is 0/, ieis: [0x00] } },
  {
    name: 'seq > total',
    message: bytes(0x06, 0x08, 0x04, 0x00, 0x01, 0x02, 0x03, ...TEXT),
    expected: { headerLength: 7, problem: /3 exceeds total 2/, ieis: [0x08] },
  },
  {
    name: 'concat IE of the wrong length',
    message: bytes(0x04, 0x00, 0x02, 0x01, 0x02, ...TEXT),
    expected: { headerLength: 5, problem: /length 2, expected 3/, ieis: [0x00] },
  },
  // A broken header: the text can't be located, so the PDU is rejected.
  { name: 'empty message', message: bytes(), expected: { reason: /empty/ } },
  { name: 'UDHL longer than the message', message: bytes(0x09, 0x00, 0x03, 0x01, 0x02, 0x01), expected: { reason: /UDH length 9 runs past/ } },
  { name: 'UDHL alone, pointing past the end', message: bytes(0x01), expected: { reason: /runs past the message/ } },
  { name: 'IE overrunning the UDH', message: bytes(0x05, 0x00, 0x04, 0x01, 0x02, 0x01, ...TEXT), expected: { reason: /0x00 of length 4 runs past the UDH/ } },
  { name: 'IE cut before its length octet', message: bytes(0x06, 0x00, 0x03, 0x01, 0x02, 0x01, 0x24, ...TEXT), expected: { reason: /truncated/ } },
];

describe('parseUdh', () => {
  it.each(cases)('$name', ({ message, expected }) => {
    const result: UdhResult = parseUdh(message);
    if ('reason' in expected) {
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toMatch(expected.reason);
      return;
    }
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.headerLength).toBe(expected.headerLength);
    expect(result.concat).toEqual(expected.concat);
    if (expected.problem) expect(result.concatProblem).toMatch(expected.problem);
    else expect(result.concatProblem).toBeUndefined();
    expect(result.elements.map((e) => e.iei)).toEqual(expected.ieis);
  });

  it('keeps the data of other IEs, copied out of the PDU buffer', () => {
    const message = bytes(0x09, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 0x24, 0x01, 0x0d, ...TEXT);
    const result = parseUdh(message);
    expect(result).toMatchObject({ ok: true, headerLength: 10 });
    if (!result.ok) return;
    expect(result.elements).toEqual([
      { iei: 0x05, data: bytes(0x0b, 0x84, 0x23, 0xf0) },
      { iei: 0x24, data: bytes(0x0d) },
    ]);
    message.fill(0);
    expect(result.elements[0]!.data).toEqual(bytes(0x0b, 0x84, 0x23, 0xf0));
  });

  it('never throws, and a success always lies within the message', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (message) => {
        const result = parseUdh(message);
        if (!result.ok) return typeof result.reason === 'string' && result.reason.length > 0;
        const { concat } = result;
        const concatSane = !concat || (concat.total >= 1 && concat.seq >= 1 && concat.seq <= concat.total);
        return result.headerLength === message[0]! + 1 && result.headerLength <= message.length && concatSane;
      }),
      { numRuns: 2_000 },
    );
  });

  it('never throws on well-framed headers with arbitrary IEs either', () => {
    // Random bytes rarely frame a valid UDH; build one so the IE loop and concat checks are exercised.
    const ie = fc.tuple(fc.constantFrom(0x00, 0x08, 0x24, 0x25, 0x05, 0x70), fc.uint8Array({ maxLength: 6 }));
    fc.assert(
      fc.property(fc.array(ie, { maxLength: 6 }), fc.uint8Array({ maxLength: 20 }), (ies, text) => {
        const udh = ies.flatMap(([iei, data]) => [iei, data.length, ...data]);
        if (udh.length > 255) return true;
        const result = parseUdh(bytes(udh.length, ...udh, ...text));
        return result.ok && result.elements.length === ies.length && result.headerLength === udh.length + 1;
      }),
    );
  });
});

describe('concatFromSar', () => {
  it.each([
    { tlvs: {}, expected: undefined },
    { tlvs: { sar_msg_ref_num: 0xbeef, sar_total_segments: 3, sar_segment_seqnum: 2 }, expected: { ref: 0xbeef, refBits: 16, total: 3, seq: 2 } },
    { tlvs: { sar_msg_ref_num: 0, sar_total_segments: 1, sar_segment_seqnum: 1 }, expected: { ref: 0, refBits: 16, total: 1, seq: 1 } },
  ])('$tlvs → $expected', ({ tlvs, expected }) => {
    expect(concatFromSar(tlvs)).toEqual(expected);
  });

  it.each([
    { tlvs: { sar_msg_ref_num: 1 }, reason: /only 1 of the 3/ },
    { tlvs: { sar_total_segments: 2, sar_segment_seqnum: 1 }, reason: /only 2 of the 3/ },
    { tlvs: { sar_msg_ref_num: 1, sar_total_segments: 0, sar_segment_seqnum: 1 }, reason: /total is 0/ },
    { tlvs: { sar_msg_ref_num: 1, sar_total_segments: 2, sar_segment_seqnum: 0 }, reason: /sequence number is 0/ },
    { tlvs: { sar_msg_ref_num: 1, sar_total_segments: 2, sar_segment_seqnum: 3 }, reason: /3 exceeds total 2/ },
    { tlvs: { sar_msg_ref_num: 0x10000, sar_total_segments: 2, sar_segment_seqnum: 1 }, reason: /not a 16-bit/ },
    { tlvs: { sar_msg_ref_num: -1, sar_total_segments: 2, sar_segment_seqnum: 1 }, reason: /not a 16-bit/ },
    { tlvs: { sar_msg_ref_num: 1, sar_total_segments: 256, sar_segment_seqnum: 1 }, reason: /1-octet/ },
    { tlvs: { sar_msg_ref_num: 1.5, sar_total_segments: 2, sar_segment_seqnum: 1 }, reason: /not a 16-bit/ },
  ])('invalid: $tlvs', ({ tlvs, reason }) => {
    const result = concatFromSar(tlvs);
    expect(result).toHaveProperty('invalid');
    expect((result as { invalid: string }).invalid).toMatch(reason);
  });
});

describe('concatGroupKey', () => {
  const base = { account: 'tsel-1', source: '628123456789', destination: '1708' };
  it('tells apart senders, reference widths and totals', () => {
    const key = (concat: ConcatInfo, source = base.source) => concatGroupKey({ ...base, source, concat });
    const keys = new Set([
      key({ ref: 5, refBits: 8, total: 2, seq: 1 }),
      key({ ref: 5, refBits: 16, total: 2, seq: 1 }),
      key({ ref: 5, refBits: 8, total: 3, seq: 1 }),
      key({ ref: 5, refBits: 8, total: 2, seq: 1 }, '628111111111'),
      key({ ref: 0x0105, refBits: 16, total: 2, seq: 1 }),
    ]);
    expect(keys.size).toBe(5);
    // The sequence number is not part of the group.
    expect(key({ ref: 5, refBits: 8, total: 2, seq: 1 })).toBe(key({ ref: 5, refBits: 8, total: 2, seq: 2 }));
  });
});
