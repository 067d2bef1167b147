import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.ts';
import { statsRoutes } from '../../src/http/routes/stats.ts';
import { startReportClock, sweepDeadlines } from '../../src/store/clocks.ts';
import { withTransaction } from '../../src/store/db.ts';
import { STATS_STATEMENTS, agencyStats, emptyRow, median, statsParams, type AgencyStats } from '../../src/store/stats.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { account, call, filedReport, type Account } from '../helpers/operators.ts';

/**
 * GET /api/v1/stats and /stats.csv against real PostgreSQL: reports walked through the lifecycle over
 * the operator API today (a return and a re-disposition, an automatic close made by a sweep as of a
 * later date, a rahasia report), and events written with explicit dates in March 2025 for the edges
 * of a window; every figure of every agency is asserted.
 */

let env: TestEnv;
/** The gateway's app, with the stats routes (registered here until src/http/app.ts does). */
let app: Awaited<ReturnType<typeof buildApp>>;
let admin: Account;
let plnAdmin: Account;
let plnLiaison: Account;
let bandungAdmin: Account;

const DAY_MS = 86_400_000;
const jakartaDate = (at: Date) => new Date(at.getTime() + 7 * 3_600_000).toISOString().slice(0, 10);
const addDays = (date: string, days: number) => new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);

/** Today's window, a day either side, so a run across midnight in Jakarta sees the same figures. */
let today: { from: string; to: string };
/** The Jakarta date the sweep closed report A as of. */
let autoCloseDate: string;
const RAHASIA_TEXT = 'Oknum petugas Samsat Soekarno-Hatta 77 meminta uang pelicin 500 ribu';
let rahasiaId: string;

beforeAll(async () => {
  env = await createTestEnv();
  app = await buildApp(env.runtime);
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/stats' })) await app.register(statsRoutes(env.runtime), { prefix: '/api/v1' });
  await app.ready();
  admin = await account(env, 'super_admin');
  plnAdmin = await account(env, 'agency_admin', { agency: 'pln' });
  plnLiaison = await account(env, 'liaison', { unit: 'pln-uid-jabar' });
  bandungAdmin = await account(env, 'agency_admin', { agency: 'pemkot-bandung' });
  today = { from: addDays(jakartaDate(new Date()), -1), to: addDays(jakartaDate(new Date()), 1) };
  await walkToday();
  await writeMarch2025();
}, 120_000);
afterAll(async () => {
  await app?.close();
  await env?.close();
});

const step = async (id: string, route: string, who: Account, body: unknown) => {
  const res = await call(env, 'POST', `/api/v1/admin/reports/${id}/${route}`, who, body);
  expect(res.statusCode, `${route}: ${res.body}`).toBe(200);
};

/** Files a report and starts its verification clock at `startedAt` (the intake may not yet). */
async function filed(body: Record<string, unknown> = {}, startedAt = new Date()): Promise<string> {
  const id = await filedReport(env, body);
  await withTransaction(env.runtime.db, async (tx) => {
    const { rows } = await tx.query<{ seq: string }>('SELECT seq::text FROM reports WHERE tracking_id = $1', [id]);
    await startReportClock(tx, env.runtime.clocks, rows[0]!.seq, 'verification', startedAt, null, null);
  });
  return id;
}

/**
 * Today, over the operator API:
 * A: verified, to PLN, to its unit, answered, then closed automatically by a sweep as of a later date.
 * B: verified, to PLN, returned by PLN, to Pemkot Bandung, answered by its admin, closed by the super admin.
 * C: rahasia, verified, to Polri, left there.
 * D: verified late (its clock started 30 days ago), never forwarded.
 * E: filed only.
 */
