import type { Job } from 'bullmq';
import { removeUnclaimedAttachments } from '../src/store/attachments.ts';
import { sweepOutbox } from '../src/store/cases.ts';
import { sweepDeadlines } from '../src/store/clocks.ts';
import type { ChannelId } from '../src/core/inbound.ts';
import { staleQueuedOutbound } from '../src/store/reports.ts';
import type { WorkerDeps } from './deps.ts';

/**
 * The deadline stage: one repeating job (a BullMQ job scheduler, kept in Redis, so one schedule
 * however many processes run the stage and across restarts) whose run records breached deadlines,
 * closes answered reports nobody replied to, publishes notifications a crash left in the outbox
 * (and offers again replies whose notify job was lost),
 * and removes uploads no report claimed within a day. A sweep is safe to race (src/store/clocks.ts), so a second process, or `lapor deadlines
 * sweep` by hand, never does anything twice.
 */

export const SWEEP_SCHEDULER_ID = 'deadline-sweep';

export async function scheduleSweeps(deps: WorkerDeps): Promise<void> {
  await deps.queues.deadlines.upsertJobScheduler(SWEEP_SCHEDULER_ID, { every: deps.config.deadlines.sweepIntervalMs }, { name: 'sweep', data: {} });
}

/** Replies queued this long are taken for lost: a notify job sends or fails a reply within minutes. */
const STALE_REPLY_MS = 10 * 60_000;

/**
 * Offers replies left 'queued' to notify again. The job id names the rows, so while a job for the
 * same rows exists (waiting, retrying, kept after it ended) nothing is added twice; notify sends
 * only what is still queued, under a row lock, so an offer never sends a reply twice.
 */
async function offerStaleReplies(deps: WorkerDeps): Promise<number> {
  const stale = await staleQueuedOutbound(deps.db, STALE_REPLY_MS);
  let offered = 0;
  for (const [channel, ids] of stale) {
    if (!deps.queues.notify.has(channel as ChannelId)) continue;
    await deps.queues.addNotifyBatch(channel as ChannelId, ids, `ns_${channel}_${ids[0]}_${ids.at(-1)}_${ids.length}`);
    offered += ids.length;
  }
  return offered;
}

export function createDeadlineProcessor(deps: WorkerDeps) {
  const publish = (effects: Parameters<typeof deps.queues.addEffects>[0]) => deps.queues.addEffects(effects);
  return async function processSweep(_job: Job): Promise<string> {
    const result = await sweepDeadlines(deps.db, new Date(), publish);
    const republished = (await sweepOutbox(deps.db, publish)) + (await offerStaleReplies(deps));
    const abandoned = await removeUnclaimedAttachments(deps.db);
    if (result.breaches || result.autoClosed.length || republished || abandoned) {
      deps.log.info({ breaches: result.breaches, autoClosed: result.autoClosed.length, republished, abandonedUploads: abandoned }, 'deadline sweep');
    }
    return `${result.breaches} breached, ${result.autoClosed.length} auto-closed, ${republished} republished`;
  };
}
