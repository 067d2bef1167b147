/**
 * What every benchmark needs around its measurements: its own redis-server (appendfsync always) and
 * PostgreSQL in a fresh temp dir on disk, and a teardown that stops everything in reverse order,
 * once, however the run ends — normally, on an error, on Ctrl-C, or at the hard timeout.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { createLogger } from '../../src/log.ts';
import { startLocalPostgres, startLocalRedis } from '../../src/local/services.ts';
import { filesystemOf, until } from './lib.ts';

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
}

/** Redis with `appendfsync always` and PostgreSQL (fsync on unless `pgFast`), in /tmp so fsync hits the disk. */
export async function startBenchServices(teardown: Teardown, log: Logger, options: { name: string; pgFast?: boolean }): Promise<BenchServices> {
  const dir = mkdtempSync(`/tmp/lapor-bench-${options.name}-`);
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user and must reach its directory
  teardown.track(undefined, dir);
  teardown.defer('temp dir', async () => rmSync(dir, { recursive: true, force: true }));
  const redis = await startLocalRedis({ dir: join(dir, 'redis'), fsync: 'always', log });
  teardown.track(redis.child);
  teardown.defer('redis-server', () => redis.stop());
  const postgres = await startLocalPostgres({ dir: join(dir, 'pg'), fast: options.pgFast ?? false, log });
  teardown.track(postgres.child);
  // pg's Pool.end() resolves before its sockets are closed; stopping PostgreSQL at once would
  // terminate those backends and make the gateway log an "idle client error" for each.
  teardown.defer('postgres', async () => (await backendsGone(postgres.url), await postgres.stop()));
  return { dir, filesystem: filesystemOf(dir), redis, postgres };
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