async function walkToday() {
  const a = await filed();
  await step(a, 'verify', admin, { kind: 'pengaduan', weight: 'sedang' });
  await step(a, 'dispose', admin, { agency: 'pln' });
  await step(a, 'dispose', plnAdmin, { unit: 'pln-uid-jabar' });
  await step(a, 'answer', plnLiaison, { text: 'Trafo sudah diganti, listrik menyala kembali.' });

  const b = await filed();
  await step(b, 'verify', admin, { kind: 'pengaduan', weight: 'sedang' });
  await step(b, 'dispose', admin, { agency: 'pln' });
  await step(b, 'return', plnAdmin, { reason: 'Lampu jalan milik Pemkot, bukan PLN' });
  await step(b, 'dispose', admin, { agency: 'pemkot-bandung' });
  await step(b, 'answer', bandungAdmin, { text: 'Lampu jalan sudah diperbaiki oleh Dishub Kota.' });
  await step(b, 'close', admin, { reason: 'selesai' });

  rahasiaId = await filed({ text: RAHASIA_TEXT, rahasia: true });
  await step(rahasiaId, 'verify', admin, { kind: 'pengaduan', weight: 'berat' });
  await step(rahasiaId, 'dispose', admin, { agency: 'polri' });

  const d = await filed({}, new Date(Date.now() - 30 * DAY_MS));
  await step(d, 'verify', admin, { kind: 'aspirasi', weight: 'ringan' });

  await filedReport(env);

  // The sweep closes A as of a day past its auto-close deadline: the close belongs to that day.
  const { rows } = await env.runtime.db.query<{ dueAt: Date }>(
    `SELECT c.due_at AS "dueAt" FROM report_clocks c JOIN reports r ON r.seq = c.report_seq WHERE r.tracking_id = $1 AND c.clock = 'auto_close'`,
    [a],
  );
  const asOf = new Date(rows[0]!.dueAt.getTime() + 60_000);
  const swept = await sweepDeadlines(env.runtime.db, asOf, (effects) => env.runtime.queues.addEffects(effects));
  expect(swept.autoClosed).toEqual([a]);
  autoCloseDate = jakartaDate(asOf);
}

