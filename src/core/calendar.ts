import type { ReportWeight } from './report.ts';

/**
 * Working days in Asia/Jakarta, and the regulatory clocks counted in them (issue #13).
 *
 * Saturdays, Sundays, national holidays and cuti bersama are not working days; the holidays are data
 * (config/holidays.ts), handed to the constructor, so this file does no I/O. Dates are `YYYY-MM-DD`
 * strings of the Jakarta calendar; instants are `Date`s. Jakarta is UTC+7 all year (Indonesia has no
 * daylight saving time), so the conversion is a fixed offset.
 *
 * Counting rules: the day of the event never counts (received Monday 08:00, Tuesday is the first
 * working day), and a clock falls due at the end of its last working day, 23:59:59.999 Jakarta time.
 *
 * A date in a year the data does not cover throws `CalendarYearMissingError` rather than being treated
 * as weekends-only: a missing 2028 table would otherwise make every deadline that year silently early
 * by the holidays it lacks. The error names `LAPOR_HOLIDAYS_FILE`, which adds the year.
 */

const JAKARTA_OFFSET_MS = 7 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** One year of days off, as config/holidays.ts provides it (only the fields the calendar reads). */
export interface CalendarYear {
  readonly year: number;
  readonly provisional?: boolean;
  readonly holidays: readonly { readonly date: string; readonly name: string }[];
  readonly cutiBersama: readonly { readonly date: string; readonly name: string }[];
}

/** A date was asked about in a year with no holiday data: add the year with `LAPOR_HOLIDAYS_FILE`. */
export class CalendarYearMissingError extends Error {
  readonly code = 'LAPOR_CALENDAR_YEAR_MISSING';
  constructor(
    readonly year: number,
    readonly covered: readonly number[],
  ) {
    super(
      `no holiday data for ${year} (the calendar covers ${covered.join(', ') || 'no year'}): ` +
        `add ${year}'s national holidays and cuti bersama with LAPOR_HOLIDAYS_FILE (shape: config/holidays.json)`,
    );
    this.name = 'CalendarYearMissingError';
  }
}

/** Days since 1970-01-01 of a `YYYY-MM-DD` date; throws `RangeError` on anything else. */
function dayNumber(date: string): number {
  const m = DATE_RE.exec(date);
  const ms = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : Number.NaN;
  if (!m || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== date) {
    throw new RangeError(`not a date written YYYY-MM-DD: ${JSON.stringify(date)}`);
  }
  return ms / DAY_MS;
}

