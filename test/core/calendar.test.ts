import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultHolidays, loadHolidays } from '../../config/holidays.ts';
import { ConfigError } from '../../config/load.ts';
import {
  CalendarYearMissingError,
  WorkingCalendar,
  changeClockLength,
  clockWorkingDays,
  deadline,
  formatJakarta,
  pauseClock,
  resumeClock,
  startClock,
  type DeadlineDays,
} from '../../src/core/calendar.ts';

const calendar = new WorkingCalendar(defaultHolidays);
// The lengths, which are also config/schema.ts's defaults.
const DAYS: DeadlineDays = { verificationDays: 3, followUpRinganDays: 5, followUpSedangDays: 14, followUpBeratDays: 30, autoCloseDays: 10 };
const at = (iso: string) => new Date(iso);
const due = (date: string) => `${date}T23:59:59.999+07:00`;
const dueOf = (event: string, days: number) => formatJakarta(calendar.dueAt(at(event), days));

describe('holiday data (config/holidays.json)', () => {
  it('lists, for each year, valid dates of that year, none twice', () => {
    for (const y of defaultHolidays) {
      const dates = [...y.holidays, ...y.cutiBersama].map((d) => d.date);
      for (const date of dates) {
        expect(date.startsWith(`${y.year}-`), date).toBe(true);
        expect(new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10), date).toBe(date);
      }
      expect(new Set(dates).size).toBe(dates.length);
    }
  });

  it('covers 2025–2027, the decreed years citing their decree and sources, the rest marked provisional with a note', () => {
    expect(defaultHolidays.map((y) => y.year)).toEqual([2025, 2026, 2027]);
    for (const y of defaultHolidays) {
      // Every decree since 2024 lists 17 national holidays (Idul Fitri counts two).
      expect(y.holidays).toHaveLength(17);
      if (y.provisional) expect(y.note).toMatch(/provisional/i);
      else {
        expect(y.decree).toMatch(/Nomor .* Tahun/);
        expect(y.sources.length).toBeGreaterThan(0);
      }
    }
    expect(calendar.provisionalYears).toEqual([2027]);
  });
});

