/**
 * Named points where a test may have this process killed outright (SIGKILL, no cleanup), to prove
 * what a crash at exactly that moment leaves behind: `LAPOR_TEST_CRASH_AT=<point>`, refused outside
 * `LAPOR_ENV=test` (config/schema.ts). The points are the gaps between two durable steps.
 */
export const CRASH_POINTS = [
  /** A batch of inbound messages is in Redis; nobody upstream has been acknowledged yet. */
  'inbound-stored',
  /** An inbound job's new reports are committed; its per-message commands, effects and notify job are not. */
  'intake-filed',
  /** Intake added the notify jobs; the inbound job is not completed. */
  'intake-published',
  /** Notify handed a batch to the provider; the rows are not marked sent. */
  'notify-sent',
  /** A page of X mentions is in the inbound queue; the poll's cursor has not moved. */
  'x-page-stored',
  /** A mail is in the inbound queue; it is not yet flagged nor moved out of the mailbox. */
  'mail-stored',
  /** A stored mail is flagged \Seen; it is not yet moved to the processed folder. */
  'mail-flagged',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

let armed: CrashPoint | undefined;

export function armCrashPoint(point: CrashPoint | undefined): void {
  armed = point;
}

export function crashPoint(point: CrashPoint): void {
  if (armed === point) process.kill(process.pid, 'SIGKILL');
}
