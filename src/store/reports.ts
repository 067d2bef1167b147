import type { InboundMessage } from '../core/inbound.ts';
import type { ReportEvent, ReportKind, ReportStatus, ReportWeight } from '../core/report.ts';
import { prepared, type Db, type Tx } from './db.ts';

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
      prepared('report-seq-block', `SELECT nextval('report_seq')::text AS seq FROM generate_series(1, $1)`,
      [this.size]),
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

/** One new report as the intake stage files it (workers/file-reports.ts): every row it leads to. */
export interface NewReportRow {
  channel: string;
  externalId: string;
  dedupKey: string;
  account: string | null;
  receivedAt: string;
  seq: number;
  trackingId: string;
  text: string;
  lang: 'id' | 'en';
  anonim: boolean;
  rahasia: boolean;
  incomplete: boolean;
  contactHash: string | null;
  /** The sealed reporter, or null when there is none to store. */
  sealedReporter: string | null;
  /** The citizen's message as the first entry of the thread (sealed). */
  sealedText: string;
  /** The rules' outcome, stored once at filing (src/core/rules.ts). */
  verification: unknown;
  kind: ReportKind;
  status: ReportStatus;
  resumeStatus: ReportStatus | null;
  events: { at?: string; actor: string; type: string; fromStatus?: string | undefined; toStatus?: string | undefined; reason?: string | undefined; data: Record<string, unknown> }[];
  /** The verification clock, running or (for a report sent back to its reporter) paused; none when the calendar could not say. */
  clock: { workingDays: number; dueAt: string | null; pausedAt: string | null; remaining: number | null } | null;
  /** Attachment tokens uploaded beforehand (web form), linked to the report. */
  attachments: string[];
  /**
   * Notifications to the reporter, written as 'queued' outbound rows: the outbox the notify stage
   * sends. `stored`: a channel whose notifications are read where they are kept (the web's status
   * page) writes them done, and no notify job follows.
   */
  outbound: { notifyKey: string; kind: string; sealedText: string; stored?: boolean }[];
}

/**
 * Files new reports in ONE statement (one round trip, one commit, whatever their number): each
 * receipt is claimed with ON CONFLICT DO NOTHING, and only the reports whose receipt was claimed get
 * their reporter, report, first thread message, events, verification clock, attachments and
 * outbound notifications (`outbound` returns the rows left for the notify stage to send). What was
 * claimed is read back from RETURNING: a message whose receipt existed (a replay, or a race with
 * another worker) wrote nothing.
 *
 * Rows travel as one jsonb parameter (jsonb_to_recordset), so the SQL text is the same for any
 * batch and nested lists (events, notifications) need no flattening. Foreign keys are checked at the
 * end of the statement, by when every CTE has run. The caller gives each channel+externalId once.
 * Attachments are found by token and updated by id, each through its index (see receiptsOf: a join
 * with the table let the generic plan scan all of it).
 */
