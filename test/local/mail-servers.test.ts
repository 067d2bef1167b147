import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow, type ExistsEvent } from 'imapflow';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupMembers, MAIL_SYSTEM_USER, startLocalDovecot, type LocalDovecot } from '../../src/local/dovecot.ts';
import { isAlive, StartupError } from '../../src/local/services.ts';
import { startSmtpSink, type SmtpSink } from '../../src/local/smtp-sink.ts';
import { createLogger } from '../../src/log.ts';

/**
 * The email channel's local servers: a real Dovecot (IMAP on loopback) driven with imapflow, and
 * the SMTP sink driven with nodemailer — the two libraries the email adapter uses.
 */

const log = createLogger({ level: 'warn' });
// Odd characters in a password prove imapUrl() encodes what a URL parser decodes.
const ODD = { user: 'pengaduan', password: 'p@ss/w%rd?#&+ x' };
let dir: string;
let dovecot: LocalDovecot;
let sink: SmtpSink;
const clients: ImapFlow[] = [];

beforeAll(async () => {
  // As root on a fresh machine this installs dovecot-imapd and creates the mail user; otherwise it
  // checks, and says what to install.
  execFileSync('bash', ['scripts/ensure-mail.sh'], { stdio: ['ignore', 'inherit', 'inherit'] });
  dir = mkdtempSync(join(tmpdir(), 'lapor-mail-test-'));
  chmodSync(dir, 0o755); // as root, Dovecot's unprivileged processes must reach their folders below it
  [dovecot, sink] = await Promise.all([
    startLocalDovecot({ dir: join(dir, 'dovecot'), log, users: [{ user: 'lapor', password: 'rahasia-1' }, ODD] }),
    startSmtpSink({ log, dir: join(dir, 'outbox') }),
  ]);
}, 300_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.logout().catch(() => c.close())));
  await sink?.stop();
  await dovecot?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A logged-in imapflow client for the URL's user, closed after the file. */
async function imap(url: string, options: { keep?: boolean } = {}): Promise<ImapFlow> {
  const parsed = new URL(url);
  const client = new ImapFlow({
    host: parsed.hostname,
    port: Number(parsed.port),
    secure: false,
    auth: { user: decodeURIComponent(parsed.username), pass: decodeURIComponent(parsed.password) },
    logger: false,
  });
  client.on('error', () => undefined); // a failed connect rejects connect(); nothing else to report
  await client.connect();
  if (options.keep !== false) clients.push(client);
  return client;
}

