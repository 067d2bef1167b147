import type { Job } from 'bullmq';
import { removeUnclaimedAttachments } from '../src/store/attachments.ts';
import { sweepOutbox } from '../src/store/cases.ts';
import { sweepDeadlines } from '../src/store/clocks.ts';
import type { WorkerDeps } from './deps.ts';

/**
 * The deadline stage: one repeating job (a BullMQ job scheduler, kept in Redis, so one schedule
 * however many processes run the stage and across restarts) whose run records breached deadlines,
 * closes answered reports nobody replied to, publishes notifications a crash left in the outbox,
 * and removes uploads no report claimed within a day. A sweep is safe to race (src/store/clocks.ts), so a second process, or `lapor deadlines
 * sweep` by hand, never does anything twice.
 */

export const SWEEP_SCHEDULER_ID = 'deadline-sweep';

export async function scheduleSweeps(deps: WorkerDeps): Promise<void> {
  await deps.queues.deadlines.upsertJobScheduler(SWEEP_SCHEDULER_ID, { every: deps.config.deadlines.sweepIntervalMs }, { name: 'sweep', data: {} });
}

export function createDeadlineProcessor(deps: WorkerDeps) {
  const publish = (effects: Parameters<typeof deps.queues.addEffects>[0]) => deps.queues.addEffects(effects);
  return async function processSweep(_job: Job): Promise<string> {
    const result = await sweepDeadlines(deps.db, new Date(), publish);
    const republished = await sweepOutbox(deps.db, publish);
    const abandoned = await removeUnclaimedAttachments(deps.db);
    if (result.breaches || result.autoClosed.length || republished || abandoned) {
      deps.log.info({ breaches: result.breaches, autoClosed: result.autoClosed.length, republished, abandonedUploads: abandoned }, 'deadline sweep');
    }
    return `${result.breaches} breached, ${result.autoClosed.length} auto-closed, ${republished} republished`;
  };
}
