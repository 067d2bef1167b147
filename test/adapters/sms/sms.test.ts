import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSmsAdapter } from '../../../adapters/sms/index.ts';
import { encodeText, udh8 } from '../../../scripts/smsc/text.ts';
import type { SmscSimulator } from '../../../scripts/smsc/simulator.ts';
import { eventually, type TestEnv } from '../../helpers/env.ts';
import { contactHashOf, numbers, smsGateway } from '../../helpers/sms.ts';

/**
 * SMS 1708 end to end over real SMPP on loopback: the SMSC simulator delivers what a citizen texts,
 * the gateway binds to it as the ESME, files reports in PostgreSQL and answers by submit_sm.
 */

let sim: SmscSimulator;
let env: TestEnv;
let close: () => Promise<void>;
const newNumber = numbers('+62812');

beforeAll(async () => {
  ({ sim, env, close } = await smsGateway({ LAPOR_SMPP_REQUEST_TIMEOUT_MS: '2000', LAPOR_SMPP_QUERY_DEDUP_SECONDS: '1' }));
});
afterAll(async () => {
  await close?.();
});

const contactHash = (number: string) => contactHashOf(env, number);

async function reportsFrom(number: string) {
  const { rows } = await env.runtime.db.query<{ tracking_id: string; text: string; incomplete: boolean; rahasia: boolean }>(
    `SELECT tracking_id, text, incomplete, rahasia FROM reports WHERE contact_hash = $1 ORDER BY seq`,
    [contactHash(number)],
  );
  return rows;
}

async function oneReportFrom(number: string) {
  return eventually(async () => {
    const rows = await reportsFrom(number);
    return rows.length ? rows : undefined;
  }, 10_000, `report from ${number}`).then((rows) => {
    expect(rows).toHaveLength(1);
    return rows[0]!;
  });
}

const repliesTo = (number: string) => sim.replies().filter((r) => r.to === number);
/** A whole reply: a multipart one matches on its first part long before its last has arrived. */
async function replyTo(number: string, matching: RegExp) {
  return eventually(async () => repliesTo(number).find((r) => r.complete && matching.test(r.text)), 10_000, `reply to ${number} matching ${matching}`);
}

