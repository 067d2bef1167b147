// National holidays and cuti bersama: the days that are not working days besides Saturdays and Sundays
// (src/core/calendar.ts). Each year comes from its joint decree (SKB) of the Minister of Religious Affairs,
// the Minister of Manpower and the Minister of State Apparatus (PANRB), signed in the year before.
//
// The built-in years are in holidays.json. `LAPOR_HOLIDAYS_FILE` names a file of the same shape that adds
// a year (2028 once its decree is out) or replaces one (a decree amended mid-year, as 2025's was to add
// 18 August); a year in that file replaces the built-in one wholly, so list all of its days.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import data from './holidays.json' with { type: 'json' };
import { ConfigError } from './load.ts';

const IsoDateSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date written YYYY-MM-DD')
  .refine((s) => new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), 'not a date in the calendar');

const DayOffSchema = z.strictObject({
  date: IsoDateSchema,
  name: z.string().min(1),
});

export const HolidayYearSchema = z
  .strictObject({
    year: z.number().int().min(2000).max(2100),
    /** The decree's numbers, title and date; null only for a provisional year no decree covers yet. */
    decree: z.string().min(1).nullable(),
    /** True while the days are computed rather than decreed: replace the year when its decree is out. */
    provisional: z.boolean().default(false),
    note: z.string().min(1).optional(),
    sources: z.array(z.url()).default([]),
    holidays: z.array(DayOffSchema),
    cutiBersama: z.array(DayOffSchema),
  })
  .superRefine((y, ctx) => {
    if (y.decree === null && !y.provisional) {
      ctx.addIssue({ code: 'custom', path: ['decree'], message: 'a year without a decree must be marked provisional (with a note saying why)' });
    }
    const seen = new Set<string>();
    for (const list of ['holidays', 'cutiBersama'] as const) {
      y[list].forEach((day, i) => {
        if (!day.date.startsWith(`${y.year}-`)) {
          ctx.addIssue({ code: 'custom', path: [list, i, 'date'], message: `${day.date} is not in ${y.year}` });
        }
        if (seen.has(day.date)) ctx.addIssue({ code: 'custom', path: [list, i, 'date'], message: `${day.date} is listed twice` });
        seen.add(day.date);
      });
    }
  });

export const HolidaysFileSchema = z
  .strictObject({ years: z.array(HolidayYearSchema).min(1) })
  .superRefine((file, ctx) => {
    const seen = new Set<number>();
    file.years.forEach((y, i) => {
      if (seen.has(y.year)) ctx.addIssue({ code: 'custom', path: ['years', i, 'year'], message: `${y.year} is listed twice` });
      seen.add(y.year);
    });
  });

export type HolidayYear = z.infer<typeof HolidayYearSchema>;
export type HolidaysFile = z.infer<typeof HolidaysFileSchema>;

/** The built-in years (2025–2026 from their decrees, 2027 provisional), sorted by year. */
export const defaultHolidays: readonly HolidayYear[] = HolidaysFileSchema.parse(data).years.toSorted((a, b) => a.year - b.year);

/**
 * The built-in years, with those of `file` (`LAPOR_HOLIDAYS_FILE`) added or replacing theirs, sorted by
 * year. Throws `ConfigError` naming the variable when the file cannot be read or does not fit the shape.
 */
export function loadHolidays(file?: string): HolidayYear[] {
  if (!file) return [...defaultHolidays];
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError([`LAPOR_HOLIDAYS_FILE: cannot read ${file}: ${(err as Error).message}`]);
  }
  const parsed = HolidaysFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `LAPOR_HOLIDAYS_FILE ${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  const byYear = new Map(defaultHolidays.map((y) => [y.year, y]));
  for (const y of parsed.data.years) byYear.set(y.year, y);
  return [...byYear.values()].sort((a, b) => a.year - b.year);
}
