import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InboundMessageInput } from '../../src/core/inbound.ts';
import { InboundMessageSchema } from '../../src/core/inbound.ts';
import { renderNotification } from '../../src/core/notifications.ts';
import { dammCheckDigit } from '../../src/core/tracking-id.ts';
import { NotifyJobSchema, ReplyTargetSchema } from '../../src/queue/jobs.ts';
import { listDeadLetters, replayDeadLetters } from '../../src/queue/dlq.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

/**
 * The intake worker's keyword paths, driven the way a conversational channel drives them: an
 * InboundMessage on the inbound queue. No SMS adapter runs here, so replies wait in `notify-sms`,
 * where the test reads them.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const STRANGER = '+6285711934480';
/** A number of its own per report, so the per-sender rate limit of the rules stays out of the way. */
const newNumber = () => `+62812${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
const OWNER = newNumber();

function sms(text: string, from = OWNER, id = randomBytes(6).toString('hex')): InboundMessageInput {
  return {
    channel: 'sms',
    account: 'telkomsel',
    externalId: `m${id}`,
    dedupKey: `sms_${id}`,
    sender: { address: from },
    text,
    receivedAt: new Date().toISOString(),
    replyContext: { shortCode: '1708' },
  };
}

async function deliver(input: InboundMessageInput) {
  return env.runtime.queues.enqueueInbound(InboundMessageSchema.parse(input), 60_000);
}

/** The reply the gateway queued for this inbound message, opened like the notify worker would. */
async function replyTo(input: InboundMessageInput, kind?: string) {
  const queue = env.runtime.queues.notify.get('sms')!;
  return eventually(async () => {
    const jobs = await queue.getJobs(['waiting', 'delayed', 'prioritized']);
    const match = jobs
      .filter((j) => j.name !== 'batch')
      .map((j) => NotifyJobSchema.parse(j.data))
      .find((n) => n.notifyKey.startsWith(`n_${input.dedupKey}_`) || (kind === 'received' && n.kind === 'received' && n.notifyKey.includes(input.dedupKey)));
    if (!match) return undefined;
    const target = match.target ? ReplyTargetSchema.parse(env.runtime.keys.open('queue', match.target)) : undefined;
    return { ...match, target };
  }, 10_000, `reply to ${input.text}`);
}

async function reportFiledBy(input: InboundMessageInput) {
  return eventually(async () => {
    const { rows } = await env.runtime.db.query<{ tracking_id: string; text: string; rahasia: boolean; anonim: boolean; status: string }>(
      `SELECT r.tracking_id, r.text, r.rahasia, r.anonim, r.status FROM inbound_receipts i JOIN reports r ON r.seq = i.report_seq
       WHERE i.channel = 'sms' AND i.external_id = $1`,
      [input.externalId],
    );
    return rows[0];
  }, 10_000, 'report');
}

async function outcomeOf(input: InboundMessageInput) {
  return eventually(async () => {
    const { rows } = await env.runtime.db.query<{ outcome: string }>(
      `SELECT outcome FROM inbound_receipts WHERE channel = 'sms' AND external_id = $1 AND outcome <> 'pending'`,
      [input.externalId],
    );
    return rows[0]?.outcome;
  });
}

/**
 * A notification intake wrote for a new report: its outbound row (still queued: no SMS adapter runs
 * here), its text opened, and the notify job that carries it.
 */
async function outboundOf(trackingId: string, kind: string) {
  const row = await eventually(async () => {
    const { rows } = await env.runtime.db.query<{ id: string; status: string; sealed_text: string }>(
      `SELECT id::text, status, sealed_text FROM messages WHERE notify_key = $1 AND kind = $2 AND direction = 'out'`,
      [`n_${trackingId}_${kind}`, kind],
    );
    return rows[0];
  }, 10_000, `${kind} for ${trackingId}`);
  const queue = env.runtime.queues.notify.get('sms')!;
  const job = await eventually(async () => (await queue.getJobs(['waiting', 'delayed', 'prioritized'])).find((j) => j.name === 'batch' && (j.data as { ids: string[] }).ids.includes(row.id)));
  return { status: row.status, text: String(env.runtime.keys.open('thread', row.sealed_text)), job };
}

async function fileAndWait(text: string, from = newNumber()) {
  const message = sms(text, from);
  await deliver(message);
  return { message, from, report: await reportFiledBy(message) };
}

describe('new reports', () => {
  it('files free text and LAPOR text, stripping the keyword, and queues the receipt with the ID', async () => {
    const { report } = await fileAndWait('LAPOR Jalan Raya Cibeureum km 4 berlubang besar, dua pengendara motor jatuh minggu ini.');
    expect(report.text).toBe('Jalan Raya Cibeureum km 4 berlubang besar, dua pengendara motor jatuh minggu ini.');
    expect(report.rahasia).toBe(false);
    const received = await outboundOf(report.tracking_id, 'received');
    expect(received.status).toBe('queued');
    expect(received.text).toContain(report.tracking_id);
  });

  it('honours RAHASIA and ANONIM', async () => {
    expect((await fileAndWait('RAHASIA Kepala desa memotong dana bansos warga Rp 200 ribu per keluarga.')).report).toMatchObject({ rahasia: true, anonim: false });
    expect((await fileAndWait('ANONIM Petugas kelurahan minta uang untuk surat pindah, katanya biaya admin.')).report).toMatchObject({ rahasia: false, anonim: true });
  });

  it('makes one report of a message delivered twice, even after the Redis dedup window', async () => {
    const message = sms('Lampu penerangan jalan di Jl. Kenanga mati total sejak dua minggu, gelap dan rawan.');
    expect(await deliver(message)).toEqual({ status: 'queued' });
    expect(await deliver(message)).toEqual({ status: 'duplicate' });
    await reportFiledBy(message);
    // The provider redelivers after the Redis window and after the job is gone: PostgreSQL decides.
    const prefix = env.config.queue.prefix;
    await env.runtime.producer.del(`${prefix}:dedup:${message.dedupKey}`);
    await (await env.runtime.queues.inbound.getJob(message.dedupKey))?.remove();
    expect(await deliver(message)).toEqual({ status: 'queued' });
    await eventually(async () => {
      const job = await env.runtime.queues.inbound.getJob(message.dedupKey);
      return job && (await job.isCompleted()) ? job : undefined;
    });
    const { rows } = await env.runtime.db.query(`SELECT count(*)::int AS n FROM inbound_receipts WHERE external_id = $1`, [message.externalId]);
    expect(rows[0].n).toBe(1);
    const reports = await env.runtime.db.query(`SELECT count(*)::int AS n FROM reports WHERE text LIKE 'Lampu penerangan jalan di Jl. Kenanga%'`);
    expect(reports.rows[0].n).toBe(1);
  });
});

describe('status, follow-up and rating by tracking ID', () => {
  it('tells the owner the status, and hides a rahasia report from anyone else', async () => {
    const { report, from } = await fileAndWait('RAHASIA Oknum pegawai puskesmas meminta uang untuk rujukan BPJS pasien.');
    const own = sms(`CEK ${report.tracking_id}`, from);
    await deliver(own);
    const reply = await replyTo(own);
    expect(reply).toMatchObject({ kind: 'status', vars: { trackingId: report.tracking_id } });
    expect(reply.target?.to).toBe(from);
    const strangers = sms(`CEK ${report.tracking_id}`, STRANGER);
    await deliver(strangers);
    expect(await replyTo(strangers)).toMatchObject({ kind: 'unknown_id' });
  });

  it('tells a mistyped ID (bad check digit) apart from an unknown one', async () => {
    const { report } = await fileAndWait('Sampah menumpuk di pasar Cibadak sudah seminggu tidak diangkut petugas.');
    const id = report.tracking_id;
    const typo = `${id.slice(0, 9)}${(Number(id[9]) + 1) % 10}`;
    const mistyped = sms(`cek ${typo}`);
    await deliver(mistyped);
    expect(await replyTo(mistyped)).toMatchObject({ kind: 'mistyped_id' });

    const neverIssued = `${'1'.repeat(9)}${dammCheckDigit('1'.repeat(9))}`;
    const unknown = sms(`STATUS ${neverIssued}`);
    await deliver(unknown);
    expect(await replyTo(unknown)).toMatchObject({ kind: 'unknown_id' });
  });

  it('answers a status question found in the text, and files it when its number names no report', async () => {
    const { report } = await fileAndWait('Lampu penerangan jalan di Jl. Anggrek mati semua sejak Jumat malam.');
    const asked = sms(`min, laporan ${report.tracking_id} sdh sampai mana ya`);
    await deliver(asked);
    expect(await replyTo(asked)).toMatchObject({ kind: 'status' });
    // An account number that happens to pass the check digit, in a short complaint with "kapan".
    const account = `${'4'.repeat(9)}${dammCheckDigit('4'.repeat(9))}`;
    const complaint = sms(`Saya transfer ke rekening ${account} kapan uangnya kembali?`);
    await deliver(complaint);
    expect((await reportFiledBy(complaint)).text).toBe(`Saya transfer ke rekening ${account} kapan uangnya kembali?`);
  });

  it('attaches a follow-up only from the report’s own contact', async () => {
    const { report, from } = await fileAndWait('Air PDAM tidak mengalir tiga hari di Perumahan Griya Asri blok C.');
    const own = sms(`${report.tracking_id} sekarang sudah lima hari, warga beli air galon`, from);
    await deliver(own);
    expect(await replyTo(own)).toMatchObject({ kind: 'follow_up_added' });
    const hijack = sms(`BALAS ${report.tracking_id} laporan ini palsu, hapus saja`, STRANGER);
    await deliver(hijack);
    expect(await replyTo(hijack)).toMatchObject({ kind: 'unknown_id' });
    expect(await outcomeOf(hijack)).toBe('not_owner');

    const { rows } = await env.runtime.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM messages m JOIN reports r ON r.seq = m.report_seq WHERE r.tracking_id = $1 AND m.direction = 'in'`,
      [report.tracking_id],
    );
    expect(rows[0]!.n).toBe(2); // the report itself and the owner's follow-up, not the stranger's
  });

  it('reopens a closed report on TIDAK PUAS from its reporter', async () => {
    const { report, from } = await fileAndWait('Jembatan gantung Desa Sukamaju putus, anak sekolah harus memutar 5 km.');
    await eventually(async () => {
      const { rows } = await env.runtime.db.query(`SELECT verification FROM reports WHERE tracking_id = $1`, [report.tracking_id]);
      return rows[0]?.verification ?? undefined;
    });
    await env.runtime.db.query(`UPDATE reports SET status = 'selesai' WHERE tracking_id = $1`, [report.tracking_id]);
    const unhappy = sms(`TIDAK PUAS ${report.tracking_id} jembatan belum diperbaiki sama sekali`, from);
    await deliver(unhappy);
    expect(await replyTo(unhappy)).toMatchObject({ kind: 'satisfaction_recorded' });
    const { rows } = await env.runtime.db.query<{ status: string }>(`SELECT status FROM reports WHERE tracking_id = $1`, [report.tracking_id]);
    expect(rows[0]!.status).toBe('sedang_diproses');
    const events = await env.runtime.db.query<{ type: string; to_status: string | null }>(
      `SELECT type, to_status FROM report_events e JOIN reports r ON r.seq = e.report_seq WHERE r.tracking_id = $1 ORDER BY e.id`,
      [report.tracking_id],
    );
    expect(events.rows.map((e) => e.type)).toEqual(['received', 'auto_verified', 'rated_dissatisfied', 'status_changed']);
  });

  it('answers INFO with help and an empty message with a hint', async () => {
    const help = sms('INFO');
    await deliver(help);
    expect(await replyTo(help)).toMatchObject({ kind: 'help' });
    const empty = sms('   ');
    await deliver(empty);
    expect(await replyTo(empty)).toMatchObject({ kind: 'empty' });
  });
});

