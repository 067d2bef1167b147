import {
  changeClockLength,
  clockWorkingDays,
  deadline,
  pauseClock,
  resumeClock,
  startClock,
  type ClockName,
  type ClockState,
  type Deadline,
  type DeadlineDays,
  type WorkingCalendar,
} from '../core/calendar.ts';
import type { ReportWeight } from '../core/report.ts';
import type { Effect } from '../queue/jobs.ts';
import { notifyEffect } from '../queue/queues.ts';
import type { ChannelId } from '../core/inbound.ts';
import { withTransaction, type Db, type Tx } from './db.ts';

/**
 * The regulatory clocks of reports (table report_clocks), kept in working days by
 * src/core/calendar.ts. Every change runs inside the transaction of the step that causes it; the
 * sweep records breaches and closes answered reports nobody replied to, each exactly once however
 * many sweeps race (guarded updates on rows locked with SKIP LOCKED).
 */

type Queryable = Db | Tx;

export interface ClockContext {
  calendar: WorkingCalendar;
  days: DeadlineDays;
}

interface ClockRow {
  clock: ClockName;
  agencySlug: string | null;
  startedAt: Date;
  workingDays: number;
  dueAt: Date | null;
  pausedAt: Date | null;
  remainingAtPause: number | null;
  breachedAt: Date | null;
}

const CLOCK_COLUMNS = `clock, agency_slug AS "agencySlug", started_at AS "startedAt", working_days AS "workingDays", due_at AS "dueAt",
  paused_at AS "pausedAt", remaining_at_pause AS "remainingAtPause", breached_at AS "breachedAt"`;

async function clocksOf(db: Queryable, seq: string): Promise<ClockRow[]> {
  const { rows } = await db.query<ClockRow>(`SELECT ${CLOCK_COLUMNS} FROM report_clocks WHERE report_seq = $1 ORDER BY clock`, [seq]);
  return rows;
}

async function save(tx: Tx, seq: string, state: ClockState, agencySlug: string | null, breachedAt: Date | null): Promise<void> {
  await tx.query(
    `INSERT INTO report_clocks (report_seq, clock, agency_slug, started_at, working_days, due_at, paused_at, remaining_at_pause, breached_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (report_seq, clock) DO UPDATE SET agency_slug = EXCLUDED.agency_slug, started_at = EXCLUDED.started_at,
       working_days = EXCLUDED.working_days, due_at = EXCLUDED.due_at, paused_at = EXCLUDED.paused_at,
       remaining_at_pause = EXCLUDED.remaining_at_pause, breached_at = EXCLUDED.breached_at`,
    [seq, state.clock, agencySlug, state.startedAt, state.workingDays, state.dueAt, state.pausedAt, state.remainingAtPause, breachedAt],
  );
}

/** (Re)starts a clock from `at`: a fresh period, no breach. */
export async function startReportClock(
  tx: Tx,
  ctx: ClockContext,
  seq: string,
  clock: ClockName,
  at: Date,
  weight: ReportWeight | null,
  agencySlug: string | null,
): Promise<void> {
  const state = startClock(ctx.calendar, clock, at, clockWorkingDays(clock, weight ?? 'sedang', ctx.days));
  await save(tx, seq, state, agencySlug, null);
}

export interface EndedClock {
  /** Ended within its period (and never recorded as breached). */
  onTime: boolean;
  /** Working days from the day it started to the day it ended (the day it started not counted). */
  workingDays: number;
}

/** Ends clocks; returns, for each that was running or paused, how it ended. */
export async function endReportClocks(tx: Tx, ctx: ClockContext, seq: string, clocks: readonly ClockName[], at: Date): Promise<Partial<Record<ClockName, EndedClock>>> {
  if (!clocks.length) return {};
  const { rows } = await tx.query<{ clock: ClockName; startedAt: Date; dueAt: Date | null; breachedAt: Date | null; remainingAtPause: number | null }>(
    `DELETE FROM report_clocks WHERE report_seq = $1 AND clock = ANY($2)
     RETURNING clock, started_at AS "startedAt", due_at AS "dueAt", breached_at AS "breachedAt", remaining_at_pause AS "remainingAtPause"`,
    [seq, clocks],
  );
  return Object.fromEntries(
    rows.map((r) => [
      r.clock,
      {
        onTime: r.breachedAt === null && (r.dueAt ? at.getTime() <= r.dueAt.getTime() : (r.remainingAtPause ?? 0) >= 0),
        workingDays: ctx.calendar.workingDaysBetween(ctx.calendar.jakartaDate(r.startedAt), ctx.calendar.jakartaDate(at)),
      },
    ]),
  );
}

