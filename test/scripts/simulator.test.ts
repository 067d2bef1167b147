import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import smpp, { type PDU, type Session } from 'smpp';
import { SMPP_STATUS, SmscSimulator } from '../../scripts/smsc/simulator.ts';
import { encodeText, encodedLength } from '../../scripts/smsc/text.ts';

/**
 * The SMSC simulator against a plain `smpp` ESME (not the gateway's client), so what is checked here is
 * the simulator alone: it speaks SMPP a third-party library understands, and its encoder agrees with
 * that library's decoder.
 */

const SYSTEM_ID = 'lapor';
const PASSWORD = 'secret';

interface Esme {
  session: Session;
  deliveries: PDU[];
  closed: Promise<void>;
  /** Resolves once `n` deliver_sm have arrived. */
  waitForDeliveries(n: number, timeoutMs?: number): Promise<PDU[]>;
  request(pdu: PDU, timeoutMs?: number): Promise<PDU>;
  close(): void;
}

const esmes: Esme[] = [];

async function connect(port: number): Promise<Esme> {
  const session = smpp.connect({ host: '127.0.0.1', port });
  session.on('error', () => undefined);
  const deliveries: PDU[] = [];
  const waiters: Array<() => void> = [];
  session.on('pdu', (pdu: PDU) => {
    if (pdu.command === 'deliver_sm') {
      deliveries.push(pdu);
      session.send(pdu.response());
      for (const w of waiters.splice(0)) w();
    } else if (pdu.command === 'enquire_link') {
      session.send(pdu.response());
    }
  });
  const closed = new Promise<void>((resolve) => session.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    session.on('connect', () => resolve());
    session.socket.once('error', reject);
  });
  const esme: Esme = {
    session,
    deliveries,
    closed,
    waitForDeliveries(n, timeoutMs = 3000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${deliveries.length}/${n} deliver_sm`)), timeoutMs);
        const check = () => {
          if (deliveries.length >= n) {
            clearTimeout(timer);
            resolve(deliveries.slice(0, n));
          } else waiters.push(check);
        };
        check();
      });
    },
    request(pdu, timeoutMs = 3000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${pdu.command}: no response`)), timeoutMs);
        session.send(pdu, (response) => {
          clearTimeout(timer);
          resolve(response);
        });
      });
    },
    close() {
      session.destroy();
    },
  };
  esmes.push(esme);
  return esme;
}

async function bound(port: number, mode = 'transceiver', systemId = SYSTEM_ID, password = PASSWORD): Promise<{ esme: Esme; status: number }> {
  const esme = await connect(port);
  const response = await esme.request(new smpp.PDU(`bind_${mode}`, { system_id: systemId, password }));
  return { esme, status: response.command_status };
}

interface DecodedMessage {
  udh?: Buffer[];
  message: string;
}

function messageOf(value: unknown): DecodedMessage {
  if (typeof value === 'object' && value !== null && 'message' in value && typeof value.message === 'string') {
    return value as DecodedMessage;
  }
  return { message: '' };
}

/** A minimal reassembly, independent of the simulator: key by reference, dedupe by part number, sort. */
function join(pdus: PDU[]): string[] {
  const groups = new Map<string, { total: number; parts: Map<number, string> }>();
  const order: string[] = [];
  pdus.forEach((pdu, i) => {
    const sm = messageOf(pdu.short_message);
    const payload = messageOf(pdu.message_payload);
    const text = sm.message || payload.message;
    let key = `single-${i}`;
    let total = 1;
    let seq = 1;
    for (const ie of sm.udh ?? []) {
      if (ie[0] === 0x00) [key, total, seq] = [`u8-${ie[2]}`, ie[3] ?? 0, ie[4] ?? 0];
      if (ie[0] === 0x08) [key, total, seq] = [`u16-${((ie[2] ?? 0) << 8) | (ie[3] ?? 0)}`, ie[4] ?? 0, ie[5] ?? 0];
    }
    if (typeof pdu.sar_msg_ref_num === 'number') {
      [key, total, seq] = [`sar-${pdu.sar_msg_ref_num}`, Number(pdu.sar_total_segments), Number(pdu.sar_segment_seqnum)];
    }
    let group = groups.get(key);
    if (!group) {
      group = { total, parts: new Map() };
      groups.set(key, group);
      order.push(key);
    }
    if (!group.parts.has(seq)) group.parts.set(seq, text);
  });
  return order.map((key) => {
    const group = groups.get(key);
    if (!group || group.parts.size !== group.total) throw new Error(`message ${key} incomplete`);
    return [...group.parts.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, t]) => t)
      .join('');
  });
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

