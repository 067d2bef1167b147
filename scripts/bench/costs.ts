/**
 * What one benchmark phase costs per message handled: Redis commands and fsyncs, PostgreSQL
 * statements, commits, WAL syncs and bytes, and the CPU of every process involved.
 *
 *   const meter = await CostMeter.open({ … });
 *   const before = await meter.snapshot();
 *   … the phase …
 *   const cost = await meter.diff(before, await meter.snapshot(), messagesHandled);
 *
 * Every figure is counted, none is estimated; what cannot be counted is shown as n/a with the reason.
 * How each one is counted, and why that way:
 *
 * - Redis commands: `INFO commandstats` deltas. Redis also counts the commands a Lua script runs
 *   (redis.call) under their own names, so the total is "commands executed", not round trips; the
 *   scripts themselves (EVALSHA, EVAL) are shown apart. The benchmark's own commands (the INFO, the
 *   queue-depth checks of its drain loops) go through `meter.redis`, which counts them by name, and
 *   are subtracted.
 * - fsyncs, Redis and PostgreSQL: the fsync and fdatasync system calls of the process and its
 *   children, counted in the kernel by `perf stat -e syscalls:sys_enter_fdatasync,…` (FsyncCounter).
 *   perf counts without stopping the process; `strace -c -p` would stop Redis at every system call
 *   (epoll_wait, read, write…) and slow down what we measure. Neither `INFO persistence` nor
 *   `LATENCY HISTORY aof-fsync-always` can count them: the latency monitor keeps one sample per
 *   second (that second's worst), only at or above latency-monitor-threshold, and 0 turns it off
 *   (checked on Redis 7.0.15: 3,000 appendfsync-always writes left 1 sample with threshold 1 ms, none with 0).
 * - PostgreSQL statements: pg_stat_statements (the benchmark's cluster preloads it), calls in the
 *   gateway's database by every role but the benchmark's own (BENCH_ROLE), so the load client's
 *   polling and these snapshots are not counted. A statement is one round trip unless pipelined.
 * - commits: COMMIT records in the WAL between the two snapshots' WAL positions (pg_waldump
 *   --stats=record), i.e. the transactions that wrote something and had to be made durable; read-only
 *   ones write no record. Not pg_stat_database.xact_commit nor pg_stat_wal: PostgreSQL 15 publishes a
 *   backend's counters at most once a second, and a backend that goes idle within that second only
 *   ~10 s later (PGSTAT_IDLE_INTERVAL), so a delta taken when a phase ends misses up to its last 10 s
 *   (measured here: 50 INSERTs showed up in xact_commit and wal_sync 10 s after they ran).
 * - WAL syncs: fdatasync calls of the postgres processes (wal_sync_method = fdatasync, the Linux
 *   default); data-file fsyncs (checkpoints) are fsync calls. WAL bytes: the distance between the
 *   two WAL positions. WAL write calls are not shown: pg_stat_wal.wal_write lags as above, and the
 *   write system calls of postgres mix WAL, data files and sockets.
 * - CPU: utime + stime from /proc/<pid>/stat, per process (all threads), with the children where it
 *   matters (PostgreSQL's backends, live and reaped). A process that is not the same one at both
 *   snapshots is n/a.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Teardown } from './harness.ts';
import { topTable, type Profiler } from './profile.ts';
import { aptInstall, cpuTickSeconds, descendantsOf, findExecutable, fmtInt, processCpuSeconds, runCommand, table, type CpuOf } from './lib.ts';

/** The role the benchmark's own PostgreSQL connections use; pg_stat_statements leaves it out. */
export const BENCH_ROLE = 'lapor_bench';

/** A figure, or why it could not be measured. */
export type Measured = number | { na: string };

const na = (why: string): { na: string } => ({ na: why });
const isNa = <T>(m: T | { na: string }): m is { na: string } => typeof m === 'object' && m !== null && 'na' in m;

export interface CpuSource extends CpuOf {
  pid: number;
}

export interface CostMeterOptions {
  redis: { url: string; pid: number };
  /** `url` connects as BENCH_ROLE to the gateway's database; `pid` is the postmaster. */
  postgres: { url: string; pid: number };
  /** Named CPU groups, asked for their process at each snapshot (a worker process may come and go). */
  cpu: Record<string, () => CpuSource | undefined>;
  teardown: Teardown;
  say: (line: string) => void;
}

