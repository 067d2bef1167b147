import { randomBytes } from 'node:crypto';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InboundMessageSchema, type InboundMessageInput } from '../../src/core/inbound.ts';
import { listDeadLetters } from '../../src/queue/dlq.ts';
import type { InboundJob } from '../../src/queue/jobs.ts';
import { toInboundMessage } from '../../adapters/sms/inbound.ts';
import { createIntakeProcessor } from '../../workers/intake.ts';
import { createNotifyProcessor } from '../../workers/notify.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

/**
 * The batched intake path (issue #15): messages that arrive together travel as one job, are filed in
 * one statement, and their replies are handed to notify in one job — and each message still counts
 * exactly once, whatever is replayed, raced or poisoned. Only the intake worker runs: no SMS adapter,
 * so replies stay queued where the test reads them.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv({ workers: ['intake'] });
});
afterAll(async () => {
  await env?.close();
});

const newNumber = () => `+62813${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;

function sms(text: string, from = newNumber(), id = randomBytes(6).toString('hex')): InboundMessageInput {
  return {
    channel: 'sms',
    account: 'telkomsel',
    externalId: `b${id}`,
    dedupKey: `sms_b${id}`,
    sender: { address: from },
    text,
    receivedAt: new Date().toISOString(),
    replyContext: { shortCode: '1708' },
  };
}

const complaint = (i: number) => `Keluhan ${i}: lampu jalan di gang Mawar nomor ${i} mati sejak minggu lalu, warga takut keluar malam.`;

/** The entry of an inbound job for one message, sealed as the queue seals it. */
function entry(input: InboundMessageInput): InboundJob {
  const message = InboundMessageSchema.parse(input);
  return { channel: message.channel, dedupKey: message.dedupKey, sealed: env.runtime.keys.seal('queue', message) };
}

const batchJob = (entries: unknown[], id = `b_${randomBytes(6).toString('hex')}`) => ({ id, name: 'batch', data: { messages: entries } }) as unknown as Job;

async function filedCounts(inputs: readonly InboundMessageInput[]) {
  const { rows } = await env.runtime.db.query<{ external_id: string; reports: number; received: number; queued: number }>(
    `SELECT i.external_id,
            (SELECT count(*)::int FROM reports r WHERE r.seq = i.report_seq) AS reports,
            (SELECT count(*)::int FROM messages m WHERE m.report_seq = i.report_seq AND m.direction = 'in') AS received,
            (SELECT count(*)::int FROM messages m WHERE m.report_seq = i.report_seq AND m.direction = 'out' AND m.status = 'queued') AS queued
     FROM inbound_receipts i WHERE i.channel = 'sms' AND i.external_id = ANY($1)`,
    [inputs.map((m) => m.externalId)],
  );
  return rows;
}

async function notifyBatchesFor(ids: readonly string[]) {
  const jobs = await env.runtime.queues.notify.get('sms')!.getJobs(['waiting', 'delayed', 'prioritized']);
  return jobs.filter((j) => j.name === 'batch' && (j.data as { ids: string[] }).ids.some((id) => ids.includes(id)));
}

async function outboundIds(inputs: readonly InboundMessageInput[]): Promise<string[]> {
  const { rows } = await env.runtime.db.query<{ id: string }>(
    `SELECT m.id::text FROM inbound_receipts i JOIN messages m ON m.report_seq = i.report_seq AND m.direction = 'out'
     WHERE i.channel = 'sms' AND i.external_id = ANY($1)`,
    [inputs.map((m) => m.externalId)],
  );
  return rows.map((r) => r.id);
}

