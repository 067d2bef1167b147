/**
 * A complaint mailbox on this machine for the email channel (`npm run sim:mail -- <command>`).
 *
 *   serve [--imap-port 2143] [--smtp-port 2525] [--control-port 2526]
 *       Runs Debian's Dovecot (IMAP, the mailbox the gateway reads) and an SMTP sink (where the
 *       gateway's replies go) on loopback, and prints the variables to export for the gateway.
 *       The mail lives under LAPOR_DATA_DIR (./data)/mail; the password is kept there, so the
 *       URL stays the same across restarts. Ctrl-C stops both.
 *   send --from warga@example.org [--subject S] [--wait 20] "Jalan rusak di depan SDN 3"
 *       Puts a citizen's email into the running mailbox's INBOX (IMAP APPEND, as if it had been
 *       delivered) and prints the gateway's reply to that address once the SMTP sink has it.
 *
 * Control API of `serve` (127.0.0.1, --control-port):
 *   GET /_sim/outbox?to=<address>&since=<epoch ms>  → { messages: [{ from, to, receivedAt, raw }] }
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import { z } from 'zod';
import { loadConfig } from '../config/load.ts';
import { startLocalDovecot } from '../src/local/dovecot.ts';
import { isAlive, StartupError } from '../src/local/services.ts';
import { startSmtpSink, type SmtpSink } from '../src/local/smtp-sink.ts';
import { createLogger } from '../src/log.ts';
import { printUsage, runMain, unknownCommand } from './sim-cli.ts';

const MAILBOX_USER = 'lapor';
const MAILBOX_ADDRESS = 'lapor@lapor.example';
const MAIL_FROM = `LAPOR! <${MAILBOX_ADDRESS}>`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    'imap-port': { type: 'string', default: '2143' },
    'smtp-port': { type: 'string', default: '2525' },
    'control-port': { type: 'string', default: '2526' },
    from: { type: 'string' },
    subject: { type: 'string' },
    wait: { type: 'string', default: '20' },
    help: { type: 'boolean', short: 'h' },
  },
});
const [command = 'serve', ...words] = positionals;

/** What a running `serve` leaves for `send`: where everything listens. */
const RunningSchema = z.object({ pid: z.number(), imapUrl: z.string(), smtpUrl: z.string(), controlUrl: z.string(), address: z.string() });
type Running = z.infer<typeof RunningSchema>;

const OutboxSchema = z.object({
  messages: z.array(z.object({ from: z.string(), to: z.array(z.string()), receivedAt: z.number(), raw: z.string() })),
});

function mailDir(): string {
  // The same data folder as `npm start` (LAPOR_DATA_DIR, ./data by default).
  return join(resolve(loadConfig().dataDir), 'mail');
}

/** The mailbox password, made once and kept, so a restarted simulator keeps the URL the gateway has. */
function stablePassword(dir: string): string {
  const file = join(dir, 'password');
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept) return kept;
  }
  const password = randomBytes(12).toString('base64url');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

function port(name: 'imap-port' | 'smtp-port' | 'control-port'): number {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 1 || value > 65_535) throw new StartupError(`--${name} must be a port number, not ${values[name]}`);
  return value;
}

async function serve(): Promise<number> {
  const dir = mailDir();
  mkdirSync(dir, { recursive: true });
  const log = createLogger({ level: 'warn' });
  const password = stablePassword(dir);
  const stateFile = join(dir, 'sim-mail.json');

  const dovecot = await startLocalDovecot({ dir: join(dir, 'dovecot'), log, port: port('imap-port'), users: [{ user: MAILBOX_USER, password }] }).catch(
    (err: unknown) => {
      throw portTaken(err, '--imap-port');
    },
  );
  let sink: SmtpSink | undefined;
  let control: Server | undefined;
  try {
    sink = await startSmtpSink({ log, port: port('smtp-port'), dir: join(dir, 'outbox') }).catch((err: unknown) => {
      throw portTaken(err, '--smtp-port');
    });
    control = await startControl(sink, port('control-port')).catch((err: unknown) => {
      throw portTaken(err, '--control-port');
    });
  } catch (err) {
    await sink?.stop();
    await dovecot.stop();
    throw err;
  }

  const running: Running = {
    pid: process.pid,
    imapUrl: dovecot.imapUrl(),
    smtpUrl: sink.url,
    controlUrl: `http://127.0.0.1:${port('control-port')}`,
    address: MAILBOX_ADDRESS,
  };
  writeFileSync(stateFile, `${JSON.stringify(running, null, 2)}\n`, { mode: 0o600 });

  process.stdout.write(
    [
      `Mailbox ${MAILBOX_ADDRESS}: IMAP on 127.0.0.1:${dovecot.port} (Dovecot, mail in ${join(dir, 'dovecot', 'mail')})`,
      `Replies: SMTP sink on 127.0.0.1:${sink.port} (copies in ${join(dir, 'outbox')}), control on ${running.controlUrl}`,
      '',
      'Start the gateway with:',
      `  export LAPOR_IMAP_URL='${running.imapUrl}'`,
      `  export LAPOR_SMTP_URL='${running.smtpUrl}'`,
      `  export LAPOR_MAIL_FROM='${MAIL_FROM}'`,
      '',
      `Then write to it: npm run sim:mail -- send --from warga@example.org "Jalan rusak di depan SDN 3"`,
      'Ctrl-C stops the mailbox.',
      '',
    ].join('\n'),
  );
  // Each reply as it arrives, for whoever watches this terminal.
  const shown = new Set<unknown>();
  const watch = setInterval(() => {
    for (const message of sink.messages()) {
      if (shown.has(message)) continue;
      shown.add(message);
      process.stdout.write(`→ reply to ${message.envelope.to.join(', ')} (${message.raw.length} bytes)\n`);
    }
  }, 500);

  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  clearInterval(watch);
  // Reverse order of start-up.
  await new Promise<void>((done) => control.close(() => done()));
  await sink.stop();
  await dovecot.stop();
  rmSync(stateFile, { force: true });
  process.stdout.write('mailbox stopped\n');
  return 0;
}