/** The report went `tertunda`: every running clock keeps the working days it had left. */
export async function pauseReportClocks(tx: Tx, ctx: ClockContext, seq: string, at: Date): Promise<void> {
  for (const row of await clocksOf(tx, seq)) {
    if (row.dueAt) await save(tx, seq, pauseClock(ctx.calendar, row, at), row.agencySlug, row.breachedAt);
  }
}

/** The reporter answered: the paused clocks count their kept working days from `at`. */
export async function resumeReportClocks(tx: Tx, ctx: ClockContext, seq: string, at: Date): Promise<void> {
  for (const row of await clocksOf(tx, seq)) {
    if (!row.dueAt) await save(tx, seq, resumeClock(ctx.calendar, row, at), row.agencySlug, row.breachedAt);
  }
}

/** The weight changed: the follow-up is recomputed from its disposition (paused days still added). */
export async function reweighFollowUp(tx: Tx, ctx: ClockContext, seq: string, weight: ReportWeight): Promise<void> {
  const row = (await clocksOf(tx, seq)).find((c) => c.clock === 'follow_up');
  if (!row) return;
  await save(tx, seq, changeClockLength(ctx.calendar, row, clockWorkingDays('follow_up', weight, ctx.days)), row.agencySlug, row.breachedAt);
}

/** The detail view's `deadlines`: each running or paused clock as of `now`. */
export async function deadlinesOf(db: Queryable, ctx: ClockContext, seq: string, now: Date): Promise<Deadline[]> {
  return (await clocksOf(db, seq)).map((row) => {
    const view = deadline(ctx.calendar, row, now);
    // A paused clock keeps the breach it had when it was paused.
    return row.breachedAt && !view.breached ? { ...view, breached: true } : view;
  });
}

export interface SweepResult {
  breaches: number;
  autoClosed: string[];
}

/**
 * One pass over the clocks as of `asOf`: each verification or follow-up past due is recorded as
 * breached once (an event dated `asOf`); each answered report whose auto-close clock is past due is
 * closed, with the closed notification in the outbox. Concurrent sweeps skip each other's rows.
 */
