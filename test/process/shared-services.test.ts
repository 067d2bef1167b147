import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive, stopPid } from '../../src/local/services.ts';
import { STATE_FILE } from '../../src/local/shared.ts';
import { eventually } from '../helpers/env.ts';
import { killAllGateways, runCli, startGateway, type CliRun, type GatewayProcess } from '../helpers/gateway-process.ts';

/**
 * Issue #19: `npm start` in one terminal, another `lapor` command of the same checkout in a second.
 * The local Redis and PostgreSQL are shared: the second command attaches and leaves them running;
 * the last process to leave stops them; a killed owner leaves them to whoever still uses them.
 */

const dataDirs: string[] = [];
afterAll(async () => {
  await killAllGateways();
  for (const dir of dataDirs) {
    for (const pid of servicePids(dir)) await stopPid(pid, 'SIGKILL', 5_000);
    rmSync(dir, { recursive: true, force: true });
  }
});

function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lapor-shared-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root: it must get in
  dataDirs.push(dir);
  return dir;
}

interface State {
  redis?: { pid: number; url: string };
  postgres?: { pid: number; url: string };
  users: { pid: number; role: string }[];
}

function state(dataDir: string): State {
  return JSON.parse(readFileSync(join(dataDir, STATE_FILE), 'utf8')) as State;
}

function servicePids(dataDir: string): number[] {
  try {
    const s = state(dataDir);
    return [s.redis?.pid, s.postgres?.pid].filter((p): p is number => Boolean(p));
  } catch {
    return [];
  }
}

