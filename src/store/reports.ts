import type { InboundMessage } from '../core/inbound.ts';
import type { ReportEvent, ReportKind, ReportStatus, ReportWeight } from '../core/report.ts';
import type { Db, Tx } from './db.ts';

/**
 * The report repository: plain SQL, one function per thing the pipeline does. Functions taking a
 * `Tx` are meant to run inside `withTransaction`, so a job's writes land together or not at all.
 */

type Queryable = Db | Tx;

export interface ReportRow {
  seq: string;
  trackingId: string;
  channel: string;
  kind: ReportKind;
  weight: ReportWeight | null;
  status: ReportStatus;
  anonim: boolean;
  rahasia: boolean;
  agencySlug: string | null;
  agencyName: string | null;
  text: string;
  lang: 'id' | 'en';
  reporterId: string | null;
  contactHash: string | null;
  verification: unknown;
  receivedAt: Date;
  /** Where a report in `tertunda` goes back to when its reporter answers. */
  resumeStatus: ReportStatus | null;
}

const REPORT_COLUMNS = `r.seq::text, r.tracking_id AS "trackingId", r.channel, r.kind, r.weight, r.status, r.anonim,
  r.rahasia, r.agency_slug AS "agencySlug", a.name AS "agencyName", r.text, r.lang,
  r.reporter_id::text AS "reporterId", r.contact_hash AS "contactHash", r.verification,
  r.received_at AS "receivedAt", r.resume_status AS "resumeStatus"`;

/**
 * Hands out report sequence numbers from blocks taken from PostgreSQL, so filing a report over HTTP
 * costs no database round trip most of the time. A block left unused when the process stops leaves a
 * gap in the sequence, which nothing minds: the tracking IDs stay unique.
 */
export class SequenceBlocks {
  private next = 0;
  private end = 0;
  private refill: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly size = 50,
  ) {}

  async take(): Promise<number> {
    while (this.next >= this.end) {
      this.refill ??= this.fetch().finally(() => {
        this.refill = undefined;
      });
      await this.refill;
    }
    return this.next++;
  }

  private async fetch(): Promise<void> {
    const { rows } = await this.db.query<{ seq: string }>(
      `SELECT nextval('report_seq')::text AS seq FROM generate_series(1, $1)`,
      [this.size],
    );
    const values = rows.map((r) => Number(r.seq)).sort((a, b) => a - b);
    // The values are consecutive unless another process drew from the sequence at the same moment;
    // keep the first consecutive run, which is all ours.
    let end = 1;
    while (end < values.length && values[end] === values[0]! + end) end++;
    this.next = values[0]!;
    this.end = this.next + end;
  }
}

/**
 * Claims an inbound message. Returns false when the message was already recorded — a replayed job
 * or a redelivery past the Redis dedup window — so the caller does nothing twice.
 */
export async function claimInbound(
  tx: Tx,
  message: Pick<InboundMessage, 'channel' | 'externalId' | 'dedupKey' | 'receivedAt'>,
  outcome: string,
): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO inbound_receipts (channel, external_id, dedup_key, outcome, received_at)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
    [message.channel, message.externalId, message.dedupKey, outcome, message.receivedAt],
  );
  return rowCount === 1;
}

/** The report's own columns. */
interface NewReport {
  seq: number;
  trackingId: string;
  channel: string;
  text: string;
  lang: 'id' | 'en';
  anonim: boolean;
  rahasia: boolean;
  contactHash: string | null;
  receivedAt: string;
  incomplete?: boolean;
}

export interface FiledReport extends NewReport {
  /** The inbound message the report comes from: its receipt is claimed by the same statement. */
  inbound: Pick<InboundMessage, 'channel' | 'account' | 'externalId' | 'dedupKey' | 'receivedAt'> & { attachments?: InboundMessage['attachments'] };
  /** What the receipt keeps for a replay: the jobs to (re-)add once this is committed. */
  effects: readonly unknown[];
  /** The sealed reporter, or null when there is none to store. */
  sealedReporter: string | null;
  sealedText: string;
  event: { data: Record<string, unknown> };
  /** The verification clock started by the receipt; absent when the calendar could not say. */
  verificationClock?: { workingDays: number; dueAt: Date } | undefined;
}

/**
 * Files a new report from an inbound message in ONE statement (so one round trip and one commit):
 * the receipt is claimed, and only if the claim succeeded are the reporter, the report, its first
 * thread message and its `received` event written, all from data-modifying CTEs that stand or fall
 * together. Returns false when the receipt existed already (a replay): nothing was written.
 *
 * It replaces nine round trips of the transaction it grew out of; on loopback every round trip is a
 * socket write the profile showed as the largest single cost of the whole path (issue #3 bench).
 * Foreign keys (receipt → report, message → report) are checked at the end of the statement, by
 * when every CTE has run.
 */
