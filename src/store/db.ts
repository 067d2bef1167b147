import pg from 'pg';
import type { Logger } from 'pino';

export type Db = pg.Pool;
export type Tx = pg.PoolClient;

export function createDb(url: string, log: Logger, options: { max?: number } = {}): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    // Fail fast rather than queue forever when PostgreSQL is down: the job is retried with backoff.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: 'lapor-gateway',
  });
  // An idle client losing its connection emits here; without a listener the process would crash.
  pool.on('error', (err) => log.warn({ err }, 'postgres idle client error'));
  return pool;
}

export async function withTransaction<T>(db: Db, work: (tx: Tx) => Promise<T>): Promise<T> {
  const tx = await db.connect();
  try {
    await tx.query('BEGIN');
    const result = await work(tx);
    await tx.query('COMMIT');
    return result;
  } catch (err) {
    await tx.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    tx.release();
  }
}

/** 23505: the unique constraint that makes a replayed message harmless. */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === '23505';
}
