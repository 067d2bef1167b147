import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEMPLATES } from '../../../config/templates.ts';
import { encodeText, udh8 } from '../../../scripts/smsc/text.ts';
import type { SmscSimulator } from '../../../scripts/smsc/simulator.ts';
import { eventually, type TestEnv } from '../../helpers/env.ts';
import { contactHashOf, numbers, smsGateway } from '../../helpers/sms.ts';

/**
 * Nothing acknowledged is lost, on SMS: whatever bytes a handset or an SMSC puts in a deliver_sm
 * (NUL padding in UCS-2, C1 controls in Latin-1, half a surrogate pair), the message is either
 * stored exactly once, sanitized, or refused with an SMPP error; a message with nothing visible in it
 * gets the "empty" help reply and files no report. Over real SMPP on loopback, into PostgreSQL.
 */

let sim: SmscSimulator;
let env: TestEnv;
let close: () => Promise<void>;
const newNumber = numbers('+62813');

beforeAll(async () => {
  ({ sim, env, close } = await smsGateway());
});
afterAll(async () => {
  await close?.();
});

const contactHash = (number: string) => contactHashOf(env, number);

async function reportsFrom(number: string) {
  const { rows } = await env.runtime.db.query<{ tracking_id: string; text: string }>(
    'SELECT tracking_id, text FROM reports WHERE contact_hash = $1 ORDER BY seq',
    [contactHash(number)],
  );
  return rows;
}

