/**
 * bench:stats — GET /api/v1/stats over a database of N reports and their history.
 *
 *   npm run bench:stats -- [--n 1000000] [--days 365] [--agencies 500] [--runs 9] [--explain] [--hold]
 *
 * What it does, in order:
 *   1. starts its own redis-server and PostgreSQL (scripts/bench/harness.ts) in a fresh directory under
 *      /tmp; PostgreSQL with fsync off, since this measures reading and the fill is only set-up;
 *   2. opens the gateway's runtime (migrations, the sample agencies) and adds agencies up to --agencies;
 *   3. fills `reports` and `report_events` in SQL with generate_series (no row-by-row inserts): N
 *      reports received evenly over --days days from 2025-01-01 (Jakarta), each with the events the
 *      code writes (received, auto_verified, verified, disposed, returned and disposed again,
 *      assigned, info_requested, answered, closed by the reporter, an admin or the sweep), in
 *      proportions drawn from a hash of the report's number (so every run builds the same data); the
 *      events are appended in the order of time, as the gateway appends them, so the table is laid
 *      out on disk like a real one;
 *   4. VACUUM ANALYZE, as autovacuum would have done on a table that only grows (until the tables are
 *      all-visible, which index-only scans need);
 *   5. serves the real app (buildApp; the stats routes added when src/http/app.ts does not have them
 *      yet) on 127.0.0.1 and times GET /api/v1/stats over HTTP for the last 30 days of receipts and
 *      for the 366 days from the first (every receipt and most of the events), one untimed request
 *      then --runs timed, and the CSV of the 366 days; beside each request, agencyStats() in the same
 *      process (the difference is HTTP and serialization); prints p50/p95/max, the load average
 *      (other work on the host skews the figures), and EXPLAIN ANALYZE's top line and execution time
 *      of each statement for each window, with the store's settings (--explain: the whole plans);
 *   6. with --hold, prints the database URL and waits for Ctrl-C (to try plans by hand); then stops
 *      everything and deletes the directory, also on error, Ctrl-C or the hard timeout.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../../config/load.ts';
import { buildApp } from '../../src/http/app.ts';
import { statsRoutes } from '../../src/http/routes/stats.ts';
import { openRuntime } from '../../src/runtime.ts';
import { STATS_SETTINGS, STATS_STATEMENTS, agencyStats, statsParams, type StatsWindow } from '../../src/store/stats.ts';
import { beginBench, benchEnv, describePostgres, numberOption, startBenchServices, TimeoutError, UsageError } from './harness.ts';
import { fmtInt, fmtMs, sleep, summarize, table } from './lib.ts';

interface Options {
  n: number;
  days: number;
  agencies: number;
  runs: number;
  batch: number;
  explain: boolean;
  hold: boolean;
  timeoutS: number;
}

const USAGE = `usage: npm run bench:stats -- [options]
  --n N           reports in the database (1000000)
  --days D        days over which they were received, from 2025-01-01 (365)
  --agencies K    agencies, the sample ones and made-up ones up to K (500)
  --runs R        timed requests per window, after one untimed (9)
  --batch B       reports written per SQL statement while filling (250000)
  --explain       print the whole EXPLAIN (ANALYZE, BUFFERS) plan of each window, not only its top line
  --hold          after measuring, print the database URL and wait for Ctrl-C
  --timeout S     hard limit for the whole run (3600)`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string' },
      days: { type: 'string' },
      agencies: { type: 'string' },
      runs: { type: 'string' },
      batch: { type: 'string' },
      explain: { type: 'boolean', default: false },
      hold: { type: 'boolean', default: false },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  return {
    n: numberOption('n', values.n, 1_000_000, 1_000, 20_000_000),
    days: numberOption('days', values.days, 365, 30, 3_650),
    agencies: numberOption('agencies', values.agencies, 500, 1, 10_000),
    runs: numberOption('runs', values.runs, 9, 1, 1_000),
    batch: numberOption('batch', values.batch, 250_000, 1_000, 5_000_000),
    explain: values.explain,
    hold: values.hold,
    timeoutS: numberOption('timeout', values.timeout, 3_600, 30, 86_400, false),
  };
}

const FIRST_DAY = '2025-01-01';
const addDays = (date: string, days: number) => new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);

/**
 * The fate of reports 1..$1, received over $2 days from $3, among the agencies $4: hashes of the
 * report's number pick how far it went (h1, per 1024) and its timings (h2). Of all reports: 6 % never
 * verified, 4 % rejected, 4 % verified and never forwarded, 86 % forwarded (6 % of those returned and
 * forwarded to another agency, 80 % handed to a unit), 70 % answered; of the answered, 56 % closed
 * automatically, 28 % by the reporter, 11 % by an admin, 5 % still open. About 6 events per report.
 */
