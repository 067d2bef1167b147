import type { ReportKind, ReportStatus, ReportWeight } from './report.ts';
import type { NotificationKind } from './notifications.ts';
import type { ClockName } from './calendar.ts';
import type { Step } from './roles.ts';

/**
 * The case lifecycle's steps (issue #13, DESIGN.md "The report"): from which statuses each step may
 * be taken, where it leads, what it changes and what the reporter is told. Pure: the operator API
 * locks the report, asks `planStep`, and writes the plan in one transaction.
 */

export interface CaseState {
  status: ReportStatus;
  agencySlug: string | null;
  unitSlug: string | null;
  /** Where a report in `tertunda` goes back to. */
  resumeStatus: ReportStatus | null;
}

export type StepInput =
  | { step: 'verify'; kind: ReportKind; weight: ReportWeight; anonim?: boolean | undefined; rahasia?: boolean | undefined; note?: string | undefined }
  | { step: 'reweigh'; weight: ReportWeight; note?: string | undefined }
  | { step: 'dispose'; agency: string; note?: string | undefined }
  | { step: 'assign'; unit: string; note?: string | undefined }
  | { step: 'return'; reason: string }
  | { step: 'request_info'; message: string }
  | { step: 'answer'; text: string }
  | { step: 'close'; reason: 'puas' | 'debat_kusir' | 'selesai'; note?: string | undefined }
  | { step: 'reject'; reason: string }
  | { step: 'archive'; reason: string };

export interface CaseUpdate {
  status?: ReportStatus;
  kind?: ReportKind;
  weight?: ReportWeight;
  anonim?: boolean;
  rahasia?: boolean;
  agencySlug?: string | null;
  unitSlug?: string | null;
  resumeStatus?: ReportStatus | null;
}

export interface StepPlan {
  from: ReportStatus;
  to: ReportStatus;
  update: CaseUpdate;
  /** The event's type and why; the actor and time are the caller's. */
  event: { type: string; reason?: string | undefined; data: Record<string, unknown> };
  /** What the reporter is told, if anything; `thread` marks the text that goes with it (an answer, a question). */
  notify?: { kind: NotificationKind; thread?: 'answer' | 'question' };
  /**
   * What happens to the regulatory clocks: `meet` ends a clock as done (on time or late, said in the
   * event), `stop` ends it as moot, `start` (re)starts one from now, `pause` holds every running one.
   */
  clocks: { meet?: ClockName[]; stop?: ClockName[]; start?: ClockName[]; pause?: boolean; reweigh?: ReportWeight };
}

const ALL_CLOCKS: ClockName[] = ['verification', 'follow_up', 'auto_close'];

/** Statuses before any agency has the report: where a rejection is still possible. */
const BEFORE_DISPOSITION: readonly ReportStatus[] = ['belum_terverifikasi', 'terverifikasi', 'bukan_wewenang'];

/** From which statuses each step may be taken. */
export const STEP_FROM: Record<Step, readonly ReportStatus[]> = {
  verify: ['belum_terverifikasi'],
  reweigh: ['terverifikasi', 'terdisposisi', 'sedang_diproses', 'tertunda', 'bukan_wewenang'],
  dispose: ['terverifikasi', 'bukan_wewenang'],
  assign: ['terdisposisi', 'sedang_diproses'],
  return: ['terdisposisi'],
  request_info: ['belum_terverifikasi', 'terverifikasi', 'terdisposisi', 'sedang_diproses'],
  answer: ['terdisposisi', 'sedang_diproses'],
  close: ['terdisposisi', 'sedang_diproses'],
  reject: BEFORE_DISPOSITION,
  archive: ['belum_terverifikasi', 'terverifikasi', 'terdisposisi', 'sedang_diproses', 'selesai', 'tertunda', 'bukan_wewenang', 'tidak_dapat_diproses'],
};

export class IllegalStepError extends Error {
  readonly code = 'illegal_transition';
  constructor(
    readonly step: Step,
    readonly status: ReportStatus,
  ) {
    super(`a report in status ${status} cannot take the step ${step}`);
    this.name = 'IllegalStepError';
  }
}

export function planStep(state: CaseState, input: StepInput): StepPlan {
  const from = state.status;
  // A rejection waits for no reporter: one in `tertunda` before its disposition may be rejected too.
  const effective = input.step === 'reject' && from === 'tertunda' && state.resumeStatus ? state.resumeStatus : from;
  if (!STEP_FROM[input.step].includes(effective)) throw new IllegalStepError(input.step, from);
  const plan = (to: ReportStatus, update: CaseUpdate, event: StepPlan['event'], clocks: StepPlan['clocks'], notify?: StepPlan['notify']): StepPlan => ({
    from,
    to,
    update: to === from ? update : { ...update, status: to },
    event,
    clocks,
    ...(notify ? { notify } : {}),
  });

  switch (input.step) {
    case 'verify':
      return plan(
        'terverifikasi',
        { kind: input.kind, weight: input.weight, ...(input.anonim === undefined ? {} : { anonim: input.anonim }), ...(input.rahasia === undefined ? {} : { rahasia: input.rahasia }) },
        { type: 'verified', reason: input.note, data: { kind: input.kind, weight: input.weight, anonim: input.anonim, rahasia: input.rahasia } },
        { meet: ['verification'] },
      );
    case 'reweigh':
      // A weight set at verification can be corrected later: the follow-up is recomputed from its disposition.
      return plan(from, { weight: input.weight }, { type: 'reweighed', reason: input.note, data: { weight: input.weight, agency: state.agencySlug } }, { reweigh: input.weight });
    case 'dispose':
      // Each disposition gives the agency its full follow-up period, a returned report's too.
      return plan('terdisposisi', { agencySlug: input.agency, unitSlug: null }, { type: 'disposed', reason: input.note, data: { agency: input.agency } }, { start: ['follow_up'] }, { kind: 'forwarded' });
    case 'assign':
      return plan(from, { unitSlug: input.unit }, { type: 'assigned', reason: input.note, data: { agency: state.agencySlug, unit: input.unit } }, {});
    case 'return':
      return plan('bukan_wewenang', { agencySlug: null, unitSlug: null }, { type: 'returned', reason: input.reason, data: { agency: state.agencySlug, unit: state.unitSlug } }, { stop: ['follow_up'] });
    case 'request_info':
      return plan('tertunda', { resumeStatus: from }, { type: 'info_requested', data: { agency: state.agencySlug } }, { pause: true }, { kind: 'needs_info', thread: 'question' });
    case 'answer':
      return plan('sedang_diproses', {}, { type: 'answered', data: { agency: state.agencySlug, unit: state.unitSlug } }, { meet: ['follow_up'], start: ['auto_close'] }, { kind: 'answered', thread: 'answer' });
    case 'close':
      return plan('selesai', {}, { type: 'closed', reason: input.note, data: { agency: state.agencySlug, by: 'admin', closeReason: input.reason } }, { stop: ALL_CLOCKS }, { kind: 'closed' });
    case 'reject':
      return plan('tidak_dapat_diproses', { resumeStatus: null }, { type: 'rejected', reason: input.reason, data: {} }, { stop: ALL_CLOCKS }, { kind: 'not_processable' });
    case 'archive':
      return plan('arsip', { resumeStatus: null }, { type: 'archived', reason: input.reason, data: { agency: state.agencySlug } }, { stop: ALL_CLOCKS });
  }
}
