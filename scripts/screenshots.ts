/**
 * Screenshots of the pages for the docs, in docs/screenshots/: `npm run screenshots`
 * (node --import tsx scripts/screenshots.ts).
 *
 *   1. starts its own redis-server and PostgreSQL in a temp dir, as the benchmarks do (harness.ts);
 *   2. builds the real gateway in this process (openRuntime, every worker, buildApp + listen on loopback);
 *   3. seeds a scene through the API: four accounts and seven reports in different states (one
 *      answered by its agency, one closed, some past or near their deadlines: the clocks of those are
 *      moved back in time, with the rest of their report, so the dates agree);
 *   4. takes the pictures in Debian's chromium (/usr/bin/chromium, test/helpers/browser.ts), logging
 *      in through the console's form: the console at 1280 × 800, the citizen pages at 360 × 740, the
 *      visible part of each page only (a viewport, not the full page), so each PNG stays small;
 *   5. stops everything and removes the temp dir.
 *
 * Nothing leaves the machine: the browser's requests for Google Fonts (bull-board asks for them) are
 * answered with an error.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { loadConfig } from '../config/load.ts';
import type { Role } from '../src/core/roles.ts';
import { hashPassword } from '../src/http/auth.ts';
import { buildApp } from '../src/http/app.ts';
import { openRuntime } from '../src/runtime.ts';
import { insertUser } from '../src/store/users.ts';
import { launchBrowser, newPage } from '../test/helpers/browser.ts';
import { WORKER_NAMES, startWorkers } from '../workers/run.ts';
import { beginBench, benchEnv, startBenchServices, TimeoutError } from './bench/harness.ts';

const OUT = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
const TIMEOUT_S = 120;
const CONSOLE = { width: 1280, height: 800 } as const;
const PHONE = { width: 360, height: 740 } as const;

interface Person {
  email: string;
  password: string;
  token: string;
}

async function main(): Promise<number> {
  const { startedAt, deadline, log, say, teardown } = beginBench(TIMEOUT_S);
  const left = () => {
    if (Date.now() > deadline) throw new TimeoutError(`over ${TIMEOUT_S} s`);
    return deadline - Date.now();
  };
  try {
    // 1–2. services and the gateway
    const { dir, postgres, redis } = await startBenchServices(teardown, log, { name: 'screenshots', pgFast: true });
    const config = loadConfig(benchEnv({ dir, postgres, redis }, 'screenshots', { LAPOR_PUBLIC_URL: 'https://www.lapor.go.id' }));
    const runtime = await openRuntime(config, log);
    teardown.defer('runtime', () => runtime.close());
    const workers = await startWorkers(runtime, WORKER_NAMES, runtime.connectWorker);
    teardown.defer('workers', () => workers.close());
    const app = await buildApp(runtime);
    const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
    teardown.defer('http', () => app.close());
    say(`gateway on ${base}, data in ${dir}`);

    // 3. the scene
    const api = async (method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<Record<string, unknown>> => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const json = (await res.json()) as Record<string, unknown>;
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const person = async (role: Role, email: string, bound: { agency?: string; unit?: string } = {}): Promise<Person> => {
      const password = randomBytes(12).toString('base64url');
      const agency = bound.agency ?? (bound.unit ? bound.unit.replace(/-uid-.*$/, '') : null);
      await insertUser(runtime.db, { email, role, agencySlug: agency, unitSlug: bound.unit ?? null, passwordHash: await hashPassword(password) });
      const { token } = (await api('POST', '/api/v1/auth/login', { email, password })) as { token: string };
      return { email, password, token };
    };
    const admin = await person('super_admin', 'admin.pusat@lapor.go.id');
    const pln = await person('agency_admin', 'admin.pengaduan@pln.co.id', { agency: 'pln' });
    const liaison = await person('liaison', 'penghubung.uidjabar@pln.co.id', { unit: 'pln-uid-jabar' });
    const operator = await person('operator', 'piket.operasi@lapor.go.id');

    const file = async (text: string, extra: Record<string, unknown> = {}): Promise<string> => {
      const { trackingId } = (await api('POST', '/api/v1/reports', { text, ...extra })) as { trackingId: string };
      await until(async () => (await runtime.db.query('SELECT 1 FROM reports WHERE tracking_id = $1 AND verification IS NOT NULL', [trackingId])).rowCount === 1, left(), `report ${trackingId} stored`);
      return trackingId;
    };
    const step = (id: string, route: string, body: unknown, who: Person) => api('POST', `/api/v1/admin/reports/${id}/${route}`, body, who.token);

    // Oldest first, so that the inbox lists them in a believable order.
    const pothole = await file('Jalan berlubang besar di depan SDN 3 Sukamaju, Kec. Cibeunying, sudah dua bulan. Dua pengendara motor jatuh minggu lalu saat hujan.', {
      reporter: { name: 'Rina Kusumawati', phone: '081234567890' },
    });
    const water = await file('Air PDAM tidak mengalir tiga hari berturut-turut di Perumnas Antapani blok C. Warga harus membeli air galon untuk masak dan mandi.');
    await step(water, 'verify', { kind: 'pengaduan', weight: 'berat' }, admin);
    await step(water, 'dispose', { agency: 'pdam' }, admin);
    const bpjs = await file('Antrean BPJS Kesehatan KC Bandung dibuka jam 07.00 tetapi nomor antrean habis jam 07.15. Lansia menunggu berjam-jam tanpa kepastian.', {
      reporter: { email: 'budi.santoso@contoh.id' },
    });
    await step(bpjs, 'verify', { kind: 'pengaduan', weight: 'sedang' }, admin);
    await step(bpjs, 'dispose', { agency: 'bpjs-kesehatan' }, admin);
    const pole = await file('Tiang listrik PLN miring di Jl. Braga 7 Bandung sejak hujan deras Senin, kabelnya menjuntai rendah dekat gerbang sekolah.', {
      reporter: { name: 'Dewi Lestari', phone: '085712345678' },
    });
    await step(pole, 'verify', { kind: 'pengaduan', weight: 'sedang' }, admin);
    await step(pole, 'dispose', { agency: 'pln', note: 'Mohon segera: dekat sekolah.' }, admin);
    await step(pole, 'dispose', { unit: 'pln-uid-jabar' }, pln);
    await step(pole, 'answer', { text: 'Tim PLN UID Jawa Barat sudah menegakkan tiang dan merapikan kabel pada Rabu pagi, 09.30 WIB. Terima kasih atas laporannya.' }, liaison);
    const lights = await file('Lampu lalu lintas di simpang Jl. Dago – Jl. Sulanjana mati sejak kemarin sore, kendaraan saling serobot pada jam sibuk.');
    await step(lights, 'verify', { kind: 'pengaduan', weight: 'sedang' }, admin);
    await step(lights, 'dispose', { agency: 'dishub' }, admin);
    const dishub = await person('agency_admin', 'admin.pengaduan@dishub.go.id', { agency: 'dishub' });
    await step(lights, 'answer', { text: 'Lampu lalu lintas sudah diperbaiki petugas Dishub Kota Bandung pukul 10.00 hari ini.' }, dishub);
    await step(lights, 'close', { reason: 'selesai' }, admin);
    const rubbish = await file('Sampah menumpuk di TPS Jl. Cikutra sudah seminggu tidak diangkut, baunya sampai ke rumah warga dan banyak lalat.');
    const levy = await file('Ada pungutan Rp 150.000 untuk membuat KTP elektronik di kantor kelurahan, padahal seharusnya gratis.', { anonim: true });

    // Deadlines at risk: each report moved back in time as a whole, so that its clock falls due where wanted.
    const HOUR = 3_600_000;
    await backdate(postgres.url, pothole, 'verification', -26 * HOUR); // verification breached a day ago
    await backdate(postgres.url, water, 'follow_up', -3 * HOUR); // follow-up breached this morning
    await backdate(postgres.url, bpjs, 'follow_up', 6 * HOUR); // follow-up due within 24 hours
    await backdate(postgres.url, rubbish, 'verification', 4 * HOUR); // verification due within 24 hours
    // Every notification delivered (on the web channel: stored), nothing left in the queues.
    await until(async () => {
      const counts = await Promise.all(runtime.queues.all().map((q) => q.getJobCounts('waiting', 'active', 'prioritized')));
      const queued = await runtime.db.query(`SELECT 1 FROM messages WHERE direction = 'out' AND status = 'queued' LIMIT 1`);
      return counts.every((c) => Object.values(c).every((v) => v === 0)) && queued.rowCount === 0;
    }, left(), 'the queues drained');
    say(`scene: ${[pothole, water, bpjs, pole, lights, rubbish, levy].join(', ')} (answered: ${pole}, closed: ${lights})`);

    // 4. the pictures
    mkdirSync(OUT, { recursive: true });
    const browser = await launchBrowser();
    teardown.defer('browser', () => browser.close());
    const shots: { name: string; bytes: number; ms: number }[] = [];
    const shoot = async (page: Page, name: string, t0: number) => {
      const path = `${OUT}${name}.png`;
      await page.screenshot({ path, fullPage: false });
      shots.push({ name: `${name}.png`, bytes: statSync(path).size, ms: Math.round(performance.now() - t0) });
    };

    let t0 = performance.now();
    const phone = await newPage(browser, PHONE);
    await phone.goto(`${base}/`);
    await phone.fill('#text', 'Jembatan penyeberangan di depan Pasar Kosambi, Jl. Ahmad Yani, lantainya berlubang');
    await phone.locator('#text').blur();
    await shoot(phone, 'citizen-form', t0);
    t0 = performance.now();
    await phone.goto(`${base}/lapor/${pole}`);
    await expectText(phone, 'h2', 'Tanggapan instansi');
    await shoot(phone, 'citizen-status', t0);

    t0 = performance.now();
    const adminPage = await logIn(browser, base, admin);
    await expectText(adminPage, 'h1', 'Risiko tenggat');
    await expectText(adminPage, 'main', pothole);
    await shoot(adminPage, 'console-risk', t0);
    t0 = performance.now();
    await adminPage.goto(`${base}/admin/laporan/${pole}`);
    await expectText(adminPage, 'h1', `Laporan ${pole}`);
    await shoot(adminPage, 'console-report', t0);

    t0 = performance.now();
    const opsPage = await logIn(browser, base, operator);
    await expectText(opsPage, 'h1', 'Operasi');
    await shoot(opsPage, 'console-operations', t0);
    t0 = performance.now();
    await opsPage.context().route(/^https?:\/\/fonts\.(googleapis|gstatic)\.com\//, (route) => route.abort());
    await opsPage.goto(`${base}/admin/queues/`);
    await opsPage.locator('#root', { hasText: 'inbound' }).waitFor({ timeout: 15_000 });
    await opsPage.getByText('Loading...').waitFor({ state: 'hidden', timeout: 15_000 });
    await shoot(opsPage, 'queue-dashboard', t0);

    console.log(`\n${'file'.padEnd(24)} ${'bytes'.padStart(8)}  ms`);
    for (const s of shots) console.log(`${s.name.padEnd(24)} ${String(s.bytes).padStart(8)}  ${s.ms}`);
    console.log(`${'total'.padEnd(24)} ${String(shots.reduce((n, s) => n + s.bytes, 0)).padStart(8)}`);
    say(`written to ${OUT} in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    return 0;
  } catch (err) {
    console.error(`screenshots failed: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    await teardown.run();
  }
}

/**
 * Moves a report back (or forward) in time as a whole (its receipt, messages, events and clocks) so
 * that its running `clock` falls due `dueInMs` from now (negative: already past). report_events is
 * append-only (a trigger refuses any UPDATE): this scene's own PostgreSQL runs as a superuser, whose
 * session may set replication mode, in which triggers do not fire, as scripts/bench/stats.ts does to fill.
 */
