import { colourOf, type Colour, type ReportStatus } from '../core/report.ts';
import { withTransaction, type Db } from './db.ts';

/**
 * Statistics per agency over a window of Asia/Jakarta dates (issue #13, point 6): counts only, read
 * from the append-only `report_events` (what happened when) and `reports` (where each report stands
 * now). Every event counts in the window of the date it happened: its `at`, which for an auto-close is
 * the as-of time of the sweep that made it. Reports marked rahasia are counted like any other; nothing
 * of any report but these counts leaves this module.
 *
 * The figures of an agency, for events whose `at` falls in the window:
 * - `received`: `disposed` events with `data.agency` = the agency (the reports forwarded to it; a report
 *   returned and forwarded to it again counts twice);
 * - `verified` / `verifiedOnTime`: `verified` events, and those with `data.onTime.verification` = true.
 *   Verification is central, so each is attributed to the agency of the report's first `disposed` event
 *   at or after the verification (whenever that disposition happened, in the window or after it);
 *   verifications of reports not (yet) forwarded make one extra row, `agency: null`, named
 *   {@link UNDISPOSED_NAME}, present only when it has a non-zero figure;
 * - `forwarded`: `assigned` events of the agency (handed to one of its units);
 * - `returned`: `returned` events of the agency (the agency that said bukan wewenang);
 * - `answered` / `answeredOnTime`: `answered` events of the agency, and those with
 *   `data.onTime.follow_up` = true (an answer that met the follow-up clock in its period; a further
 *   answer to the same report met no clock and is counted in `answered` only);
 * - `medianWorkingDaysToAnswer`: the median of `data.workingDays.follow_up` (working days from the
 *   disposition day to the answer day) over those answers that carry it; null when none does;
 * - `closedByReporter` / `closedByAdmin` / `closedAutomatically`: `closed` events of the agency with
 *   `data.by` = `reporter` / `admin` / `auto`.
 *
 * And, whatever the window, `byColour`: the reports whose current agency is this one, by the colour of
 * their current status (src/core/report.ts `colourOf`). The extra row has no reports by colour.
 *
 * Cost (scripts/bench/stats.ts measures it): four statements in one read-only transaction, each an
 * aggregate that returns a few thousand rows at most, whatever the window.
 * - `events` reads the window's events through `report_events_at` (BRIN on `at`: the table is
 *   appended in the order of time, so the window is a few block ranges) for a short window, and the
 *   whole table in parallel for a long one; one hash aggregate, no sort;
 * - `verifications` reads the window's verifications from two small partial indexes (on time, not on
 *   time) and finds each one's first disposition with one probe into `report_events_disposed`
 *   (report_seq, at, id) INCLUDE (data) WHERE type = 'disposed'; all of it from the indexes alone,
 *   so its cost grows with the verifications in the window (~1.5 µs each);
 * - `colours` counts the reports by agency and status (an index-only scan of `reports_agency_status`
 *   where the table is vacuumed, else a parallel scan of it: ~0.1 s per million reports).
 */

/** The longest window one request may ask for, in days (a leap year). */
export const STATS_MAX_DAYS = 366;

/** The name of the row of verifications whose report has not been forwarded (yet). */
export const UNDISPOSED_NAME = 'Belum didisposisi';

export interface AgencyStats {
  /** The agency's slug; null for the row of verifications not (yet) forwarded. */
  agency: string | null;
  name: string;
  received: number;
  verified: number;
  verifiedOnTime: number;
  forwarded: number;
  answered: number;
  answeredOnTime: number;
  medianWorkingDaysToAnswer: number | null;
  closedByReporter: number;
  closedByAdmin: number;
  closedAutomatically: number;
  returned: number;
  byColour: Record<Colour, number>;
}

/** Two Asia/Jakarta dates, `YYYY-MM-DD`, both inclusive. */
export interface StatsWindow {
  from: string;
  to: string;
}

const DAY_MS = 86_400_000;
/** Asia/Jakarta is UTC+7 all year (no daylight saving since 1964). */
const JAKARTA_OFFSET = '+07:00';