const FATE_SQL = `
CREATE TEMP TABLE fate AS
SELECT seq, t0, h1, h2, first_agency, agency, returned, tv, td1, td, td + ((h2 >> 2) % 21) * interval '1 day' + interval '3 hours' AS ta
FROM (
  SELECT seq, t0, h1, h2, returned, ($4::text[])[a1 + 1] AS first_agency, ($4::text[])[(CASE WHEN returned THEN a2 ELSE a1 END) + 1] AS agency,
         t0 + (h2 % 72) * interval '1 hour' AS tv,
         t0 + (h2 % 72) * interval '1 hour' + interval '1 day' + (h1 % 5) * interval '1 hour' AS td1,
         t0 + (h2 % 72) * interval '1 hour' + interval '1 day' + (h1 % 5) * interval '1 hour' + CASE WHEN returned THEN interval '3 days' ELSE interval '0' END AS td
  FROM (
    SELECT seq, t0, h1, h2, a1, (a1 + 1 + (h1 & 3)) % cardinality($4::text[]) AS a2, (h1 >= 140 AND (h2 & 15) = 0) AS returned
    FROM (
      SELECT s AS seq,
             $3::timestamptz + ((s - 1)::float8 / $1 * $2 * 86400) * interval '1 second' AS t0,
             hashint8(s) & 1023 AS h1,
             hashint8(s # 1234567) & 2147483647 AS h2,
             (hashint8(s # 7654321) & 2147483647) % cardinality($4::text[]) AS a1
      FROM generate_series(1, $1::bigint) s
    ) x
  ) y
) z`;

/** The reports $1..$2 as they stand now, from their fate. */
const REPORTS_SQL = `
INSERT INTO reports (seq, tracking_id, channel, kind, weight, status, text, received_at, agency_slug, verification)
SELECT seq, (1000000000 + seq)::text, 'web', 'pengaduan', 'sedang',
       CASE WHEN h1 < 60 THEN 'belum_terverifikasi' WHEN h1 < 100 THEN 'tidak_dapat_diproses' WHEN h1 < 140 THEN 'terverifikasi'
            WHEN h1 < 260 THEN 'terdisposisi' WHEN h1 < 300 THEN 'sedang_diproses' WHEN h1 < 980 THEN 'selesai' ELSE 'tertunda' END,
       'Laporan uji untuk bench:stats nomor ' || seq, t0,
       CASE WHEN h1 >= 140 THEN agency END, '{"verdict":"ok"}'
FROM fate WHERE seq BETWEEN $1 AND $2`;