/** Reports imported with their history, events at chosen instants (Jakarta is UTC+7). */
async function writeMarch2025() {
  const db = env.runtime.db;
  const report = async (status: string, agency: string | null) => {
    const { rows } = await db.query<{ seq: string }>(
      `INSERT INTO reports (seq, tracking_id, channel, text, received_at, status, agency_slug)
       SELECT s, (100000000 + s)::text, 'web', 'Laporan impor', '2025-03-01T08:00:00+07:00', $1, $2 FROM nextval('report_seq') s RETURNING seq::text`,
      [status, agency],
    );
    return rows[0]!.seq;
  };
  const event = (seq: string, type: string, at: string, data: Record<string, unknown>) =>
    db.query(`INSERT INTO report_events (report_seq, at, actor, type, data) VALUES ($1, $2, 'import', $3, $4)`, [seq, at, type, JSON.stringify(data)]);
  const verified = (onTime: boolean) => ({ kind: 'pengaduan', weight: 'sedang', onTime: { verification: onTime }, workingDays: { verification: 1 } });
  const answered = (agency: string, days: number, onTime: boolean) => ({ agency, unit: null, onTime: { follow_up: onTime }, workingDays: { follow_up: days } });

  // P1: verified the evening before the window, forwarded at its first instant.
  const p1 = await report('sedang_diproses', 'pln');
  await event(p1, 'verified', '2025-03-09T23:59:59.999+07:00', verified(true));
  await event(p1, 'disposed', '2025-03-10T00:00:00+07:00', { agency: 'pln' });
  await event(p1, 'assigned', '2025-03-10T09:00:00+07:00', { agency: 'pln', unit: 'pln-uid-jabar' });
  await event(p1, 'answered', '2025-03-11T10:00:00+07:00', answered('pln', 1, true));
  // P2: verified late in the window, forwarded to PLN after it, returned, then to Dishub.
  const p2 = await report('terdisposisi', 'dishub');
  await event(p2, 'verified', '2025-03-10T08:00:00+07:00', verified(false));
  await event(p2, 'disposed', '2025-03-14T08:00:00+07:00', { agency: 'pln' });
  await event(p2, 'returned', '2025-03-15T08:00:00+07:00', { agency: 'pln', unit: null });
  await event(p2, 'disposed', '2025-03-16T08:00:00+07:00', { agency: 'dishub' });
  // P3: all in the window at Dishub, closed by its reporter in the window's last second.
  const p3 = await report('selesai', 'dishub');
  await event(p3, 'verified', '2025-03-10T09:00:00+07:00', verified(true));
  await event(p3, 'disposed', '2025-03-10T10:00:00+07:00', { agency: 'dishub' });
  await event(p3, 'answered', '2025-03-12T20:00:00+07:00', answered('dishub', 2, true));
  await event(p3, 'closed', '2025-03-12T23:59:59.999+07:00', { agency: 'dishub', by: 'reporter' });
  // P4: answered late; closed by an admin at the first instant after the window.
  const p4 = await report('selesai', 'pln');
  await event(p4, 'disposed', '2025-03-11T08:00:00+07:00', { agency: 'pln' });
  await event(p4, 'answered', '2025-03-12T08:00:00+07:00', answered('pln', 6, false));
  await event(p4, 'closed', '2025-03-13T00:00:00+07:00', { agency: 'pln', by: 'admin', closeReason: 'selesai' });
  // P5: answered late, closed by its reporter, both in the window.
  const p5 = await report('selesai', 'pln');
  await event(p5, 'disposed', '2025-03-11T09:00:00+07:00', { agency: 'pln' });
  await event(p5, 'answered', '2025-03-12T09:00:00+07:00', answered('pln', 10, false));
  await event(p5, 'closed', '2025-03-12T10:00:00+07:00', { agency: 'pln', by: 'reporter' });
  // P6: verified on time in the window, never forwarded.
  const p6 = await report('terverifikasi', null);
  await event(p6, 'verified', '2025-03-11T08:00:00+07:00', verified(true));
  // P9: forwarded to Polri and returned by it, in the window.
  const p9 = await report('bukan_wewenang', null);
  await event(p9, 'disposed', '2025-03-10T11:00:00+07:00', { agency: 'polri' });
  await event(p9, 'returned', '2025-03-11T11:00:00+07:00', { agency: 'polri', unit: null });
  // P10: forwarded to Dishub before the window, answered in it (no follow-up figures: not on time,
  // not in the median), then a second answer with its figures; now waiting for the reporter.
  const p10 = await report('tertunda', 'dishub');
  await event(p10, 'disposed', '2025-03-05T08:00:00+07:00', { agency: 'dishub' });
  await event(p10, 'answered', '2025-03-11T08:00:00+07:00', { agency: 'dishub', unit: null });
  await event(p10, 'answered', '2025-03-11T09:00:00+07:00', answered('dishub', 5, true));
  // P11: forwarded to Polri and returned before, rejected and reopened, verified again in the window
  // and then forwarded to Dinkes: the verification is Dinkes's, not that of the earlier disposition.
  const p11 = await report('terdisposisi', 'dinkes');
  await event(p11, 'disposed', '2025-02-03T08:00:00+07:00', { agency: 'polri' });
  await event(p11, 'returned', '2025-02-04T08:00:00+07:00', { agency: 'polri', unit: null });
  await event(p11, 'verified', '2025-03-11T12:00:00+07:00', verified(true));
  await event(p11, 'disposed', '2025-03-20T08:00:00+07:00', { agency: 'dinkes' });
  // An agency whose name would be a formula in a spreadsheet, and one that needs quoting.
  await db.query(`INSERT INTO agencies (slug, name, kind) VALUES ('uji-rumus', '=HYPERLINK("http://evil.example")', 'lainnya'), ('uji-kutip', 'Dinas "Uji", Kota', 'lainnya')`);
}

const zero = emptyRow;

/** Reports by colour now, whatever the window. */
const COLOURS: Record<string, AgencyStats['byColour']> = {
  pln: { merah: 0, kuning: 1, hijau: 3 }, // P1; A, P4, P5
  dishub: { merah: 1, kuning: 1, hijau: 1 }, // P2; P10; P3
  polri: { merah: 1, kuning: 0, hijau: 0 }, // C
  'pemkot-bandung': { merah: 0, kuning: 0, hijau: 1 }, // B
  dinkes: { merah: 1, kuning: 0, hijau: 0 }, // P11
};

