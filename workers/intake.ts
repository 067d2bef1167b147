import { UnrecoverableError, type Job } from 'bullmq';
import { normalizeAddress, InboundMessageSchema, type InboundMessage } from '../src/core/inbound.ts';
import { parseCitizenMessage, type CitizenCommand, type TrackingRef } from '../src/core/keywords.ts';
import type { NotificationKind } from '../src/core/notifications.ts';
import { isBlank } from '../src/core/text.ts';
import { STATUS_LABELS, assertTransition, type ReportStatus } from '../src/core/report.ts';
import { InboundJobSchema, type Effect } from '../src/queue/jobs.ts';
import { notifyEffect, verifyEffect } from '../src/queue/queues.ts';
import { endReportClocks, resumeReportClocks, startReportClock } from '../src/store/clocks.ts';
import { withTransaction, type Tx } from '../src/store/db.ts';
import * as store from '../src/store/reports.ts';
import type { WorkerDeps } from './deps.ts';

/**
 * Intake: one inbound message in, its effects out. Everything it writes for one message — the
 * receipt, the report, the thread entry, the event, and the list of jobs to add next — commits in
 * one transaction; the jobs are added after the commit. A replay (crash, stalled job, redelivery
 * past the Redis window) finds the receipt, writes nothing, and re-adds the same jobs by the same
 * ids, so it changes nothing.
 */

interface Plan {
  outcome: string;
  reportSeq?: string | number;
  effects: Effect[];
}

export function createIntakeProcessor(deps: WorkerDeps) {
  const { queues, keys, log } = deps;
  // Sequence numbers in blocks: a new report costs no round trip for its number.
  const sequence = new store.SequenceBlocks(deps.db);

  return async function processInbound(job: Job): Promise<string> {
    const data = InboundJobSchema.safeParse(job.data);
    if (!data.success) throw new UnrecoverableError(`malformed inbound job: ${data.error.issues[0]?.message}`);
    let message: InboundMessage;
    try {
      message = InboundMessageSchema.parse(keys.open('queue', data.data.sealed));
    } catch (err) {
      // Sealed under another key, or tampered with: retrying cannot help; keep it as a dead letter.
      throw new UnrecoverableError(`inbound job cannot be opened: ${(err as Error).message}`);
    }

    const command = commandFor(deps, message);
    let plan: Plan;
    try {
      plan =
        (command.type === 'new_report' ? await fileReport(deps, sequence, message, command) : await handleInTransaction(deps, message, command)) ??
        (await replayed(deps, message));
    } catch (err) {
      // PostgreSQL refusing the data itself will refuse it on every retry: a dead letter at once,
      // named as such, rather than ten tries over a quarter of an hour.
      if (isDataRefusal(err)) throw new UnrecoverableError(`the store refused the message (SQLSTATE ${err.code}): ${err.message}`);
      throw err;
    }

    await queues.addEffects(plan.effects);
    log.debug({ channel: message.channel, dedupKey: message.dedupKey, outcome: plan.outcome }, 'inbound handled');
    return plan.outcome;
  };
}

/**
 * Everything but a new report (status queries, follow-ups, ratings) reads and locks the report it
 * names, so it runs as a transaction: claim the receipt, act, record the outcome. Returns undefined
 * when the receipt was claimed before (a replay).
 */
async function handleInTransaction(deps: WorkerDeps, message: InboundMessage, command: Exclude<CitizenCommand, { type: 'new_report' }>): Promise<Plan | undefined> {
  return withTransaction(deps.db, async (tx) => {
    if (!(await store.claimInbound(tx, message, 'pending'))) return undefined;
    const planned = await handle(deps, tx, message, command);
    await tx.query(
      `UPDATE inbound_receipts SET outcome = $3, effects = $4, report_seq = $5 WHERE channel = $1 AND external_id = $2`,
      [message.channel, message.externalId, planned.outcome, JSON.stringify(planned.effects), planned.reportSeq ?? null],
    );
    return planned;
  });
}