/** Their history, the shapes the code writes (src/store/cases.ts, clocks.ts, reports.ts). */
const EVENTS_SQL = `
CREATE TEMP TABLE history AS
SELECT seq, t0 AS at, 'citizen' AS actor, 'received' AS type, NULL AS from_status, 'belum_terverifikasi' AS to_status, NULL AS reason,
       '{"channel":"web","privacy":"biasa"}'::jsonb AS data FROM fate
UNION ALL
SELECT seq, t0 + interval '1 minute', 'system:verify', 'auto_verified', NULL, NULL, 'no rule fired', '{"verdict":"ok","rules":[]}' FROM fate
UNION ALL
SELECT seq, tv, 'super_admin:1', CASE WHEN h1 < 100 THEN 'rejected' ELSE 'verified' END, 'belum_terverifikasi',
       CASE WHEN h1 < 100 THEN 'tidak_dapat_diproses' ELSE 'terverifikasi' END, NULL,
       CASE WHEN h1 < 100 THEN '{}'::jsonb ELSE jsonb_build_object('kind', 'pengaduan', 'weight', 'sedang', 'anonim', false, 'rahasia', (h2 & 31) = 0,
         'onTime', jsonb_build_object('verification', h2 % 72 < 60), 'workingDays', jsonb_build_object('verification', (h2 % 72) / 24)) END
FROM fate WHERE h1 >= 60
UNION ALL
SELECT seq, td1, 'super_admin:1', 'disposed', 'terverifikasi', 'terdisposisi', NULL, jsonb_build_object('agency', first_agency) FROM fate WHERE h1 >= 140
UNION ALL
SELECT seq, td1 + interval '2 days', 'agency_admin:2', 'returned', 'terdisposisi', 'bukan_wewenang', 'bukan wewenang kami',
       jsonb_build_object('agency', first_agency, 'unit', NULL) FROM fate WHERE returned
UNION ALL
SELECT seq, td, 'super_admin:1', 'disposed', 'bukan_wewenang', 'terdisposisi', NULL, jsonb_build_object('agency', agency) FROM fate WHERE returned
UNION ALL
SELECT seq, td + interval '4 hours', 'agency_admin:2', 'assigned', 'terdisposisi', 'terdisposisi', NULL,
       jsonb_build_object('agency', agency, 'unit', agency || '-unit') FROM fate WHERE h1 >= 140 AND (h2 >> 4) % 10 < 8
UNION ALL
SELECT seq, td + interval '1 day', 'agency_admin:2', 'info_requested', 'terdisposisi', 'tertunda', NULL, jsonb_build_object('agency', agency)
FROM fate WHERE h1 >= 980
UNION ALL
SELECT seq, ta, 'liaison:3', 'answered', 'terdisposisi', 'sedang_diproses', NULL,
       jsonb_build_object('agency', agency, 'unit', agency || '-unit', 'onTime', jsonb_build_object('follow_up', (h2 >> 2) % 21 <= 18),
         'workingDays', jsonb_build_object('follow_up', ((h2 >> 2) % 21) * 5 / 7))
FROM fate WHERE h1 >= 260 AND h1 < 980
UNION ALL
SELECT seq,
       ta + CASE WHEN h1 < 700 THEN interval '15 days' WHEN h1 < 900 THEN interval '2 days 5 hours' ELSE interval '1 day' END,
       CASE WHEN h1 < 700 THEN 'system:deadline' WHEN h1 < 900 THEN 'citizen' ELSE 'super_admin:1' END,
       'closed', 'sedang_diproses', 'selesai', NULL,
       jsonb_build_object('agency', agency, 'by', CASE WHEN h1 < 700 THEN 'auto' WHEN h1 < 900 THEN 'reporter' ELSE 'admin' END)
FROM fate WHERE h1 >= 300 AND h1 < 980`;

/** The history between $1 and $2 into report_events in the order of time, as the gateway appends it. */
const APPEND_SQL = `
INSERT INTO report_events (report_seq, at, actor, type, from_status, to_status, reason, data)
SELECT seq, at, actor, type, from_status, to_status, reason, data FROM history WHERE at >= $1 AND at < $2 ORDER BY at`;

