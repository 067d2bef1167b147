import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import type { Logger } from 'pino';
import { loadAgencySeed } from '../../config/agencies.ts';
import { seedAgencies } from './agencies.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations', import.meta.url));

/**
 * Applies every pending migration. node-pg-migrate takes an advisory lock, so several processes
 * starting at once (a scaled-out deployment) apply each migration exactly once; the others wait
 * for it (its default is to fail, which stopped a second process started beside the first).
 */
export async function migrate(databaseUrl: string, log: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'schema_migrations',
    count: Infinity,
    singleTransaction: true,
    checkOrder: true,
    advisoryLockMode: 'wait',
    log: (message: string) => log.debug({ migration: message }, 'migration'),
    logger: {
      debug: () => undefined,
      info: (message: string) => log.debug({ migration: message }, 'migration'),
      warn: (message: string) => log.warn({ migration: message }, 'migration'),
      error: (message: string) => log.error({ migration: message }, 'migration'),
    },
  });
  const names = applied.map((m) => m.name);
  if (names.length) log.info({ migrations: names }, 'migrations applied');
  // One-time data a new database starts with (never re-applied over what admins changed since).
  const db = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    if (await seedAgencies(db, loadAgencySeed())) log.info('loaded the sample agencies of config/agencies.json');
  } finally {
    await db.end();
  }
  return names;
}
