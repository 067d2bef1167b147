import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { InboundMessageSchema } from '../../src/core/inbound.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

/**
 * PostgreSQL down for a while, simulated per test file on the shared server: the file's database
 * stops accepting connections and its sessions are cut, as if the server had gone away.
 */

let env: TestEnv;
let admin: pg.Client;
let dbName: string;

beforeAll(async () => {
  env = await createTestEnv({ env: { LAPOR_QUEUE_BACKOFF_MS: '200', LAPOR_QUEUE_ATTEMPTS: '20' } });
  dbName = new URL(env.databaseUrl).pathname.slice(1);
  admin = new pg.Client({ connectionString: inject('postgresAdminUrl') });
  await admin.connect();
});
afterAll(async () => {
  await setDatabaseUp(true);
  await admin?.end();
  await env?.close();
});

async function setDatabaseUp(up: boolean) {
  await admin.query(`ALTER DATABASE ${dbName} WITH ALLOW_CONNECTIONS ${up}`);
  if (!up) await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, [dbName]);
}

describe('PostgreSQL down for a while', () => {
  it('keeps every queued message and files each exactly once when the database returns', async () => {
    await setDatabaseUp(false);
    const ids = Array.from({ length: 10 }, () => randomBytes(6).toString('hex'));
    for (const id of ids) {
      const message = InboundMessageSchema.parse({
        channel: 'sms',
        account: 'telkomsel',
        externalId: `m${id}`,
        dedupKey: `sms_${id}`,
        sender: { address: `+62813${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}` },
        text: `Lampu lalu lintas di simpang ${id} mati sejak kemarin, macet parah setiap pagi.`,
        receivedAt: new Date().toISOString(),
      });
      // Redis still takes them, so the channel can acknowledge.
      expect(await env.runtime.queues.enqueueInbound(message, 60_000)).toEqual({ status: 'queued' });
    }
    // Jobs fail and wait for their retry; none is lost or turned into a dead letter.
    await eventually(async () => {
      const counts = await env.runtime.queues.inbound.getJobCounts('delayed', 'waiting', 'active', 'failed');
      return (counts.delayed ?? 0) + (counts.waiting ?? 0) > 0 && counts.failed === 0 ? counts : undefined;
    });
    await new Promise((r) => setTimeout(r, 1_000));
    await setDatabaseUp(true);

    const count = await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM reports WHERE text LIKE 'Lampu lalu lintas di simpang %'`);
      return rows[0]!.n === ids.length ? rows[0]!.n : undefined;
    }, 20_000, 'all reports after the outage');
    expect(count).toBe(ids.length);
    expect((await env.runtime.queues.inbound.getJobCounts('failed')).failed).toBe(0);
  });

  it('answers a web report with 503 and Retry-After while it cannot allocate a tracking ID', async () => {
    await setDatabaseUp(false);
    try {
      const started = Date.now();
      const res = await env.app.inject({
        method: 'POST',
        url: '/api/v1/reports',
        headers: { 'content-type': 'application/json' },
        payload: { text: 'Saluran air tersumbat di Jl. Anggrek, banjir setiap hujan.' },
      });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(Date.now() - started).toBeLessThan(6_000);
      const ready = await env.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.find((c: { name: string }) => c.name === 'postgres').ok).toBe(false);
    } finally {
      await setDatabaseUp(true);
    }
  });
});

describe('the event log', () => {
  it('is append-only', async () => {
    const res = await env.app.inject({
      method: 'POST',
      url: '/api/v1/reports',
      headers: { 'content-type': 'application/json' },
      payload: { text: 'Trotoar di depan pasar rusak dan membahayakan pejalan kaki lansia.' },
    });
    const { trackingId } = res.json();
    await eventually(async () => {
      const { rows } = await env.runtime.db.query(`SELECT 1 FROM reports WHERE tracking_id = $1`, [trackingId]);
      return rows[0];
    });
    await expect(env.runtime.db.query(`UPDATE report_events SET actor = 'someone else'`)).rejects.toThrow(/append-only/);
    await expect(env.runtime.db.query(`DELETE FROM report_events`)).rejects.toThrow(/append-only/);
  });
});
