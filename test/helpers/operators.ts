import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { Role } from '../../src/core/roles.ts';
import { hashPassword } from '../../src/http/auth.ts';
import { insertUser } from '../../src/store/users.ts';
import { eventually, type TestEnv } from './env.ts';

/** Accounts, logins and calls of the operator API, for tests on a TestEnv (app.inject). */

export interface Account {
  email: string;
  password: string;
  token: string;
  role: Role;
}

/** Inserts a user straight into the store (the CLI is tested on its own) and logs in over HTTP. */
export async function account(env: TestEnv, role: Role, bound: { agency?: string; unit?: string } = {}): Promise<Account> {
  const email = `${role.replace('_', '-')}-${randomBytes(4).toString('hex')}@lapor.go.id`;
  const password = randomBytes(12).toString('base64url');
  let agencySlug = bound.agency ?? null;
  if (bound.unit) {
    const { rows } = await env.runtime.db.query<{ agency: string }>('SELECT agency_slug AS agency FROM units WHERE slug = $1', [bound.unit]);
    agencySlug = rows[0]!.agency;
  }
  await insertUser(env.runtime.db, { email, role, agencySlug, unitSlug: bound.unit ?? null, passwordHash: await hashPassword(password) });
  const res = await env.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
  expect(res.statusCode, res.body).toBe(200);
  return { email, password, token: res.json().token, role };
}

export type Call = Awaited<ReturnType<TestEnv['app']['inject']>>;

export function call(env: TestEnv, method: 'GET' | 'POST' | 'PUT', url: string, who?: Account | string, payload?: unknown): Promise<Call> {
  const token = typeof who === 'string' ? who : who?.token;
  return env.app.inject({
    method,
    url,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
}

/** Files a report through the public API and waits until the intake worker has stored it. */
export async function filedReport(env: TestEnv, body: Record<string, unknown> = {}): Promise<string> {
  const res = await env.app.inject({
    method: 'POST',
    url: '/api/v1/reports',
    payload: { text: `Lampu jalan mati di Jl. Merdeka ${randomBytes(2).toString('hex')}, gelap dan rawan sejak seminggu.`, ...body },
  });
  expect(res.statusCode, res.body).toBe(201);
  const trackingId = res.json().trackingId as string;
  await eventually(async () => {
    const { rows } = await env.runtime.db.query('SELECT verification FROM reports WHERE tracking_id = $1', [trackingId]);
    return rows[0]?.verification ? true : undefined;
  }, 10_000, `report ${trackingId} stored and auto-verified`);
  return trackingId;
}

/** The notifications recorded in a report's thread (the web channel stores them). */
export async function notificationKinds(env: TestEnv, trackingId: string): Promise<string[]> {
  const { rows } = await env.runtime.db.query<{ kind: string }>(
    `SELECT m.kind FROM messages m JOIN reports r ON r.seq = m.report_seq WHERE r.tracking_id = $1 AND m.direction = 'out' AND m.notify_key IS NOT NULL ORDER BY m.id`,
    [trackingId],
  );
  return rows.map((r) => r.kind);
}
