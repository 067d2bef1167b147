import { STORED_NOT_SENT } from '../src/core/channel.ts';
import { ADDENDA_ONLY, normalizeAddress, type InboundMessage } from '../src/core/inbound.ts';
import { renderNotification, type NotificationKind } from '../src/core/notifications.ts';
import { STATUS_LABELS, type ReportStatus } from '../src/core/report.ts';
import { runRules, type Verification } from '../src/core/rules.ts';
import { withTransaction } from '../src/store/db.ts';
import * as store from '../src/store/reports.ts';
import type { WorkerDeps } from './deps.ts';

/**
 * New reports, filed a batch at a time: one read (the senders' recent reports and which messages
 * are replays), the rules in memory, then one statement that writes every report of the batch with
 * its verification and its notifications (the outbox). Verification is decided here, once, before
 * anyone can act on the report: a replay finds it stored and changes nothing.
 *
 * A statement PostgreSQL refuses for the data in it (SQLSTATE 22/23) is split in halves and tried
 * again, so one poisonous message is found in log2(batch) statements and its neighbours are filed;
 * the caller turns it into a dead letter of its own.
 */

export interface NewReport {
  message: InboundMessage;
  text: string;
  privacy: 'public' | 'anonim' | 'rahasia';
}

export interface Filed {
  /** Messages whose report was filed now. */
  filed: InboundMessage[];
  /** Messages filed before (a replay), by the id of the receipt that says what they led to. */
  replayed: Receipt[];
  /** Messages PostgreSQL refused, with why. */
  refused: { message: InboundMessage; reason: string }[];
  /** Outbound rows written as 'queued', to be sent by the notify stage of their channel. */
  outbound: { id: string; channel: string }[];
  /** Words that complete the sender's photo filed just before (photoWaitingForWords): not filed, added to it. */
  completing: { message: InboundMessage; trackingId: string; text: string }[];
}

type Receipt = { channel: string; externalId: string };

const LOOKBACK_DAYS_MIN = 1;
const DAY_MS = 86_400_000;

export async function fileNewReports(deps: WorkerDeps, sequence: store.SequenceBlocks, reports: readonly NewReport[]): Promise<Filed> {
  const result: Filed = { filed: [], replayed: [], refused: [], outbound: [], completing: [] };
  if (!reports.length) return result;
  const { rules } = deps;
  const lookbackMs = Math.max(LOOKBACK_DAYS_MIN, rules.duplicate.windowDays, Math.ceil(rules.rateLimit.windowMinutes / 1440)) * DAY_MS;

  const withHash = reports.map((r) => ({ ...r, contactHash: contactHashOf(deps, r.message) }));
  const earliest = Math.min(...withHash.map((r) => Date.parse(r.message.receivedAt)));
  const context = await store.intakeContext(deps.db, {
    contactHashes: [...new Set(withHash.flatMap((r) => (r.contactHash ? [r.contactHash] : [])))],
    since: new Date(earliest - lookbackMs),
    receipts: withHash.flatMap((r) => idsOf(r.message)),
  });

  // In the order they were received, so the flood and duplicate rules also see the earlier messages
  // of this same batch.
  const ordered = [...withHash].sort((a, b) => a.message.receivedAt.localeCompare(b.message.receivedAt));
  const rows: store.NewReportRow[] = [];
  // Receipts known, and the messages of this batch taken as new so far: a second copy of one is a replay.
  const seen = new Map(context.known);
  for (const report of ordered) {
    const earlier = sameMessage(report.message, seen);
    if (earlier) {
      result.replayed.push(earlier);
      continue;
    }
    seen.set(store.receiptKey(report.message.channel, report.message.externalId), new Date(report.message.receivedAt));
    const receivedAt = new Date(report.message.receivedAt);
    const history = report.contactHash ? (context.recent.get(report.contactHash) ?? []) : [];
    const recent = history.filter((h) => h.receivedAt.getTime() >= receivedAt.getTime() - lookbackMs);
    const waiting = photoWaitingForWords(report.message, history[0], receivedAt);
    if (waiting) {
      result.completing.push({ message: report.message, trackingId: waiting, text: report.text });
      continue;
    }
    // The web form has its tracking ID already (it was in the HTTP response); others get one now.
    // A replay draws a number it does not use: a gap in the sequence, which nothing minds.
    const seq = report.message.form?.trackingId ? undefined : await sequence.take();
    let row: store.NewReportRow;
    try {
      // No I/O in here: whatever throws, throws for this message, and would again on a retry.
      row = prepare(deps, report, seq, report.contactHash, recent);
    } catch (err) {
      result.refused.push({ message: report.message, reason: `the report cannot be filed: ${(err as Error).message}` });
      continue;
    }
    rows.push(row);
    if (report.contactHash) context.recent.set(report.contactHash, [{ trackingId: row.trackingId, text: row.text, receivedAt, channel: row.channel, status: row.status }, ...history]);
  }

  // A message that may have had other ids is filed under locks on all of them (see fileGuarded).
  await fileOrSplit(deps, rows.filter((row) => !messageOf(row).sameAs), result);
  const copies = new Set<InboundMessage>();
  await fileGuarded(deps, rows.filter((row) => messageOf(row).sameAs), result, copies);
  // A row neither filed, refused nor found a copy under the locks lost its receipt to another
  // worker at the last moment: a replay too.
  const settled = new Set([...result.filed, ...result.refused.map((r) => r.message), ...copies]);
  for (const row of rows) if (!settled.has(messageOf(row))) result.replayed.push({ channel: row.channel, externalId: row.externalId });
  return result;
}