export async function fileReports(db: Queryable, rows: readonly NewReportRow[]): Promise<{ claimed: Set<string>; outbound: { id: string; channel: string }[] }> {
  const { rows: result } = await db.query<{ claimed: string[] | null; outbound: { id: string; channel: string }[] | null }>(
    prepared('file-reports', `WITH input AS MATERIALIZED (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
         n int, channel text, "externalId" text, "dedupKey" text, account text, "receivedAt" timestamptz, seq bigint,
         "trackingId" text, text text, lang text, anonim boolean, rahasia boolean, incomplete boolean, "contactHash" text,
         "sealedReporter" text, "sealedText" text, verification jsonb, kind text, status text, "resumeStatus" text,
         events jsonb, clock jsonb, attachments jsonb, outbound jsonb)),
     receipt AS (
       INSERT INTO inbound_receipts (channel, external_id, dedup_key, outcome, received_at, report_seq)
       SELECT channel, "externalId", "dedupKey", 'new_report', "receivedAt", seq FROM input
       ON CONFLICT DO NOTHING RETURNING channel, external_id),
     claimed AS MATERIALIZED (
       SELECT i.*, CASE WHEN i."sealedReporter" IS NOT NULL THEN nextval(pg_get_serial_sequence('reporters', 'id')) END AS reporter_id
       FROM input i JOIN receipt r ON r.channel = i.channel AND r.external_id = i."externalId"),
     reporter AS (
       INSERT INTO reporters (id, contact_hash, sealed) OVERRIDING SYSTEM VALUE
       SELECT reporter_id, "contactHash", "sealedReporter" FROM claimed WHERE reporter_id IS NOT NULL),
     report AS (
       INSERT INTO reports (seq, tracking_id, channel, text, lang, anonim, rahasia, reporter_id, contact_hash, received_at,
                            incomplete, kind, status, resume_status, verification)
       SELECT seq, "trackingId", channel, text, lang, anonim, rahasia, reporter_id, "contactHash", "receivedAt",
              incomplete, kind, status, "resumeStatus", verification FROM claimed),
     thread AS (
       INSERT INTO messages (report_seq, direction, channel, account, external_id, sealed_text, status)
       SELECT seq, 'in', channel, account, "externalId", "sealedText", 'received' FROM claimed ORDER BY n),
     event AS (
       INSERT INTO report_events (report_seq, at, actor, type, from_status, to_status, reason, data)
       SELECT c.seq, COALESCE((e.value->>'at')::timestamptz, now()), e.value->>'actor', e.value->>'type',
              e.value->>'fromStatus', e.value->>'toStatus', e.value->>'reason', COALESCE(e.value->'data', '{}')
       FROM claimed c, jsonb_array_elements(c.events) WITH ORDINALITY AS e(value, k) ORDER BY c.n, e.k),
     clock AS (
       INSERT INTO report_clocks (report_seq, clock, started_at, working_days, due_at, paused_at, remaining_at_pause)
       SELECT seq, 'verification', "receivedAt", (clock->>'workingDays')::int, (clock->>'dueAt')::timestamptz,
              (clock->>'pausedAt')::timestamptz, (clock->>'remaining')::int
       FROM claimed WHERE clock IS NOT NULL AND jsonb_typeof(clock) = 'object'),
     linked AS MATERIALIZED (
       SELECT c.seq, x.id FROM claimed c, jsonb_array_elements_text(c.attachments) AS token(value),
         LATERAL (SELECT id FROM attachments WHERE attachments.token = token.value AND report_seq IS NULL LIMIT 1) x),
     attached AS (
       UPDATE attachments a SET report_seq = (SELECT l.seq FROM linked l WHERE l.id = a.id)
       WHERE a.id = ANY (ARRAY(SELECT id FROM linked))),
     outbound AS (
       INSERT INTO messages (report_seq, direction, channel, notify_key, kind, sealed_text, status)
       SELECT c.seq, 'out', c.channel, o.value->>'notifyKey', o.value->>'kind', o.value->>'sealedText',
              CASE WHEN (o.value->>'stored')::boolean THEN 'stored' ELSE 'queued' END
       FROM claimed c, jsonb_array_elements(c.outbound) WITH ORDINALITY AS o(value, k) ORDER BY c.n, o.k
       ON CONFLICT (notify_key) DO NOTHING RETURNING id::text, channel, status)
     SELECT (SELECT array_agg(channel || ' ' || "externalId") FROM claimed) AS claimed,
            (SELECT json_agg(json_build_object('id', id, 'channel', channel) ORDER BY id) FROM outbound WHERE status = 'queued') AS outbound`,
    [JSON.stringify(rows.map((row, n) => ({ n, ...row })))]),
  );
  return { claimed: new Set(result[0]!.claimed ?? []), outbound: result[0]!.outbound ?? [] };
}

/** The key fileReports reports claimed messages by. */
export const receiptKey = (channel: string, externalId: string): string => `${channel} ${externalId}`;

/** A sender's earlier report, as the rules and the filing of a new one see it. */
export interface RecentReport {
  trackingId: string;
  text: string;
  receivedAt: Date;
  channel: string;
  status: ReportStatus;
}

/**
 * What the rules need before a batch is filed, in one round trip: the recent reports of every sender
 * in it, and which of its messages have a receipt already (replays, filed nothing new).
 */
