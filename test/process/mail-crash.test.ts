import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { startLocalDovecot, type LocalDovecot } from '../../src/local/dovecot.ts';
import { startSmtpSink, type SmtpSink } from '../../src/local/smtp-sink.ts';
import { composeMail, OUR_ADDRESS } from '../helpers/email.ts';
import { createDatabase, eventually, testEnvVars } from '../helpers/env.ts';
import { killAllGateways, startGateway } from '../helpers/gateway-process.ts';

/**
 * The mailbox reader in a real gateway process, killed (SIGKILL) between the steps of taking a mail
 * — stored but not flagged, flagged but not moved — then restarted; and the mailbox renumbered
 * (a new UIDVALIDITY) while a mail sat in it. Every mail is exactly one report with one reply.
 */

const log = createLogger({ level: 'warn' });
let dir: string;
let dovecot: LocalDovecot;
let sink: SmtpSink;
let db: pg.Client;
let env: Record<string, string>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lc-'));
  dovecot = await startLocalDovecot({ dir, log });
  sink = await startSmtpSink({ log });
  const databaseUrl = await createDatabase();
  env = testEnvVars({
    LAPOR_DATABASE_URL: databaseUrl,
    LAPOR_IMAP_URL: dovecot.imapUrl(),
    LAPOR_SMTP_URL: sink.url,
    LAPOR_MAIL_FROM: `LAPOR! <${OUR_ADDRESS}>`,
    LAPOR_MAIL_LEASE_MS: '1500',
    LAPOR_LOG_LEVEL: 'info',
    LAPOR_QUEUE_LOCK_MS: '2000',
  });
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
}, 60_000);
afterEach(async () => {
  await killAllGateways();
});
afterAll(async () => {
  await db?.end();
  await sink?.stop();
  await dovecot?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function withImap<T>(work: (client: ImapFlow) => Promise<T>): Promise<T> {
  const client = new ImapFlow({ host: dovecot.host, port: dovecot.port, secure: false, auth: { user: dovecot.users[0]!.user, pass: dovecot.users[0]!.password }, logger: false });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.logout().catch(() => client.close());
  }
}

const reportCount = async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM reports`)).rows[0]!.n;
const inboxCount = () => withImap(async (c) => ((await c.status('INBOX', { messages: true })) || { messages: 0 }).messages ?? 0);
const repliesTo = (address: string) => sink.messages().filter((m) => m.envelope.to.includes(address));

async function receipts(addresses: string[]): Promise<number[]> {
  const counts: number[] = [];
  for (const address of addresses) {
    let n = 0;
    for (const m of repliesTo(address)) if (/diterima/.test((await simpleParser(m.raw)).text ?? '')) n++;
    counts.push(n);
  }
  return counts;
}

describe('the mailbox reader killed between taking steps', () => {
  it.each(['mail-stored', 'mail-flagged'])('killed at %s: on restart every mail is one report and one receipt', async (point) => {
    const before = await reportCount();
    const senders = Array.from({ length: 4 }, (_, i) => `korban${i}.${point}@surel.example`);
    await withImap(async (c) => {
      for (const [i, from] of senders.entries()) {
        await c.append('INBOX', await composeMail({ from, subject: `Jalan berlubang di gang ${i + 1}`, text: `Jalan berlubang besar di gang ${i + 1} RW 03, sudah dua motor jatuh.` }));
      }
    });
    let gateway = await startGateway({ ...env, LAPOR_TEST_CRASH_AT: point }, { waitReady: false });
    expect((await gateway.exited).signal).toBe('SIGKILL');
    // The mail being taken is still in the mailbox: nothing was lost.
    expect(await inboxCount()).toBeGreaterThanOrEqual(1);

    gateway = await startGateway(env);
    await eventually(async () => ((await reportCount()) === before + 4 ? true : undefined), 30_000, 'four reports');
    await eventually(async () => ((await inboxCount()) === 0 ? true : undefined), 15_000, 'the mailbox emptied');
    await eventually(async () => ((await receipts(senders)).every((n) => n >= 1) ? true : undefined), 30_000, 'a receipt to each');
    // Replies go out once the report is committed, from its outbound row: a restart never adds one.
    expect(await receipts(senders)).toEqual([1, 1, 1, 1]);
    expect(await reportCount()).toBe(before + 4);
    const logs = gateway.output();
    for (const secret of ['korban', 'Jalan berlubang']) expect(logs).not.toContain(secret);
  }, 120_000);
});

describe('two gateway processes on one mailbox', () => {
  it('one reads it (the lease), and every mail is one report with one receipt', async () => {
    const before = await reportCount();
    const [one, two] = await Promise.all([startGateway(env), startGateway(env)]);
    const senders = Array.from({ length: 6 }, (_, i) => `berdua${i}@surel.example`);
    await withImap(async (c) => {
      for (const [i, from] of senders.entries()) await c.append('INBOX', await composeMail({ from, subject: `Drainase tersumbat ${i}`, text: `Drainase di gang ${i + 1} tersumbat sampah, air meluap.` }));
    });
    await eventually(async () => ((await reportCount()) === before + 6 ? true : undefined), 30_000, 'six reports');
    await eventually(async () => ((await receipts(senders)).every((n) => n >= 1) ? true : undefined), 30_000, 'a receipt to each');
    expect(await receipts(senders)).toEqual([1, 1, 1, 1, 1, 1]);
    const readers = [one, two].filter((g) => g.output().includes('mailbox reader lease taken'));
    expect(readers).toHaveLength(1);
  }, 120_000);
});

describe('the mailbox renumbered', () => {
  it('a new UIDVALIDITY re-imports nothing, and a mail left in the mailbox by a crash is filed once', async () => {
    const before = await reportCount();
    const from = 'renumbered@surel.example';
    await withImap(async (c) => c.append('INBOX', await composeMail({ from, subject: 'Pohon tumbang', text: 'Pohon tumbang menutup Jl. Kenari sejak pagi.' })));
    let gateway = await startGateway({ ...env, LAPOR_TEST_CRASH_AT: 'mail-stored' }, { waitReady: false });
    expect((await gateway.exited).signal).toBe('SIGKILL');
    const validity = () => withImap(async (c) => String(((await c.status('INBOX', { uidValidity: true })) || { uidValidity: 0 }).uidValidity));
    const old = await validity();

    // Dovecot, stopped, loses its UID list and indexes: it numbers the mailbox afresh under a new
    // UIDVALIDITY, as after a restore from backup or a move to another server.
    const port = dovecot.port;
    const users = dovecot.users;
    await dovecot.stop();
    const maildir = join(dir, 'mail', users[0]!.user, 'Maildir');
    expect(existsSync(join(maildir, 'dovecot-uidlist'))).toBe(true);
    for (const file of readdirSync(maildir).filter((f) => f.startsWith('dovecot'))) rmSync(join(maildir, file));
    await new Promise((r) => setTimeout(r, 1_100)); // UIDVALIDITY is a timestamp in seconds
    dovecot = await startLocalDovecot({ dir, log, port, users });
    expect(await validity()).not.toBe(old);

    gateway = await startGateway(env);
    await eventually(async () => ((await inboxCount()) === 0 ? true : undefined), 30_000, 'the mailbox emptied');
    await eventually(async () => ((await receipts([from]))[0] === 1 ? true : undefined), 30_000, 'the receipt');
    expect(await reportCount()).toBe(before + 1);
    expect(gateway.output()).toContain('UIDVALIDITY changed');
  }, 120_000);
});