describe('verification', () => {
  it('rejects spam and asks for more on a report too short to act on', async () => {
    const spam = await fileAndWait('Selamat! Nomor anda menang undian Rp 100 juta, klik link bit.ly/hadiah-xyz untuk klaim sekarang');
    const short = await fileAndWait('jalan rusak');
    const statusOf = async (id: string) =>
      eventually(async () => {
        const { rows } = await env.runtime.db.query<{ status: string; verification: unknown }>(`SELECT status, verification FROM reports WHERE tracking_id = $1`, [id]);
        return rows[0]?.verification ? rows[0].status : undefined;
      });
    expect(await statusOf(spam.report.tracking_id)).toBe('tidak_dapat_diproses');
    // Refused at once: one answer saying so, not a receipt besides.
    await outboundOf(spam.report.tracking_id, 'not_processable');
    const { rows: answers } = await env.runtime.db.query<{ kind: string }>(
      `SELECT m.kind FROM messages m JOIN reports r ON r.seq = m.report_seq WHERE r.tracking_id = $1 AND m.direction = 'out'`,
      [spam.report.tracking_id],
    );
    expect(answers.map((a) => a.kind)).toEqual(['not_processable']);
    expect(await statusOf(short.report.tracking_id)).toBe('tertunda');
    const needsInfo = await outboundOf(short.report.tracking_id, 'needs_info');
    const template = renderNotification('needs_info', 'id', { trackingId: short.report.tracking_id });
    // The rule's reason for the citizen fills the template's {reason}, not the '-' of a missing one.
    expect(needsInfo.text).not.toBe(template);
    expect(needsInfo.text).toContain(short.report.tracking_id);
  });
});

