import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STEP_FROM } from '../../src/core/lifecycle.ts';
import type { ReportStatus } from '../../src/core/report.ts';
import { STEP_ROLES, type Role, type Step } from '../../src/core/roles.ts';
import { sweepOutbox } from '../../src/store/cases.ts';
import { sweepDeadlines } from '../../src/store/clocks.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';
import { account, call, filedReport, notificationKinds, type Account } from '../helpers/operators.ts';

/**
 * The operator API over HTTP against real PostgreSQL and Redis, with the workers running: logins,
 * each lifecycle step for each role, the order of refusals, privacy per role, the operator's routes.
 */

let env: TestEnv;
let admin: Account;
let plnAdmin: Account;
let plnLiaison: Account;
let otherLiaison: Account;
let polriAdmin: Account;
let operator: Account;

beforeAll(async () => {
  env = await createTestEnv();
  admin = await account(env, 'super_admin');
  plnAdmin = await account(env, 'agency_admin', { agency: 'pln' });
  plnLiaison = await account(env, 'liaison', { unit: 'pln-uid-jabar' });
  otherLiaison = await account(env, 'liaison', { unit: 'pln-uid-jakarta-raya' });
  polriAdmin = await account(env, 'agency_admin', { agency: 'polri' });
  operator = await account(env, 'operator');
});
afterAll(async () => {
  await env?.close();
});

const step = (trackingId: string, route: string, who: Account | undefined, body: unknown) => call(env, 'POST', `/api/v1/admin/reports/${trackingId}/${route}`, who, body);

/** Walks a new report to `status` as the right people would; returns its tracking ID. */
async function reportIn(status: ReportStatus, body: Record<string, unknown> = {}): Promise<string> {
  const id = await filedReport(env, body);
  const go = async (route: string, who: Account, payload: unknown) => {
    const res = await step(id, route, who, payload);
    expect(res.statusCode, `${route}: ${res.body}`).toBe(200);
  };
  if (status === 'belum_terverifikasi') return id;
  if (status === 'tidak_dapat_diproses') return (await go('reject', admin, { reason: 'bukan pengaduan pelayanan publik' }), id);
  if (status === 'arsip') return (await go('archive', admin, { reason: 'spam berulang' }), id);
  await go('verify', admin, { kind: 'pengaduan', weight: 'sedang' });
  if (status === 'terverifikasi') return id;
  if (status === 'tertunda') return (await go('request-info', admin, { message: 'Di kelurahan mana tepatnya?' }), id);
  await go('dispose', admin, { agency: 'pln' });
  if (status === 'bukan_wewenang') return (await go('return', plnAdmin, { reason: 'Jaringan milik PJU Pemkot, bukan PLN' }), id);
  await go('dispose', plnAdmin, { unit: 'pln-uid-jabar' });
  if (status === 'terdisposisi') return id;
  await go('answer', plnLiaison, { text: 'Petugas sudah memperbaiki trafo pada 5 Desember.' });
  if (status === 'sedang_diproses') return id;
  await go('close', admin, { reason: 'selesai' });
  return id;
}

