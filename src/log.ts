import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Personal data never reaches a log line in clear: these fields are censored wherever they appear
 * (two levels deep), and the code logs ids and hashes, not addresses or message text.
 * test/log-redaction.test.ts proves it with a log sink.
 */
export const REDACT_PATHS = [
  'phone', 'email', 'name', 'address', 'text', 'sender', 'reporter', 'to', 'password', 'sealed',
  '*.phone', '*.email', '*.name', '*.address', '*.text', '*.sender', '*.reporter', '*.to', '*.password', '*.sealed',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["idempotency-key"]',
];

export interface LoggerOptions {
  level: string;
  destination?: DestinationStream | undefined;
  base?: Record<string, unknown>;
  /** Short readable lines (pino-pretty) instead of JSON; falls back to JSON where pino-pretty is not installed. */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.pretty ? (prettyStream(options.destination) ?? options.destination) : options.destination;
  return pino(
    {
      level: options.level,
      base: { service: 'lapor-gateway', ...options.base },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}

/** Whether `LAPOR_LOG_FORMAT` asks for readable lines: `auto` means when stdout is a terminal. */
export function wantsPrettyLogs(format: 'auto' | 'json' | 'pretty'): boolean {
  return format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
}

/**
 * pino-pretty as an in-process stream: the lines are formatted after pino has redacted them, so
 * a readable line hides exactly what a JSON one does. It is a development dependency; a production
 * install without it keeps JSON.
 */
function prettyStream(destination: DestinationStream | undefined): DestinationStream | undefined {
  let factory: ((options: Record<string, unknown>) => DestinationStream) | undefined;
  try {
    factory = createRequire(import.meta.url)('pino-pretty') as typeof factory;
  } catch {
    return undefined;
  }
  return factory?.({
    destination: destination ?? 1,
    sync: true,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname,service',
    colorize: destination === undefined && process.stdout.isTTY === true,
  });
}