describe('messages that arrive together', () => {
  it('are stored as one job, filed once each, and their replies handed to notify in one job', async () => {
    const inputs = Array.from({ length: 20 }, (_, i) => sms(complaint(i)));
    // As an SMPP socket read or a burst of POSTs delivers them: all within one turn of the event loop.
    const results = await Promise.all(inputs.map((m) => env.runtime.queues.enqueueInbound(m, 60_000)));
    expect(results).toEqual(inputs.map(() => ({ status: 'queued' })));

    const counts = await eventually(async () => {
      const rows = await filedCounts(inputs);
      return rows.length === inputs.length ? rows : undefined;
    });
    expect(counts.every((r) => r.reports === 1 && r.received === 1 && r.queued === 1)).toBe(true);
    // The job completes a moment after its commit (the notify job is added in between).
    const carrying = await eventually(async () => {
      const completed = await env.runtime.queues.inbound.getJobs(['completed']);
      const found = completed.filter((j) => j.name === 'batch' && (j.data as { messages: InboundJob[] }).messages.some((e) => e.dedupKey === inputs[0]!.dedupKey));
      return found.length ? found : undefined;
    });
    expect(carrying).toHaveLength(1);
    expect((carrying[0]!.data as { messages: unknown[] }).messages).toHaveLength(20);

    const ids = await outboundIds(inputs);
    const batches = await notifyBatchesFor(ids);
    expect(batches).toHaveLength(1);
    expect([...(batches[0]!.data as { ids: string[] }).ids].sort()).toEqual([...ids].sort());
  });

  it('from the web are answered on the status page in the commit that files them: no notify job', async () => {
    const inputs: InboundMessageInput[] = Array.from({ length: 5 }, (_, i) => {
      const id = randomBytes(6).toString('hex');
      return { channel: 'web', account: 'web', externalId: `w${id}`, dedupKey: `web_w${id}`, text: complaint(50 + i), receivedAt: new Date().toISOString(), form: { anonim: false, rahasia: false } };
    });
    const outcome = await createIntakeProcessor(env.runtime)(batchJob(inputs.map(entry)));
    expect(outcome).toMatch(/new_report/);
    const { rows } = await env.runtime.db.query<{ status: string; kind: string }>(
      `SELECT m.status, m.kind FROM inbound_receipts i JOIN messages m ON m.report_seq = i.report_seq AND m.direction = 'out'
       WHERE i.channel = 'web' AND i.external_id = ANY($1)`,
      [inputs.map((m) => m.externalId)],
    );
    expect(rows).toEqual(inputs.map(() => ({ status: 'stored', kind: 'received' })));
    const webJobs = await env.runtime.queues.notify.get('web')!.getJobs(['waiting', 'delayed', 'prioritized', 'active', 'completed']);
    expect(webJobs).toEqual([]);
  });

  it('are stored once when the same message comes twice in one flush, and a redelivery within the window is a duplicate', async () => {
    const message = sms(complaint(100));
    const results = await Promise.all([message, message, sms(complaint(101))].map((m) => env.runtime.queues.enqueueInbound(m, 60_000)));
    expect(results.map((r) => r.status)).toEqual(['queued', 'duplicate', 'queued']);
    expect(await env.runtime.queues.enqueueInbound(message, 60_000)).toEqual({ status: 'duplicate' });
    await eventually(async () => ((await filedCounts([message])).length === 1 ? true : undefined));
  });
});

