import { UnrecoverableError, Worker, type Processor, type WorkerOptions } from 'bullmq';
import { workerOptions } from '../src/queue/queues.ts';
import { DEADLINES_QUEUE, INBOUND_QUEUE, notifyQueueName } from '../src/queue/names.ts';
import type { RedisClient } from '../src/queue/redis.ts';
import { createDeadlineProcessor, scheduleSweeps } from './deadline.ts';
import type { WorkerDeps } from './deps.ts';
import { createIntakeProcessor } from './intake.ts';
import { createNotifyProcessor } from './notify.ts';

export const WORKER_NAMES = ['intake', 'notify', 'deadline'] as const;
export type WorkerName = (typeof WORKER_NAMES)[number];

export interface RunningWorkers {
  workers: Worker[];
  /** Stops taking jobs and waits for the ones in flight (SIGTERM path). */
  close(): Promise<void>;
}

/**
 * Starts the named stages on one blocking connection per worker (BullMQ needs its own for each).
 * Every role scales out by starting more processes with the same command.
 */
export async function startWorkers(deps: WorkerDeps, names: readonly WorkerName[], connect: () => RedisClient): Promise<RunningWorkers> {
  const { config, log } = deps;
  const workers: Worker[] = [];
  const gates: NodeJS.Timeout[] = [];
  const connections: RedisClient[] = [];

  const start = (queue: string, processor: Processor, concurrency: number, bind?: (w: Worker) => void, extra: Partial<WorkerOptions> = {}) => {
    const connection = connect();
    connections.push(connection);
    const worker = new Worker(queue, processor, { ...workerOptions(config, connection, concurrency), ...extra });
    worker.on('error', (err) => log.error({ err, queue }, 'worker error'));
    worker.on('failed', (job, err) => {
      // An UnrecoverableError skips the remaining attempts: that, too, is a dead letter.
      const final = job !== undefined && (err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1));
      log[final ? 'error' : 'warn']({ err, queue, jobId: job?.id, attempt: job?.attemptsMade }, final ? 'job failed for good: dead letter' : 'job failed, will retry');
    });
    bind?.(worker);
    workers.push(worker);
    void worker.run().catch((err: unknown) => log.error({ err, queue }, 'worker stopped'));
  };

  if (names.includes('intake')) start(INBOUND_QUEUE, createIntakeProcessor(deps), config.queue.intakeConcurrency);
  if (names.includes('notify')) {
    for (const adapter of deps.adapters.values()) {
      let self: Worker | undefined;
      start(
        notifyQueueName(adapter.id),
        createNotifyProcessor(deps, adapter, () => self),
        config.queue.notifyConcurrency,
        (w) => {
          self = w;
          if (adapter.canSend) gates.push(sendGate(w, () => adapter.canSend!(), log));
        },
        { limiter: NOTIFY_LIMITER },
      );
    }
  }
  if (names.includes('deadline')) {
    await scheduleSweeps(deps);
    start(DEADLINES_QUEUE, createDeadlineProcessor(deps), 1);
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  log.info({ workers: workers.map((w) => w.name) }, 'workers started');

  return {
    workers,
    async close() {
      for (const gate of gates) clearInterval(gate);
      await Promise.all(workers.map((w) => w.close()));
      // BullMQ does not close a connection it was given.
      await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}

/**
 * A throttled channel pauses its notify queue with worker.rateLimit() (workers/notify.ts). BullMQ
 * keeps that pause in the queue's limiter key, which its scripts honour only for workers that have a
 * `limiter`: this one never limits by itself (a million jobs a second); it makes every notify worker,
 * in every process, wait out the pause, not only the one that was throttled.
 */
const NOTIFY_LIMITER = { max: 1_000_000, duration: 1_000 };

/**
 * Pauses a notify worker while its channel cannot send from this process (an SMSC bind held by
 * another process, or not bound yet) and resumes it when it can: the jobs wait for a process that
 * can send instead of failing here and spending their attempts (a standby could dead-letter them).
 */
function sendGate(worker: Worker, canSend: () => boolean, log: WorkerDeps['log']): NodeJS.Timeout {
  const gate = setInterval(() => {
    const can = canSend();
    if (!can && !worker.isPaused()) {
      log.info({ queue: worker.name }, 'cannot send from this process: notify paused');
      worker.pause(true).catch((err: unknown) => log.warn({ err, queue: worker.name }, 'notify pause failed'));
    } else if (can && worker.isPaused()) {
      log.info({ queue: worker.name }, 'can send again: notify resumed');
      worker.resume();
    }
  }, 250);
  gate.unref();
  return gate;
}
