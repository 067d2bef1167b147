import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyDeliver, joinParts, msisdnOf, previousDedupKey, toInboundMessage } from '../../../adapters/sms/inbound.ts';
import smpp from 'smpp';
import { COMMAND, STATUS, TLV, encodeResponse, encodeSubmitSm, parseDataSm, parseDeliverSm, parseSubmitSmResp } from '../../../adapters/sms/pdu.ts';

/** Builds a deliver_sm by hand, byte by byte as SMPP 3.4 §4.6.1 lays it out. */
function deliverSm(fields: {
  source?: string;
  esmClass?: number;
  dataCoding?: number;
  userData?: Uint8Array;
  tlvs?: [number, Uint8Array][];
  sequence?: number;
}): Buffer {
  const cstr = (s: string) => Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from([0])]);
  const userData = Buffer.from(fields.userData ?? Buffer.from('LAPOR jalan rusak', 'latin1'));
  const body = Buffer.concat([
    cstr(''),
    Buffer.from([1, 1]),
    cstr(fields.source ?? '6281290417736'),
    Buffer.from([0, 0]),
    cstr('1708'),
    Buffer.from([fields.esmClass ?? 0, 0, 0]),
    cstr(''),
    cstr(''),
    Buffer.from([0, 0, fields.dataCoding ?? 0, 0, userData.length]),
    userData,
    ...(fields.tlvs ?? []).map(([tag, value]) => {
      const head = Buffer.alloc(4);
      head.writeUInt16BE(tag, 0);
      head.writeUInt16BE(value.length, 2);
      return Buffer.concat([head, value]);
    }),
  ]);
  const header = Buffer.alloc(16);
  header.writeUInt32BE(16 + body.length, 0);
  header.writeUInt32BE(COMMAND.deliver_sm, 4);
  header.writeUInt32BE(0, 8);
  header.writeUInt32BE(fields.sequence ?? 7, 12);
  return Buffer.concat([header, body]);
}

/** A data_sm (SMPP 3.4 §4.7.1): addresses, esm_class, registered_delivery, data_coding, then TLVs only. */
function dataSm(fields: { source?: string; esmClass?: number; payload?: Uint8Array; tlvs?: [number, Uint8Array][]; cut?: number }): Buffer {
  const cstr = (s: string) => Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from([0])]);
  const tlv = ([tag, value]: [number, Uint8Array]) => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(tag, 0);
    head.writeUInt16BE(value.length, 2);
    return Buffer.concat([head, value]);
  };
  const tlvs: [number, Uint8Array][] = [...(fields.payload ? [[TLV.message_payload, fields.payload] as [number, Uint8Array]] : []), ...(fields.tlvs ?? [])];
  let body = Buffer.concat([cstr(''), Buffer.from([1, 1]), cstr(fields.source ?? '6281290417736'), Buffer.from([0, 0]), cstr('1708'), Buffer.from([fields.esmClass ?? 0, 0, 0]), ...tlvs.map(tlv)]);
  if (fields.cut) body = body.subarray(0, body.length - fields.cut);
  const header = Buffer.alloc(16);
  header.writeUInt32BE(16 + body.length, 0);
  header.writeUInt32BE(COMMAND.data_sm, 4);
  header.writeUInt32BE(0, 8);
  header.writeUInt32BE(11, 12);
  return Buffer.concat([header, body]);
}

