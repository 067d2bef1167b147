import { z } from 'zod';
import { envBool, positiveInt } from '../src/core/settings.ts';
import { SmsSettingsSchema } from '../adapters/sms/config.ts';
import { ImapSettingsSchema, MailSettingsSchema, SmtpSettingsSchema } from '../adapters/email/config.ts';
import { TelegramSettingsSchema } from '../adapters/telegram/config.ts';
import { WhatsAppSettingsSchema } from '../adapters/whatsapp/config.ts';
import { XSettingsSchema } from '../adapters/x/config.ts';
import { CRASH_POINTS } from '../src/core/crash.ts';

/**
 * The whole configuration of the gateway, in one schema.
 *
 * Every leaf is read from an environment variable named after its path: `queue.lockMs` is
 * `LAPOR_QUEUE_LOCK_MS` (see `envName` in load.ts). A JSON file named by `LAPOR_CONFIG` may set the
 * same fields; the environment wins. Nothing needs to be set for a local run: with no database or
 * Redis URL the gateway starts its own under `dataDir` (src/local/services.ts).
 *
 * Each field carries a `.describe()` text: the README's configuration table is generated from it
 * (`npm run config:table`), and a test checks that the README lists every variable.
 */

export const ConfigSchema = z.strictObject({
  env: z
    .enum(['development', 'production', 'test'])
    .default('development')
    .describe('Run mode. `production` refuses generated keys and unsafe Redis settings.'),
  host: z.string().min(1).default('127.0.0.1').describe('Address the HTTP server listens on (`0.0.0.0` in the container).'),
  port: z.coerce.number().int().min(0).max(65535).default(3000).describe('HTTP port (`PORT` is also read).'),
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
    .optional()
    .describe('PostgreSQL URL (`DATABASE_URL` is also read). Unset: a local cluster under `dataDir/pg`.'),
  redisUrl: z
    .string()
    .regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')
    .optional()
    .describe('Redis URL (`REDIS_URL` is also read). Unset: a local redis-server under `dataDir/redis`.'),
  databasePoolSize: positiveInt
    .default(60)
    .describe('PostgreSQL connections per process; at least the sum of the worker concurrencies, plus the API.'),
  dataDir: z.string().min(1).default('./data').describe('Where local services and generated keys live.'),
  dataKey: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, '32 bytes, base64')
    .optional()
    .describe('Key that encrypts personal data at rest and in queue jobs. Unset outside production: generated into `dataDir/keys.json`.'),
  trackingKey: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, '32 bytes, base64')
    .optional()
    .describe('Key of the tracking-ID permutation. Never change it once reports exist. Unset outside production: generated like `dataKey`.'),
  logLevel: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('pino log level.'),
  logFormat: z
    .enum(['auto', 'json', 'pretty'])
    .default('auto')
    .describe('`auto`: short readable lines on a terminal, JSON otherwise (a file, a pipe, a log collector). Both redact the same fields.'),
  lang: z.enum(['id', 'en']).default('id').describe('Default language of citizen messages.'),
  rulesFile: z
    .string()
    .min(1)
    .optional()
    .describe('JSON file that tunes the verification rules (shape: config/rules.ts); unset: the defaults there.'),
  holidaysFile: z
    .string()
    .min(1)
    .optional()
    .describe('JSON file adding or replacing years of holidays and cuti bersama (shape: config/holidays.json); the built-in years are 2025–2027.'),
  deadlines: z
    .strictObject({
      verificationDays: positiveInt.default(3).describe('Working days (Asia/Jakarta) after receipt within which a report must be verified.'),
      followUpRinganDays: positiveInt.default(5).describe('Working days after the disposition within which the agency must follow up a ringan (light) report.'),
      followUpSedangDays: positiveInt.default(14).describe('Working days after the disposition within which the agency must follow up a sedang (medium) report.'),
      followUpBeratDays: positiveInt.default(30).describe('Working days after the disposition within which the agency must follow up a berat (serious) report.'),
      autoCloseDays: positiveInt.default(10).describe('Working days after the agency\'s answer after which a report the reporter has not replied to is closed.'),
      sweepIntervalMs: positiveInt
        .default(60_000)
        .describe('How often the deadline worker records breaches, closes answered reports nobody replied to, and publishes notifications a crash left in the outbox.'),
    })
    .prefault({}),
  shutdownTimeoutMs: positiveInt.default(15_000).describe('Hard deadline for a graceful shutdown.'),
  publicUrl: z
    .url()
    .default('http://127.0.0.1:3000')
    .describe('Where citizens reach the public pages: status links in notifications are built from it.'),
  attachments: z
    .strictObject({
      maxBytes: positiveInt.default(5 * 1024 * 1024).describe('Largest file a citizen may attach (a photo or a PDF); more is refused with 413.'),
      maxCount: positiveInt.default(3).describe('Most files one report may carry.'),
    })
    .prefault({}),
  auth: z
    .strictObject({
      tokenHours: positiveInt.default(12).describe('How long a login token lasts.'),
      maxFailuresPerAccount: positiveInt
        .default(10)
        .describe('Failed logins to one account within LAPOR_AUTH_FAILURE_WINDOW_MINUTES before it is refused with 429, even with the right password.'),
      maxFailuresPerAddress: positiveInt
        .default(100)
        .describe('The same for one client address, looser: an office behind one address is not locked out by one person.'),
      failureWindowMinutes: positiveInt.default(15).describe('The window of those counts.'),
    })
    .prefault({}),
  redis: z
    .strictObject({
      fsync: z
        .enum(['always', 'everysec'])
        .default('always')
        .describe('Least `appendfsync` accepted. `always` loses nothing acknowledged when Redis is killed; `everysec` may lose a second.'),
      allowUnsafe: envBool.default(false).describe('Run even when Redis has no AOF or may evict keys. Never in production.'),
      cluster: envBool
        .default(false)
        .describe('`LAPOR_REDIS_URL` names one node of a Redis Cluster; the others are discovered. Needs a braced LAPOR_QUEUE_PREFIX (a hash tag).'),
    })
    .prefault({}),
  queue: z
    .strictObject({
      prefix: z.string().min(1).default('{lapor}').describe('BullMQ key prefix. The braces are a Redis Cluster hash tag.'),
      attempts: positiveInt.default(10).describe('Tries per job before it becomes a dead letter.'),
      backoffMs: positiveInt.default(1_000).describe('First retry delay; doubles each try.'),
      lockMs: positiveInt.default(30_000).describe('Job lock; a job whose worker died is retried after this.'),
      maxStalled: positiveInt.default(5).describe('Times a job may be recovered from a dead worker before it fails.'),
      keepCompletedHours: positiveInt.default(24).describe('How long completed jobs are kept (for inspection).'),
      keepFailedDays: positiveInt.default(30).describe('How long dead letters are kept.'),
      intakeConcurrency: positiveInt.default(8).describe('Inbound jobs handled at once per process; each carries up to LAPOR_QUEUE_BATCH_MAX messages.'),
      batchMax: positiveInt
        .max(1_000)
        .default(64)
        .describe('Most messages stored as one job, filed in one statement and sent by one notify job. 1 turns batching off.'),
      batchWaitMs: positiveInt
        .max(1_000)
        .default(2)
        .describe('Longest a message waits to join a batch while earlier ones are being stored. An idle gateway does not wait at all.'),
      notifyConcurrency: positiveInt.default(32).describe('Notifications sent at once per process and channel.'),
    })
    .prefault({}),
  dedup: z
    .strictObject({
      webHours: positiveInt.default(24).describe('How long an `Idempotency-Key` is remembered.'),
    })
    .prefault({}),
  http: z
    .strictObject({
      bodyLimitBytes: positiveInt.default(64 * 1024).describe('Largest request body accepted.'),
      trustProxy: envBool.default(false).describe('Trust `X-Forwarded-*` from a reverse proxy.'),
      headersTimeoutMs: positiveInt
        .default(5_000)
        .describe('A request whose headers have not all arrived this long after it started is answered 408 and its connection closed (so is a connection that sends nothing).'),
      bodyTimeoutMs: positiveInt
        .default(10_000)
        .describe('A request body still incomplete this long after its headers is answered 408 and its connection closed.'),
      requestTimeoutMs: positiveInt
        .default(15_000)
        .describe('The whole request, headers and body, must have arrived this long after it started (else 408 and the connection closed), and be answered within as long after its headers (else 503).'),
      uploadTimeoutMs: positiveInt
        .default(120_000)
        .describe('An upload (an attachment, the report form with its file) may take this long to arrive instead: a 5 MB photo over a slow mobile link needs a minute or more. Everything else keeps the deadlines above.'),
      keepAliveTimeoutMs: positiveInt.default(5_000).describe('An idle keep-alive connection is closed after this long (Node.js adds one second of grace).'),
      maxConnections: positiveInt.default(1_000).describe('Open connections the HTTP server holds at most; more are closed at once.'),
      maxConnectionsPerIp: z.coerce
        .number()
        .int()
        .nonnegative()
        .default(100)
        .describe('Open connections one client address may hold; more are closed at once. The address is the TCP peer: behind a reverse proxy, the proxy (set 0 for no limit).'),
    })
    .superRefine((http, ctx) => {
      // Node refuses a headers deadline past the whole request's (it could never fire).
      if (http.headersTimeoutMs > http.requestTimeoutMs) {
        ctx.addIssue({ code: 'custom', path: ['headersTimeoutMs'], message: 'must not be longer than LAPOR_HTTP_REQUEST_TIMEOUT_MS' });
      }
    })
    .prefault({}),
  smpp: SmsSettingsSchema.prefault({}),
  x: XSettingsSchema.prefault({}),
  telegram: TelegramSettingsSchema.prefault({}),
  whatsapp: WhatsAppSettingsSchema.prefault({}),
  imap: ImapSettingsSchema.prefault({}),
  smtp: SmtpSettingsSchema.prefault({}),
  mail: MailSettingsSchema.prefault({}),
  test: z
    .strictObject({
      crashAt: z
        .enum(CRASH_POINTS)
        .optional()
        .describe(`Tests only (LAPOR_ENV=test): SIGKILL this process at a named point of the pipeline (${CRASH_POINTS.join(', ')}), to prove what a crash there leaves.`),
    })
    .prefault({}),
}).superRefine((config, ctx) => {
  if (config.test.crashAt && config.env !== 'test') ctx.addIssue({ code: 'custom', path: ['test', 'crashAt'], message: 'only with LAPOR_ENV=test' });
});

export type Config = z.infer<typeof ConfigSchema>;
