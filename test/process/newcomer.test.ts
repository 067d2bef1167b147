import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/services.ts';
import { createDatabase, eventually, testEnvVars } from '../helpers/env.ts';
import { killAllGateways, startGateway } from '../helpers/gateway-process.ts';

/**
 * The "done when", as a newcomer does it: `lapor start` with no SMSC configured runs the SMSC
 * simulator; a second terminal texts the gateway through the simulator's control API and gets both
 * answers by SMS — and can drop the bind, after which the gateway binds again and still answers.
 */
afterAll(async () => {
  await killAllGateways();
});

describe('a newcomer texts the gateway from a second terminal', () => {
  it('gets the tracking ID for LAPOR … and the status for CEK <id>', { timeout: 60_000 }, async () => {
    const gateway = await startGateway({ ...testEnvVars({ LAPOR_DATABASE_URL: await createDatabase() }), LAPOR_LOG_LEVEL: 'info' });
    const line = await eventually(async () => gateway.stdout.join('').split('\n').find((l) => l.includes('started the SMSC simulator')));
    const control = (JSON.parse(line) as { control: string }).control;
    const from = '+6281234567890';
    const send = async (text: string) => {
      const res = await fetch(`${control}/mo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from, text }) });
      expect(await res.json()).toMatchObject({ statuses: [0] });
    };
    const reply = (matching: RegExp) =>
      eventually(async () => {
        const { replies } = (await (await fetch(`${control}/replies?to=${encodeURIComponent(from)}`)).json()) as { replies: { text: string }[] };
        return replies.find((r) => matching.test(r.text));
      }, 15_000, `reply matching ${matching}`);

    await send('LAPOR jalan rusak di depan SDN 3');
    const received = await reply(/diterima dengan nomor (\d{10})/);
    const trackingId = /nomor (\d{10})/.exec(received.text)![1]!;
    await send(`CEK ${trackingId}`);
    const status = await reply(/Status laporan/);
    expect(status.text).toContain(trackingId);

    // The second terminal can break the link as real SMSCs do; the gateway binds again and answers.
    // (Written `cek`: the very same text within LAPOR_SMPP_QUERY_DEDUP_SECONDS counts as a redelivery.)
    const fault = (body: unknown) => fetch(`${control}/fault`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await fault({ kind: 'explode' })).status).toBe(400);
    expect(await (await fault({ kind: 'drop' })).json()).toEqual({ dropped: 1 });
    await eventually(async () => {
      const res = await fetch(`${control}/mo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from, text: `cek ${trackingId}` }) });
      return res.ok ? true : undefined; // 500 "no ESME is bound" until the gateway is back
    }, 15_000, 'a bind after the drop');
    await eventually(async () => {
      const { replies } = (await (await fetch(`${control}/replies?to=${encodeURIComponent(from)}`)).json()) as { replies: { text: string }[] };
      return replies.filter((r) => /Status laporan/.test(r.text)).length >= 2 ? true : undefined;
    }, 15_000, 'the status again after the rebind');
    expect(await gateway.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});

describe('a newcomer tweets at the gateway from a second terminal', () => {
  it('`npm run sim:x -- tweet` prints the threaded reply with the tracking ID, and CEK in the thread its status', { timeout: 60_000 }, async () => {
    const gateway = await startGateway({ ...testEnvVars({ LAPOR_DATABASE_URL: await createDatabase() }), LAPOR_LOG_LEVEL: 'info' });
    const line = await eventually(async () => gateway.stdout.join('').split('\n').find((l) => l.includes('started the fake X API')));
    const port = new URL((JSON.parse(line) as { api: string }).api).port;
    // The script a newcomer runs (`npm run sim:x -- …`), as its own process.
    const simX = async (...args: string[]) => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/sim-x.ts', ...args, '--port', port, '--wait', '5'], {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
      });
      return stdout;
    };
    const first = await simX('tweet', '--from', '@warga', '@LAPOR1708 #lapor lampu jalan mati di Jl. Melati');
    const [, replyId, trackingId] = /← reply (\d+): .*diterima dengan nomor (\d{10})/.exec(first) ?? [];
    expect(trackingId, first).toBeDefined();
    const status = await simX('tweet', '--from', '@warga', '--reply-to', replyId!, `@LAPOR1708 CEK ${trackingId}`);
    expect(status).toMatch(new RegExp(`← reply \\d+: LAPOR! Status laporan ${trackingId}`));
    expect(await gateway.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});

describe('a newcomer writes to the gateway by email', () => {
  it('`npm start` says email is off and how to turn it on; with `sim:mail` a mail gets its threaded reply', { timeout: 90_000 }, async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const base = testEnvVars({ LAPOR_DATABASE_URL: await createDatabase() });
    let gateway = await startGateway({ ...base, LAPOR_LOG_LEVEL: 'info' });
    const off = await eventually(async () => gateway.stdout.join('').split('\n').find((l) => l.includes('email is off')));
    expect(off).toContain('npm run sim:mail');
    await gateway.kill('SIGTERM');

    // A second terminal: the local mailbox, on ports of its own, its data in a folder of its own.
    const dataDir = mkdtempSync(join(tmpdir(), 'nm-'));
    chmodSync(dataDir, 0o755); // Dovecot's own users must reach the mail below it
    const [imapPort, smtpPort, controlPort] = [await freePort(), await freePort(), await freePort()];
    const ports = ['--imap-port', String(imapPort), '--smtp-port', String(smtpPort), '--control-port', String(controlPort)];
    const simEnv = { ...process.env, LAPOR_DATA_DIR: dataDir };
    const serve = spawn(process.execPath, ['--import', 'tsx', 'scripts/sim-mail.ts', 'serve', ...ports], { cwd: root, env: simEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let printed = '';
    serve.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
    serve.stderr.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
    try {
      await eventually(async () => (printed.includes('LAPOR_MAIL_FROM') ? true : undefined), 60_000, `sim:mail ready (${printed})`);
      const vars = Object.fromEntries([...printed.matchAll(/export (LAPOR_\w+)='([^']*)'/g)].map((m) => [m[1]!, m[2]!]));
      expect(Object.keys(vars).sort()).toEqual(['LAPOR_IMAP_URL', 'LAPOR_MAIL_FROM', 'LAPOR_SMTP_URL']);
      gateway = await startGateway({ ...base, ...vars });
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/sim-mail.ts', 'send', '--from', 'warga@example.org', ...ports, 'Jalan rusak di depan SDN 3'], { cwd: root, env: simEnv });
      expect(stdout).toMatch(/Subject: +\[LAPOR! #\d{10}\] Laporan Anda telah kami terima/);
      expect(stdout).toMatch(/In-Reply-To: .*the message just sent/);
      expect(await gateway.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    } finally {
      if (serve.exitCode === null && serve.signalCode === null) {
        const exited = new Promise((resolve) => serve.once('exit', resolve));
        serve.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
