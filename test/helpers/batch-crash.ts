import { randomBytes, randomInt } from 'node:crypto';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { inject } from 'vitest';
import { SmscSimulator, type Reply } from '../../scripts/smsc/simulator.ts';
import { DataKeys } from '../../src/core/crypto.ts';
import { CHANNEL_IDS, normalizeAddress } from '../../src/core/inbound.ts';
import { DEADLINES_QUEUE, INBOUND_QUEUE, notifyQueueName } from '../../src/queue/names.ts';
import { createDatabase, eventually, testEnvVars } from './env.ts';
import { smsBindVars } from './sms.ts';
import type { GatewayProcess } from './gateway-process.ts';

/**
 * What the crash and redelivery tests of the batched path (test/process/batch-crash.test.ts) share:
 * an SMSC simulator and the environment of a gateway process bound to it, citizens texting through
 * it with a window of deliver_sm outstanding (and the SMSC's redelivery of whatever it got no OK
 * for), and a probe that reads what the gateway left in Redis and PostgreSQL.
 */

export const PIPELINE_QUEUES = [INBOUND_QUEUE, ...CHANNEL_IDS.map(notifyQueueName)];
const ALL_QUEUES = [...PIPELINE_QUEUES, DEADLINES_QUEUE];
const UNFINISHED = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/** One citizen's text: every citizen of a test has a number of their own. */
export interface Mo {
  from: string;
  text: string;
}

/** `n` citizens, each with a fresh number and a report text carrying `tag` (so the logs can be searched for it). */
export function citizens(n: number, tag = randomBytes(3).toString('hex')): { tag: string; messages: Mo[] } {
  const base = randomInt(1_000_000, 8_000_000);
  const messages = Array.from({ length: n }, (_, i) => ({
    from: `+62857${String(base + i).padStart(7, '0')}`,
    text: `LAPOR Kampung${tag}: jalan berlubang di depan SDN ${i} sejak dua bulan, mohon segera diperbaiki.`,
  }));
  return { tag, messages };
}

/** How long the same SMS counts as a redelivery: LAPOR_SMPP_DEDUP_MINUTES, set so in `gatewayEnv`. */
export const SMS_DEDUP_WINDOW_MS = 60 * 60_000;

/**
 * Waits, if need be, until the next SMS dedup window has begun, so that no message of a test and its
 * redelivery fall on either side of a window boundary: two such copies filed at the same time are
 * two reports (the defect shown at the end of test/process/batch-crash.test.ts), and the tests of
 * the other guarantees must not fail by it once an hour.
 */
export async function clearOfDedupBoundary(marginMs = 30_000): Promise<void> {
  const left = SMS_DEDUP_WINDOW_MS - (Date.now() % SMS_DEDUP_WINDOW_MS);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 500));
}

/** A gateway's environment: own database, own queue prefix, bound to `sim`, quick to recover a dead worker's jobs. */
export async function gatewayEnv(sim: SmscSimulator, overrides: Record<string, string> = {}): Promise<{ env: Record<string, string>; databaseUrl: string; prefix: string }> {
  const databaseUrl = await createDatabase();
  const env = testEnvVars({
    LAPOR_DATABASE_URL: databaseUrl,
    ...smsBindVars(sim.port),
    LAPOR_SMPP_DEDUP_MINUTES: String(SMS_DEDUP_WINDOW_MS / 60_000),
    // A job of a killed process is taken up again within a couple of seconds of the restart.
    LAPOR_QUEUE_LOCK_MS: '2000',
    ...overrides,
  });
  return { env, databaseUrl, prefix: env.LAPOR_QUEUE_PREFIX! };
}

export async function startSimulator(): Promise<SmscSimulator> {
  return SmscSimulator.start({ systemId: 'lapor', password: 'secret', receiptDelayMs: 5 });
}

/**
 * Texts every message as a deliver_sm, with at most `window` outstanding (so what arrives together
 * is stored together); per message, whether the SMSC got an ESME_ROK for it. A message the gateway
 * did not answer OK (no bind, the bind dropped, a timeout, a "try again later") is not acknowledged.
 */