describe('encodeSubmitSm', () => {
  const digits = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));
  it('writes the same octets as the smpp package for every reply the gateway sends', () => {
    fc.assert(
      fc.property(
        fc.record({
          source: fc.record({ ton: fc.constantFrom(0, 1, 3, 5), npi: fc.constantFrom(0, 1), addr: digits(3, 20) }),
          destination: fc.record({ ton: fc.constantFrom(0, 1), npi: fc.constantFrom(0, 1), addr: digits(8, 20) }),
          esmClass: fc.constantFrom(0, 0x40),
          dataCoding: fc.constantFrom(0, 8),
          registeredDelivery: fc.constantFrom(0, 1),
          shortMessage: fc.uint8Array({ minLength: 0, maxLength: 254 }),
        }),
        fc.integer({ min: 1, max: 0x7fffffff }),
        (sm, sequence) => {
          const theirs = new smpp.PDU('submit_sm', {
            sequence_number: sequence,
            source_addr_ton: sm.source.ton, source_addr_npi: sm.source.npi, source_addr: sm.source.addr,
            dest_addr_ton: sm.destination.ton, dest_addr_npi: sm.destination.npi, destination_addr: sm.destination.addr,
            esm_class: sm.esmClass, data_coding: sm.dataCoding, registered_delivery: sm.registeredDelivery,
            short_message: Buffer.from(sm.shortMessage),
          }).toBuffer();
          expect(encodeSubmitSm(sm, sequence).equals(theirs)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses an address or a short_message SMPP cannot carry', () => {
    const sm = { source: { ton: 3, npi: 0, addr: '1708' }, destination: { ton: 1, npi: 1, addr: '6281290417736' }, esmClass: 0, dataCoding: 0, registeredDelivery: 1, shortMessage: new Uint8Array(10) };
    expect(() => encodeSubmitSm({ ...sm, destination: { ton: 1, npi: 1, addr: '6'.repeat(21) } }, 1)).toThrow(/address/);
    expect(() => encodeSubmitSm({ ...sm, shortMessage: new Uint8Array(255) }, 1)).toThrow(/short_message/);
  });
});

describe('parseSubmitSmResp', () => {
  it("reads the SMSC's message id, an error without a body, and refuses a malformed one", () => {
    const ok = new smpp.PDU('submit_sm_resp', { sequence_number: 7, message_id: 'abc-123' }).toBuffer();
    expect(parseSubmitSmResp(ok)).toEqual({ ok: true, value: 'abc-123' });
    expect(parseSubmitSmResp(encodeResponse(COMMAND.generic_nack, STATUS.ESME_RTHROTTLED, 7))).toEqual({ ok: true, value: '' });
    const unterminated = Buffer.concat([ok.subarray(0, ok.length - 1)]);
    unterminated.writeUInt32BE(unterminated.length, 0);
    expect(parseSubmitSmResp(unterminated)).toMatchObject({ ok: false });
    const tooLong = Buffer.concat([ok.subarray(0, 16), Buffer.from('x'.repeat(70)), Buffer.from([0])]);
    expect(parseSubmitSmResp(tooLong)).toMatchObject({ ok: false, reason: expect.stringContaining('message_id') });
  });
});

describe('parseDataSm', () => {
  it('reads the addresses and the text from message_payload, in deliver_sm’s shape', () => {
    const parsed = parseDataSm(dataSm({ payload: Buffer.from('LAPOR lampu jalan mati', 'latin1') }));
    expect(parsed).toMatchObject({ ok: true, value: { sequence: 11, source: { ton: 1, npi: 1, addr: '6281290417736' }, destination: { addr: '1708' }, fromPayload: true } });
    if (parsed.ok) expect(Buffer.from(parsed.value.userData).toString('latin1')).toBe('LAPOR lampu jalan mati');
  });

  it('is classified like a deliver_sm: a receipt by its TLVs is never a citizen’s text', () => {
    const receipt = parseDataSm(dataSm({ esmClass: 0x04, tlvs: [[TLV.receipted_message_id, Buffer.from('abc\0')], [TLV.message_state, Buffer.from([2])]] }));
    expect(receipt.ok).toBe(true);
    if (receipt.ok) expect(classifyDeliver(receipt.value, 'sim').kind).toBe('receipt');
  });

  it('refuses a truncated body or a broken TLV with ESME_RINVMSGLEN, never throwing', () => {
    expect(parseDataSm(dataSm({ payload: Buffer.from('halo'), cut: 2 }))).toMatchObject({ ok: false, status: STATUS.ESME_RINVMSGLEN });
    const noAddresses = dataSm({}).subarray(0, 19);
    noAddresses.writeUInt32BE(19, 0);
    expect(parseDataSm(noAddresses)).toMatchObject({ ok: false, status: STATUS.ESME_RINVMSGLEN });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const pdu = Buffer.concat([dataSm({}).subarray(0, 16), Buffer.from(bytes)]);
      pdu.writeUInt32BE(pdu.length, 0);
      const result = parseDataSm(pdu);
      return typeof result.ok === 'boolean';
    }));
  });
});

