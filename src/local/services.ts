import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
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

/**
 * Ports this process must not hand out: the ones it handed out already (a service starts a moment
 * after its port is chosen, so two choices in a row could meet) and the ones it will listen on
 * itself. The HTTP port is chosen by whoever starts the gateway, and a local PostgreSQL given the
 * same port once made `npm start` fail with EADDRINUSE in a CI run.
 */
const reservedPorts = new Set<number>();

export function reservePort(port: number): void {
  reservedPorts.add(port);
}

/** A loopback port nothing listens on now, and not reserved (after 20 tries, any free one). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = await anyFreePort();
    if (!reservedPorts.has(port) || attempt >= 20) {
      reservedPorts.add(port);
      return port;
    }
  }
}

function anyFreePort(): Promise<number> {
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

/**
 * A start-up failure a newcomer can fix: its message is one plain sentence that says how, printed
 * on the terminal before any JSON log (src/cli.ts).
 */
export class StartupError extends Error {
  readonly code: string = 'LAPOR_STARTUP';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'StartupError';
  }
}

export class MissingBinaryError extends StartupError {
  override readonly code = 'LAPOR_MISSING_BINARY';
  constructor(binary: string, install: string) {
    super(`${binary} was not found. Install it with: ${install}`);
    this.name = 'MissingBinaryError';
  }
}

/** The pid a pid file names, if that process is running. */
export function livePidFrom(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

/** Stops a process by pid (not our child): `signal`, then SIGKILL after `timeoutMs`. */
export async function stopPid(pid: number, signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return; // gone already
  }
  for (const until = Date.now() + timeoutMs; Date.now() < until && isAlive(pid); ) await sleep(50);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(50);
}

/**
 * Whether a process runs. A zombie has exited (it only waits to be reaped), so /proc's state wins
 * over `kill(pid, 0)`, which succeeds for zombies.
 */
export function isAlive(pid: number): boolean {
  const stat = procStat(pid);
  if (stat) return stat.state !== 'Z' && stat.state !== 'X';
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When a process started, in clock ticks since boot: with the pid it names one process, so a pid
 * reused after a crash is not mistaken for the one recorded. `undefined` where /proc is missing.
 */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

function procStat(pid: number): { state: string; startTime: string } | undefined {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
  const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTime: fields[19] ?? '' };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

export interface LocalServiceOptions {
  dir: string;
  port?: number;
  log: Logger;
  /**
   * Outlive this process: the service runs in a session of its own with its output in a log file,
   * and `stop()` signals it by pid. Shared local services (src/local/shared.ts) need this, since
   * the last process using them stops them, not necessarily the one that started them.
   */
  detached?: boolean;
}

export interface LocalRedisOptions extends LocalServiceOptions {
  fsync?: 'always' | 'everysec';
}

export interface StartedService extends LocalService {
  port: number;
  pid: number;
  child: ChildProcess;
}

export async function startLocalRedis(options: LocalRedisOptions): Promise<StartedService> {
  const binary = which('redis-server', ['/usr/bin', '/usr/sbin']);
  if (!binary) throw new MissingBinaryError('redis-server', 'apt-get install -y redis-server');
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const pidFile = join(dir, 'redis.pid');
  const running = livePidFrom(pidFile);
  if (running) throw new DataDirBusyError(dir, running);
  const port = options.port ?? (await freePort());
  const logFile = join(dir, 'redis.log');
  // The strict profile of DESIGN.md: every acknowledged write is on disk, nothing is ever evicted.
  const child = spawn(
    binary,
    [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--pidfile', pidFile,
      '--appendonly', 'yes', '--appendfsync', options.fsync ?? 'always', '--maxmemory-policy', 'noeviction',
      '--save', '', '--daemonize', 'no', '--protected-mode', 'yes', '--logfile', logFile,
    ],
    // Own process group: a Ctrl-C in the terminal reaches us, and we stop the services in order.
    { stdio: 'ignore', detached: true },
  );
  child.on('error', (err) => options.log.error({ err }, 'redis-server failed'));
  const url = `redis://127.0.0.1:${port}`;
  await waitUntil(() => redisAnswers(url), 'redis-server', child, logFile);
  if (options.detached) child.unref();
  const pid = child.pid!;
  return {
    url, port, pid, child,
    stop: () => (options.detached ? stopPid(pid, 'SIGTERM') : stopChild(child, 'SIGTERM')),
  };
}

/**
 * Whether a server is there at all: it accepts the connection and says something, even an error
 * (Redis LOADING its append-only file; PostgreSQL starting up, recovering, or at max_connections).
 * Such a server is busy, not dead, and must not be stopped for it.
 */
export async function serverResponds(kind: 'redis' | 'postgres', url: string): Promise<boolean> {
  if (kind === 'redis') {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2_000, commandTimeout: 2_000 });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      return true;
    } catch (err) {
      // A reply that is an error (LOADING…) came from a live server; a refused or timed-out connection did not.
      return (err as { name?: string }).name === 'ReplyError';
    } finally {
      probe.disconnect();
    }
  }
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000, query_timeout: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch (err) {
    // An SQLSTATE (57P03 starting up, 53300 too many clients…) is the server's own answer.
    return typeof (err as { code?: unknown }).code === 'string' && /^[0-9A-Z]{5}$/.test((err as { code: string }).code);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether a redis-server answers PING at `url`. */
export async function redisAnswers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2_000, commandTimeout: 2_000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export interface LocalPostgresOptions extends LocalServiceOptions {
  database?: string;
  /** Tests trade durability for speed; a real local run keeps PostgreSQL's defaults. */
  fast?: boolean;
}

const PG_DIRS = ['/usr/local/bin', '/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'];

/** The postgres system user's ids, when we are root (PostgreSQL refuses to run as root). */
export function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0) throw new MissingBinaryError('the postgres system user', 'apt-get install -y postgresql');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** `cmd args` as the postgres user when we are root. setpriv execs in place (unlike runuser), so our signals reach postgres itself. */
export function asPostgres(cmd: string, args: string[]): { cmd: string; args: string[] } {
  return postgresUser() ? { cmd: 'setpriv', args: ['--reuid=postgres', '--regid=postgres', '--init-groups', cmd, ...args] } : { cmd, args };
}

