import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import { StartupError } from '../../src/local/services.ts';
import { createLogger } from '../../src/log.ts';
import { UnsafeRedisError } from '../../src/queue/redis.ts';
import { openRuntime } from '../../src/runtime.ts';
import { createTestEnv, eventually, testEnvVars, type TestEnv } from '../helpers/env.ts';
import { contactHashOf, numbers, smsGateway } from '../helpers/sms.ts';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.ts';

/**
 * The gateway against a Redis Cluster of three real masters: BullMQ's keys and ours share the
 * prefix's hash tag, so every MULTI, script and MGET finds its keys in one slot.
 */
let cluster: RedisCluster;
let env: TestEnv;
const clusterVars = () => ({ LAPOR_REDIS_URL: cluster.url, LAPOR_REDIS_CLUSTER: 'true' });

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  env = await createTestEnv({ env: clusterVars() });
}, 30_000);
afterAll(async () => {
  await env?.close();
  await cluster?.stop();
});

function post(target: TestEnv, text: string, headers: Record<string, string> = {}) {
  return target.app.inject({ method: 'POST', url: '/api/v1/reports', payload: JSON.stringify({ text }), headers: { 'content-type': 'application/json', ...headers } });
}

/** Waits until every tracking ID is a report, then returns how many rows each has. */
async function filed(trackingIds: string[]): Promise<number[]> {
  return eventually(async () => {
    const { rows } = await env.runtime.db.query<{ n: number }>(
      'SELECT count(r.tracking_id)::int AS n FROM unnest($1::text[]) AS t LEFT JOIN reports r ON r.tracking_id = t GROUP BY t',
      [trackingIds],
    );
    return rows.every((r) => r.n > 0) ? rows.map((r) => r.n) : undefined;
  }, 20_000, 'reports filed');
}

