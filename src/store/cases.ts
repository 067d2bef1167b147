import type { Deadline } from '../core/calendar.ts';
import type { DataKeys } from '../core/crypto.ts';
import type { Suggestions } from '../core/rules.ts';
import { planStep, type StepInput } from '../core/lifecycle.ts';
import { colourOf, type Colour, type ReportKind, type ReportStatus, type ReportWeight } from '../core/report.ts';
import { actorLabel, canReach, mayReadIdentity, mayTake, type Actor } from '../core/roles.ts';
import type { Effect } from '../queue/jobs.ts';
import { notifyEffect } from '../queue/queues.ts';
import type { ChannelId } from '../core/inbound.ts';
import { attachmentData, attachmentsOf, type AttachmentInfo } from './attachments.ts';
import { deadlinesOf, endReportClocks, pauseReportClocks, reweighFollowUp, startReportClock, type ClockContext } from './clocks.ts';
import { withTransaction, type Db, type Tx } from './db.ts';

/**
 * The operator API's side of the store: the cases an actor may see, and each lifecycle step as one
 * transaction (report, event, thread and the notifications to send, in the outbox). Refusals are
 * `CaseError`s whose `code` the HTTP layer maps to a status.
 */

export class CaseError extends Error {
  constructor(
    readonly code: 'not_found' | 'forbidden' | 'illegal_transition' | 'unknown_agency' | 'unknown_unit' | 'bad_cursor',
    message: string,
    readonly status?: ReportStatus,
  ) {
    super(message);
    this.name = 'CaseError';
  }
}

interface CaseRow {
  seq: string;
  trackingId: string;
  channel: ChannelId;
  status: ReportStatus;
  kind: ReportKind;
  weight: ReportWeight | null;
  anonim: boolean;
  rahasia: boolean;
  agencySlug: string | null;
  agencyName: string | null;
  unitSlug: string | null;
  unitName: string | null;
  resumeStatus: ReportStatus | null;
  lang: 'id' | 'en';
  text: string;
  reporterId: string | null;
  verification: { suggestions?: Suggestions; outcomes?: unknown } | null;
  receivedAt: Date;
  incomplete: boolean;
}

const CASE_COLUMNS = `r.seq::text, r.tracking_id AS "trackingId", r.channel, r.status, r.kind, r.weight, r.anonim, r.rahasia,
  r.agency_slug AS "agencySlug", a.name AS "agencyName", r.unit_slug AS "unitSlug", u.name AS "unitName",
  r.resume_status AS "resumeStatus", r.lang, r.text, r.reporter_id::text AS "reporterId", r.verification,
  r.received_at AS "receivedAt", r.incomplete`;
const CASE_FROM = `reports r LEFT JOIN agencies a ON a.slug = r.agency_slug LEFT JOIN units u ON u.slug = r.unit_slug`;

/** The report if the actor may reach it; a report out of reach is as unknown as a missing one. */
async function reachable(db: Db | Tx, actor: Actor, trackingId: string, lock: boolean): Promise<CaseRow> {
  const { rows } = await db.query<CaseRow>(`SELECT ${CASE_COLUMNS} FROM ${CASE_FROM} WHERE r.tracking_id = $1 ${lock ? 'FOR UPDATE OF r' : ''}`, [trackingId]);
  const report = rows[0];
  if (!report || !canReach(actor, report)) throw new CaseError('not_found', `No report ${trackingId} that you can see.`);
  return report;
}

export interface StepResult {
  trackingId: string;
  status: ReportStatus;
  colour: Colour;
  agency: string | null;
  unit: string | null;
}

/**
 * Takes one lifecycle step. Order of refusals: out of reach (404), role may never (403), unknown
 * agency or unit (400), status does not allow it (409). The notifications are published after the
 * commit; if the process dies first, the outbox sweep publishes them.
 */
