import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { ChannelAdapter, SendResult } from '../src/core/channel.ts';
import { crashPoint } from '../src/core/crash.ts';
import { SendError } from '../src/core/errors.ts';
import { isNotificationKind, renderNotification } from '../src/core/notifications.ts';
import { STATUS_LABELS } from '../src/core/report.ts';
import { NotifyBatchJobSchema, NotifyJobSchema, ReplyTargetSchema, type ReplyTarget } from '../src/queue/jobs.ts';
import { withTransaction } from '../src/store/db.ts';
import * as store from '../src/store/reports.ts';
import type { WorkerDeps } from './deps.ts';

/**
 * Notify: one queue per channel (`notify-<channel>`), so a slow or throttled provider holds back only
 * its own messages. Every notification is an outbound row (`messages`, status 'queued') before it is
 * sent: intake writes them in the commit that files the reports and hands their ids over in one job
 * (`batch`); other stages add one job per notification (`NotifyJob`), whose row is written here.
 *
 * Rows are sent under a row lock, only while still 'queued', and marked in one statement in the same
 * transaction: two jobs naming the same row (a replay) never both send it, and a crash before the
 * commit leaves it 'queued' for the retry. (A crash between the provider's answer and our commit can
 * still send twice: at-least-once, as every provider's API allows.)
 */
export function createNotifyProcessor(deps: WorkerDeps, adapter: ChannelAdapter<never>, worker: () => Worker | undefined) {
  const { log } = deps;

  return async function processNotify(job: Job, token?: string): Promise<string> {
    if (adapter.canSend && !adapter.canSend() && token) {
      // Taken in the moment before this worker paused (workers/run.ts sendGate): back to the queue
      // for a second, without spending an attempt, for a process that can send.
      await job.moveToDelayed(Date.now() + 1_000, token);
      throw new DelayedError();
    }
    const single = job.name !== 'batch';
    const claimed = single ? await claimOne(deps, adapter, job) : { ids: batchIds(job), target: undefined };
    if (typeof claimed === 'string') return claimed;

    const outcome = await sendQueued(deps, adapter, claimed.ids, claimed.target);
    const retryable = outcome.failures.filter((f) => f.retryable);
    for (const f of outcome.failures) log.warn({ err: f.error, channel: adapter.id, code: f.error.code, messageId: f.id }, 'send failed');
    if (retryable.length) {
      const throttled = retryable.find((f) => f.error.code === 'throttled' && f.error.retryAfterMs);
      const current = worker();
      if (throttled && current) {
        // Pause this channel's whole queue, not just this job: the provider throttles the account.
        await current.rateLimit(throttled.error.retryAfterMs!);
        throw Worker.RateLimitError();
      }
      // What was sent is marked; the retry sends only what is still queued.
      throw retryable[0]!.error;
    }
    const permanent = outcome.failures[0];
    if (single && permanent) throw new UnrecoverableError(`${permanent.error.code}: ${permanent.error.message}`);
    if (single) return outcome.marks[0]?.error === NO_ADDRESS ? 'no_target' : (outcome.marks[0]?.status ?? 'sent by another job');
    const failed = outcome.marks.filter((m) => m.status === 'failed').length;
    return `${outcome.marks.length - failed} sent, ${failed} failed, ${claimed.ids.length - outcome.marks.length} already handled`;
  };
}

function batchIds(job: Job): string[] {
  const parsed = NotifyBatchJobSchema.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError('malformed notify batch job');
  return parsed.data.ids;
}

/**
 * A notification asked for by a job of its own: rendered now (with the report's current state) and
 * recorded as its outbound row, once — a replayed job finds the row and sends only if still queued.
 */
