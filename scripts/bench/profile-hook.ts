/**
 * Loaded into the benchmark's worker process with `--import` when the benchmark runs with
 * --profile (see profile.ts): the first SIGUSR2 starts a V8 CPU profile, the next one stops it and
 * writes BENCH_PROFILE_DIR/.worker-<pid>.cpuprofile, for the benchmark to rename after its phase.
 *
 * A marker file (.worker-<pid>.profiling) exists while the profile runs, so the benchmark knows
 * when it has started and when the profile is complete (written first, then the marker removed).
 * Nothing here runs without BENCH_PROFILE_DIR; nothing of the gateway's own code changes.
 */
import { rmSync, writeFileSync, renameSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { toSourcePositions } from './source-positions.ts';

const dir = process.env.BENCH_PROFILE_DIR;

if (dir) {
  const marker = join(dir, `.worker-${process.pid}.profiling`);
  const output = join(dir, `.worker-${process.pid}.cpuprofile`);
  let session: Session | undefined;
  let busy = false;

  const start = async () => {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 1_000 });
    await session.post('Profiler.start');
    writeFileSync(marker, '');
  };

  const stop = async () => {
    const { profile } = await session!.post('Profiler.stop');
    session!.disconnect();
    session = undefined;
    toSourcePositions(profile);
    writeFileSync(`${output}.tmp`, JSON.stringify(profile));
    renameSync(`${output}.tmp`, output);
    rmSync(marker, { force: true });
  };

  process.on('SIGUSR2', () => {
    if (busy) return;
    busy = true;
    (session ? stop() : start())
      .catch((err: unknown) => process.stderr.write(`profile-hook: ${(err as Error).message}\n`))
      .finally(() => (busy = false));
  });
}