export async function takeStep(
  deps: { db: Db; keys: DataKeys; clocks: ClockContext; publish(effects: Effect[]): Promise<void>; onPublishFailed?: (err: unknown) => void },
  actor: Actor,
  trackingId: string,
  input: StepInput,
): Promise<StepResult> {
  const { db, keys } = deps;
  const done = await withTransaction(db, async (tx) => {
    const report = await reachable(tx, actor, trackingId, true);
    if (!mayTake(actor, input.step)) throw new CaseError('forbidden', `A ${actor.role} may not ${input.step.replace('_', ' ')} a report.`);
    if (input.step === 'dispose') {
      const { rowCount } = await tx.query('SELECT 1 FROM agencies WHERE slug = $1', [input.agency]);
      if (!rowCount) throw new CaseError('unknown_agency', `There is no agency ${input.agency}.`);
    }
    if (input.step === 'assign') {
      const { rows } = await tx.query<{ agencySlug: string }>('SELECT agency_slug AS "agencySlug" FROM units WHERE slug = $1', [input.unit]);
      if (rows[0]?.agencySlug !== report.agencySlug) throw new CaseError('unknown_unit', `There is no unit ${input.unit} in ${report.agencySlug}.`);
    }
    let plan;
    try {
      plan = planStep(report, input);
    } catch (err) {
      if ((err as { code?: string }).code === 'illegal_transition') throw new CaseError('illegal_transition', (err as Error).message, report.status);
      throw err;
    }

    const u = plan.update;
    const { rows: updated } = await tx.query<{ status: ReportStatus; agencySlug: string | null; unitSlug: string | null }>(
      `UPDATE reports SET
         status = COALESCE($2, status), kind = COALESCE($3, kind), weight = COALESCE($4, weight),
         anonim = COALESCE($5, anonim), rahasia = COALESCE($6, rahasia),
         agency_slug = CASE WHEN $7 THEN $8 ELSE agency_slug END,
         unit_slug = CASE WHEN $9 THEN $10 ELSE unit_slug END,
         resume_status = CASE WHEN $11 THEN $12 ELSE resume_status END,
         updated_at = now()
       WHERE seq = $1 RETURNING status, agency_slug AS "agencySlug", unit_slug AS "unitSlug"`,
      [
        report.seq, u.status ?? null, u.kind ?? null, u.weight ?? null, u.anonim ?? null, u.rahasia ?? null,
        'agencySlug' in u, u.agencySlug ?? null, 'unitSlug' in u, u.unitSlug ?? null, 'resumeStatus' in u, u.resumeStatus ?? null,
      ],
    );
    // The clocks: a met one says in the event whether it was met on time (the statistics count that).
    const at = new Date();
    const met = await endReportClocks(tx, deps.clocks, report.seq, plan.clocks.meet ?? [], at);
    await endReportClocks(tx, deps.clocks, report.seq, plan.clocks.stop ?? [], at);
    if (plan.clocks.pause) await pauseReportClocks(tx, deps.clocks, report.seq, at);
    if (plan.clocks.reweigh) await reweighFollowUp(tx, deps.clocks, report.seq, plan.clocks.reweigh);
    for (const clock of plan.clocks.start ?? []) {
      await startReportClock(tx, deps.clocks, report.seq, clock, at, u.weight ?? report.weight, updated[0]!.agencySlug);
    }
    // A met clock says in the event whether it was on time, and after how many working days: the
    // statistics read these (src/store/stats.ts) instead of recomputing calendars over every report.
    const metNames = Object.keys(met) as (keyof typeof met)[];
    const onTime = metNames.length
      ? {
          onTime: Object.fromEntries(metNames.map((c) => [c, met[c]!.onTime])),
          workingDays: Object.fromEntries(metNames.map((c) => [c, met[c]!.workingDays])),
        }
      : {};
    const { rows: event } = await tx.query<{ id: string }>(
      `INSERT INTO report_events (report_seq, at, actor, type, from_status, to_status, reason, data)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id::text`,
      [report.seq, at, actorLabel(actor), plan.event.type, plan.from, plan.to, plan.event.reason ?? null, JSON.stringify({ ...plan.event.data, ...onTime })],
    );
    const eventId = event[0]!.id;

    // The answer and the question are the agency's own words: kept whole (sealed) in the thread; the
    // notification carries a shortened copy.
    let threadMessageId: string | undefined;
    const threadText = input.step === 'answer' ? input.text : input.step === 'request_info' ? input.message : undefined;
    if (plan.notify?.thread && threadText !== undefined) {
      const { rows } = await tx.query<{ id: string }>(
        `INSERT INTO messages (report_seq, direction, channel, kind, sealed_text, status) VALUES ($1, 'out', 'web', $2, $3, 'stored') RETURNING id::text`,
        [report.seq, plan.notify.thread, keys.seal('thread', threadText)],
      );
      threadMessageId = rows[0]!.id;
    }
    const effects: Effect[] = plan.notify
      ? [
          notifyEffect(report.channel, {
            notifyKey: `n_${trackingId}_${plan.notify.kind}_${eventId}`,
            kind: plan.notify.kind,
            lang: report.lang,
            trackingId,
            ...(threadMessageId ? { threadMessageId } : {}),
            vars: { trackingId, ...(input.step === 'reject' ? { reason: input.reason } : {}) },
          }),
        ]
      : [];
    const outboxId = effects.length
      ? (await tx.query<{ id: string }>(`INSERT INTO outbox (effects) VALUES ($1) RETURNING id::text`, [JSON.stringify(effects)])).rows[0]!.id
      : undefined;
    return { row: updated[0]!, effects, outboxId };
  });

  if (done.outboxId) {
    // The step is committed: a failure to publish now must not look like a failed step (the operator
    // would take it again). The outbox sweep publishes what is left.
    try {
      await deps.publish(done.effects);
      await db.query('UPDATE outbox SET published_at = now() WHERE id = $1', [done.outboxId]);
    } catch (err) {
      deps.onPublishFailed?.(err);
    }
  }
  return { trackingId, status: done.row.status, colour: colourOf(done.row.status), agency: done.row.agencySlug, unit: done.row.unitSlug };
}