export async function fileReportFromInbound(db: Queryable, r: FiledReport): Promise<boolean> {
  const { rows } = await db.query<{ claimed: number }>(
    `WITH receipt AS (
       INSERT INTO inbound_receipts (channel, external_id, dedup_key, outcome, received_at, effects, report_seq)
       VALUES ($1::text, $2::text, $3::text, 'new_report', $4::timestamptz, $5::jsonb, $6::bigint)
       ON CONFLICT DO NOTHING RETURNING 1),
     reporter AS (
       INSERT INTO reporters (contact_hash, sealed) SELECT $7::text, $8::text FROM receipt WHERE $8::text IS NOT NULL
       RETURNING id),
     report AS (
       INSERT INTO reports (seq, tracking_id, channel, text, lang, anonim, rahasia, reporter_id, contact_hash, received_at, incomplete)
       SELECT $6::bigint, $9::text, $10::text, $11::text, $12::text, $13::boolean, $14::boolean, (SELECT id FROM reporter),
              $7::text, $15::timestamptz, $16::boolean FROM receipt
       RETURNING seq),
     message AS (
       INSERT INTO messages (report_seq, direction, channel, account, external_id, sealed_text, status)
       SELECT seq, 'in', $1::text, $17::text, $2::text, $18::text, 'received' FROM report),
     event AS (
       INSERT INTO report_events (report_seq, at, actor, type, to_status, data)
       SELECT seq, $4::timestamptz, 'citizen', 'received', 'belum_terverifikasi', $19::jsonb FROM report),
     clock AS (
       INSERT INTO report_clocks (report_seq, clock, started_at, working_days, due_at)
       SELECT seq, 'verification', $15::timestamptz, $20::integer, $21::timestamptz FROM report WHERE $21::timestamptz IS NOT NULL),
     attached AS (
       UPDATE attachments SET report_seq = report.seq FROM report WHERE attachments.token = ANY($22::text[]) AND attachments.report_seq IS NULL)
     SELECT count(*)::int AS claimed FROM receipt`,
    [
      r.inbound.channel,
      r.inbound.externalId,
      r.inbound.dedupKey,
      r.inbound.receivedAt,
      JSON.stringify(r.effects),
      r.seq,
      r.contactHash,
      r.sealedReporter,
      r.trackingId,
      r.channel,
      r.text,
      r.lang,
      r.anonim,
      r.rahasia,
      r.receivedAt,
      r.incomplete ?? false,
      r.inbound.account ?? null,
      r.sealedText,
      JSON.stringify(r.event.data),
      r.verificationClock?.workingDays ?? null,
      r.verificationClock?.dueAt ?? null,
      (r.inbound.attachments ?? []).flatMap((a) => (a.ref ? [a.ref] : [])),
    ],
  );
  return rows[0]!.claimed === 1;
}

/** What a claimed receipt recorded, for a replayed message that must re-add the same jobs. */
export async function receiptOf(db: Queryable, channel: string, externalId: string): Promise<{ outcome: string; effects: unknown[] } | undefined> {
  const { rows } = await db.query<{ outcome: string; effects: unknown[] }>(
    'SELECT outcome, effects FROM inbound_receipts WHERE channel = $1 AND external_id = $2',
    [channel, externalId],
  );
  return rows[0];
}

export async function findReport(db: Queryable, trackingId: string): Promise<ReportRow | undefined> {
  const { rows } = await db.query<ReportRow>(
    `SELECT ${REPORT_COLUMNS} FROM reports r LEFT JOIN agencies a ON a.slug = r.agency_slug WHERE r.tracking_id = $1`,
    [trackingId],
  );
  return rows[0];
}

/** Row-locks the report for a status change inside a transaction. */
export async function lockReport(tx: Tx, trackingId: string): Promise<ReportRow | undefined> {
  const { rows } = await tx.query<ReportRow>(
    `SELECT ${REPORT_COLUMNS} FROM reports r LEFT JOIN agencies a ON a.slug = r.agency_slug
     WHERE r.tracking_id = $1 FOR UPDATE OF r`,
    [trackingId],
  );
  return rows[0];
}

export interface ReportUpdate {
  status?: ReportStatus;
  kind?: ReportKind;
  weight?: ReportWeight | null;
  agencySlug?: string | null;
  rahasia?: boolean;
  anonim?: boolean;
  verification?: unknown;
}