describe('login', () => {
  it('answers the same 401 for an unknown email and a wrong password, and 200 with a token otherwise', async () => {
    const unknown = await call(env, 'POST', '/api/v1/auth/login', undefined, { email: 'nobody@lapor.go.id', password: 'whatever-it-is' });
    const wrong = await call(env, 'POST', '/api/v1/auth/login', undefined, { email: plnAdmin.email, password: 'not-the-password' });
    expect(unknown.statusCode).toBe(401);
    expect(wrong.statusCode).toBe(401);
    expect(unknown.json()).toEqual(wrong.json());
    const ok = await call(env, 'POST', '/api/v1/auth/login', undefined, { email: plnAdmin.email.toUpperCase(), password: plnAdmin.password });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ role: 'agency_admin', token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(Date.parse(ok.json().expiresAt) - Date.now()).toBeGreaterThan(11.9 * 3_600_000);
  });

  it('stores only a hash of the token', async () => {
    const { rows } = await env.runtime.db.query<{ token_hash: string }>('SELECT token_hash FROM sessions');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.map((r) => r.token_hash)).not.toContain(admin.token);
  });

  it('slows a brute force: 429 with Retry-After after 10 failures, even for the right password', async () => {
    const victim = await account(env, 'agency_admin', { agency: 'dishub' });
    for (let i = 0; i < 10; i++) {
      expect((await call(env, 'POST', '/api/v1/auth/login', undefined, { email: victim.email, password: `guess-${i}` })).statusCode).toBe(401);
    }
    const blocked = await call(env, 'POST', '/api/v1/auth/login', undefined, { email: victim.email, password: victim.password });
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(blocked.json()).not.toHaveProperty('token');
    // Another person behind the same address is not locked out by it.
    expect((await call(env, 'POST', '/api/v1/auth/login', undefined, { email: plnAdmin.email, password: plnAdmin.password })).statusCode).toBe(200);
  });

  it('counts guesses sent all at once: no more than the limit get a password check', async () => {
    const victim = await account(env, 'agency_admin', { agency: 'dishub' });
    const before = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => call(env, 'POST', '/api/v1/auth/login', undefined, { email: victim.email, password: `tebakan-${i}` })),
    );
    const statuses = answers.map((a) => a.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
    expect(Date.now() - before).toBeLessThan(20_000);
  });

  it('refuses revoked, expired and disabled accounts’ tokens', async () => {
    const who = await account(env, 'liaison', { unit: 'pln-uid-jabar' });
    expect((await call(env, 'GET', '/api/v1/admin/reports', who)).statusCode).toBe(200);
    expect((await call(env, 'POST', '/api/v1/auth/logout', who)).statusCode).toBe(204);
    expect((await call(env, 'GET', '/api/v1/admin/reports', who)).statusCode).toBe(401);

    const again = await account(env, 'liaison', { unit: 'pln-uid-jabar' });
    await env.runtime.db.query(`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = (SELECT id FROM users WHERE email = $1)`, [again.email]);
    expect((await call(env, 'GET', '/api/v1/admin/reports', again)).statusCode).toBe(401);

    const third = await account(env, 'liaison', { unit: 'pln-uid-jabar' });
    await env.runtime.db.query(`UPDATE users SET disabled_at = now() WHERE email = $1`, [third.email]);
    expect((await call(env, 'GET', '/api/v1/admin/reports', third)).statusCode).toBe(401);
    expect((await call(env, 'POST', '/api/v1/auth/login', undefined, { email: third.email, password: third.password })).statusCode).toBe(401);
  });

  it('answers 401 without a token, with a malformed one, and with a made-up one', async () => {
    for (const auth of [undefined, 'Bearer', 'Basic abc', `Bearer ${'x'.repeat(43)}`]) {
      const res = await env.app.inject({ method: 'GET', url: '/api/v1/admin/reports', headers: auth ? { authorization: auth } : {} });
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('unauthorized');
    }
  });
});