export async function intakeContext(
  db: Queryable,
  input: { contactHashes: string[]; since: Date; receipts: { channel: string; externalId: string }[] },
): Promise<{ recent: Map<string, RecentReport[]>; known: Map<string, Date> }> {
  const { rows } = await db.query<{ what: 'recent' | 'known'; key: string; trackingId: string | null; text: string | null; receivedAt: Date | null; channel: string | null; status: ReportStatus | null }>(
    prepared('intake-context', `SELECT 'recent' AS what, h.hash AS key, r.tracking_id AS "trackingId", r.text, r.received_at AS "receivedAt", r.channel, r.status
     FROM unnest($1::text[]) AS h(hash),
          LATERAL (SELECT tracking_id, text, received_at, channel, status FROM reports
                   WHERE contact_hash = h.hash AND received_at >= $2 ORDER BY received_at DESC LIMIT 100) r
     UNION ALL
     SELECT 'known', ir.channel || ' ' || ir.external_id, NULL, NULL, ir.received_at, NULL, NULL
     FROM unnest($3::text[], $4::text[]) AS k(channel, external_id),
          LATERAL (SELECT * FROM inbound_receipts r WHERE r.channel = k.channel AND r.external_id = k.external_id LIMIT 1) ir`,
    [input.contactHashes, input.since, input.receipts.map((r) => r.channel), input.receipts.map((r) => r.externalId)]),
  );
  const recent = new Map<string, RecentReport[]>();
  // Receipts by key, with when their message was received (the caller matches `sameAs` ids in time).
  const known = new Map<string, Date>();
  for (const row of rows) {
    if (row.what === 'known') known.set(row.key, row.receivedAt!);
    else recent.set(row.key, [...(recent.get(row.key) ?? []), { trackingId: row.trackingId!, text: row.text!, receivedAt: row.receivedAt!, channel: row.channel!, status: row.status! }]);
  }
  return { recent, known };
}

/**
 * Receipts under any of the given ids, by key (`receiptKey`), with when their message was received.
 *
 * Keys given as arrays are looked up one by one through the primary key (LATERAL … LIMIT 1, which
 * the planner cannot turn into a join): as a plain join of unnest() with the table, the generic plan
 * of the prepared statement hashed the keys and scanned the whole table — 793 sequential scans of
 * inbound_receipts in one bench:smpp run, 1,146 rows read per message, growing with the table.
 * intakeContext, replaysOf and recordDeliveries do the same.
 */
export async function receiptsOf(db: Queryable, receipts: readonly { channel: string; externalId: string }[]): Promise<Map<string, Date>> {
  const { rows } = await db.query<{ key: string; receivedAt: Date }>(
    prepared('receipts-of', `SELECT ir.channel || ' ' || ir.external_id AS key, ir.received_at AS "receivedAt"
     FROM unnest($1::text[], $2::text[]) AS k(channel, external_id),
          LATERAL (SELECT * FROM inbound_receipts r WHERE r.channel = k.channel AND r.external_id = k.external_id LIMIT 1) ir`,
    [receipts.map((r) => r.channel), receipts.map((r) => r.externalId)]),
  );
  return new Map(rows.map((r) => [r.key, r.receivedAt]));
}

/**
 * Takes a transaction-scoped lock on each key, in one order for everyone (sorted), so transactions
 * wanting overlapping keys wait for each other instead of deadlocking.
 */
export async function lockKeys(tx: Tx, keys: readonly string[]): Promise<void> {
  await tx.query(
    prepared('lock-keys', `SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k) s ORDER BY h`,
    [keys]),
  );
}

/**
 * The reports that provider ids of a conversation belong to (InboundMessage.thread): one of our
 * notifications (its transport id) or one of the citizen's messages (its external id).
 */
export async function threadReports(db: Queryable, channel: string, ids: readonly string[]): Promise<Map<string, { trackingId: string; contactHash: string | null }>> {
  if (!ids.length) return new Map();
  const { rows } = await db.query<{ id: string; trackingId: string; contactHash: string | null }>(
    prepared('thread-reports', `SELECT p.transport_id AS id, r.tracking_id AS "trackingId", r.contact_hash AS "contactHash"
     FROM outbound_parts p JOIN messages m ON m.id = p.message_id JOIN reports r ON r.seq = m.report_seq
     WHERE p.channel = $1 AND p.transport_id = ANY($2::text[])
     UNION ALL
     SELECT i.external_id, r.tracking_id, r.contact_hash
     FROM inbound_receipts i JOIN reports r ON r.seq = i.report_seq
     WHERE i.channel = $1 AND i.external_id = ANY($2::text[])`,
    [channel, ids]),
  );
  return new Map(rows.map((r) => [r.id, { trackingId: r.trackingId, contactHash: r.contactHash }]));
}

/**
 * What replayed messages led to: the jobs their receipts recorded (messages handled one at a time)
 * and the outbound rows of their reports still waiting to be sent (reports filed in a batch).
 */