let sim: SmscSimulator;
const logLines: string[] = [];

beforeEach(async () => {
  logLines.length = 0;
  sim = await SmscSimulator.start({ systemId: SYSTEM_ID, password: PASSWORD, receiptDelayMs: 5, log: (l) => logLines.push(l) });
});

afterEach(async () => {
  for (const esme of esmes.splice(0)) esme.close();
  await sim.close();
});

describe('binds', () => {
  it('accepts a transceiver bind and counts the session', async () => {
    const waiting = sim.waitForBind(2000);
    const { status } = await bound(sim.port);
    await waiting;
    expect(status).toBe(SMPP_STATUS.ESME_ROK);
    expect(sim.sessions).toBe(1);
  });

  it('refuses a wrong password with ESME_RINVPASWD and an unknown system_id with ESME_RBINDFAIL', async () => {
    expect((await bound(sim.port, 'transceiver', SYSTEM_ID, 'wrong')).status).toBe(SMPP_STATUS.ESME_RINVPASWD);
    expect((await bound(sim.port, 'receiver', 'someone', PASSWORD)).status).toBe(SMPP_STATUS.ESME_RBINDFAIL);
    expect(sim.sessions).toBe(0);
  });

  it('answers enquire_link and unbind, and refuses submit_sm before a bind', async () => {
    const esme = await connect(sim.port);
    const refused = await esme.request(new smpp.PDU('submit_sm', { destination_addr: '1', short_message: Buffer.from('x') }));
    expect(refused.command_status).toBe(SMPP_STATUS.ESME_RINVBNDSTS);
    await esme.request(new smpp.PDU('bind_transmitter', { system_id: SYSTEM_ID, password: PASSWORD }));
    expect((await esme.request(new smpp.PDU('enquire_link'))).command).toBe('enquire_link_resp');
    expect((await esme.request(new smpp.PDU('unbind'))).command).toBe('unbind_resp');
    await esme.closed;
    expect(sim.sessions).toBe(0);
  });

  it('dropBind destroys the ESME socket', async () => {
    const { esme } = await bound(sim.port);
    expect(sim.dropBind()).toBe(1);
    await esme.closed;
    await expect.poll(() => sim.sessions).toBe(0);
  });
});