let seq = 0;
function rfc822(subject: string): string {
  seq += 1;
  return [
    'From: Warga <warga@example.org>',
    'To: lapor@lapor.example',
    `Subject: ${subject}`,
    `Message-ID: <t${seq}.${Date.now()}@example.org>`,
    `Date: ${new Date().toUTCString()}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Jalan rusak di depan SDN 3.',
    '',
  ].join('\r\n');
}

describe('local Dovecot', () => {
  it('logs in, offers IDLE, MOVE and UIDPLUS, and reports UIDVALIDITY with each APPEND', async () => {
    const client = await imap(dovecot.imapUrl());
    for (const capability of ['IDLE', 'MOVE', 'UIDPLUS']) expect(client.capabilities.has(capability), capability).toBe(true);
    const inbox = await client.mailboxOpen('INBOX');
    expect(inbox.uidValidity).toBeGreaterThan(0n);
    const appended = await client.append('INBOX', rfc822('pertama'));
    expect(appended).toMatchObject({ destination: 'INBOX', uidValidity: inbox.uidValidity });
    expect(appended && appended.uid).toBeGreaterThan(0);
    const stored = await client.fetchOne(String(appended && appended.uid), { envelope: true }, { uid: true });
    expect(stored && stored.envelope?.subject).toBe('pertama');
    await client.mailboxClose();
  });

  it('builds URLs whose user and password survive URL parsing', async () => {
    const url = new URL(dovecot.imapUrl(ODD.user));
    expect(url.protocol).toBe('imap:');
    expect(url.hostname).toBe('127.0.0.1');
    expect(Number(url.port)).toBe(dovecot.port);
    expect(url.pathname).toBe('/INBOX');
    expect(decodeURIComponent(url.password)).toBe(ODD.password);
    const client = await imap(url.href);
    expect((await client.mailboxOpen('INBOX')).exists).toBe(0); // each user has a mailbox of its own
    expect(() => dovecot.imapUrl('nobody')).toThrow(/no mail user/);
  });

  it('refuses a wrong password', async () => {
    const wrong = new URL(dovecot.imapUrl());
    wrong.password = 'salah';
    const failure = await imap(wrong.href, { keep: false }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ authenticationFailed: true });
    // Dovecot's auth penalty would hold every later login from 127.0.0.1 for 2 s or more.
    const started = Date.now();
    await imap(dovecot.imapUrl(), { keep: false }).then((c) => c.logout());
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('pushes EXISTS to a client in IDLE when another client appends', async () => {
    const watcher = await imap(dovecot.imapUrl());
    const before = (await watcher.mailboxOpen('INBOX')).exists;
    const seen = new Promise<ExistsEvent>((resolve) => watcher.on('exists', resolve));
    void watcher.idle();
    // IDLE has to be running on the server before the append, or the EXISTS comes with the next command instead.
    await new Promise((r) => setTimeout(r, 300));
    const writer = await imap(dovecot.imapUrl());
    await writer.append('INBOX', rfc822('kedua'));
    const event = await Promise.race([
      seen,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no EXISTS within 5 s')), 5_000)),
    ]);
    expect(event).toMatchObject({ path: 'INBOX', count: before + 1, prevCount: before });
  });

  it('moves a message into folders the client creates, flat and nested', async () => {
    const client = await imap(dovecot.imapUrl());
    await client.mailboxCreate('Processed');
    await client.mailboxCreate(['LAPOR', 'Karantina']);
    const appended = await client.append('INBOX', rfc822('pindah'));
    const uid = appended && appended.uid;
    expect(uid).toBeGreaterThan(0);
    const lock = await client.getMailboxLock('INBOX');
    try {
      const moved = await client.messageMove(String(uid), 'Processed', { uid: true });
      expect(moved && moved.uidMap?.get(uid as number)).toBeGreaterThan(0);
      expect(await client.search({ uid: String(uid) }, { uid: true })).toEqual([]);
    } finally {
      lock.release();
    }
    expect(await client.status('Processed', { messages: true })).toMatchObject({ messages: 1 });
    const processed = await client.getMailboxLock('Processed');
    try {
      await client.messageMove('1:*', 'LAPOR/Karantina', { uid: true });
    } finally {
      processed.release();
    }
    expect(await client.status('LAPOR/Karantina', { messages: true })).toMatchObject({ messages: 1 });
    expect(await client.status('Processed', { messages: true })).toMatchObject({ messages: 0 });
  });

  it('keeps the mail in its dir, owned by the user Dovecot runs mail as', async () => {
    await (await imap(dovecot.imapUrl())).append('INBOX', rfc822('di disk'));
    const home = join(dir, 'dovecot', 'mail', 'lapor', 'Maildir');
    expect(readdirSync(join(home, 'cur')).length + readdirSync(join(home, 'new')).length).toBeGreaterThan(0);
    const expectedUid =
      process.getuid?.() === 0 ? Number(spawnSync('id', ['-u', MAIL_SYSTEM_USER], { encoding: 'utf8' }).stdout.trim()) : process.getuid?.();
    expect(statSync(home).uid).toBe(expectedUid);
  });

  it('runs two instances side by side, and stop() leaves no Dovecot process behind', async () => {
    const [a, b] = await Promise.all(
      ['a', 'b'].map((name) => startLocalDovecot({ dir: join(dir, `parallel-${name}`), log })),
    );
    try {
      expect(a!.port).not.toBe(b!.port);
      const clientA = await imap(a!.imapUrl(), { keep: false });
      const clientB = await imap(b!.imapUrl(), { keep: false });
      await clientA.append('INBOX', rfc822('hanya di A'));
      expect(await clientA.status('INBOX', { messages: true })).toMatchObject({ messages: 1 });
      expect(await clientB.status('INBOX', { messages: true })).toMatchObject({ messages: 0 });
      await clientB.logout();
      // clientA stays logged in: its imap process must go with the server.
      const members = groupMembers(a!.pid);
      expect(members).toContain(a!.pid);
      expect(members.length).toBeGreaterThan(2); // master, its services and the session: the check sees children
      await a!.stop();
      expect(isAlive(a!.pid)).toBe(false);
      expect(groupMembers(a!.pid)).toEqual([]);
      for (const pid of members) expect(isAlive(pid), `pid ${pid}`).toBe(false);
      clientA.close();
      // B is untouched by A's stop.
      const again = await imap(b!.imapUrl(), { keep: false });
      await again.logout();
    } finally {
      await Promise.all([a!.stop(), b!.stop()]);
    }
    expect(isAlive(b!.pid)).toBe(false);
    expect(groupMembers(b!.pid)).toEqual([]);
  });

  it('fails to start with Dovecot’s own words when its port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const failure = await startLocalDovecot({ dir: join(dir, 'taken'), log, port }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(StartupError);
      expect((failure as Error).message).toMatch(new RegExp(`Error: service\\(imap-login\\): listen\\(127\\.0\\.0\\.1, ${port}\\) failed: Address already in use`));
    } finally {
      blocker.close();
    }
  });
});

describe('SMTP sink', () => {
  const transport = () => nodemailer.createTransport(sink.url);

  it('takes a message from nodemailer and keeps it with its headers, in memory and on disk', async () => {
    const pending = sink.waitFor((m) => m.envelope.to.includes('warga-1@example.org'), 5_000);
    const info = await transport().sendMail({
      from: 'LAPOR! <lapor@lapor.example>',
      to: 'warga-1@example.org',
      subject: 'Re: Jalan rusak [LPR-7K3Q]',
      inReplyTo: '<asal@example.org>',
      references: ['<asal@example.org>'],
      text: 'Laporan Anda kami terima.',
    });
    const message = await pending;
    expect(message.envelope).toEqual({ from: 'lapor@lapor.example', to: ['warga-1@example.org'] });
    const parsed = await simpleParser(message.raw);
    expect(parsed.subject).toBe('Re: Jalan rusak [LPR-7K3Q]');
    expect(parsed.messageId).toBe(info.messageId);
    expect(parsed.inReplyTo).toBe('<asal@example.org>');
    expect(parsed.text?.trim()).toBe('Laporan Anda kami terima.');
    const files = readdirSync(join(dir, 'outbox'));
    expect(files.some((f) => /^\d{4}-\d\d-\d\dT[\d-]+\.\d{3}Z-\d+\.eml$/.test(f) && readFileSync(join(dir, 'outbox', f)).equals(message.raw))).toBe(true);
    // Already received: waitFor answers at once.
    await expect(sink.waitFor((m) => m === message, 1)).resolves.toBe(message);
    expect(sink.messages()).toContain(message);
  });

  it('waitFor gives up after its timeout', async () => {
    await expect(sink.waitFor((m) => m.envelope.to.includes('tidak-ada@example.org'), 100)).rejects.toThrow(/no matching message within 100 ms/);
  });

  it('failNext refuses the next transaction with the code asked for, then accepts again', async () => {
    const to = 'warga-2@example.org';
    sink.failNext(451, '4.3.0 Coba lagi nanti');
    const refused = await transport()
      .sendMail({ from: 'lapor@lapor.example', to, subject: 'satu', text: 'x' })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(refused).toMatchObject({ responseCode: 451 });
    expect(String((refused as Error).message)).toContain('Coba lagi nanti');
    await transport().sendMail({ from: 'lapor@lapor.example', to, subject: 'dua', text: 'x' });
    const got = sink.messages().filter((m) => m.envelope.to.includes(to));
    expect(got.map((m) => m.raw.toString('utf8').match(/^Subject: (.*)$/m)?.[1])).toEqual(['dua']);
  });

  it('failNext can refuse after DATA, and count several transactions', async () => {
    const to = 'warga-3@example.org';
    sink.failNext(550, '5.7.1 Ditolak', { count: 2, at: 'data' });
    for (const subject of ['satu', 'dua']) {
      await expect(transport().sendMail({ from: 'lapor@lapor.example', to, subject, text: 'x' })).rejects.toMatchObject({ responseCode: 550 });
    }
    await transport().sendMail({ from: 'lapor@lapor.example', to, subject: 'tiga', text: 'x' });
    expect(sink.messages().filter((m) => m.envelope.to.includes(to))).toHaveLength(1);
  });

  it('clear() forgets what was received', async () => {
    await transport().sendMail({ from: 'lapor@lapor.example', to: 'warga-4@example.org', subject: 'empat', text: 'x' });
    expect(sink.messages().length).toBeGreaterThan(0);
    sink.clear();
    expect(sink.messages()).toEqual([]);
  });
});