function dateOf(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

function checkInstant(instant: Date): number {
  const t = instant.getTime();
  if (Number.isNaN(t)) throw new RangeError('invalid Date');
  return t;
}

function checkCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} must be a whole number of working days, got ${n}`);
}

/** An instant as Jakarta wall-clock time with its offset: `2025-04-25T23:59:59.999+07:00`. */
export function formatJakarta(instant: Date): string {
  return new Date(checkInstant(instant) + JAKARTA_OFFSET_MS).toISOString().replace('Z', '+07:00');
}

/**
 * Working-day arithmetic over the years it is given.
 *
 * ```ts
 * const calendar = new WorkingCalendar(loadHolidays(config.holidaysFile));
 * calendar.dueAt(new Date('2025-07-07T08:00:00+07:00'), 3); // end of Thursday 2025-07-10
 * ```
 */
export class WorkingCalendar {
  readonly #daysOff = new Map<number, string>();
  readonly #years: ReadonlySet<number>;
  /** Years whose days are computed rather than decreed (see config/holidays.json). */
  readonly provisionalYears: readonly number[];

  /** Set for a running gateway: a missing year is counted by weekends only, and reported, rather than thrown. */
  readonly #onMissingYear: ((error: CalendarYearMissingError) => void) | undefined;
  readonly #reported = new Set<number>();

  /**
   * @param options.onMissingYear Without it (the default, and in tests), a date in a year the data
   *   does not cover throws. With it, the gateway keeps working when the data runs out (a deadline
   *   then counts weekends only, a few days early around that year's holidays) and this is called
   *   once per missing year, so the operators hear of it rather than every step failing.
   */
  constructor(years: readonly CalendarYear[], options: { onMissingYear?: (error: CalendarYearMissingError) => void } = {}) {
    this.#onMissingYear = options.onMissingYear;
    this.#years = new Set(years.map((y) => y.year));
    this.provisionalYears = years.filter((y) => y.provisional).map((y) => y.year).sort((a, b) => a - b);
    for (const y of years) {
      for (const day of [...y.holidays, ...y.cutiBersama]) this.#daysOff.set(dayNumber(day.date), day.name);
    }
  }

  /** The years the calendar can answer for, ascending. */
  get years(): number[] {
    return [...this.#years].sort((a, b) => a - b);
  }

  /** The Jakarta calendar date (`YYYY-MM-DD`) of an instant: 2025-07-11T17:30Z is Saturday 2025-07-12. */
  jakartaDate(instant: Date): string {
    return new Date(checkInstant(instant) + JAKARTA_OFFSET_MS).toISOString().slice(0, 10);
  }

  /** The last instant of a Jakarta date, `YYYY-MM-DDT23:59:59.999+07:00`: when a clock due that day falls due. */
  endOfDay(date: string): Date {
    return new Date((dayNumber(date) + 1) * DAY_MS - JAKARTA_OFFSET_MS - 1);
  }

  /** False on Saturdays, Sundays, national holidays and cuti bersama. Throws `CalendarYearMissingError` outside the data. */
  isWorkingDay(date: string): boolean {
    return this.#isWorking(dayNumber(date));
  }

  /**
   * The n-th working day strictly after `fromDate` (n > 0), or strictly before it (n < 0). With n = 0,
   * `fromDate` itself when it is a working day, else the first working day after it.
   */
  addWorkingDays(fromDate: string, n: number): string {
    checkCount(n, 'n');
    return dateOf(this.#add(dayNumber(fromDate), n));
  }

  /** How many working days d there are with `afterDate` < d <= `uptoDate` (0 when `uptoDate` is not later). */
  workingDaysBetween(afterDate: string, uptoDate: string): number {
    const from = dayNumber(afterDate);
    const to = dayNumber(uptoDate);
    let count = 0;
    for (let d = from + 1; d <= to; d++) if (this.#isWorking(d)) count++;
    return count;
  }

  /**
   * The signed distance in working days from `fromDate` to `toDate`, the inverse of `addWorkingDays`:
   * for a working day `toDate`, `addWorkingDays(fromDate, workingDayOffset(fromDate, toDate)) === toDate`.
   * Ahead, it counts the working days in (fromDate, toDate]; behind, minus those in [toDate, fromDate).
   */
  workingDayOffset(fromDate: string, toDate: string): number {
    const from = dayNumber(fromDate);
    const to = dayNumber(toDate);
    if (to >= from) return this.workingDaysBetween(fromDate, toDate);
    let count = 0;
    for (let d = to; d < from; d++) if (this.#isWorking(d)) count++;
    return -count;
  }

  /** When a clock of `workingDays` started by an event at `eventInstant` falls due: the end of its last working day. */
  dueAt(eventInstant: Date, workingDays: number): Date {
    return this.endOfDay(this.addWorkingDays(this.jakartaDate(eventInstant), workingDays));
  }

  /**
   * The working days a clock due at `dueAt` keeps when paused at `pausedAt`: those after the pause day up
   * to the due day. 0 when paused on its due day. Negative when it was already breached: minus the working
   * days from the due day up to the day before the pause, so a pause never clears a breach.
   */
  remainingAtPause(dueAt: Date, pausedAt: Date): number {
    return this.workingDayOffset(this.jakartaDate(pausedAt), this.jakartaDate(dueAt));
  }

  /**
   * When a clock that kept `remaining` working days falls due after resuming at `resumedAt`: the end of
   * the `remaining`-th working day after the resume day. With 0 left, the end of the resume day (of the
   * next working day when it resumes on a day off). A negative remainder stays in the past (breached).
   * Resuming on the day of the pause gives back the due date the clock had.
   */
  resumedDueAt(remaining: number, resumedAt: Date): Date {
    return this.endOfDay(this.addWorkingDays(this.jakartaDate(resumedAt), remaining));
  }

  /** The working days after today up to the due day: 0 on the due day and once due. */
  remainingWorkingDays(dueAt: Date, now: Date): number {
    if (checkInstant(now) > checkInstant(dueAt)) return 0;
    return this.workingDaysBetween(this.jakartaDate(now), this.jakartaDate(dueAt));
  }

  #isWorking(day: number): boolean {
    const year = new Date(day * DAY_MS).getUTCFullYear();
    if (!this.#years.has(year)) {
      const error = new CalendarYearMissingError(year, this.years);
      if (!this.#onMissingYear) throw error;
      if (!this.#reported.has(year)) {
        this.#reported.add(year);
        this.#onMissingYear(error);
      }
    }
    const weekday = (day + 4) % 7; // 1970-01-01 was a Thursday; 0 is Sunday
    if (weekday === 0 || weekday === 6) return false;
    return !this.#daysOff.has(day);
  }

  #add(from: number, n: number): number {
    if (n === 0) {
      let d = from;
      while (!this.#isWorking(d)) d++;
      return d;
    }
    const step = n > 0 ? 1 : -1;
    let d = from;
    for (let left = Math.abs(n); left > 0; ) {
      d += step;
      if (this.#isWorking(d)) left--;
    }
    return d;
  }
}

// ---- Clocks -------------------------------------------------------------------------------------------

/** The regulatory clocks: verification after receipt, follow-up after disposition, auto-close after the answer. */
export const CLOCK_NAMES = ['verification', 'follow_up', 'auto_close'] as const;
export type ClockName = (typeof CLOCK_NAMES)[number];

/** The clock lengths in working days (config `deadlines.*`). */
export interface DeadlineDays {
  verificationDays: number;
  followUpRinganDays: number;
  followUpSedangDays: number;
  followUpBeratDays: number;
  autoCloseDays: number;
}

/** The length of a clock; the follow-up depends on the report's weight. */
export function clockWorkingDays(clock: ClockName, weight: ReportWeight, days: DeadlineDays): number {
  switch (clock) {
    case 'verification':
      return days.verificationDays;
    case 'auto_close':
      return days.autoCloseDays;
    case 'follow_up':
      return { ringan: days.followUpRinganDays, sedang: days.followUpSedangDays, berat: days.followUpBeratDays }[weight];
  }
}

/** A clock as stored: running (`dueAt` set) or paused while the report is `tertunda` (`pausedAt` set). */
export interface ClockState {
  clock: ClockName;
  /** The event that started it: receipt, disposition or the agency's answer. */
  startedAt: Date;
  workingDays: number;
  dueAt: Date | null;
  pausedAt: Date | null;
  /** Working days kept at the pause (`WorkingCalendar.remainingAtPause`); negative when paused breached. */
  remainingAtPause: number | null;
}

/** One entry of a report's `deadlines` in the detail view. */
export interface Deadline {
  clock: ClockName;
  /** `YYYY-MM-DDT23:59:59.999+07:00`; null while paused. */
  dueAt: string | null;
  paused: boolean;
  /** Past its due instant now; a paused clock stays as it was when paused. */
  breached: boolean;
  /** Working days after today up to the due day, 0 once due; a paused clock shows what it kept. */
  remainingWorkingDays: number;
}

/** A clock started by the event at `startedAt`. */
export function startClock(calendar: WorkingCalendar, clock: ClockName, startedAt: Date, workingDays: number): ClockState {
  return { clock, startedAt, workingDays, dueAt: calendar.dueAt(startedAt, workingDays), pausedAt: null, remainingAtPause: null };
}

/** The report went `tertunda`: the clock keeps its remaining working days. Pausing a paused clock changes nothing. */
export function pauseClock(calendar: WorkingCalendar, state: ClockState, at: Date): ClockState {
  if (state.dueAt === null) return state;
  return { ...state, dueAt: null, pausedAt: at, remainingAtPause: calendar.remainingAtPause(state.dueAt, at) };
}

/** The report came back: the kept working days count again from `at`. Resuming a running clock changes nothing. */
export function resumeClock(calendar: WorkingCalendar, state: ClockState, at: Date): ClockState {
  if (state.dueAt !== null || state.remainingAtPause === null) return state;
  return { ...state, dueAt: calendar.resumedDueAt(state.remainingAtPause, at), pausedAt: null, remainingAtPause: null };
}

/**
 * A new length for the clock (the report's weight changed): the due date is recomputed from the start
 * event, still extended by every working day the clock spent paused. Shifting by the difference gives
 * exactly that, running or paused.
 */
export function changeClockLength(calendar: WorkingCalendar, state: ClockState, workingDays: number): ClockState {
  const delta = workingDays - state.workingDays;
  if (state.dueAt === null) return { ...state, workingDays, remainingAtPause: (state.remainingAtPause ?? 0) + delta };
  const dueDay = calendar.addWorkingDays(calendar.jakartaDate(state.dueAt), delta);
  return { ...state, workingDays, dueAt: calendar.endOfDay(dueDay) };
}

/** The detail view's entry for a clock at `now`. */
export function deadline(calendar: WorkingCalendar, state: ClockState, now: Date): Deadline {
  if (state.dueAt === null) {
    const kept = state.remainingAtPause ?? 0;
    return { clock: state.clock, dueAt: null, paused: true, breached: kept < 0, remainingWorkingDays: Math.max(0, kept) };
  }
  return {
    clock: state.clock,
    dueAt: formatJakarta(state.dueAt),
    paused: false,
    breached: now.getTime() > state.dueAt.getTime(),
    remainingWorkingDays: calendar.remainingWorkingDays(state.dueAt, now),
  };
}