interface Timed {
  label: string;
  window: StatsWindow;
  path: string;
  bytes: number;
  rows: number;
  ms: number[];
  /** The same window through agencyStats() in this process, without HTTP and serialization. */
  storeMs: number[];
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { startedAt, deadline, log, say, teardown } = beginBench(options.timeoutS);
  const checkDeadline = (what: string) => {
    if (Date.now() > deadline) throw new TimeoutError(what);
  };
  try {
    const { dir, postgres, redis } = await startBenchServices(teardown, log, { name: 'stats', pgFast: true });
    const pgInfo = await describePostgres(postgres.url);
    say(`postgres ${pgInfo.version} on port ${postgres.port} (fsync ${pgInfo.fsync}), data in ${dir}`);
    const config = loadConfig(benchEnv({ dir, postgres, redis }, 'bench-stats'));
    const runtime = await openRuntime(config, log);
    teardown.defer('runtime', () => runtime.close());

    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    teardown.defer('fill client', () => client.end());

    // 2. agencies
    await client.query(
      `INSERT INTO agencies (slug, name, kind)
       SELECT 'bench-' || i, 'Instansi Uji ' || lpad(i::text, 5, '0'), 'lainnya' FROM generate_series(1, GREATEST(0, $1 - (SELECT count(*) FROM agencies))) i`,
      [options.agencies],
    );
    const agencies = (await client.query<{ slug: string }>('SELECT slug FROM agencies ORDER BY slug')).rows.map((r) => r.slug);

    // 3. fill, in the order of time; foreign keys are not checked (they hold by construction), which
    // needs a superuser, as the benchmark's PostgreSQL has
    say(`filling ${fmtInt(options.n)} reports over ${options.days} days from ${FIRST_DAY}, ${agencies.length} agencies…`);
    const fillStart = performance.now();
    const elapsed = () => `${((performance.now() - fillStart) / 1000).toFixed(0)} s`;
    await client.query(`SET session_replication_role = replica`);
    // No autovacuum on these two while they fill: the VACUUM ANALYZE below does its work once.
    await client.query('ALTER TABLE reports SET (autovacuum_enabled = false); ALTER TABLE report_events SET (autovacuum_enabled = false)');
    await client.query(FATE_SQL, [options.n, options.days, `${FIRST_DAY}T00:00:00+07:00`, agencies]);
    for (let lo = 1; lo <= options.n; lo += options.batch) {
      checkDeadline('fill');
      await client.query(REPORTS_SQL, [lo, Math.min(options.n, lo + options.batch - 1)]);
    }
    say(`  ${fmtInt(options.n)} reports (${elapsed()})`);
    await client.query(EVENTS_SQL);
    const span = (await client.query<{ first: Date; last: Date }>('SELECT min(at) AS first, max(at) AS last FROM history')).rows[0]!;
    const chunks = 12;
    const step = (span.last.getTime() + 1 - span.first.getTime()) / chunks;
    for (let i = 0; i < chunks; i++) {
      checkDeadline('fill');
      const lo = new Date(span.first.getTime() + i * step);
      const hi = i === chunks - 1 ? new Date(span.last.getTime() + 1) : new Date(span.first.getTime() + (i + 1) * step);
      await client.query(APPEND_SQL, [lo, hi]);
      say(`  events up to ${hi.toISOString().slice(0, 10)} (${elapsed()})`);
    }
    await client.query('DROP TABLE history');
    await client.query('DROP TABLE fate');
    await client.query(`SET session_replication_role = origin`);
    await client.query(`SELECT setval('report_seq', $1)`, [options.n]);
    const fillMs = performance.now() - fillStart;
    const vacuumStart = performance.now();
    await client.query('VACUUM (ANALYZE) reports, report_events');
    // Index-only scans need pages marked all-visible, as autovacuum keeps a table that only grows. The
    // first VACUUM after the fill sometimes leaves most of report_events unmarked (seen on PostgreSQL
    // 15, cause not found: no snapshot was open); a later one marks the rest. So vacuum again, a
    // second apart, until it is all marked (or 10 tries), and say how much is.
    const allVisible = async () =>
      (
        await client.query<{ name: string; share: number }>(
          `SELECT relname AS name, floor(100.0 * relallvisible / GREATEST(relpages, 1))::int AS share FROM pg_class WHERE relname IN ('reports', 'report_events') ORDER BY 1`,
        )
      ).rows;
    let visible = await allVisible();
    for (let pass = 0; pass < 10 && visible.some((v) => v.share < 99); pass++) {
      await sleep(1_000);
      await client.query('VACUUM reports, report_events');
      visible = await allVisible();
    }
    await client.query('ALTER TABLE reports RESET (autovacuum_enabled); ALTER TABLE report_events RESET (autovacuum_enabled)');
    const vacuumMs = performance.now() - vacuumStart;
    const counts = (
      await client.query<{ events: string; size: string; indexes: string }>(
        `SELECT (SELECT count(*) FROM report_events)::text AS events,
                pg_size_pretty(pg_table_size('report_events')) AS size, pg_size_pretty(pg_indexes_size('report_events')) AS indexes`,
      )
    ).rows[0]!;
    const indexes = (
      await client.query<{ name: string; size: string }>(
        `SELECT indexrelid::regclass::text AS name, pg_size_pretty(pg_relation_size(indexrelid)) AS size FROM pg_index WHERE indrelid = 'report_events'::regclass ORDER BY 1`,
      )
    ).rows;
    say(`filled in ${(fillMs / 1000).toFixed(0)} s, vacuum analyze ${(vacuumMs / 1000).toFixed(0)} s: ${fmtInt(Number(counts.events))} events (${counts.size}, indexes ${counts.indexes})`);

    // 5. the app over HTTP
    const app = await buildApp(runtime);
    if (!app.hasRoute({ method: 'GET', url: '/api/v1/stats' })) await app.register(statsRoutes(runtime), { prefix: '/api/v1' });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    teardown.defer('http', () => app.close());

    const lastDay = addDays(FIRST_DAY, options.days - 1);
    const windows: { label: string; window: StatsWindow; csv?: boolean }[] = [
      { label: '30 days', window: { from: addDays(lastDay, -29), to: lastDay } },
      { label: '366 days', window: { from: FIRST_DAY, to: addDays(FIRST_DAY, 365) } },
      { label: '366 days, CSV', window: { from: FIRST_DAY, to: addDays(FIRST_DAY, 365) }, csv: true },
    ];
    const results: Timed[] = [];
    const loadBefore = loadavg();
    for (const { label, window, csv } of windows) {
      const path = `/api/v1/stats${csv ? '.csv' : ''}?from=${window.from}&to=${window.to}`;
      const timed: Timed = { label, window, path, bytes: 0, rows: 0, ms: [], storeMs: [] };
      for (let i = 0; i <= options.runs; i++) {
        checkDeadline(`timing ${label}`);
        const start = performance.now();
        const res = await fetch(`${url}${path}`);
        const body = await res.text();
        const ms = performance.now() - start;
        if (res.status !== 200) throw new Error(`${path}: ${res.status} ${body.slice(0, 200)}`);
        if (i > 0) timed.ms.push(ms);
        timed.bytes = body.length;
        timed.rows = csv ? body.split('\r\n').length - 2 : (JSON.parse(body) as { agencies: unknown[] }).agencies.length;
        if (i > 0 && !csv) {
          const storeStart = performance.now();
          await agencyStats(runtime.db, window);
          timed.storeMs.push(performance.now() - storeStart);
        }
      }
      results.push(timed);
      say(`${label}: p50 ${fmtMs(summarize(timed.ms)?.p50)}`);
    }

    // The plans of the same statements, for each window, with the same settings as the store's.
    const plans: { label: string; top: string; execution: string; full: string[] }[] = [];
    for (const { label, window } of windows.filter((w) => !w.csv)) {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      for (const setting of STATS_SETTINGS) await client.query(setting);
      for (const [name, sql] of Object.entries(STATS_STATEMENTS)) {
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, sql.includes('$1') ? statsParams(window) : []);
        const lines = rows.map((r) => r['QUERY PLAN']);
        plans.push({ label: `${label}, ${name}`, top: lines[0]!.trim(), execution: lines.find((l) => l.startsWith('Execution Time'))?.trim() ?? '?', full: lines });
      }
      await client.query('COMMIT');
    }

