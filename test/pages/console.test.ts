import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrfOf } from '../../src/http/pages/console.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { account, filedReport, type Account } from '../helpers/operators.ts';

/**
 * The console at /admin without a browser (the browser walk is in console.browser.test.ts): the
 * session cookie, CSRF, what each role is shown and may do, and the queue dashboard's door.
 */

let env: TestEnv;
let admin: Account;
let pln: Account;
let polri: Account;
let operator: Account;
beforeAll(async () => {
  env = await createTestEnv();
  [admin, pln, polri, operator] = [
    await account(env, 'super_admin'),
    await account(env, 'agency_admin', { agency: 'pln' }),
    await account(env, 'agency_admin', { agency: 'polri' }),
    await account(env, 'operator'),
  ];
});
afterAll(async () => {
  await env?.close();
});

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/** Posts the login form as a browser does: with the token and the cookie its GET handed out. */
async function postLogin(fields: Record<string, string>) {
  const page = await env.app.inject({ method: 'GET', url: '/admin/login' });
  const token = /name="_login" value="([^"]+)"/.exec(page.body)![1]!;
  const cookie = /lapor_login=([^;]+)/.exec(String(page.headers['set-cookie']))![1]!;
  return env.app.inject({ method: 'POST', url: '/admin/login', headers: { ...FORM, cookie: `lapor_login=${cookie}` }, payload: form({ ...fields, _login: token }) });
}

/** Logs in through the console's form; returns the cookie header to send and the CSRF token of its forms. */
async function logIn(who: Account): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const res = await postLogin({ email: who.email, password: who.password, next: '/admin' });
  expect(res.statusCode, res.body).toBe(303);
  const setCookie = String(res.headers['set-cookie']);
  const token = /lapor_admin=([^;]+)/.exec(setCookie)![1]!;
  return { cookie: `lapor_admin=${token}`, csrf: csrfOf(token), setCookie };
}

const get = (url: string, cookie?: string) => env.app.inject({ method: 'GET', url, headers: cookie ? { cookie } : {} });
const postForm = (url: string, cookie: string, fields: Record<string, string>) => env.app.inject({ method: 'POST', url, headers: { ...FORM, cookie }, payload: form(fields) });

