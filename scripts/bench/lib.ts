import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

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

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The process and its direct children (PostgreSQL's backends are children of the postmaster). */
function withChildren(pid: number): number[] {
  const pids = [pid];
  try {
    for (const entry of readdirSync('/proc')) {
      const child = Number(entry);
      if (Number.isInteger(child) && child !== pid && parentOf(child) === pid) pids.push(child);
    }
  } catch {
    // no /proc
  }
  return pids;
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