/** Whether `date` is a real calendar date written `YYYY-MM-DD` (2025-02-30 is not). */
export function isIsoDate(date: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return false;
  const parsed = new Date(`${date}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === date;
}

/** Days in the window, both ends counted (a one-day window is 1). */
export function windowDays(w: StatsWindow): number {
  return Math.round((Date.parse(`${w.to}T00:00:00Z`) - Date.parse(`${w.from}T00:00:00Z`)) / DAY_MS) + 1;
}

/** What is wrong with a window of valid dates, in a sentence for the client; undefined when nothing is. */
export function windowProblem(w: StatsWindow): string | undefined {
  const days = windowDays(w);
  if (days < 1) return `from (${w.from}) must not be after to (${w.to}).`;
  if (days > STATS_MAX_DAYS) return `The window from ${w.from} to ${w.to} is ${days} days; ask for at most ${STATS_MAX_DAYS} at once.`;
  return undefined;
}

/** The instants the window covers: [from 00:00 in Jakarta, the day after `to` 00:00 in Jakarta). */
export function windowInstants(w: StatsWindow): { start: Date; end: Date } {
  const start = new Date(`${w.from}T00:00:00${JAKARTA_OFFSET}`);
  const end = new Date(new Date(`${w.to}T00:00:00${JAKARTA_OFFSET}`).getTime() + DAY_MS);
  return { start, end };
}

/**
 * The statements behind {@link agencyStats}, each with the window's instants as $1 and $2 where it
 * needs them. Exported for the benchmark's EXPLAIN.
 *
 * `events` counts the agency's own events in the window, grouped finely enough to read every figure
 * from (type; the answer's on-time flag or the close's `by`; the answer's working days, whose counts
 * are the histogram the median is read from). One hash aggregate, no sort, however many rows.
 */
export const STATS_STATEMENTS = {
  events: `
    SELECT e.data->>'agency' AS agency, e.type,
           CASE e.type WHEN 'answered' THEN e.data->'onTime'->>'follow_up' WHEN 'closed' THEN e.data->>'by' END AS how,
           CASE WHEN e.type = 'answered' AND jsonb_typeof(e.data->'workingDays'->'follow_up') = 'number'
                THEN (e.data->'workingDays'->'follow_up')::float8 END AS days,
           count(*)::int AS n
    FROM report_events e
    WHERE e.type IN ('disposed', 'assigned', 'returned', 'answered', 'closed') AND e.at >= $1 AND e.at < $2
    GROUP BY 1, 2, 3, 4`,
  /**
   * Each verification and the agency of the report's first disposition at or after it (null: none
   * yet). The verifications on time and the others are read apart, each from its own small index
   * (report_events_verified_on_time, _late: `at` and `report_seq` only), whose predicates these
   * conditions repeat word for word so that the planner can use them.
   */
  verifications: `
    SELECT d.agency, v.on_time AS "onTime", count(*)::int AS n
    FROM (
      SELECT report_seq, at, true AS on_time FROM report_events
      WHERE type = 'verified' AND data->'onTime'->'verification' = 'true' AND at >= $1 AND at < $2
      UNION ALL
      SELECT report_seq, at, false FROM report_events
      WHERE type = 'verified' AND NOT COALESCE(data->'onTime'->'verification' = 'true', false) AND at >= $1 AND at < $2
    ) v
    LEFT JOIN LATERAL (
      SELECT f.data->>'agency' AS agency FROM report_events f
      WHERE f.type = 'disposed' AND f.report_seq = v.report_seq AND f.at >= v.at
      ORDER BY f.at, f.id LIMIT 1
    ) d ON true
    GROUP BY 1, 2`,
  colours: `SELECT agency_slug AS agency, status, count(*)::int AS n FROM reports WHERE agency_slug IS NOT NULL GROUP BY 1, 2`,
  agencies: `SELECT slug, name FROM agencies ORDER BY name, slug`,
} as const;

/**
 * Planner settings for the statements, local to their transaction (measured by scripts/bench/stats.ts
 * over a million reports):
 * - no JIT: the costs of a year of events are high enough to compile, and compiling took longer (up
 *   to a second) than the work it would speed up, a few simple operations per row;
 * - hash tables may take 8 × work_mem: the planner cannot know that the events fall into ~50 groups
 *   per agency, overestimates them, and would otherwise sort the whole window's events (spilling to
 *   disk) instead of hashing them in a few hundred kilobytes.
 */
export const STATS_SETTINGS = ['SET LOCAL jit = off', 'SET LOCAL hash_mem_multiplier = 8'] as const;

/** The parameters of the statements that take the window. */
export function statsParams(w: StatsWindow): [Date, Date] {
  const { start, end } = windowInstants(w);
  return [start, end];
}

/**
 * Every agency (by name, those with nothing to count included, so the open data keeps its shape),
 * then the row of verifications not (yet) forwarded when there are any. The statements run in one
 * read-only transaction at REPEATABLE READ, so they see one snapshot and the figures agree.
 */
export async function agencyStats(db: Db, w: StatsWindow): Promise<AgencyStats[]> {
  const params = statsParams(w);
  const [events, verifications, colours, agencies] = await withTransaction(db, async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    for (const setting of STATS_SETTINGS) await tx.query(setting);
    return [
      (await tx.query<{ agency: string | null; type: string; how: string | null; days: number | null; n: number }>(STATS_STATEMENTS.events, params)).rows,
      (await tx.query<{ agency: string | null; onTime: boolean; n: number }>(STATS_STATEMENTS.verifications, params)).rows,
      (await tx.query<{ agency: string; status: ReportStatus; n: number }>(STATS_STATEMENTS.colours)).rows,
      (await tx.query<{ slug: string; name: string }>(STATS_STATEMENTS.agencies)).rows,
    ] as const;
  });

  const rows = new Map<string, AgencyStats>(agencies.map((a) => [a.slug, emptyRow(a.slug, a.name)]));
  const answerDays = new Map<string, Map<number, number>>();
  for (const e of events) {
    const agency = e.agency;
    const row = agency === null ? undefined : rows.get(agency);
    if (agency === null || !row) continue; // an event naming no agency, or one not listed
    switch (e.type) {
      case 'disposed':
        row.received += e.n;
        break;
      case 'assigned':
        row.forwarded += e.n;
        break;
      case 'returned':
        row.returned += e.n;
        break;
      case 'answered': {
        row.answered += e.n;
        if (e.how === 'true') row.answeredOnTime += e.n;
        if (e.days === null) break;
        const histogram = answerDays.get(agency) ?? new Map<number, number>();
        histogram.set(e.days, (histogram.get(e.days) ?? 0) + e.n);
        answerDays.set(agency, histogram);
        break;
      }
      case 'closed':
        if (e.how === 'reporter') row.closedByReporter += e.n;
        else if (e.how === 'admin') row.closedByAdmin += e.n;
        else if (e.how === 'auto') row.closedAutomatically += e.n;
        break;
    }
  }
  for (const [agency, histogram] of answerDays) {
    const row = rows.get(agency);
    if (row) row.medianWorkingDaysToAnswer = median(histogram);
  }

  const undisposed = emptyRow(null, UNDISPOSED_NAME);
  for (const v of verifications) {
    const row = v.agency === null ? undisposed : rows.get(v.agency);
    if (!row) continue;
    row.verified += v.n;
    if (v.onTime) row.verifiedOnTime += v.n;
  }
  for (const c of colours) {
    const row = rows.get(c.agency);
    if (row) row.byColour[colourOf(c.status)] += c.n;
  }
  return [...rows.values(), ...(undisposed.verified > 0 ? [undisposed] : [])];
}

/** An agency's row with nothing counted yet. */
export function emptyRow(agency: string | null, name: string): AgencyStats {
  return {
    agency,
    name,
    received: 0,
    verified: 0,
    verifiedOnTime: 0,
    forwarded: 0,
    answered: 0,
    answeredOnTime: 0,
    medianWorkingDaysToAnswer: null,
    closedByReporter: 0,
    closedByAdmin: 0,
    closedAutomatically: 0,
    returned: 0,
    byColour: { merah: 0, kuning: 0, hijau: 0 },
  };
}

/**
 * The median of values given as a histogram (value → how many times), as PostgreSQL's
 * percentile_cont(0.5) gives it: the middle value, or the mean of the two middle ones.
 */
export function median(histogram: ReadonlyMap<number, number>): number | null {
  const values = [...histogram.entries()].filter(([, n]) => n > 0).sort(([a], [b]) => a - b);
  const total = values.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return null;
  const nth = (k: number): number => {
    let seen = 0;
    for (const [value, n] of values) {
      seen += n;
      if (seen >= k) return value;
    }
    return values[values.length - 1]![0];
  };
  return (nth(Math.floor((total + 1) / 2)) + nth(Math.floor(total / 2) + 1)) / 2;
}