/** Publishes what steps committed but never published (the process died in between). */
export async function sweepOutbox(db: Db, publish: (effects: Effect[]) => Promise<void>, olderThanMs = 10_000): Promise<number> {
  const { rows } = await db.query<{ id: string; effects: Effect[] }>(
    `SELECT id::text, effects FROM outbox WHERE published_at IS NULL AND created_at < now() - make_interval(secs => $1 / 1000.0) ORDER BY id LIMIT 500`,
    [olderThanMs],
  );
  for (const row of rows) {
    await publish(row.effects);
    await db.query('UPDATE outbox SET published_at = now() WHERE id = $1', [row.id]);
  }
  return rows.length;
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface CaseFilters {
  status?: ReportStatus | undefined;
  colour?: Colour | undefined;
  agency?: string | undefined;
  unit?: string | undefined;
  channel?: string | undefined;
  weight?: ReportWeight | undefined;
  q?: string | undefined;
  cursor?: string | undefined;
  limit: number;
}

export interface CaseListItem {
  trackingId: string;
  status: ReportStatus;
  colour: Colour;
  kind: ReportKind;
  weight: ReportWeight | null;
  agency: string | null;
  unit: string | null;
  channel: string;
  receivedAt: string;
  anonim: boolean;
  rahasia: boolean;
}

const COLOUR_STATUSES: Record<Colour, ReportStatus[]> = {
  merah: ['belum_terverifikasi', 'terverifikasi', 'terdisposisi', 'bukan_wewenang'],
  kuning: ['sedang_diproses', 'tertunda'],
  hijau: ['selesai', 'arsip', 'tidak_dapat_diproses'],
};

/** Newest first, keyset-paginated by (received_at, seq); agency roles see only their own. */
export async function listCases(db: Db, actor: Actor, f: CaseFilters): Promise<{ items: CaseListItem[]; nextCursor: string | null }> {
  const where: string[] = [];
  const values: unknown[] = [];
  const param = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  if (actor.role === 'agency_admin') where.push(`r.agency_slug = ${param(actor.agencySlug)}`);
  if (actor.role === 'liaison') where.push(`r.unit_slug = ${param(actor.unitSlug)}`);
  if (f.status) where.push(`r.status = ${param(f.status)}`);
  if (f.colour) where.push(`r.status = ANY(${param(COLOUR_STATUSES[f.colour])})`);
  if (f.agency) where.push(`r.agency_slug = ${param(f.agency)}`);
  if (f.unit) where.push(`r.unit_slug = ${param(f.unit)}`);
  if (f.channel) where.push(`r.channel = ${param(f.channel)}`);
  if (f.weight) where.push(`r.weight = ${param(f.weight)}`);
  if (f.q) {
    // The report's own words and its tracking ID; never the reporter (sealed, and not searched).
    const q = f.q.replace(/[\\%_]/g, (c) => `\\${c}`);
    where.push(`(r.tracking_id = ${param(f.q.trim())} OR r.text ILIKE ${param(`%${q}%`)})`);
  }
  if (f.cursor) {
    const [at, seq] = decodeCursor(f.cursor);
    where.push(`(r.received_at, r.seq) < (${param(at)}::timestamptz, ${param(seq)}::bigint)`);
  }
  const { rows } = await db.query<CaseRow>(
    `SELECT ${CASE_COLUMNS} FROM ${CASE_FROM} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY r.received_at DESC, r.seq DESC LIMIT ${param(f.limit + 1)}`,
    values,
  );
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  return {
    items: page.map(listItemOf),
    nextCursor: rows.length > f.limit && last ? encodeCursor(last.receivedAt, last.seq) : null,
  };
}

/** What a list shows of a report; the detail view is this and more. */
function listItemOf(r: CaseRow): CaseListItem {
  return {
    trackingId: r.trackingId,
    status: r.status,
    colour: colourOf(r.status),
    kind: r.kind,
    weight: r.weight,
    agency: r.agencySlug,
    unit: r.unitSlug,
    channel: r.channel,
    receivedAt: r.receivedAt.toISOString(),
    anonim: r.anonim,
    rahasia: r.rahasia,
  };
}

function encodeCursor(at: Date, seq: string): string {
  return Buffer.from(`${at.toISOString()}|${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): [string, string] {
  const [at, seq] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (!at || !seq || Number.isNaN(Date.parse(at)) || !/^\d{1,19}$/.test(seq)) throw new CaseError('bad_cursor', 'That cursor is not one this API gave out.');
  return [at, seq];
}

export interface CaseDetail extends CaseListItem {
  text: string;
  agencyName: string | null;
  unitName: string | null;
  incomplete: boolean;
  suggestions: Suggestions | null;
  deadlines: Deadline[];
  /** Files the reporter attached: ids to fetch, names, types and sizes. */
  attachments: AttachmentInfo[];
  thread: { direction: 'in' | 'out'; channel: string; kind: string | null; text: string; status: string; at: string }[];
  events: { type: string; actor: string; at: string; from: string | null; to: string | null; reason: string | null; data: unknown }[];
}

/** Everything an agency needs to act on a report, and nothing of who sent it. */
export async function caseDetail(db: Db, keys: DataKeys, clocks: ClockContext, actor: Actor, trackingId: string, now = new Date()): Promise<CaseDetail> {
  const r = await reachable(db, actor, trackingId, false);
  const [messages, events, deadlines, attachments] = await Promise.all([
    db.query<{ direction: 'in' | 'out'; channel: string; kind: string | null; sealedText: string; status: string; at: Date }>(
      `SELECT direction, channel, kind, sealed_text AS "sealedText", status, created_at AS at FROM messages WHERE report_seq = $1 ORDER BY id`,
      [r.seq],
    ),
    db.query<{ type: string; actor: string; at: Date; from: string | null; to: string | null; reason: string | null; data: unknown }>(
      `SELECT type, actor, at, from_status AS "from", to_status AS "to", reason, data FROM report_events WHERE report_seq = $1 ORDER BY id`,
      [r.seq],
    ),
    deadlinesOf(db, clocks, r.seq, now),
    attachmentsOf(db, r.seq),
  ]);
  return {
    ...listItemOf(r),
    agencyName: r.agencyName,
    unitName: r.unitName,
    incomplete: r.incomplete,
    text: r.text,
    suggestions: r.verification?.suggestions ?? null,
    deadlines,
    attachments,
    thread: messages.rows.map((m) => ({
      direction: m.direction,
      channel: m.channel,
      kind: m.kind,
      text: String(keys.open('thread', m.sealedText)),
      status: m.status,
      at: m.at.toISOString(),
    })),
    events: events.rows.map((e) => ({ ...e, at: e.at.toISOString() })),
  };
}

export interface ReporterIdentity {
  name: string | null;
  phone: string | null;
  email: string | null;
  channel: string;
  address: string | null;
}

/**
 * The reporter's identity, for the roles that may read it; each read is an event naming who read,
 * and carrying nothing of what was read.
 */
export async function readReporter(db: Db, keys: DataKeys, actor: Actor, trackingId: string): Promise<ReporterIdentity> {
  return withTransaction(db, async (tx) => {
    const r = await reachable(tx, actor, trackingId, false);
    if (!mayReadIdentity(actor, r)) throw new CaseError('forbidden', 'The reporter of this report asked to stay anonymous.');
    const { rows } = r.reporterId ? await tx.query<{ sealed: string }>('SELECT sealed FROM reporters WHERE id = $1', [r.reporterId]) : { rows: [] };
    const sealed = rows[0] ? (keys.open('reporter', rows[0].sealed) as Record<string, unknown>) : {};
    const str = (v: unknown) => (typeof v === 'string' && v ? v : null);
    await tx.query(`INSERT INTO report_events (report_seq, actor, type, data) VALUES ($1, $2, 'identity_read', '{}')`, [r.seq, actorLabel(actor)]);
    return {
      name: str(sealed.name) ?? str(sealed.displayName),
      phone: str(sealed.phone),
      email: str(sealed.email),
      channel: str(sealed.channel) ?? r.channel,
      address: str(sealed.address),
    };
  });
}

/** One attached file of a report the actor may reach (404 otherwise, as for the report itself). */
export async function attachmentFor(db: Db, actor: Actor, trackingId: string, id: string): Promise<AttachmentInfo & { data: Buffer }> {
  const r = await reachable(db, actor, trackingId, false);
  const file = /^\d{1,19}$/.test(id) ? await attachmentData(db, r.seq, id) : undefined;
  if (!file) throw new CaseError('not_found', `No attachment ${id} on report ${trackingId}.`);
  return file;
}
