/**
 * What every benchmark needs around its measurements: its own redis-server (appendfsync always) and
 * PostgreSQL in a fresh temp dir on disk, and a teardown that stops everything in reverse order,
 * once, however the run ends — normally, on an error, on Ctrl-C, or at the hard timeout.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { configFields } from '../../config/load.ts';
import { createLogger } from '../../src/log.ts';
import { DEADLINES_QUEUE, INBOUND_QUEUE, notifyQueueName } from '../../src/queue/names.ts';
import { startLocalPostgres, startLocalRedis } from '../../src/local/services.ts';
import { BENCH_ROLE } from './costs.ts';
import { filesystemOf, until } from './lib.ts';
import { WORKER_PROFILE_IMPORT } from './profile.ts';

export class TimeoutError extends Error {}

/** What every benchmark's main() starts with: its deadline, a quiet logger, progress lines, a teardown. */
export function beginBench(timeoutS: number) {
  const startedAt = Date.now();
  return {
    startedAt,
    deadline: startedAt + timeoutS * 1000,
    log: createLogger({ level: 'warn', destination: pino.destination({ fd: 2, sync: true }) }),
    say: (line: string) => console.error(`· ${line}`),
    teardown: new Teardown(timeoutS),
  };
}

export class Teardown {
  interrupted = false;
  private readonly closers: { what: string; close: () => Promise<unknown> }[] = [];
  private readonly children: { kill(signal: NodeJS.Signals): unknown }[] = [];
  private readonly dirs: string[] = [];
  private running: Promise<void> | undefined;
  private readonly failsafe: NodeJS.Timeout;

  constructor(timeoutS: number) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        this.interrupted = true;
        console.error(`\n${signal}: stopping the gateway and the services…`);
        const force = setTimeout(() => (this.emergencyStop(), process.exit(130)), 15_000);
        void this.run().finally(() => {
          clearTimeout(force);
          process.exit(130);
        });
      });
    }
    // Last resort if something hangs past the hard timeout (the phases themselves stop at the deadline).
    this.failsafe = setTimeout(() => {
      console.error(`hard timeout: still running ${timeoutS + 30} s after the start; killing the services`);
      this.emergencyStop();
      process.exit(1);
    }, timeoutS * 1000 + 30_000);
    this.failsafe.unref();
  }

  /** Registers something to close; closed in reverse order of registration. */
  defer(what: string, close: () => Promise<unknown>): void {
    this.closers.push({ what, close });
  }

  /** A child process to SIGKILL, and a directory to remove, if a graceful stop cannot happen. */
  track(child?: { kill(signal: NodeJS.Signals): unknown }, dir?: string): void {
    if (child) this.children.push(child);
    if (dir) this.dirs.push(dir);
  }

  run(): Promise<void> {
    return (this.running ??= (async () => {
      for (const { what, close } of this.closers.reverse()) {
        await close().catch((err: unknown) => console.error(`cleanup: ${what}: ${(err as Error).message}`));
      }
      clearTimeout(this.failsafe);
    })());
  }

  private emergencyStop(): void {
    for (const child of this.children) child.kill('SIGKILL');
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

export interface BenchServices {
  dir: string;
  filesystem: string;
  redis: Awaited<ReturnType<typeof startLocalRedis>>;
  postgres: Awaited<ReturnType<typeof startLocalPostgres>>;
  /** With `measureCosts`: the same database as BENCH_ROLE, whose statements the cost meter leaves out. */
  benchUrl?: string;
}

/** Redis with `appendfsync always` and PostgreSQL (fsync on unless `pgFast`), in /tmp so fsync hits the disk. */
export async function startBenchServices(teardown: Teardown, log: Logger, options: { name: string; pgFast?: boolean; measureCosts?: boolean }): Promise<BenchServices> {
  const dir = mkdtempSync(`/tmp/lapor-bench-${options.name}-`);
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user and must reach its directory
  teardown.track(undefined, dir);
  teardown.defer('temp dir', async () => rmSync(dir, { recursive: true, force: true }));
  const redis = await startLocalRedis({ dir: join(dir, 'redis'), fsync: 'always', log });
  teardown.track(redis.child);
  teardown.defer('redis-server', () => redis.stop());
  const pgOptions = { dir: join(dir, 'pg'), fast: options.pgFast ?? false, log };
  let postgres = await startLocalPostgres(pgOptions);
  teardown.track(postgres.child);
  let benchUrl: string | undefined;
  if (options.measureCosts) {
    postgres = await restartForCosts(postgres, pgOptions);
    teardown.track(postgres.child);
    benchUrl = await addBenchRole(postgres.url);
  }
  // pg's Pool.end() resolves before its sockets are closed; stopping PostgreSQL at once would
  // terminate those backends and make the gateway log an "idle client error" for each.
  teardown.defer('postgres', async () => (await backendsGone(postgres.url), await postgres.stop()));
  return { dir, filesystem: filesystemOf(dir), redis, postgres, ...(benchUrl ? { benchUrl } : {}) };
}

/**
 * What the cost meter (costs.ts) needs from this cluster only: pg_stat_statements, which must be
 * preloaded (ALTER SYSTEM, then a restart on the same port, since src/local/services.ts takes no
 * extra settings), and WAL kept for 1 GB past a checkpoint, so pg_waldump can still read the WAL of
 * a phase to count its commits.
 */
async function restartForCosts(postgres: BenchServices['postgres'], options: Parameters<typeof startLocalPostgres>[0]): Promise<BenchServices['postgres']> {
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  try {
    await admin.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
    await admin.query("ALTER SYSTEM SET wal_keep_size = '1GB'");
  } finally {
    await admin.end();
  }
  await postgres.stop();
  return startLocalPostgres({ ...options, port: postgres.port });
}

/** The extension, and the role the benchmark's own queries run as (left out of the statement counts). */
async function addBenchRole(url: string): Promise<string> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    // Planning time too (known only once the library is loaded), so the cost table shows what each statement costs in all.
    await admin.query('ALTER SYSTEM SET pg_stat_statements.track_planning = on');
    await admin.query('SELECT pg_reload_conf()');
    // Superuser: it reads every table and every statistic; the cluster is the benchmark's own, on loopback.
    await admin.query(`CREATE ROLE ${BENCH_ROLE} LOGIN SUPERUSER`);
  } finally {
    await admin.end();
  }
  const bench = new URL(url);
  bench.username = BENCH_ROLE;
  return bench.toString();
}