describe('the console', () => {
  it('logs in with an httpOnly, SameSite=Strict cookie scoped to /admin, and refuses a wrong password', async () => {
    const { setCookie } = await logIn(admin);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\/admin/);
    const wrong = await postLogin({ email: admin.email, password: 'salah sekali' });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('Email atau kata sandi salah.');
    expect(String(wrong.headers['set-cookie'] ?? '')).not.toContain('lapor_admin=');
    expect((await get('/admin')).headers.location).toBe('/admin/login?next=%2Fadmin');
  });

  it('refuses a login posted without the form\u2019s own token (a login forged by another site)', async () => {
    const forged = await env.app.inject({ method: 'POST', url: '/admin/login', headers: FORM, payload: form({ email: admin.email, password: admin.password }) });
    expect(forged.statusCode).toBe(403);
    expect(String(forged.headers['set-cookie'] ?? '')).not.toContain('lapor_admin=');
    const mismatched = await env.app.inject({ method: 'POST', url: '/admin/login', headers: { ...FORM, cookie: 'lapor_login=' + 'a'.repeat(24) }, payload: form({ email: admin.email, password: admin.password, _login: 'b'.repeat(24) }) });
    expect(mismatched.statusCode).toBe(403);
  });

  it('never follows a login to another site', async () => {
    const res = await postLogin({ email: admin.email, password: admin.password, next: '//evil.example/admin' });
    expect(res.headers.location).toBe('/admin');
  });

  it('refuses a state-changing form without its CSRF token, and takes it with one', async () => {
    const session = await logIn(admin);
    const id = await filedReport(env);
    const forged = await postForm(`/admin/laporan/${id}/aksi/verify`, session.cookie, { kind: 'pengaduan', weight: 'sedang' });
    expect(forged.statusCode).toBe(403);
    const wrong = await postForm(`/admin/laporan/${id}/aksi/verify`, session.cookie, { _csrf: csrfOf('someone-elses-token'), kind: 'pengaduan', weight: 'sedang' });
    expect(wrong.statusCode).toBe(403);
    const { rows } = await env.runtime.db.query('SELECT status FROM reports WHERE tracking_id = $1', [id]);
    expect(rows[0].status).toBe('belum_terverifikasi');
    const done = await postForm(`/admin/laporan/${id}/aksi/verify`, session.cookie, { _csrf: session.csrf, kind: 'pengaduan', weight: 'sedang', rahasia: '', note: '' });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe(`/admin/laporan/${id}?ok=verify`);
    expect((await env.runtime.db.query('SELECT status, weight FROM reports WHERE tracking_id = $1', [id])).rows[0]).toEqual({ status: 'terverifikasi', weight: 'sedang' });
  });

  it('shows each role its inbox and only the actions it may take; another agency gets nothing', async () => {
    const a = await logIn(admin);
    const id = await filedReport(env, { text: 'Tiang listrik PLN miring di Jl. Braga 7, hampir roboh menimpa rumah warga.' });
    const inbox = await get('/admin/kotak-masuk', a.cookie);
    expect(inbox.body).toContain('Perlu diverifikasi');
    expect((await get('/admin/kotak-masuk?status=terdisposisi', a.cookie)).body).not.toMatch(/<td>pln<\/td>/); // names, not slugs
    expect(inbox.body).toContain(`/admin/laporan/${id}`);
    await postForm(`/admin/laporan/${id}/aksi/verify`, a.cookie, { _csrf: a.csrf, kind: 'pengaduan', weight: 'berat' });
    await postForm(`/admin/laporan/${id}/aksi/dispose`, a.cookie, { _csrf: a.csrf, agency: 'pln', note: '' });

    expect((await get('/admin/kotak-masuk?status=terdisposisi', a.cookie)).body).toContain('<td>PT PLN (Persero)</td>');
    const p = await logIn(pln);
    const page = await get(`/admin/laporan/${id}`, p.cookie);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(`action="/admin/laporan/${id}/aksi/dispose"`); // assign to a unit
    expect(page.body).toContain('name="unit"');
    expect(page.body).not.toContain(`/aksi/verify"`);
    expect(page.body).not.toContain(`/aksi/archive"`);
    expect((await get('/admin/kotak-masuk', p.cookie)).body).toContain(`/admin/laporan/${id}`);
    const illegal = await postForm(`/admin/laporan/${id}/aksi/verify`, p.cookie, { _csrf: p.csrf, kind: 'pengaduan', weight: 'ringan' });
    expect(illegal.statusCode).toBe(400);
    expect(illegal.body).toContain('role="alert"');

    const other = await logIn(polri);
    expect((await get(`/admin/laporan/${id}`, other.cookie)).statusCode).toBe(404);
    expect((await get('/admin/kotak-masuk', other.cookie)).body).not.toContain(id);
  });

  it('shows the reporter only behind an explicit, recorded request, and never an anonim one to an agency', async () => {
    const a = await logIn(admin);
    const id = await filedReport(env, { reporter: { name: 'Dewi Lestari Anwar', phone: '081355557777' }, anonim: true });
    await postForm(`/admin/laporan/${id}/aksi/verify`, a.cookie, { _csrf: a.csrf, kind: 'pengaduan', weight: 'ringan' });
    await postForm(`/admin/laporan/${id}/aksi/dispose`, a.cookie, { _csrf: a.csrf, agency: 'pln' });
    expect((await get(`/admin/laporan/${id}`, a.cookie)).body).not.toContain('Dewi Lestari');
    const shown = await postForm(`/admin/laporan/${id}/identitas`, a.cookie, { _csrf: a.csrf });
    expect(shown.body).toContain('Dewi Lestari Anwar');
    const p = await logIn(pln);
    const agencyPage = await get(`/admin/laporan/${id}`, p.cookie);
    expect(agencyPage.body).toContain('Pelapor meminta identitasnya dirahasiakan.');
    const tried = await postForm(`/admin/laporan/${id}/identitas`, p.cookie, { _csrf: p.csrf });
    expect(tried.body).not.toContain('Dewi Lestari');
    expect(tried.body).not.toContain('81355557777');
  });

  it('lets the operator see queues and dead letters, and opens the queue dashboard only to operators and super admins', async () => {
    const o = await logIn(operator);
    expect((await get('/admin', o.cookie)).headers.location).toBe('/admin/operasi');
    const ops = await get('/admin/operasi', o.cookie);
    expect(ops.statusCode).toBe(200);
    expect(ops.body).toContain('notify-sms');
    expect((await get('/admin/queues/', o.cookie)).statusCode).toBe(200);
    expect((await get('/admin/queues/', (await logIn(admin)).cookie)).statusCode).toBe(200);
    const p = await logIn(pln);
    expect((await get('/admin/queues/', p.cookie)).statusCode).toBe(403);
    expect((await get('/admin/queues/api/queues', p.cookie)).statusCode).toBe(403);
    expect((await get('/admin/operasi', p.cookie)).statusCode).toBe(403);
    expect((await get('/admin/queues/')).statusCode).toBe(303);
  });

  it('speaks Bahasa Indonesia by default and English on request, remembered in the lang cookie on every screen', async () => {
    const s = await logIn(admin);
    const id = await filedReport(env);
    const plain = await get('/admin', s.cookie);
    expect(plain.body).toContain('<html lang="id">');
    expect(plain.body).toContain('<h1>Risiko tenggat</h1>');
    expect(plain.body).toContain('href="/admin?lang=en"');
    expect(plain.headers['set-cookie']).toBeUndefined();

    const en = await get('/admin?lang=en', s.cookie);
    expect(en.statusCode).toBe(200);
    expect(en.body).toContain('<html lang="en">');
    expect(en.body).toContain('<h1>Deadline risk</h1>');
    expect(en.body).toContain('href="/admin?lang=id"');
    expect(en.body).not.toContain('Risiko tenggat');
    expect(String(en.headers['set-cookie'])).toMatch(/^lang=en; Path=\/;/);
    expect(en.headers['content-security-policy']).toBe(plain.headers['content-security-policy']);

    // The next page, without the query: English from the cookie; the switch keeps the page's own parameters.
    const english = `${s.cookie}; lang=en`;
    const report = await get(`/admin/laporan/${id}?ok=verify`, english);
    expect(report.statusCode).toBe(200);
    expect(report.body).toContain(`Report ${id} <span class="badge merah">not yet verified</span>`);
    expect(report.body).toContain('>Verify</button>');
    expect(report.body).toContain('Saved.');
    expect(report.body).toContain(`href="/admin/laporan/${id}?ok=verify&amp;lang=id"`);
    expect(report.body).not.toContain('Tersimpan');
    expect((await get(`/admin/laporan/${id}?ok=verify&lang=id`, english)).body).toContain('Tersimpan.');
    expect((await get('/admin/kotak-masuk', english)).body).toContain('To verify (');

    // A refused form answers in English too, its switch leading to the page the form is on.
    const forged = await postForm(`/admin/laporan/${id}/aksi/verify`, english, { kind: 'pengaduan', weight: 'sedang' });
    expect(forged.statusCode).toBe(403);
    expect(forged.body).toContain('<h1>Request refused</h1>');
    expect(forged.body).toContain(`href="/admin/laporan/${id}?lang=id"`);
    expect((await get('/admin/queues/', `${(await logIn(pln)).cookie}; lang=en`)).body).toBe('The queue dashboard is for operators and super admins only.');

    // The login page, without a session.
    const login = await get('/admin/login?next=%2Fadmin%2Fkotak-masuk&lang=en');
    expect(login.body).toContain('<h1>Log in to the LAPOR! console</h1>');
    expect(login.body).toContain('href="/admin/login?next=%2Fadmin%2Fkotak-masuk&amp;lang=id"');
    expect(String(login.headers['set-cookie'])).toMatch(/^lang=en; Path=\/;/);
    const wrong = await postLogin({ email: admin.email, password: 'salah sekali', lang: 'en' });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('Wrong email or password.');
    expect((await get('/admin/login')).body).toContain('<h1>Masuk ke konsol LAPOR!</h1>');
  });

  it('logs out: the cookie is cleared and the token no longer works', async () => {
    const s = await logIn(admin);
    const out = await postForm('/admin/logout', s.cookie, { _csrf: s.csrf });
    expect(out.statusCode).toBe(303);
    expect(String(out.headers['set-cookie'])).toMatch(/lapor_admin=;.*Max-Age=0/);
    expect((await get('/admin', s.cookie)).statusCode).toBe(303);
  });
});
