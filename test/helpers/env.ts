import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { inject } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import type { ChannelId } from '../../src/core/inbound.ts';
import { buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { WORKER_NAMES, startWorkers, type RunningWorkers, type WorkerName } from '../../workers/run.ts';

/**
 * A gateway of its own for one test file: a fresh database copied from the migrated template, a
 * queue prefix nobody else uses, fresh keys, and a log sink that tests can search (and that proves
 * no personal data is logged).
 */
export interface TestEnv {
  config: Config;
  runtime: Runtime;
  app: Awaited<ReturnType<typeof buildApp>>;
  workers: RunningWorkers | undefined;
  logs: string[];
  databaseUrl: string;
  close(): Promise<void>;
}

export function testEnvVars(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    LAPOR_ENV: 'test',
    LAPOR_REDIS_URL: inject('redisUrl'),
    LAPOR_QUEUE_PREFIX: `{t${randomBytes(5).toString('hex')}}`,
    LAPOR_DATA_KEY: randomBytes(32).toString('base64'),
    LAPOR_TRACKING_KEY: randomBytes(32).toString('base64'),
    LAPOR_LOG_LEVEL: 'debug',
    LAPOR_QUEUE_BACKOFF_MS: '100',
    ...overrides,
  };
}

export async function createDatabase(): Promise<string> {
  const adminUrl = inject('postgresAdminUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${inject('templateDb')}`);
  } finally {
    await admin.end();
  }
  return adminUrl.replace(/\/postgres$/, `/${name}`);
}

export async function createTestEnv(
  options: { workers?: readonly WorkerName[] | false; env?: Record<string, string>; channels?: readonly ChannelId[] } = {},
): Promise<TestEnv> {
  const databaseUrl = await createDatabase();
  const config = loadConfig({ ...testEnvVars({ LAPOR_DATABASE_URL: databaseUrl }), ...options.env });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const log = createLogger({ level: config.logLevel, destination: sink });
  const runtime = await openRuntime(config, log, { channels: options.channels ?? [] });
  for (const adapter of runtime.adapters.values()) await adapter.start?.();
  const workerNames = options.workers === false ? [] : (options.workers ?? WORKER_NAMES);
  const workers = workerNames.length ? await startWorkers(runtime, workerNames, runtime.connectWorker) : undefined;
  const app = await buildApp(runtime);
  await app.ready();
  return {
    config,
    runtime,
    app,
    workers,
    logs,
    databaseUrl,
    async close() {
      await app.close();
      await workers?.close();
      for (const adapter of runtime.adapters.values()) await adapter.stop?.();
      await runtime.close();
    },
  };
}

/** Polls until `probe` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}
