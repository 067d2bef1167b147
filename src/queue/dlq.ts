import type { Queues } from './queues.ts';

export interface DeadLetter {
  queue: string;
  id: string;
  failedAt: string;
  attempts: number;
  reason: string;
}

/**
 * Dead letters are BullMQ's failed jobs, kept for LAPOR_QUEUE_KEEP_FAILED_DAYS. Their data is ids
 * and sealed boxes, so listing them shows no personal data.
 */
export async function listDeadLetters(queues: Queues, queueName?: string, limit = 1_000): Promise<DeadLetter[]> {
  const selected = queueName ? [requireQueue(queues, queueName)] : queues.all();
  const letters: DeadLetter[] = [];
  for (const queue of selected) {
    for (const job of await queue.getFailed(0, limit - 1)) {
      letters.push({
        queue: queue.name,
        id: String(job.id),
        failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : '-',
        attempts: job.attemptsMade,
        reason: (job.failedReason ?? '').slice(0, 200),
      });
    }
  }
  return letters;
}

/** Dead letters per queue, only the queues that have any. */
export async function countDeadLetters(queues: Queues): Promise<Record<string, number>> {
  const counts = await Promise.all(queues.all().map(async (queue) => [queue.name, await queue.getFailedCount()] as const));
  return Object.fromEntries(counts.filter(([, n]) => n > 0));
}

/** Moves dead letters back to waiting, with a fresh set of attempts. Returns how many moved. */
export async function replayDeadLetters(queues: Queues, queueName: string, ids: readonly string[] | 'all'): Promise<number> {
  const queue = requireQueue(queues, queueName);
  const jobs = ids === 'all' ? await queue.getFailed(0, -1) : await Promise.all(ids.map((id) => queue.getJob(id)));
  let replayed = 0;
  for (const job of jobs) {
    if (job && (await job.isFailed())) {
      await job.retry('failed', { resetAttemptsMade: true });
      replayed++;
    }
  }
  return replayed;
}

function requireQueue(queues: Queues, name: string) {
  const queue = queues.get(name);
  if (!queue) throw new Error(`no queue named ${name}; queues: ${queues.all().map((q) => q.name).join(', ')}`);
  return queue;
}
