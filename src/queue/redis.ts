import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Two kinds of connection. Workers block on Redis and must wait through a reconnect
 * (`maxRetriesPerRequest: null`, as BullMQ requires). Producers — the adapters' enqueue path — must
 * fail at once when Redis is away, so an adapter can answer "try again later" (HTTP 503, SMPP
 * ESME_RX_T_APPN) instead of holding its upstream until it times out and redelivers.
 */
export type RedisRole = 'worker' | 'producer';

export function createRedis(url: string, role: RedisRole, log: Logger): Redis {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : // Auto-pipelining batches the commands of concurrent requests into one write: fewer system
        // calls per message on the enqueue path, the same replies.
        { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000, commandTimeout: 5_000, enableAutoPipelining: true };
  const redis = new Redis(url, {
    ...options,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(200 * 2 ** Math.min(times, 5), 5_000),
  });
  let lastLogged = 0;
  redis.on('error', (err: Error) => {
    // A down Redis raises an error per reconnect attempt; once every 10 s is enough to be seen.
    if (Date.now() - lastLogged > 10_000) {
      lastLogged = Date.now();
      log.warn({ err, role }, 'redis connection error');
    }
  });
  return redis;
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitForRedis(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

export interface DurabilityRequirement {
  fsync: 'always' | 'everysec';
  allowUnsafe: boolean;
}

export class UnsafeRedisError extends Error {
  readonly code = 'LAPOR_REDIS_UNSAFE';
  constructor(readonly problems: string[]) {
    super(
      `Redis is not configured to keep acknowledged messages:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
        'Fix the Redis configuration, or set LAPOR_REDIS_ALLOW_UNSAFE=true to run anyway (never in production).',
    );
    this.name = 'UnsafeRedisError';
  }
}

/**
 * An adapter acknowledges its upstream once the job is in Redis, so Redis's persistence IS our
 * guarantee: AOF on, fsync at least as strict as configured, and no eviction (an evicted job lock
 * or dedup key loses or duplicates messages; BullMQ itself only warns). Returns the problems found;
 * throws unless `allowUnsafe`.
 */
export async function checkRedisDurability(redis: Redis, want: DurabilityRequirement, log: Logger): Promise<string[]> {
  const problems: string[] = [];
  let settings: Record<string, string> = {};
  try {
    const reply = (await redis.call('CONFIG', 'GET', '*')) as string[];
    for (let i = 0; i + 1 < reply.length; i += 2) settings[reply[i]!] = reply[i + 1]!;
  } catch (err) {
    problems.push(`cannot read the configuration (CONFIG GET refused: ${(err as Error).message}); verify by hand`);
    settings = {};
  }
  if (Object.keys(settings).length) {
    if (settings['maxmemory-policy'] !== 'noeviction') {
      problems.push(`maxmemory-policy is ${settings['maxmemory-policy']}; set: CONFIG SET maxmemory-policy noeviction`);
    }
    if (settings.appendonly !== 'yes') problems.push('appendonly is no; set: CONFIG SET appendonly yes');
    const fsync = settings.appendfsync;
    if (want.fsync === 'always' && fsync !== 'always') {
      problems.push(`appendfsync is ${fsync}; set: CONFIG SET appendfsync always (or LAPOR_REDIS_FSYNC=everysec to accept losing up to a second)`);
    } else if (want.fsync === 'everysec' && fsync === 'no') {
      problems.push('appendfsync is no; set: CONFIG SET appendfsync everysec');
    }
  }
  if (problems.length) {
    if (!want.allowUnsafe) throw new UnsafeRedisError(problems);
    log.warn({ problems }, 'redis durability checks failed; running anyway because LAPOR_REDIS_ALLOW_UNSAFE is set');
  }
  return problems;
}
