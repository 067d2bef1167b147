import { randomUUID } from 'node:crypto';
import { Queue, type JobsOptions, type WorkerOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.ts';
import type { IntakeSink } from '../core/channel.ts';
import type { DataKeys } from '../core/crypto.ts';
import { InboundRefusedError } from '../core/errors.ts';
import { CHANNEL_IDS, InboundMessageSchema, type ChannelId, type InboundMessageInput } from '../core/inbound.ts';
import { crashPoint } from '../core/crash.ts';
import { Coalescer } from './coalescer.ts';
import { EffectSchema, type Effect, type InboundBatchJob, type InboundJob, type NotifyBatchJob, type NotifyJobInput } from './jobs.ts';
import { DEADLINES_QUEUE, INBOUND_QUEUE, notifyQueueName } from './names.ts';
import { LuaScript, type RedisClient } from './redis.ts';

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
 * Sets the dedup keys of stored messages, each for its own window, in one call (a SET per message
 * in a pipeline cost the adapters a Redis command each). KEYS: dedup keys; ARGV[i]: key i's window in ms.
 */
const REMEMBER = new LuaScript(`
for i, key in ipairs(KEYS) do redis.call('SET', key, '1', 'PX', ARGV[i]) end
return #KEYS
`);

/** A message on its way into a flush: its job, the dedup keys to check and the one to set. */
interface Enqueued {
  job: InboundJob;
  dedupKeys: string[];
  windowMs: number;
}

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

export function workerOptions(config: Config, connection: RedisClient, concurrency: number): WorkerOptions {
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
  readonly inbound: Queue<InboundJob | InboundBatchJob>;
  readonly notify: ReadonlyMap<ChannelId, Queue<NotifyJobInput | NotifyBatchJob>>;
  readonly deadlines: Queue;
  private readonly byName = new Map<string, Queue>();
  private readonly coalescer: Coalescer<Enqueued, EnqueueResult>;

  constructor(
    readonly config: Config,
    readonly redis: RedisClient,
    private readonly keys: DataKeys,
    private readonly log: Logger,
  ) {
    const options = { connection: redis, prefix: config.queue.prefix, defaultJobOptions: jobOptions(config) };
    this.inbound = this.track(new Queue<InboundJob | InboundBatchJob>(INBOUND_QUEUE, options));
    this.notify = new Map(CHANNEL_IDS.map((c) => [c, this.track(new Queue<NotifyJobInput | NotifyBatchJob>(notifyQueueName(c), options))]));
    this.deadlines = this.track(new Queue(DEADLINES_QUEUE, options));
    this.coalescer = new Coalescer<Enqueued, EnqueueResult>(
      {
        maxItems: config.queue.batchMax,
        maxBytes: 1024 * 1024,
        maxWaitMs: config.queue.batchWaitMs,
        // Two flushes on their way to Redis: the next batch fills while they are fsynced.
        maxInFlight: 2,
      },
      (items) => this.flushInbound(items),
      (item) => item.job.sealed.length,
    );
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
   * Stores one inbound message durably, once. Resolves only after Redis has it (and, with
   * `appendfsync always`, has it on disk), so the adapter may then acknowledge its upstream.
   *
   * The message is parsed with InboundMessageSchema first, the one normalization every channel goes
   * through: what is stored is what the intake worker and PostgreSQL accept, and what cannot be made
   * acceptable is refused here (`InboundRefusedError`), before anything is acknowledged.
   *
   * Messages that arrive together are stored together: one job, one write, one fsync for the lot
   * (`flushInbound`). What makes a message count once is PostgreSQL's receipt (its unique key); the
   * dedup key in Redis only spares the work for a redelivery within the provider's window.
   */
  async enqueueInbound(input: InboundMessageInput, windowMs: number, equivalentKeys: readonly string[] = []): Promise<EnqueueResult> {
    const parsed = InboundMessageSchema.safeParse(input);
    if (!parsed.success) {
      throw new InboundRefusedError(parsed.error.issues.map((i) => ({ path: `/${i.path.join('/')}`, message: i.message })));
    }
    const message = parsed.data;
    // `equivalentKeys`: other keys the same message may have had (SMS: the previous dedup window's).
    const dedupKeys = windowMs > 0 ? [message.dedupKey, ...equivalentKeys].map((k) => this.dedupKey(k)) : [];
    const job: InboundJob = { channel: message.channel, dedupKey: message.dedupKey, sealed: this.keys.seal('queue', message) };
    return this.coalescer.add({ job, dedupKeys, windowMs });
  }

  /**
   * One flush: a read of the dedup keys (no fsync), one job for every message not known yet, and
   * only once that job is stored, the dedup keys. Never the key of a message whose store failed: a
   * key set for a lost message would turn its redelivery away.
   */
  private async flushInbound(items: Enqueued[]): Promise<EnqueueResult[]> {
    try {
      const checked = items.flatMap((item) => item.dedupKeys);
      const seen = checked.length ? await this.redis.mget(...checked) : [];
      const known = new Set(checked.filter((_, i) => seen[i] !== null));
      const taken = new Set<string>();
      const results: EnqueueResult[] = [];
      const jobs: InboundJob[] = [];
      for (const item of items) {
        // A message twice in one flush (a fast redelivery) is stored once.
        if (item.dedupKeys.some((k) => known.has(k)) || taken.has(item.job.dedupKey)) {
          results.push({ status: 'duplicate' });
          continue;
        }
        taken.add(item.job.dedupKey);
        jobs.push(item.job);
        results.push({ status: 'queued' });
      }
      if (jobs.length === 1) await this.inbound.add('message', jobs[0]!, { jobId: jobs[0]!.dedupKey });
      else if (jobs.length > 1) await this.inbound.add('batch', { messages: jobs }, { jobId: `b_${randomUUID()}` });
      crashPoint('inbound-stored');

      const remembered = items.filter((item, i) => item.windowMs > 0 && results[i]!.status === 'queued');
      if (remembered.length) {
        // The message is stored: a key that fails to be set only costs a check in PostgreSQL later.
        REMEMBER.run(this.redis, remembered.map((item) => item.dedupKeys[0]!), remembered.map((item) => item.windowMs))
          .catch((err: unknown) => this.log.warn({ err }, 'dedup keys not set'));
      }
      return results;
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

  /**
   * Asks the notify stage of a channel to send outbound rows a commit wrote. The job id is chosen by
   * the caller so a replay adds nothing new; sending twice is prevented by the rows themselves
   * (workers/notify.ts sends only what is still 'queued', under a row lock).
   */
  async addNotifyBatch(channel: ChannelId, ids: readonly string[], jobId: string): Promise<void> {
    const queue = this.notify.get(channel);
    if (!queue) throw new Error(`no notify queue for channel ${channel}`);
    await queue.add('batch', { ids: [...ids] }, { jobId });
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((q) => q.close()));
  }
}

export function notifyEffect(channel: ChannelId, job: NotifyJobInput): Effect {
  return { queue: notifyQueueName(channel), name: job.kind, jobId: job.notifyKey, data: { ...job } };
}
