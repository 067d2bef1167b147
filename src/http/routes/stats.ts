import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { STATS_MAX_DAYS, UNDISPOSED_NAME, agencyStats, isIsoDate, windowProblem, type AgencyStats, type StatsWindow } from '../../store/stats.ts';
import type { HttpDeps } from '../app.ts';

/**
 * Statistics per agency, public (issue #13 point 6): counts only, as JSON and as open-data CSV. The
 * definitions are src/store/stats.ts's; the description below says the same to API readers.
 */

const DEFINITIONS =
  `Counts only, for every agency (sorted by name, zeros included). An event counts in the window of the Asia/Jakarta date it happened, ` +
  `from 00:00 on from to 24:00 on to in UTC+7 (an automatic close on the date the deadline sweep made it as of). ` +
  `Reports marked rahasia are counted like any other. ` +
  `received: the agency's dispositions (reports forwarded to it; forwarded again after a return, counted again). ` +
  `verified / verifiedOnTime: verifications, and those within the verification period; verification is central, so each counts for the agency ` +
  `of the report's first disposition at or after it (even one after the window); those of reports not (yet) forwarded make one extra row, ` +
  `agency null and name "${UNDISPOSED_NAME}", present only when it has a non-zero figure. ` +
  `forwarded: the agency handed a report to one of its units. returned: the agency returned a report as not its authority (bukan wewenang). ` +
  `answered / answeredOnTime: the agency's answers, and those within the follow-up period (a further answer to the same report is counted in answered only). ` +
  `medianWorkingDaysToAnswer: median, over the answers that met the follow-up period's clock, of the working days from the disposition day ` +
  `to the answer day; null when there are none. ` +
  `closedByReporter / closedByAdmin / closedAutomatically: reports of the agency closed by the reporter (PUAS), by an administrator, ` +
  `or automatically when the reporter did not reply in time. ` +
  `byColour: whatever the window, the reports the agency holds now, by the colour of their status ` +
  `(merah: belum terverifikasi, terverifikasi, terdisposisi, bukan wewenang; kuning: sedang diproses, tertunda; hijau: selesai, arsip, tidak dapat diproses); ` +
  `0 in the extra row.`;

const IsoDate = (which: 'from' | 'to') =>
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, { message: `${which} must be a date written YYYY-MM-DD`, abort: true })
    .refine(isIsoDate, `${which} is not a date in the calendar`)
    .describe(`${which === 'from' ? 'First' : 'Last'} day of the window (inclusive), an Asia/Jakarta date, YYYY-MM-DD.`);

const StatsQuery = z
  .object({ from: IsoDate('from'), to: IsoDate('to') })
  .superRefine((q, ctx) => {
    // Only between two real dates: a malformed one has its own issue already.
    if (typeof q.from !== 'string' || typeof q.to !== 'string' || !isIsoDate(q.from) || !isIsoDate(q.to)) return;
    const problem = windowProblem(q);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['to'] });
  });

const Count = z.number().int().nonnegative();
const AgencyStatsSchema = z.object({
  agency: z.string().nullable(),
  name: z.string(),
  received: Count,
  verified: Count,
  verifiedOnTime: Count,
  forwarded: Count,
  answered: Count,
  answeredOnTime: Count,
  medianWorkingDaysToAnswer: z.number().nullable(),
  closedByReporter: Count,
  closedByAdmin: Count,
  closedAutomatically: Count,
  returned: Count,
  byColour: z.object({ merah: Count, kuning: Count, hijau: Count }),
}) satisfies z.ZodType<AgencyStats>;

const StatsBody = z.object({ from: z.string(), to: z.string(), agencies: z.array(AgencyStatsSchema) });

const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

/** The CSV's columns: each JSON field in snake_case, `byColour.merah` as `by_colour_merah`. */
const CSV_COLUMNS: [string, (row: AgencyStats) => string | number | null][] = [
  ...(['agency', 'name', 'received', 'verified', 'verifiedOnTime', 'forwarded', 'answered', 'answeredOnTime', 'medianWorkingDaysToAnswer',
    'closedByReporter', 'closedByAdmin', 'closedAutomatically', 'returned'] as const).map((field): [string, (row: AgencyStats) => string | number | null] => [
    snakeCase(field),
    (row) => row[field],
  ]),
  ...(['merah', 'kuning', 'hijau'] as const).map((colour): [string, (row: AgencyStats) => number] => [`by_colour_${colour}`, (row) => row.byColour[colour]]),
];

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * One CSV field (RFC 4180). Agency names are typed by administrators and the file is opened in
 * spreadsheets: a text starting with =, +, -, @ (or a tab or carriage return) would be run as a
 * formula, so it gets a leading apostrophe (OWASP, "CSV Injection").
 */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The rows as CSV: a header, then one line per row, each ended by CRLF. */
export function statsCsv(rows: readonly AgencyStats[]): string {
  const lines = [CSV_COLUMNS.map(([name]) => name).join(','), ...rows.map((row) => CSV_COLUMNS.map(([, get]) => csvField(get(row))).join(','))];
  return lines.map((line) => `${line}\r\n`).join('');
}

/**
 * Public figures change slowly and cost up to seconds to count: a proxy or a browser may keep them
 * five minutes, so a page refreshed by many does not become many queries.
 */
const CACHE_CONTROL = 'public, max-age=300';

export function statsRoutes(deps: HttpDeps): FastifyPluginAsyncZod {
  const { db } = deps;
  // Identical requests that come while one is being computed share its answer: a public page sees
  // bursts of the same window (a link in the news), and a year over a million reports takes seconds.
  const inFlight = new Map<string, Promise<AgencyStats[]>>();
  const statsOf = (w: StatsWindow): Promise<AgencyStats[]> => {
    const key = `${w.from}/${w.to}`;
    let running = inFlight.get(key);
    if (!running) {
      running = agencyStats(db, w).finally(() => inFlight.delete(key));
      inFlight.set(key, running);
    }
    return running;
  };

  return async (app) => {
    app.get(
      '/stats',
      {
        schema: {
          summary: 'Statistics per agency over a window of dates',
          description: `from and to are Asia/Jakarta dates, both inclusive: a window of at most ${STATS_MAX_DAYS} days (else 400). ${DEFINITIONS}`,
          querystring: StatsQuery,
          response: { 200: StatsBody, 400: ErrorBody },
        },
      },
      async (req, reply) => {
        const { from, to } = req.query;
        reply.header('cache-control', CACHE_CONTROL);
        return { from, to, agencies: await statsOf({ from, to }) };
      },
    );

    app.get(
      '/stats.csv',
      {
        schema: {
          summary: 'The same statistics as open-data CSV',
          description:
            `The rows of GET /api/v1/stats as CSV (RFC 4180, UTF-8, header row), columns named like its fields in snake_case ` +
            `(by_colour_merah…); an empty field where the JSON has null. A text starting with =, +, - or @ gets a leading apostrophe, ` +
            `so spreadsheets do not run it as a formula. ${DEFINITIONS}`,
          querystring: StatsQuery,
          response: {
            200: { description: 'CSV, one row per agency', content: { 'text/csv': { schema: z.string() } } },
            400: ErrorBody,
          },
        },
      },
      async (req, reply) => {
        const { from, to } = req.query;
        const rows = await statsOf({ from, to });
        return reply
          .header('cache-control', CACHE_CONTROL)
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="lapor-stats-${from}-${to}.csv"`)
          .send(statsCsv(rows));
      },
    );
  };
}
