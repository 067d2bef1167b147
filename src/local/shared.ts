import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  isAlive,
  livePidFrom,
  postgresAnswers,
  postgresUser,
  processStartTime,
  redisAnswers,
  serverResponds,
  sleep,
  startLocalPostgres,
  startLocalRedis,
  StartupError,
  stopPid,
} from './services.ts';

/**
 * The local Redis and PostgreSQL of one data folder, shared by every `lapor` process of the
 * checkout (`npm start` in one terminal, `lapor dlq list` or `lapor worker intake` in another).
 *
 * - The first process finds none running and starts them, detached, so they outlive it.
 * - Every later process finds them answering and attaches. Whether they run is decided by asking
 *   them (PING, SELECT 1), not by a pid file.
 * - Each process is recorded as a user (pid and start time) in `dataDir/local-services.json`. The
 *   last user to leave stops them; a user that was killed is dropped when it is found dead. So
 *   stopping `npm start` while `lapor worker` still runs leaves the services to the worker.
 * - Services whose users were all killed (SIGKILL, power loss) keep running and are adopted by
 *   the next process; a service recorded but not answering is stopped and started again on its
 *   data (Redis replays its append-only file, PostgreSQL its WAL: nothing committed is lost).
 *
 * Every decision is taken under one lock per data folder: a Linux abstract socket, which the
 * kernel releases when its holder dies, so a crash never leaves a stale lock behind.
 */

const ServiceRecord = z.object({ pid: z.number().int().positive(), startTime: z.string().optional(), url: z.string() });
const UserRecord = z.object({ pid: z.number().int().positive(), startTime: z.string().optional(), role: z.string() });
const StateSchema = z.object({
  redis: ServiceRecord.optional(),
  postgres: ServiceRecord.optional(),
  users: z.array(UserRecord).default([]),
});
type State = z.infer<typeof StateSchema>;
type ServiceName = 'redis' | 'postgres';

export const STATE_FILE = 'local-services.json';

export interface SharedStoresOptions {
  dataDir: string;
  redis: boolean;
  postgres: boolean;
  fsync: 'always' | 'everysec';
  /** Shown in the users list, for whoever reads the state file. */
  role: string;
  log: Logger;
  /** How long to wait for another process that is starting the services. */
  lockTimeoutMs?: number;
}

export interface SharedStores {
  redisUrl?: string;
  databaseUrl?: string;
  /** What this process did: started the services, attached to running ones, or adopted orphans. */
  started: ServiceName[];
  attached: ServiceName[];
  /** Leaves; the last user stops the services. */
  release(): Promise<void>;
}

export async function attachLocalStores(options: SharedStoresOptions): Promise<SharedStores> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const { log } = options;
  const me = { pid: process.pid, startTime: processStartTime(process.pid), role: options.role };
  const started: ServiceName[] = [];
  const attached: ServiceName[] = [];

  const urls = await withLock(dataDir, options.lockTimeoutMs ?? 120_000, log, async () => {
    const state = readState(dataDir);
    state.users = state.users.filter(isLiveUser);
    try {
      if (options.redis) {
        const outcome = await ensureService(state, 'redis', dataDir, options);
        (outcome === 'started' ? started : attached).push('redis');
      }
      if (options.postgres) {
        const outcome = await ensureService(state, 'postgres', dataDir, options);
        (outcome === 'started' ? started : attached).push('postgres');
      }
      state.users.push(me);
    } finally {
      // Even when the second service fails to start, the first is recorded, so the next start
      // finds it (and adopts it) instead of colliding with it.
      writeState(dataDir, state);
    }
    return { redis: state.redis?.url, postgres: state.postgres?.url };
  });

  let released = false;
  return {
    ...(options.redis ? { redisUrl: urls.redis! } : {}),
    ...(options.postgres ? { databaseUrl: urls.postgres! } : {}),
    started,
    attached,
    async release() {
      if (released) return;
      released = true;
      await withLock(dataDir, options.lockTimeoutMs ?? 120_000, log, async () => {
        const current = readState(dataDir);
        current.users = current.users.filter((u) => isLiveUser(u) && !(u.pid === me.pid && u.startTime === me.startTime));
        if (current.users.length) {
          writeState(dataDir, current);
          log.info({ users: current.users.length }, 'leaving the local services to the processes still using them');
          return;
        }
        // The last one out: PostgreSQL's fast shutdown (SIGINT) and Redis's SIGTERM both end clean.
        if (current.postgres && isLiveService(current.postgres)) await stopPid(current.postgres.pid, 'SIGINT', 30_000);
        if (current.redis && isLiveService(current.redis)) await stopPid(current.redis.pid, 'SIGTERM', 30_000);
        writeState(dataDir, { users: [] });
        log.info('stopped the local services');
      });
    },
  };
}