/** How long after a photo sent without words the words still complete its report. */
const WORDS_AFTER_PHOTO_MS = 30 * 60_000;

/**
 * Chat apps send a photo first and the words after: the photo alone was filed as `[foto]` and held
 * for more information (tertunda). The sender's words on the same channel soon after are that
 * report's text, not a report of their own.
 */
function photoWaitingForWords(message: InboundMessage, latest: store.RecentReport | undefined, receivedAt: Date): string | undefined {
  if (!latest || message.form || message.addendum || message.thread) return undefined;
  if (latest.channel !== message.channel || latest.status !== 'tertunda' || !ADDENDA_ONLY.test(latest.text)) return undefined;
  const gap = receivedAt.getTime() - latest.receivedAt.getTime();
  return gap >= 0 && gap <= WORDS_AFTER_PHOTO_MS ? latest.trackingId : undefined;
}

/** Every id a message may have had: its own, and its `sameAs` ones. */
function idsOf(message: InboundMessage): Receipt[] {
  return [message, ...(message.sameAs?.ids ?? []).map((externalId) => ({ channel: message.channel, externalId }))].map((r) => ({ channel: r.channel, externalId: r.externalId }));
}

/**
 * The receipt this message is a copy of: one under its own id (whenever it was received), or under
 * one of its `sameAs` ids received within `sameAs.withinMs` of it.
 */
function sameMessage(message: InboundMessage, known: ReadonlyMap<string, Date>): Receipt | undefined {
  const own = store.receiptKey(message.channel, message.externalId);
  if (known.has(own)) return { channel: message.channel, externalId: message.externalId };
  const at = Date.parse(message.receivedAt);
  const id = message.sameAs?.ids.find((other) => {
    const receivedAt = known.get(store.receiptKey(message.channel, other));
    return receivedAt !== undefined && Math.abs(receivedAt.getTime() - at) < message.sameAs!.withinMs;
  });
  return id === undefined ? undefined : { channel: message.channel, externalId: id };
}

/**
 * Files rows whose messages may have had other ids (an SMS near its dedup window's boundary) so
 * that two copies filed at the same moment — in two jobs, or two processes — cannot both be new:
 * in one transaction, locks on every id a row may have (two copies share one), then the receipts
 * read again under the locks, then the statement. A refusal of the data halves the rows, each half
 * in a transaction of its own (halving).
 */
async function fileGuarded(deps: WorkerDeps, rows: store.NewReportRow[], result: Filed, copies: Set<InboundMessage>): Promise<void> {
  await halving(rows, result, async (part) => {
    const outcome = await withTransaction(deps.db, async (tx) => {
      const ids = part.flatMap((row) => idsOf(messageOf(row)));
      await store.lockKeys(tx, ids.map((r) => store.receiptKey(r.channel, r.externalId)));
      const known = await store.receiptsOf(tx, ids);
      const fresh = part.filter((row) => !sameMessage(messageOf(row), known));
      return { known, fresh, filed: fresh.length ? await store.fileReports(tx, fresh) : undefined };
    });
    if (outcome.filed) settle(outcome.fresh, outcome.filed, result);
    for (const row of part) {
      const earlier = sameMessage(messageOf(row), outcome.known);
      if (!earlier) continue;
      result.replayed.push(earlier);
      copies.add(messageOf(row));
    }
  });
}