describe('a batch job', () => {
  it('processed three times at once, files each message once and writes each reply once', async () => {
    const inputs = Array.from({ length: 10 }, (_, i) => sms(complaint(200 + i)));
    const job = batchJob(inputs.map(entry));
    const process = createIntakeProcessor(env.runtime);
    const outcomes = await Promise.all([process(job), process(job), process(job)]);
    // Every message is new to exactly one of the three runs, and a replay to the others.
    expect(outcomes.join(' ')).toContain('new_report');
    const counts = await filedCounts(inputs);
    expect(counts).toHaveLength(10);
    expect(counts.every((r) => r.reports === 1 && r.received === 1 && r.queued === 1)).toBe(true);
  });

  it('carrying a redelivery of messages filed by another batch files nothing new and hands their unsent replies over again', async () => {
    const first = Array.from({ length: 4 }, (_, i) => sms(complaint(300 + i)));
    const process = createIntakeProcessor(env.runtime);
    await process(batchJob(first.map(entry)));
    const fresh = sms(complaint(304));
    const outcome = await process(batchJob([...first, fresh].map(entry), 'b_redelivery'));
    expect(outcome).toMatch(/new_report/);
    expect(outcome).toMatch(/replay:new_report×4/);
    const counts = await filedCounts([...first, fresh]);
    expect(counts.every((r) => r.reports === 1 && r.queued === 1)).toBe(true);
    // The replies of the replayed messages are still queued (no SMS adapter here): offered again,
    // under this job's id; notify sends each row once, whichever job gets to it first.
    const again = await env.runtime.queues.notify.get('sms')!.getJob('nb_b_redelivery_sms');
    expect((again?.data as { ids: string[] }).ids).toEqual(expect.arrayContaining(await outboundIds(first)));
  });

  it('sets a poisonous message apart as a dead letter of its own, with its reason, and files its neighbours', async () => {
    const taken = sms(complaint(400));
    const process = createIntakeProcessor(env.runtime);
    await process(batchJob([entry(taken)]));
    const { rows } = await env.runtime.db.query<{ tracking_id: string }>(
      `SELECT r.tracking_id FROM inbound_receipts i JOIN reports r ON r.seq = i.report_seq WHERE i.external_id = $1`,
      [taken.externalId],
    );
    // A form claiming another report's tracking ID: PostgreSQL refuses it (a unique key).
    const id = randomBytes(6).toString('hex');
    const collides: InboundMessageInput = {
      channel: 'web',
      account: 'web',
      externalId: `w${id}`,
      dedupKey: `web_w${id}`,
      text: 'Trotoar di depan pasar rusak parah, pejalan kaki terpaksa turun ke jalan raya.',
      receivedAt: new Date().toISOString(),
      form: { trackingId: rows[0]!.tracking_id, anonim: false, rahasia: false },
    };
    const neighbours = Array.from({ length: 6 }, (_, i) => sms(complaint(410 + i)));
    const unopenable = { channel: 'sms', dedupKey: 'sms_unopenable1', sealed: 'v1.AAAA.BBBB.CCCC' };
    const job = batchJob([...neighbours.slice(0, 3).map(entry), unopenable, entry(collides), ...neighbours.slice(3).map(entry)]);

    const outcome = await process(job);
    expect(outcome).toBe('new_report×6');
    expect((await filedCounts(neighbours)).every((r) => r.reports === 1)).toBe(true);
    const letters = await eventually(async () => {
      const all = await listDeadLetters(env.runtime.queues, 'inbound');
      const mine = all.filter((l) => l.id === 'sms_unopenable1' || l.id === `web_w${id}`);
      return mine.length === 2 ? mine : undefined;
    });
    expect(letters.find((l) => l.id === 'sms_unopenable1')?.reason).toMatch(/cannot be opened/);
    expect(letters.find((l) => l.id === `web_w${id}`)?.reason).toMatch(/SQLSTATE 23505/);
    expect(letters.every((l) => l.attempts === 1)).toBe(true);
    const stranger = await env.runtime.db.query(`SELECT 1 FROM inbound_receipts WHERE external_id = $1`, [`w${id}`]);
    expect(stranger.rowCount).toBe(0);
    expect(env.logs.join('\n')).not.toContain('Trotoar di depan pasar');
  });

  it('knows an SMS redelivered across its dedup window (a new id, no Redis key) as the one filed before', async () => {
    // An SMS has no id of its own: its id is a hash of what it says within a window (adapters/sms/
    // inbound.ts). Stored a second before a window ends, its dedup key never set (a crash before the
    // ack), and redelivered two seconds later: another id, which only the receipt of the first can catch.
    const windowMs = 60 * 60_000;
    const boundary = Math.floor(Date.now() / windowMs) * windowMs;
    const copy = (at: number) =>
      toInboundMessage({
        account: 'sim',
        source: { ton: 1, npi: 1, addr: '6281377700001' },
        destination: { ton: 0, npi: 1, addr: '1708' },
        text: 'Sampah di TPS Jalan Melati tidak diangkut dua minggu, bau menyengat sampai ke sekolah.',
        receivedAt: new Date(at),
        dedupWindowMs: windowMs,
      });
    const [before, after] = [copy(boundary - 1_000), copy(boundary + 1_000)];
    expect(after.externalId).not.toBe(before.externalId);
    const process = createIntakeProcessor(env.runtime);
    // The later copy first (the earlier one's job retried after a crash), then the earlier one.
    expect(await process(batchJob([entry(after)]))).toBe('new_report');
    expect(await process(batchJob([entry(before)]))).toBe('replay:new_report');
    const { rows } = await env.runtime.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM reports WHERE text = 'Sampah di TPS Jalan Melati tidak diangkut dua minggu, bau menyengat sampai ke sekolah.'`,
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('files the same words sent again after the dedup window as a report of their own, even in the next window', async () => {
    const windowMs = 60 * 60_000;
    const boundary = Math.floor(Date.now() / windowMs) * windowMs;
    const text = 'Pelayanan KTP di kecamatan lambat sekali, sudah tiga bulan belum jadi juga.';
    const sent = (at: number) =>
      toInboundMessage({ account: 'sim', source: { ton: 1, npi: 1, addr: '6281377700002' }, destination: { ton: 0, npi: 1, addr: '1708' }, text, receivedAt: new Date(at), dedupWindowMs: windowMs });
    // Seventy minutes apart, in adjacent windows: the citizen asking again, not the SMSC redelivering.
    const process = createIntakeProcessor(env.runtime);
    expect(await process(batchJob([entry(sent(boundary - 50 * 60_000))]))).toBe('new_report');
    expect(await process(batchJob([entry(sent(boundary + 20 * 60_000))]))).toBe('new_report');
  });

  it('that is malformed fails for good at once, and so does a notify job naming no rows', async () => {
    const process = createIntakeProcessor(env.runtime);
    for (const data of [{ messages: 'nope' }, { messages: [] }, { messages: [entry(sms(complaint(500)))], extra: 1 }]) {
      await expect(process({ id: 'b_bad', name: 'batch', data } as unknown as Job)).rejects.toMatchObject({ name: 'UnrecoverableError', message: expect.stringMatching(/malformed inbound batch job/) });
    }
    const web = env.runtime.adapters.get('web')!;
    const notify = createNotifyProcessor(env.runtime, web as never, () => undefined);
    for (const data of [{ ids: [] }, { ids: ['1; DROP TABLE messages'] }, { ids: 'all' }]) {
      await expect(notify({ id: 'nb_bad', name: 'batch', data } as unknown as Job)).rejects.toMatchObject({ name: 'UnrecoverableError' });
    }
    // Ids of rows that do not exist, or are not replies waiting: nothing is sent, nothing fails.
    expect(await notify({ id: 'nb_none', name: 'batch', data: { ids: ['999999999'] } } as unknown as Job)).toBe('0 sent, 0 failed, 1 already handled');
  });

  it('lets the rules see the earlier messages of the same batch', async () => {
    const from = newNumber();
    const text = 'Jalan desa Sukamulya rusak berat sepanjang dua kilometer, truk pasir lewat setiap hari tanpa izin.';
    const twice = [sms(text, from), { ...sms(text, from), receivedAt: new Date(Date.now() + 1_000).toISOString() }];
    await createIntakeProcessor(env.runtime)(batchJob(twice.map(entry)));
    const { rows } = await env.runtime.db.query<{ external_id: string; rules: string[] }>(
      `SELECT i.external_id, ARRAY(SELECT jsonb_array_elements(r.verification->'outcomes')->>'rule') AS rules
       FROM inbound_receipts i JOIN reports r ON r.seq = i.report_seq WHERE i.external_id = ANY($1) ORDER BY r.received_at`,
      [twice.map((m) => m.externalId)],
    );
    expect(rows[0]!.rules).not.toContain('duplicate');
    expect(rows[1]!.rules).toContain('duplicate');
  });
});
