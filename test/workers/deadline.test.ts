import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';
import { account, call, filedReport, notificationKinds, type Account } from '../helpers/operators.ts';

/**
 * The deadline stage as it runs in `lapor start` / `lapor worker deadline`: its scheduled sweep
 * (every 200 ms here) records a breach and publishes what a crash left in the outbox, without
 * anyone running `lapor deadlines sweep`.
 */

let env: TestEnv;
let admin: Account;
beforeAll(async () => {
  env = await createTestEnv({ env: { LAPOR_DEADLINES_SWEEP_INTERVAL_MS: '200' } });
  admin = await account(env, 'super_admin');
});
afterAll(async () => {
  await env?.close();
});

describe('the deadline worker', () => {
  it('records a verification past due as breached, once, and counts it in /metrics', async () => {
    const id = await filedReport(env);
    // As if the report had waited unverified past its due date.
    await env.runtime.db.query(
      `UPDATE report_clocks SET due_at = now() - interval '1 minute' WHERE clock = 'verification' AND report_seq = (SELECT seq FROM reports WHERE tracking_id = $1)`,
      [id],
    );
    const breached = await eventually(async () => {
      const view = (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json();
      return view.deadlines[0]?.breached ? view : undefined;
    }, 10_000, 'the breach recorded by the scheduled sweep');
    expect(breached.deadlines[0]).toMatchObject({ clock: 'verification', breached: true, remainingWorkingDays: 0 });
    await new Promise((r) => setTimeout(r, 600)); // three more sweeps
    const events = (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json().events.filter((e: { type: string }) => e.type === 'deadline_breached');
    expect(events).toHaveLength(1);
    const metrics = (await env.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^lapor_deadline_breaches_total\{clock="verification",agency="-"\} [1-9]/m);
  });

  it('publishes a notification a crash left unpublished in the outbox', async () => {
    const id = await filedReport(env);
    const key = `n_${id}_forwarded_crashtest`;
    const effect = { queue: 'notify-web', name: 'forwarded', jobId: key, data: { notifyKey: key, kind: 'forwarded', lang: 'id', trackingId: id, vars: {} } };
    await env.runtime.db.query(`INSERT INTO outbox (effects, created_at) VALUES ($1, now() - interval '1 minute')`, [JSON.stringify([effect])]);
    await eventually(async () => ((await notificationKinds(env, id)).includes('forwarded') ? true : undefined), 10_000, 'the outbox swept by the worker');
  });

  it('sends again a reply left queued long after its job was lost, and leaves a fresh one to its job', async () => {
    const id = await filedReport(env);
    const queuedRow = async (key: string, age: string) =>
      (
        await env.runtime.db.query<{ id: string }>(
          `INSERT INTO messages (report_seq, direction, channel, notify_key, kind, sealed_text, status, created_at)
           SELECT seq, 'out', 'web', $2, 'forwarded', $3, 'queued', now() - $4::interval FROM reports WHERE tracking_id = $1 RETURNING id::text`,
          [id, key, env.runtime.keys.seal('thread', 'LAPOR! Laporan diteruskan.'), age],
        )
      ).rows[0]!.id;
    // Written by a commit whose notify job Redis lost; and one written just now, its job on the way.
    const lost = await queuedRow(`n_${id}_forwarded_lost`, '15 minutes');
    const fresh = await queuedRow(`n_${id}_forwarded_fresh`, '0 seconds');
    const statusOf = async (rowId: string) => (await env.runtime.db.query<{ status: string }>('SELECT status FROM messages WHERE id = $1', [rowId])).rows[0]!.status;
    await eventually(async () => ((await statusOf(lost)) === 'stored' ? true : undefined), 10_000, 'the lost reply sent by the sweep');
    await new Promise((r) => setTimeout(r, 600)); // three more sweeps: still one job for those rows
    expect(await statusOf(fresh)).toBe('queued');
    const offers = (await env.runtime.queues.notify.get('web')!.getJobs(['completed', 'waiting', 'active'])).filter((j) => String(j.id).startsWith('ns_web_'));
    expect(offers.filter((j) => (j.data as { ids: string[] }).ids.includes(lost))).toHaveLength(1);
  });

  it('removes an upload no report claimed within a day, and keeps the others', async () => {
    const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082', 'hex');
    const upload = async () => (await env.app.inject({ method: 'POST', url: '/api/v1/attachments', headers: { 'content-type': 'image/png' }, payload: PNG })).json().attachment as string;
    const [abandoned, fresh, waiting] = [await upload(), await upload(), await upload()];
    await env.runtime.db.query(`UPDATE attachments SET created_at = now() - interval '25 hours' WHERE token = ANY($1)`, [[abandoned, waiting]]);
    // Reserved by an acknowledged report whose intake is behind: kept for it.
    await env.runtime.db.query(`UPDATE attachments SET reserved_at = now() - interval '20 hours' WHERE token = $1`, [waiting]);
    await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ token: string }>('SELECT token FROM attachments WHERE token = ANY($1) ORDER BY id', [[abandoned, fresh, waiting]]);
      return rows.length === 2 ? rows.map((r) => r.token) : undefined;
    }, 10_000, 'the abandoned upload removed').then((left) => expect(left).toEqual([fresh, waiting]));
  });
});