interface FsyncCount {
  fsync: number;
  fdatasync: number;
}

export interface CostSnapshot {
  /**
   * Time and CPU are read first and last: a window runs from the end of one snapshot to the start
   * of the next, so the snapshots' own work (INFO, perf, pg_waldump, /proc) is not in it.
   */
  startMs: number;
  endMs: number;
  cpuAtStart: CpuReading;
  cpuAtEnd: CpuReading;
  commandstats: Map<string, number>;
  /** The benchmark's own commands, by name, sent before this snapshot's INFO. */
  own: Map<string, number>;
  redisFsync: FsyncCount | { na: string };
  pgFsync: FsyncCount | { na: string };
  walLsn: string;
  /** pg_stat_statements calls and time (ms, planning and execution) by userid:queryid, with the statement's text. */
  statements: Map<string, { calls: number; ms: number; planMs: number; query: string }> | { na: string };
  /** pg_stat_user_tables: sequential scans and the rows they read, per table. */
  tables: Map<string, { seqScans: number; seqRows: number }> | { na: string };
}

type CpuReading = Record<string, { pid: number; seconds: number } | undefined>;

export interface PhaseCost {
  messages: number;
  wallMs: number;
  redis: { commands: number; scripts: number; top: [string, number][]; fsyncs: Measured };
  /** `top`: calls per statement; `byTime`: [statement, calls, ms planning + executing, ms of it planning] by time spent. */
  /** Tables read by sequential scans in the window: [table, scans, rows read], most rows first. */
  seqScans: [string, number, number][];
  pg: { statements: Measured; top: [string, number][]; byTime: [string, number, number, number][]; totalMs: Measured; commits: Measured; aborts: Measured; walSyncs: Measured; otherFsyncs: Measured; walBytes: number };
  /** CPU seconds per group over the window; null when the process ran at neither end (not part of the phase). */
  cpu: Record<string, Measured | null>;
}

export class CostMeter {
  private constructor(
    /** The benchmark's own Redis connection: whatever it sends is subtracted from the counts. */
    readonly redis: Redis,
    private readonly own: Map<string, number>,
    private readonly db: pg.Client,
    private readonly waldump: { bin: string; walDir: string } | { na: string },
    private readonly redisFsync: FsyncCounter | { na: string },
    private readonly pgFsync: FsyncCounter | { na: string },
    /** The system call that makes the WAL durable (wal_sync_method), or why WAL syncs cannot be counted. */
    private readonly walSyncCall: 'fdatasync' | 'fsync' | { na: string },
    private readonly options: CostMeterOptions,
    /** The backend serving this meter's own queries: its CPU is not the gateway's. */
    private readonly backendPid: number,
  ) {}

  static async open(options: CostMeterOptions): Promise<CostMeter> {
    const own = new Map<string, number>();
    const redis = new Redis(options.redis.url, { lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 1 });
    countCommands(redis, own);
    await redis.connect();
    options.teardown.defer('cost meter: redis', async () => void redis.disconnect());

    const db = new pg.Client({ connectionString: options.postgres.url, application_name: 'bench-cost-meter' });
    await db.connect();
    options.teardown.defer('cost meter: postgres', () => db.end());
    const statementsReady = await db.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'");
    if (!statementsReady.rowCount) throw new Error('pg_stat_statements is not installed in the benchmark database (startBenchServices with measureCosts)');

    const perf = await ensurePerf(options.say);
    const open = async (name: string, pids: () => number[]) => (typeof perf === 'string' ? na(perf) : await FsyncCounter.open(perf, name, pids, options.teardown));
    const redisFsync = await open('redis', () => [options.redis.pid]);
    // The postmaster and its backends at the time; backends forked later inherit the counters.
    const pgFsync = await open('postgres', () => [options.postgres.pid, ...descendantsOf(options.postgres.pid)]);
    options.teardown.defer('cost meter: perf', async () => {
      for (const c of [redisFsync, pgFsync]) if (c instanceof FsyncCounter) await c.close();
    });
    const backendPid = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    return new CostMeter(redis, own, db, await findWaldump(db, options.postgres.pid), redisFsync, pgFsync, await walSyncCall(db), options, backendPid);
  }

