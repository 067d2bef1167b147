import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Small helpers for the benchmarks in scripts/bench/: percentiles, formatting, and CPU accounting
 * of the processes a run involves (read from /proc, so Linux only; elsewhere CPU is not shown).
 */

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array (p in [0, 100]). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(values: ArrayLike<number>): Summary | undefined {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: sorted.length,
    mean: sum / sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}

export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms).toLocaleString('en-US')} ms`;
}

export function fmtRate(perSecond: number | undefined, unit = '/s'): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return '—';
  return `${Math.round(perSecond).toLocaleString('en-US')}${unit}`;
}

export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}

/** A plain-text table: first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `done` every `everyMs` until it is true (→ true) or the epoch-ms deadline passes (→ false). */
export async function until(done: () => boolean | Promise<boolean>, deadline: number, everyMs = 5): Promise<boolean> {
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

// ── CPU accounting ────────────────────────────────────────────────────────────────────────────

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const parsed = Number(out.stdout?.trim());
    clockTicks = Number.isInteger(parsed) && parsed > 0 ? parsed : 100;
  }
  return clockTicks;
}

/** The resolution of the CPU figures read from /proc: one clock tick (10 ms on most Linux systems). */
export function cpuTickSeconds(): number {
  return 1 / ticksPerSecond();
}

/** utime + stime of a process or thread, in seconds; undefined when /proc has no such entry. */
function cpuSecondsOf(statPath: string): number | undefined {
  try {
    const stat = readFileSync(statPath, 'utf8');
    // The command name may contain spaces and parentheses: fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** The process and its descendants (PostgreSQL's backends are children of the postmaster). */
function withChildren(pid: number): number[] {
  return [pid, ...descendantsOf(pid)];
}

export type CpuGroups = Record<string, () => string[]>;

/**
 * CPU seconds per named group of /proc stat files, between `start()` and `stop()`. A process that
 * exits in between is not counted (none of ours does during a phase).
 */
export class CpuMeter {
  constructor(private readonly groups: CpuGroups) {}

  static procStat(pid: number | undefined, includeChildren = false): () => string[] {
    return () => (pid === undefined ? [] : (includeChildren ? withChildren(pid) : [pid]).map((p) => `/proc/${p}/stat`));
  }

  /** Every thread of this process except the main one (worker threads, GC helpers, libuv pool). */
  static otherThreadsOfSelf(): () => string[] {
    return () => {
      try {
        return readdirSync(`/proc/${process.pid}/task`)
          .filter((tid) => Number(tid) !== process.pid)
          .map((tid) => `/proc/${process.pid}/task/${tid}/stat`);
      } catch {
        return [];
      }
    };
  }

  static mainThreadOfSelf(): () => string[] {
    return () => [`/proc/${process.pid}/task/${process.pid}/stat`];
  }

  snapshot(): Map<string, Map<string, number>> {
    const snap = new Map<string, Map<string, number>>();
    for (const [name, files] of Object.entries(this.groups)) {
      const perFile = new Map<string, number>();
      for (const file of files()) {
        const seconds = cpuSecondsOf(file);
        if (seconds !== undefined) perFile.set(file, seconds);
      }
      snap.set(name, perFile);
    }
    return snap;
  }

  /** Busy CPU seconds of the whole host (all cores), from /proc/stat. */
  static hostBusySeconds(): number | undefined {
    try {
      const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
      const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
      return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / ticksPerSecond();
    } catch {
      return undefined;
    }
  }

  /** Cores used per group over `wallMs` (a thread or process that appeared in between counts from 0). */
  static cores(before: Map<string, Map<string, number>>, after: Map<string, Map<string, number>>, wallMs: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, files] of after) {
      let seconds = 0;
      for (const [file, s] of files) seconds += s - (before.get(name)?.get(file) ?? 0);
      out[name] = wallMs > 0 ? seconds / (wallMs / 1000) : 0;
    }
    return out;
  }
}

/** Filesystem type of a path (`ext4`, `tmpfs`…), from `stat -f`; 'unknown' when it cannot tell. */
export function filesystemOf(path: string): string {
  const out = spawnSync('stat', ['-f', '-c', '%T', path], { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.trim() : 'unknown';
}

/** Read and write system calls made so far by one thread (Linux /proc/<pid>/task/<tid>/io). */
export function threadSyscalls(pid: number, tid: number): { reads: number; writes: number } | undefined {
  try {
    const io = readFileSync(`/proc/${pid}/task/${tid}/io`, 'utf8');
    const reads = Number(/syscr:\s*(\d+)/.exec(io)?.[1]);
    const writes = Number(/syscw:\s*(\d+)/.exec(io)?.[1]);
    return Number.isFinite(reads) && Number.isFinite(writes) ? { reads, writes } : undefined;
  } catch {
    return undefined;
  }
}

// ── processes: CPU with children, memory ───────────────────────────────────────────────────────

/** Fields of /proc/<pid>/stat after the command name (field 3, the state, is index 0). */
function statFields(path: string): string[] | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Every live process's parent, from one pass over /proc. */
function parentMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const ppid = Number(statFields(`/proc/${pid}/stat`)?.[1]);
    if (!Number.isInteger(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  return children;
}

/** Children of a process from /proc/<pid>/task/<tid>/children (one small read per thread), or undefined where the kernel lacks it. */
function childrenOf(pid: number): number[] | undefined {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return undefined;
  }
}

/** The live descendants of a process (PostgreSQL's backends are children of the postmaster). */
export function descendantsOf(pid: number): number[] {
  let children: ((p: number) => number[]) | undefined;
  const out: number[] = [];
  const walk = (p: number) => {
    // The children files are cheap; without them, one pass over every process in /proc.
    const direct = childrenOf(p) ?? (children ??= ((map) => (q: number) => map.get(q) ?? [])(parentMap()))(p);
    for (const child of direct) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

export interface CpuOf {
  /** Add the descendants: live ones as read now, reaped ones as the kernel added them to cutime/cstime. */
  children?: boolean;
  /** Threads of the process not to count (the benchmark's load-client thread). */
  exceptThreads?: readonly number[];
  /** Descendants not to count (the PostgreSQL backends serving the benchmark's own queries). */
  exceptProcesses?: readonly number[];
}

/**
 * CPU seconds (user + system) used so far by a process and all its threads; undefined when it is
 * not running. Without `children`, the CPU of children it has reaped is left out, so that helper
 * programs the benchmark runs (perf, pg_waldump) are not charged to the gateway.
 */
export function processCpuSeconds(pid: number, of: CpuOf = {}): number | undefined {
  const own = statFields(`/proc/${pid}/stat`);
  if (!own) return undefined;
  const ticks = (f: string[] | undefined, reaped: boolean) =>
    f ? Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0) : 0;
  let total = ticks(own, of.children ?? false);
  for (const tid of of.exceptThreads ?? []) total -= ticks(statFields(`/proc/${pid}/task/${tid}/stat`), false);
  if (of.children) {
    for (const child of descendantsOf(pid)) if (!of.exceptProcesses?.includes(child)) total += ticks(statFields(`/proc/${child}/stat`), true);
  }
  return total / ticksPerSecond();
}

/** Resident set size of a process in bytes (VmRSS), undefined when it is not running. */
export function rssBytes(pid: number): number | undefined {
  try {
    const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Number.isFinite(kb) ? kb * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function fmtBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return '—';
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

// ── helper programs ──────────────────────────────────────────────────────────────────────────

/** The path of an executable in PATH (or in `extraDirs`), or undefined. */
export function findExecutable(name: string, extraDirs: readonly string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...extraDirs]) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Runs a program to its end; its stdout and stderr together, and its exit code. */
export function runCommand(command: string, args: readonly string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => resolve({ code: -1, output: err.message }));
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

/**
 * Installs a Debian package with apt-get when we are root (as the benchmark does for Kannel);
 * returns why not otherwise. Runs `apt-get update` once if the package lists are missing.
 */
export async function aptInstall(pkg: string, say: (line: string) => void): Promise<string | undefined> {
  const aptGet = findExecutable('apt-get');
  if (process.getuid?.() !== 0 || !aptGet) return `not root or no apt-get: install ${pkg} yourself`;
  say(`installing ${pkg}: apt-get install -y --no-install-recommends ${pkg}…`);
  const install = ['install', '-y', '-qq', '--no-install-recommends', pkg];
  let result = await runCommand(aptGet, install);
  if (result.code !== 0 && /Unable to locate package|has no installation candidate/.test(result.output)) {
    await runCommand(aptGet, ['update', '-qq']);
    result = await runCommand(aptGet, install);
  }
  return result.code === 0 ? undefined : `apt-get install ${pkg} failed: ${result.output.trim().split('\n').slice(-2).join(' ')}`;
}

// ── the targets ──────────────────────────────────────────────────────────────────────

export interface TargetRow {
  target: string;
  measured: string;
  goal: string;
  /** true: MET, false: NOT MET, a string: why it was not judged. */
  met: boolean | string;
}

/** The targets as a Markdown table, ready to paste into the issue. */
export function targetsTable(rows: readonly TargetRow[]): string {
  const cells = rows.map((r) => [r.target, r.measured, r.goal, r.met === true ? 'MET' : r.met === false ? 'NOT MET' : `not judged: ${r.met}`]);
  const header = ['target', 'measured', 'goal', 'verdict'];
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
