import { UnrecoverableError, type Job } from 'bullmq';
import { normalizeAddress, InboundMessageSchema, type InboundMessage } from '../src/core/inbound.ts';
import { parseCitizenMessage, type CitizenCommand, type TrackingRef } from '../src/core/keywords.ts';
import type { NotificationKind } from '../src/core/notifications.ts';
import { STATUS_LABELS, assertTransition } from '../src/core/report.ts';
import { InboundJobSchema, type Effect } from '../src/queue/jobs.ts';
import { notifyEffect, verifyEffect } from '../src/queue/queues.ts';
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
  const { db, queues, keys, log } = deps;

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

    const plan = await withTransaction(db, async (tx) => {
      if (!(await store.claimInbound(tx, message, 'pending'))) {
        const { rows } = await tx.query<{ outcome: string; effects: Effect[] }>(
          'SELECT outcome, effects FROM inbound_receipts WHERE channel = $1 AND external_id = $2',
          [message.channel, message.externalId],
        );
        return { outcome: `replay:${rows[0]?.outcome ?? 'unknown'}`, effects: rows[0]?.effects ?? [] };
      }
      const planned = await handle(deps, tx, message, commandFor(deps, message));
      await tx.query(
        `UPDATE inbound_receipts SET outcome = $3, effects = $4, report_seq = $5 WHERE channel = $1 AND external_id = $2`,
        [message.channel, message.externalId, planned.outcome, JSON.stringify(planned.effects), planned.reportSeq ?? null],
      );
      return planned;
    });

    await queues.addEffects(plan.effects);
    log.debug({ channel: message.channel, dedupKey: message.dedupKey, outcome: plan.outcome }, 'inbound handled');
    return plan.outcome;
  };
}

function commandFor(deps: WorkerDeps, message: InboundMessage): CitizenCommand {
  if (message.form) {
    const privacy = message.form.rahasia ? 'rahasia' : message.form.anonim ? 'anonim' : 'public';
    return { type: 'new_report', text: message.text, privacy };
  }
  if (deps.adapters.get(message.channel)?.capabilities.keywords === false) {
    return { type: 'new_report', text: message.text, privacy: 'public' };
  }
  return parseCitizenMessage(message.text);
}

async function handle(deps: WorkerDeps, tx: Tx, message: InboundMessage, command: CitizenCommand): Promise<Plan> {
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
    case 'new_report':
      return fileReport(deps, tx, message, command);
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
        return { outcome: 'follow_up', reportSeq: report.seq, effects: [reply('follow_up_added', { trackingId: id }, id)] };
      }
      const satisfied = command.type === 'satisfied';
      await store.appendEvent(tx, report.seq, { actor: 'citizen', type: satisfied ? 'rated_satisfied' : 'rated_dissatisfied' });
      if (!satisfied) {
        await store.insertInboundMessage(tx, report.seq, message, deps.keys.seal('thread', command.text));
        if (report.status === 'selesai') {
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

async function fileReport(
  deps: WorkerDeps,
  tx: Tx,
  message: InboundMessage,
  command: Extract<CitizenCommand, { type: 'new_report' }>,
): Promise<Plan> {
  const { keys, codec } = deps;
  // The web form has its tracking ID already (it was in the HTTP response); others get one now.
  const preassigned = message.form?.trackingId;
  const seq = preassigned ? codec.toSequence(preassigned) : await store.nextReportSeq(tx);
  const trackingId = preassigned ?? codec.fromSequence(seq);

  const reporter = message.form?.reporter;
  const contact = message.sender?.address ?? reporter?.phone ?? reporter?.email;
  const contactHash = contact ? contactHashOf(deps, contact) : null;
  let reporterId: string | null = null;
  if (message.sender || reporter) {
    const sealed = keys.seal('reporter', {
      channel: message.channel,
      address: message.sender?.address,
      displayName: message.sender?.displayName,
      replyContext: message.replyContext,
      ...reporter,
    });
    reporterId = await store.insertReporter(tx, contactHash, sealed);
  }

  await store.insertReport(tx, {
    seq,
    trackingId,
    channel: message.channel,
    text: command.text,
    lang: message.lang ?? deps.config.lang,
    anonim: command.privacy === 'anonim',
    rahasia: command.privacy === 'rahasia',
    reporterId,
    contactHash,
    receivedAt: message.receivedAt,
    incomplete: message.incomplete ?? false,
  });
  await store.insertInboundMessage(tx, seq, message, keys.seal('thread', message.text));
  await store.appendEvent(tx, seq, {
    actor: 'citizen',
    type: 'received',
    toStatus: 'belum_terverifikasi',
    at: new Date(message.receivedAt),
    data: { channel: message.channel, privacy: command.privacy },
  });

  return {
    outcome: 'new_report',
    reportSeq: seq,
    effects: [
      notifyEffect(message.channel, {
        notifyKey: `n_${trackingId}_received`,
        kind: 'received',
        lang: message.lang ?? deps.config.lang,
        trackingId,
        vars: { trackingId },
      }),
      verifyEffect(trackingId),
    ],
  };
}
