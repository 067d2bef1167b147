import { normalizeAddress, type InboundMessage } from '../src/core/inbound.ts';
import { renderNotification, type NotificationKind } from '../src/core/notifications.ts';
import { STATUS_LABELS, type ReportStatus } from '../src/core/report.ts';
import { runRules, type Verification } from '../src/core/rules.ts';
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
  /** Messages filed before (a replay): their receipt says what they led to. */
  replayed: InboundMessage[];
  /** Messages PostgreSQL refused, with why. */
  refused: { message: InboundMessage; reason: string }[];
  /** Outbound rows written as 'queued', to be sent by the notify stage of their channel. */
  outbound: { id: string; channel: string }[];
}

const LOOKBACK_DAYS_MIN = 1;
const DAY_MS = 86_400_000;

export async function fileNewReports(deps: WorkerDeps, sequence: store.SequenceBlocks, reports: readonly NewReport[]): Promise<Filed> {
  const result: Filed = { filed: [], replayed: [], refused: [], outbound: [] };
  if (!reports.length) return result;
  const { rules } = deps;
  const lookbackMs = Math.max(LOOKBACK_DAYS_MIN, rules.duplicate.windowDays, Math.ceil(rules.rateLimit.windowMinutes / 1440)) * DAY_MS;

  const withHash = reports.map((r) => ({ ...r, contactHash: contactHashOf(deps, r.message) }));
  const earliest = Math.min(...withHash.map((r) => Date.parse(r.message.receivedAt)));
  const context = await store.intakeContext(deps.db, {
    contactHashes: [...new Set(withHash.flatMap((r) => (r.contactHash ? [r.contactHash] : [])))],
    since: new Date(earliest - lookbackMs),
    receipts: withHash.flatMap((r) => [r.message, ...(r.message.equivalentIds ?? []).map((externalId) => ({ channel: r.message.channel, externalId }))]),
  });

  // In the order they were received, so the flood and duplicate rules also see the earlier messages
  // of this same batch.
  const ordered = [...withHash].sort((a, b) => a.message.receivedAt.localeCompare(b.message.receivedAt));
  const rows: store.NewReportRow[] = [];
  for (const report of ordered) {
    const ids = [report.message.externalId, ...(report.message.equivalentIds ?? [])];
    if (ids.some((id) => context.known.has(store.receiptKey(report.message.channel, id)))) {
      result.replayed.push(report.message);
      continue;
    }
    const receivedAt = new Date(report.message.receivedAt);
    const history = report.contactHash ? (context.recent.get(report.contactHash) ?? []) : [];
    const recent = history.filter((h) => h.receivedAt.getTime() >= receivedAt.getTime() - lookbackMs);
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
    if (report.contactHash) context.recent.set(report.contactHash, [{ trackingId: row.trackingId, text: row.text, receivedAt }, ...history]);
  }

  await fileOrSplit(deps, rows, result);
  // A row neither filed nor refused lost its receipt to another worker at the last moment: a replay.
  const settled = new Set([...result.filed, ...result.refused.map((r) => r.message)]);
  for (const row of rows) if (!settled.has(messageOf(row))) result.replayed.push(messageOf(row));
  return result;
}

/** Files rows in one statement; on a refusal of the data, halves until the refused row is alone. */
async function fileOrSplit(deps: WorkerDeps, rows: store.NewReportRow[], result: Filed): Promise<void> {
  if (!rows.length) return;
  try {
    const { claimed, outbound } = await store.fileReports(deps.db, rows);
    for (const row of rows) if (claimed.has(store.receiptKey(row.channel, row.externalId))) result.filed.push(messageOf(row));
    result.outbound.push(...outbound);
  } catch (err) {
    // Receipts and notifications are ON CONFLICT DO NOTHING, so a unique violation here is a row at
    // fault too (a form's tracking ID that is another report's).
    if (!isDataRefusal(err) && !(err instanceof Error && 'code' in err && err.code === '23505')) throw err;
    if (rows.length === 1) {
      result.refused.push({ message: messageOf(rows[0]!), reason: `the store refused the message (SQLSTATE ${(err as { code: string }).code}): ${(err as Error).message}` });
      return;
    }
    const half = Math.ceil(rows.length / 2);
    await fileOrSplit(deps, rows.slice(0, half), result);
    await fileOrSplit(deps, rows.slice(half), result);
  }
}

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
    return { notifyKey: `n_${trackingId}_${kind}`, kind, sealedText: keys.seal('thread', rendered) };
  };
  const outbound = [notify('received')];
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