/** `--batch 1,8,32`: distinct integers ≥ 1, in the order given. */
export function batchListOption(raw: string | undefined): number[] {
  if (raw === undefined) return [];
  const values = raw.split(',').map((v) => v.trim()).filter(Boolean).map(Number);
  if (!values.length || values.some((v) => !Number.isInteger(v) || v < 1 || v > 100_000)) {
    throw new UsageError(`--batch must be a comma-separated list of integers ≥ 1, e.g. 1,8,32,64; got ${raw}`);
  }
  return [...new Set(values)];
}

/**
 * LAPOR_QUEUE_BATCH_MAX for one gateway, if this build knows the setting. A build from before the
 * batching change refuses unknown LAPOR_ variables, so there the value is left out (and the
 * benchmark says "not applied").
 */
export function batchSetting(batchMax: number | undefined): { env: Record<string, string>; applied: boolean } {
  if (batchMax === undefined) return { env: {}, applied: false };
  const known = configFields().some((f) => f.env === 'LAPOR_QUEUE_BATCH_MAX');
  return known ? { env: { LAPOR_QUEUE_BATCH_MAX: String(batchMax) }, applied: true } : { env: {}, applied: false };
}

/**
 * The LAPOR_ settings of a gateway run against the services of a benchmark (or a script): its own
 * stores, fresh keys, quiet logs, a queue prefix of its own. `extra` adds or overrides.
 */
export function benchEnv(services: Pick<BenchServices, 'dir' | 'postgres' | 'redis'>, prefix: string, extra: Record<string, string> = {}) {
  return {
    LAPOR_ENV: 'development',
    LAPOR_DATABASE_URL: services.postgres.url,
    LAPOR_REDIS_URL: services.redis.url,
    LAPOR_DATA_DIR: join(services.dir, 'data'),
    LAPOR_DATA_KEY: randomBytes(32).toString('base64'),
    LAPOR_TRACKING_KEY: randomBytes(32).toString('base64'),
    LAPOR_LOG_LEVEL: 'warn',
    LAPOR_QUEUE_PREFIX: `{${prefix}}`,
    ...extra,
  };
}

export async function describeRedis(url: string) {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const get = async (name: string) => ((await redis.call('CONFIG', 'GET', name)) as string[])[1] ?? '?';
    const appendonly = await get('appendonly');
    const appendfsync = await get('appendfsync');
    const info = await redis.info('server');
    return { version: /redis_version:(\S+)/.exec(info)?.[1] ?? '?', appendonly, appendfsync };
  } finally {
    redis.disconnect();
  }
}

export async function describePostgres(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const show = async (name: string) => (await client.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]!;
    return { version: await show('server_version'), fsync: await show('fsync'), synchronousCommit: await show('synchronous_commit') };
  } finally {
    await client.end();
  }
}

/** Waits (≤ 2 s) until no client but this probe is connected to the benchmark's database. */
/**
 * Statistics for every table, as autovacuum keeps them on a live database: run after a warm-up, so
 * the measured phase does not run on plans made for empty tables (the foreign-key checks' cached
 * plans scanned reports whole until the next ANALYZE). ANALYZE invalidates those plans.
 */
export async function analyzeTables(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('ANALYZE');
  } finally {
    await client.end();
  }
}

