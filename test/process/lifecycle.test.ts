import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { CHANNEL_IDS } from '../../src/core/inbound.ts';
import { startLocalRedis } from '../../src/local/services.ts';
import { createLogger } from '../../src/log.ts';
import { INBOUND_QUEUE, notifyQueueName } from '../../src/queue/names.ts';
import { createDatabase, eventually, testEnvVars } from '../helpers/env.ts';
import { killAllGateways, startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';

/**
 * The gateway as a process: what a crash (SIGKILL), a graceful SIGTERM, a restart on the same
 * data and a Redis outage do to reports that were already acknowledged with a 201.
 */

const QUEUE_NAMES = [INBOUND_QUEUE, ...CHANNEL_IDS.map(notifyQueueName)];
const PENDING_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

afterEach(async () => {
  await killAllGateways();
});

// ---------------------------------------------------------------------------------------------
// helpers

function reportText(tag: string, i: number): string {
  return `Jalan berlubang di depan SDN ${i} Sukamaju (${tag}) sejak dua bulan, mohon segera diperbaiki.`;
}

async function postReport(url: string, text: string, timeoutMs = 10_000) {
  const res = await fetch(`${url}/api/v1/reports`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

/** POSTs `n` reports with `inFlight` requests at a time; returns the tracking IDs answered with 201. */
async function burst(url: string, n: number, inFlight = 50): Promise<{ acknowledged: string[]; refused: string[] }> {
  const tag = randomBytes(4).toString('hex');
  const acknowledged: string[] = [];
  const refused: string[] = [];
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      try {
        const res = await postReport(url, reportText(tag, i));
        if (res.status === 201) acknowledged.push(res.body.trackingId as string);
        else refused.push(`${res.status} ${JSON.stringify(res.body)}`);
      } catch (err) {
        refused.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return { acknowledged, refused };
}

/** BullMQ's view of every queue under one prefix, on a connection of the test's own. */
class QueueProbe {
  private readonly connection: Redis;
  private readonly queues: Queue[];
  constructor(redisUrl: string, prefix: string) {
    this.connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    this.connection.on('error', () => undefined);
    this.queues = QUEUE_NAMES.map((name) => new Queue(name, { connection: this.connection, prefix }));
  }
  queue(name: string): Queue {
    return this.queues.find((q) => q.name === name)!;
  }
  /** Jobs not yet finished, per queue and state (only the non-zero ones). */
  async pending(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const q of this.queues) {
      const counts = await q.getJobCounts(...PENDING_STATES);
      const nonZero = Object.fromEntries(Object.entries(counts).filter(([, v]) => v > 0));
      if (Object.keys(nonZero).length) out[q.name] = nonZero;
    }
    return out;
  }
  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
    await this.connection.quit().catch(() => this.connection.disconnect());
  }
}

const total = (pending: Record<string, Record<string, number>>, state?: string) =>
  Object.values(pending).reduce((sum, counts) => sum + Object.entries(counts).reduce((s, [k, v]) => s + (!state || k === state ? v : 0), 0), 0);

async function withDb<T>(databaseUrl: string, work: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

/** Waits until every acknowledged report is in `reports` and the queues are drained. */
async function waitPersisted(databaseUrl: string, probe: QueueProbe, acknowledged: string[], timeoutMs = 30_000) {
  await withDb(databaseUrl, (db) =>
    eventually(
      async () => {
        const { rows } = await db.query<{ n: number }>('SELECT count(DISTINCT tracking_id)::int AS n FROM reports WHERE tracking_id = ANY($1)', [acknowledged]);
        return rows[0]!.n === acknowledged.length ? true : undefined;
      },
      timeoutMs,
      `all ${acknowledged.length} acknowledged reports in PostgreSQL`,
    ),
  );
  await eventually(async () => (total(await probe.pending()) === 0 ? true : undefined), timeoutMs, 'queues drained');
}

/** Every acknowledged report exists exactly once, with one receipt, one event, one notification. */
async function expectExactlyOnce(databaseUrl: string, acknowledged: string[]) {
  expect(new Set(acknowledged).size, 'tracking IDs handed out are unique').toBe(acknowledged.length);
  await withDb(databaseUrl, async (db) => {
    const one = async (sql: string, params: unknown[] = []) => (await db.query(sql, params)).rows;

    const [reports] = await one('SELECT count(*)::int AS n FROM reports');
    expect(reports.n, 'count(reports) == acknowledged').toBe(acknowledged.length);
    expect(await one('SELECT tracking_id, count(*)::int FROM reports GROUP BY tracking_id HAVING count(*) > 1'), 'duplicate tracking_id').toEqual([]);
    const missing = await one('SELECT t FROM unnest($1::text[]) AS t WHERE t NOT IN (SELECT tracking_id FROM reports)', [acknowledged]);
    expect(missing, 'acknowledged but not persisted').toEqual([]);

    const [receipts] = await one(`SELECT count(*)::int AS n, count(*) FILTER (WHERE outcome <> 'new_report')::int AS odd FROM inbound_receipts`);
    expect(receipts.n, 'count(inbound_receipts) == acknowledged').toBe(acknowledged.length);
    expect(receipts.odd, 'receipts with an outcome other than new_report').toBe(0);

    const perReport = await one(`
      SELECT r.tracking_id,
        (SELECT count(*)::int FROM report_events e WHERE e.report_seq = r.seq AND e.type = 'received') AS received_events,
        (SELECT count(*)::int FROM messages m WHERE m.report_seq = r.seq AND m.direction = 'in') AS inbound_messages,
        (SELECT count(*)::int FROM messages m WHERE m.notify_key = 'n_' || r.tracking_id || '_received') AS received_notifications
      FROM reports r`);
    const wrong = perReport.filter((r) => r.received_events !== 1 || r.inbound_messages !== 1 || r.received_notifications > 1);
    expect(wrong, 'reports without exactly one received event / inbound message, or with more than one received notification').toEqual([]);
    // The queues were drained: the notification was not lost either.
    expect(perReport.filter((r) => r.received_notifications !== 1), 'reports whose received notification was lost').toEqual([]);
  });
}

async function freshGatewayEnv(overrides: Record<string, string> = {}) {
  const databaseUrl = await createDatabase();
  const env = testEnvVars({ LAPOR_DATABASE_URL: databaseUrl, LAPOR_LOG_LEVEL: 'info', ...overrides });
  return { databaseUrl, env, prefix: env.LAPOR_QUEUE_PREFIX! };
}

/** Processes whose command line names `dir` (postgres does; redis-server rewrites its title). */
function processesUsing(dir: string): { pid: number; args: string }[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().match(/^(\d+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => Boolean(m) && m![2]!.includes(dir) && !m![2]!.startsWith('ps '))
    .map((m) => ({ pid: Number(m[1]), args: m[2]! }));
}

/** The local redis-server and postmaster of a data dir, from their pid files (while they run). */
function localServicePids(dataDir: string): { redis?: number; postgres?: number } {
  const read = (file: string) => (existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) || undefined : undefined);
  return { redis: read(join(dataDir, 'redis', 'redis.pid')), postgres: read(join(dataDir, 'pg', 'data', 'postmaster.pid')) };
}

/** Records the pids of the local services every 50 ms until `until` settles (pid files go on a clean stop). */
async function watchPids<T>(dataDir: string, until: Promise<T>, into: { redis?: number; postgres?: number }): Promise<T> {
  let done = false;
  const watching = (async () => {
    while (!done) {
      Object.assign(into, Object.fromEntries(Object.entries(localServicePids(dataDir)).filter(([, v]) => v)));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return await until;
  } finally {
    done = true;
    await watching;
    Object.assign(into, Object.fromEntries(Object.entries(localServicePids(dataDir)).filter(([, v]) => v)));
  }
}

function isRunning(pid: number): boolean {
  const ps = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' });
  // A zombie (Z) has exited; it only waits for a parent to reap it.
  return ps.status === 0 && !ps.stdout.trim().startsWith('Z');
}

/** What is still running of the local services: by pid file, by data dir in ps. */
function leftovers(dataDir: string, pids: { redis?: number; postgres?: number }): string[] {
  return [
    ...Object.entries(pids)
      .filter(([, pid]) => pid && isRunning(pid))
      .map(([name, pid]) => `${name} (pid ${pid})`),
    ...processesUsing(dataDir).map((p) => `${p.pid} ${p.args}`),
  ].filter((v, i, all) => all.indexOf(v) === i);
}

/** Stops what a failed test left of the local services (they outlive a dead gateway: own group). */
async function stopLeftovers(dataDir: string, pids: { redis?: number; postgres?: number }): Promise<void> {
  const all = [pids.redis, pids.postgres, ...processesUsing(dataDir).map((p) => p.pid)].filter((p): p is number => Boolean(p));
  for (const pid of new Set(all)) {
    try {
      process.kill(pid, pid === pids.postgres ? 'SIGINT' : 'SIGTERM');
    } catch {
      // gone already
    }
  }
  for (let i = 0; i < 50 && all.some(isRunning); i++) await new Promise((r) => setTimeout(r, 100));
  for (const pid of all.filter(isRunning)) process.kill(pid, 'SIGKILL');
}

function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lapor-lifecycle-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root: it must get in
  return dir;
}

// ---------------------------------------------------------------------------------------------

describe('gateway process lifecycle', () => {
  it('loses and duplicates nothing acknowledged when killed between enqueue and completion', { timeout: 90_000 }, async () => {
    const redisUrl = inject('redisUrl');
    let crash: { databaseUrl: string; env: Record<string, string>; probe: QueueProbe; acknowledged: string[] } | undefined;
    // A machine fast enough to finish everything before the kill would not test the crash window:
    // try again with a bigger burst, and fail if it is never caught.
    for (const n of [300, 600, 1200]) {
      const { databaseUrl, env, prefix } = await freshGatewayEnv({ LAPOR_QUEUE_LOCK_MS: '1500' });
      const probe = new QueueProbe(redisUrl, prefix);
      const gateway = await startGateway(env);
      const { acknowledged, refused } = await burst(gateway.url, n, 50);
      const exit = await gateway.kill('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      expect(refused, 'every POST of the burst is acknowledged').toEqual([]);
      const pending = await probe.pending();
      console.info(`crash window: ${n} reports acknowledged, at SIGKILL still pending ${JSON.stringify(pending)}`);
      if (total(pending, 'waiting') + total(pending, 'active') > 0) {
        crash = { databaseUrl, env, probe, acknowledged };
        break;
      }
      await probe.close();
    }
    expect(crash, 'the kill never caught a job waiting or active').toBeDefined();
    const { databaseUrl, env, probe, acknowledged } = crash!;
    try {
      const restarted = await startGateway(env);
      const started = Date.now();
      await waitPersisted(databaseUrl, probe, acknowledged);
      console.info(`crash recovery: ${acknowledged.length} reports persisted and queues drained ${Date.now() - started} ms after the restart was ready`);
      await expectExactlyOnce(databaseUrl, acknowledged);
      expect((await restarted.kill('SIGTERM')).code).toBe(0);
    } finally {
      await probe.close();
    }
  });

  it('finishes in-flight work and exits 0 on SIGTERM, leaving no job active', { timeout: 60_000 }, async () => {
    const shutdownTimeoutMs = 10_000;
    // The default 30 s lock: a job left active by the shutdown would not be recovered in time.
    const { databaseUrl, env, prefix } = await freshGatewayEnv({ LAPOR_SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) });
    const probe = new QueueProbe(inject('redisUrl'), prefix);
    try {
      const gateway = await startGateway(env);
      const { acknowledged, refused } = await burst(gateway.url, 300, 50);
      expect(refused).toEqual([]);
      const signalled = Date.now();
      const [exit, atSignal] = await Promise.all([gateway.kill('SIGTERM', shutdownTimeoutMs + 5_000), probe.pending()]);
      const shutdownMs = Date.now() - signalled;
      const afterExit = await probe.pending();
      console.info(`SIGTERM: exit ${JSON.stringify(exit)} after ${shutdownMs} ms; pending at signal ${JSON.stringify(atSignal)}, after exit ${JSON.stringify(afterExit)}`);
      expect(exit, gateway.output()).toEqual({ code: 0, signal: null });
      expect(shutdownMs).toBeLessThan(shutdownTimeoutMs);
      expect(gateway.stdout.join('')).toContain('"msg":"stopped"');
      expect(total(afterExit, 'active'), `jobs left active: ${JSON.stringify(afterExit)}`).toBe(0);

      await startGateway(env);
      await waitPersisted(databaseUrl, probe, acknowledged, 20_000);
      await expectExactlyOnce(databaseUrl, acknowledged);
    } finally {
      await probe.close();
    }
  });

  describe('with local services (no database or Redis URL)', () => {
    const dataDirs: string[] = [];
    afterAll(async () => {
      await killAllGateways();
      for (const dir of dataDirs) {
        await stopLeftovers(dir, localServicePids(dir));
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('keeps a report across a stop and a start on the same data dir', { timeout: 90_000 }, async () => {
      const dataDir = freshDataDir();
      dataDirs.push(dataDir);
      const env = { LAPOR_DATA_DIR: dataDir, LAPOR_LOG_LEVEL: 'info' };

      const first = await startGateway(env, { readyTimeoutMs: 30_000 });
      console.info(`local services: first start (initdb included) ready in ${first.startupMs} ms`);
      expect(first.startupMs).toBeLessThan(30_000);
      expect(existsSync(join(dataDir, 'keys.json')), 'keys generated into the data dir').toBe(true);
      const keys = readFileSync(join(dataDir, 'keys.json'), 'utf8');
      const firstPids = localServicePids(dataDir);
      expect(firstPids.redis && firstPids.postgres, 'local redis-server and postgres running').toBeTruthy();

      const text = 'Jalan berlubang di depan SDN 3 Sukamaju sejak dua bulan, mohon segera diperbaiki.';
      const created = await postReport(first.url, text);
      expect(created.status).toBe(201);
      const trackingId = created.body.trackingId as string;
      const before = await eventually(async () => {
        const res = await fetch(`${first.url}/api/v1/reports/${trackingId}`);
        const body = (await res.json()) as Record<string, unknown>;
        return res.status === 200 && !body.pending && (body.notifications as unknown[]).length ? body : undefined;
      }, 15_000, `report ${trackingId} persisted`);
      expect(before).toMatchObject({ trackingId, text, status: 'belum_terverifikasi' });

      expect(await first.kill('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(leftovers(dataDir, firstPids), 'redis-server / postgres left running after SIGTERM').toEqual([]);

      const second = await startGateway(env, { readyTimeoutMs: 30_000 });
      console.info(`local services: restart ready in ${second.startupMs} ms`);
      expect(second.startupMs).toBeLessThan(30_000);
      expect(readFileSync(join(dataDir, 'keys.json'), 'utf8'), 'keys kept').toBe(keys);
      const secondPids = localServicePids(dataDir);
      const res = await fetch(`${second.url}/api/v1/reports/${trackingId}`);
      expect(res.status).toBe(200);
      const after = (await res.json()) as Record<string, unknown>;
      expect(after).toMatchObject({ trackingId, text, status: before.status, receivedAt: before.receivedAt });
      expect(after.pending).toBeUndefined();

      expect(await second.kill('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(leftovers(dataDir, secondPids), 'redis-server / postgres left running after SIGTERM').toEqual([]);
    });

    it('says in one sentence, before any log line, that the HTTP port is taken, and leaves nothing running', { timeout: 60_000 }, async () => {
      const dataDir = freshDataDir();
      dataDirs.push(dataDir);
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      const port = (blocker.address() as AddressInfo).port;
      const pids: { redis?: number; postgres?: number } = {};
      try {
        const gateway = await startGateway({ LAPOR_DATA_DIR: dataDir, LAPOR_LOG_LEVEL: 'info' }, { port, waitReady: false });
        const exit = await watchPids(
          dataDir,
          Promise.race([gateway.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('gateway did not exit')), 30_000))]),
          pids,
        );
        const firstLine = gateway.stderr.join('').split('\n')[0];
        expect(firstLine, gateway.output()).toBe(`Port ${port} on 127.0.0.1 is already in use (another program, or another npm start). Start on another port: PORT=${port + 1} npm start`);
        expect(gateway.stdout.join(''), 'no JSON log before the sentence').not.toMatch(/"msg":"(?!cannot start)/);
        expect(exit.code).toBe(78);
        expect(leftovers(dataDir, pids), 'redis-server / postgres orphaned by a failed start').toEqual([]);
      } finally {
        blocker.close();
        await stopLeftovers(dataDir, pids);
      }
    });

    it('shuts down cleanly when SIGTERM arrives during start-up', { timeout: 60_000 }, async () => {
      const dataDir = freshDataDir();
      dataDirs.push(dataDir);
      const pids: { redis?: number; postgres?: number } = {};
      try {
        const gateway = await startGateway({ LAPOR_DATA_DIR: dataDir, LAPOR_LOG_LEVEL: 'info' }, { waitReady: false });
        // redis-server is up and PostgreSQL is being initialised: the middle of start-up.
        await eventually(async () => localServicePids(dataDir).redis, 30_000, 'local redis-server started');
        const exit = await watchPids(dataDir, gateway.kill('SIGTERM', 30_000), pids);
        expect(leftovers(dataDir, pids), 'redis-server / postgres orphaned by a SIGTERM during start-up').toEqual([]);
        expect(exit).toEqual({ code: 0, signal: null });
      } finally {
        await stopLeftovers(dataDir, pids);
      }
    });
  });

  describe('when Redis goes away', () => {
    const log = createLogger({ level: 'silent' });
    let redisDir: string | undefined;
    let redis: Awaited<ReturnType<typeof startLocalRedis>> | undefined;
    afterAll(async () => {
      await killAllGateways();
      await redis?.stop();
      if (redisDir) rmSync(redisDir, { recursive: true, force: true });
    });

    it('answers 503 with Retry-After at once, and recovers when Redis is back', { timeout: 60_000 }, async () => {
      redisDir = mkdtempSync(join(tmpdir(), 'lapor-redis-'));
      redis = await startLocalRedis({ dir: redisDir, fsync: 'always', log });
      const { databaseUrl, env, prefix } = await freshGatewayEnv({ LAPOR_REDIS_URL: redis.url });
      const gateway: GatewayProcess = await startGateway(env);

      const baseline = await postReport(gateway.url, reportText('baseline', 1));
      expect(baseline.status).toBe(201);
      const baselineId = baseline.body.trackingId as string;
      await withDb(databaseUrl, (db) =>
        eventually(async () => ((await db.query('SELECT 1 FROM reports WHERE tracking_id = $1', [baselineId])).rowCount ? true : undefined), 10_000, 'baseline persisted'),
      );

      const killed = new Promise((resolve) => redis!.child.once('exit', resolve));
      redis.child.kill('SIGKILL');
      await killed;

      const t0 = Date.now();
      const refused = await postReport(gateway.url, reportText('down', 1), 5_000);
      const refusedMs = Date.now() - t0;
      console.info(`redis down: POST answered ${refused.status} in ${refusedMs} ms`);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(refusedMs).toBeLessThan(1_000);
      const notReady = await fetch(`${gateway.url}/readyz`, { signal: AbortSignal.timeout(5_000) });
      expect(notReady.status).toBe(503);

      // The same port and data dir: the AOF brings back every job and key written before.
      redis = await startLocalRedis({ dir: redisDir, port: redis.port, fsync: 'always', log });
      const back = Date.now();
      const accepted = await eventually(async () => {
        const res = await postReport(gateway.url, reportText('back', 1), 2_000);
        return res.status === 201 ? res : undefined;
      }, 10_000, 'POST accepted again');
      const acceptedMs = Date.now() - back;
      await eventually(async () => {
        const res = await fetch(`${gateway.url}/readyz`, { signal: AbortSignal.timeout(3_000) });
        return res.status === 200 ? true : undefined;
      }, 10_000, '/readyz 200 again');
      const readyMs = Date.now() - back;
      const id = accepted.body.trackingId as string;
      await withDb(databaseUrl, (db) =>
        eventually(async () => ((await db.query('SELECT 1 FROM reports WHERE tracking_id = $1', [id])).rowCount ? true : undefined), 10_000, `report ${id} persisted after Redis came back`),
      );
      const persistedMs = Date.now() - back;
      console.info(`redis back: POST 201 after ${acceptedMs} ms, /readyz 200 after ${readyMs} ms, report persisted after ${persistedMs} ms`);

      const probe = new QueueProbe(redis.url, prefix);
      try {
        expect(await probe.queue(INBOUND_QUEUE).getJob(`web_${baselineId}`), 'job from before the crash replayed from the AOF').toBeDefined();
      } finally {
        await probe.close();
      }
      await withDb(databaseUrl, async (db) => {
        const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM reports');
        expect(rows[0]!.n, 'the refused POST left nothing behind').toBe(2);
      });
      expect(await gateway.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    });
  });
});
