import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { ChannelAdapter } from '../src/core/channel.ts';
import { SendError } from '../src/core/errors.ts';
import { renderNotification } from '../src/core/notifications.ts';
import { STATUS_LABELS } from '../src/core/report.ts';
import { NotifyJobSchema, ReplyTargetSchema, type ReplyTarget } from '../src/queue/jobs.ts';
import * as store from '../src/store/reports.ts';
import type { WorkerDeps } from './deps.ts';

/**
 * Notify: one queue per channel (`notify-<channel>`), so a slow or throttled provider holds back only
 * its own messages. The outbound row is written before the send and keyed by the notification, so
 * a replayed job does not send again once the provider accepted it. (A crash between the provider's
 * answer and our update can still send twice: at-least-once, as every provider's API allows.)
 */
export function createNotifyProcessor(deps: WorkerDeps, adapter: ChannelAdapter<never>, worker: () => Worker | undefined) {
  const { db, keys, log } = deps;

  return async function processNotify(job: Job): Promise<string> {
    const parsed = NotifyJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError('malformed notify job');
    const n = parsed.data;

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
    const target = n.target ? openTarget(deps, n.target) : report ? await reporterTarget(deps, report.reporterId) : undefined;

    const outbound = await store.claimOutbound(db, {
      seq: report?.seq ?? null,
      channel: adapter.id,
      notifyKey: n.notifyKey,
      kind: n.kind,
      sealedText: keys.seal('thread', text),
    });
    if (outbound.status !== 'queued') return `already ${outbound.status}`;
    if (!target && adapter.id !== 'web') {
      await store.markOutbound(db, outbound.id, { status: 'failed', error: 'no address to reply to' });
      return 'no_target';
    }

    try {
      const result = await adapter.send({
        trackingId: n.trackingId,
        key: n.notifyKey,
        text,
        to: target?.to,
        replyContext: target?.replyContext ?? {},
      });
      await store.markOutbound(db, outbound.id, { status: result.status, transportId: result.transportId });
      return result.status;
    } catch (err) {
      if (!(err instanceof SendError)) throw err;
      log.warn({ err, channel: adapter.id, code: err.code, trackingId: n.trackingId }, 'send failed');
      if (!err.retryable) {
        await store.markOutbound(db, outbound.id, { status: 'failed', error: `${err.code}: ${err.message}` });
        throw new UnrecoverableError(`${err.code}: ${err.message}`);
      }
      const current = worker();
      if (err.code === 'throttled' && err.retryAfterMs && current) {
        // Pause this channel's whole queue, not just this job: the provider throttles the account.
        await current.rateLimit(err.retryAfterMs);
        throw Worker.RateLimitError();
      }
      throw err;
    }
  };
}

async function threadMessageText(deps: WorkerDeps, seq: string, id: string): Promise<string | undefined> {
  const { rows } = await deps.db.query<{ sealed: string }>('SELECT sealed_text AS sealed FROM messages WHERE id = $1 AND report_seq = $2', [id, seq]);
  return rows[0] ? String(deps.keys.open('thread', rows[0].sealed)) : undefined;
}

function openTarget(deps: WorkerDeps, sealed: string): ReplyTarget {
  return ReplyTargetSchema.parse(deps.keys.open('queue', sealed));
}

async function reporterTarget(deps: WorkerDeps, reporterId: string | null): Promise<ReplyTarget | undefined> {
  if (!reporterId) return undefined;
  const { rows } = await deps.db.query<{ sealed: string }>('SELECT sealed FROM reporters WHERE id = $1', [reporterId]);
  if (!rows[0]) return undefined;
  const reporter = deps.keys.open('reporter', rows[0].sealed) as { address?: string; replyContext?: Record<string, string> };
  return reporter.address ? { to: reporter.address, replyContext: reporter.replyContext ?? {} } : undefined;
}