export async function replaysOf(
  db: Queryable,
  receipts: readonly { channel: string; externalId: string }[],
): Promise<{ outcomes: string[]; effects: unknown[]; queued: { id: string; channel: string }[] }> {
  if (!receipts.length) return { outcomes: [], effects: [], queued: [] };
  const { rows } = await db.query<{ outcome: string; effects: unknown[]; queued: { id: string; channel: string }[] | null }>(
    prepared('replays-of', `SELECT ir.outcome, ir.effects,
            (SELECT json_agg(json_build_object('id', m.id::text, 'channel', m.channel) ORDER BY m.id) FROM messages m
             WHERE m.report_seq = ir.report_seq AND m.direction = 'out' AND m.status = 'queued') AS queued
     FROM unnest($1::text[], $2::text[]) AS k(channel, external_id),
          LATERAL (SELECT * FROM inbound_receipts r WHERE r.channel = k.channel AND r.external_id = k.external_id LIMIT 1) ir`,
    [receipts.map((r) => r.channel), receipts.map((r) => r.externalId)]),
  );
  return { outcomes: rows.map((r) => r.outcome), effects: rows.flatMap((r) => r.effects), queued: rows.flatMap((r) => r.queued ?? []) };
}

/** What a claimed receipt recorded, for a replayed message that must re-add the same jobs. */
export async function receiptOf(db: Queryable, channel: string, externalId: string): Promise<{ outcome: string; effects: unknown[] } | undefined> {
  const { rows } = await db.query<{ outcome: string; effects: unknown[] }>(
    'SELECT outcome, effects FROM inbound_receipts WHERE channel = $1 AND external_id = $2',
    [channel, externalId],
  );
  return rows[0];
}

