import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifyProcessor } from '../../workers/verify.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';
import { account, call, notificationKinds, type Account } from '../helpers/operators.ts';

/**
 * The verify worker behind, or down (it may run as a process of its own): a person verifies and
 * forwards a report before the rules have run. When the rules do run, they must not undo what the
 * person decided — not the kind, not the status, not the agency's clock — nor tell the citizen so.
 */

let env: TestEnv;
let admin: Account;
beforeAll(async () => {
  env = await createTestEnv({ workers: ['intake', 'notify'] });
  admin = await account(env, 'super_admin');
});
afterAll(async () => {
  await env?.close();
});

describe('a verification that comes after a person handled the report', () => {
  it('stores the rules\u2019 suggestions and changes nothing else', async () => {
    // Spam by the rules' measure: left to them, it would be refused and the citizen told so.
    const res = await env.app.inject({ method: 'POST', url: '/api/v1/reports', payload: { text: 'Selamat! Nomor anda menang undian Rp 100 juta, klik link bit.ly/hadiah-xyz untuk klaim sekarang' } });
    const id = res.json().trackingId as string;
    await eventually(async () => ((await env.runtime.db.query('SELECT 1 FROM reports WHERE tracking_id = $1', [id])).rowCount ? true : undefined), 10_000, 'the report filed');
    expect((await call(env, 'POST', `/api/v1/admin/reports/${id}/verify`, admin, { kind: 'aspirasi', weight: 'ringan' })).statusCode).toBe(200);
    expect((await call(env, 'POST', `/api/v1/admin/reports/${id}/dispose`, admin, { agency: 'pln' })).statusCode).toBe(200);

    const verdict = await createVerifyProcessor(env.runtime)({ data: { trackingId: id } } as Job);
    expect(verdict).toBe('reject');
    const detail = (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json();
    expect(detail).toMatchObject({ status: 'terdisposisi', kind: 'aspirasi', agency: 'pln' });
    expect(detail.deadlines.map((d: { clock: string }) => d.clock)).toEqual(['follow_up']);
    expect(detail.events.map((e: { type: string }) => e.type)).toContain('auto_verified');
    expect(detail.events.filter((e: { type: string }) => e.type === 'status_changed')).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(await notificationKinds(env, id)).not.toContain('not_processable');
  });
});