describe('parseDeliverSm', () => {
  it('reads every field of a well-formed PDU', () => {
    const parsed = parseDeliverSm(deliverSm({ sequence: 42 }));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value).toMatchObject({ sequence: 42, source: { ton: 1, npi: 1, addr: '6281290417736' }, destination: { addr: '1708' }, dataCoding: 0 });
    expect(Buffer.from(parsed.value.userData).toString('latin1')).toBe('LAPOR jalan rusak');
  });

  it('takes message_payload when short_message is empty, and refuses both at once', () => {
    const payload = Buffer.from('a'.repeat(400));
    const ok = parseDeliverSm(deliverSm({ userData: Buffer.alloc(0), tlvs: [[TLV.message_payload, payload]] }));
    expect(ok.ok && ok.value.fromPayload && ok.value.userData.length).toBe(400);
    const both = parseDeliverSm(deliverSm({ tlvs: [[TLV.message_payload, payload]] }));
    expect(both).toMatchObject({ ok: false, status: STATUS.ESME_RINVMSGLEN });
  });

  it('refuses a truncated body, a lying sm_length and a broken TLV with a status, never throwing', () => {
    const good = deliverSm({});
    const fixLength = (b: Buffer) => {
      b.writeUInt32BE(b.length, 0);
      return b;
    };
    expect(parseDeliverSm(fixLength(Buffer.from(good.subarray(0, 30))))).toMatchObject({ ok: false, status: STATUS.ESME_RINVMSGLEN });
    const lying = Buffer.from(good);
    lying[lying.length - 'LAPOR jalan rusak'.length - 1] = 200; // sm_length says 200
    expect(parseDeliverSm(lying)).toMatchObject({ ok: false, reason: expect.stringMatching(/short_message/) });
    const badTlv = fixLength(Buffer.concat([good, Buffer.from([0x04, 0x24, 0x00])]));
    expect(parseDeliverSm(badTlv)).toMatchObject({ ok: false, reason: 'truncated TLV header' });
    expect(parseDeliverSm(good.subarray(0, 10))).toMatchObject({ ok: false, status: STATUS.ESME_RINVCMDLEN });
  });

  it('never throws on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, withHeader) => {
        const buffer = Buffer.from(bytes);
        if (withHeader && buffer.length >= 16) buffer.writeUInt32BE(buffer.length, 0);
        const parsed = parseDeliverSm(buffer);
        expect(typeof parsed.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});

describe('classifyDeliver', () => {
  const parse = (fields: Parameters<typeof deliverSm>[0]) => {
    const parsed = parseDeliverSm(deliverSm(fields));
    if (!parsed.ok) throw new Error(parsed.reason);
    return classifyDeliver(parsed.value, 'telkomsel');
  };

  it('tells a delivery receipt by esm_class, by TLV, or by its exact text — never a citizen’s words', () => {
    const text = 'id:abc123 sub:001 dlvrd:001 submit date:2612020830 done date:2612020831 stat:DELIVRD err:000 text:LAPOR!';
    expect(parse({ esmClass: 0x04, userData: Buffer.from(text) })).toMatchObject({ kind: 'receipt', messageId: 'abc123', state: 'delivered' });
    expect(parse({ userData: Buffer.alloc(0), tlvs: [[TLV.receipted_message_id, Buffer.from('xyz\0')], [TLV.message_state, Buffer.from([5])]] })).toMatchObject({
      kind: 'receipt',
      messageId: 'xyz',
      state: 'failed',
    });
    expect(parse({ userData: Buffer.from(text) })).toMatchObject({ kind: 'receipt' });
    expect(parse({ userData: Buffer.from('id saya 123, status laporan saya apa?') })).toMatchObject({ kind: 'message' });
  });

  it('finds concatenation in a UDH or in SAR TLVs, and refuses a UDH longer than the message', () => {
    const udh = Buffer.from([0x05, 0x00, 0x03, 0x2a, 0x02, 0x01]);
    expect(parse({ esmClass: 0x40, userData: Buffer.concat([udh, Buffer.from('bagian satu')]) })).toMatchObject({
      kind: 'part',
      concat: { ref: 0x2a, total: 2, seq: 1 },
      data: `0.${Buffer.from('bagian satu').toString('base64')}`,
    });
    const sar: [number, Uint8Array][] = [
      [TLV.sar_msg_ref_num, Buffer.from([0x01, 0x02])],
      [TLV.sar_total_segments, Buffer.from([3])],
      [TLV.sar_segment_seqnum, Buffer.from([2])],
    ];
    expect(parse({ tlvs: sar })).toMatchObject({ kind: 'part', concat: { ref: 0x0102, total: 3, seq: 2, refBits: 16 } });
    expect(parse({ esmClass: 0x40, userData: Buffer.from([0x30, 0x00, 0x03]) })).toMatchObject({ kind: 'rejected', status: STATUS.ESME_RINVMSGLEN });
  });

  it('decodes UCS-2 and keeps going on an odd byte, noting the problem', () => {
    const ucs2 = Buffer.from('Jalan 🚧 rusak', 'utf16le').swap16();
    expect(parse({ dataCoding: 8, userData: ucs2 })).toMatchObject({ kind: 'message', text: 'Jalan 🚧 rusak', problems: [] });
    const odd = parse({ dataCoding: 8, userData: Buffer.concat([ucs2, Buffer.from([0x41])]) });
    expect(odd).toMatchObject({ kind: 'message', text: 'Jalan 🚧 rusak' });
    expect(odd.kind === 'message' && odd.problems.length).toBeGreaterThan(0);
  });
});

describe('the InboundMessage of an SMS', () => {
  const base = { account: 'telkomsel', source: { ton: 1, npi: 1, addr: '6281290417736' }, destination: { ton: 0, npi: 0, addr: '1708' }, dedupWindowMs: 3_600_000 };

  it('writes the number as +62…, whatever TON the SMSC used', () => {
    expect(msisdnOf({ ton: 1, npi: 1, addr: '6281290417736' })).toBe('+6281290417736');
    expect(msisdnOf({ ton: 2, npi: 1, addr: '081290417736' })).toBe('+6281290417736');
  });

  it('gives a redelivery the same dedup key, and another text or number another one', () => {
    const at = new Date('2026-12-02T08:10:00Z');
    const a = toInboundMessage({ ...base, text: 'CEK 5723181068', receivedAt: at });
    const again = toInboundMessage({ ...base, text: 'CEK 5723181068', receivedAt: new Date(at.getTime() + 60_000) });
    expect(again.dedupKey).toBe(a.dedupKey);
    expect(toInboundMessage({ ...base, text: 'CEK 7153980803', receivedAt: at }).dedupKey).not.toBe(a.dedupKey);
    expect(toInboundMessage({ ...base, source: { ton: 1, npi: 1, addr: '6285711934480' }, text: 'CEK 5723181068', receivedAt: at }).dedupKey).not.toBe(a.dedupKey);
    // Across the window boundary the key changes, and the previous window's key is checked too.
    const next = toInboundMessage({ ...base, text: 'CEK 5723181068', receivedAt: new Date('2026-12-02T09:00:01Z') });
    expect(next.dedupKey).not.toBe(a.dedupKey);
    expect(previousDedupKey(next, base.dedupWindowMs)).toBe(a.dedupKey);
    expect(a.dedupKey).toMatch(/^sms_[A-Za-z0-9.=]+_[0-9a-z]+$/);
  });

  const gsm = (text: string) => `0.${Buffer.from(text, 'latin1').toString('base64')}`;

  it('joins parts in order and marks the gaps of an incomplete one', () => {
    expect(joinParts([{ seq: 2, data: gsm('dua ') }, { seq: 1, data: gsm('satu ') }, { seq: 3, data: gsm('tiga') }], 3)).toMatchObject({ text: 'satu dua tiga', incomplete: false });
    expect(joinParts([{ seq: 1, data: gsm('satu') }, { seq: 4, data: gsm('empat') }], 4)).toMatchObject({ text: 'satu […] empat', incomplete: true });
    expect(joinParts([{ seq: 2, data: gsm('dua') }], 3)).toMatchObject({ text: '[…] dua […]', incomplete: true });
  });

  it('decodes a surrogate pair or a GSM escape that a phone split across two parts', () => {
    const ucs2 = Buffer.from('Banjir 🌊 lagi', 'utf16le').swap16();
    const cut = 8; // inside the surrogate pair of the emoji
    const parts = [
      { seq: 1, data: `8.${ucs2.subarray(0, cut + 2).toString('base64')}` },
      { seq: 2, data: `8.${ucs2.subarray(cut + 2).toString('base64')}` },
    ];
    expect(joinParts(parts, 2)).toMatchObject({ text: 'Banjir 🌊 lagi', problems: [] });
    const euro = [
      { seq: 1, data: `0.${Buffer.from([0x41, 0x1b]).toString('base64')}` },
      { seq: 2, data: `0.${Buffer.from([0x65, 0x42]).toString('base64')}` },
    ];
    expect(joinParts(euro, 2)).toMatchObject({ text: 'A€B', problems: [] });
  });
});
