import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { createLogger } from '../../src/log.ts';
import { normalizeAddress } from '../../src/core/inbound.ts';
import { startLocalDovecot, type LocalDovecot } from '../../src/local/dovecot.ts';
import { startSmtpSink, type SmtpSink } from '../../src/local/smtp-sink.ts';
import { createTestEnv, type TestEnv } from './env.ts';

/**
 * A gateway reading a real Dovecot mailbox (Debian's, on a loopback port) and answering through a
 * real SMTP server (the smtp-server package) that keeps what it receives, for a test file.
 */

export const OUR_ADDRESS = 'pengaduan@lapor.example';

export interface EmailTestGateway {
  dovecot: LocalDovecot;
  sink: SmtpSink;
  env: TestEnv;
  /** Puts a raw message into the complaint mailbox (IMAP APPEND), as a mail server delivers it. */
  deliver(raw: string | Buffer, folder?: string): Promise<void>;
  /** The messages in a folder of the mailbox, as IMAP lists them. */
  folder(path: string): Promise<{ uid: number; seen: boolean; messageId: string | undefined }[]>;
  close(): Promise<void>;
}

export async function emailGateway(env: Record<string, string> = {}): Promise<EmailTestGateway> {
  const log = createLogger({ level: 'warn' });
  // Dovecot's sockets live below this folder: it must stay short (sun_path).
  const dir = mkdtempSync(join(tmpdir(), 'lm-'));
  const dovecot = await startLocalDovecot({ dir, log });
  const sink = await startSmtpSink({ log });
  const gateway = await createTestEnv({
    channels: ['email'],
    env: {
      LAPOR_IMAP_URL: dovecot.imapUrl(),
      LAPOR_SMTP_URL: sink.url,
      LAPOR_MAIL_FROM: `LAPOR! <${OUR_ADDRESS}>`,
      LAPOR_MAIL_LEASE_MS: '1500',
      LAPOR_MAIL_RECONNECT_MIN_MS: '100',
      LAPOR_MAIL_RECONNECT_MAX_MS: '1000',
      ...env,
    },
  });
  const client = new ImapFlow({ host: dovecot.host, port: dovecot.port, secure: false, auth: { user: dovecot.users[0]!.user, pass: dovecot.users[0]!.password }, logger: false });
  await client.connect();
  return {
    dovecot,
    sink,
    env: gateway,
    async deliver(raw, folder = 'INBOX') {
      await client.append(folder, raw);
    },
    async folder(path) {
      const lock = await client.getMailboxLock(path.split('/'));
      try {
        // Already selected, the mailbox's count is as of our last command: NOOP brings the news.
        await client.noop();
        if (!client.mailbox || !client.mailbox.exists) return [];
        const list = await client.fetchAll('1:*', { uid: true, flags: true, envelope: true });
        return list.map((m) => ({ uid: m.uid, seen: Boolean(m.flags?.has('\\Seen')), messageId: m.envelope?.messageId?.replace(/^<|>$/g, '') }));
      } finally {
        lock.release();
      }
    },
    async close() {
      await client.logout().catch(() => client.close());
      await gateway.close();
      await sink.stop();
      await dovecot.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A mail as a citizen's client writes it (CRLF, a Message-ID, a Date). */
export async function composeMail(options: {
  from: string;
  to?: string;
  subject: string;
  text?: string;
  html?: string;
  messageId?: string;
  inReplyTo?: string;
  references?: string;
  cc?: string;
  headers?: Record<string, string>;
  attachments?: { filename: string; content: Buffer; contentType?: string }[];
}): Promise<Buffer> {
  const composer = new MailComposer({
    from: options.from,
    to: options.to ?? OUR_ADDRESS,
    subject: options.subject,
    ...(options.text !== undefined ? { text: options.text } : {}),
    ...(options.html !== undefined ? { html: options.html } : {}),
    ...(options.cc ? { cc: options.cc } : {}),
    ...(options.messageId ? { messageId: options.messageId } : {}),
    ...(options.inReplyTo ? { inReplyTo: options.inReplyTo } : {}),
    ...(options.references ? { references: options.references } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.attachments ? { attachments: options.attachments } : {}),
  });
  return new Promise((resolve, reject) => composer.compile().build((err, message) => (err ? reject(err) : resolve(message))));
}

/** Fresh citizen addresses, one per call, so each test is its own citizen. */
export function citizens(): () => string {
  let counter = Math.floor(Math.random() * 1e6);
  return () => `warga${counter++}@surel.example`;
}

export function emailContactHash(env: TestEnv, address: string): string {
  return env.runtime.keys.blindIndex(normalizeAddress(address));
}