  async snapshot(): Promise<CostSnapshot> {
    const startMs = performance.now();
    const cpuAtStart = this.readCpu();
    const own = new Map(this.own);
    const commandstats = parseCommandstats(await this.redis.info('commandstats'));
    const [redisFsync, pgFsync] = await Promise.all([readFsyncs(this.redisFsync), readFsyncs(this.pgFsync)]);
    const walLsn = (await this.db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
    const statements = await this.readStatements();
    const tables = await this.readTables();
    const cpuAtEnd = this.readCpu();
    return { startMs, endMs: performance.now(), cpuAtStart, cpuAtEnd, commandstats, own, redisFsync, pgFsync, walLsn, statements, tables };
  }

  private readCpu(): CpuReading {
    const cpu: CpuReading = {};
    for (const [name, source] of Object.entries(this.options.cpu)) {
      const s = source();
      const seconds = s ? processCpuSeconds(s.pid, { ...s, exceptProcesses: [...(s.exceptProcesses ?? []), this.backendPid] }) : undefined;
      cpu[name] = s && seconds !== undefined ? { pid: s.pid, seconds } : undefined;
    }
    return cpu;
  }

  async diff(before: CostSnapshot, after: CostSnapshot, messages: number): Promise<PhaseCost> {
    const calls = new Map<string, number>();
    for (const [name, n] of after.commandstats) {
      const delta = n - (before.commandstats.get(name) ?? 0) - ((after.own.get(name) ?? 0) - (before.own.get(name) ?? 0));
      if (delta > 0) calls.set(name, delta);
    }
    const commands = [...calls.values()].reduce((a, b) => a + b, 0);
    const scripts = (calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0) + (calls.get('evalsha_ro') ?? 0) + (calls.get('eval_ro') ?? 0);
    const wal = await this.walRecords(before.walLsn, after.walLsn);
    const walCall = this.walSyncCall;
    const cpu: PhaseCost['cpu'] = {};
    for (const name of Object.keys(this.options.cpu)) {
      const [b, a] = [before.cpuAtEnd[name], after.cpuAtStart[name]];
      cpu[name] = !b && !a ? null : !b || !a ? na(`${name}: not running at both ends of the window`) : b.pid !== a.pid ? na(`${name}: another process at each end`) : a.seconds - b.seconds;
    }
    return {
      messages,
      seqScans: seqScanDelta(before.tables, after.tables),
      wallMs: after.startMs - before.endMs,
      redis: { commands, scripts, top: topOf(calls, 10), fsyncs: fsyncDelta(before.redisFsync, after.redisFsync, (c) => c.fsync + c.fdatasync) },
      pg: {
        ...statementDelta(before.statements, after.statements),
        commits: isNa(wal) ? wal : wal.commits,
        aborts: isNa(wal) ? wal : wal.aborts,
        walSyncs: isNa(walCall) ? walCall : fsyncDelta(before.pgFsync, after.pgFsync, (c) => c[walCall]),
        otherFsyncs: isNa(walCall) ? walCall : fsyncDelta(before.pgFsync, after.pgFsync, (c) => c.fsync + c.fdatasync - c[walCall]),
        walBytes: Number(lsnToBigInt(after.walLsn) - lsnToBigInt(before.walLsn)),
      },
      cpu,
    };
  }

  private async readTables(): Promise<CostSnapshot['tables']> {
    try {
      // Backends publish their counts when idle, at most a second late: a diagnostic, not a count.
      const { rows } = await this.db.query<{ name: string; scans: string; rows: string }>(
        'SELECT relname AS name, seq_scan::text AS scans, seq_tup_read::text AS rows FROM pg_stat_user_tables',
      );
      return new Map(rows.map((r) => [r.name, { seqScans: Number(r.scans), seqRows: Number(r.rows) }]));
    } catch (err) {
      return na(`pg_stat_user_tables: ${(err as Error).message}`);
    }
  }

  private async readStatements(): Promise<CostSnapshot['statements']> {
    try {
      const { rows } = await this.db.query<{ key: string; calls: string; ms: number; plan_ms: number; query: string }>(
        `SELECT s.userid::text || ':' || s.queryid::text AS key, s.calls::text AS calls, s.total_exec_time + s.total_plan_time AS ms, s.total_plan_time AS plan_ms,
                left(regexp_replace(s.query, '\\s+', ' ', 'g'), 100) AS query
         FROM pg_stat_statements s
         WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND s.userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user)`,
      );
      return new Map(rows.map((r) => [r.key, { calls: Number(r.calls), ms: Number(r.ms), planMs: Number(r.plan_ms), query: r.query }]));
    } catch (err) {
      return na(`pg_stat_statements: ${(err as Error).message}`);
    }
  }

  /** COMMIT and ABORT records between two WAL positions, read by pg_waldump. */
  private async walRecords(from: string, to: string): Promise<{ commits: number; aborts: number } | { na: string }> {
    if (isNa(this.waldump)) return this.waldump;
    if (from === to) return { commits: 0, aborts: 0 };
    const { code, output } = await runCommand(this.waldump.bin, ['--stats=record', '-p', this.waldump.walDir, '-s', from, '-e', to]);
    if (code !== 0) return na(`pg_waldump: ${output.trim().split('\n').pop() ?? `exit ${code}`}`);
    const count = (type: string) => Number(new RegExp(`^Transaction/${type}\\s+(\\d+)`, 'm').exec(output)?.[1] ?? 0);
    return { commits: count('COMMIT'), aborts: count('ABORT') };
  }
}

/**
 * A measured window: the cost per message of `work` and, with a profiler, the CPU profiles of the
 * gateway and of the worker process over it. The profiles include the two snapshots (a few ms).
 */
export async function measureCost<T>(
  meter: CostMeter,
  profiler: Profiler | undefined,
  phase: string,
  worker: { pid: number } | undefined,
  messages: (value: T) => number,
  work: () => Promise<T>,
): Promise<{ value: T; cost: PhaseCost; profiles?: { gateway: string; worker?: string } }> {
  await profiler?.start(worker);
  const before = await meter.snapshot();
  const value = await work();
  const after = await meter.snapshot();
  const profiles = await profiler?.stop(phase, worker);
  const cost = await meter.diff(before, after, messages(value));
  return { value, cost, ...(profiles ? { profiles } : {}) };
}

// ── Redis: commandstats, and the benchmark's own commands ─────────────────────────────────────

/** `cmdstat_evalsha:calls=12,…` → evalsha → 12 (subcommands appear as `client|list`). */
function parseCommandstats(info: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** Commands Redis reports as `name|subcommand`. */
const CONTAINER_COMMANDS = new Set(['client', 'config', 'command', 'memory', 'object', 'latency', 'script', 'slowlog', 'xinfo', 'acl', 'function', 'module', 'cluster']);

/** Counts every command a connection sends, under the name commandstats gives it. */
function countCommands(redis: Redis, counts: Map<string, number>): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: Parameters<Redis['sendCommand']>[0], ...rest: unknown[]) => {
    let name = command.name.toLowerCase();
    const sub = command.args[0];
    if (CONTAINER_COMMANDS.has(name) && (typeof sub === 'string' || Buffer.isBuffer(sub))) name += `|${sub.toString().toLowerCase()}`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return (send as (...a: unknown[]) => unknown)(command, ...rest);
  }) as Redis['sendCommand'];
}

