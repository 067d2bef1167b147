/**
 * --profile DIR: V8 CPU profiles of the measured phases, for the gateway (this process) and for
 * the spawned worker process, and the 15 functions with the most self time in each.
 *
 * The gateway is profiled with node:inspector around the phase. The worker process is started with
 * `--import scripts/bench/profile-hook.ts` (WORKER_PROFILE_IMPORT), which starts and stops a profile
 * of its own on SIGUSR2, so its profile covers the same phase and not its start-up (as
 * `--cpu-prof`, which profiles a process from start to exit, would).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtInt, table, until } from './lib.ts';
import { toSourcePositions } from './source-positions.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Node flags that load the hook into a worker process; BENCH_PROFILE_DIR tells it where to write. */
export const WORKER_PROFILE_IMPORT = ['--import', join(ROOT, 'scripts', 'bench', 'profile-hook.ts')];

/** Samples every 1 ms instead of V8's default ~0.1 ms: plenty for a phase of seconds, and lighter. */
const SAMPLING_INTERVAL_US = 1_000;

export class Profiler {
  private session: Session | undefined;
  readonly written: string[] = [];

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Starts profiling this process (the gateway) and, if given, the worker process. */
  async start(worker?: { pid: number }): Promise<void> {
    this.session = new Session();
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
    await this.session.post('Profiler.start');
    if (worker) await toggleWorker(this.dir, worker.pid, true);
  }

  /** Stops both profiles and writes them as DIR/<process>-<phase>.cpuprofile; returns the files. */
  async stop(phase: string, worker?: { pid: number }): Promise<{ gateway: string; worker?: string }> {
    const session = this.session!;
    this.session = undefined;
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    toSourcePositions(profile);
    const gateway = join(this.dir, `gateway-${phase}.cpuprofile`);
    writeFileSync(gateway, JSON.stringify(profile));
    this.written.push(gateway);
    if (!worker) return { gateway };
    const file = join(this.dir, `worker-${phase}.cpuprofile`);
    renameSync(await toggleWorker(this.dir, worker.pid, false), file);
    this.written.push(file);
    return { gateway, worker: file };
  }
}

/**
 * Signals the hook in the worker process and waits until it has started (its marker file exists)
 * or written its profile (returned).
 */
async function toggleWorker(dir: string, pid: number, start: boolean): Promise<string> {
  const marker = join(dir, `.worker-${pid}.profiling`);
  const output = join(dir, `.worker-${pid}.cpuprofile`);
  process.kill(pid, 'SIGUSR2');
  const ok = await until(() => (start ? existsSync(marker) : existsSync(output) && !existsSync(marker)), Date.now() + 30_000, 20);
  if (!ok) throw new Error(`the worker process (pid ${pid}) did not ${start ? 'start' : 'write'} its CPU profile within 30 s`);
  return output;
}

// ── reading a .cpuprofile ────────────────────────────────────────────────────────────────────

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time per function: each sample lasts until the next one (timeDeltas[i + 1]), as DevTools
 * counts it, and goes to the node on top of the stack; nodes of the same function (same name, file
 * and line, reached through different callers) are added up.
 */
export function selfTimes(file: string): { totalMs: number; idleMs: number; top: { name: string; where: string; ms: number }[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const frameOf = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const byFunction = new Map<string, { name: string; where: string; ms: number }>();
  let totalMs = 0;
  let idleMs = 0;
  for (let i = 0; i < profile.samples.length - 1; i++) {
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const frame = frameOf.get(profile.samples[i]!);
    if (!frame) continue;
    totalMs += ms;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName}\u0000${where}`;
    const entry = byFunction.get(key) ?? { name: frame.functionName || '(anonymous)', where, ms: 0 };
    entry.ms += ms;
    byFunction.set(key, entry);
  }
  const top = [...byFunction.values()].sort((a, b) => b.ms - a.ms).slice(0, 15);
  return { totalMs, idleMs, top };
}

function shortUrl(url: string): string {
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (path.startsWith(ROOT)) return relative(ROOT, path).replace(/^node_modules\//, '');
  return path;
}

/** The top 15 of a profile as a table, with the busy (not idle) time it was measured over. */
export function topTable(title: string, file: string): string {
  const { totalMs, idleMs, top } = selfTimes(file);
  const busy = totalMs - idleMs;
  const rows = top.map((f) => [f.name.slice(0, 48), f.where.slice(-60), `${fmtInt(Math.round(f.ms))} ms`, busy > 0 ? `${((100 * f.ms) / busy).toFixed(1)} %` : '—']);
  // The benchmark's own process also takes the cost meter's snapshots at both ends of the phase.
  const own = basename(file).startsWith('gateway-') ? " (with the cost meter's snapshots at both ends: its perf spawns and /proc reads are the benchmark's)" : '';
  return `${title}: ${file} — busy ${fmtInt(Math.round(busy))} ms of ${fmtInt(Math.round(totalMs))} ms sampled${own}\n${table(['self time, top 15', 'where', 'self', 'of busy'], rows)}`;
}
