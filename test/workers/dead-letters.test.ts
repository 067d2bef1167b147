import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeadLetters, replayDeadLetters } from '../../src/queue/dlq.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

/**
 * A job the store refuses for good is a dead letter at once (no retries that cannot help), and it
 * is never silent: the log says so at error level, /metrics counts it, /readyz mentions it, and
 * `lapor dlq` can replay it once the cause is fixed. The refusal is made by a trigger in this test's
 * own database, standing for any data PostgreSQL will not take.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
  await env.runtime.db.query(`
    CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.text LIKE '%TOLAK-DB%' THEN RAISE EXCEPTION 'test: this text is refused' USING ERRCODE = '22021'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_marked BEFORE INSERT ON reports FOR EACH ROW EXECUTE FUNCTION refuse_marked();`);
});
afterAll(async () => {
  await env?.close();
});

const readyz = async () => (await env.app.inject({ method: 'GET', url: '/readyz' })).json();
const metrics = async () => (await env.app.inject({ method: 'GET', url: '/metrics' })).body;

describe('a job the store refuses', () => {
  it('is a dead letter at once, logged, counted by /metrics and mentioned by /readyz, and can be replayed', async () => {
    const calm = await readyz();
    expect(calm).toMatchObject({ status: 'ready', deadLetters: { total: 0, queues: {} } });
    expect(calm.deadLetters).not.toHaveProperty('hint');

    const res = await env.app.inject({
      method: 'POST',
      url: '/api/v1/reports',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ text: 'Jalan rusak di depan pasar TOLAK-DB, mohon diperbaiki' }),
    });
    expect(res.statusCode).toBe(201);
    const { trackingId } = res.json();
    const jobId = `web_${trackingId}`;

    const job = await eventually(async () => {
      const j = await env.runtime.queues.inbound.getJob(jobId);
      // Read again once failed: the job fetched before may predate the failure (attemptsMade 0).
      return j && (await j.isFailed()) ? env.runtime.queues.inbound.getJob(jobId) : undefined;
    }, 10_000, 'the dead letter');
    // Not ten tries over a quarter of an hour: the first refusal was final.
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/store refused the message \(SQLSTATE 22021\)/);

    expect(env.logs.some((line) => line.includes('job failed for good: dead letter') && line.includes(jobId))).toBe(true);
    expect(await metrics()).toMatch(/^lapor_queue_jobs\{queue="inbound",state="failed"\} 1$/m);
    const ready = await readyz();
    // Still ready (it files other reports), but not quiet about it.
    expect(ready).toMatchObject({ status: 'ready', deadLetters: { total: 1, queues: { inbound: 1 }, hint: expect.stringMatching(/lapor dlq/) } });
    expect(await listDeadLetters(env.runtime.queues, 'inbound')).toEqual([expect.objectContaining({ id: jobId, attempts: 1 })]);

    // The cause fixed, the operator replays it, and the citizen's tracking ID leads to the report.
    await env.runtime.db.query('DROP TRIGGER refuse_marked ON reports');
    expect(await replayDeadLetters(env.runtime.queues, 'inbound', [jobId])).toBe(1);
    const view = await eventually<{ text: string }>(async () => {
      const r = await env.app.inject({ method: 'GET', url: `/api/v1/reports/${trackingId}` });
      return r.statusCode === 200 && !r.json().pending ? r.json() : undefined;
    }, 10_000, 'the replayed report');
    expect(view.text).toContain('TOLAK-DB');
    expect((await readyz()).deadLetters).toMatchObject({ total: 0 });
  });
});