async function backdate(databaseUrl: string, trackingId: string, clock: 'verification' | 'follow_up', dueInMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
    const { rows } = await client.query<{ seq: string; due: Date | null }>(
      `SELECT r.seq, c.due_at AS due FROM reports r JOIN report_clocks c ON c.report_seq = r.seq AND c.clock = $2 WHERE r.tracking_id = $1 FOR UPDATE OF r`,
      [trackingId, clock],
    );
    const row = rows[0];
    if (!row?.due) throw new Error(`report ${trackingId} has no running ${clock} clock`);
    const shift = `${Math.round(Date.now() + dueInMs - row.due.getTime())} milliseconds`;
    await client.query(`UPDATE reports SET received_at = received_at + $2::interval, created_at = created_at + $2::interval, updated_at = updated_at + $2::interval WHERE seq = $1`, [row.seq, shift]);
    await client.query(`UPDATE messages SET created_at = created_at + $2::interval, updated_at = updated_at + $2::interval WHERE report_seq = $1`, [row.seq, shift]);
    await client.query(`UPDATE report_events SET at = at + $2::interval WHERE report_seq = $1`, [row.seq, shift]);
    await client.query(`UPDATE report_clocks SET started_at = started_at + $2::interval, due_at = due_at + $2::interval WHERE report_seq = $1`, [row.seq, shift]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

async function logIn(browser: Browser, base: string, who: Person): Promise<Page> {
  const page = await newPage(browser, CONSOLE);
  await page.goto(`${base}/admin/login`);
  await page.fill('#email', who.email);
  await page.fill('#password', who.password);
  await Promise.all([page.waitForURL((url) => url.pathname !== '/admin/login'), page.getByRole('button', { name: 'Masuk', exact: true }).click()]);
  return page;
}

async function expectText(page: Page, selector: string, text: string): Promise<void> {
  const found = (await page.locator(selector).allTextContents()).some((t) => t.includes(text));
  if (!found) throw new Error(`${page.url()}: no ${selector} with “${text}”`);
}

async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new TimeoutError(`waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const code = await main();
process.exitCode = code;
setTimeout(() => process.exit(code), 2_000).unref();