export async function deliver(sim: SmscSimulator, messages: readonly Mo[], window = 50, timeoutMs = 5_000): Promise<boolean[]> {
  const acked = messages.map(() => false);
  let next = 0;
  const lane = async () => {
    while (next < messages.length) {
      const i = next++;
      const m = messages[i]!;
      try {
        const { statuses } = await sim.sendMo({ from: m.from, text: m.text, timeoutMs });
        acked[i] = statuses.every((s) => s === 0);
      } catch {
        acked[i] = false;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, messages.length) }, lane));
  return acked;
}

/**
 * The SMSC's side of a dropped bind: once an ESME is bound again, every message it has no OK for is
 * delivered again, same content, until each is acknowledged. `acked` is updated in place.
 */
export async function redeliverUnacked(sim: SmscSimulator, messages: readonly Mo[], acked: boolean[], timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let rounds = 0;
  while (acked.some((a) => !a)) {
    if (Date.now() > deadline) throw new Error(`${acked.filter((a) => !a).length} messages still unacknowledged after ${timeoutMs} ms of redelivery`);
    await sim.waitForBind(Math.max(1, deadline - Date.now()));
    const todo = acked.flatMap((a, i) => (a ? [] : [i]));
    const result = await deliver(sim, todo.map((i) => messages[i]!));
    todo.forEach((i, k) => {
      if (result[k]) acked[i] = true;
    });
    rounds++;
    if (acked.some((a) => !a)) await new Promise((r) => setTimeout(r, 200));
  }
  return rounds;
}

/** Drops every bind (a dead link, no unbind) and waits until the gateway has bound again. */
export async function dropAndRebind(sim: SmscSimulator, timeoutMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let listener: (() => void) | undefined;
  const rebound = new Promise<void>((resolve, reject) => {
    listener = () => resolve();
    timer = setTimeout(() => reject(new Error(`no bind within ${timeoutMs} ms of the drop`)), timeoutMs);
  });
  sim.on('bind', listener!);
  try {
    if (sim.dropBind() === 0) throw new Error('no bind to drop');
    await rebound;
  } finally {
    clearTimeout(timer);
    sim.off('bind', listener!);
  }
}

/** Complete replies the simulator received, per normalized destination number. */
export function repliesByNumber(sim: SmscSimulator): Map<string, Reply[]> {
  const out = new Map<string, Reply[]>();
  for (const reply of sim.replies()) {
    if (!reply.complete) continue;
    const key = normalizeAddress(reply.to);
    out.set(key, [...(out.get(key) ?? []), reply]);
  }
  return out;
}

/** Waits until the simulator has seen the session of a dead gateway close (so it has read all it was sent). */
export async function waitUnbound(sim: SmscSimulator, timeoutMs = 5_000): Promise<void> {
  await eventually(async () => (sim.sessions === 0 ? true : undefined), timeoutMs, 'the SMSC to see the bind gone');
}

export interface ReportRowSummary {
  trackingId: string;
  contactHash: string | null;
  receipts: number;
  receivedEvents: number;
  inboundMessages: number;
  outbound: { id: string; kind: string; status: string }[];
}

/** BullMQ's and PostgreSQL's view of one gateway's data, on connections of the test's own. */
export class Probe {
  readonly redis: Redis;
  readonly db: pg.Client;
  private readonly queues: Queue[];
  private readonly keys: DataKeys;

  private constructor(
    readonly prefix: string,
    env: Record<string, string>,
    db: pg.Client,
  ) {
    this.redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    this.redis.on('error', () => undefined);
    this.queues = ALL_QUEUES.map((name) => {
      const queue = new Queue(name, { connection: this.redis, prefix });
      queue.on('error', () => undefined);
      return queue;
    });
    this.db = db;
    this.db.on('error', () => undefined);
    this.keys = new DataKeys(Buffer.from(env.LAPOR_DATA_KEY!, 'base64'));
  }

  static async open(env: Record<string, string>): Promise<Probe> {
    const db = new pg.Client({ connectionString: env.LAPOR_DATABASE_URL });
    await db.connect();
    return new Probe(env.LAPOR_QUEUE_PREFIX!, env, db);
  }

  queue(name: string): Queue {
    return this.queues.find((q) => q.name === name)!;
  }