/** A message seen before: the receipt says what it led to, and the same jobs are added again. */
async function replayed(deps: WorkerDeps, message: InboundMessage): Promise<Plan> {
  const receipt = await store.receiptOf(deps.db, message.channel, message.externalId);
  return { outcome: `replay:${receipt?.outcome ?? 'unknown'}`, effects: (receipt?.effects ?? []) as Effect[] };
}

/**
 * SQLSTATE classes no retry can change: 22 data exception (0x00 in text, a bad escape in jsonb,
 * a value too long) and 23 integrity violations other than the unique one a replay meets on purpose.
 */
function isDataRefusal(err: unknown): err is Error & { code: string } {
  if (!(err instanceof Error) || !('code' in err) || typeof err.code !== 'string' || !/^2[23][0-9A-Z]{3}$/.test(err.code)) return false;
  return err.code !== '23505';
}

function commandFor(deps: WorkerDeps, message: InboundMessage): CitizenCommand {
  if (message.form) {
    const privacy = message.form.rahasia ? 'rahasia' : message.form.anonim ? 'anonim' : 'public';
    return { type: 'new_report', text: message.text, privacy };
  }
  if (deps.adapters.get(message.channel)?.capabilities.keywords === false) {
    // Nothing to read is not a report, on any channel: the citizen is told how to write one.
    return isBlank(message.text) ? { type: 'empty' } : { type: 'new_report', text: message.text, privacy: 'public' };
  }
  return parseCitizenMessage(message.text);
}

async function handle(deps: WorkerDeps, tx: Tx, message: InboundMessage, command: Exclude<CitizenCommand, { type: 'new_report' }>): Promise<Plan> {
  const reply = (kind: NotificationKind, vars: Record<string, string> = {}, trackingId?: string): Effect =>
    notifyEffect(message.channel, {
      notifyKey: `n_${message.dedupKey}_${kind}`,
      kind,
      lang: message.lang ?? deps.config.lang,
      trackingId,
      target: message.sender ? deps.keys.seal('queue', { to: message.sender.address, replyContext: message.replyContext }) : undefined,
      vars,
    });

  switch (command.type) {
    case 'help':
      return { outcome: 'help', effects: [reply('help')] };
    case 'empty':
      return { outcome: 'empty', effects: [reply('empty')] };
    case 'status_query':
    case 'follow_up':
    case 'satisfied':
    case 'dissatisfied': {
      const found = await ownReport(deps, tx, message, command.ref);
      if (found.kind === 'mistyped') return { outcome: 'mistyped_id', effects: [reply('mistyped_id', { trackingId: found.input })] };
      if (found.kind === 'unknown') return { outcome: 'unknown_id', effects: [reply('unknown_id', { trackingId: found.input })] };
      const report = found.report;
      const id = report.trackingId;
      if (command.type === 'status_query') {
        // A rahasia or anonim report's state is told only to its own reporter.
        if ((report.rahasia || report.anonim) && !found.owner) {
          return { outcome: 'unknown_id', effects: [reply('unknown_id', { trackingId: id })] };
        }
        const status = STATUS_LABELS[report.status][message.lang ?? report.lang];
        return { outcome: 'status', reportSeq: report.seq, effects: [reply('status', { trackingId: id, status }, id)] };
      }
      // Adding to or rating a report is for its own reporter only: anything else would let a
      // stranger hijack the report, or learn that it exists.
      if (!found.owner) return { outcome: 'not_owner', effects: [reply('unknown_id', { trackingId: id })] };
      if (command.type === 'follow_up') {
        await store.insertInboundMessage(tx, report.seq, message, deps.keys.seal('thread', command.text));
        await store.appendEvent(tx, report.seq, { actor: 'citizen', type: 'follow_up', reason: 'reporter added information' });
        await reporterAnswered(deps, tx, report);
        return { outcome: 'follow_up', reportSeq: report.seq, effects: [reply('follow_up_added', { trackingId: id }, id)] };
      }
      // Rating is for an answered report: before an answer the reporter is told there is nothing to rate.
      if (report.status !== 'sedang_diproses' && report.status !== 'selesai') {
        return { outcome: 'nothing_to_rate', reportSeq: report.seq, effects: [reply('nothing_to_rate', { trackingId: id }, id)] };
      }
      const satisfied = command.type === 'satisfied';
      await store.appendEvent(tx, report.seq, { actor: 'citizen', type: satisfied ? 'rated_satisfied' : 'rated_dissatisfied' });
      if (satisfied && report.status === 'sedang_diproses') {
        // PUAS closes the answered report: the reporter's own closing, counted as such.
        await closeByReporter(deps, tx, report);
      }
      if (!satisfied) {
        await store.insertInboundMessage(tx, report.seq, message, deps.keys.seal('thread', command.text));
        if (report.status === 'sedang_diproses') {
          // Not satisfied with the answer: no automatic closing until the agency answers again.
          await endReportClocks(tx, deps.clocks, report.seq, ['auto_close'], new Date());
        } else if ((await lastCloseReason(tx, report.seq)) !== 'debat_kusir') {
          // A report an admin closed as an endless dispute stays closed; any other is reopened.
          assertTransition('selesai', 'sedang_diproses');
          await store.updateReport(tx, report.seq, { status: 'sedang_diproses' });
          await store.appendEvent(tx, report.seq, {
            actor: 'citizen',
            type: 'status_changed',
            fromStatus: 'selesai',
            toStatus: 'sedang_diproses',
            reason: 'reporter not satisfied with the answer',
          });
        }
      }
      return { outcome: command.type, reportSeq: report.seq, effects: [reply('satisfaction_recorded', { trackingId: id }, id)] };
    }
  }
}

