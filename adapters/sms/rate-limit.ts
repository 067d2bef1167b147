import type { Cluster, Redis } from 'ioredis';
import { Coalescer } from '../../src/queue/coalescer.ts';

/**
 * Messages per number per hour, counted in Redis so every process sees the same count. The counts
 * of messages that arrive together (one socket read of deliver_sm) go to Redis in one pipeline: a
 * MULTI per message was a tenth of the SMS adapter's CPU in the bench:smpp profile. The key is
 * created with its expiry before it is counted (INCR keeps an expiry), so no counter outlives its
 * hour whatever fails in between.
 */
export class HourlyCounter {
  private readonly batches: Coalescer<string, number>;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
  ) {
    this.batches = new Coalescer({ maxItems: 500, maxBytes: 1024 * 1024, maxWaitMs: 2, maxInFlight: 2 }, (keys) => this.count(keys), (key) => key.length);
  }

  /** Counts one message from `sender` (a keyed hash of the number) and returns this hour's count. */
  add(sender: string, now = Date.now()): Promise<number> {
    return this.batches.add(`${this.prefix}:sms:rate:${sender}:${Math.floor(now / 3_600_000)}`);
  }

  private async count(keys: string[]): Promise<number[]> {
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.set(key, 0, 'PX', 3_600_000, 'NX').incr(key);
    const replies = (await pipeline.exec()) ?? [];
    return keys.map((_, i) => {
      const [err, count] = replies[i * 2 + 1] ?? [new Error('no reply')];
      if (err) throw err;
      return Number(count);
    });
  }
}