describe('a citizen texts 1708', () => {
  it('files a report, answers with its tracking ID, and answers CEK with its status', async () => {
    const from = newNumber();
    const { statuses } = await sim.sendMo({ from, text: 'LAPOR jalan rusak di depan SDN 3' });
    expect(statuses).toEqual([0]);
    const report = await oneReportFrom(from);
    expect(report.text).toBe('jalan rusak di depan SDN 3');
    const received = await replyTo(from, /diterima dengan nomor/);
    expect(received.text).toContain(report.tracking_id);
    expect(received.from).toBe('1708');

    await sim.sendMo({ from, text: `CEK ${report.tracking_id}` });
    const status = await replyTo(from, /Status laporan/);
    expect(status.text).toMatch(new RegExp(`${report.tracking_id}: (belum terverifikasi|tertunda)`));
  });

  it('takes a data_sm like a deliver_sm: data_sm_resp once stored, one report, the reply by SMS', async () => {
    const from = newNumber();
    const response = await sim.sendPdu('data_sm', {
      source_addr_ton: 1,
      source_addr_npi: 1,
      source_addr: from.slice(1),
      dest_addr_ton: 0,
      dest_addr_npi: 0,
      destination_addr: '1708',
      esm_class: 0,
      registered_delivery: 0,
      data_coding: 0,
      message_payload: Buffer.from('LAPOR saluran air tersumbat di Jalan Mawar', 'latin1'),
    });
    expect(response).toMatchObject({ command: 'data_sm_resp', command_status: 0 });
    const report = await oneReportFrom(from);
    expect(report.text).toBe('saluran air tersumbat di Jalan Mawar');
    expect((await replyTo(from, /diterima dengan nomor/)).text).toContain(report.tracking_id);
  });

  it('answers a repeated CEK again once the short query window passed, but files a repeated report once', async () => {
    const from = newNumber();
    await sim.sendMo({ from, text: 'LAPOR lampu lalu lintas di perempatan Cikutra mati total' });
    const report = await oneReportFrom(from);
    const statusReplies = () => repliesTo(from).filter((r) => /Status laporan/.test(r.text)).length;
    const cek = `CEK ${report.tracking_id}`;
    // A copy right after the first is a redelivery, whatever second it lands in: one answer.
    await sim.sendMo({ from, text: cek });
    await sim.sendMo({ from, text: cek });
    await eventually(async () => (statusReplies() === 1 ? true : undefined));
    // Asked again later (no answer came, or the citizen wants to check): answered again.
    await new Promise((r) => setTimeout(r, 2_200));
    await sim.sendMo({ from, text: cek });
    await eventually(async () => (statusReplies() === 2 ? true : undefined), 10_000, 'a second status reply');
    // The report itself, sent again as late, is still the same report.
    await sim.sendMo({ from, text: 'LAPOR lampu lalu lintas di perempatan Cikutra mati total' });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await reportsFrom(from)).toHaveLength(1);
    expect(statusReplies()).toBe(2);
  });

  it('joins a long SMS sent in parts, reversed and with a part twice, into one report', async () => {
    const from = newNumber();
    const text = `${'Sudah tiga bulan jalan di Desa Sukamaju berlubang besar, '.repeat(6)}mohon segera diperbaiki.`;
    const { statuses, order } = await sim.sendMo({ from, text, split: 'udh8', order: 'reverse', duplicate: [2] });
    expect(order.length).toBeGreaterThan(3);
    expect(statuses.every((s) => s === 0)).toBe(true);
    const report = await oneReportFrom(from);
    expect(report.text).toBe(text);
    expect(report.incomplete).toBe(false);
  });

  it.each(['udh16', 'sar'] as const)('joins %s parts sent shuffled', async (split) => {
    const from = newNumber();
    const text = `Laporan ${split}: ${'puskesmas kekurangan obat dan dokter jaga tidak datang, '.repeat(5)}`.trim();
    await sim.sendMo({ from, text, split, order: 'shuffle' });
    expect((await oneReportFrom(from)).text).toBe(text);
  });

  it('reads UCS-2 with emoji, message_payload, and the GSM extension table exactly', async () => {
    const cases = [
      { text: 'Lampu jalan mati 🚧🌑 sudah 2 minggu, warga takut keluar malam', encoding: 'ucs2' as const },
      { text: `Saluran air {tersumbat} [RT 04] ~ biaya €5? ${'x'.repeat(10)}`, encoding: 'gsm' as const },
      { text: `Payload: ${'pungutan liar di kantor kelurahan, '.repeat(8)}`, encoding: 'gsm' as const, split: 'payload' as const },
    ];
    for (const c of cases) {
      const from = newNumber();
      await sim.sendMo({ from, text: c.text, encoding: c.encoding, ...(c.split ? { split: c.split } : {}) });
      // The keyword parser trims the report text.
      expect((await oneReportFrom(from)).text).toBe(c.text.trim());
    }
  });

  it('files the parts received as ONE report marked incomplete when the rest never comes', async () => {
    const from = newNumber();
    const digits = from.slice(1);
    const part = (seq: number, text: string) =>
      sim.sendPdu('deliver_sm', {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: digits,
        destination_addr: '1708',
        esm_class: 0x40,
        data_coding: 0,
        short_message: Buffer.concat([udh8(0x77, 3, seq), encodeText(text, 'gsm')]),
      });
    expect((await part(1, 'Bagian pertama laporan tentang jembatan putus. '))?.command_status).toBe(0);
    expect((await part(3, 'Bagian ketiga: mohon segera ditangani.'))?.command_status).toBe(0);
    await new Promise((r) => setTimeout(r, 1_100));
    const sms = env.runtime.adapters.get('sms') as unknown as { sweep(now?: Date): Promise<number> };
    await sms.sweep(new Date(Date.now() + 1_000));
    const report = await oneReportFrom(from);
    expect(report.incomplete).toBe(true);
    expect(report.text).toBe('Bagian pertama laporan tentang jembatan putus. […] Bagian ketiga: mohon segera ditangani.');
  });
});