describe('MO (deliver_sm)', () => {
  it('encodes GSM 03.38 itself, extension characters as escape pairs', () => {
    expect([...encodeText('€{}[]~^|\\\f', 'gsm')]).toEqual([
      0x1b, 0x65, 0x1b, 0x28, 0x1b, 0x29, 0x1b, 0x3c, 0x1b, 0x3e, 0x1b, 0x3d, 0x1b, 0x14, 0x1b, 0x40, 0x1b, 0x2f, 0x1b, 0x0a,
    ]);
    expect([...encodeText('@£$èÄ', 'gsm')]).toEqual([0x00, 0x01, 0x02, 0x04, 0x5b]);
    expect([...encodeText('a😀', 'ucs2')]).toEqual([0x00, 0x61, 0xd8, 0x3d, 0xde, 0x00]);
    expect(() => encodeText('ç', 'gsm')).toThrow(RangeError);
  });

  it('delivers a single GSM text with extension characters that the ESME decodes exactly', async () => {
    const { esme } = await bound(sim.port);
    const text = 'LAPOR jalan {rusak} [depan] SDN 3 ~ €5 ^|\\ @£$ ÄÖÑÜ';
    const result = await sim.sendMo({ from: '+6281234567890', text });
    expect(result.statuses).toEqual([0]);
    const [pdu] = await esme.waitForDeliveries(1);
    expect(pdu?.data_coding).toBe(0);
    expect(pdu?.source_addr).toBe('6281234567890');
    expect(pdu?.source_addr_ton).toBe(1);
    expect(pdu?.destination_addr).toBe('1708');
    expect(join(esme.deliveries)).toEqual([text]);
    // Numbers and text never reach the log.
    expect(logLines.join('\n')).not.toMatch(/6281234567890|rusak/);
  });

  it('sends Latin-1 when asked', async () => {
    const { esme } = await bound(sim.port);
    await sim.sendMo({ from: '+6281200000001', text: 'Café ç ñ', encoding: 'latin1' });
    const [pdu] = await esme.waitForDeliveries(1);
    expect(pdu?.data_coding).toBe(3);
    expect(join(esme.deliveries)).toEqual(['Café ç ñ']);
  });

  // An escape pair sits right at the 153-septet boundary, so a naive cut would split it.
  const longGsm = `${'a'.repeat(152)}€${'Jalan berlubang di depan SDN 3 {sudah} 3 bulan. '.repeat(6)}`;

  for (const split of ['udh8', 'udh16', 'sar'] as const) {
    for (const order of ['in', 'reverse', 'shuffle'] as const) {
      it(`splits long GSM text (${split}, ${order}, part 2 duplicated) and the ESME rejoins it exactly`, async () => {
        const { esme } = await bound(sim.port);
        const result = await sim.sendMo({ from: '+6281234567890', text: longGsm, split, order, duplicate: [2] });
        const parts = Math.max(...result.order);
        expect(parts).toBe(Math.ceil(encodedLength(longGsm, 'gsm') / (split === 'udh16' ? 152 : 153)));
        expect(result.statuses).toEqual(new Array(parts + 1).fill(0));
        if (order === 'in') expect(result.order.slice(0, 3)).toEqual([1, 2, 2]);
        if (order === 'reverse') expect(result.order[0]).toBe(parts);
        const pdus = await esme.waitForDeliveries(parts + 1);
        for (const pdu of pdus) {
          expect(pdu.esm_class).toBe(split === 'sar' ? 0 : 0x40);
          // No part ends in a lone escape: the library would then show a stray character.
          expect(messageOf(pdu.short_message).message).not.toMatch(/\x1b$/);
        }
        expect(join(pdus)).toEqual([longGsm]);
      });
    }
  }

  it('sends UCS-2 with emoji, never splitting a surrogate pair', async () => {
    const { esme } = await bound(sim.port);
    // The emoji straddles the 67-unit boundary.
    const text = `${'b'.repeat(66)}😀 Banjir di Jl. Merdeka 🌊🌊 tolong — ${'ê'.repeat(40)} 👍`;
    const result = await sim.sendMo({ from: '+6281234567890', text, order: 'shuffle' });
    expect(result.statuses.length).toBeGreaterThan(1);
    const pdus = await esme.waitForDeliveries(result.statuses.length);
    for (const pdu of pdus) {
      expect(pdu.data_coding).toBe(8);
      expect(messageOf(pdu.short_message).message).not.toMatch(LONE_SURROGATE);
    }
    expect(join(pdus)).toEqual([text]);
  });

  it('puts a long text into one message_payload PDU', async () => {
    const { esme } = await bound(sim.port);
    const result = await sim.sendMo({ from: '+6281234567890', text: longGsm, split: 'payload' });
    expect(result.statuses).toEqual([0]);
    const [pdu] = await esme.waitForDeliveries(1);
    expect(messageOf(pdu?.short_message).message).toBe('');
    expect(join(esme.deliveries)).toEqual([longGsm]);
  });

  it('refuses to send MO with no receiving bind', async () => {
    await bound(sim.port, 'transmitter');
    await expect(sim.sendMo({ from: '+6281234567890', text: 'x' })).rejects.toThrow(/no ESME/);
  });

  it('sendPdu returns the response, sendRaw writes bytes as they are', async () => {
    const { esme } = await bound(sim.port);
    const response = await sim.sendPdu('enquire_link');
    expect(response?.command).toBe('enquire_link_resp');
    const seen = new Promise<PDU>((resolve) => esme.session.once('enquire_link', resolve));
    const raw = Buffer.alloc(16);
    raw.writeUInt32BE(16, 0);
    raw.writeUInt32BE(0x15, 4);
    raw.writeUInt32BE(0, 8);
    raw.writeUInt32BE(4242, 12);
    sim.sendRaw(raw);
    expect((await seen).sequence_number).toBe(4242);
  });
});

