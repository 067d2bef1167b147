import { UnrecoverableError, type Job } from 'bullmq';
import { crashPoint } from '../src/core/crash.ts';
import { ADDENDA_ONLY, normalizeAddress, InboundMessageSchema, type ChannelId, type InboundMessage } from '../src/core/inbound.ts';
import { parseCitizenMessage, type CitizenCommand, type TrackingRef } from '../src/core/keywords.ts';
import type { NotificationKind } from '../src/core/notifications.ts';
import { isBlank } from '../src/core/text.ts';
import { STATUS_LABELS, assertTransition, type ReportStatus } from '../src/core/report.ts';
import { EffectSchema, InboundBatchJobSchema, InboundJobSchema, type Effect } from '../src/queue/jobs.ts';
import { notifyEffect } from '../src/queue/queues.ts';
import { endReportClocks, resumeReportClocks, startReportClock } from '../src/store/clocks.ts';
import { claimAttachments } from '../src/store/attachments.ts';
import { withTransaction, type Tx } from '../src/store/db.ts';
import * as store from '../src/store/reports.ts';
import type { WorkerDeps } from './deps.ts';
import { fileNewReports, isDataRefusal, type NewReport } from './file-reports.ts';

/**
 * Intake: the messages of one inbound job in (one message, or the batch an adapter stored together),
 * their effects out.
 *
 * New reports — nearly all of the traffic — are filed together, with their verification and their
 * notifications, in one statement (workers/file-reports.ts); the notify stage of each channel is
 * then given the outbound rows in one job. Everything else (status queries, follow-ups, ratings)
 * reads and locks the report it names, so it runs one transaction per message, recording in its
 * receipt the jobs to add after the commit.
 *
 * Exactly once rests on PostgreSQL's receipts (channel + external id): a replay — a retried job, a
 * redelivery in another batch — finds its receipt, writes nothing, and re-adds what it led to, which
 * changes nothing (job ids, and notify sending only rows still 'queued'). A message that cannot be
 * opened or that PostgreSQL refuses is set apart as a job of its own, which fails for good with the
 * reason (a dead letter), so it never holds back its neighbours.
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
    const single = job.name !== 'batch';
    const entries = single ? [job.data] : batchEntries(job);
    const messages: InboundMessage[] = [];
    const refused: { entry: unknown; reason: string }[] = [];
    for (const entry of entries) {
      const opened = openEntry(deps, entry);
      if (typeof opened === 'string') refused.push({ entry, reason: opened });
      else messages.push(opened);
    }

    // The same message twice in one job (a redelivery the Redis window missed) is handled once.
    const unique = [...new Map(messages.map((m) => [store.receiptKey(m.channel, m.externalId), m])).values()];
    const newReports: NewReport[] = [];
    const others: { message: InboundMessage; command: Exclude<CitizenCommand, { type: 'new_report' }> }[] = [];
    const commands = new Map<InboundMessage, CitizenCommand | 'ignored'>(unique.map((m) => [m, commandFor(deps, m)]));
    await placeInThreads(deps, commands);
    await fileUnknownQuestions(deps, commands);
    const outcomes: string[] = [];
    const addenda: NewReport[] = [];
    for (const [message, command] of commands) {
      if (command === 'ignored') outcomes.push('ignored');
      else if (command.type === 'new_report') (message.addendum ? addenda : newReports).push({ message, text: command.text, privacy: command.privacy });
      else others.push({ message, command });
    }

    const filed = await fileNewReports(deps, sequence, newReports);
    // A photo or a place without words joins the report its sender filed just before — in this
    // very job too, hence after filing; without one it is a report of its own.
    const alone: NewReport[] = [];
    for (const addendum of addenda) {
      const report = await recentReportOf(deps, addendum.message);
      if (report) others.push({ message: addendum.message, command: { type: 'follow_up', ref: { ok: true, id: report }, text: addendum.text } });
      else alone.push(addendum);
    }
    if (alone.length) {
      const more = await fileNewReports(deps, sequence, alone);
      filed.filed.push(...more.filed);
      filed.replayed.push(...more.replayed);
      filed.refused.push(...more.refused);
      filed.outbound.push(...more.outbound);
    }
    for (const { message, trackingId, text } of filed.completing) others.push({ message, command: { type: 'follow_up', ref: { ok: true, id: trackingId }, text, completes: true } });
    crashPoint('intake-filed');
    outcomes.push(...filed.filed.map(() => 'new_report'));
    for (const { message, reason } of filed.refused) refused.push({ entry: { channel: message.channel, dedupKey: message.dedupKey, sealed: keys.seal('queue', message) }, reason });

    const effects: Effect[] = [];
    const replays = [...filed.replayed];
    for (const { message, command } of others) {
      try {
        const plan = await handleInTransaction(deps, message, command);
        if (plan) {
          outcomes.push(plan.outcome);
          effects.push(...plan.effects);
        } else replays.push(message);
      } catch (err) {
        // PostgreSQL refusing the data itself will refuse it on every retry: set apart at once.
        if (!isDataRefusal(err)) throw err;
        refused.push({ entry: { channel: message.channel, dedupKey: message.dedupKey, sealed: keys.seal('queue', message) }, reason: `the store refused the message (SQLSTATE ${err.code}): ${err.message}` });
      }
    }

    const replayed = await store.replaysOf(deps.db, replays);
    outcomes.push(...replayed.outcomes.map((o) => `replay:${o}`));
    effects.push(...replayed.effects.flatMap((e) => knownEffect(deps, e)));

    await queues.addEffects(effects);
    await publishOutbound(deps, job, [...filed.outbound, ...replayed.queued]);
    crashPoint('intake-published');
    if (refused.length) await setApart(deps, job, single, refused);

    const summary = summarize(outcomes);
    log.debug({ jobId: job.id, messages: entries.length, outcome: summary }, 'inbound handled');
    return summary;
  };
}

function batchEntries(job: Job): unknown[] {
  const parsed = InboundBatchJobSchema.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError(`malformed inbound batch job: ${parsed.error.issues[0]?.message}`);
  return parsed.data.messages;
}

/** The message of one job entry, or why it cannot be had (retrying would not change that). */
function openEntry(deps: WorkerDeps, entry: unknown): InboundMessage | string {
  const data = InboundJobSchema.safeParse(entry);
  if (!data.success) return `malformed inbound job: ${data.error.issues[0]?.message}`;
  try {
    return InboundMessageSchema.parse(deps.keys.open('queue', data.data.sealed));
  } catch (err) {
    // Sealed under another key, or tampered with.
    return `inbound job cannot be opened: ${(err as Error).message}`;
  }
}