describe('replies', () => {
  it('records the delivery receipt of every reply on its outbound message', async () => {
    const from = newNumber();
    await sim.sendMo({ from, text: 'Antrean di kantor samsat kota sangat panjang dan petugas sering tidak ada.' });
    const report = await oneReportFrom(from);
    const status = await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ status: string; transport_ids: string[] }>(
        `SELECT m.status, m.transport_ids FROM messages m WHERE m.notify_key = $1`,
        [`n_${report.tracking_id}_received`],
      );
      return rows[0]?.status === 'delivered' ? rows[0] : undefined;
    }, 10_000, 'receipt');
    expect(status.transport_ids.length).toBeGreaterThan(0);
    for (const id of status.transport_ids) expect(sim.receipts.map((r) => r.messageId)).toContain(id);
  });

  it('records receipts that overtake the commit marking their replies sent (a batch of replies)', async () => {
    // Thirty citizens at once: their replies go out as one notify batch, and the simulator's
    // receipts (5 ms after each submit_sm_resp) arrive before that batch's marks are committed.
    const senders = Array.from({ length: 30 }, () => newNumber());
    await Promise.all(senders.map((from, i) => sim.sendMo({ from, text: `Lampu jalan nomor ${i} di Jalan Cempaka padam sejak minggu lalu, gelap sekali.` })));
    const statuses = await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ status: string }>(
        `SELECT m.status FROM messages m JOIN reports r ON r.seq = m.report_seq
         WHERE r.contact_hash = ANY($1) AND m.direction = 'out' AND m.kind = 'received'`,
        [senders.map(contactHash)],
      );
      return rows.length === senders.length && rows.every((r) => r.status === 'delivered') ? rows : undefined;
    }, 15_000, 'every reply delivered');
    expect(statuses).toHaveLength(30);
  });

  it('backs off and retries when the SMSC throttles, and still delivers the reply', async () => {
    const throttledBefore = sim.submits.filter((s) => s.status === 0x58).length;
    sim.throttleNext(3);
    const from = newNumber();
    await sim.sendMo({ from, text: 'BANTUAN' });
    const help = await replyTo(from, /1708/);
    expect(help.text).toContain('CEK');
    // The three refusals may have fallen on another test's late reply; either way each was retried.
    expect(sim.submits.filter((s) => s.status === 0x58).length - throttledBefore).toBe(3);
  });

  it('sends replies as GSM-7 within three segments', async () => {
    const from = newNumber();
    await sim.sendMo({ from, text: 'INFO' });
    await replyTo(from, /1708/);
    const submits = sim.submits.filter((s) => s.to === from && s.status === 0);
    expect(submits.length).toBeGreaterThan(0);
    expect(submits.length).toBeLessThanOrEqual(3);
    for (const s of submits) expect(s.dataCoding).toBe(0);
    for (const s of submits) expect(s.issues).toEqual([]);
  });
});

