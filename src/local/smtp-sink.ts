import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerError, type SMTPServerSession } from 'smtp-server';

/**
 * An SMTP server on loopback that keeps what it is sent: the email channel's replies in tests and
 * in `npm run sim:mail`. It takes any sender and recipient, with or without AUTH, over plain SMTP
 * (no STARTTLS), and can be told to refuse the next transactions the way a real relay does.
 */

export interface SinkMessage {
  envelope: { from: string; to: string[] };
  /** The message as received (dot-unstuffed), headers and body. */
  raw: Buffer;
  receivedAt: Date;
}

export interface SmtpSinkOptions {
  log: Logger;
  /** Default: a free port. */
  port?: number;
  /** When set, each message is also written to `<dir>/<time>-<n>.eml`. */
  dir?: string;
  /** Larger messages are refused with 552. @defaultValue 25 MiB */
  maxBytes?: number;
}

export interface FailOptions {
  /** How many transactions (MAIL FROM … DATA) to refuse. @defaultValue 1 */
  count?: number;
  /**
   * Where: at RCPT TO (every recipient of the transaction, as a greylisting or over-quota relay
   * does; nodemailer then rejects with "all recipients were rejected") or after DATA (the whole
   * message, as a relay whose queue is full does). @defaultValue 'rcpt'
   */
  at?: 'rcpt' | 'data';
}

export interface SmtpSink {
  host: '127.0.0.1';
  port: number;
  /** `smtp://127.0.0.1:port` */
  url: string;
  messages(): SinkMessage[];
  /** Forgets the messages received so far (not the failures asked for). */
  clear(): void;
  /** The first message, already received or yet to come, that `predicate` accepts. */
  waitFor(predicate: (message: SinkMessage) => boolean, timeoutMs?: number): Promise<SinkMessage>;
  /** Refuses the next transaction(s) with `code text`, e.g. `failNext(451, '4.3.0 Try again later')`. */
  failNext(code: number, text: string, count?: number | FailOptions): void;
  stop(): Promise<void>;
}

interface Failure {
  code: number;
  text: string;
  at: 'rcpt' | 'data';
}

export async function startSmtpSink(options: SmtpSinkOptions): Promise<SmtpSink> {
  const received: SinkMessage[] = [];
  const waiters = new Set<{ predicate: (m: SinkMessage) => boolean; resolve: (m: SinkMessage) => void; reject: (err: unknown) => void }>();
  const failures: Failure[] = [];
  // The failure a transaction drew at MAIL FROM, so all its recipients (or its DATA) get the same answer.
  const current = new WeakMap<SMTPServerSession, Failure | undefined>();
  const dir = options.dir === undefined ? undefined : resolve(options.dir);
  if (dir) mkdirSync(dir, { recursive: true });
  let count = 0;

  const refusal = (failure: Failure): SMTPServerError => Object.assign(new Error(failure.text), { responseCode: failure.code });

  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    // A gateway configured with credentials gets them accepted, over plain text: this is loopback.
    allowInsecureAuth: true,
    onAuth: (auth, _session, callback) => callback(null, { user: auth.username ?? 'anonymous' }),
    size: options.maxBytes ?? 25 * 1024 * 1024,
    rejectOversized: true,
    maxAllowedUnauthenticatedCommands: false,
    logger: false,
    banner: 'lapor-gateway SMTP sink',
    // stop() waits at most this long for clients still connected (a pooled transport stays).
    closeTimeout: 2_000,
    onMailFrom(_address, session, callback) {
      current.set(session, failures.shift());
      callback();
    },
    onRcptTo(_address, session, callback) {
      const failure = current.get(session);
      callback(failure?.at === 'rcpt' ? refusal(failure) : undefined);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (err) => callback(err));
      stream.on('end', () => {
        const failure = current.get(session);
        if (failure?.at === 'data') return callback(refusal(failure));
        if (stream.sizeExceeded) return callback(); // rejectOversized answers 552 itself
        const message: SinkMessage = {
          envelope: {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          raw: Buffer.concat(chunks),
          receivedAt: new Date(),
        };
        count += 1;
        if (dir) {
          // ':' is legal on Linux but not on every filesystem a developer copies these files to.
          writeFileSync(join(dir, `${message.receivedAt.toISOString().replace(/:/g, '-')}-${count}.eml`), message.raw);
        }
        received.push(message);
        options.log.debug({ bytes: message.raw.length, recipients: message.envelope.to.length }, 'smtp sink received a message');
        for (const waiter of waiters) {
          try {
            if (!waiter.predicate(message)) continue;
            waiters.delete(waiter);
            waiter.resolve(message);
          } catch (err) {
            // A test's predicate that throws fails that test's wait, not the SMTP transaction.
            waiters.delete(waiter);
            waiter.reject(err);
          }
        }
        callback();
      });
    },
  });
  // A port already taken rejects the start; once listening, errors are a client's broken connection.
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', fail);
      done();
    });
  });
  server.on('error', (err) => options.log.warn({ err }, 'smtp sink connection error'));
  const port = (server.server.address() as AddressInfo).port;

  let stopping: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages: () => [...received],
    clear() {
      received.length = 0;
    },
    waitFor(predicate, timeoutMs = 10_000) {
      const found = received.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise<SinkMessage>((resolveWait, reject) => {
        const waiter = {
          predicate,
          resolve: (message: SinkMessage) => {
            clearTimeout(timer);
            resolveWait(message);
          },
          reject: (err: unknown) => {
            clearTimeout(timer);
            reject(err);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`smtp sink: no matching message within ${timeoutMs} ms (${received.length} received)`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    failNext(code, text, countOrOptions = 1) {
      if (!Number.isInteger(code) || code < 400 || code > 599) throw new RangeError(`failNext needs a 4xx or 5xx code, not ${code}`);
      const opts = typeof countOrOptions === 'number' ? { count: countOrOptions } : countOrOptions;
      for (let i = 0; i < (opts.count ?? 1); i++) failures.push({ code, text, at: opts.at ?? 'rcpt' });
    },
    stop() {
      stopping ??= new Promise<void>((done) => server.close(() => done()));
      return stopping;
    },
  };
}