function topOf(calls: Map<string, number>, n: number): [string, number][] {
  return [...calls.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
}

// ── PostgreSQL ───────────────────────────────────────────────────────────────────────────────

function statementDelta(
  before: CostSnapshot['statements'],
  after: CostSnapshot['statements'],
): { statements: Measured; top: [string, number][]; byTime: [string, number, number, number][]; totalMs: Measured } {
  if (!(before instanceof Map)) return { statements: before, top: [], byTime: [], totalMs: before };
  if (!(after instanceof Map)) return { statements: after, top: [], byTime: [], totalMs: after };
  const calls = new Map<string, number>();
  const ms = new Map<string, number>();
  const planMs = new Map<string, number>();
  for (const [key, { calls: n, ms: spent, planMs: planned, query }] of after) {
    const delta = n - (before.get(key)?.calls ?? 0);
    if (delta <= 0) continue;
    calls.set(query, (calls.get(query) ?? 0) + delta);
    ms.set(query, (ms.get(query) ?? 0) + spent - (before.get(key)?.ms ?? 0));
    planMs.set(query, (planMs.get(query) ?? 0) + planned - (before.get(key)?.planMs ?? 0));
  }
  const byTime = [...ms.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([q, t]): [string, number, number, number] => [q, calls.get(q)!, t, planMs.get(q)!]);
  return { statements: [...calls.values()].reduce((a, b) => a + b, 0), top: topOf(calls, 5), byTime, totalMs: [...ms.values()].reduce((a, b) => a + b, 0) };
}

function seqScanDelta(before: CostSnapshot['tables'], after: CostSnapshot['tables']): [string, number, number][] {
  if (!(before instanceof Map) || !(after instanceof Map)) return [];
  const out: [string, number, number][] = [];
  for (const [name, t] of after) {
    const scans = t.seqScans - (before.get(name)?.seqScans ?? 0);
    const rows = t.seqRows - (before.get(name)?.seqRows ?? 0);
    if (scans > 0) out.push([name, scans, rows]);
  }
  return out.sort((a, b) => b[2] - a[2]).slice(0, 5);
}

/** `16/B374D848` → its byte position. */
function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/**
 * fdatasync or fsync: the call PostgreSQL flushes its WAL with. The open_* methods write with
 * O_DSYNC/O_SYNC instead of calling anything, so there is nothing to count.
 */
async function walSyncCall(db: pg.Client): Promise<'fdatasync' | 'fsync' | { na: string }> {
  const { rows } = await db.query<{ method: string }>("SELECT current_setting('wal_sync_method') AS method");
  const { method } = rows[0]!;
  // With fsync=off (--pg-fast) the count is simply 0: PostgreSQL then never calls it.
  if (method === 'fdatasync' || method === 'fsync') return method;
  return na(`wal_sync_method is ${method}: WAL writes are synchronous, there is no sync call to count`);
}

/** pg_waldump beside the running postgres binary, and the cluster's WAL directory. */
async function findWaldump(db: pg.Client, postmasterPid: number): Promise<{ bin: string; walDir: string } | { na: string }> {
  let bin: string | undefined;
  try {
    bin = findExecutable('pg_waldump', [dirname(readlinkSync(`/proc/${postmasterPid}/exe`))]);
  } catch {
    bin = findExecutable('pg_waldump');
  }
  if (!bin) return na('pg_waldump not found (it comes with PostgreSQL\'s server package)');
  const { rows } = await db.query<{ data_directory: string }>('SHOW data_directory');
  return { bin, walDir: join(rows[0]!.data_directory, 'pg_wal') };
}

// ── fsyncs, counted by perf ──────────────────────────────────────────────────────────────────

async function ensurePerf(say: (line: string) => void): Promise<string | { bin: string }> {
  let bin = findExecutable('perf', ['/usr/bin', '/usr/sbin']);
  if (!bin) {
    const why = await aptInstall('linux-perf', say);
    bin = findExecutable('perf', ['/usr/bin', '/usr/sbin']);
    if (!bin) return `perf not found (${why ?? 'linux-perf installed, but no perf'}); fsyncs are not counted`;
  }
  return { bin };
}

async function readFsyncs(counter: FsyncCounter | { na: string }): Promise<FsyncCount | { na: string }> {
  if (!(counter instanceof FsyncCounter)) return counter;
  try {
    return await counter.read();
  } catch (err) {
    return na((err as Error).message);
  }
}

function fsyncDelta(before: FsyncCount | { na: string }, after: FsyncCount | { na: string }, pick: (c: FsyncCount) => number): Measured {
  if ('na' in before) return before;
  if ('na' in after) return after;
  return pick(after) - pick(before);
}

/**
 * fsync and fdatasync calls of a set of processes since open(), and of the children they fork later.
 *
 * perf stat only reports its counts when it exits, so the count is kept in windows: one perf process
 * counts until the next read(), when it is disabled, the next one (attached beforehand, waiting
 * disabled) is enabled, and the first one exits with its counts. The switch leaves a gap of one
 * control round trip (well under a millisecond); snapshots are taken when the pipeline is idle, when
 * nothing fsyncs.
 */
class FsyncCounter {
  private total: FsyncCount = { fsync: 0, fdatasync: 0 };
  private spare: Promise<PerfWindow>;

  private constructor(
    private readonly perf: string,
    private readonly pids: () => number[],
    private readonly teardown: Teardown,
    private current: PerfWindow,
  ) {
    this.spare = PerfWindow.arm(perf, pids(), teardown);
  }

  static async open(perf: { bin: string }, name: string, pids: () => number[], teardown: Teardown): Promise<FsyncCounter | { na: string }> {
    try {
      const first = await PerfWindow.arm(perf.bin, pids(), teardown);
      await first.enable();
      return new FsyncCounter(perf.bin, pids, teardown, first);
    } catch (err) {
      return na(`perf cannot count the ${name} fsyncs: ${(err as Error).message}`);
    }
  }

  async read(): Promise<FsyncCount> {
    let next = await this.spare;
    await this.current.disable();
    try {
      await next.enable();
    } catch {
      // A backend listed when the spare was armed exited before perf attached: arm again (this once
      // the gap is perf's start-up, ~0.1 s).
      await next.kill();
      next = await PerfWindow.arm(this.perf, this.pids(), this.teardown);
      await next.enable();
    }
    const counts = await this.current.finish();
    this.current = next;
    this.spare = PerfWindow.arm(this.perf, this.pids(), this.teardown);
    this.total = { fsync: this.total.fsync + counts.fsync, fdatasync: this.total.fdatasync + counts.fdatasync };
    return { ...this.total };
  }

  async close(): Promise<void> {
    await this.current.kill();
    await (await this.spare.catch(() => undefined))?.kill();
  }
}

/** One `perf stat` attached to the processes, started disabled, driven over its control pipes. */
class PerfWindow {
  private stderr = '';
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
  }

  /** Starts perf attached to `pids`, counting nothing until enable() (so attaching takes no part of a window). */
  static async arm(perf: string, pids: number[], teardown: Teardown): Promise<PerfWindow> {
    const args = ['stat', '-D', '-1', '--control', 'fd:3,4', '-x', ',', '-e', 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync', '-p', pids.join(',')];
    const child = spawn(perf, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    teardown.track(child);
    return new PerfWindow(child);
  }

  enable(): Promise<void> {
    return this.command('enable');
  }

  disable(): Promise<void> {
    return this.command('disable');
  }

  /** Stops perf and reads its counts. */
  async finish(): Promise<FsyncCount> {
    this.child.kill('SIGINT');
    await this.exited;
    const count = (event: string) => Number(new RegExp(`^(\\d+),[^,]*,syscalls:sys_enter_${event},`, 'm').exec(this.stderr)?.[1] ?? Number.NaN);
    const counts = { fsync: count('fsync'), fdatasync: count('fdatasync') };
    if (!Number.isFinite(counts.fsync) || !Number.isFinite(counts.fdatasync)) throw new Error(`perf gave no counts: ${this.stderr.trim().split('\n').pop() ?? ''}`);
    return counts;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** perf's last line of complaint, without its "Events enabled/disabled" notices. */
  private complaint(): string {
    return this.stderr.trim().split('\n').filter((l) => l && !/^Events /.test(l)).pop() ?? 'perf exited';
  }

  /** Sends a control command and waits for perf's "ack" (or its exit, with its complaint). */
  private command(cmd: 'enable' | 'disable'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.reject(new Error(this.complaint()));
    return new Promise((resolve, reject) => {
      const ack = this.child.stdio[4] as NodeJS.ReadableStream;
      const timer = setTimeout(() => fail(new Error(`perf did not acknowledge "${cmd}" within 10 s`)), 10_000);
      const done = () => (clearTimeout(timer), ack.off('data', onAck), this.child.off('close', onClose));
      const onAck = (d: Buffer) => {
        if (d.toString().includes('ack')) (done(), resolve());
      };
      const onClose = () => fail(new Error(this.complaint()));
      const fail = (err: Error) => (done(), reject(err));
      ack.on('data', onAck);
      this.child.once('close', onClose);
      (this.child.stdio[3] as NodeJS.WritableStream).write(`${cmd}\n`);
    });
  }
}

// ── printing ─────────────────────────────────────────────────────────────────────────────────

/** Labels of the CPU groups, in print order. */
export type CpuLabels = Record<string, string>;

const perMessage = (m: Measured, messages: number, digits = 2): string =>
  isNa(m) ? 'n/a' : messages > 0 ? (m / messages).toFixed(digits) : '—';

function cpuUsPerMessage(cost: PhaseCost, group: string): string {
  const s = cost.cpu[group];
  if (s === undefined || s === null) return '—';
  return isNa(s) ? 'n/a' : cost.messages > 0 ? fmtInt(Math.round((s * 1e6) / cost.messages)) : '—';
}

/** Total CPU µs per message over every group, n/a if any group is (a partial sum would mislead). */
export function totalCpuUs(cost: PhaseCost): Measured {
  let sum = 0;
  for (const s of Object.values(cost.cpu)) {
    if (s === null) continue;
    if (isNa(s)) return s;
    sum += s;
  }
  return cost.messages > 0 ? (sum * 1e6) / cost.messages : na('no messages');
}

/** One column per phase, one row per figure, everything divided by the phase's messages. */
export function costTable(phases: readonly { label: string; cost: PhaseCost }[], cpuLabels: CpuLabels, unit = 'message'): string {
  const col = (f: (c: PhaseCost) => string) => phases.map((p) => f(p.cost));
  const rows: string[][] = [
    [`${unit}s handled`, ...col((c) => fmtInt(c.messages))],
    ['window (s)', ...col((c) => (c.wallMs / 1000).toFixed(2))],
    ['Redis commands (incl. inside Lua)', ...col((c) => perMessage(c.redis.commands, c.messages))],
    ['  of which EVALSHA/EVAL (scripts)', ...col((c) => perMessage(c.redis.scripts, c.messages))],
    ['Redis fsyncs', ...col((c) => perMessage(c.redis.fsyncs, c.messages, 3))],
    ['PG statements (round trips)', ...col((c) => perMessage(c.pg.statements, c.messages))],
    ['PG commits (WAL commit records)', ...col((c) => perMessage(c.pg.commits, c.messages, 3))],
    ['PG WAL syncs (wal_sync_method calls)', ...col((c) => perMessage(c.pg.walSyncs, c.messages, 3))],
    ['PG WAL bytes', ...col((c) => perMessage(c.pg.walBytes, c.messages, 0))],
    ...Object.entries(cpuLabels).map(([group, label]) => [`CPU µs ${label}`, ...col((c) => cpuUsPerMessage(c, group))]),
    ['CPU µs, all of the above', ...col((c) => { const t = totalCpuUs(c); return isNa(t) ? 'n/a' : fmtInt(Math.round(t)); })],
  ];
  return table([`per ${unit}`, ...phases.map((p) => p.label)], rows);
}

/** What the table cannot show: the top commands and statements, and why a figure is n/a. */
export function costDetails(phases: readonly { label: string; cost: PhaseCost }[]): string[] {
  const out: string[] = [];
  const reasons = new Set<string>();
  for (const { label, cost } of phases) {
    const per = (n: number) => (cost.messages > 0 ? (n / cost.messages).toFixed(2) : '—');
    out.push(`${label}: Redis top ${cost.redis.top.map(([name, n]) => `${name} ${per(n)}`).join(', ') || '—'}`);
    if (cost.pg.top.length) out.push(`${label}: PG top statements per message:`, ...cost.pg.top.map(([q, n]) => `  ${per(n).padStart(6)}  ${q.slice(0, 100)}`));
    if (cost.pg.byTime.length && !isNa(cost.pg.totalMs) && cost.messages > 0) {
      // pg_stat_statements' planning + execution time, per message: where PostgreSQL's CPU goes, by statement.
      const us = (ms: number) => fmtInt(Math.round((ms * 1000) / cost.messages));
      out.push(
        `${label}: PG time in statements ${us(cost.pg.totalMs)} µs per message (planning + execution); the most:`,
        ...cost.pg.byTime.map(([q, n, ms, planMs]) => `  ${us(ms).padStart(6)} µs (${us(planMs)} planning)  ${fmtInt(Math.round((ms * 1000) / Math.max(1, n))).padStart(6)} µs/call  ${q.slice(0, 70)}`),
      );
    }
    // A sequential scan of a growing table in the hot path is a plan gone wrong (a generic plan, a missing index).
    if (cost.seqScans.length) {
      out.push(`${label}: PG sequential scans (table: scans, rows read per message): ${cost.seqScans.map(([t, n, rows]) => `${t} ${fmtInt(n)}, ${per(rows)}`).join('; ')}`);
    }
    const extra: string[] = [];
    if (!isNa(cost.pg.aborts) && cost.pg.aborts > 0) extra.push(`${fmtInt(cost.pg.aborts)} rollbacks (WAL abort records)`);
    if (!isNa(cost.pg.otherFsyncs) && cost.pg.otherFsyncs > 0) extra.push(`${fmtInt(cost.pg.otherFsyncs)} PostgreSQL fsync calls besides the WAL syncs (new WAL segment files, checkpoints)`);
    if (extra.length) out.push(`${label}: ${extra.join('; ')}`);
    for (const m of [cost.redis.fsyncs, cost.pg.statements, cost.pg.commits, cost.pg.walSyncs, ...Object.values(cost.cpu)]) if (m !== null && isNa(m)) reasons.add(m.na);
  }
  for (const r of reasons) out.push(`n/a: ${r}`);
  const fewest = Math.min(...phases.map((p) => p.cost.messages));
  if (fewest > 0) out.push(`CPU is read in clock ticks of ${fmtInt(cpuTickSeconds() * 1e3)} ms per process: ±${fmtInt(Math.ceil((cpuTickSeconds() * 1e6) / fewest))} µs per message and process at ${fmtInt(fewest)} messages`);
  return out;
}

export interface BatchRow {
  batch: number;
  /** false: this build does not know LAPOR_QUEUE_BATCH_MAX, so the value was not applied. */
  applied: boolean;
  rate: number;
  p50?: number;
  p99?: number;
  cost?: PhaseCost;
}

/** One row per --batch value, so the curve is visible. */
export function batchTable(rows: readonly BatchRow[], rateLabel: string, latencyLabel: string, fmtMs: (ms: number | undefined) => string): string {
  return table(
    ['LAPOR_QUEUE_BATCH_MAX', rateLabel, `${latencyLabel} p50`, 'p99', 'Redis cmds/msg', 'PG stmts/msg', 'commits/msg', 'Redis fsyncs/msg', 'PG WAL syncs/msg', 'CPU µs/msg'],
    rows.map((r) => {
      const c = r.cost;
      const total = c ? totalCpuUs(c) : undefined;
      return [
        `${r.batch}${r.applied ? '' : ' (not applied)'}`,
        Number.isFinite(r.rate) ? fmtInt(Math.round(r.rate)) : '—',
        fmtMs(r.p50),
        fmtMs(r.p99),
        c ? perMessage(c.redis.commands, c.messages) : '—',
        c ? perMessage(c.pg.statements, c.messages) : '—',
        c ? perMessage(c.pg.commits, c.messages, 3) : '—',
        c ? perMessage(c.redis.fsyncs, c.messages, 3) : '—',
        c ? perMessage(c.pg.walSyncs, c.messages, 3) : '—',
        total === undefined ? '—' : isNa(total) ? 'n/a' : fmtInt(Math.round(total)),
      ];
    }),
  );
}

/**
 * The sections both benchmarks print after their rates: the cost per message of each measured phase,
 * the --batch sweep, and the top functions of each profile written.
 */
export function costSections(
  out: string[],
  report: { costs?: { label: string; cost: PhaseCost }[]; batches?: BatchRow[]; profiles?: { title: string; file: string }[] },
  text: { costTitle: string; cpuLabels: CpuLabels; unit?: string; batchTitle: string; rateLabel: string; latencyLabel: string; fmtMs: (ms: number | undefined) => string },
): void {
  if (report.costs?.length) {
    out.push('', text.costTitle, costTable(report.costs, text.cpuLabels, text.unit));
    out.push(...costDetails(report.costs));
  }
  if (report.batches?.length) {
    out.push('', text.batchTitle, batchTable(report.batches, text.rateLabel, text.latencyLabel, text.fmtMs));
    if (report.batches.some((b) => !b.applied)) out.push('(not applied: this build does not know LAPOR_QUEUE_BATCH_MAX, and refuses unknown LAPOR_ settings; the row is the default pipeline)');
  }
  for (const { title, file } of report.profiles ?? []) {
    out.push('');
    try {
      out.push(topTable(title, file));
    } catch (err) {
      out.push(`${title}: ${file}: ${(err as Error).message}`);
    }
  }
}