/** Polls /readyz every 100 ms until stopped; returns every answer that was not 200. */
function watchReady(url: string): { stop(): Promise<string[]> } {
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3_000) });
        if (res.status !== 200) failures.push(`${res.status} ${await res.text()}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return failures;
    },
  };
}

async function fileReport(url: string, text: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { trackingId: string }).trackingId;
}

async function stored(url: string, trackingId: string): Promise<Record<string, unknown>> {
  return eventually(async () => {
    const res = await fetch(`${url}/api/v1/reports/${trackingId}`);
    const body = (await res.json()) as Record<string, unknown>;
    return res.status === 200 && !body.pending ? body : undefined;
  }, 15_000, `report ${trackingId} stored`);
}

/** Runs a command that exits by itself; expects exit 0. */
async function runToEnd(args: string[], env: Record<string, string>): Promise<string> {
  const run = runCli(args, env);
  const exit = await withTimeout(run.exited, 60_000, `lapor ${args.join(' ')}`, run);
  expect(exit, run.output()).toEqual({ code: 0, signal: null });
  return run.output();
}

/** Starts a long-running command, waits until it says it runs, and returns it. */
async function runUntilRunning(args: string[], env: Record<string, string>): Promise<CliRun> {
  const run = runCli(args, env);
  await eventually(async () => {
    if (run.child.exitCode !== null) throw new Error(`lapor ${args.join(' ')} exited early:\n${run.output()}`);
    return run.output().includes('lapor gateway running') ? true : undefined;
  }, 60_000, `lapor ${args.join(' ')} running`);
  return run;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string, run: CliRun): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          run.child.kill('SIGKILL');
          reject(new Error(`${what} did not exit within ${ms} ms:\n${run.output()}`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('local services shared by the processes of one checkout', () => {
  it('lets dlq list, migrate, worker intake and adapter sms run beside npm start and leaves it ready', { timeout: 180_000 }, async () => {
    const dataDir = freshDataDir();
    const env = { LAPOR_DATA_DIR: dataDir, LAPOR_LOG_LEVEL: 'info' };
    const gateway: GatewayProcess = await startGateway(env, { readyTimeoutMs: 60_000 });
    const before = state(dataDir);
    const trackingId = await fileReport(gateway.url, 'Jalan berlubang di depan SDN 3 Sukamaju sejak dua bulan, mohon segera diperbaiki.');
    const report = await stored(gateway.url, trackingId);

    const ready = watchReady(gateway.url);
    expect(await runToEnd(['dlq', 'list'], env)).toContain('no dead letters');
    await runToEnd(['migrate'], env);
    expect(await runToEnd(['user', 'add', '--email', 'piket@lapor.go.id', '--role', 'operator'], env)).toMatch(/password \(shown once\): \S{20,}/);
    expect(await runToEnd(['user', 'list'], env)).toMatch(/piket@lapor\.go\.id\toperator\t-\tactive/);
    for (const args of [['worker', 'intake'], ['adapter', 'sms']]) {
      const run = await runUntilRunning(args, env);
      expect(state(dataDir).users.map((u) => u.pid)).toContain(run.child.pid);
      run.child.kill('SIGTERM');
      expect(await withTimeout(run.exited, 30_000, args.join(' '), run), run.output()).toEqual({ code: 0, signal: null });
      expect(run.output()).toContain('leaving the local services to the processes still using them');
    }
    const failures = await ready.stop();

    expect(failures, 'readyz answers other than 200 while the second commands ran').toEqual([]);
    // The very same services: none was stopped and started again behind the gateway's back.
    expect(state(dataDir)).toMatchObject({ redis: before.redis, postgres: before.postgres, users: [{ pid: gateway.pid, role: 'start' }] });
    expect(await stored(gateway.url, trackingId)).toMatchObject({ trackingId, text: report.text });
    // A report filed after they ran goes all the way through.
    await stored(gateway.url, await fileReport(gateway.url, 'Lampu jalan di Jl. Merdeka 12 mati sejak seminggu, gelap dan rawan.'));

    // The last user out stops the services.
    const pids = servicePids(dataDir);
    expect(await gateway.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(pids.filter(isAlive), 'services left running after the last user stopped').toEqual([]);
  });

  it('keeps the services for a second process when the owner is killed, and the next start recovers', { timeout: 180_000 }, async () => {
    const dataDir = freshDataDir();
    const env = { LAPOR_DATA_DIR: dataDir, LAPOR_LOG_LEVEL: 'info' };
    const owner = await startGateway(env, { readyTimeoutMs: 60_000 });
    const first = await fileReport(owner.url, 'Sampah menumpuk di pasar Kebon Jeruk sejak tiga minggu, bau dan banyak lalat.');
    await stored(owner.url, first);
    const worker = await runUntilRunning(['worker', 'intake'], env);
    const services = state(dataDir);

    expect((await owner.kill('SIGKILL')).signal).toBe('SIGKILL');
    // The worker still has its stores: the services outlive the process that started them.
    expect(servicePids(dataDir).every(isAlive)).toBe(true);

    const restarted = await startGateway(env, { readyTimeoutMs: 60_000 });
    expect(restarted.output()).toContain('using the local services already running');
    expect(state(dataDir)).toMatchObject({ redis: services.redis, postgres: services.postgres });
    expect(state(dataDir).users.map((u) => u.pid).sort()).toEqual([restarted.pid, worker.child.pid].sort());
    expect(await stored(restarted.url, first)).toMatchObject({ trackingId: first });
    await stored(restarted.url, await fileReport(restarted.url, 'Air PDAM tidak mengalir di RT 04 RW 02 Kelurahan Sukamaju sejak Senin.'));

    // Now the restarted gateway leaves first: the worker, last out, stops the services.
    expect(await restarted.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(servicePids(dataDir).every(isAlive)).toBe(true);
    worker.child.kill('SIGTERM');
    expect(await withTimeout(worker.exited, 30_000, 'worker', worker)).toEqual({ code: 0, signal: null });
    expect(worker.output()).toContain('stopped the local services');
    expect([services.redis!.pid, services.postgres!.pid].filter(isAlive)).toEqual([]);
  });

  it('adopts services whose every user was killed, without losing a report', { timeout: 120_000 }, async () => {
    const dataDir = freshDataDir();
    const env = { LAPOR_DATA_DIR: dataDir, LAPOR_LOG_LEVEL: 'info' };
    const gateway = await startGateway(env, { readyTimeoutMs: 60_000 });
    const trackingId = await fileReport(gateway.url, 'Jembatan penyeberangan di Jl. Sudirman rusak, pegangan besi lepas.');
    await stored(gateway.url, trackingId);
    const services = state(dataDir);
    await gateway.kill('SIGKILL');

    const next = await startGateway(env, { readyTimeoutMs: 60_000 });
    expect(next.output()).toContain('adopting a local service whose users are gone');
    expect(state(dataDir)).toMatchObject({ redis: services.redis, postgres: services.postgres, users: [{ pid: next.pid }] });
    expect(await stored(next.url, trackingId)).toMatchObject({ trackingId });
    expect(await next.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect([services.redis!.pid, services.postgres!.pid].filter(isAlive)).toEqual([]);
  });

  it('never stops a service others use because it does not answer this process: it says so instead', { timeout: 120_000 }, async () => {
    const dataDir = freshDataDir();
    const env = { LAPOR_DATA_DIR: dataDir, LAPOR_LOG_LEVEL: 'info' };
    const gateway = await startGateway(env, { readyTimeoutMs: 60_000 });
    const { redis } = state(dataDir);
    // A Redis that hangs (stopped, as a machine under swap might): it accepts nothing for a while.
    process.kill(redis!.pid, 'SIGSTOP');
    try {
      const run = runCli(['dlq', 'list'], env);
      const exit = await withTimeout(run.exited, 60_000, 'dlq list', run);
      expect(exit.code, run.output()).toBe(78);
      expect(run.output()).toMatch(/The local redis of .* is running but not taking this process, and 1 other lapor process\(es\) use it/);
      expect(isAlive(redis!.pid)).toBe(true);
    } finally {
      process.kill(redis!.pid, 'SIGCONT');
    }
    // The gateway still has its Redis, the very same one.
    await eventually(async () => ((await fetch(`${gateway.url}/readyz`)).status === 200 ? true : undefined), 15_000, 'ready again');
    expect(state(dataDir).redis).toEqual(redis);
    expect(await gateway.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});