/** Makes `state[name]` a running, answering service: attached, adopted or started. */
async function ensureService(state: State, name: ServiceName, dataDir: string, options: SharedStoresOptions): Promise<'started' | 'attached'> {
  const { log } = options;
  const record = state[name] ?? legacyRecord(name, dataDir);
  const answers = name === 'redis' ? redisAnswers : postgresAnswers;
  if (record && isLiveService(record)) {
    // A service still starting (or replaying its log after a crash) answers soon; one that is busy
    // (at its connection limit) answers with an error meanwhile, and is waited for, never stopped.
    let responds = false;
    for (const until = Date.now() + 15_000; Date.now() < until || (responds && Date.now() < until + 105_000); await sleep(200)) {
      if (await answers(record.url)) {
        state[name] = record;
        if (!state.users.length) log.warn({ service: name, pid: record.pid }, 'adopting a local service whose users are gone');
        return 'attached';
      }
      if (!isLiveService(record)) break;
      responds = await serverResponds(name, record.url);
    }
    if (isLiveService(record)) {
      // Alive but not answering as it should. Stopping it would cut off every process using it.
      if (responds || state.users.length) {
        throw new StartupError(
          `The local ${name} of ${dataDir} (pid ${record.pid}) is running but not taking this process${state.users.length ? `, and ${state.users.length} other lapor process(es) use it` : ''}. See its log in ${dataDir}, or stop every lapor process of this checkout and start again.`,
        );
      }
      log.warn({ service: name, pid: record.pid }, 'a local service runs but does not answer, and nobody uses it: restarting it on its data');
      await stopPid(record.pid, name === 'postgres' ? 'SIGINT' : 'SIGTERM', 20_000);
    }
  }
  // On its old port where it had one, so processes still attached find it again.
  const start = (port?: number) =>
    name === 'redis'
      ? startLocalRedis({ dir: join(dataDir, 'redis'), fsync: options.fsync, log, detached: true, ...(port ? { port } : {}) })
      : startLocalPostgres({ dir: postgresDir(dataDir, log), log, detached: true, ...(port ? { port } : {}) });
  const oldPort = record ? Number(new URL(record.url).port) || undefined : undefined;
  const service = oldPort && (await portIsFree(oldPort)) ? await start(oldPort) : await start();
  state[name] = { pid: service.pid, startTime: processStartTime(service.pid), url: service.url };
  return 'started';
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => done(true)));
  });
}

/**
 * A service started before the state file existed (an older checkout's run), found by its pid file
 * and asked for its port, so it is attached to rather than stopped or collided with.
 */
function legacyRecord(name: ServiceName, dataDir: string): z.infer<typeof ServiceRecord> | undefined {
  if (name === 'redis') {
    const pid = livePidFrom(join(dataDir, 'redis', 'redis.pid'));
    if (!pid) return undefined;
    // redis-server rewrites its title to "redis-server 127.0.0.1:<port>".
    let title = '';
    try {
      title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      return undefined;
    }
    const port = /127\.0\.0\.1:(\d+)/.exec(title)?.[1];
    return port ? { pid, startTime: processStartTime(pid), url: `redis://127.0.0.1:${port}` } : undefined;
  }
  const pidFile = join(resolvedPostgresDir(dataDir), 'data', 'postmaster.pid');
  const pid = livePidFrom(pidFile);
  if (!pid) return undefined;
  const port = readFileSync(pidFile, 'utf8').split('\n')[3]?.trim();
  return port ? { pid, startTime: processStartTime(pid), url: `postgres://postgres@127.0.0.1:${port}/lapor` } : undefined;
}

function isLiveService(record: { pid: number; startTime?: string | undefined }): boolean {
  return isAlive(record.pid) && (!record.startTime || processStartTime(record.pid) === record.startTime);
}