describe('the lifecycle', () => {
  it('walks a report from receipt to selesai, telling the reporter each step', { timeout: 30_000 }, async () => {
    const id = await filedReport(env, { reporter: { phone: '081234567890' } });
    expect((await step(id, 'verify', admin, { kind: 'pengaduan', weight: 'berat', note: 'lokasi jelas' })).json()).toMatchObject({ status: 'terverifikasi' });
    expect((await step(id, 'dispose', admin, { agency: 'pln' })).json()).toMatchObject({ status: 'terdisposisi', agency: 'pln', unit: null });
    expect((await step(id, 'dispose', plnAdmin, { unit: 'pln-uid-jabar' })).json()).toMatchObject({ status: 'terdisposisi', unit: 'pln-uid-jabar' });
    const answered = await step(id, 'answer', plnLiaison, { text: 'Trafo di tiang 12 sudah diganti pada 5 Desember; listrik menyala kembali.' });
    expect(answered.json()).toMatchObject({ status: 'sedang_diproses', colour: 'kuning' });
    expect((await step(id, 'close', admin, { reason: 'puas' })).json()).toMatchObject({ status: 'selesai', colour: 'hijau' });

    const kinds = await eventually(async () => {
      const k = await notificationKinds(env, id);
      return k.includes('closed') ? k : undefined;
    }, 10_000, 'the closed notification');
    expect(kinds).toEqual(['received', 'forwarded', 'answered', 'closed']);

    const detail = (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json();
    const sent = detail.thread.filter((m: { kind: string }) => m.kind === 'answered').map((m: { text: string }) => m.text);
    expect(sent[0]).toContain('Trafo di tiang 12 sudah diganti');
    expect(sent[0]).toContain(`/lapor/${id}`);
    // The whole answer is in the thread too, apart from the shortened notification.
    expect(detail.thread.find((m: { kind: string }) => m.kind === 'answer').text).toBe('Trafo di tiang 12 sudah diganti pada 5 Desember; listrik menyala kembali.');
    expect(detail.events.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['received', 'verified', 'disposed', 'assigned', 'answered', 'closed']));
    // The public status page follows every change of status, and never says who made it.
    const publicView = (await env.app.inject({ method: 'GET', url: `/api/v1/reports/${id}` })).json();
    expect(publicView.timeline.map((t: { status?: string }) => t.status).filter(Boolean)).toEqual(['belum_terverifikasi', 'terverifikasi', 'terdisposisi', 'sedang_diproses', 'selesai']);
    expect(JSON.stringify(publicView)).not.toMatch(/super_admin|liaison|agency_admin/);
    expect(publicView.notifications.find((n: { kind: string }) => n.kind === 'answer').text).toContain('Trafo di tiang 12');
    const disposed = detail.events.find((e: { type: string }) => e.type === 'disposed');
    expect(disposed).toMatchObject({ from: 'terverifikasi', to: 'terdisposisi', actor: expect.stringMatching(/^super_admin:\d+$/), data: { agency: 'pln' } });
  });

  it('lets an agency return a report, and the super admin forward it again or reject it', async () => {
    const id = await reportIn('bukan_wewenang');
    expect((await call(env, 'GET', `/api/v1/admin/reports/${id}`, plnAdmin)).statusCode).toBe(404);
    const list = (await call(env, 'GET', '/api/v1/admin/reports?status=bukan_wewenang', admin)).json();
    expect(list.items.map((i: { trackingId: string }) => i.trackingId)).toContain(id);
    expect((await step(id, 'dispose', admin, { agency: 'pemkot-bandung' })).json()).toMatchObject({ status: 'terdisposisi', agency: 'pemkot-bandung' });

    const other = await reportIn('bukan_wewenang');
    const rejected = await step(other, 'reject', admin, { reason: 'Laporan ini bukan tentang pelayanan publik.' });
    expect(rejected.json()).toMatchObject({ status: 'tidak_dapat_diproses' });
    await eventually(async () => ((await notificationKinds(env, other)).includes('not_processable') ? true : undefined), 10_000, 'not_processable sent');
  });

  // Every step, from every status, for every role: the status code says who may, from where.
  const ROUTE: Record<Step, string> = {
    verify: 'verify', reweigh: 'weight', dispose: 'dispose', assign: 'dispose', return: 'return', request_info: 'request-info',
    answer: 'answer', close: 'close', reject: 'reject', archive: 'archive',
  };
  const BODY: Record<Step, unknown> = {
    verify: { kind: 'aspirasi', weight: 'ringan' },
    reweigh: { weight: 'berat' },
    dispose: { agency: 'pln' },
    assign: { unit: 'pln-uid-jabar' },
    return: { reason: 'bukan wewenang kami' },
    request_info: { message: 'Mohon lampirkan foto.' },
    answer: { text: 'Sudah kami tindak lanjuti.' },
    close: { reason: 'debat_kusir' },
    reject: { reason: 'tidak jelas sama sekali' },
    archive: { reason: 'duplikat' },
  };
  const STATES: ReportStatus[] = ['belum_terverifikasi', 'terverifikasi', 'terdisposisi', 'sedang_diproses', 'selesai', 'tertunda', 'bukan_wewenang', 'tidak_dapat_diproses', 'arsip'];

  it('allows each step only to its roles and from its statuses', { timeout: 120_000 }, async () => {
    const who: Record<Role, () => Account> = { super_admin: () => admin, agency_admin: () => plnAdmin, liaison: () => plnLiaison, operator: () => operator };
    const problems: string[] = [];
    for (const status of STATES) {
      // Refusals change nothing, so they share one report per status; each allowed step gets its own.
      const shared = await reportIn(status);
      const { rows } = await env.runtime.db.query<{ agency: string | null; unit: string | null }>('SELECT agency_slug AS agency, unit_slug AS unit FROM reports WHERE tracking_id = $1', [shared]);
      for (const [name, route] of Object.entries(ROUTE) as [Step, string][]) {
        for (const role of ['super_admin', 'agency_admin', 'liaison', 'operator'] as Role[]) {
          // An agency role reaches a report only once its agency (or unit) has it.
          const reach = role === 'super_admin' || (role === 'agency_admin' && rows[0]!.agency === 'pln') || (role === 'liaison' && rows[0]!.unit === 'pln-uid-jabar');
          const allowedRole = (STEP_ROLES[name] as readonly Role[]).includes(role);
          // A report waiting for its reporter before any disposition may still be rejected.
          const fromOk = STEP_FROM[name].includes(status) || (name === 'reject' && status === 'tertunda');
          const expected = role === 'operator' ? 403 : !reach ? 404 : !allowedRole ? 403 : !fromOk ? 409 : 200;
          const id = expected === 200 ? await reportIn(status) : shared;
          const res = await step(id, route, who[role](), BODY[name]);
          if (res.statusCode !== expected) problems.push(`${name} by ${role} from ${status}: ${res.statusCode}, expected ${expected} (${res.body})`);
          if (res.statusCode === 409) expect(res.json()).toEqual({ error: 'illegal_transition', message: expect.any(String), status });
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('reach and refusals', () => {
  it('hides another agency’s report behind 404, even from its own list and search', async () => {
    const id = await reportIn('terdisposisi', { text: 'Listrik padam di Jl. Unik Sekali 99, tolong PLN segera.' });
    for (const path of ['', '/reporter']) expect((await call(env, 'GET', `/api/v1/admin/reports/${id}${path}`, polriAdmin)).statusCode).toBe(404);
    expect((await step(id, 'answer', polriAdmin, { text: 'bukan kami' })).statusCode).toBe(404);
    expect((await step(id, 'answer', otherLiaison, { text: 'bukan unit kami' })).statusCode).toBe(404);
    const search = (await call(env, 'GET', `/api/v1/admin/reports?q=${id}`, polriAdmin)).json();
    expect(search.items).toEqual([]);
    expect((await call(env, 'GET', `/api/v1/admin/reports?q=Unik%20Sekali`, plnAdmin)).json().items.map((i: { trackingId: string }) => i.trackingId)).toEqual([id]);
    expect((await call(env, 'GET', '/api/v1/admin/reports/9999999999', admin)).statusCode).toBe(404);
  });

  it('refuses bad input with 400 and names the field', async () => {
    const id = await reportIn('terverifikasi');
    const cases: [string, unknown, string][] = [
      ['dispose', { agency: 'no-such-agency' }, 'unknown_agency'],
      ['dispose', { agency: 'PLN!' }, 'bad_request'],
      ['verify', { kind: 'pengaduan', weight: 'sangat berat' }, 'bad_request'],
      ['verify', { kind: 'pengaduan', weight: 'ringan', extra: 1 }, 'bad_request'],
      ['answer', { text: 'x'.repeat(10_001) }, 'bad_request'],
      ['reject', { reason: 42 }, 'bad_request'],
      ['verify', { kind: 'pengaduan', weight: 'ringan', anonim: false }, 'bad_request'], // privacy only tightens
      ['reject', { reason: '\u200b\u200b \u0000' }, 'bad_request'],
      ['answer', { text: '😀'.repeat(10_001) }, 'bad_request'],
    ];
    for (const [route, body, error] of cases) {
      const res = await step(id, route, admin, body);
      expect({ route, status: res.statusCode, error: res.json().error }).toEqual({ route, status: 400, error });
    }
    expect((await call(env, 'GET', '/api/v1/admin/reports/12ab', admin)).statusCode).toBe(400);
    expect((await call(env, 'GET', '/api/v1/admin/reports?cursor=bm9wZQ', admin)).json().error).toBe('bad_cursor');
    expect((await call(env, 'GET', '/api/v1/admin/reports?limit=5000', admin)).statusCode).toBe(400);
    const other = await reportIn('terdisposisi');
    expect((await step(other, 'dispose', plnAdmin, { unit: 'polda-jabar' })).json().error).toBe('unknown_unit');
  });

  it('stores an operator’s words sanitized, so PostgreSQL never refuses them', async () => {
    const id = await reportIn('terdisposisi');
    const res = await step(id, 'answer', plnLiaison, { text: 'Sudah\u0000 diperbaiki\u0085pada hari Senin.\u{FFFF}' });
    expect(res.statusCode, res.body).toBe(200);
    const answer = (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json().thread.find((m: { kind: string }) => m.kind === 'answer');
    expect(answer.text).toBe('Sudah diperbaiki\npada hari Senin.');
  });

  it('pages through the list with a cursor, newest first, with the filters', async () => {
    for (let i = 0; i < 3; i++) await reportIn('terverifikasi');
    const first = (await call(env, 'GET', '/api/v1/admin/reports?status=terverifikasi&limit=2', admin)).json();
    expect(first.items).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = (await call(env, 'GET', `/api/v1/admin/reports?status=terverifikasi&limit=2&cursor=${first.nextCursor}`, admin)).json();
    const seen = [...first.items, ...second.items].map((i: { trackingId: string }) => i.trackingId);
    expect(new Set(seen).size).toBe(seen.length);
    for (const item of [...first.items, ...second.items]) expect(item).toMatchObject({ status: 'terverifikasi', colour: 'merah', weight: 'sedang' });
    expect(Date.parse(first.items[0].receivedAt)).toBeGreaterThanOrEqual(Date.parse(first.items[1].receivedAt));
    const merah = (await call(env, 'GET', '/api/v1/admin/reports?colour=hijau&limit=200', admin)).json();
    for (const item of merah.items) expect(item.colour).toBe('hijau');
  });
});

describe('privacy per role', () => {
  const IDENTITY = { name: 'Siti Aminah Rahayu', phone: '081298765432', email: 'siti.aminah@example.id' };
  const traces = ['Siti Aminah', '81298765432', 'siti.aminah@example.id'];

  it('never shows an agency role an anonim reporter, and records who read an identity', async () => {
    const id = await reportIn('terdisposisi', { reporter: IDENTITY, anonim: true });
    const forAgency = [
      await call(env, 'GET', `/api/v1/admin/reports/${id}`, plnAdmin),
      await call(env, 'GET', `/api/v1/admin/reports/${id}`, plnLiaison),
      await call(env, 'GET', '/api/v1/admin/reports?limit=200', plnAdmin),
      await call(env, 'GET', `/api/v1/admin/reports/${id}/reporter`, plnAdmin),
      await call(env, 'GET', `/api/v1/admin/reports/${id}/reporter`, plnLiaison),
      await step(id, 'answer', plnLiaison, { text: 'Sudah kami periksa di lokasi.' }),
    ];
    expect(forAgency[3]!.statusCode).toBe(403);
    expect(forAgency[4]!.statusCode).toBe(403);
    for (const res of forAgency) for (const trace of traces) expect(res.body).not.toContain(trace);

    const read = await call(env, 'GET', `/api/v1/admin/reports/${id}/reporter`, admin);
    expect(read.json()).toMatchObject({ name: IDENTITY.name, phone: expect.stringMatching(/81298765432$/), email: IDENTITY.email, channel: 'web' });
    const events = (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json().events as { type: string; actor: string; data: unknown }[];
    const reads = events.filter((e) => e.type === 'identity_read');
    expect(reads).toEqual([{ type: 'identity_read', actor: expect.stringMatching(/^super_admin:\d+$/), at: expect.any(String), from: null, to: null, reason: null, data: {} }]);
    for (const trace of traces) expect(env.logs.join('\n')).not.toContain(trace);
  });

  it('shows an agency role the reporter of a report that is not anonim, and records it', async () => {
    // Another phone and address: the same reporter twice in a row would be refused as a duplicate.
    const id = await reportIn('terdisposisi', { reporter: { ...IDENTITY, phone: '081311112222', email: 'siti.aminah2@example.id' } });
    const read = await call(env, 'GET', `/api/v1/admin/reports/${id}/reporter`, plnLiaison);
    expect(read.json()).toMatchObject({ name: IDENTITY.name, phone: expect.stringMatching(/81311112222$/) });
    const events = (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json().events as { type: string; actor: string }[];
    expect(events.filter((e) => e.type === 'identity_read').map((e) => e.actor)).toEqual([expect.stringMatching(/^liaison:\d+$/)]);
    // The detail itself never carries the identity, whoever asks.
    expect((await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).body).not.toContain('Siti Aminah');
  });
});

describe('the operator on duty', () => {
  it('sees queues, links and dead letters; agency roles do not; nobody sees a job’s contents', async () => {
    for (const path of ['/queues', '/channels', '/dead-letters']) {
      expect((await call(env, 'GET', `/api/v1/admin${path}`, operator)).statusCode).toBe(200);
      expect((await call(env, 'GET', `/api/v1/admin${path}`, admin)).statusCode).toBe(200);
      expect((await call(env, 'GET', `/api/v1/admin${path}`, plnAdmin)).statusCode).toBe(403);
      expect((await call(env, 'GET', `/api/v1/admin${path}`, plnLiaison)).statusCode).toBe(403);
    }
    const queues = (await call(env, 'GET', '/api/v1/admin/queues', operator)).json().queues as { name: string; waiting: number }[];
    expect(queues.map((q) => q.name)).toEqual(expect.arrayContaining(['inbound', 'deadlines', 'notify-sms']));
    expect((await call(env, 'GET', '/api/v1/admin/reports', operator)).statusCode).toBe(403);
    expect((await call(env, 'POST', '/api/v1/admin/dead-letters/inbound/nope/replay', operator)).statusCode).toBe(404);
    expect((await call(env, 'POST', '/api/v1/admin/dead-letters/nope/x/replay', plnAdmin)).statusCode).toBe(403);
  });
});

describe('agencies', () => {
  it('lists agencies and their units publicly, from config/agencies.json', async () => {
    const res = await env.app.inject({ method: 'GET', url: '/api/v1/agencies' });
    const agencies = res.json().agencies as { slug: string; units: { slug: string }[] }[];
    expect(agencies.find((a) => a.slug === 'pln')?.units.map((u) => u.slug)).toEqual(expect.arrayContaining(['pln-uid-jabar']));
    for (const slug of ['bpjs-kesehatan', 'polri', 'pemprov-jabar', 'pemkot-bandung', 'kemensos']) expect(agencies.map((a) => a.slug)).toContain(slug);
  });

  it('lets super admins add agencies and units, with slugs unique across both', async () => {
    expect((await call(env, 'PUT', '/api/v1/admin/agencies/pemkab-garut', admin, { name: 'Pemerintah Kabupaten Garut', kind: 'pemda' })).statusCode).toBe(201);
    expect((await call(env, 'PUT', '/api/v1/admin/agencies/pemkab-garut/units/garut-dinkes', admin, { name: 'Dinas Kesehatan Kabupaten Garut' })).statusCode).toBe(201);
    expect((await call(env, 'PUT', '/api/v1/admin/agencies/pemkab-garut/units/garut-dinkes', admin, { name: 'Dinkes Garut' })).statusCode).toBe(200);
    expect((await call(env, 'PUT', '/api/v1/admin/agencies/garut-dinkes', admin, { name: 'x x', kind: 'pemda' })).statusCode).toBe(409);
    expect((await call(env, 'PUT', '/api/v1/admin/agencies/pln/units/garut-dinkes', admin, { name: 'Pindah?' })).statusCode).toBe(409);
    expect((await call(env, 'PUT', '/api/v1/admin/agencies/pemkab-garut', plnAdmin, { name: 'Garut', kind: 'pemda' })).statusCode).toBe(403);
    expect((await call(env, 'PUT', '/api/v1/admin/agencies/nope/units/nope-x', admin, { name: 'x x' })).statusCode).toBe(404);
  });
});

describe('the outbox', () => {
  it('publishes what a step committed but never published', async () => {
    const id = await reportIn('terverifikasi');
    const effect = { queue: 'notify-web', name: 'forwarded', jobId: `n_${id}_forwarded_outboxtest`, data: { notifyKey: `n_${id}_forwarded_outboxtest`, kind: 'forwarded', lang: 'id', trackingId: id, vars: {} } };
    await env.runtime.db.query(`INSERT INTO outbox (effects, created_at) VALUES ($1, now() - interval '1 minute')`, [JSON.stringify([effect])]);
    expect(await sweepOutbox(env.runtime.db, (effects) => env.runtime.queues.addEffects(effects))).toBe(1);
    expect(await sweepOutbox(env.runtime.db, (effects) => env.runtime.queues.addEffects(effects))).toBe(0);
    await eventually(async () => ((await notificationKinds(env, id)).includes('forwarded') ? true : undefined), 10_000, 'the swept notification sent');
  });
});

describe('deadlines', () => {
  const detail = async (id: string) => (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json();
  const publish = (effects: Parameters<TestEnv['runtime']['queues']['addEffects']>[0]) => env.runtime.queues.addEffects(effects);

  it('runs the follow-up clock from the disposition by weight, pauses it in tertunda, and records a breach once', async () => {
    const id = await reportIn('terverifikasi');
    await step(id, 'dispose', admin, { agency: 'pln' });
    const { calendar } = env.runtime.clocks;
    const [followUp] = (await detail(id)).deadlines;
    const disposedAt = new Date((await detail(id)).events.find((e: { type: string }) => e.type === 'disposed').at);
    expect(followUp).toMatchObject({ clock: 'follow_up', paused: false, breached: false, remainingWorkingDays: expect.any(Number) });
    // sedang: 14 working days after the disposition day, due at the end of the day in Jakarta.
    expect(followUp.dueAt).toBe(`${calendar.addWorkingDays(calendar.jakartaDate(disposedAt), 14)}T23:59:59.999+07:00`);
    expect(followUp.remainingWorkingDays).toBeGreaterThanOrEqual(13);

    await step(id, 'request-info', plnAdmin, { message: 'Mohon kirim foto meteran.' });
    expect((await detail(id)).deadlines).toEqual([{ clock: 'follow_up', dueAt: null, paused: true, breached: false, remainingWorkingDays: expect.any(Number) }]);

    const other = await reportIn('terdisposisi');
    const due = new Date((await detail(other)).deadlines[0].dueAt);
    const later = new Date(due.getTime() + 1);
    const [first, second] = [await sweepDeadlines(env.runtime.db, later, publish), await sweepDeadlines(env.runtime.db, later, publish)];
    expect(first.breaches).toBeGreaterThanOrEqual(1);
    expect(second.breaches).toBe(0);
    const view = await detail(other);
    // Recorded as breached; the working days left are still counted from today (the sweep ran ahead in time).
    expect(view.deadlines[0]).toMatchObject({ clock: 'follow_up', breached: true });
    expect(view.events.filter((e: { type: string }) => e.type === 'deadline_breached')).toEqual([
      expect.objectContaining({ actor: 'system:deadline', at: later.toISOString(), data: expect.objectContaining({ clock: 'follow_up', agency: 'pln' }) }),
    ]);
    // The paused report's clock did not run while it waited for its reporter.
    expect((await detail(id)).events.filter((e: { type: string }) => e.type === 'deadline_breached')).toEqual([]);
  });

  it('lists the deadlines at risk for each role: breached or due within the hours asked', async () => {
    const id = await reportIn('terdisposisi');
    await env.runtime.db.query(`UPDATE report_clocks SET due_at = now() + interval '2 hours' WHERE report_seq = (SELECT seq FROM reports WHERE tracking_id = $1)`, [id]);
    const risk = async (who: Account, hours = 24) => (await call(env, 'GET', `/api/v1/admin/deadlines?withinHours=${hours}`, who)).json().deadlines as { trackingId: string; clock: string; breached: boolean; agency: string }[];
    expect((await risk(admin)).find((d) => d.trackingId === id)).toMatchObject({ clock: 'follow_up', breached: false, agency: 'pln' });
    expect((await risk(plnAdmin)).map((d) => d.trackingId)).toContain(id);
    expect((await risk(plnLiaison)).map((d) => d.trackingId)).toContain(id);
    expect((await risk(polriAdmin)).map((d) => d.trackingId)).not.toContain(id);
    expect((await risk(admin, 1)).map((d) => d.trackingId)).not.toContain(id);
    expect((await call(env, 'GET', '/api/v1/admin/deadlines', operator)).statusCode).toBe(403);
  });

  it('recomputes the follow-up from the disposition when the weight changes', async () => {
    const id = await reportIn('terdisposisi'); // sedang: 14 working days
    const { calendar } = env.runtime.clocks;
    const disposedAt = new Date((await detail(id)).events.find((e: { type: string }) => e.type === 'disposed').at);
    const dueFor = (days: number) => `${calendar.addWorkingDays(calendar.jakartaDate(disposedAt), days)}T23:59:59.999+07:00`;
    expect((await detail(id)).deadlines[0].dueAt).toBe(dueFor(14));
    expect((await step(id, 'weight', admin, { weight: 'berat', note: 'menyangkut keselamatan warga' })).json()).toMatchObject({ status: 'terdisposisi' });
    expect((await detail(id)).deadlines[0].dueAt).toBe(dueFor(30));
    await step(id, 'weight', admin, { weight: 'ringan' });
    expect((await detail(id)).deadlines[0].dueAt).toBe(dueFor(5));
    expect((await detail(id)).weight).toBe('ringan');
    expect((await step(id, 'weight', plnAdmin, { weight: 'berat' })).statusCode).toBe(403);
  });

  it('closes an answered report 10 working days on, exactly once with two sweepers racing, and tells the reporter', async () => {
    const id = await reportIn('sedang_diproses');
    const autoClose = (await detail(id)).deadlines.find((d: { clock: string }) => d.clock === 'auto_close');
    const answeredAt = new Date((await detail(id)).events.find((e: { type: string }) => e.type === 'answered').at);
    const { calendar } = env.runtime.clocks;
    expect(autoClose.dueAt).toBe(`${calendar.addWorkingDays(calendar.jakartaDate(answeredAt), 10)}T23:59:59.999+07:00`);
    expect((await detail(id)).deadlines.map((d: { clock: string }) => d.clock)).toEqual(['auto_close']); // the follow-up was met

    const before = new Date(new Date(autoClose.dueAt).getTime() - 1);
    expect((await sweepDeadlines(env.runtime.db, before, publish)).autoClosed).not.toContain(id);
    const after = new Date(new Date(autoClose.dueAt).getTime() + 60_000);
    const results = await Promise.all([1, 2, 3].map(() => sweepDeadlines(env.runtime.db, after, publish)));
    expect(results.flatMap((r) => r.autoClosed).filter((t) => t === id)).toEqual([id]);
    const view = await detail(id);
    expect(view).toMatchObject({ status: 'selesai', colour: 'hijau', deadlines: [] });
    expect(view.events.filter((e: { type: string }) => e.type === 'closed')).toEqual([
      expect.objectContaining({ actor: 'system:deadline', from: 'sedang_diproses', to: 'selesai', at: after.toISOString(), data: expect.objectContaining({ by: 'auto' }) }),
    ]);
    await eventually(async () => ((await notificationKinds(env, id)).filter((k) => k === 'closed').length === 1 ? true : undefined), 10_000, 'one closed notification');
    const answered = (await detail(id)).events.find((e: { type: string }) => e.type === 'answered');
    expect(answered.data).toMatchObject({ onTime: { follow_up: true }, workingDays: { follow_up: 0 } });
  });
});
