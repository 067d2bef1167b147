import { Queue, type JobsOptions, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.ts';
import type { IntakeSink } from '../core/channel.ts';
import type { DataKeys } from '../core/crypto.ts';
import { InboundRefusedError } from '../core/errors.ts';
import { CHANNEL_IDS, InboundMessageSchema, type ChannelId, type InboundMessageInput } from '../core/inbound.ts';
import { EffectSchema, type Effect, type InboundJob, type NotifyJobInput, type VerifyJob } from './jobs.ts';
import { DEADLINES_QUEUE, INBOUND_QUEUE, VERIFY_QUEUE, notifyQueueName } from './names.ts';

/** Raised when Redis cannot take a job right now: adapters answer "try again later". */
export class EnqueueUnavailableError extends Error {
  readonly code = 'LAPOR_ENQUEUE_UNAVAILABLE';
  constructor(cause: unknown) {
    super('the queue is unavailable, try again later', { cause });
    this.name = 'EnqueueUnavailableError';
  }
}

export type EnqueueResult = { status: 'queued' } | { status: 'duplicate' };

/**
 * Job options set on purpose: BullMQ's defaults (one attempt, keep every job forever) lose a job on
 * the first database blip and grow Redis without bound.
 */
export function jobOptions(config: Config): JobsOptions {
  return {
    attempts: config.queue.attempts,
    backoff: { type: 'exponential', delay: config.queue.backoffMs },
    removeOnComplete: { age: config.queue.keepCompletedHours * 3600 },
    removeOnFail: { age: config.queue.keepFailedDays * 86_400 },
  };
}

export function workerOptions(config: Config, connection: Redis, concurrency: number): WorkerOptions {
  return {
    connection,
    prefix: config.queue.prefix,
    concurrency,
    lockDuration: config.queue.lockMs,
    stalledInterval: Math.max(1_000, Math.floor(config.queue.lockMs / 2)),
    maxStalledCount: config.queue.maxStalled,
    autorun: false,
  };
}

/** The producer side of every queue, on one fail-fast connection. */
export class Queues {
  readonly inbound: Queue<InboundJob>;
  readonly verify: Queue<VerifyJob>;
  readonly notify: ReadonlyMap<ChannelId, Queue<NotifyJobInput>>;
  readonly deadlines: Queue;
  private readonly byName = new Map<string, Queue>();

  constructor(
    readonly config: Config,
    readonly redis: Redis,
    private readonly keys: DataKeys,
    private readonly log: Logger,
  ) {
    const options = { connection: redis, prefix: config.queue.prefix, defaultJobOptions: jobOptions(config) };
    this.inbound = this.track(new Queue<InboundJob>(INBOUND_QUEUE, options));
    this.verify = this.track(new Queue<VerifyJob>(VERIFY_QUEUE, options));
    this.notify = new Map(CHANNEL_IDS.map((c) => [c, this.track(new Queue<NotifyJobInput>(notifyQueueName(c), options))]));
    this.deadlines = this.track(new Queue(DEADLINES_QUEUE, options));
  }

  private track<Q extends Queue>(queue: Q): Q {
    queue.on('error', (err) => this.log.warn({ err, queue: queue.name }, 'queue error'));
    this.byName.set(queue.name, queue);
    return queue;
  }

  all(): Queue[] {
    return [...this.byName.values()];
  }

  get(name: string): Queue | undefined {
    return this.byName.get(name);
  }

  private dedupKey(key: string): string {
    return `${this.config.queue.prefix}:dedup:${key}`;
  }

  /**
   * Stores one inbound message durably, once. Returns only after Redis has the job (and, with
   * `appendfsync always`, has it on disk), so the adapter may then acknowledge its upstream.
   *
   * The message is parsed with InboundMessageSchema first, the one normalization every channel goes
   * through: what is stored is what the intake worker and PostgreSQL accept, and what cannot be made
   * acceptable is refused here (`InboundRefusedError`), before anything is acknowledged.
   *
   * The job id is the dedup key, which catches a redelivery while the job is kept; the dedup key in
   * Redis covers the provider's whole redelivery window; the PostgreSQL receipt behind both covers
   * anything older. The key is set after the add, so a crash between the two can only cause an
   * extra (harmless) check, never a lost message.
   */
  async enqueueInbound(input: InboundMessageInput, windowMs: number, equivalentKeys: readonly string[] = []): Promise<EnqueueResult> {
    const parsed = InboundMessageSchema.safeParse(input);
    if (!parsed.success) {
      throw new InboundRefusedError(parsed.error.issues.map((i) => ({ path: `/${i.path.join('/')}`, message: i.message })));
    }
    const message = parsed.data;
    try {
      // `equivalentKeys`: other keys the same message may have had (SMS: the previous dedup window's).
      const keys = [message.dedupKey, ...equivalentKeys].map((k) => this.dedupKey(k));
      // windowMs 0: the dedup key is new by construction (the web channel's fresh tracking ID).
      if (windowMs > 0 && (await this.redis.exists(...keys)) > 0) return { status: 'duplicate' };
      const sealed = this.keys.seal('queue', message);
      await this.inbound.add('message', { channel: message.channel, dedupKey: message.dedupKey, sealed }, { jobId: message.dedupKey });
      if (windowMs > 0) await this.redis.set(this.dedupKey(message.dedupKey), '1', 'PX', windowMs);
      return { status: 'queued' };
    } catch (err) {
      throw new EnqueueUnavailableError(err);
    }
  }

  /** The producer side as an adapter sees it (src/core/channel.ts). */
  get sink(): IntakeSink {
    return { enqueue: (message, options) => this.enqueueInbound(message, options.windowMs, options.equivalentKeys) };
  }

  /** Adds the jobs a committed transaction asked for. Job ids make a repeat harmless. */
  async addEffects(effects: readonly Effect[]): Promise<void> {
    // Independent jobs: added together, in one round of pipelined commands.
    await Promise.all(
      effects.map((raw) => {
        const effect = EffectSchema.parse(raw);
        const queue = this.byName.get(effect.queue);
        if (!queue) throw new Error(`effect for unknown queue ${effect.queue}`);
        return queue.add(effect.name, effect.data, { jobId: effect.jobId });
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((q) => q.close()));
  }
}

export function notifyEffect(channel: ChannelId, job: NotifyJobInput): Effect {
  return { queue: notifyQueueName(channel), name: job.kind, jobId: job.notifyKey, data: { ...job } };
}

export function verifyEffect(trackingId: string): Effect {
  return { queue: VERIFY_QUEUE, name: 'verify', jobId: `v_${trackingId}`, data: { trackingId } };
}
