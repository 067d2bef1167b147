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
  // pg-pool puts the whole client on err.client (connection settings included): log only what helps.
  pool.on('error', (err: Error & { code?: string }) => log.warn({ err: { message: err.message, code: err.code } }, 'postgres idle client error'));
  return pool;
}

export async function withTransaction<T>(db: Db, work: (tx: Tx) => Promise<T>): Promise<T> {
  const tx = await db.connect();
  // pg-pool listens for errors only on idle clients: a checked-out client whose connection drops
  // between two queries would emit an unhandled 'error' and take the process down. The failed
  // query rejects on its own; this listener only keeps the process alive.
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  tx.on('error', onError);
  try {
    await tx.query('BEGIN');
    const result = await work(tx);
    await tx.query('COMMIT');
    return result;
  } catch (err) {
    if (!broken) await tx.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    tx.off('error', onError);
    // A broken connection is destroyed rather than returned to the pool.
    tx.release(broken);
  }
}

/**
 * A statement the hot path runs for every batch, prepared once per connection under `name`: PostgreSQL
 * then parses it once, and after five runs keeps a generic plan instead of planning it again. Parsing
 * and planning were 45 % of PostgreSQL's CPU on the SMS whole path (perf, bench:smpp, 2026-12-07): the
 * statements that file a batch are long CTEs. Only for fixed SQL text (one name, one text, for ever);
 * a name per text is checked here, since pg would run a second text under a known name as the first.
 */
const preparedTexts = new Map<string, string>();
export function prepared(name: string, text: string, values: unknown[]): pg.QueryConfig<unknown[]> {
  const known = preparedTexts.get(name);
  if (known === undefined) preparedTexts.set(name, text);
  else if (known !== text) throw new Error(`prepared statement ${name} was given another text`);
  return { name, text, values };
}

/** 23505: the unique constraint that makes a replayed message harmless. */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === '23505';
}
