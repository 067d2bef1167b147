import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/services.ts';
import { OUTSIDE_ROOT } from '../../src/local/shared.ts';
import { eventually } from '../helpers/env.ts';

/**
 * Issue #12, point 1: a newcomer clones into a private folder (root's home is 0700, as is anything
 * `mktemp -d` makes) and runs `npm start`. PostgreSQL runs as the `postgres` user when we are root
 * and could not enter such a folder. Here the real `npm start` runs in a copy of this checkout in a
 * fresh 0700 folder until a report is filed and stored — as root, and (when we are root and can
 * make one) as an ordinary user, for whom PostgreSQL runs as that user.
 *
 * Side effects outside the test's folders, undone at the end: the root run keeps its cluster in
 * /var/lib/lapor-gateway/<id>; the ordinary-user run creates the system user `lapor-newcomer`.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;
const USER = 'lapor-newcomer';
const cleanups: (() => void)[] = [];

afterAll(() => {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch {
      // best effort: the next cleanup still runs
    }
  }
});

/** This checkout's files as they are now (committed or not), copied to `target`: a clone of the working tree. */
function copyCheckout(target: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  expect(listed.status, listed.stderr).toBe(0);
  for (const file of new Set(listed.stdout.split('\0').filter(Boolean))) {
    const from = join(ROOT, file);
    if (!existsSync(from) || !statSync(from).isFile()) continue;
    mkdirSync(dirname(join(target, file)), { recursive: true });
    copyFileSync(from, join(target, file));
  }
}

interface NpmStart {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function npmStart(checkout: string, env: Record<string, string>, asUser?: string): NpmStart {
  const [cmd, args] = asUser
    ? ['setpriv', [`--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', 'npm', 'start']]
    : ['npm', ['start']];
  // Its own process group: npm, the shell script and node are stopped together.
  const child = spawn(cmd, args as string[], { cwd: checkout, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const chunks: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => chunks.join(''),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(-child.pid!, 'SIGTERM');
      const timer = setTimeout(() => groupAlive(child.pid!) && process.kill(-child.pid!, 'SIGKILL'), 30_000);
      await exited;
      // npm may exit before the gateway it ran has stopped the services: wait for the whole group.
      while (groupAlive(child.pid!)) await new Promise((r) => setTimeout(r, 50));
      clearTimeout(timer);
    },
  };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `npm start` until a report is filed and stored, then a clean stop. */
async function fileOneReport(checkout: string, home: string, asUser?: string): Promise<void> {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    LAPOR_PORT: String(port),
    // Free ports for every simulator: a developer's own `npm start` may hold the default ones.
    LAPOR_SMPP_SIMULATOR_PORT: '0',
    LAPOR_X_SIMULATOR_PORT: '0',
    LAPOR_TELEGRAM_SIMULATOR_PORT: '0',
    LAPOR_WHATSAPP_SIMULATOR_PORT: '0',
    npm_config_update_notifier: 'false',
  };
  const started = Date.now();
  const run = npmStart(checkout, env, asUser);
  cleanups.push(() => {
    if (run.child.exitCode === null) process.kill(-run.child.pid!, 'SIGKILL');
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await eventually(async () => {
      if (run.child.exitCode !== null) throw new Error(`npm start exited (${run.child.exitCode}):\n${run.output()}`);
      const res = await fetch(`${url}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    }, 180_000, 'npm start ready');
    const servedMs = Date.now() - started;
    console.info(`npm start in a private folder${asUser ? ` as ${asUser}` : ''}: ready ${servedMs} ms after the command (npm ci included where node_modules was missing)`);
    const res = await fetch(`${url}/api/v1/reports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'Jalan berlubang di depan SDN 3 Sukamaju sejak dua bulan, mohon segera diperbaiki.' }),
    });
    expect(res.status, run.output()).toBe(201);
    const { trackingId } = (await res.json()) as { trackingId: string };
    const stored = await eventually(async () => {
      const body = (await (await fetch(`${url}/api/v1/reports/${trackingId}`)).json()) as Record<string, unknown>;
      return body.pending ? undefined : body;
    }, 15_000, 'report stored');
    expect(stored).toMatchObject({ trackingId, status: 'belum_terverifikasi' });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- npm start output ---\n${run.output()}`);
  } finally {
    await run.stop();
  }
}

describe('npm start from a clone in a private folder', () => {
  it('serves and stores a report when the folder is 0700 and owned by us', { timeout: 240_000 }, async () => {
    const home = mkdtempSync(join(tmpdir(), 'lapor-home-'));
    cleanups.push(() => rmSync(home, { recursive: true, force: true }));
    expect(statSync(home).mode & 0o777).toBe(0o700);
    const checkout = join(home, 'lapor-gateway');
    copyCheckout(checkout);
    expect(existsSync(join(checkout, 'node_modules'))).toBe(false); // npm start installs them itself

    const pgLink = join(checkout, 'data', 'pg');
    cleanups.push(() => {
      if (existsSync(pgLink) && lstatSync(pgLink).isSymbolicLink()) {
        const outside = readlinkSync(pgLink);
        rmSync(outside, { recursive: true, force: true });
        rmSync(`${outside}.origin`, { force: true });
      }
    });
    await fileOneReport(checkout, home);

    if (IS_ROOT) {
      // The postgres user cannot enter the folder: the cluster lives outside, linked from data/pg.
      expect(lstatSync(pgLink).isSymbolicLink()).toBe(true);
      const outside = readlinkSync(pgLink);
      expect(dirname(outside)).toBe(OUTSIDE_ROOT);
      expect(existsSync(join(outside, 'data', 'PG_VERSION'))).toBe(true);
      expect(realpathSync(join(checkout, 'data'))).toContain(home);
    } else {
      expect(lstatSync(pgLink).isDirectory()).toBe(true);
    }
  });

  it.skipIf(!IS_ROOT)('serves and stores a report for an ordinary user in their own 0700 folder', { timeout: 240_000 }, async () => {
    const exists = spawnSync('id', ['-u', USER]).status === 0;
    if (!exists) {
      const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], { encoding: 'utf8' });
      expect(made.status, made.stderr).toBe(0);
      cleanups.push(() => spawnSync('userdel', [USER]));
    }
    const uid = Number(spawnSync('id', ['-u', USER], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', USER], { encoding: 'utf8' }).stdout.trim());

    // /tmp is open to everyone; the home under it is the user's own, 0700.
    const base = mkdtempSync(join(tmpdir(), 'lapor-user-'));
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    spawnSync('chmod', ['0755', base]);
    const home = join(base, 'home');
    const checkout = join(home, 'lapor-gateway');
    copyCheckout(checkout);
    // The user's npm would fetch the packages again with a cache of its own; a copy of ours is the same lock file.
    cpSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    const chown = spawnSync('chown', ['-R', `${uid}:${gid}`, home]);
    expect(chown.status).toBe(0);
    spawnSync('chmod', ['0700', home]);

    await fileOneReport(checkout, home, USER);
    const pg = join(checkout, 'data', 'pg');
    expect(lstatSync(pg).isDirectory(), 'an ordinary user keeps PostgreSQL in data/pg').toBe(true);
    expect(statSync(join(pg, 'data')).uid).toBe(uid);
    chownSync(base, 0, 0);
  });
});