  /** reports.contact_hash of a number. */
  contactHash(number: string): string {
    return this.keys.blindIndex(normalizeAddress(number));
  }

  /** Jobs of the pipeline's queues not yet finished, per queue and state (non-zero only). */
  async unfinished(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const name of PIPELINE_QUEUES) {
      const counts = await this.queue(name).getJobCounts(...UNFINISHED);
      const nonZero = Object.fromEntries(Object.entries(counts).filter(([, v]) => v > 0));
      if (Object.keys(nonZero).length) out[name] = nonZero;
    }
    return out;
  }

  /** Every dead letter (failed job) of every queue, with its reason. */
  async deadLetters(): Promise<{ queue: string; id: string; reason: string }[]> {
    const out: { queue: string; id: string; reason: string }[] = [];
    for (const queue of this.queues) {
      for (const job of await queue.getFailed(0, -1)) out.push({ queue: queue.name, id: String(job.id), reason: job.failedReason ?? '' });
    }
    return out;
  }

  async jobs(name: string, states: ('waiting' | 'active' | 'completed' | 'delayed' | 'failed')[]): Promise<Job[]> {
    return this.queue(name).getJobs(states);
  }

  /** Deletes every Redis dedup key of the gateway, so only PostgreSQL can tell a redelivery. */
  async deleteDedupKeys(): Promise<number> {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}:dedup:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await this.redis.del(...keys);
    } while (cursor !== '0');
    return deleted;
  }

  async count(sql: string, params: unknown[] = []): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(sql, params);
    return rows[0]!.n;
  }

  /** Every report with what it led to: receipts, its 'received' event, its first thread message, its notifications. */
  async reports(): Promise<ReportRowSummary[]> {
    const { rows } = await this.db.query<ReportRowSummary>(
      `SELECT r.tracking_id AS "trackingId", r.contact_hash AS "contactHash",
         (SELECT count(*)::int FROM inbound_receipts i WHERE i.report_seq = r.seq) AS receipts,
         (SELECT count(*)::int FROM report_events e WHERE e.report_seq = r.seq AND e.type = 'received') AS "receivedEvents",
         (SELECT count(*)::int FROM messages m WHERE m.report_seq = r.seq AND m.direction = 'in') AS "inboundMessages",
         (SELECT coalesce(json_agg(json_build_object('id', m.id::text, 'kind', m.kind, 'status', m.status) ORDER BY m.id), '[]'::json)
            FROM messages m WHERE m.report_seq = r.seq AND m.direction = 'out') AS outbound
       FROM reports r ORDER BY r.seq`,
    );
    return rows;
  }

  /** Outbound rows still 'queued', with the report's contact hash. */
  async queuedOutbound(): Promise<{ id: string; contactHash: string | null }[]> {
    const { rows } = await this.db.query<{ id: string; contactHash: string | null }>(
      `SELECT m.id::text, r.contact_hash AS "contactHash" FROM messages m JOIN reports r ON r.seq = m.report_seq
       WHERE m.direction = 'out' AND m.status = 'queued'`,
    );
    return rows;
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
    await this.redis.quit().catch(() => this.redis.disconnect());
    await this.db.end().catch(() => undefined);
  }
}

/**
 * Personal data found in the logs of the given processes: any of the numbers (as written, in
 * international digits or national form) or the texts' tag. Returns what was found, for the message.
 */
export function personalDataInLogs(gateways: readonly GatewayProcess[], numbers: readonly string[], secrets: readonly string[]): string[] {
  const logs = gateways.map((g) => g.output()).join('\n');
  const found: string[] = [];
  for (const number of numbers) {
    const digits = normalizeAddress(number);
    for (const form of [number, digits, `0${digits.slice(2)}`]) if (logs.includes(form)) found.push(form);
  }
  for (const secret of secrets) if (logs.includes(secret)) found.push(secret);
  return found;
}

/** `inbound handled` log lines of a gateway (debug level), which say which process filed which job. */
export function inboundJobsHandled(gateway: GatewayProcess): string[] {
  return gateway.stdout
    .join('')
    .split('\n')
    .filter((line) => line.includes('"msg":"inbound handled"'))
    .map((line) => (JSON.parse(line) as { jobId: string }).jobId);
}