/** Files rows in one statement. */
async function fileOrSplit(deps: WorkerDeps, rows: store.NewReportRow[], result: Filed): Promise<void> {
  await halving(rows, result, async (part) => settle(part, await store.fileReports(deps.db, part), result));
}

/** What a filing statement claimed: those rows' messages are filed, with their replies to send. */
function settle(rows: readonly store.NewReportRow[], filed: Awaited<ReturnType<typeof store.fileReports>>, result: Filed): void {
  for (const row of rows) if (filed.claimed.has(store.receiptKey(row.channel, row.externalId))) result.filed.push(messageOf(row));
  result.outbound.push(...filed.outbound);
}

/**
 * Runs `file` on the rows; when PostgreSQL refuses the data of one of them, halves the rows until
 * the refused one is alone (log2 of the batch in statements), so its neighbours are filed.
 */
async function halving(rows: store.NewReportRow[], result: Filed, file: (rows: store.NewReportRow[]) => Promise<void>): Promise<void> {
  if (!rows.length) return;
  try {
    await file(rows);
  } catch (err) {
    if (!isRowAtFault(err)) throw err;
    if (rows.length === 1) {
      result.refused.push({ message: messageOf(rows[0]!), reason: refusalReason(err) });
      return;
    }
    const half = Math.ceil(rows.length / 2);
    await halving(rows.slice(0, half), result, file);
    await halving(rows.slice(half), result, file);
  }
}

/**
 * Receipts and notifications are ON CONFLICT DO NOTHING, so a unique violation in the filing
 * statement is a row at fault too (a form's tracking ID that is another report's).
 */
function isRowAtFault(err: unknown): err is Error & { code: string } {
  return isDataRefusal(err) || (err instanceof Error && 'code' in err && err.code === '23505');
}

const refusalReason = (err: unknown) => `the store refused the message (SQLSTATE ${(err as { code: string }).code}): ${(err as Error).message}`;

/** The message each row was built from. */
const rowMessages = new WeakMap<store.NewReportRow, InboundMessage>();
function messageOf(row: store.NewReportRow): InboundMessage {
  return rowMessages.get(row)!;
}

