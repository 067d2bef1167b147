import { createHash } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * The shared connection: one redis-server, or a Redis Cluster (`LAPOR_REDIS_CLUSTER`). Both take the
 * same commands, and BullMQ accepts either.
 */
export type RedisClient = Redis | Cluster;

/**
 * Two kinds of connection. Workers block on Redis and must wait through a reconnect
 * (`maxRetriesPerRequest: null`, as BullMQ requires). Producers — the adapters' enqueue path — must
 * fail at once when Redis is away, so an adapter can answer "try again later" (HTTP 503, SMPP
 * ESME_RX_T_APPN) instead of holding its upstream until it times out and redelivers.
 */
export type RedisRole = 'worker' | 'producer';

const retryStrategy = (times: number) => Math.min(200 * 2 ** Math.min(times, 5), 5_000);

/** `cluster`: `url` names one node of a Redis Cluster; the others are discovered from it. */
export function createRedis(url: string, role: RedisRole, log: Logger, options: { cluster?: boolean } = {}): RedisClient {
  const producer = role === 'producer';
  const perNode: RedisOptions = producer
    ? { maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: 5_000 }
    : { maxRetriesPerRequest: null };
  const redis = options.cluster
    ? createCluster(url, perNode, producer)
    : new Redis(url, {
        ...perNode,
        enableReadyCheck: true,
        enableOfflineQueue: !producer,
        // Auto-pipelining batches the commands of concurrent requests into one write: fewer system
        // calls per message on the enqueue path, the same replies.
        enableAutoPipelining: producer,
        lazyConnect: false,
        retryStrategy,
      });
  let lastLogged = 0;
  const onError = (err: Error, node?: string) => {
    // A down Redis raises an error per reconnect attempt; once every 10 s is enough to be seen.
    if (Date.now() - lastLogged > 10_000) {
      lastLogged = Date.now();
      log.warn({ err, role, ...(node ? { node } : {}) }, 'redis connection error');
    }
  };
  redis.on('error', (err: Error) => onError(err));
  // A cluster reports the errors of its node connections apart from its own.
  if (redis instanceof Cluster) redis.on('node error', (err: Error, node: string) => onError(err, node));
  return redis;
}

/**
 * Every key the gateway makes starts with the queue prefix (`{lapor}`), whose braces are a hash tag:
 * Redis hashes only the tag, so all keys share one slot and a MULTI, a Lua script or an MGET over
 * several of them is allowed in a cluster. The price: one master carries every key of the gateway,
 * its queues included, so a cluster adds failover (that master's replicas), not capacity.
 */
function createCluster(url: string, perNode: RedisOptions, producer: boolean): Cluster {
  const { protocol, hostname, port, username, password, pathname } = new URL(url);
  if (pathname.length > 1 && pathname !== '/0') throw new Error(`a Redis Cluster has only database 0: remove ${pathname} from LAPOR_REDIS_URL`);
  return new Cluster([{ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || 6379) }], {
    // Credentials and TLS are given to every node, not only the one named: the others are discovered.
    redisOptions: {
      ...perNode,
      ...(username ? { username: decodeURIComponent(username) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
      ...(protocol === 'rediss:' ? { tls: {} } : {}),
    },
    // A cluster keeps its own offline queue (its node connections always keep theirs, or a lazy
    // node could never be reached): the producer turns it off to fail fast, as above.
    enableOfflineQueue: !producer,
    enableReadyCheck: true,
    enableAutoPipelining: producer,
    clusterRetryStrategy: retryStrategy,
  });
}

/** The hash tag of a key as Redis finds it: between the first `{` and the next `}`, if not empty. */
export function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitForRedis(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
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
 * or dedup key loses or duplicates messages; BullMQ itself only warns). In a cluster every master
 * is checked: any of them may hold the keys after a resharding or a failover. Returns the problems
 * found; throws unless `allowUnsafe`.
 */
export async function checkRedisDurability(redis: RedisClient, want: DurabilityRequirement, log: Logger): Promise<string[]> {
  let problems: string[];
  if (redis instanceof Cluster) {
    const masters = redis.nodes('master');
    const perNode = await Promise.all(
      masters.map(async (node) => (await nodeProblems(node, want)).map((p) => `${node.options.host}:${node.options.port}: ${p}`)),
    );
    problems = masters.length ? perNode.flat() : ['the cluster shows no master; verify by hand'];
  } else {
    problems = await nodeProblems(redis, want);
  }
  if (problems.length) {
    if (!want.allowUnsafe) throw new UnsafeRedisError(problems);
    log.warn({ problems }, 'redis durability checks failed; running anyway because LAPOR_REDIS_ALLOW_UNSAFE is set');
  }
  return problems;
}

/** The durability problems of one redis-server. */
async function nodeProblems(redis: Redis, want: DurabilityRequirement): Promise<string[]> {
  const problems: string[] = [];
  const settings: Record<string, string> = {};
  try {
    const reply = (await redis.call('CONFIG', 'GET', '*')) as string[];
    for (let i = 0; i + 1 < reply.length; i += 2) settings[reply[i]!] = reply[i + 1]!;
  } catch (err) {
    return [`cannot read the configuration (CONFIG GET refused: ${(err as Error).message}); verify by hand`];
  }
  if (!Object.keys(settings).length) return problems;
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
  return problems;
}

/** EVALSHA first (the script is cached by Redis), EVAL once when Redis doesn't know it yet. */
export class LuaScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis | Cluster, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      // NOSCRIPT means nothing ran, so running the full script is not a second execution.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