type Lookup =
  | { kind: 'found'; report: store.ReportRow; owner: boolean }
  | { kind: 'mistyped'; input: string }
  | { kind: 'unknown'; input: string };

async function ownReport(deps: WorkerDeps, tx: Tx, message: InboundMessage, ref: TrackingRef): Promise<Lookup> {
  if (!ref.ok) {
    const digits = ref.input.replace(/[^0-9]/g, '').slice(0, 12);
    return ref.reason === 'check_digit' ? { kind: 'mistyped', input: digits } : { kind: 'unknown', input: digits };
  }
  const report = await store.lockReport(tx, ref.id);
  if (!report) return { kind: 'unknown', input: ref.id };
  const owner = Boolean(message.sender && report.contactHash === contactHashOf(deps, message.sender.address));
  return { kind: 'found', report, owner };
}

function contactHashOf(deps: WorkerDeps, address: string): string {
  return deps.keys.blindIndex(normalizeAddress(address));
}

/** A new report: filed with its receipt in one statement. Undefined when the receipt existed (a replay). */
async function fileReport(
  deps: WorkerDeps,
  sequence: store.SequenceBlocks,
  message: InboundMessage,
  command: Extract<CitizenCommand, { type: 'new_report' }>,
): Promise<Plan | undefined> {
  const { keys, codec } = deps;
  // The web form has its tracking ID already (it was in the HTTP response); others get one now.
  // A replay draws a number it does not use: a gap in the sequence, which nothing minds.
  const preassigned = message.form?.trackingId;
  const seq = preassigned ? codec.toSequence(preassigned) : await sequence.take();
  const trackingId = preassigned ?? codec.fromSequence(seq);
  const lang = message.lang ?? deps.config.lang;

  const reporter = message.form?.reporter;
  const contact = message.sender?.address ?? reporter?.phone ?? reporter?.email;
  const contactHash = contact ? contactHashOf(deps, contact) : null;
  const sealedReporter =
    message.sender || reporter
      ? keys.seal('reporter', {
          channel: message.channel,
          address: message.sender?.address,
          displayName: message.sender?.displayName,
          replyContext: message.replyContext,
          ...reporter,
        })
      : null;

  const effects = [
    notifyEffect(message.channel, { notifyKey: `n_${trackingId}_received`, kind: 'received', lang, trackingId, vars: { trackingId } }),
    verifyEffect(trackingId),
  ];
  const claimed = await store.fileReportFromInbound(deps.db, {
    inbound: message,
    effects,
    seq,
    trackingId,
    channel: message.channel,
    text: command.text,
    lang,
    anonim: command.privacy === 'anonim',
    rahasia: command.privacy === 'rahasia',
    sealedReporter,
    contactHash,
    receivedAt: message.receivedAt,
    incomplete: message.incomplete ?? false,
    sealedText: keys.seal('thread', message.text),
    event: { data: { channel: message.channel, privacy: command.privacy } },
    verificationClock: verificationClock(deps, message.receivedAt),
  });
  return claimed ? { outcome: 'new_report', reportSeq: seq, effects } : undefined;
}