    const out: string[] = [];
    out.push('');
    out.push(
      `bench:stats — ${fmtInt(options.n)} reports over ${options.days} days, ${fmtInt(Number(counts.events))} events (${counts.size} + indexes ${counts.indexes}), ` +
        `${agencies.length} agencies; PostgreSQL ${pgInfo.version}; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'})`,
    );
    out.push(`indexes of report_events: ${indexes.map((i) => `${i.name} ${i.size}`).join(', ')}`);
    out.push(`fill ${(fillMs / 1000).toFixed(0)} s, VACUUM ANALYZE ${(vacuumMs / 1000).toFixed(0)} s (all-visible: ${visible.map((v) => `${v.name} ${v.share} %`).join(', ')})`);
    out.push(`load average before the timings ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg().map((l) => l.toFixed(2)).join(' ')} (this run adds up to about 2; more means other work shared the ${availableParallelism()} cores)`);
    out.push('');
    out.push(
      table(
        ['GET over HTTP', 'window', 'rows', 'bytes', 'runs', 'p50', 'p95', 'max', 'store p50'],
        results.map((r) => {
          const s = summarize(r.ms);
          return [
            r.label, `${r.window.from} … ${r.window.to}`, String(r.rows), fmtInt(r.bytes), String(r.ms.length),
            fmtMs(s?.p50), fmtMs(s?.p95), fmtMs(s?.max), r.storeMs.length ? fmtMs(summarize(r.storeMs)?.p50) : '',
          ];
        }),
      ),
    );
    out.push('store p50: agencyStats() in the same process, alternating with the requests: the difference is HTTP and serialization');
    out.push('');
    for (const plan of plans) {
      out.push(`EXPLAIN ANALYZE, ${plan.label}: ${plan.top}`);
      out.push(`  ${plan.execution}`);
      if (options.explain) out.push(...plan.full.map((l) => `    ${l}`));
    }
    out.push(`(p95 by nearest rank: the ${Math.ceil(0.95 * options.runs)}th fastest of ${options.runs} runs)`);
    console.log(out.join('\n'));

    if (options.hold) {
      say(`holding: psql ${postgres.url} — Ctrl-C to stop and delete everything`);
      await new Promise<never>(() => undefined);
    }
    say(`done in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
      return 2;
    }
    console.error(`bench:stats failed: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    await teardown.run();
  }
}

const code = await main();
process.exitCode = code;
setTimeout(() => process.exit(code), 2_000).unref();