async function claimOne(deps: WorkerDeps, adapter: ChannelAdapter<never>, job: Job): Promise<{ ids: string[]; target: ReplyTarget | undefined } | string> {
  const parsed = NotifyJobSchema.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError('malformed notify job');
  const n = parsed.data;
  const { db, keys } = deps;

  const report = n.trackingId ? await store.findReport(db, n.trackingId) : undefined;
  // An agency's answer or question travels in the job only as the id of its (sealed) thread row.
  const threadText = n.threadMessageId && report ? await threadMessageText(deps, report.seq, n.threadMessageId) : undefined;
  const text = renderNotification(n.kind, n.lang, {
    trackingId: n.trackingId,
    agency: report?.agencyName ?? undefined,
    status: report ? STATUS_LABELS[report.status][n.lang] : undefined,
    link: n.trackingId ? `${deps.config.publicUrl.replace(/\/$/, '')}/lapor/${n.trackingId}` : undefined,
    ...(threadText !== undefined ? (n.kind === 'answered' ? { answer: threadText } : { reason: threadText }) : {}),
    ...n.vars,
  });
  const outbound = await store.claimOutbound(db, {
    seq: report?.seq ?? null,
    channel: adapter.id,
    notifyKey: n.notifyKey,
    kind: n.kind,
    sealedText: keys.seal('thread', text),
  });
  if (outbound.status !== 'queued') return `already ${outbound.status}`;
  // A reply to a message (a status query, help) goes where the message came from; anything else to the reporter.
  return { ids: [outbound.id], target: n.target ? ReplyTargetSchema.parse(keys.open('queue', n.target)) : undefined };
}

const NO_ADDRESS = 'no address to reply to';

interface Failure {
  id: string;
  error: SendError;
  retryable: boolean;
}

/**
 * Sends the rows of `ids` still queued and marks them, in one transaction: `FOR UPDATE SKIP LOCKED`
 * lets a second job naming the same rows pass them by while the first sends them.
 */
async function sendQueued(
  deps: WorkerDeps,
  adapter: ChannelAdapter<never>,
  ids: readonly string[],
  target: ReplyTarget | undefined,
): Promise<{ marks: store.OutboundMark[]; failures: Failure[] }> {
  const { keys } = deps;
  return withTransaction(deps.db, async (tx) => {
    const rows = await store.lockQueuedOutbound(tx, ids);
    const failures: Failure[] = [];
    const marks: store.OutboundMark[] = [];
    await Promise.all(
      rows.map(async (row) => {
        const to = target ?? reporterTarget(deps, row.sealedReporter);
        if (!to && adapter.id !== 'web') {
          marks.push({ id: row.id, status: 'failed', error: NO_ADDRESS });
          return;
        }
        try {
          const result: SendResult = await adapter.send({
            trackingId: row.trackingId ?? undefined,
            key: row.notifyKey,
            text: String(keys.open('thread', row.sealedText)),
            to: to?.to,
            replyContext: to?.replyContext ?? {},
            kind: isNotificationKind(row.kind) ? row.kind : undefined,
            privacy: row.privacy,
            lang: row.lang ?? deps.config.lang,
          });
          marks.push({ id: row.id, status: result.status, transportId: result.transportId });
        } catch (err) {
          if (!(err instanceof SendError)) throw err;
          failures.push({ id: row.id, error: err, retryable: err.retryable });
          if (!err.retryable) marks.push({ id: row.id, status: 'failed', error: `${err.code}: ${err.message}` });
        }
      }),
    );
    crashPoint('notify-sent');
    await store.markOutboundMany(tx, marks);
    return { marks, failures };
  });
}

async function threadMessageText(deps: WorkerDeps, seq: string, id: string): Promise<string | undefined> {
  const { rows } = await deps.db.query<{ sealed: string }>('SELECT sealed_text AS sealed FROM messages WHERE id = $1 AND report_seq = $2', [id, seq]);
  return rows[0] ? String(deps.keys.open('thread', rows[0].sealed)) : undefined;
}

function reporterTarget(deps: WorkerDeps, sealed: string | null): ReplyTarget | undefined {
  if (!sealed) return undefined;
  const reporter = deps.keys.open('reporter', sealed) as { address?: string; replyContext?: Record<string, string> };
  return reporter.address ? { to: reporter.address, replyContext: reporter.replyContext ?? {} } : undefined;
}