/**
 * Messages that can never be filed. A job of one fails for good with the reason: a dead letter, for
 * `lapor dlq`. From a batch, each is added back as a job of its own (its dedup key as id), which
 * then fails the same way, while the rest of the batch completes.
 */
async function setApart(deps: WorkerDeps, job: Job, single: boolean, refused: { entry: unknown; reason: string }[]): Promise<void> {
  if (single) throw new UnrecoverableError(refused[0]!.reason);
  for (const [i, { entry, reason }] of refused.entries()) {
    const parsed = InboundJobSchema.safeParse(entry);
    const jobId = parsed.success ? parsed.data.dedupKey : `${job.id}_${i}`;
    deps.log.warn({ jobId: job.id, setApart: jobId, reason }, 'message set apart from its batch: it will be a dead letter');
    await deps.queues.inbound.add('message', (parsed.success ? parsed.data : { entry }) as never, { jobId });
  }
}

/** One notify job per channel for the outbound rows a commit wrote; its id makes a replay add nothing. */
async function publishOutbound(deps: WorkerDeps, job: Job, rows: readonly { id: string; channel: string }[]): Promise<void> {
  const byChannel = new Map<string, string[]>();
  for (const row of rows) byChannel.set(row.channel, [...(byChannel.get(row.channel) ?? []), row.id]);
  await Promise.all([...byChannel].map(([channel, ids]) => deps.queues.addNotifyBatch(channel as ChannelId, ids, `nb_${job.id}_${channel}`)));
}