export async function updateReport(tx: Tx, seq: string, update: ReportUpdate): Promise<void> {
  const columns: Record<keyof ReportUpdate, string> = {
    status: 'status',
    kind: 'kind',
    weight: 'weight',
    agencySlug: 'agency_slug',
    rahasia: 'rahasia',
    anonim: 'anonim',
    verification: 'verification',
  };
  const sets: string[] = [];
  const values: unknown[] = [seq];
  for (const [key, column] of Object.entries(columns) as [keyof ReportUpdate, string][]) {
    if (update[key] === undefined) continue;
    values.push(key === 'verification' ? JSON.stringify(update[key]) : update[key]);
    sets.push(`${column} = $${values.length}`);
  }
  if (!sets.length) return;
  await tx.query(`UPDATE reports SET ${sets.join(', ')}, updated_at = now() WHERE seq = $1`, values);
}

export async function appendEvent(tx: Queryable, seq: string | number, event: Omit<ReportEvent, 'at'> & { at?: Date }): Promise<void> {
  await tx.query(
    `INSERT INTO report_events (report_seq, at, actor, type, from_status, to_status, reason, data)
     VALUES ($1, COALESCE($2, now()), $3, $4, $5, $6, $7, $8)`,
    [
      seq,
      event.at ?? null,
      event.actor,
      event.type,
      event.fromStatus ?? null,
      event.toStatus ?? null,
      event.reason ?? null,
      JSON.stringify(event.data ?? {}),
    ],
  );
}

/**
 * Stores the automatic verification of a report and its events in one statement, once: only a
 * report not verified yet is updated, and the events are written only with that update. `stored` is
 * false when another run got there first (a duplicate job); the caller then reads what it stored.
 */
export async function recordVerification(
  db: Queryable,
  seq: string,
  update: {
    verification: unknown;
    kind?: ReportKind;
    status?: ReportStatus;
    events: Omit<ReportEvent, 'at'>[];
    /** Waiting for the reporter (tertunda): the verification clock keeps this many working days. */
    pauseVerificationWith?: number | undefined;
  },
): Promise<{ stored: boolean; acted: boolean }> {
  const events = update.events.map((e) => ({
    actor: e.actor,
    type: e.type,
    from_status: e.fromStatus ?? null,
    to_status: e.toStatus ?? null,
    reason: e.reason ?? null,
    data: e.data ?? {},
  }));
  // The rules act (kind, status, clocks) only on a report still waiting for its verification: one a
  // person has verified, forwarded or closed meanwhile keeps what they decided, and the stored
  // verification says `acted: false`, so no notification follows from it.
  const { rows } = await db.query<{ updated: number; acted: boolean | null }>(
    `WITH current AS (
       SELECT seq, status = 'belum_terverifikasi' AS open FROM reports WHERE seq = $1::bigint AND verification IS NULL FOR UPDATE),
     updated AS (
       UPDATE reports r SET verification = $2::jsonb || jsonb_build_object('acted', c.open),
              kind = CASE WHEN c.open THEN COALESCE($3::text, r.kind) ELSE r.kind END,
              status = CASE WHEN c.open THEN COALESCE($4::text, r.status) ELSE r.status END,
              -- A report the rules sent back to its reporter returns to verification when they answer.
              resume_status = CASE WHEN c.open AND $4::text = 'tertunda' THEN 'belum_terverifikasi' ELSE r.resume_status END,
              updated_at = now()
       FROM current c WHERE r.seq = c.seq RETURNING r.seq, c.open),
     written AS (
       INSERT INTO report_events (report_seq, actor, type, from_status, to_status, reason, data)
       SELECT u.seq, e.value->>'actor', e.value->>'type', e.value->>'from_status', e.value->>'to_status',
              e.value->>'reason', e.value->'data'
       FROM updated u, jsonb_array_elements($5::jsonb) WITH ORDINALITY AS e(value, n)
       WHERE u.open OR e.value->>'type' <> 'status_changed'
       ORDER BY e.n),
     paused AS (
       UPDATE report_clocks SET due_at = NULL, paused_at = now(), remaining_at_pause = $6::integer
       WHERE report_seq IN (SELECT seq FROM updated WHERE open) AND clock = 'verification' AND due_at IS NOT NULL AND $6::integer IS NOT NULL),
     stopped AS (
       DELETE FROM report_clocks WHERE report_seq IN (SELECT seq FROM updated WHERE open) AND $4::text = 'tidak_dapat_diproses')
     SELECT count(*)::int AS updated, bool_or(open) AS acted FROM updated`,
    [seq, JSON.stringify(update.verification), update.kind ?? null, update.status ?? null, JSON.stringify(events), update.pauseVerificationWith ?? null],
  );
  return { stored: rows[0]!.updated === 1, acted: rows[0]!.acted === true };
}