const isLiveUser = isLiveService;

function readState(dataDir: string): State {
  const file = join(dataDir, STATE_FILE);
  if (!existsSync(file)) return { users: [] };
  try {
    return StateSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    // Unreadable (a crash mid-write cannot cause this: writes are renamed into place). Start over:
    // the services themselves are found again by their pid files.
    return { users: [] };
  }
}

function writeState(dataDir: string, state: State): void {
  const file = join(dataDir, STATE_FILE);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/**
 * Runs `fn` holding the data folder's lock: an abstract Unix socket named after the folder. Only
 * one process can listen on a name; the kernel frees it when the holder exits, however it exits.
 */
async function withLock<T>(dataDir: string, timeoutMs: number, log: Logger, fn: () => Promise<T>): Promise<T> {
  const name = `\0lapor-gateway-${createHash('sha256').update(dataDir).digest('hex').slice(0, 32)}`;
  const deadline = Date.now() + timeoutMs;
  let server: Server | undefined;
  let waited = false;
  while (!server) {
    server = await new Promise<Server | undefined>((done) => {
      const candidate = createServer();
      candidate.once('error', () => done(undefined));
      candidate.listen({ path: name, exclusive: true }, () => done(candidate));
    });
    if (server) break;
    if (Date.now() > deadline) {
      throw new StartupError(`Another lapor process has been starting the local services of ${dataDir} for ${Math.round(timeoutMs / 1000)} s. See its output, or stop it, then start again.`);
    }
    if (!waited) log.info({ dataDir }, 'waiting for another lapor process to finish starting the local services');
    waited = true;
    await sleep(100);
  }
  server.unref();
  try {
    return await fn();
  } finally {
    await new Promise<void>((done) => server.close(() => done()));
  }
}

// ---------------------------------------------------------------------------------------------
// Where PostgreSQL keeps its data

/** Root of the clusters kept outside a checkout PostgreSQL's user cannot enter (see postgresDir). */
export const OUTSIDE_ROOT = '/var/lib/lapor-gateway';

/** The cluster folder of a data dir: `dataDir/pg`, or where its link points. */
export function resolvedPostgresDir(dataDir: string): string {
  const link = join(dataDir, 'pg');
  return existsSync(link) && lstatSync(link).isSymbolicLink() ? readlinkSync(link) : link;
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to enter its folder. A checkout
 * in a private folder (root's home is 0700, as is anything `mktemp -d` makes) shuts it out. Rather
 * than open the private folder to another user, the cluster of such a checkout lives in
 * /var/lib/lapor-gateway/<checkout>-<hash of the data dir>, and `dataDir/pg` is a link to it, so
 * `ls -l data` shows where it is. An ordinary user runs PostgreSQL as themself: always `dataDir/pg`.
 */
function postgresDir(dataDir: string, log: Logger): string {
  const local = join(dataDir, 'pg');
  const resolved = resolvedPostgresDir(dataDir);
  if (resolved !== local) return resolved;
  const owner = postgresUser();
  if (!owner || existsSync(join(local, 'data', 'PG_VERSION')) || canEnter(dataDir)) return local;
  const id = `${basename(dirname(dataDir)) || 'data'}-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`;
  const outside = join(OUTSIDE_ROOT, id);
  mkdirSync(OUTSIDE_ROOT, { recursive: true, mode: 0o755 });
  mkdirSync(outside, { recursive: true, mode: 0o700 });
  chownSync(outside, owner.uid, owner.gid);
  writeFileSync(join(OUTSIDE_ROOT, `${id}.origin`), `${dataDir}\n`);
  symlinkSync(outside, local);
  const notice = `${dataDir} is private, and PostgreSQL runs as the postgres user: its data for this checkout is kept in ${outside} (linked from ${local}). To remove it: rm -rf ${outside} ${outside}.origin ${local}`;
  process.stderr.write(`${notice}\n`);
  log.warn({ dataDir, postgresDir: outside }, 'PostgreSQL data kept outside the private checkout');
  return outside;
}

/** Whether the postgres user can enter `dir`: the lookup of the path fails if any folder above is shut. */
function canEnter(dir: string): boolean {
  return spawnSync('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', 'test', '-x', dir], { stdio: 'ignore' }).status === 0;
}