describe('submit_sm (replies to citizens)', () => {
  const submit = (esme: Esme, fields: Record<string, unknown>) =>
    esme.request(new smpp.PDU('submit_sm', { source_addr: '1708', dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '6281234567890', ...fields }));

  it('records each submit with its raw bytes and joins a UDH multipart reply', async () => {
    const { esme } = await bound(sim.port);
    // The library encodes the text (GSM) and prefixes the UDH: an encoder independent of ours.
    const one = 'Laporan Anda diterima {nomor} LPR-2024-0001. ';
    const two = 'Terima kasih telah melapor ke LAPOR!';
    const r2 = await submit(esme, { data_coding: 0, short_message: { udh: Buffer.from([5, 0, 3, 9, 2, 2]), message: two } });
    const r1 = await submit(esme, { data_coding: 0, short_message: { udh: Buffer.from([5, 0, 3, 9, 2, 1]), message: one } });
    await submit(esme, { data_coding: 8, short_message: Buffer.from('Oke 👍', 'utf16le').swap16() });
    const records = await sim.waitForSubmits(3);
    expect(r1.command_status).toBe(0);
    expect(r2.message_id).toBe(records[0]?.messageId);
    expect(records[1]).toMatchObject({ esmClass: 0x40, dataCoding: 0, concat: { kind: 'udh8', ref: 9, total: 2, seq: 1 }, text: one, issues: [] });
    expect([...(records[1]?.shortMessage.subarray(0, 6) ?? [])]).toEqual([5, 0, 3, 9, 2, 1]);
    expect(records[1]?.shortMessage.includes(Buffer.from([0x1b, 0x28]))).toBe(true);
    expect(sim.replies()).toEqual([
      { index: 0, to: '+6281234567890', from: '1708', text: one + two, parts: 2, complete: true },
      { index: 2, to: '+6281234567890', from: '1708', text: 'Oke 👍', parts: 1, complete: true },
    ]);
  });

  it('joins SAR and UDH16 replies, and flags an encoding fault', async () => {
    const { esme } = await bound(sim.port);
    await submit(esme, { data_coding: 0, short_message: Buffer.from('Hal 2'), sar_msg_ref_num: 300, sar_total_segments: 2, sar_segment_seqnum: 2 });
    await submit(esme, { data_coding: 0, short_message: Buffer.from('Hal 1 '), sar_msg_ref_num: 300, sar_total_segments: 2, sar_segment_seqnum: 1 });
    await submit(esme, { data_coding: 0, esm_class: 0x40, short_message: Buffer.concat([Buffer.from([6, 8, 4, 1, 2, 1, 1]), Buffer.from([0x41, 0x1b])]) });
    await sim.waitForSubmits(3);
    expect(sim.replies().map((r) => r.text)).toEqual(['Hal 1 Hal 2', 'A']);
    expect(sim.submits[2]?.concat).toEqual({ kind: 'udh16', ref: 0x0102, total: 1, seq: 1 });
    expect(sim.submits[2]?.issues).toContain('trailing-escape');
  });

  it('sends a delivery receipt when registered_delivery asks for one, and only then', async () => {
    const { esme } = await bound(sim.port);
    await submit(esme, { data_coding: 0, short_message: Buffer.from('tanpa receipt'), registered_delivery: 0 });
    const response = await submit(esme, { data_coding: 0, short_message: Buffer.from('Laporan diterima'), registered_delivery: 1 });
    const [receipt] = await esme.waitForDeliveries(1);
    expect(receipt?.esm_class).toBe(0x04);
    expect(receipt?.receipted_message_id).toBe(response.message_id);
    expect(receipt?.message_state).toBe(2);
    expect(receipt?.source_addr).toBe('6281234567890');
    expect(messageOf(receipt?.short_message).message).toMatch(
      new RegExp(`^id:${String(response.message_id)} sub:001 dlvrd:001 submit date:\\d{10} done date:\\d{10} stat:DELIVRD err:000 text:Laporan diterima$`),
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(esme.deliveries).toHaveLength(1);
    await expect.poll(() => sim.receipts[0]?.status).toBe(0);
  });

  it('throttleNext answers ESME_RTHROTTLED, then accepts again', async () => {
    const { esme } = await bound(sim.port);
    sim.throttleNext(2);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await submit(esme, { data_coding: 0, short_message: Buffer.from(`m${i}`) })).command_status);
    expect(statuses).toEqual([SMPP_STATUS.ESME_RTHROTTLED, SMPP_STATUS.ESME_RTHROTTLED, 0]);
    expect(sim.submits.map((s) => s.messageId === null)).toEqual([true, true, false]);
    expect(sim.replies().map((r) => r.text)).toEqual(['m2']);
  });

  it('holdResponses withholds submit_sm_resp until released; respondDelay slows them', async () => {
    const { esme } = await bound(sim.port);
    sim.holdResponses(true);
    let answered = 0;
    const pending = [1, 2, 3].map((i) => submit(esme, { data_coding: 0, short_message: Buffer.from(`h${i}`) }).then((r) => (answered++, r)));
    await sim.waitForSubmits(3);
    await new Promise((r) => setTimeout(r, 150));
    expect(answered).toBe(0);
    sim.respondDelay(50);
    const released = Date.now();
    sim.holdResponses(false);
    const responses = await Promise.all(pending);
    expect(Date.now() - released).toBeGreaterThanOrEqual(40);
    expect(responses.map((r) => r.command_status)).toEqual([0, 0, 0]);
  });
});

describe('load', () => {
  it('floods 500 messages at max rate within its timeout', async () => {
    const { esme } = await bound(sim.port);
    const result = await sim.flood({ count: 500, mix: { single: 6, multipart: 2, ucs2: 2 }, window: 20, timeoutMs: 15_000 });
    expect(result.sent).toBe(500);
    expect(result.acked).toBe(500);
    expect(result.nacked).toBe(0);
    expect(result.pdus).toBeGreaterThan(500);
    expect(result.ackLatencyMs).toHaveLength(500);
    expect(result.elapsedMs).toBeLessThan(15_000);
    expect(esme.deliveries).toHaveLength(result.pdus);
    expect(join(esme.deliveries)).toHaveLength(500);
  });

  it('paces by rate and stops at its timeout', async () => {
    await bound(sim.port);
    const result = await sim.flood({ count: 1000, ratePerSec: 50, timeoutMs: 300 });
    expect(result.sent).toBeGreaterThan(5);
    expect(result.sent).toBeLessThan(30);
    expect(result.elapsedMs).toBeLessThan(1000);
  });
});