export async function listEvents(db: Queryable, seq: string): Promise<ReportEvent[]> {
  const { rows } = await db.query<ReportEvent>(
    `SELECT type, actor, at, from_status AS "fromStatus", to_status AS "toStatus", reason, data
     FROM report_events WHERE report_seq = $1 ORDER BY id`,
    [seq],
  );
  return rows;
}

export interface ThreadMessage {
  id: string;
  direction: 'in' | 'out';
  channel: string;
  kind: string | null;
  sealedText: string;
  status: string;
  transportId: string | null;
  createdAt: Date;
}

export async function insertInboundMessage(
  tx: Tx,
  seq: string | number,
  message: Pick<InboundMessage, 'channel' | 'account' | 'externalId'>,
  sealedText: string,
): Promise<void> {
  await tx.query(
    `INSERT INTO messages (report_seq, direction, channel, account, external_id, sealed_text, status)
     VALUES ($1, 'in', $2, $3, $4, $5, 'received')`,
    [seq, message.channel, message.account, message.externalId, sealedText],
  );
}

/**
 * Records a notification before it is sent. Returns the existing row when this notification was
 * recorded already (a replayed job), so the notify worker can tell whether it still has to send.
 */
export async function claimOutbound(
  db: Queryable,
  input: { seq: string | null; channel: string; notifyKey: string; kind: string; sealedText: string },
): Promise<{ id: string; status: string }> {
  const { rows } = await db.query<{ id: string; status: string }>(
    `WITH inserted AS (
       INSERT INTO messages (report_seq, direction, channel, notify_key, kind, sealed_text, status)
       VALUES ($1, 'out', $2, $3, $4, $5, 'queued') ON CONFLICT (notify_key) DO NOTHING
       RETURNING id::text, status)
     SELECT * FROM inserted UNION ALL SELECT id::text, status FROM messages WHERE notify_key = $3 LIMIT 1`,
    [input.seq, input.channel, input.notifyKey, input.kind, input.sealedText],
  );
  return rows[0]!;
}

export async function markOutbound(
  db: Queryable,
  id: string,
  update: { status: 'sent' | 'stored' | 'failed' | 'delivered'; transportId?: string; error?: string },
): Promise<void> {
  await db.query(
    `UPDATE messages SET status = $2, transport_id = COALESCE($3, transport_id),
       transport_ids = COALESCE(string_to_array($3, ' '), transport_ids), error = $4, updated_at = now() WHERE id = $1`,
    [id, update.status, update.transportId ?? null, update.error ?? null],
  );
}

export async function listThread(db: Queryable, seq: string): Promise<ThreadMessage[]> {
  const { rows } = await db.query<ThreadMessage>(
    `SELECT id::text, direction, channel, kind, sealed_text AS "sealedText", status, transport_id AS "transportId",
            created_at AS "createdAt"
     FROM messages WHERE report_seq = $1 ORDER BY id`,
    [seq],
  );
  return rows;
}

/** Recent reports from the same contact, for the rate-limit and duplicate rules. */
export async function recentFromContact(
  db: Queryable,
  contactHash: string,
  since: Date,
  excludeSeq: string,
): Promise<{ trackingId: string; text: string; receivedAt: Date }[]> {
  const { rows } = await db.query<{ trackingId: string; text: string; receivedAt: Date }>(
    `SELECT tracking_id AS "trackingId", text, received_at AS "receivedAt" FROM reports
     WHERE contact_hash = $1 AND received_at >= $2 AND seq <> $3 ORDER BY received_at DESC LIMIT 100`,
    [contactHash, since, excludeSeq],
  );
  return rows;
}

/**
 * Applies a delivery receipt to the outbound message one of whose parts it names. The message is
 * delivered once every part is; failed as soon as one part failed for good.
 */
export async function recordDelivery(
  db: Db,
  update: { channel: string; transportId: string; state: 'delivered' | 'failed' | 'pending'; detail: string },
): Promise<'updated' | 'unknown'> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE messages SET
       delivery = delivery || jsonb_build_object($2::text, $3::text),
       status = CASE
         WHEN status = 'failed' THEN 'failed'
         WHEN $3 = 'failed' THEN 'failed'
         WHEN (SELECT bool_and(COALESCE((delivery || jsonb_build_object($2::text, $3::text)) ->> part, '') = 'delivered')
               FROM unnest(transport_ids) AS part) THEN 'delivered'
         ELSE status END,
       error = CASE WHEN $3 = 'failed' THEN $4 ELSE error END,
       updated_at = now()
     WHERE channel = $1 AND direction = 'out' AND transport_ids @> ARRAY[$2::text]
     RETURNING id::text`,
    [update.channel, update.transportId, update.state, `receipt: ${update.detail}`],
  );
  return rows.length ? 'updated' : 'unknown';
}