/** The one report from this number; waits for it, then makes sure no second one follows. */
async function oneReportFrom(number: string) {
  await eventually(async () => ((await reportsFrom(number)).length ? true : undefined), 10_000, `report from ${number}`);
  await new Promise((r) => setTimeout(r, 300));
  const rows = await reportsFrom(number);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

const repliesTo = (number: string) => sim.replies().filter((r) => r.to === number);
const replyTo = (number: string, matching: RegExp) =>
  eventually(async () => repliesTo(number).find((r) => r.complete && matching.test(r.text)), 10_000, `reply to ${number} matching ${matching}`);

/** A single deliver_sm with exactly these user-data bytes. */
function deliverBytes(from: string, dataCoding: number, bytes: Buffer) {
  return sim.sendPdu('deliver_sm', {
    source_addr_ton: 1,
    source_addr_npi: 1,
    source_addr: from.replace(/^\+/, ''),
    destination_addr: '1708',
    esm_class: 0,
    data_coding: dataCoding,
    short_message: bytes,
  });
}

const ucs2 = (text: string) => encodeText(text, 'ucs2');

describe('an SMS carrying bytes no later stage accepts is stored once, sanitized', () => {
  it('UCS-2 with NUL, C0 and C1 controls: acknowledged, one report, the controls gone', async () => {
    const from = newNumber();
    const text = 'LAPOR jalan\u0000 rusak\u0007 di depan\u0085SDN 3 🚧\u0000\u0000';
    const { statuses } = await sim.sendMo({ from, text, encoding: 'ucs2' });
    expect(statuses).toEqual([0]);
    const report = await oneReportFrom(from);
    expect(report.text).toBe('jalan rusak di depan\nSDN 3 🚧');
    expect((await replyTo(from, /diterima dengan nomor/)).text).toContain(report.tracking_id);
  });

  it('the same SMS delivered again is still one report', async () => {
    const from = newNumber();
    const text = 'Pungutan liar\u0000 di kantor kelurahan\u001b, mohon ditindak';
    await sim.sendMo({ from, text, encoding: 'ucs2' });
    await sim.sendMo({ from, text, encoding: 'ucs2' });
    expect((await oneReportFrom(from)).text).toBe('Pungutan liar di kantor kelurahan, mohon ditindak');
  });

  it('a lone surrogate (half an emoji) becomes U+FFFD', async () => {
    const from = newNumber();
    const bytes = Buffer.concat([ucs2('Sampah menumpuk '), Buffer.from([0xd8, 0x3d]), ucs2(' di pasar induk'), Buffer.from([0xde, 0x21])]);
    expect((await deliverBytes(from, 8, bytes))?.command_status).toBe(0);
    expect((await oneReportFrom(from)).text).toBe('Sampah menumpuk \ufffd di pasar induk\ufffd');
  });

  it('non-characters are removed', async () => {
    const from = newNumber();
    const bytes = Buffer.concat([ucs2('Air PDAM keruh'), Buffer.from([0xff, 0xfe, 0xfd, 0xd0]), ucs2(' sejak kemarin')]);
    expect((await deliverBytes(from, 8, bytes))?.command_status).toBe(0);
    expect((await oneReportFrom(from)).text).toBe('Air PDAM keruh sejak kemarin');
  });

  it('Latin-1 with C1 bytes (0x80–0x9F) and DEL', async () => {
    const from = newNumber();
    const bytes = Buffer.concat([Buffer.from('Lampu jalan mati', 'latin1'), Buffer.from([0x80, 0x9f, 0x7f, 0x00]), Buffer.from(' di gang 5', 'latin1')]);
    expect((await deliverBytes(from, 3, bytes))?.command_status).toBe(0);
    expect((await oneReportFrom(from)).text).toBe('Lampu jalan mati di gang 5');
  });

  it('a long UCS-2 SMS in parts, NUL-padded, joins into one sanitized report', async () => {
    const from = newNumber();
    const part = (seq: number, text: string) =>
      sim.sendPdu('deliver_sm', {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: from.slice(1),
        destination_addr: '1708',
        esm_class: 0x40,
        data_coding: 8,
        short_message: Buffer.concat([udh8(0x5a, 2, seq), ucs2(text)]),
      });
    expect((await part(2, 'bagian kedua 🚧\u0000\u0000\u0000'))?.command_status).toBe(0);
    expect((await part(1, 'Jembatan putus di desa\u0000, '))?.command_status).toBe(0);
    expect((await oneReportFrom(from)).text).toBe('Jembatan putus di desa, bagian kedua 🚧');
  });
});

describe('an SMS with nothing visible in it gets the "empty" help reply and files no report', () => {
  const EMPTY_REPLY = new RegExp(TEMPLATES.empty.id.slice(0, 24).replace(/[.!]/g, '\\$&'));

  it.each([
    ['zero-width characters only', '\u200b\u200c\u200d\u2060\ufeff'],
    ['NULs only (UCS-2 padding)', '\u0000\u0000\u0000\u0000'],
    ['controls and zero widths', '\u0001\u200b\u0085\u200b'],
    ['LAPOR and then only zero widths', 'LAPOR \u200b\u200b'],
  ])('%s', async (_name, text) => {
    const from = newNumber();
    const { statuses } = await sim.sendMo({ from, text, encoding: 'ucs2' });
    expect(statuses).toEqual([0]);
    const reply = await replyTo(from, EMPTY_REPLY);
    expect(reply.text).toBe(TEMPLATES.empty.id);
    await new Promise((r) => setTimeout(r, 300));
    expect(await reportsFrom(from)).toEqual([]);
    const { rows } = await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbound_receipts WHERE channel = 'sms' AND outcome = 'empty'`);
    expect(rows[0]!.n).toBeGreaterThan(0);
  });
});

describe('what can never be stored is refused, not acknowledged', () => {
  it('a deliver_sm without a source address → ESME_RINVSRCADR, no job', async () => {
    const jobs = async () => Object.values(await env.runtime.queues.inbound.getJobCounts()).reduce((a, b) => a + b, 0);
    const before = await jobs();
    const response = await sim.sendPdu('deliver_sm', {
      source_addr_ton: 0,
      source_addr_npi: 0,
      source_addr: '',
      destination_addr: '1708',
      esm_class: 0,
      data_coding: 0,
      short_message: Buffer.from('LAPOR jalan rusak', 'latin1'),
    });
    expect(response?.command_status).toBe(0x0a);
    expect(await jobs()).toBe(before);
  });

  it('left no dead letter behind: every acknowledged message above was stored', async () => {
    await eventually(async () => {
      const counts = await env.runtime.queues.inbound.getJobCounts('wait', 'active', 'delayed');
      return Object.values(counts).every((c) => c === 0) ? true : undefined;
    });
    expect(await env.runtime.queues.inbound.getFailedCount()).toBe(0);
  });
});