export async function sweepDeadlines(db: Db, asOf: Date, publish: (effects: Effect[]) => Promise<void>): Promise<SweepResult> {
  const result: SweepResult = { breaches: 0, autoClosed: [] };
  for (;;) {
    const batch = await withTransaction(db, async (tx) => {
      const { rows } = await tx.query<{ seq: string; clock: ClockName; agencySlug: string | null; dueAt: Date }>(
        `SELECT report_seq::text AS seq, clock, agency_slug AS "agencySlug", due_at AS "dueAt" FROM report_clocks
         WHERE due_at < $1 AND breached_at IS NULL AND clock IN ('verification', 'follow_up')
         ORDER BY due_at LIMIT 200 FOR UPDATE SKIP LOCKED`,
        [asOf],
      );
      for (const row of rows) {
        await tx.query(`UPDATE report_clocks SET breached_at = $3 WHERE report_seq = $1 AND clock = $2`, [row.seq, row.clock, asOf]);
        await tx.query(
          `INSERT INTO report_events (report_seq, at, actor, type, data) VALUES ($1, $2, 'system:deadline', 'deadline_breached', $3)`,
          [row.seq, asOf, JSON.stringify({ clock: row.clock, agency: row.agencySlug, dueAt: row.dueAt.toISOString() })],
        );
      }
      return rows.length;
    });
    result.breaches += batch;
    if (batch < 200) break;
  }

  for (;;) {
    const closed = await withTransaction(db, async (tx) => {
      const { rows } = await tx.query<{ seq: string; trackingId: string; channel: ChannelId; lang: 'id' | 'en'; agencySlug: string | null }>(
        `SELECT r.seq::text AS seq, r.tracking_id AS "trackingId", r.channel, r.lang, r.agency_slug AS "agencySlug"
         FROM report_clocks c JOIN reports r ON r.seq = c.report_seq
         WHERE c.clock = 'auto_close' AND c.due_at < $1 AND r.status = 'sedang_diproses'
         ORDER BY c.due_at LIMIT 100 FOR UPDATE OF c, r SKIP LOCKED`,
        [asOf],
      );
      const effects: Effect[] = [];
      const ids: string[] = [];
      for (const row of rows) {
        await tx.query(`UPDATE reports SET status = 'selesai', updated_at = now() WHERE seq = $1`, [row.seq]);
        await tx.query(`DELETE FROM report_clocks WHERE report_seq = $1`, [row.seq]);
        const { rows: event } = await tx.query<{ id: string }>(
          `INSERT INTO report_events (report_seq, at, actor, type, from_status, to_status, reason, data)
           VALUES ($1, $2, 'system:deadline', 'closed', 'sedang_diproses', 'selesai', 'no reply from the reporter within the auto-close period', $3) RETURNING id::text`,
          [row.seq, asOf, JSON.stringify({ agency: row.agencySlug, by: 'auto' })],
        );
        effects.push(
          notifyEffect(row.channel, {
            notifyKey: `n_${row.trackingId}_closed_${event[0]!.id}`,
            kind: 'closed',
            lang: row.lang,
            trackingId: row.trackingId,
            vars: { trackingId: row.trackingId },
          }),
        );
        ids.push(row.trackingId);
      }
      const outbox = effects.length ? (await tx.query<{ id: string }>(`INSERT INTO outbox (effects) VALUES ($1) RETURNING id::text`, [JSON.stringify(effects)])).rows[0]!.id : undefined;
      return { ids, effects, outbox };
    });
    if (closed.outbox) {
      await publish(closed.effects);
      await db.query('UPDATE outbox SET published_at = now() WHERE id = $1', [closed.outbox]);
    }
    result.autoClosed.push(...closed.ids);
    if (closed.ids.length < 100) break;
  }
  return result;
}

export interface AtRisk {
  trackingId: string;
  clock: ClockName;
  agency: string | null;
  status: string;
  dueAt: string;
  breached: boolean;
}

/**
 * The running clocks already breached or falling due within `withinMs` of `now`, soonest first, of
 * the reports the caller reaches (`reach`: null for all, else an agency or a unit).
 */
export async function deadlinesAtRisk(db: Queryable, now: Date, withinMs: number, reach: { agency?: string | null; unit?: string | null } | null, limit = 500): Promise<AtRisk[]> {
  const { rows } = await db.query<{ trackingId: string; clock: ClockName; agency: string | null; status: string; dueAt: Date; breachedAt: Date | null }>(
    `SELECT r.tracking_id AS "trackingId", c.clock, COALESCE(c.agency_slug, r.agency_slug) AS agency, r.status, c.due_at AS "dueAt", c.breached_at AS "breachedAt"
     FROM report_clocks c JOIN reports r ON r.seq = c.report_seq
     WHERE c.due_at IS NOT NULL AND c.due_at < $1
       AND ($2::text IS NULL OR r.agency_slug = $2) AND ($3::text IS NULL OR r.unit_slug = $3) AND ($4::boolean OR $2::text IS NOT NULL OR $3::text IS NOT NULL)
     ORDER BY c.due_at LIMIT $5`,
    [new Date(now.getTime() + withinMs), reach?.agency ?? null, reach?.unit ?? null, reach === null, limit],
  );
  return rows.map((r) => ({
    trackingId: r.trackingId,
    clock: r.clock,
    agency: r.agency,
    status: r.status,
    dueAt: r.dueAt.toISOString(),
    breached: r.breachedAt !== null || r.dueAt.getTime() < now.getTime(),
  }));
}