export async function startLocalPostgres(options: LocalPostgresOptions): Promise<StartedService> {
  const initdb = which('initdb', PG_DIRS);
  const postgres = which('postgres', PG_DIRS);
  if (!initdb || !postgres) throw new MissingBinaryError('PostgreSQL (initdb, postgres)', 'apt-get install -y postgresql');
  const dir = resolve(options.dir);
  const dataDir = join(dir, 'data');
  mkdirSync(dir, { recursive: true });
  const owner = postgresUser();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    const init = asPostgres(initdb, ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', ...(options.fast ? ['--no-sync'] : [])]);
    const result = spawnSync(init.cmd, init.args, { encoding: 'utf8' });
    if (result.status !== 0) {
      const output = (result.stderr || result.stdout || String(result.error ?? '')).trim();
      throw new StartupError(`PostgreSQL could not create its cluster in ${dataDir} (${init.cmd} ${init.args.join(' ')}): ${output}`);
    }
  }
  const running = livePidFrom(join(dataDir, 'postmaster.pid'));
  if (running) throw new DataDirBusyError(dir, running);
  const port = options.port ?? (await freePort());
  const settings = ['-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'];
  if (options.fast) settings.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const run = asPostgres(postgres, ['-D', dataDir, ...settings]);
  const logFile = join(dir, 'postgres.log');
  // The log is a file, not a pipe to us: a detached postgres must not lose its log (or meet EPIPE)
  // when the process that started it exits.
  const logFd = openSync(logFile, 'w');
  const child = spawn(run.cmd, run.args, { stdio: ['ignore', logFd, logFd], detached: true });
  closeSync(logFd);
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
  if (options.detached) child.unref();
  const pid = child.pid!;
  // SIGINT is PostgreSQL's "fast" shutdown: clean, and quick.
  return {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`, port, pid, child,
    stop: () => (options.detached ? stopPid(pid, 'SIGINT', 30_000) : stopChild(child, 'SIGINT')),
  };
}

/** Whether PostgreSQL answers at `url` (a connection and a trivial query). */
export async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000, query_timeout: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A service already runs on this directory, started by something we cannot attach to. */
export class DataDirBusyError extends StartupError {
  override readonly code = 'LAPOR_DATA_DIR_BUSY';
  constructor(dir: string, pid: number) {
    super(`${dir} is in use by process ${pid}. Stop that process (kill ${pid}) or set LAPOR_DATA_DIR to another folder.`);
    this.name = 'DataDirBusyError';
  }
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
  if (child.exitCode === null) child.kill('SIGKILL');
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
  const why = child.exitCode !== null ? `it exited with code ${child.exitCode}` : `no answer in 30 s (${(lastError as Error | undefined)?.message ?? 'timeout'})`;
  throw new StartupError(`${what} did not start: ${why}. Its log is ${logFile}${tail ? `; it ends with:\n${tail}` : '.'}`);
}
