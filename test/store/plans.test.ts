import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileReports, intakeContext, lockQueuedOutbound, markOutboundMany, receiptsOf, recordDeliveries, replaysOf, type NewReportRow } from '../../src/store/reports.ts';
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
  await db.query(
    `INSERT INTO reports (seq, tracking_id, channel, text, lang, anonim, rahasia, contact_hash, received_at, incomplete, kind, status, verification)
     SELECT 800000000 + i, (1000000000 + 800000000 + i)::text, 'sms', 'x', 'id', false, false, 'hash' || (i % 500), now(), false, 'pengaduan', 'belum_terverifikasi', '{}'
     FROM generate_series(1, 5000) i`,
  );
  await db.query(
    `INSERT INTO attachments (token, filename, content_type, size, sha256, data)
     SELECT 'att_plan' || lpad(i::text, 20, '0'), 'a.jpg', 'image/jpeg', 1, repeat('0', 64), '\\x00' FROM generate_series(1, 5000) i`,
  );
});

let seq = 900_000_000;
/** A web report as intake files it, naming `tokens` uploaded beforehand. */
function report(tokens: string[]): NewReportRow {
  seq += 1;
  return {
    channel: 'web', externalId: `plan_report_${seq}`, dedupKey: `web_plan_report_${seq}`, account: null, receivedAt: new Date().toISOString(),
    seq, trackingId: String(1_000_000_000 + seq), text: 'Jalan rusak', lang: 'id', anonim: false, rahasia: false, incomplete: false,
    contactHash: null, sealedReporter: null, sealedText: 'x', verification: {}, kind: 'pengaduan', status: 'belum_terverifikasi', resumeStatus: null,
    events: [{ actor: 'system', type: 'received', data: {} }], clock: null, attachments: tokens,
    outbound: [{ notifyKey: `plan_out_${seq}`, kind: 'received', sealedText: 'x' }],
  };
}
afterAll(async () => {
  await env?.close();
});

/** Sequential scans of the tables so far, as PostgreSQL's statistics count them. */
async function seqScans(client: pg.PoolClient): Promise<Record<string, number>> {
  // Statistics are published when a backend goes idle: ask this one to publish now.
  await client.query('SELECT pg_stat_force_next_flush()');
  await client.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await client.query<{ relname: string; seq_scan: string }>(
    `SELECT relname, seq_scan::text FROM pg_stat_user_tables WHERE relname IN ('inbound_receipts', 'outbound_parts', 'messages', 'attachments', 'reports')`,
  );
  return Object.fromEntries(rows.map((r) => [r.relname, Number(r.seq_scan)]));
}

describe('the batch statements find rows by key', () => {
  for (const mode of ['force_generic_plan', 'force_custom_plan']) {
    it(`never scan receipts, parts, messages or attachments whole (${mode})`, async () => {
      const client = await env.runtime.db.connect();
      try {
        await client.query(`SET plan_cache_mode = ${mode}`);
        const ids = (await client.query<{ id: string }>(`SELECT id::text FROM messages WHERE notify_key IN ('plan_n1', 'plan_n2', 'plan_n3')`)).rows.map((r) => r.id);
        const before = await seqScans(client);
        const used: string[] = [];
        const keys = Array.from({ length: 30 }, (_, i) => ({ channel: 'sms', externalId: `plan${i * 7 + 1}` }));
        for (let run = 0; run < 3; run++) {
          expect((await receiptsOf(client, keys)).size).toBe(30);
          const context = await intakeContext(client, { contactHashes: ['nobody', 'hash1', 'hash2'], since: new Date(0), receipts: keys });
          expect(context.known.size).toBe(30);
          expect(context.recent.get('hash1')).toHaveLength(10);
          expect((await replaysOf(client, keys)).outcomes).toHaveLength(30);
          const receipts = Array.from({ length: 30 }, (_, i) => ({ channel: 'sms', transportId: `plan_t${i}`, state: 'pending' as const, detail: 'ENROUTE' }));
          await recordDeliveries(client, receipts);
          await client.query('BEGIN');
          expect(await lockQueuedOutbound(client, ids)).toEqual([]); // sent already: nothing to lock
          await client.query('COMMIT');
          await markOutboundMany(client, ids.map((id) => ({ id, status: 'sent' as const, transportId: `plan_t${id}` })));
          const tokens = [1, 2, 3].map((i) => `att_plan${String(mode.length * 100 + run * 3 + i).padStart(20, '0')}`);
          used.push(...tokens);
          const filed = await fileReports(client, [report([tokens[0]!]), report(tokens.slice(1)), report([])]);
          expect(filed.claimed.size).toBe(3);
        }
        // Each file went to the report that named it.
        const linked = await client.query<{ token: string; text: string }>(
          'SELECT a.token, r.tracking_id AS text FROM attachments a JOIN reports r ON r.seq = a.report_seq WHERE a.token = ANY($1::text[]) ORDER BY a.token',
          [used],
        );
        expect(linked.rows).toHaveLength(9);
        expect(new Set(linked.rows.map((r) => r.text)).size).toBe(6);
        expect(await seqScans(client)).toEqual(before);
      } finally {
        client.release();
      }
    });
  }
});