/**
 * The verification clock of a new report. A calendar that cannot answer (a year with no holiday
 * data) must not lose the report: it is filed without the clock, and the error says what to add.
 */
function verificationClock(deps: WorkerDeps, receivedAt: string): { workingDays: number; dueAt: Date } | undefined {
  const { calendar, days } = deps.clocks;
  try {
    return { workingDays: days.verificationDays, dueAt: calendar.dueAt(new Date(receivedAt), days.verificationDays) };
  } catch (err) {
    deps.log.error({ err }, 'no verification clock for a new report: the calendar cannot count its days');
    return undefined;
  }
}

/**
 * The reporter wrote about their report. A report waiting for them (`tertunda`) goes back to where
 * it stood, its paused clocks counting again; a report that could not be processed is reopened for
 * verification with a fresh clock. Anything else only gains the message in its thread.
 */
async function reporterAnswered(deps: WorkerDeps, tx: Tx, report: store.ReportRow): Promise<void> {
  const now = new Date();
  if (report.status === 'tertunda') {
    const back: ReportStatus = report.resumeStatus ?? 'belum_terverifikasi';
    await tx.query(`UPDATE reports SET status = $2, resume_status = NULL, updated_at = now() WHERE seq = $1`, [report.seq, back]);
    await resumeReportClocks(tx, deps.clocks, report.seq, now);
    await store.appendEvent(tx, report.seq, { actor: 'citizen', type: 'info_provided', fromStatus: 'tertunda', toStatus: back, at: now });
  } else if (report.status === 'tidak_dapat_diproses') {
    assertTransition('tidak_dapat_diproses', 'belum_terverifikasi');
    await tx.query(`UPDATE reports SET status = 'belum_terverifikasi', resume_status = NULL, updated_at = now() WHERE seq = $1`, [report.seq]);
    try {
      await startReportClock(tx, deps.clocks, report.seq, 'verification', now, report.weight, null);
    } catch (err) {
      deps.log.error({ err, trackingId: report.trackingId }, 'no verification clock for a reopened report: the calendar cannot count its days');
    }
    await store.appendEvent(tx, report.seq, { actor: 'citizen', type: 'reopened', fromStatus: 'tidak_dapat_diproses', toStatus: 'belum_terverifikasi', at: now });
  }
}

async function closeByReporter(deps: WorkerDeps, tx: Tx, report: store.ReportRow): Promise<void> {
  assertTransition('sedang_diproses', 'selesai');
  await tx.query(`UPDATE reports SET status = 'selesai', updated_at = now() WHERE seq = $1`, [report.seq]);
  await endReportClocks(tx, deps.clocks, report.seq, ['verification', 'follow_up', 'auto_close'], new Date());
  await store.appendEvent(tx, report.seq, {
    actor: 'citizen',
    type: 'closed',
    fromStatus: 'sedang_diproses',
    toStatus: 'selesai',
    reason: 'the reporter is satisfied',
    data: { agency: report.agencySlug, by: 'reporter', closeReason: 'puas' },
  });
}

async function lastCloseReason(tx: Tx, seq: string): Promise<string | undefined> {
  const { rows } = await tx.query<{ reason: string | null }>(
    `SELECT data->>'closeReason' AS reason FROM report_events WHERE report_seq = $1 AND type = 'closed' ORDER BY id DESC LIMIT 1`,
    [seq],
  );
  return rows[0]?.reason ?? undefined;
}