describe('permanent send errors', () => {
  it('records a refused destination on the message and does not retry it', async () => {
    const invalidDestination = 0x0b; // ESME_RINVDSTADR
    const failedCount = async () =>
      (await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE status = 'failed' AND error LIKE 'invalid_recipient%'`)).rows[0]!.n;
    const before = await failedCount();
    sim.throttleNext(1, invalidDestination);
    await sim.sendMo({ from: newNumber(), text: 'INFO' });
    // The refusal falls on the next submit, which may be another test's late notification.
    const refused = await eventually(async () => sim.submits.find((s) => s.status === invalidDestination), 10_000, 'refused submit');
    await eventually(async () => ((await failedCount()) === before + 1 ? true : undefined), 10_000, 'failed message');
    await new Promise((r) => setTimeout(r, 300));
    const retried = sim.submits.filter((s) => s.index > refused.index && s.to === refused.to && s.text === refused.text);
    expect(retried).toEqual([]);
  });

  it('refuses a number SMPP cannot carry (over 20 digits) without sending anything', async () => {
    const sms = env.runtime.adapters.get('sms')!;
    const message = { key: 'n_long_number', text: 'Laporan Anda diterima.', to: `+62${'8'.repeat(19)}`, replyContext: {}, kind: undefined, privacy: 'public' as const, lang: 'id' as const, trackingId: undefined };
    await expect(sms.send(message)).rejects.toMatchObject({ code: 'invalid_recipient', retryable: false });
    expect(sim.submits.filter((s) => s.to.includes('8'.repeat(19)))).toEqual([]);
  });
});

describe('one live bind per SMSC account', () => {
  it('lets a second process stand by, and take over when the holder stops', async () => {
    const second = createSmsAdapter({
      settings: env.config.smpp,
      redis: env.runtime.producer,
      prefix: env.config.queue.prefix,
      log: env.runtime.log,
      intake: env.runtime.queues.sink,
      deliveries: { record: async () => 'unknown' },
      hashAddress: (a) => a,
      counters: { shielded: () => undefined, malformed: () => undefined },
    });
    await second.start();
    try {
      await new Promise((r) => setTimeout(r, 500));
      expect(second.links()).toEqual([{ link: 'sim', state: 'standby', ok: true }]);
      expect(sim.sessions).toBe(1);
      const first = env.runtime.adapters.get('sms')!;
      await first.stop!();
      await eventually(async () => (second.links()[0]?.state === 'bound' ? true : undefined), 10_000, 'takeover');
      expect(sim.sessions).toBe(1);
      await second.stop();
      await first.start!();
      await eventually(async () => (first.links!()[0]?.state === 'bound' ? true : undefined), 10_000, 'bound again');
    } finally {
      await second.stop();
    }
  });
});

describe('faults', () => {
  it('loses and duplicates nothing when the SMSC drops the bind with messages outstanding and redelivers them', async () => {
    const from = Array.from({ length: 40 }, () => newNumber());
    const texts = from.map((_, i) => `Laporan nomor ${i}: penerangan jalan umum di gang ${i} mati total.`);
    const first = Promise.allSettled(from.map((f, i) => sim.sendMo({ from: f, text: texts[i]!, timeoutMs: 3_000 })));
    await new Promise((r) => setTimeout(r, 5));
    expect(sim.dropBind()).toBeGreaterThan(0);
    const outcome = await first;
    await sim.waitForBind(10_000);
    // The SMSC redelivers everything it has no deliver_sm_resp for — here, to be strict, everything.
    const again = await Promise.all(from.map((f, i) => sim.sendMo({ from: f, text: texts[i]!, timeoutMs: 5_000 })));
    for (const r of again) expect(r.statuses).toEqual([0]);
    for (let i = 0; i < from.length; i++) {
      const reports = await eventually(async () => {
        const rows = await reportsFrom(from[i]!);
        return rows.length ? rows : undefined;
      }, 10_000, `report ${i}`);
      expect(reports, `${outcome[i]?.status}`).toHaveLength(1);
    }
  });

  it('stays up and answers malformed PDUs as SMPP 3.4 says', async () => {
    const header = (length: number, id: number, seq: number) => {
      const b = Buffer.alloc(16);
      b.writeUInt32BE(length, 0);
      b.writeUInt32BE(id, 4);
      b.writeUInt32BE(0, 8);
      b.writeUInt32BE(seq, 12);
      return b;
    };
    // Unknown command_id: generic_nack, and the session goes on.
    sim.sendRaw(header(16, 0x00000077, 9001));
    // A deliver_sm whose body is cut short: deliver_sm_resp with an error, session goes on.
    sim.sendRaw(Buffer.concat([header(20, 0x00000005, 9002), Buffer.from([0, 1, 1, 0x36])]));
    await new Promise((r) => setTimeout(r, 200));
    const from = newNumber();
    await sim.sendMo({ from, text: 'Setelah PDU rusak: sampah menumpuk di pasar induk.' });
    await oneReportFrom(from);
    expect(env.logs.some((l) => l.includes('malformed deliver_sm refused'))).toBe(true);

    // A command_length smaller than a header: framing is lost, so the bind is dropped and renewed.
    sim.sendRaw(header(8, 0x00000005, 9003));
    await eventually(async () => (env.logs.some((l) => l.includes('impossible length')) ? true : undefined));
    await sim.waitForBind(10_000);
    const after = newNumber();
    await eventually(async () => {
      try {
        const { statuses } = await sim.sendMo({ from: after, text: 'Setelah bind baru: trotoar rusak parah.', timeoutMs: 1_000 });
        return statuses[0] === 0 ? true : undefined;
      } catch {
        return undefined;
      }
    });
    await oneReportFrom(after);
  });

  it('never logs a citizen’s number or text', () => {
    const all = env.logs.join('\n');
    expect(all).not.toMatch(/62812\d{7}/);
    expect(all).not.toContain('jalan rusak di depan SDN 3');
    expect(all).not.toContain('secret');
  });
});
