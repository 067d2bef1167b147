import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, chownSync, writeFileSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Logger } from 'pino';

/**
 * Local Redis and PostgreSQL for a run with nothing configured (`npm start`) and for the test
 * harness: Debian's redis-server and PostgreSQL binaries, started as children on loopback with
 * their data under a directory of ours, so the data survives a restart.
 */

export interface LocalService {
  url: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

function which(binary: string, extraDirs: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extraDirs]) {
    if (dir && existsSync(join(dir, binary))) return join(dir, binary);
  }
  return undefined;
}

export class MissingBinaryError extends Error {
  readonly code = 'LAPOR_MISSING_BINARY';
  constructor(binary: string, install: string) {
    super(`${binary} was not found. Install it with: ${install}`);
    this.name = 'MissingBinaryError';
  }
}

/** Stops a process a previous run left behind (its parent was killed), so we can own the data dir. */
async function stopStale(pidFile: string, signal: NodeJS.Signals, log: Logger): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  log.warn({ pid, pidFile }, 'stopping a local service left over from an earlier run');
  process.kill(pid, signal);
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(100);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill(signal);
  });
}

export interface LocalRedisOptions {
  dir: string;
  port?: number;
  fsync?: 'always' | 'everysec';
  log: Logger;
}

export async function startLocalRedis(options: LocalRedisOptions): Promise<LocalService & { port: number; child: ChildProcess }> {
  const binary = which('redis-server', ['/usr/bin', '/usr/sbin']);
  if (!binary) throw new MissingBinaryError('redis-server', 'apt-get install -y redis-server');
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const pidFile = join(dir, 'redis.pid');
  await stopStale(pidFile, 'SIGTERM', options.log);
  const port = options.port ?? (await freePort());
  // The strict profile of DESIGN.md: every acknowledged write is on disk, nothing is ever evicted.
  const child = spawn(
    binary,
    [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--pidfile', pidFile,
      '--appendonly', 'yes', '--appendfsync', options.fsync ?? 'always', '--maxmemory-policy', 'noeviction',
      '--save', '', '--daemonize', 'no', '--protected-mode', 'yes', '--logfile', join(dir, 'redis.log'),
    ],
    // Own process group: a Ctrl-C in the terminal reaches us, and we stop the services in order.
    { stdio: 'ignore', detached: true },
  );
  child.on('error', (err) => options.log.error({ err }, 'redis-server failed'));
  const url = `redis://127.0.0.1:${port}`;
  await waitUntil(async () => {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } finally {
      probe.disconnect();
    }
  }, 'redis-server', child, join(dir, 'redis.log'));
  return { url, port, child, stop: () => stopChild(child, 'SIGTERM') };
}

export interface LocalPostgresOptions {
  dir: string;
  port?: number;
  database?: string;
  /** Tests trade durability for speed; a real local run keeps PostgreSQL's defaults. */
  fast?: boolean;
  log: Logger;
}

const PG_DIRS = ['/usr/local/bin', '/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'];

export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalService & { port: number; child: ChildProcess }> {
  const initdb = which('initdb', PG_DIRS);
  const postgres = which('postgres', PG_DIRS);
  if (!initdb || !postgres) throw new MissingBinaryError('PostgreSQL (initdb, postgres)', 'apt-get install -y postgresql');
  const dir = resolve(options.dir);
  const dataDir = join(dir, 'data');
  mkdirSync(dir, { recursive: true });
  // PostgreSQL refuses to run as root: run it as the postgres user, which must own its directory.
  // setpriv execs in place (unlike runuser), so our signals reach postgres itself.
  const asRoot = process.getuid?.() === 0;
  const runAs = (cmd: string, args: string[]) =>
    asRoot ? { cmd: 'setpriv', args: ['--reuid=postgres', '--regid=postgres', '--init-groups', cmd, ...args] } : { cmd, args };
  if (asRoot) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (ids.status !== 0) throw new MissingBinaryError('the postgres system user', 'apt-get install -y postgresql');
    chownSync(dir, Number(ids.stdout.trim()), Number(gid.stdout.trim()));
  }
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    const init = runAs(initdb, ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', ...(options.fast ? ['--no-sync'] : [])]);
    const result = spawnSync(init.cmd, init.args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`initdb failed: ${result.stderr || result.stdout}`);
  }
  await stopStale(join(dataDir, 'postmaster.pid'), 'SIGINT', options.log);
  const port = options.port ?? (await freePort());
  const settings = ['-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'];
  if (options.fast) settings.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const run = runAs(postgres, ['-D', dataDir, ...settings]);
  const logFile = join(dir, 'postgres.log');
  writeFileSync(logFile, '');
  const child = spawn(run.cmd, run.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout?.on('data', (chunk: Buffer) => appendFileSync(logFile, chunk));
  child.stderr?.on('data', (chunk: Buffer) => appendFileSync(logFile, chunk));
  child.on('error', (err) => options.log.error({ err }, 'postgres failed'));

  const database = options.database ?? 'lapor';
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await waitUntil(async () => {
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (!rowCount) await client.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
      return true;
    } finally {
      await client.end().catch(() => undefined);
    }
  }, 'postgres', child, logFile);
  // SIGINT is PostgreSQL's "fast" shutdown: clean, and quick.
  return { url: `postgres://postgres@127.0.0.1:${port}/${database}`, port, child, stop: () => stopChild(child, 'SIGINT') };
}

async function waitUntil(probe: () => Promise<boolean>, what: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(50);
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new Error(`${what} did not start (${(lastError as Error | undefined)?.message ?? `exit ${child.exitCode}`}); log ${logFile}:\n${tail}`);
}