/** Effects recorded before a queue was retired (the verify stage, now part of intake) are skipped. */
function knownEffect(deps: WorkerDeps, raw: unknown): Effect[] {
  const effect = EffectSchema.safeParse(raw);
  return effect.success && deps.queues.get(effect.data.queue) ? [effect.data] : [];
}

const PRIVACY_LABELS = {
  rahasia: { id: 'dirahasiakan: tidak dipublikasikan', en: 'confidential: never published' },
  anonim: { id: 'anonim: identitas Anda disembunyikan', en: 'anonymous: your identity is hidden' },
} as const;

function summarize(outcomes: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) counts.set(o, (counts.get(o) ?? 0) + 1);
  return [...counts].map(([o, n]) => (n > 1 ? `${o}×${n}` : o)).join(' ') || 'nothing';
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

/**
 * A message that names no report but answers in a conversation (InboundMessage.thread) adds to the
 * report of that conversation when its author owns the report. Anyone else's is taken on its own,
 * or ignored when the channel says it counts only as a follow-up (`ownerOnly`): a stranger replying
 * in a citizen's thread learns nothing of the report and files nothing into it.
 *
 * A command that needs a report and names none ("PUAS" answering our answer, "CEK" in reply to a
 * receipt) is given the conversation's report; whether the sender may act on it is decided as for
 * a command naming it (ownReport).
 */
async function placeInThreads(deps: WorkerDeps, commands: Map<InboundMessage, CitizenCommand | 'ignored'>): Promise<void> {
  type Threaded = InboundMessage & { thread: NonNullable<InboundMessage['thread']> };
  const asking = [...commands].filter((e): e is [Threaded, CitizenCommand] => Boolean(e[0].thread) && e[1] !== 'ignored' && (e[1].type === 'new_report' || namesNoReport(e[1])));
  if (!asking.length) return;
  const channels = [...new Set(asking.map(([m]) => m.channel))];
  const found = new Map(
    (await Promise.all(channels.map(async (channel) => {
      const ids = asking.filter(([m]) => m.channel === channel).flatMap(([m]) => m.thread.ids);
      return [...(await store.threadReports(deps.db, channel, ids))].map(([id, report]) => [`${channel}:${id}`, report] as const);
    }))).flat(),
  );
  const named = new Map<string, { trackingId: string; contactHash: string | null } | undefined>();
  for (const id of new Set(asking.flatMap(([m]) => (m.thread.report ? [m.thread.report] : [])))) named.set(id, await store.findReport(deps.db, id));
  for (const [message, command] of asking) {
    const report =
      message.thread.ids.map((id) => found.get(`${message.channel}:${id}`)).find((r) => r !== undefined) ??
      (message.thread.report ? named.get(message.thread.report) : undefined);
    if (command.type !== 'new_report') {
      if (report && 'ref' in command) commands.set(message, { ...command, ref: { ok: true, id: report.trackingId } });
      continue;
    }
    const owner = report && message.sender && report.contactHash === contactHashOf(deps, message.sender.address);
    if (owner) commands.set(message, { type: 'follow_up', ref: { ok: true, id: report.trackingId }, text: command.text });
    else if (message.thread.ownerOnly) commands.set(message, 'ignored');
  }
}

/**
 * A status question read from the text alone ("kapan 0812345678 ditindaklanjuti?") whose ID names
 * no report is a complaint that quotes some number: it is filed, not answered "unknown ID".
 */
