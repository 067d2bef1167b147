import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalDovecot, type LocalDovecot } from '../../../src/local/dovecot.ts';
import { startSmtpSink, type SmtpSink } from '../../../src/local/smtp-sink.ts';
import { createLogger } from '../../../src/log.ts';
import { composeMail } from '../../helpers/email.ts';
import { createTestEnv, eventually, type TestEnv } from '../../helpers/env.ts';

/**
 * The mailbox reader's connection: several mailboxes at once (each read and answered through its
 * own servers), a server that goes away and comes back, and a server without IDLE.
 */

const log = createLogger({ level: 'warn' });
const USERS = [
  { user: 'pengaduan', password: 'rahasia-pengaduan' },
  { user: 'wbs', password: 'rahasia-wbs' },
];
let dir: string;
let dovecot: LocalDovecot;
let sinks: SmtpSink[];
let env: TestEnv;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lx-'));
  dovecot = await startLocalDovecot({ dir, log, users: USERS });
  sinks = [await startSmtpSink({ log }), await startSmtpSink({ log })];
  env = await createTestEnv({
    channels: ['email'],
    env: {
      LAPOR_IMAP_URL: dovecot.imapUrl('pengaduan'),
      LAPOR_SMTP_URL: sinks[0]!.url,
      LAPOR_MAIL_FROM: 'LAPOR! <pengaduan@lapor.example>',
      LAPOR_MAIL_MAILBOXES: JSON.stringify([{ id: 'wbs', imapUrl: dovecot.imapUrl('wbs'), smtpUrl: sinks[1]!.url, from: 'WBS LAPOR! <wbs@lapor.example>' }]),
      LAPOR_MAIL_LEASE_MS: '1500',
      LAPOR_MAIL_RECONNECT_MIN_MS: '100',
      LAPOR_MAIL_RECONNECT_MAX_MS: '500',
    },
  });
}, 60_000);
afterAll(async () => {
  await env?.close();
  for (const sink of sinks ?? []) await sink.stop();
  await dovecot?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function deliver(server: LocalDovecot, user: string, raw: Buffer): Promise<void> {
  const password = server.users.find((u) => u.user === user)!.password;
  const client = new ImapFlow({ host: server.host, port: server.port, secure: false, auth: { user, pass: password }, logger: false });
  await client.connect();
  try {
    await client.append('INBOX', raw);
  } finally {
    await client.logout().catch(() => client.close());
  }
}

async function replyIn(sink: SmtpSink, to: string, matching: RegExp) {
  return eventually(async () => {
    for (const message of sink.messages().filter((m) => m.envelope.to.includes(to))) {
      const parsed = await simpleParser(message.raw);
      if (matching.test(`${parsed.subject}\n${parsed.text}`)) return parsed;
    }
    return undefined;
  }, 20_000, `a mail to ${to} matching ${matching}`);
}

describe('several mailboxes', () => {
  it('each is read, and each citizen is answered from the mailbox they wrote to', async () => {
    await deliver(dovecot, 'pengaduan', await composeMail({ from: 'satu@surel.example', to: 'pengaduan@lapor.example', subject: 'Lampu mati', text: 'Lampu jalan di Jl. Anggrek mati seminggu.' }));
    await deliver(dovecot, 'wbs', await composeMail({ from: 'dua@surel.example', to: 'wbs@lapor.example', subject: 'RAHASIA pungli', text: 'Pungutan liar di kantor kelurahan untuk surat domisili.' }));
    const first = await replyIn(sinks[0]!, 'satu@surel.example', /diterima/);
    expect(first.from?.value[0]).toMatchObject({ name: 'LAPOR!', address: 'pengaduan@lapor.example' });
    const second = await replyIn(sinks[1]!, 'dua@surel.example', /diterima/);
    expect(second.from?.value[0]).toMatchObject({ name: 'WBS LAPOR!', address: 'wbs@lapor.example' });
    expect(sinks[0]!.messages().some((m) => m.envelope.to.includes('dua@surel.example'))).toBe(false);
    const links = env.runtime.adapters.get('email')!.links!();
    expect(links.map((l) => l.link).sort()).toEqual(['utama', 'wbs']);
  });
});

describe('the IMAP server goes away', () => {
  it('the reader says so, reconnects when it is back, and reads what came meanwhile', async () => {
    const port = dovecot.port;
    await dovecot.stop();
    await eventually(async () => (env.runtime.adapters.get('email')!.links!().every((l) => !l.ok) ? true : undefined), 20_000, 'both links down');
    dovecot = await startLocalDovecot({ dir, log, port, users: USERS });
    await deliver(dovecot, 'pengaduan', await composeMail({ from: 'tiga@surel.example', subject: 'Banjir', text: 'Banjir di perumahan Griya Asri setinggi lutut.' }));
    await replyIn(sinks[0]!, 'tiga@surel.example', /diterima/);
    await eventually(async () => (env.runtime.adapters.get('email')!.links!().every((l) => l.ok) ? true : undefined), 20_000, 'both links up');
  });
});

describe('a server without IDLE', () => {
  it('is read by polling', async () => {
    const quietDir = mkdtempSync(join(tmpdir(), 'ly-'));
    const quiet = await startLocalDovecot({ dir: quietDir, log, capability: 'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS MOVE' });
    const sink = await startSmtpSink({ log });
    const polling = await createTestEnv({
      channels: ['email'],
      env: { LAPOR_IMAP_URL: quiet.imapUrl(), LAPOR_SMTP_URL: sink.url, LAPOR_MAIL_FROM: 'LAPOR! <lapor@lapor.example>', LAPOR_MAIL_IDLE_RENEW_MS: '5000' },
    });
    try {
      const probe = new ImapFlow({ host: quiet.host, port: quiet.port, secure: false, auth: { user: 'lapor', pass: quiet.users[0]!.password }, logger: false });
      await probe.connect();
      expect(probe.capabilities.has('IDLE')).toBe(false);
      await probe.logout();
      // Let the reader find the folder empty and settle into waiting before the mail arrives.
      await eventually(async () => (polling.runtime.adapters.get('email')!.links!()[0]!.state === 'waiting' ? true : undefined), 20_000, 'the reader waiting');
      await deliver(quiet, 'lapor', await composeMail({ from: 'empat@surel.example', subject: 'Sampah', text: 'Sampah tidak diangkut dua minggu di RT 04.' }));
      await replyIn(sink, 'empat@surel.example', /diterima/);
    } finally {
      await polling.close();
      await sink.stop();
      await quiet.stop();
      rmSync(quietDir, { recursive: true, force: true });
    }
  });
});
