import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intakeContext, receiptsOf, recordDeliveries, replaysOf } from '../../src/store/reports.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';

/**
 * The statements that every batch runs look rows up by key through an index, whatever plan the
 * prepared statement settles on: a plan that scans a whole table grows with the table (a bench run
 * found inbound_receipts scanned at every batch once the generic plan took over). The tables are
 * filled without ANALYZE, as a busy table is between two runs of autovacuum.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv({ workers: false });
  const db = env.runtime.db;
  await db.query(
    `INSERT INTO inbound_receipts (channel, external_id, dedup_key, outcome, received_at)
     SELECT 'sms', 'plan' || i, 'sms_plan' || i, 'status_query', now() FROM generate_series(1, 20000) i`,
  );
  await db.query(
    `WITH m AS (INSERT INTO messages (direction, channel, notify_key, kind, sealed_text, status)
                SELECT 'out', 'sms', 'plan_n' || i, 'received', 'x', 'sent' FROM generate_series(1, 5000) i RETURNING id)
     INSERT INTO outbound_parts (channel, transport_id, message_id) SELECT 'sms', 'plan_t' || id, id FROM m`,
  );
});
afterAll(async () => {
  await env?.close();
});

/** Sequential scans of the two tables so far, as PostgreSQL's statistics count them. */
async function seqScans(client: pg.PoolClient): Promise<Record<string, number>> {
  // Statistics are published when a backend goes idle: ask this one to publish now.
  await client.query('SELECT pg_stat_force_next_flush()');
  await client.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await client.query<{ relname: string; seq_scan: string }>(
    `SELECT relname, seq_scan::text FROM pg_stat_user_tables WHERE relname IN ('inbound_receipts', 'outbound_parts')`,
  );
  return Object.fromEntries(rows.map((r) => [r.relname, Number(r.seq_scan)]));
}

describe('the batch statements find rows by key', () => {
  for (const mode of ['force_generic_plan', 'force_custom_plan']) {
    it(`never scan inbound_receipts or outbound_parts whole (${mode})`, async () => {
      const client = await env.runtime.db.connect();
      try {
        await client.query(`SET plan_cache_mode = ${mode}`);
        const before = await seqScans(client);
        const keys = Array.from({ length: 30 }, (_, i) => ({ channel: 'sms', externalId: `plan${i * 7 + 1}` }));
        for (let run = 0; run < 3; run++) {
          expect((await receiptsOf(client, keys)).size).toBe(30);
          expect((await intakeContext(client, { contactHashes: ['nobody'], since: new Date(0), receipts: keys })).known.size).toBe(30);
          expect((await replaysOf(client, keys)).outcomes).toHaveLength(30);
          const receipts = Array.from({ length: 30 }, (_, i) => ({ channel: 'sms', transportId: `plan_t${i}`, state: 'pending' as const, detail: 'ENROUTE' }));
          await recordDeliveries(client, receipts);
        }
        expect(await seqScans(client)).toEqual(before);
      } finally {
        client.release();
      }
    });
  }
});