/** The tracking ID of the newest report from one contact on one channel received since `since`. */
export async function latestReportOf(db: Queryable, contactHash: string, channel: string, since: Date): Promise<string | undefined> {
  const { rows } = await db.query<{ trackingId: string }>(
    `SELECT tracking_id AS "trackingId" FROM reports
     WHERE contact_hash = $1 AND channel = $2 AND received_at >= $3 ORDER BY received_at DESC, seq DESC LIMIT 1`,
    [contactHash, channel, since],
  );
  return rows[0]?.trackingId;
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

/**
 * Replies still 'queued' long after they were written, grouped by channel: their notify job was
 * lost (Redis's data gone) or is long dead. The deadline sweep offers them to notify again.
 */
export async function staleQueuedOutbound(db: Queryable, olderThanMs: number, limit = 1_000): Promise<Map<string, string[]>> {
  const { rows } = await db.query<{ id: string; channel: string }>(
    `SELECT id::text, channel FROM messages
     WHERE direction = 'out' AND status = 'queued' AND created_at < now() - make_interval(secs => $1 / 1000.0)
     ORDER BY created_at, id LIMIT $2`,
    [olderThanMs, limit],
  );
  const byChannel = new Map<string, string[]>();
  for (const row of rows) byChannel.set(row.channel, [...(byChannel.get(row.channel) ?? []), row.id]);
  return byChannel;
}

export interface QueuedOutbound {
  id: string;
  notifyKey: string;
  sealedText: string;
  trackingId: string | null;
  /** The report's sealed reporter: where the notification goes unless its job says otherwise. */
  sealedReporter: string | null;
  kind: string | null;
  privacy: 'public' | 'anonim' | 'rahasia';
  lang: 'id' | 'en' | null;
}

/**
 * Locks the outbound rows of `ids` that are still waiting to be sent, skipping rows another
 * transaction holds (it is sending them). Only inside a transaction that marks them before it ends.
 */
export async function lockQueuedOutbound(tx: Tx, ids: readonly string[]): Promise<QueuedOutbound[]> {
  const { rows } = await tx.query<QueuedOutbound>(
    prepared('lock-queued-outbound', `SELECT m.id::text, m.notify_key AS "notifyKey", m.sealed_text AS "sealedText", r.tracking_id AS "trackingId",
            rp.sealed AS "sealedReporter", m.kind, r.lang,
            CASE WHEN r.rahasia THEN 'rahasia' WHEN r.anonim THEN 'anonim' ELSE 'public' END AS privacy
     FROM messages m LEFT JOIN reports r ON r.seq = m.report_seq LEFT JOIN reporters rp ON rp.id = r.reporter_id
     WHERE m.id = ANY($1::bigint[]) AND m.direction = 'out' AND m.status = 'queued'
     ORDER BY m.id FOR UPDATE OF m SKIP LOCKED`,
    [ids]),
  );
  return rows;
}

export interface OutboundMark {
  id: string;
  status: 'sent' | 'stored' | 'failed';
  transportId?: string | undefined;
  error?: string | undefined;
}

/** What the provider said of each sent row, in one statement. */
export async function markOutboundMany(tx: Queryable, marks: readonly OutboundMark[]): Promise<void> {
  if (!marks.length) return;
  // The parts are indexed for delivery receipts (outbound_parts); a transport id an SMSC reuses
  // names the newest message that has it.
  await tx.query(
    prepared('mark-outbound', `WITH marked AS (
       UPDATE messages m SET status = u.status, transport_id = COALESCE(u.transport_id, m.transport_id),
         transport_ids = COALESCE(string_to_array(u.transport_id, ' '), m.transport_ids), error = u.error, updated_at = now()
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(id, status, transport_id, error)
       WHERE m.id = u.id AND m.id = ANY ($1::bigint[])
       RETURNING m.id, m.channel, u.transport_id)
     INSERT INTO outbound_parts (channel, transport_id, message_id)
     SELECT DISTINCT ON (channel, part) channel, part, id
     FROM marked, unnest(string_to_array(marked.transport_id, ' ')) AS part
     ORDER BY channel, part, id DESC
     ON CONFLICT (channel, transport_id) DO UPDATE SET message_id = EXCLUDED.message_id`,
    [marks.map((m) => m.id), marks.map((m) => m.status), marks.map((m) => m.transportId ?? null), marks.map((m) => m.error ?? null)]),
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

export interface DeliveryUpdate {
  channel: string;
  transportId: string;
  state: 'delivered' | 'failed' | 'pending';
  detail: string;
}

/**
 * Applies delivery receipts, many in one statement (an SMSC sends one per segment of every reply).
 * A message is delivered once every part is; failed as soon as one part failed for good. Receipts
 * naming parts of the same message are merged first (in their order: a later receipt for a part
 * wins), since an UPDATE applies one source row per target row. Returns, per receipt, whether it
 * named a message we sent.
 */
// The UPDATE of messages here (and in markOutboundMany) also names its rows with `id = ANY (…)`: an
// index condition the planner takes, where a join with a CTE alone let it scan all of messages
// (test/store/plans.test.ts).
export async function recordDeliveries(db: Queryable, updates: readonly DeliveryUpdate[]): Promise<('updated' | 'unknown')[]> {
  if (!updates.length) return [];
  const { rows } = await db.query<{ n: string }>(
    prepared('record-deliveries', `WITH receipt AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(channel, transport_id, state, detail, n)),
     matched AS (
       SELECT p.message_id AS id, r.transport_id, r.state, r.detail, r.n FROM receipt r,
         LATERAL (SELECT message_id FROM outbound_parts p WHERE p.channel = r.channel AND p.transport_id = r.transport_id LIMIT 1) p),
     merged AS (
       SELECT id, jsonb_object_agg(transport_id, state ORDER BY n) AS delivery, bool_or(state = 'failed') AS failed,
              (array_agg(detail ORDER BY n) FILTER (WHERE state = 'failed'))[1] AS failed_detail
       FROM matched GROUP BY id),
     updated AS (
       UPDATE messages m SET
         delivery = m.delivery || g.delivery,
         status = CASE
           WHEN m.status = 'failed' OR g.failed THEN 'failed'
           WHEN (SELECT bool_and(COALESCE((m.delivery || g.delivery) ->> part, '') = 'delivered') FROM unnest(m.transport_ids) AS part) THEN 'delivered'
           ELSE m.status END,
         error = CASE WHEN g.failed THEN 'receipt: ' || g.failed_detail ELSE m.error END,
         updated_at = now()
       FROM merged g WHERE m.id = g.id AND m.id = ANY (ARRAY(SELECT id FROM merged)) RETURNING m.id)
     SELECT n::text FROM matched WHERE id IN (SELECT id FROM updated)`,
    [updates.map((u) => u.channel), updates.map((u) => u.transportId), updates.map((u) => u.state), updates.map((u) => u.detail)]),
  );
  const matched = new Set(rows.map((r) => Number(r.n)));
  return updates.map((_, i) => (matched.has(i + 1) ? 'updated' : 'unknown'));
}