describe('per-sender rate limit', () => {
  it('files the reports but refuses the ones past the limit, counting only this sender', async () => {
    const flooder = newNumber();
    const limit = env.runtime.rules.rateLimit.maxReports;
    const filed: { tracking_id: string }[] = [];
    for (let i = 0; i <= limit; i++) {
      filed.push((await fileAndWait(`Keluhan nomor ${i}: antrean di kantor samsat sangat panjang dan tidak tertib hari ini.`, flooder)).report);
    }
    const statuses = await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ status: string; verification: unknown }>(
        `SELECT status, verification FROM reports WHERE tracking_id = ANY($1) ORDER BY received_at`,
        [filed.map((r) => r.tracking_id)],
      );
      return rows.every((r) => r.verification) ? rows.map((r) => r.status) : undefined;
    });
    expect(statuses.filter((s) => s === 'tidak_dapat_diproses').length).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s === 'belum_terverifikasi').length).toBeGreaterThanOrEqual(1);
  });
});

describe('dead letters', () => {
  it('keeps a job that can never succeed as a dead letter, lists it, and replays it', async () => {
    // Sealed under another key: opening it fails for good, so no retries are wasted on it.
    await env.runtime.queues.inbound.add('message', { channel: 'sms', dedupKey: 'sms_poison1', sealed: 'v1.AAAA.BBBB.CCCC' }, { jobId: 'sms_poison1' });
    const letter = await eventually(async () => (await listDeadLetters(env.runtime.queues, 'inbound')).find((l) => l.id === 'sms_poison1'));
    expect(letter.reason).toMatch(/cannot be opened/);
    expect(letter.attempts).toBe(1);
    expect(await replayDeadLetters(env.runtime.queues, 'inbound', ['sms_poison1'])).toBe(1);
    await eventually(async () => {
      const job = await env.runtime.queues.inbound.getJob('sms_poison1');
      return job && job.attemptsMade >= 1 && (await job.isFailed()) && job.processedOn ? job : undefined;
    });
    expect(await replayDeadLetters(env.runtime.queues, 'inbound', ['no-such-job'])).toBe(0);
  });
});

describe('logs', () => {
  it('never carry the citizen’s number or words', async () => {
    await fileAndWait('Pungutan liar di kantor kelurahan Mekarjaya oleh petugas bernama Budi Santoso, NIK saya 3273012345670001', '+6281298765432');
    const all = env.logs.join('\n');
    expect(env.logs.length).toBeGreaterThan(0);
    for (const secret of ['6281298765432', '81298765432', 'Budi Santoso', '3273012345670001', 'Pungutan liar', ]) {
      expect(all).not.toContain(secret);
    }
  });
});
