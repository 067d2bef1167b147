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

export function createLogger(options: { level: string; destination?: DestinationStream; base?: Record<string, unknown> }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'lapor-gateway', ...options.base },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination,
  );
}