describe('WorkingCalendar', () => {
  it('reads instants in Jakarta time (UTC+7, no daylight saving)', () => {
    expect(calendar.jakartaDate(at('2025-07-11T16:30:00Z'))).toBe('2025-07-11'); // Friday 23:30 in Jakarta
    expect(calendar.jakartaDate(at('2025-07-11T17:30:00Z'))).toBe('2025-07-12'); // Saturday 00:30 in Jakarta
    expect(calendar.jakartaDate(at('2025-07-11T16:59:59.999Z'))).toBe('2025-07-11');
    expect(formatJakarta(calendar.endOfDay('2025-07-10'))).toBe(due('2025-07-10'));
    expect(calendar.endOfDay('2025-07-10').toISOString()).toBe('2025-07-10T16:59:59.999Z');
  });

  it('knows weekends, national holidays and cuti bersama', () => {
    expect(calendar.isWorkingDay('2025-07-11')).toBe(true); // Friday
    expect(calendar.isWorkingDay('2025-07-12')).toBe(false); // Saturday
    expect(calendar.isWorkingDay('2025-07-13')).toBe(false); // Sunday
    expect(calendar.isWorkingDay('2025-03-31')).toBe(false); // Idul Fitri 1446
    expect(calendar.isWorkingDay('2025-04-07')).toBe(false); // cuti bersama Idul Fitri
    expect(calendar.isWorkingDay('2025-08-18')).toBe(false); // cuti bersama added by the August 2025 amendment
    expect(calendar.isWorkingDay('2026-03-20')).toBe(false); // cuti bersama before Lebaran 2026
    expect(calendar.isWorkingDay('2026-03-25')).toBe(true);
  });

  it('counts working days both ways, addWorkingDays and workingDayOffset being inverses', () => {
    expect(calendar.addWorkingDays('2025-07-07', 1)).toBe('2025-07-08');
    expect(calendar.addWorkingDays('2025-07-11', 1)).toBe('2025-07-14');
    expect(calendar.addWorkingDays('2025-07-12', 0)).toBe('2025-07-14');
    expect(calendar.addWorkingDays('2025-07-14', -1)).toBe('2025-07-11');
    expect(calendar.workingDaysBetween('2025-07-07', '2025-07-14')).toBe(5);
    expect(calendar.workingDaysBetween('2025-07-14', '2025-07-07')).toBe(0);
    expect(calendar.workingDayOffset('2025-07-14', '2025-07-10')).toBe(-2); // Thursday and Friday
    // From April 2025 to June 2027: 40 working days either way stays within the years the data covers.
    const day = fc.integer({ min: 90, max: 900 }).map((n) => new Date(Date.UTC(2025, 0, 1) + n * 86_400_000).toISOString().slice(0, 10));
    fc.assert(
      fc.property(day, fc.integer({ min: -40, max: 40 }), (from, n) => {
        const to = calendar.addWorkingDays(from, n);
        expect(calendar.isWorkingDay(to)).toBe(true);
        if (n !== 0 || calendar.isWorkingDay(from)) expect(calendar.workingDayOffset(from, to)).toBe(n);
        expect(calendar.addWorkingDays(from, calendar.workingDayOffset(from, to))).toBe(to);
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['Monday 08:00 receipt: Tuesday is day 1, due at the end of Thursday', '2025-07-07T08:00:00+07:00', 3, '2025-07-10'],
    ['Friday 23:30 in Jakarta (16:30 UTC, still Friday)', '2025-07-11T23:30:00+07:00', 3, '2025-07-16'],
    ['Saturday 00:30 in Jakarta (Friday 17:30 UTC)', '2025-07-11T17:30:00Z', 3, '2025-07-16'],
    ['Friday 00:30 in Jakarta (Thursday 17:30 UTC): counted from Friday, not Thursday', '2025-07-10T17:30:00Z', 3, '2025-07-16'],
    ['Thursday 23:59:59.999 in Jakarta: counted from Thursday', '2025-07-10T16:59:59.999Z', 3, '2025-07-15'],
    ['year end: Christmas, cuti bersama 26 December, New Year', '2025-12-24T10:00:00+07:00', 3, '2025-12-31'],
    ['year end: received 30 December, due in January', '2025-12-30T10:00:00+07:00', 3, '2026-01-05'],
    ['year end: ringan follow-up across it', '2025-12-23T10:00:00+07:00', 5, '2026-01-02'],
    ['year end: auto-close across it', '2025-12-22T10:00:00+07:00', 10, '2026-01-08'],
    ['Lebaran 2025: sedang follow-up over Nyepi, Idul Fitri, its cuti bersama and Good Friday', '2025-03-26T14:00:00+07:00', 14, '2025-04-25'],
    ['Lebaran 2026: sedang follow-up over Nyepi, Idul Fitri, its cuti bersama and Good Friday', '2026-03-16T09:00:00+07:00', 14, '2026-04-13'],
    ['Lebaran 2026: verification received just before it', '2026-03-17T09:00:00+07:00', 3, '2026-03-27'],
    ['berat follow-up over the 18 August 2025 cuti bersama', '2025-07-07T10:00:00+07:00', 30, '2025-08-19'],
  ])('%s', (_, event, days, dueDay) => {
    expect(dueOf(event, days)).toBe(due(dueDay));
  });

  it('falls due at the end of a working day that is exactly n working days after the event day', () => {
    const instant = fc.date({ min: at('2025-01-01T00:00:00+07:00'), max: at('2027-09-30T23:59:59.999+07:00'), noInvalidDate: true });
    fc.assert(
      fc.property(instant, fc.integer({ min: 1, max: 30 }), (event, n) => {
        const dueAt = calendar.dueAt(event, n);
        const dueDay = calendar.jakartaDate(dueAt);
        expect(formatJakarta(dueAt)).toBe(due(dueDay));
        expect(calendar.isWorkingDay(dueDay)).toBe(true);
        expect(calendar.workingDaysBetween(calendar.jakartaDate(event), dueDay)).toBe(n);
      }),
      { numRuns: 300 },
    );
  });

  it('counts the remaining working days after today, 0 on the due day and once due', () => {
    const dueAt = calendar.dueAt(at('2025-07-07T08:00:00+07:00'), 3); // end of Thursday 10 July
    expect(calendar.remainingWorkingDays(dueAt, at('2025-07-07T10:00:00+07:00'))).toBe(3);
    expect(calendar.remainingWorkingDays(dueAt, at('2025-07-09T23:00:00+07:00'))).toBe(1);
    expect(calendar.remainingWorkingDays(dueAt, at('2025-07-10T12:00:00+07:00'))).toBe(0);
    expect(calendar.remainingWorkingDays(dueAt, at('2025-07-11T00:00:00+07:00'))).toBe(0);
    expect(calendar.remainingWorkingDays(dueAt, at('2025-08-01T00:00:00+07:00'))).toBe(0);
  });

  it('refuses, loudly, a year the data does not cover', () => {
    expect(() => calendar.isWorkingDay('2028-01-03')).toThrow(CalendarYearMissingError);
    expect(() => calendar.isWorkingDay('2024-12-31')).toThrow(/no holiday data for 2024/);
    // A clock that runs past the last covered year throws instead of counting 2028 as weekends only.
    expect(() => calendar.dueAt(at('2027-12-20T10:00:00+07:00'), 30)).toThrow(/no holiday data for 2028.*LAPOR_HOLIDAYS_FILE/);
    try {
      calendar.addWorkingDays('2028-02-01', 1);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'LAPOR_CALENDAR_YEAR_MISSING', year: 2028, covered: [2025, 2026, 2027] });
    }
  });

  it('rejects malformed dates and counts', () => {
    expect(() => calendar.isWorkingDay('2025-02-30')).toThrow(RangeError);
    expect(() => calendar.isWorkingDay('25-7-1')).toThrow(RangeError);
    expect(() => calendar.addWorkingDays('2025-07-07', 1.5)).toThrow(RangeError);
    expect(() => calendar.jakartaDate(new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe('pauses (tertunda)', () => {
  const instant = fc.date({ min: at('2025-01-01T00:00:00+07:00'), max: at('2026-12-31T23:59:59.999+07:00'), noInvalidDate: true });

  it('a pause and return on the same day changes nothing, breached or not', () => {
    fc.assert(
      fc.property(instant, fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 80 * 86_400_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (event, n, pauseAfterMs, laterInDay) => {
        const dueAt = calendar.dueAt(event, n);
        const pausedAt = new Date(event.getTime() + pauseAfterMs);
        const endOfPauseDay = calendar.endOfDay(calendar.jakartaDate(pausedAt)).getTime();
        const resumedAt = new Date(pausedAt.getTime() + Math.floor((endOfPauseDay - pausedAt.getTime()) * laterInDay));
        const remaining = calendar.remainingAtPause(dueAt, pausedAt);
        expect(calendar.resumedDueAt(remaining, resumedAt)).toEqual(dueAt);
        expect(remaining < 0).toBe(pausedAt > dueAt); // a breached clock stays breached
      }),
      { numRuns: 500 },
    );
  });

  it('a pause of k working days moves the due date k working days later', () => {
    fc.assert(
      fc.property(instant, fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 29 }), fc.integer({ min: 0, max: 20 }), (event, n, pauseAfter, k) => {
        const dueAt = calendar.dueAt(event, n);
        const pauseDay = calendar.addWorkingDays(calendar.jakartaDate(event), Math.min(pauseAfter, n));
        const pausedAt = at(`${pauseDay}T11:00:00+07:00`);
        const resumedAt = at(`${calendar.addWorkingDays(pauseDay, k)}T15:00:00+07:00`);
        const resumed = calendar.resumedDueAt(calendar.remainingAtPause(dueAt, pausedAt), resumedAt);
        expect(calendar.jakartaDate(resumed)).toBe(calendar.addWorkingDays(calendar.jakartaDate(dueAt), k));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the working days left: a sedang follow-up paused 3 working days is due 3 working days later', () => {
    let clock = startClock(calendar, 'follow_up', at('2025-07-07T10:00:00+07:00'), 14);
    expect(formatJakarta(clock.dueAt!)).toBe(due('2025-07-25'));
    clock = pauseClock(calendar, clock, at('2025-07-16T10:00:00+07:00'));
    expect(clock.remainingAtPause).toBe(7); // 17, 18, 21, 22, 23, 24, 25 July
    expect(deadline(calendar, clock, at('2025-07-18T10:00:00+07:00'))).toEqual({
      clock: 'follow_up',
      dueAt: null,
      paused: true,
      breached: false,
      remainingWorkingDays: 7,
    });
    clock = resumeClock(calendar, clock, at('2025-07-21T09:00:00+07:00')); // 17, 18, 21 July away
    expect(formatJakarta(clock.dueAt!)).toBe(due('2025-07-30'));
    expect(calendar.workingDaysBetween('2025-07-25', '2025-07-30')).toBe(3);
  });

  it('with nothing left, falls due at the end of the return day (the next working day when it returns on a day off)', () => {
    const dueAt = calendar.endOfDay('2025-07-11'); // Friday
    const remaining = calendar.remainingAtPause(dueAt, at('2025-07-11T14:00:00+07:00'));
    expect(remaining).toBe(0);
    expect(formatJakarta(calendar.resumedDueAt(remaining, at('2025-07-15T08:00:00+07:00')))).toBe(due('2025-07-15'));
    expect(formatJakarta(calendar.resumedDueAt(remaining, at('2025-07-12T08:00:00+07:00')))).toBe(due('2025-07-14'));
  });

  it('does not clear a breach: a clock paused after its due date returns still overdue by as much', () => {
    const dueAt = calendar.endOfDay('2025-07-08'); // Tuesday
    const clock = pauseClock(calendar, { clock: 'verification', startedAt: at('2025-07-03T10:00:00+07:00'), workingDays: 3, dueAt, pausedAt: null, remainingAtPause: null }, at('2025-07-10T09:00:00+07:00'));
    expect(clock.remainingAtPause).toBe(-2); // Tuesday and Wednesday went by
    expect(deadline(calendar, clock, at('2025-07-14T09:00:00+07:00'))).toMatchObject({ paused: true, breached: true, remainingWorkingDays: 0 });
    const resumed = resumeClock(calendar, clock, at('2025-07-14T09:00:00+07:00'));
    expect(formatJakarta(resumed.dueAt!)).toBe(due('2025-07-10')); // two working days before the return day
    expect(deadline(calendar, resumed, at('2025-07-14T09:00:00+07:00'))).toMatchObject({ breached: true, remainingWorkingDays: 0 });
  });
});

describe('clocks', () => {
  it('takes its length from the configured days, the follow-up by weight', () => {
    expect(clockWorkingDays('verification', 'berat', DAYS)).toBe(3);
    expect(clockWorkingDays('follow_up', 'ringan', DAYS)).toBe(5);
    expect(clockWorkingDays('follow_up', 'sedang', DAYS)).toBe(14);
    expect(clockWorkingDays('follow_up', 'berat', DAYS)).toBe(30);
    expect(clockWorkingDays('auto_close', 'ringan', DAYS)).toBe(10);
  });

  it('shows the detail view entry: due, remaining, breached against the current time', () => {
    const clock = startClock(calendar, 'verification', at('2025-07-07T08:00:00+07:00'), 3);
    expect(deadline(calendar, clock, at('2025-07-07T09:00:00+07:00'))).toEqual({
      clock: 'verification',
      dueAt: '2025-07-10T23:59:59.999+07:00',
      paused: false,
      breached: false,
      remainingWorkingDays: 3,
    });
    expect(deadline(calendar, clock, at('2025-07-10T23:59:59.999+07:00'))).toMatchObject({ breached: false, remainingWorkingDays: 0 });
    expect(deadline(calendar, clock, at('2025-07-11T00:00:00+07:00'))).toMatchObject({ breached: true, remainingWorkingDays: 0 });
  });

  it('a weight change from ringan to berat recomputes the follow-up from the disposition', () => {
    const disposition = at('2025-07-07T10:00:00+07:00');
    const ringan = startClock(calendar, 'follow_up', disposition, clockWorkingDays('follow_up', 'ringan', DAYS));
    expect(formatJakarta(ringan.dueAt!)).toBe(due('2025-07-14'));
    const berat = changeClockLength(calendar, ringan, clockWorkingDays('follow_up', 'berat', DAYS));
    expect(berat.dueAt).toEqual(calendar.dueAt(disposition, 30));
    expect(formatJakarta(berat.dueAt!)).toBe(due('2025-08-19'));
    // And back: the same as if it had been ringan all along.
    expect(changeClockLength(calendar, berat, 5).dueAt).toEqual(ringan.dueAt);
  });

  it('a weight change keeps the working days the clock spent paused, and works while paused', () => {
    const disposition = at('2025-07-07T10:00:00+07:00');
    let clock = startClock(calendar, 'follow_up', disposition, 5);
    clock = pauseClock(calendar, clock, at('2025-07-09T10:00:00+07:00'));
    const pausedThenBerat = changeClockLength(calendar, clock, 30);
    expect(formatJakarta(resumeClock(calendar, pausedThenBerat, at('2025-07-09T16:00:00+07:00')).dueAt!)).toBe(due('2025-08-19'));
    clock = resumeClock(calendar, clock, at('2025-07-11T10:00:00+07:00')); // paused 10 and 11 July
    expect(formatJakarta(clock.dueAt!)).toBe(due('2025-07-16'));
    expect(formatJakarta(changeClockLength(calendar, clock, 30).dueAt!)).toBe(due('2025-08-21'));
  });
});

describe('loadHolidays (LAPOR_HOLIDAYS_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lapor-holidays-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, content: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
  const year2028 = {
    year: 2028,
    decree: 'Keputusan Bersama Nomor 1 Tahun 2027, Nomor 1 Tahun 2027, Nomor 1 Tahun 2027 (test data)',
    holidays: [{ date: '2028-01-03', name: 'test holiday' }],
    cutiBersama: [],
  };

  it('returns the built-in years without a file', () => {
    expect(loadHolidays().map((y) => y.year)).toEqual([2025, 2026, 2027]);
  });

  it('adds a year, and replaces a year wholly', () => {
    const replaced2026 = { ...year2028, year: 2026, holidays: [{ date: '2026-07-01', name: 'only day off' }] };
    const years = loadHolidays(write('valid.json', { years: [year2028, replaced2026] }));
    expect(years.map((y) => y.year)).toEqual([2025, 2026, 2027, 2028]);
    const merged = new WorkingCalendar(years);
    expect(merged.isWorkingDay('2028-01-03')).toBe(false);
    expect(merged.isWorkingDay('2028-01-04')).toBe(true);
    expect(merged.isWorkingDay('2026-07-01')).toBe(false);
    expect(merged.isWorkingDay('2026-03-23')).toBe(true); // the built-in 2026 cuti bersama are gone
    expect(merged.isWorkingDay('2025-03-31')).toBe(false); // 2025 untouched
  });

  it.each([
    ['a date outside its year', { years: [{ ...year2028, holidays: [{ date: '2027-12-31', name: 'x' }] }] }, /years\.0\.holidays\.0\.date: 2027-12-31 is not in 2028/],
    ['an impossible date', { years: [{ ...year2028, holidays: [{ date: '2028-02-30', name: 'x' }] }] }, /holidays\.0\.date: not a date in the calendar/],
    ['a day listed twice', { years: [{ ...year2028, cutiBersama: [{ date: '2028-01-03', name: 'x' }] }] }, /cutiBersama\.0\.date: 2028-01-03 is listed twice/],
    ['a year listed twice', { years: [year2028, year2028] }, /years\.1\.year: 2028 is listed twice/],
    ['an unknown field', { years: [{ ...year2028, holidayz: [] }] }, /years\.0/],
    ['no decree and not provisional', { years: [{ ...year2028, decree: null }] }, /years\.0\.decree/],
    ['a bare list instead of { years }', [year2028], /\(root\)/],
    ['invalid JSON', '{ "years": [', /cannot read/],
  ])('rejects %s, naming LAPOR_HOLIDAYS_FILE', (_, content, message) => {
    const file = write('bad.json', content);
    expect(() => loadHolidays(file)).toThrow(ConfigError);
    expect(() => loadHolidays(file)).toThrow(message);
    expect(() => loadHolidays(file)).toThrow(/LAPOR_HOLIDAYS_FILE/);
  });

  it('rejects a file it cannot read', () => {
    expect(() => loadHolidays(join(dir, 'missing.json'))).toThrow(/LAPOR_HOLIDAYS_FILE: cannot read/);
  });
});

describe('a calendar that must keep working when its data runs out', () => {
  it('counts a missing year by weekends only, and says so once per year', () => {
    const missing: number[] = [];
    const lenient = new WorkingCalendar(loadHolidays().filter((y) => y.year <= 2027), { onMissingYear: (err) => missing.push(err.year) });
    // 2028-01-03 is a Monday: three working days later is Thursday, holidays unknown.
    expect(lenient.addWorkingDays('2028-01-03', 3)).toBe('2028-01-06');
    expect(lenient.isWorkingDay('2028-01-08')).toBe(false); // a Saturday is still not one
    lenient.addWorkingDays('2028-02-01', 5);
    expect(missing).toEqual([2028]);
    // Without the option the same question is an error naming what to add.
    expect(() => new WorkingCalendar(loadHolidays()).addWorkingDays('2028-01-03', 3)).toThrow(/LAPOR_HOLIDAYS_FILE/);
  });
});