async function fileUnknownQuestions(deps: WorkerDeps, commands: Map<InboundMessage, CitizenCommand | 'ignored'>): Promise<void> {
  for (const [message, command] of commands) {
    if (command === 'ignored' || command.type !== 'status_query' || !command.inferred || !command.ref.ok) continue;
    if (!(await store.findReport(deps.db, command.ref.id))) commands.set(message, { type: 'new_report', text: message.text.trim(), privacy: 'public' });
  }
}

/** How long after a citizen's report a photo or a place without words still joins it. */
const ADDENDUM_WINDOW_MS = 30 * 60_000;

async function recentReportOf(deps: WorkerDeps, message: InboundMessage): Promise<string | undefined> {
  if (!message.sender) return undefined;
  const since = new Date(Date.parse(message.receivedAt) - ADDENDUM_WINDOW_MS);
  return store.latestReportOf(deps.db, contactHashOf(deps, message.sender.address), message.channel, since);
}

/** A command about a report that gave no number at all ("PUAS" alone), as opposed to a mistyped one. */
function namesNoReport(command: CitizenCommand): boolean {
  return 'ref' in command && !command.ref.ok && command.ref.reason === 'format' && command.ref.input === '';
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
    case 'set_privacy':
    case 'satisfied':
    case 'dissatisfied': {
      const found = await ownReport(deps, tx, message, command.ref);
      if (found.kind === 'mistyped') return { outcome: 'mistyped_id', effects: [reply('mistyped_id', { trackingId: found.input })] };
      if (found.kind === 'unknown') return { outcome: 'unknown_id', effects: [reply('unknown_id', { trackingId: found.input })] };
      const report = found.report;
      const id = report.trackingId;
      if (command.type === 'status_query') {
        // A rahasia or anonim report's state is told only to its own reporter; on a channel whose
        // answers everyone sees (X), every report's state is.
        const inPublic = deps.adapters.get(message.channel)?.capabilities.publicReplies === true;
        if ((report.rahasia || report.anonim || inPublic) && !found.owner) {
          return { outcome: 'unknown_id', effects: [reply('unknown_id', { trackingId: id })] };
        }
        const status = STATUS_LABELS[report.status][message.lang ?? report.lang];
        return { outcome: 'status', reportSeq: report.seq, effects: [reply('status', { trackingId: id, status }, id)] };
      }
      // Adding to or rating a report is for its own reporter only: anything else would let a
      // stranger hijack the report, or learn that it exists.
      if (!found.owner) return { outcome: 'not_owner', effects: [reply('unknown_id', { trackingId: id })] };
      if (command.type === 'set_privacy') {
        // Only ever stricter: a confidential report is not made public again by a message.
        const already = command.privacy === 'rahasia' ? report.rahasia : report.anonim || report.rahasia;
        if (!already) {
          await tx.query(`UPDATE reports SET ${command.privacy === 'rahasia' ? 'rahasia' : 'anonim'} = true, updated_at = now() WHERE seq = $1`, [report.seq]);
          await store.appendEvent(tx, report.seq, { actor: 'citizen', type: 'privacy_changed', reason: `the reporter asked for ${command.privacy}`, data: { privacy: command.privacy } });
        }
        const lang = message.lang ?? report.lang;
        const label = PRIVACY_LABELS[command.privacy][lang];
        return { outcome: 'set_privacy', reportSeq: report.seq, effects: [reply('privacy_changed', { trackingId: id, status: label }, id)] };
      }
      if (command.type === 'follow_up') {
        // Still only '[foto]': the words it waited for become its text (and the operator reads them).
        if (command.completes && ADDENDA_ONLY.test(report.text)) {
          await tx.query(`UPDATE reports SET text = $2 || E'\n' || text, updated_at = now() WHERE seq = $1`, [report.seq, command.text]);
        }
        await store.insertInboundMessage(tx, report.seq, message, deps.keys.seal('thread', command.text));
        await claimAttachments(tx, report.seq, message.attachments.flatMap((a) => (a.ref ? [a.ref] : [])));
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