/** A taken port (Node's EADDRINUSE, or Dovecot's own words for it) with what to do about it. */
function portTaken(err: unknown, option: string): unknown {
  const message = (err as Error).message;
  if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' && !message.includes('Address already in use')) return err;
  return new StartupError(`${message}\nIs another sim:mail running? Stop it, or choose another port with ${option} <port>.`, { cause: err });
}

function startControl(sink: SmtpSink, controlPort: number): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/_sim/outbox') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'GET /_sim/outbox?to=&since=' }));
      return;
    }
    const to = url.searchParams.get('to')?.toLowerCase();
    const since = Number(url.searchParams.get('since') ?? 0);
    const messages = sink
      .messages()
      .filter((m) => (!to || m.envelope.to.some((r) => r.toLowerCase() === to)) && m.receivedAt.getTime() >= since)
      .map((m) => ({ from: m.envelope.from, to: m.envelope.to, receivedAt: m.receivedAt.getTime(), raw: m.raw.toString('utf8') }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ messages }));
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(controlPort, '127.0.0.1', () => {
      server.off('error', fail);
      done(server);
    });
  });
}

function readRunning(): Running {
  const file = join(mailDir(), 'sim-mail.json');
  const parsed = existsSync(file) ? RunningSchema.safeParse(JSON.parse(readFileSync(file, 'utf8'))) : undefined;
  if (!parsed?.success || !isAlive(parsed.data.pid)) {
    throw new StartupError(`No mailbox is running for ${mailDir()}: start it with \`npm run sim:mail\` in another terminal.`);
  }
  return parsed.data;
}

/** The first words of the text, as a citizen's mail client would show a subject typed in a hurry. */
function subjectFrom(text: string): string {
  let subject = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (subject && subject.length + word.length + 1 > 60) break;
    subject = subject ? `${subject} ${word}` : word;
  }
  return subject || '(no subject)';
}

async function send(): Promise<number> {
  const text = words.join(' ').trim();
  const from = values.from;
  const waitSeconds = Number(values.wait);
  if (!from || !text || !/^[^@\s]+@[^@\s]+$/.test(from) || !(waitSeconds >= 0)) {
    process.stderr.write('usage: send --from warga@example.org [--subject S] [--wait 20] "Jalan rusak di depan SDN 3"\n');
    return 64;
  }
  const running = readRunning();
  const imap = new URL(running.imapUrl);
  const domain = from.split('@')[1] ?? 'example.org';
  const messageId = `<${randomUUID()}@${domain}>`;
  const subject = values.subject ?? subjectFrom(text);
  const raw = await new MailComposer({ from, to: running.address, subject, text, messageId, date: new Date() }).compile().build();

  const since = Date.now();
  const client = new ImapFlow({
    host: imap.hostname,
    port: Number(imap.port),
    secure: false,
    auth: { user: decodeURIComponent(imap.username), pass: decodeURIComponent(imap.password) },
    logger: false,
  });
  client.on('error', (err: Error) => process.stderr.write(`imap: ${err.message}\n`));
  await client.connect();
  let uid: number | undefined;
  try {
    const appended = await client.append('INBOX', raw);
    uid = appended ? appended.uid : undefined;
  } finally {
    await client.logout().catch(() => undefined);
  }
  process.stdout.write(`delivered to ${running.address}'s INBOX${uid ? ` (uid ${uid})` : ''}: "${subject}", Message-ID ${messageId}\n`);
  process.stdout.write(`waiting up to ${waitSeconds} s for a reply to ${from}…\n`);

  const until = Date.now() + waitSeconds * 1000;
  do {
    const res = await fetch(`${running.controlUrl}/_sim/outbox?to=${encodeURIComponent(from)}&since=${since}`);
    const { messages } = OutboxSchema.parse(await res.json());
    if (messages.length) {
      for (const message of messages) {
        const parsed = await simpleParser(Buffer.from(message.raw, 'utf8'));
        process.stdout.write(
          [
            '',
            `← reply from ${message.from || '<>'} at ${new Date(message.receivedAt).toISOString()}`,
            `  Subject:     ${parsed.subject ?? ''}`,
            `  Message-ID:  ${parsed.messageId ?? ''}`,
            `  In-Reply-To: ${parsed.inReplyTo ?? ''}${parsed.inReplyTo === messageId ? ' (the message just sent)' : ''}`,
            '',
            (parsed.text ?? '(no text part)').trimEnd(),
            '',
          ].join('\n'),
        );
      }
      return 0;
    }
    await new Promise((r) => setTimeout(r, 500));
  } while (Date.now() < until);
  process.stdout.write(`no reply within ${waitSeconds} s: is the gateway running with LAPOR_IMAP_URL set?\n`);
  return 1;
}

async function main(): Promise<number> {
  if (values.help) {
    return printUsage(import.meta.url);
  }
  if (command === 'serve') return serve();
  if (command === 'send') return send();
  return unknownCommand(command);
}

runMain(main);
