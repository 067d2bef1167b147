import { UnrecoverableError, type Job } from 'bullmq';
import { runRules, type Verification } from '../src/core/rules.ts';
import { assertTransition, type ReportEvent, type ReportStatus } from '../src/core/report.ts';
import { VerifyJobSchema, type Effect } from '../src/queue/jobs.ts';
import { notifyEffect } from '../src/queue/queues.ts';
import * as store from '../src/store/reports.ts';
import type { WorkerDeps } from './deps.ts';

/**
 * Automatic verification: runs the rules of config/rules.ts on a new report, stores their outcome
 * and suggestions for the human verifier, and acts only on what is clear-cut (needs more
 * information → tertunda; spam, flood or duplicate → tidak dapat diproses). Once stored, the
 * outcome is never recomputed: a replayed job re-derives the same notifications from it.
 */

const LOOKBACK_DAYS_MIN = 1;

export function createVerifyProcessor(deps: WorkerDeps) {
  const { db, queues, log } = deps;

  return async function processVerify(job: Job): Promise<string> {
    const parsed = VerifyJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError('malformed verify job');
    const { trackingId } = parsed.data;

    const report = await store.findReport(db, trackingId);
    if (!report) throw new UnrecoverableError(`no report ${trackingId}`);
    const verification = (report.verification as StoredVerification | null) ?? (await verifyOnce(deps, report));
    await queues.addEffects(effectsOf(trackingId, report.channel, report.lang, verification));
    log.debug({ trackingId, verdict: verification.verdict }, 'report verified');
    return verification.verdict;
  };
}

/**
 * Runs the rules and stores their outcome with its events, once: a duplicate job that loses the
 * race takes the verification the winner stored, so both add the same notifications.
 */
/** A stored verification: `acted` is false when a person had handled the report before the rules ran. */
type StoredVerification = Verification & { acted?: boolean };

async function verifyOnce(deps: WorkerDeps, report: store.ReportRow): Promise<StoredVerification> {
  const { db, rules } = deps;
  const lookbackDays = Math.max(LOOKBACK_DAYS_MIN, rules.duplicate.windowDays, Math.ceil(rules.rateLimit.windowMinutes / 1440));
  const since = new Date(report.receivedAt.getTime() - lookbackDays * 86_400_000);
  const recent = report.contactHash ? await store.recentFromContact(db, report.contactHash, since, report.seq) : [];
  const verification = runRules({ text: report.text, receivedAt: report.receivedAt, recentFromSender: recent }, rules);

  const next = nextStatus(verification);
  // Only a report still waiting for its verification is moved by the rules (see recordVerification).
  if (next && report.status === 'belum_terverifikasi') assertTransition(report.status, next);
  const events: Omit<ReportEvent, 'at'>[] = [
    {
      actor: 'system:verify',
      type: 'auto_verified',
      reason: verification.outcomes.map((o) => o.reason).join('; ') || 'no rule fired',
      data: { verdict: verification.verdict, rules: verification.outcomes.map((o) => o.rule), suggestions: verification.suggestions },
    },
  ];
  if (next) {
    events.push({
      actor: 'system:verify',
      type: 'status_changed',
      fromStatus: report.status,
      toStatus: next,
      reason: verification.outcomes.find((o) => o.verdict === verification.verdict)?.reason,
    });
  }
  const { stored, acted } = await store.recordVerification(db, report.seq, {
    verification,
    kind: verification.suggestions.kind,
    status: next,
    events,
    ...(next === 'tertunda' ? { pauseVerificationWith: await verificationDaysLeft(deps, report.seq) } : {}),
  });
  // What was stored (with `acted`) is what the notifications follow, for this run and any replay.
  if (stored) return { ...verification, acted };
  const winner = await store.findReport(db, report.trackingId);
  return winner!.verification as StoredVerification;
}

function nextStatus(verification: Verification): ReportStatus | undefined {
  if (verification.verdict === 'needs_info') return 'tertunda';
  if (verification.verdict === 'reject') return 'tidak_dapat_diproses';
  return undefined;
}

function effectsOf(trackingId: string, channel: string, lang: 'id' | 'en', verification: StoredVerification): Effect[] {
  // A verification that came after a person had handled the report changed nothing: nothing to tell.
  if (verification.acted === false) return [];
  const kind = verification.verdict === 'needs_info' ? 'needs_info' : verification.verdict === 'reject' ? 'not_processable' : undefined;
  if (!kind) return [];
  const reason = verification.outcomes.find((o) => o.verdict === verification.verdict)?.citizenReason;
  return [
    notifyEffect(channel as Parameters<typeof notifyEffect>[0], {
      notifyKey: `n_${trackingId}_${kind}`,
      kind,
      lang,
      trackingId,
      vars: { trackingId, ...(reason ? { reason } : {}) },
    }),
  ];
}

/**
 * The working days the verification clock has left now, for a report the rules send back to its
 * reporter: the clock stops until they answer. Undefined when there is no clock to pause.
 */
async function verificationDaysLeft(deps: WorkerDeps, seq: string): Promise<number | undefined> {
  const { rows } = await deps.db.query<{ dueAt: Date }>(`SELECT due_at AS "dueAt" FROM report_clocks WHERE report_seq = $1 AND clock = 'verification' AND due_at IS NOT NULL`, [seq]);
  if (!rows[0]) return undefined;
  try {
    return deps.clocks.calendar.remainingAtPause(rows[0].dueAt, new Date());
  } catch (err) {
    deps.log.error({ err }, 'cannot pause a verification clock: the calendar cannot count its days');
    return undefined;
  }
}
