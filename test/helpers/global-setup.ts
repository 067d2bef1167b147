import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createLogger } from '../../src/log.ts';
import { startLocalPostgres, startLocalRedis } from '../../src/local/services.ts';
import { migrate } from '../../src/store/migrate.ts';

/**
 * One real redis-server and one real PostgreSQL for the whole run, on free loopback ports. Test files
 * share them but not their data: each file gets its own database (a copy of a migrated template)
 * and its own queue prefix (test/helpers/env.ts), so files run in parallel.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    postgresAdminUrl: string;
    templateDb: string;
  }
}

export const TEMPLATE_DB = 'lapor_template';

export default async function setup(project: TestProject) {
  const log = createLogger({ level: 'warn' });
  // Redis fsyncs every write (the strict profile); on tmpfs that costs nothing.
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'lapor-test-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user and must reach its directory
  const redis = await startLocalRedis({ dir: join(dir, 'redis'), fsync: 'always', log });
  const postgres = await startLocalPostgres({ dir: join(dir, 'pg'), database: TEMPLATE_DB, fast: true, log });
  await migrate(postgres.url, log);
  const adminUrl = postgres.url.replace(/\/[^/]+$/, '/postgres');
  // The template must have no open connections when it is copied.
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [TEMPLATE_DB]);
  await admin.end();

  project.provide('redisUrl', redis.url);
  project.provide('postgresAdminUrl', adminUrl);
  project.provide('templateDb', TEMPLATE_DB);

  return async () => {
    await redis.stop();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