export async function backendsGone(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await until(async () => {
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
      return rows[0]!.n === 0;
    }, Date.now() + 2_000, 20);
  } catch {
    // best effort
  } finally {
    await client.end().catch(() => undefined);
  }
}

export class UsageError extends Error {}

/** A numeric flag: the fallback when absent, a UsageError naming the flag when out of range. */
export function numberOption(name: string, raw: string | undefined, fallback: number, min: number, max: number, integer = true): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${raw}`);
  }
  return value;
}

// ── queues and the worker process ────────────────────────────────────────────────────────────

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The worker stage that consumes a queue: inbound → intake, notify-<channel> → notify, deadlines →
 * deadline, any other queue by its own name (verify, while that stage exists). Lets the benchmarks
 * work with whatever stages workers/run.ts has.
 */
export function stageOfQueue(name: string): string {
  if (name === INBOUND_QUEUE) return 'intake';
  if (name === DEADLINES_QUEUE) return 'deadline';
  if (name.startsWith('notify-')) return 'notify';
  return name;
}

export interface Depth {
  waiting: number;
  active: number;
  delayed: number;
  prioritized: number;
  waitingChildren: number;
  failed: number;
}

/**
 * Job counts per queue, read with plain LLEN/ZCARD in one pipeline. Not Queue#getJobCounts: that
 * runs a Lua script whose inner commands Redis counts as if the gateway had run them, while these
 * the cost meter's connection (`redis`) counts and subtracts.
 */
export async function queueDepths(redis: Redis, queues: readonly Queue[]): Promise<Map<string, Depth>> {
  const pipe = redis.pipeline();
  for (const q of queues) {
    pipe.llen(q.keys.wait!).llen(q.keys.active!).zcard(q.keys.delayed!).zcard(q.keys.prioritized!).zcard(q.keys['waiting-children']!).zcard(q.keys.failed!);
  }
  const replies = (await pipe.exec()) ?? [];
  const n = (i: number) => Number(replies[i]?.[1] ?? 0);
  return new Map(queues.map((q, k) => [q.name, { waiting: n(6 * k), active: n(6 * k + 1), delayed: n(6 * k + 2), prioritized: n(6 * k + 3), waitingChildren: n(6 * k + 4), failed: n(6 * k + 5) }]));
}

/** No job waiting, active, delayed, prioritized or waiting for children in any of the queues. */
export async function queuesIdle(redis: Redis, queues: readonly Queue[]): Promise<boolean> {
  for (const d of (await queueDepths(redis, queues)).values()) {
    if (d.waiting + d.active + d.delayed + d.prioritized + d.waitingChildren > 0) return false;
  }
  return true;
}

/** Dead letters: failed jobs kept in the queues. */
export async function deadLetters(redis: Redis, queues: readonly Queue[]): Promise<number> {
  let failed = 0;
  for (const d of (await queueDepths(redis, queues)).values()) failed += d.failed;
  return failed;
}

export interface WorkerProcess {
  pid: number;
  stages: readonly string[];
  /** The queues its workers consume. */
  queues: Queue[];
  /** SIGTERM (it finishes the jobs in flight), SIGKILL after 10 s; safe to call twice. */
  close(): Promise<void>;
}

/**
 * `lapor worker <stages…>` as a child process, as a deployment runs the workers. Returns once every
 * queue of those stages has a worker. A `lapor worker` process holds no pull channel (src/cli.ts),
 * so its notify stage serves the web channel only. With `profileDir`, the process loads
 * profile-hook.ts, which profiles it on SIGUSR2 (profile.ts).
 */
export async function startWorkerProcess(options: {
  stages: readonly string[];
  env: Record<string, string>;
  queues: readonly Queue[];
  teardown: Teardown;
  deadline: number;
  profileDir?: string;
}): Promise<WorkerProcess> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LAPOR_')));
  const profile = options.profileDir ? WORKER_PROFILE_IMPORT : [];
  const child = spawn(process.execPath, ['--import', 'tsx', ...profile, 'src/cli.ts', 'worker', ...options.stages], {
    cwd: ROOT,
    env: { ...base, ...options.env, ...(options.profileDir ? { BENCH_PROFILE_DIR: options.profileDir } : {}) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  options.teardown.track(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    })());
  options.teardown.defer('worker process', close);
  const queues = options.queues.filter((q) => {
    const stage = stageOfQueue(q.name);
    return options.stages.includes(stage) && (stage !== 'notify' || q.name === notifyQueueName('web'));
  });
  const ready = await until(
    async () => child.exitCode === null && (await Promise.all(queues.map(async (q) => (await q.getWorkers()).length > 0))).every(Boolean),
    Math.min(options.deadline, Date.now() + 30_000),
    100,
  );
  if (!ready) {
    await close();
    throw new Error(`the worker process (lapor worker ${options.stages.join(' ')}) did not start within 30 s`);
  }
  return { pid: child.pid!, stages: options.stages, queues, close };
}