/** Every agency by name with zeros and its colours, `figures` laid over, then the extra row if given. */
async function expected(figures: Record<string, Partial<AgencyStats>>, undisposed?: Partial<AgencyStats>): Promise<AgencyStats[]> {
  const { rows } = await env.runtime.db.query<{ slug: string; name: string }>('SELECT slug, name FROM agencies ORDER BY name, slug');
  const all = rows.map((a) => ({ ...zero(a.slug, a.name), byColour: COLOURS[a.slug] ?? zero(null, '').byColour, ...figures[a.slug] }));
  return undisposed ? [...all, { ...zero(null, 'Belum didisposisi'), ...undisposed }] : all;
}

const get = (url: string) => app.inject({ method: 'GET', url });

describe('the figures', () => {
  it('counts today’s steps for the agency that took each, a verification for the agency it was first forwarded to', async () => {
    const res = await get(`/api/v1/stats?from=${today.from}&to=${today.to}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      from: today.from,
      to: today.to,
      agencies: await expected(
        {
          // A and B were verified before their first disposition, to PLN; B's return is PLN's.
          pln: { received: 2, verified: 2, verifiedOnTime: 2, forwarded: 1, answered: 1, answeredOnTime: 1, medianWorkingDaysToAnswer: 0, returned: 1 },
          'pemkot-bandung': { received: 1, answered: 1, answeredOnTime: 1, medianWorkingDaysToAnswer: 0, closedByAdmin: 1 },
          polri: { received: 1, verified: 1, verifiedOnTime: 1 },
        },
        // D, verified after its period, never forwarded.
        { verified: 1, verifiedOnTime: 0 },
      ),
    });
  });

  it('counts the automatic close on the date the sweep made it as of, not today', async () => {
    expect(autoCloseDate > today.to).toBe(true);
    const res = await get(`/api/v1/stats?from=${autoCloseDate}&to=${autoCloseDate}`);
    expect(res.json().agencies).toEqual(await expected({ pln: { closedAutomatically: 1 } }));
    const before = await get(`/api/v1/stats?from=${addDays(today.to, 1)}&to=${addDays(autoCloseDate, -1)}`);
    expect(before.json().agencies).toEqual(await expected({}));
  });

  it('counts an event in the window of its Jakarta date, both ends inclusive, and the median over answers that carry it', async () => {
    const res = await get('/api/v1/stats?from=2025-03-10&to=2025-03-12');
    expect(res.json()).toEqual({
      from: '2025-03-10',
      to: '2025-03-12',
      agencies: await expected(
        {
          // P1 at 00:00 on the first day, P4 and P5; P2's verification (its first disposition came after
          // the window); P1's unit; three answers, P1 on time, median of 1, 6, 10; P5 closed by its reporter.
          pln: { received: 3, verified: 1, verifiedOnTime: 0, forwarded: 1, answered: 3, answeredOnTime: 1, medianWorkingDaysToAnswer: 6, closedByReporter: 1 },
          // P3; P3's and P10's two answers (one without figures): median of 2 and 5; P3 closed at 23:59:59.999.
          dishub: { received: 1, verified: 1, verifiedOnTime: 1, answered: 3, answeredOnTime: 2, medianWorkingDaysToAnswer: 3.5, closedByReporter: 1 },
          polri: { received: 1, returned: 1 },
          dinkes: { verified: 1, verifiedOnTime: 1 }, // P11
        },
        { verified: 1, verifiedOnTime: 1 }, // P6
      ),
    });
  });

  it('leaves out what happened outside the window, and the extra row when it has nothing', async () => {
    // P1's verification, the evening before: counted for PLN, where it went on the next day.
    expect((await get('/api/v1/stats?from=2025-03-09&to=2025-03-09')).json().agencies).toEqual(await expected({ pln: { verified: 1, verifiedOnTime: 1 } }));
    expect((await get('/api/v1/stats?from=2025-03-13&to=2025-03-16')).json().agencies).toEqual(
      await expected({
        pln: { received: 1, returned: 1, closedByAdmin: 1 }, // P2 forwarded and returned; P4 closed at 00:00 on the 13th
        dishub: { received: 1 }, // P2 forwarded again
      }),
    );
    expect((await get('/api/v1/stats?from=2024-01-01&to=2024-12-31')).json().agencies).toEqual(await expected({}));
  });

  it('gives the same numbers from the store as over HTTP', async () => {
    const res = await get('/api/v1/stats?from=2025-03-01&to=2025-03-31');
    expect(await agencyStats(env.runtime.db, { from: '2025-03-01', to: '2025-03-31' })).toEqual(res.json().agencies);
  });

  it('counts a rahasia report and shows nothing of it', async () => {
    for (const url of [`/api/v1/stats?from=${today.from}&to=${today.to}`, `/api/v1/stats.csv?from=${today.from}&to=${today.to}`]) {
      const res = await get(url);
      expect(res.statusCode).toBe(200);
      for (const trace of [RAHASIA_TEXT, 'Samsat', rahasiaId]) expect(res.body).not.toContain(trace);
    }
    expect((await get(`/api/v1/stats?from=${today.from}&to=${today.to}`)).json().agencies.find((a: AgencyStats) => a.agency === 'polri').received).toBe(1);
  });
});

describe('the CSV', () => {
  it('has the JSON’s rows, columns in snake_case, as a download', async () => {
    const res = await get('/api/v1/stats.csv?from=2025-03-10&to=2025-03-12');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe('attachment; filename="lapor-stats-2025-03-10-2025-03-12.csv"');
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    const lines = res.body.split('\r\n');
    expect(lines[0]).toBe(
      'agency,name,received,verified,verified_on_time,forwarded,answered,answered_on_time,median_working_days_to_answer,' +
        'closed_by_reporter,closed_by_admin,closed_automatically,returned,by_colour_merah,by_colour_kuning,by_colour_hijau',
    );
    expect(lines).toContain('pln,PT PLN (Persero),3,1,0,1,3,1,6,1,0,0,0,0,1,3');
    expect(lines).toContain('dishub,Dinas Perhubungan,1,1,1,0,3,2,3.5,1,0,0,0,1,1,1');
    // null median: an empty field; the extra row: an empty agency.
    expect(lines).toContain('polri,Kepolisian Negara Republik Indonesia,1,0,0,0,0,0,,0,0,0,1,1,0,0');
    expect(lines.at(-2)).toBe(',Belum didisposisi,0,1,1,0,0,0,,0,0,0,0,0,0,0');
    expect(lines.at(-1)).toBe('');
    const json = (await get('/api/v1/stats?from=2025-03-10&to=2025-03-12')).json();
    expect(lines.length).toBe(json.agencies.length + 2);
  });

  it('quotes as RFC 4180 says, and defuses a name a spreadsheet would run as a formula', async () => {
    const lines = (await get('/api/v1/stats.csv?from=2025-03-10&to=2025-03-12')).body.split('\r\n');
    expect(lines).toContain(`uji-rumus,"'=HYPERLINK(""http://evil.example"")",0,0,0,0,0,0,,0,0,0,0,0,0,0`);
    expect(lines).toContain('uji-kutip,"Dinas ""Uji"", Kota",0,0,0,0,0,0,,0,0,0,0,0,0,0');
    expect(lines.filter((l) => /(^|,)[=+@-]/.test(l))).toEqual([]);
  });
});

describe('the window', () => {
  const bad = async (query: string) => {
    const res = await get(`/api/v1/stats?${query}`);
    const csv = await get(`/api/v1/stats.csv?${query}`);
    expect({ query, status: res.statusCode, csv: csv.statusCode }).toEqual({ query, status: 400, csv: 400 });
    expect(res.json()).toEqual({ error: 'bad_request', message: expect.any(String), details: expect.any(Array) });
    return res.json().details as { path: string; message: string }[];
  };

  it('needs both dates, written YYYY-MM-DD, real ones', async () => {
    expect(await bad('')).toEqual(expect.arrayContaining([expect.objectContaining({ path: '/from' }), expect.objectContaining({ path: '/to' })]));
    expect(await bad('from=2025-03-01')).toEqual([expect.objectContaining({ path: '/to' })]);
    for (const date of ['10/03/2025', '2025-3-1', '2025-03-01T00:00:00Z', '20250301', 'kemarin', '2025-03-1x']) {
      expect(await bad(`from=${encodeURIComponent(date)}&to=2025-03-31`)).toEqual([{ path: '/from', message: 'from must be a date written YYYY-MM-DD' }]);
    }
    expect(await bad('from=2025-02-29&to=2025-03-31')).toEqual([{ path: '/from', message: 'from is not a date in the calendar' }]);
    expect(await bad('from=2025-03-01&to=2025-13-01')).toEqual([{ path: '/to', message: 'to is not a date in the calendar' }]);
  });

  it('refuses an inverted window and one over 366 days, and takes a leap year', async () => {
    expect(await bad('from=2025-03-02&to=2025-03-01')).toEqual([{ path: '/to', message: 'from (2025-03-02) must not be after to (2025-03-01).' }]);
    expect(await bad('from=2025-01-01&to=2026-01-02')).toEqual([
      { path: '/to', message: 'The window from 2025-01-01 to 2026-01-02 is 367 days; ask for at most 366 at once.' },
    ]);
    expect((await get('/api/v1/stats?from=2024-01-01&to=2024-12-31')).statusCode).toBe(200);
    expect((await get('/api/v1/stats?from=2025-03-01&to=2025-03-01')).statusCode).toBe(200);
  });
});

describe('the documentation', () => {
  it('describes both routes and the definitions', async () => {
    const spec = (await get('/docs/json')).json();
    expect(spec.paths['/api/v1/stats'].get.description).toContain('Belum didisposisi');
    expect(spec.paths['/api/v1/stats.csv'].get.responses['200'].content).toHaveProperty('text/csv');
  });
});

describe('the work behind it', () => {
  it('computes a window once for the requests that ask for it at the same time', async () => {
    // The stats routes alone, on a pool that counts the transactions taken from it.
    let transactions = 0;
    const pool = env.runtime.db;
    const counting = Object.assign(Object.create(pool) as typeof pool, {
      connect: () => (transactions++, pool.connect()),
    });
    const own = Fastify().withTypeProvider<ZodTypeProvider>();
    own.setValidatorCompiler(validatorCompiler);
    own.setSerializerCompiler(serializerCompiler);
    await own.register(statsRoutes({ ...env.runtime, db: counting }), { prefix: '/api/v1' });
    try {
      const url = '/api/v1/stats?from=2025-03-01&to=2025-03-31';
      const burst = await Promise.all([url, url, url, url.replace('/stats?', '/stats.csv?')].map((u) => own.inject({ method: 'GET', url: u })));
      expect(burst.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
      expect(transactions).toBe(1);
      expect(burst[1]!.body).toBe(burst[0]!.body);
      await own.inject({ method: 'GET', url });
      expect(transactions).toBe(2);
    } finally {
      await own.close();
    }
  });

  it('reads the verifications and their dispositions through the indexes made for them', async () => {
    // On a table this small the planner would rather read it whole: forbid that, and see which
    // indexes the statement can use (a predicate edited on one side only would lose its index).
    const plan = await withTransaction(env.runtime.db, async (tx) => {
      await tx.query('SET LOCAL enable_seqscan = off');
      await tx.query('SET LOCAL enable_bitmapscan = off');
      const { rows } = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${STATS_STATEMENTS.verifications}`, statsParams({ from: '2025-03-01', to: '2025-03-31' }));
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    for (const index of ['report_events_verified_on_time', 'report_events_verified_late', 'report_events_disposed']) {
      expect(plan).toMatch(new RegExp(`Index Only Scan using ${index}\\b`));
    }
  });

  it('reads the median from a histogram as percentile_cont(0.5) does', () => {
    expect(median(new Map())).toBeNull();
    expect(median(new Map([[4, 1]]))).toBe(4);
    expect(median(new Map([[9, 1], [1, 1]]))).toBe(5);
    expect(median(new Map([[0, 2], [3, 1], [10, 1]]))).toBe(1.5);
    expect(median(new Map([[2, 3], [7, 2]]))).toBe(2);
    expect(median(new Map([[2, 2], [7, 2], [8, 0]]))).toBe(4.5);
  });
});