describe('the gateway on a Redis Cluster', () => {
  it('connects as a cluster and is ready', async () => {
    expect(env.runtime.producer).toBeInstanceOf(Cluster);
    const res = await env.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.json().checks).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'intake_workers', ok: true })]));
    expect(res.statusCode).toBe(200);
  });

  it('files a web report once, and a retry with the same Idempotency-Key is the same report', async () => {
    const headers = { 'idempotency-key': `k-${randomBytes(6).toString('hex')}` };
    const first = await post(env, 'Jalan di depan pasar berlubang besar sejak bulan lalu.', headers);
    const retry = await post(env, 'Jalan di depan pasar berlubang besar sejak bulan lalu.', headers);
    expect([first.statusCode, retry.statusCode]).toEqual([201, 201]);
    expect(retry.json().trackingId).toBe(first.json().trackingId);
    expect(await filed([first.json().trackingId])).toEqual([1]);
  });

  it('stores a burst of 50 concurrent reports in batches and files each once', async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => post(env, `Lampu jalan nomor ${i} di Jalan Melati mati sejak minggu lalu.`)));
    expect(replies.map((r) => r.statusCode)).toEqual(Array(50).fill(201));
    const ids = replies.map((r) => r.json().trackingId as string);
    expect(new Set(ids).size).toBe(50);
    expect(await filed(ids)).toEqual(Array(50).fill(1));

    // What arrived together was stored as one job (src/queue/queues.ts flushInbound).
    const jobs = await env.runtime.queues.inbound.getJobs(['completed', 'active', 'waiting']);
    const sizes = jobs.map((j) => ('messages' in j.data ? j.data.messages.length : 1));
    expect(Math.max(...sizes)).toBeGreaterThan(1);

    // The hash tag keeps every key of the gateway on one master, the Idempotency-Key included.
    const prefix = env.config.queue.prefix;
    const perMaster = await Promise.all(cluster.ports.map((port) => cluster.node(port).keys(`${prefix}*`)));
    expect(perMaster.filter((keys) => keys.length > 0)).toHaveLength(1);
    expect(perMaster.flat().some((k) => k.startsWith(`${prefix}:idem:web:`))).toBe(true);
  });

  it('runs the SMS channel: bind lease, rate counter, reassembly scripts and dedup keys', async () => {
    const sms = await smsGateway(clusterVars());
    try {
      const newNumber = numbers('+62813');
      const reportsFrom = async (from: string) =>
        (await sms.env.runtime.db.query<{ text: string }>('SELECT text FROM reports WHERE contact_hash = $1', [contactHashOf(sms.env, from)])).rows;
      const long = { from: newNumber(), text: `${'Jembatan di Desa Sukamaju retak dan goyang bila dilewati truk, '.repeat(5)}mohon diperiksa.` };
      const short = { from: newNumber(), text: 'LAPOR pipa air bocor di depan puskesmas sejak kemarin' };
      await sms.sim.sendMo({ ...long, split: 'udh8', order: 'reverse', duplicate: [2] });
      // The same SMS twice: the second is a redelivery (its dedup key, read with MGET).
      await sms.sim.sendMo(short);
      await sms.sim.sendMo(short);
      for (const { from, text } of [long, short]) {
        const rows = await eventually(async () => ((await reportsFrom(from)).length ? reportsFrom(from) : undefined), 10_000, 'an SMS report');
        expect(rows.map((r) => r.text)).toEqual([text.replace(/^LAPOR /, '')]);
      }
      const prefix = sms.env.config.queue.prefix;
      const keys = (await Promise.all(cluster.ports.map((port) => cluster.node(port).keys(`${prefix}:*`)))).flat();
      for (const kind of ['sms:lease:', 'sms:rate:', 'sms:concat:released:', 'dedup:']) expect(keys.some((k) => k.startsWith(`${prefix}:${kind}`)), kind).toBe(true);
      expect(sms.env.logs.filter((line) => line.includes(long.from.slice(3)) || line.includes(short.from.slice(3)))).toEqual([]);
    } finally {
      await sms.close();
    }
  }, 30_000);

  it('files every report once with two gateways on the same cluster and database', async () => {
    const same = {
      ...clusterVars(),
      LAPOR_DATABASE_URL: env.databaseUrl,
      LAPOR_QUEUE_PREFIX: env.config.queue.prefix,
      LAPOR_DATA_KEY: env.config.dataKey!,
      LAPOR_TRACKING_KEY: env.config.trackingKey!,
    };
    const second = await createTestEnv({ env: same });
    try {
      const key = { 'idempotency-key': `k-${randomBytes(6).toString('hex')}` };
      const replies = await Promise.all([
        ...Array.from({ length: 20 }, (_, i) => post(i % 2 ? second : env, `Saluran air di gang ${i} tersumbat dan meluap ke jalan.`)),
        // The same request, retried through the other gateway.
        post(env, 'Sampah menumpuk di pinggir sungai dekat jembatan.', key),
        post(second, 'Sampah menumpuk di pinggir sungai dekat jembatan.', key),
      ]);
      expect(replies.every((r) => r.statusCode === 201)).toBe(true);
      const ids = replies.map((r) => r.json().trackingId as string);
      expect(ids[20]).toBe(ids[21]);
      const distinct = [...new Set(ids)];
      expect(distinct).toHaveLength(21);
      expect(await filed(distinct)).toEqual(Array(21).fill(1));
    } finally {
      await second.close();
    }
  }, 30_000);

  it('refuses to start when one master may lose acknowledged writes', async () => {
    const log = createLogger({ level: 'silent' });
    const config = loadConfig(testEnvVars({ ...clusterVars(), LAPOR_DATABASE_URL: env.databaseUrl }));
    const weak = cluster.node(cluster.ports[1]!);
    await weak.config('SET', 'appendfsync', 'no');
    try {
      const error = await openRuntime(config, log, { migrate: false }).then(
        (runtime) => runtime.close(),
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(UnsafeRedisError);
      expect((error as UnsafeRedisError).problems).toEqual([expect.stringMatching(new RegExp(`^127\\.0\\.0\\.1:${cluster.ports[1]}: appendfsync is no`))]);
    } finally {
      await weak.config('SET', 'appendfsync', 'always');
    }
  });

  it('refuses a queue prefix without a hash tag, and a cluster node taken for a single server', async () => {
    const open = (vars: Record<string, string>) =>
      openRuntime(loadConfig(testEnvVars({ LAPOR_DATABASE_URL: env.databaseUrl, ...vars })), createLogger({ level: 'silent' }), { migrate: false });
    await expect(open({ ...clusterVars(), LAPOR_QUEUE_PREFIX: 'lapor' })).rejects.toThrow(StartupError);
    await expect(open({ LAPOR_REDIS_URL: cluster.url })).rejects.toThrow(/set LAPOR_REDIS_CLUSTER=true/);
  });
});
