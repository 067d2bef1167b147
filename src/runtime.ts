import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { loadHolidays } from '../config/holidays.ts';
import { loadRules } from '../config/load.ts';
import { WorkingCalendar } from './core/calendar.ts';
import type { RulesConfig } from '../config/rules.ts';
import type { Config } from '../config/schema.ts';
import type { WorkerDeps } from '../workers/deps.ts';
import { armCrashPoint } from './core/crash.ts';
import { createAttachmentSink } from './store/attachments.ts';
import { createCursorStore } from './store/cursors.ts';
import { createDeliverySink } from './deliveries.ts';
import { DataKeys } from './core/crypto.ts';
import { TrackingIdCodec } from './core/tracking-id.ts';
import { loadKeys } from './local/keys.ts';
import { StartupError, reservePort } from './local/services.ts';
import { attachLocalStores } from './local/shared.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { Queues } from './queue/queues.ts';
import { checkRedisDurability, createRedis, hashTag, waitForRedis, type RedisClient } from './queue/redis.ts';
import { createAdapters } from './registry.ts';
import { createDb } from './store/db.ts';
import { migrate } from './store/migrate.ts';
import type { ChannelId } from './core/inbound.ts';

/**
 * The composition root shared by every role: resolves the stores (starting local ones when none
 * is configured), checks them, and builds what workers and the HTTP API are given. `close()` undoes
 * it in reverse order.
 */
export interface Runtime extends WorkerDeps {
  producer: RedisClient;
  metrics: Metrics;
  /** A new blocking connection, for each BullMQ worker. */
  connectWorker(): RedisClient;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Run migrations (every role does at start; `lapor migrate` does only that). */
  migrate?: boolean;
  rules?: RulesConfig;
  /** Pull channels this process runs (SMPP binds…); the web channel is always there. */
  channels?: readonly ChannelId[];
  /** Which command this process runs, recorded among the users of shared local services. */
  role?: string;
}

export async function openRuntime(config: Config, log: Logger, options: RuntimeOptions = {}): Promise<Runtime> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch((err: unknown) => log.warn({ err }, 'error while closing'));
  };
  armCrashPoint(config.test.crashAt);
  checkClusterSettings(config);
  try {
    const local = await localServices(config, log, closers, options.role ?? 'lapor');
    const keys = loadKeys(config);
    if (keys.file) log.warn({ file: keys.file }, 'using generated keys: set LAPOR_DATA_KEY and LAPOR_TRACKING_KEY in production');

    const databaseUrl = config.databaseUrl ?? local.databaseUrl!;
    if (options.migrate !== false) await migrate(databaseUrl, log);
    const db = createDb(databaseUrl, log, { max: config.databasePoolSize });
    closers.push(() => db.end());

    const redisUrl = config.redisUrl ?? local.redisUrl!;
    const cluster = config.redis.cluster;
    const producer = createRedis(redisUrl, 'producer', log, { cluster });
    closers.push(async () => void (await producer.quit().catch(() => producer.disconnect())));
    await waitForRedis(producer);
    // A cluster node serves only its own slots: as a single server it would answer MOVED later, not now.
    if (!cluster && /cluster_enabled:1/.test(await producer.info('cluster').catch(() => ''))) {
      throw new StartupError('LAPOR_REDIS_URL names a node of a Redis Cluster: set LAPOR_REDIS_CLUSTER=true.');
    }
    await checkRedisDurability(producer, config.redis, log);

    const dataKeys = new DataKeys(keys.dataKey);
    const queues = new Queues(config, producer, dataKeys, log);
    closers.push(() => queues.close());
    const metrics = createMetrics(queues);
    const deliveries = createDeliverySink(db, log);
    closers.push(async () => deliveries.close());
    const adapters = createAdapters(
      { config, redis: producer, log, intake: queues.sink, deliveries, cursors: createCursorStore(db), attachments: createAttachmentSink(db, config.attachments.maxBytes), keys: dataKeys, metrics },
      options.channels ?? [],
    );
    metrics.breaches.probe = async () =>
      (
        await db.query<{ clock: string; agency: string; count: number }>(
          `SELECT data->>'clock' AS clock, COALESCE(data->>'agency', '-') AS agency, count(*)::int AS count
           FROM report_events WHERE type = 'deadline_breached' GROUP BY 1, 2`,
        )
      ).rows;
    metrics.links.probe = () => [...adapters.values()].flatMap((a) => (a.links?.() ?? []).map((status) => ({ channel: a.id, status })));

    const calendar = new WorkingCalendar(loadHolidays(config.holidaysFile), {
      onMissingYear: (err) => log.error({ err: { message: err.message, code: err.code }, year: err.year }, 'holiday data missing: deadlines of that year count weekends only'),
    });
    const lastYear = Math.max(...calendar.years);
    if (new Date().getUTCFullYear() >= lastYear) {
      log.warn({ lastYear }, `holiday data ends with ${lastYear}: add ${lastYear + 1} (its SKB) with LAPOR_HOLIDAYS_FILE before deadlines reach it`);
    }
    if (calendar.provisionalYears.length) log.debug({ years: calendar.provisionalYears }, 'holidays of these years are provisional (no decree yet): LAPOR_HOLIDAYS_FILE replaces them');
    return {
      config,
      rules: options.rules ?? loadRules(config),
      clocks: { calendar, days: config.deadlines },
      db,
      queues,
      keys: dataKeys,
      codec: new TrackingIdCodec(keys.trackingKey),
      adapters,
      log,
      producer,
      metrics,
      connectWorker: () => createRedis(redisUrl, 'worker', log, { cluster }),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * A cluster runs a MULTI, a Lua script or an MGET only on keys of one slot. Every key of the gateway
 * starts with the queue prefix, so a prefix with a hash tag keeps them in one slot (see
 * src/queue/redis.ts); without one, BullMQ and our own multi-key commands fail with CROSSSLOT.
 */
function checkClusterSettings(config: Config): void {
  if (!config.redis.cluster) return;
  if (!config.redisUrl) throw new StartupError('LAPOR_REDIS_CLUSTER=true needs LAPOR_REDIS_URL naming a node of the cluster: the local Redis is a single server.');
  if (!hashTag(config.queue.prefix)) {
    throw new StartupError(`LAPOR_QUEUE_PREFIX must hold a hash tag in braces on a Redis Cluster, e.g. {lapor}: ${config.queue.prefix} has none.`);
  }
}

/** The local Redis and PostgreSQL of `dataDir`, for whichever of the two has no URL configured. */
async function localServices(config: Config, log: Logger, closers: (() => Promise<void>)[], role: string) {
  if (config.redisUrl && config.databaseUrl) return {};
  const dataDir = resolve(config.dataDir);
  // Our own HTTP port is not free for a local service, though nothing listens on it yet.
  reservePort(config.port);
  const stores = await attachLocalStores({
    dataDir,
    redis: !config.redisUrl,
    postgres: !config.databaseUrl,
    fsync: config.redis.fsync,
    role,
    log,
  });
  closers.push(() => stores.release());
  if (stores.started.length) log.info({ started: stores.started, redis: stores.redisUrl, postgres: stores.databaseUrl, dataDir }, 'started local services');
  if (stores.attached.length) log.info({ attached: stores.attached, redis: stores.redisUrl, postgres: stores.databaseUrl, dataDir }, 'using the local services already running');
  return { redisUrl: stores.redisUrl, databaseUrl: stores.databaseUrl };
}