function prepare(
  deps: WorkerDeps,
  report: NewReport,
  drawn: number | undefined,
  contactHash: string | null,
  recent: { trackingId: string; text: string; receivedAt: Date }[],
): store.NewReportRow {
  const { keys, codec } = deps;
  const { message, text, privacy } = report;
  const preassigned = message.form?.trackingId;
  const seq = preassigned ? codec.toSequence(preassigned) : drawn!;
  const trackingId = preassigned ?? codec.fromSequence(seq);
  const lang = message.lang ?? deps.config.lang;
  const receivedAt = new Date(message.receivedAt);

  const reporter = message.form?.reporter;
  const sealedReporter =
    message.sender || reporter
      ? keys.seal('reporter', {
          channel: message.channel,
          address: message.sender?.address,
          displayName: message.sender?.displayName,
          replyContext: message.replyContext,
          ...reporter,
        })
      : null;

  const verification = runRules({ text, receivedAt, recentFromSender: recent }, deps.rules);
  const next = nextStatus(verification);
  const status: ReportStatus = next ?? 'belum_terverifikasi';
  const clock = verificationClock(deps, receivedAt, next);
  const events: store.NewReportRow['events'] = [
    { at: message.receivedAt, actor: 'citizen', type: 'received', toStatus: 'belum_terverifikasi', data: { channel: message.channel, privacy } },
    {
      actor: 'system:verify',
      type: 'auto_verified',
      reason: verification.outcomes.map((o) => o.reason).join('; ') || 'no rule fired',
      data: { verdict: verification.verdict, rules: verification.outcomes.map((o) => o.rule), suggestions: verification.suggestions },
    },
  ];
  const ruling = verification.outcomes.find((o) => o.verdict === verification.verdict);
  if (next) events.push({ actor: 'system:verify', type: 'status_changed', fromStatus: 'belum_terverifikasi', toStatus: next, reason: ruling?.reason, data: {} });

  const notify = (kind: NotificationKind, vars: Record<string, string> = {}) => {
    const rendered = renderNotification(kind, lang, {
      trackingId,
      status: STATUS_LABELS[status][lang],
      link: `${deps.config.publicUrl.replace(/\/$/, '')}/lapor/${trackingId}`,
      ...vars,
    });
    return { notifyKey: `n_${trackingId}_${kind}`, kind, sealedText: keys.seal('thread', rendered), stored: STORED_NOT_SENT.has(message.channel) };
  };
  // A report refused at once is answered once, with why: a spammer is not told twice that the
  // address is read, and a mail loop has one message fewer to feed on.
  const outbound = next === 'tidak_dapat_diproses' ? [] : [notify('received')];
  if (next === 'tertunda') outbound.push(notify('needs_info', ruling?.citizenReason ? { reason: ruling.citizenReason } : {}));
  if (next === 'tidak_dapat_diproses') outbound.push(notify('not_processable', ruling?.citizenReason ? { reason: ruling.citizenReason } : {}));

  const row: store.NewReportRow = {
    channel: message.channel,
    externalId: message.externalId,
    dedupKey: message.dedupKey,
    account: message.account ?? null,
    receivedAt: message.receivedAt,
    seq,
    trackingId,
    text,
    lang,
    anonim: privacy === 'anonim',
    rahasia: privacy === 'rahasia',
    incomplete: message.incomplete ?? false,
    contactHash,
    sealedReporter,
    sealedText: keys.seal('thread', message.text),
    verification: { ...verification, acted: true },
    kind: verification.suggestions.kind ?? 'pengaduan',
    status,
    // A report the rules sent back to its reporter returns to verification when they answer.
    resumeStatus: next === 'tertunda' ? 'belum_terverifikasi' : null,
    events,
    clock,
    attachments: (message.attachments ?? []).flatMap((a) => (a.ref ? [a.ref] : [])),
    outbound,
  };
  rowMessages.set(row, message);
  return row;
}

function nextStatus(verification: Verification): ReportStatus | undefined {
  if (verification.verdict === 'needs_info') return 'tertunda';
  if (verification.verdict === 'reject') return 'tidak_dapat_diproses';
  return undefined;
}

/**
 * The verification clock of a new report: running; paused with all its days when the rules send the
 * report back to its reporter; none for a report that cannot be processed. A calendar that cannot
 * answer (a year with no holiday data) must not lose the report: it is filed without the clock, and
 * the error says what to add.
 */
function verificationClock(deps: WorkerDeps, receivedAt: Date, next: ReportStatus | undefined): store.NewReportRow['clock'] {
  if (next === 'tidak_dapat_diproses') return null;
  const { calendar, days } = deps.clocks;
  try {
    const dueAt = calendar.dueAt(receivedAt, days.verificationDays);
    if (next === 'tertunda') {
      return { workingDays: days.verificationDays, dueAt: null, pausedAt: receivedAt.toISOString(), remaining: calendar.remainingAtPause(dueAt, receivedAt) };
    }
    return { workingDays: days.verificationDays, dueAt: dueAt.toISOString(), pausedAt: null, remaining: null };
  } catch (err) {
    deps.log.error({ err }, 'no verification clock for a new report: the calendar cannot count its days');
    return null;
  }
}

function contactHashOf(deps: WorkerDeps, message: InboundMessage): string | null {
  const reporter = message.form?.reporter;
  const contact = message.sender?.address ?? reporter?.phone ?? reporter?.email;
  return contact ? deps.keys.blindIndex(normalizeAddress(contact)) : null;
}

/**
 * SQLSTATE classes no retry can change: 22 data exception (0x00 in text, a bad escape in jsonb,
 * a value too long) and 23 integrity violations other than the unique one a replay meets on purpose.
 */
export function isDataRefusal(err: unknown): err is Error & { code: string } {
  if (!(err instanceof Error) || !('code' in err) || typeof err.code !== 'string' || !/^2[23][0-9A-Z]{3}$/.test(err.code)) return false;
  return err.code !== '23505';
}
