import type { Job } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { previousDedupKey, toInboundMessage } from '../../adapters/sms/inbound.ts';
import type { SmscSimulator } from '../../scripts/smsc/simulator.ts';
import type { CrashPoint } from '../../src/core/crash.ts';
import { normalizeAddress, type InboundMessage } from '../../src/core/inbound.ts';
import { INBOUND_QUEUE, notifyQueueName } from '../../src/queue/names.ts';
import { createIntakeProcessor } from '../../workers/intake.ts';
import {
  Probe,
  citizens,
  clearOfDedupBoundary,
  deliver,
  dropAndRebind,
  gatewayEnv,
  inboundJobsHandled,
  personalDataInLogs,
  redeliverUnacked,
  repliesByNumber,
  startSimulator,
  waitUnbound,
  type Mo,
} from '../helpers/batch-crash.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';
import { killAllGateways, startGateway, type Exit, type GatewayProcess } from '../helpers/gateway-process.ts';
import { contactHashOf } from '../helpers/sms.ts';

/**
 * The crash and redelivery tests of the batched path (issue #15, point 2). A real gateway process
 * bound over SMPP to an SMSC simulator is flooded so that messages travel in batches, killed
 * (SIGKILL, `LAPOR_TEST_CRASH_AT`) in the gap between two durable steps, and restarted on the same
 * database, Redis prefix and SMSC. The SMSC then redelivers whatever it got no deliver_sm_resp OK
 * for, as a real one does after a dropped bind. Whatever happened, every message the SMSC got an OK
 * for is exactly one report, and its citizen gets exactly one reply — more than one only where SMPP
 * cannot tell (a submit_sm accepted by the SMSC but not yet recorded as sent when the process died).
 * Then: a whole window redelivered with no crash, two gateway processes on one Redis and one
 * PostgreSQL, and, in-process, two copies of one SMS either side of its dedup window filed at once.
 */

const FLOOD = 200;
const SMS_NOTIFY = notifyQueueName('sms');
const REPLY_SENT = ['sent', 'delivered'];

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAllGateways();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A simulator and a probe of a fresh gateway environment, closed after the test. */
async function setUp() {
  await clearOfDedupBoundary();
  const sim = await startSimulator();
  cleanups.push(() => sim.close());
  const { env } = await gatewayEnv(sim);
  const probe = await Probe.open(env);
  cleanups.push(() => probe.close());
  return { sim, env, probe };
}

interface InboundJobView {
  id: string;
  name: string;
  state: string;
  dedupKeys: string[];
  returnvalue: string | undefined;
}

async function inboundJobs(probe: Probe): Promise<InboundJobView[]> {
  const jobs = await probe.jobs(INBOUND_QUEUE, ['waiting', 'active', 'delayed', 'completed', 'failed']);
  return Promise.all(
    jobs.map(async (j) => {
      const data = j.data as { dedupKey?: string; messages?: { dedupKey: string }[] };
      return {
        id: String(j.id),
        name: j.name,
        state: await j.getState(),
        dedupKeys: data.messages ? data.messages.map((m) => m.dedupKey) : [data.dedupKey ?? ''],
        returnvalue: typeof j.returnvalue === 'string' ? j.returnvalue : undefined,
      };
    }),
  );
}

/**
 * How many messages the completed inbound jobs filed new, and how many they found filed already
 * (replays), from their return values. Only the last run of a job is kept: a job that filed, lost
 * its lock and ran again counts as a replay.
 */
function outcomes(jobs: readonly InboundJobView[]): { filed: number; replayed: number } {
  let filed = 0;
  let replayed = 0;
  for (const job of jobs) {
    for (const part of (job.returnvalue ?? '').split(' ')) {
      const m = /^(replay:)?new_report(?:×(\d+))?$/.exec(part);
      if (!m) continue;
      const n = Number(m[2] ?? 1);
      if (m[1]) replayed += n;
      else filed += n;
    }
  }
  return { filed, replayed };
}

/** What a kill left behind, read before the restart. */
interface AtKill {
  exit: Exit;
  acked: number;
  inbound: InboundJobView[];
  notify: { id: string; state: string; ids: string[] }[];
  reports: number;
  /** Dedup keys of messages with a receipt in PostgreSQL. */
  receipts: Set<string>;
  /** Reply rows still 'queued', by id: the normalized number they go to. */
  queued: Map<string, string>;
  /** Complete replies per normalized number. */
  replies: Map<string, number>;
}

async function readKill(sim: SmscSimulator, probe: Probe, messages: readonly Mo[], exit: Exit, acked: boolean[]): Promise<AtKill> {
  const notify = await probe.jobs(SMS_NOTIFY, ['waiting', 'active', 'delayed', 'completed', 'failed']);
  const { rows } = await probe.db.query<{ dedup_key: string }>('SELECT dedup_key FROM inbound_receipts');
  const numberOf = new Map(messages.map((m) => [probe.contactHash(m.from), normalizeAddress(m.from)]));
  return {
    exit,
    acked: acked.filter(Boolean).length,
    inbound: await inboundJobs(probe),
    notify: await Promise.all(notify.map(async (j) => ({ id: String(j.id), state: await j.getState(), ids: (j.data as { ids?: string[] }).ids ?? [] }))),
    reports: await probe.count('SELECT count(*)::int AS n FROM reports'),
    receipts: new Set(rows.map((r) => r.dedup_key)),
    queued: new Map((await probe.queuedOutbound()).map((q) => [q.id, numberOf.get(q.contactHash ?? '') ?? '?'])),
    replies: new Map([...repliesByNumber(sim)].map(([k, v]) => [k, v.length])),
  };
}

/** Reply rows a kill left 'queued' although their citizen had the reply already: sent, not marked. */
const sentUnmarked = (kill: AtKill) => [...kill.queued].filter(([, n]) => (kill.replies.get(n) ?? 0) > 0).map(([id]) => id);

/**
 * The jobs a kill at each point cut short — batches only (a job of one message is not the batched
 * path) — found in what the kill left:
 * - inbound-stored: a batch in Redis, waiting (or taken by the dead worker already);
 * - intake-filed: an active batch every message of which has its receipt, and no notify job yet;
 * - intake-published: an active batch whose notify job (`nb_<job>_sms`) is in Redis;
 * - notify-sent: an active notify batch every row of which went to the SMSC and is still 'queued'.
 */
const CUT: Record<Exclude<CrashPoint, 'x-page-stored' | 'mail-stored' | 'mail-flagged'>, (kill: AtKill) => string[]> = {
  'inbound-stored': (kill) => kill.inbound.filter((j) => isBatch(j) && (j.state === 'waiting' || j.state === 'active')).map((j) => j.id),
  'intake-filed': (kill) =>
    kill.notify.length ? [] : kill.inbound.filter((j) => isBatch(j) && j.state === 'active' && j.dedupKeys.every((k) => kill.receipts.has(k))).map((j) => j.id),
  'intake-published': (kill) => kill.inbound.filter((j) => isBatch(j) && j.state === 'active' && kill.notify.some((n) => n.id.startsWith(`nb_${j.id}_`))).map((j) => j.id),
  'notify-sent': (kill) => {
    const unmarked = new Set(sentUnmarked(kill));
    return kill.notify.filter((n) => n.state === 'active' && n.ids.length > 1 && n.ids.every((id) => unmarked.has(id))).map((n) => n.id);
  },
};
const isBatch = (job: InboundJobView) => job.name === 'batch' && job.dedupKeys.length > 1;

/** The jobs a kill left, in a line: `name(messages) state id`, and the notify jobs' ids and states. */
const jobsLeft = (kill: AtKill) =>
  `inbound: ${kill.inbound.map((j) => `${j.name}(${j.dedupKeys.length}) ${j.state} ${j.id}`).join(', ')}; notify: ${kill.notify.map((n) => `${n.id}(${n.ids.length}) ${n.state}`).join(', ') || 'none'}`;

/** Waits until every message is one report, no reply waits to be sent, every citizen has one, and the queues are drained. */
async function settle(sim: SmscSimulator, probe: Probe, messages: readonly Mo[], timeoutMs = 40_000): Promise<void> {
  const state = async () => {
    const replies = repliesByNumber(sim);
    return {
      reports: await probe.count('SELECT count(*)::int AS n FROM reports'),
      queued: await probe.count(`SELECT count(*)::int AS n FROM messages WHERE direction = 'out' AND status = 'queued'`),
      unanswered: messages.filter((m) => !replies.has(normalizeAddress(m.from))).length,
      unfinished: await probe.unfinished(),
      deadLetters: (await probe.deadLetters()).length,
    };
  };
  try {
    await eventually(
      async () => {
        const now = await state();
        return now.reports >= messages.length && now.queued === 0 && now.unanswered === 0 && !Object.keys(now.unfinished).length ? true : undefined;
      },
      timeoutMs,
      'every report filed, every reply sent, the queues drained',
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; ${messages.length} messages, now ${JSON.stringify(await state())}`);
  }
  // A late second report or second send would show now.
  await sleep(500);
}

/**
 * Exactly once: every message is one report with one receipt, one 'received' event, one thread
 * message and one reply row that ended sent; its citizen got one complete reply carrying the
 * report's tracking ID — two only for the numbers in `twice`. No dead letter, no job unfinished,
 * no number or text in the logs of any process.
 */
async function expectExactlyOnce(
  sim: SmscSimulator,
  probe: Probe,
  messages: readonly Mo[],
  gateways: readonly GatewayProcess[],
  secrets: readonly string[],
  twice: ReadonlySet<string> = new Set(),
): Promise<void> {
  const reports = await probe.reports();
  expect(reports.length, 'count(reports) == messages acknowledged').toBe(messages.length);
  expect(await probe.count('SELECT count(*)::int AS n FROM inbound_receipts'), 'count(inbound_receipts) == messages acknowledged').toBe(messages.length);
  const byHash = new Map<string, typeof reports>();
  for (const r of reports) byHash.set(r.contactHash ?? '', [...(byHash.get(r.contactHash ?? '') ?? []), r]);

  const replies = repliesByNumber(sim);
  const notOneReport: string[] = [];
  const wrongReplies: string[] = [];
  for (const [i, m] of messages.entries()) {
    const own = byHash.get(probe.contactHash(m.from)) ?? [];
    if (own.length !== 1) {
      notOneReport.push(`message ${i}: ${own.length} reports`);
      continue;
    }
    const number = normalizeAddress(m.from);
    const got = replies.get(number) ?? [];
    const expected = twice.has(number) ? 2 : 1;
    if (got.length !== expected || got.some((r) => !r.text.includes(own[0]!.trackingId))) {
      wrongReplies.push(`message ${i}: ${got.length} replies (expected ${expected})${got.some((r) => !r.text.includes(own[0]!.trackingId)) ? ', one without its tracking ID' : ''}`);
    }
  }
  expect(notOneReport, 'messages without exactly one report').toEqual([]);
  expect(wrongReplies, 'citizens without exactly the expected replies').toEqual([]);
  const wrongRows = reports.filter(
    (r) => r.receipts !== 1 || r.receivedEvents !== 1 || r.inboundMessages !== 1 || r.outbound.length !== 1 || !REPLY_SENT.includes(r.outbound[0]!.status),
  );
  expect(wrongRows, 'reports without one receipt, one received event, one thread message and one reply row sent').toEqual([]);
  expect(sim.submits.filter((s) => s.status !== 0), 'submit_sm refused by the SMSC').toEqual([]);

  expect(await probe.deadLetters(), 'dead letters').toEqual([]);
  expect(await probe.unfinished(), 'jobs left waiting or active').toEqual({});
  expect(
    personalDataInLogs(
      gateways,
      messages.map((m) => m.from),
      secrets,
    ),
    'personal data in the logs',
  ).toEqual([]);
}

/**
 * Floods a gateway with `messages`. The first window is written while the process is stopped
 * (SIGSTOP), so it reads all of it at once, whatever the timing of the writes, and stores it as one
 * batch: the first job the crash point meets is a batch, not a lone message that happened to arrive
 * first.
 */
async function flood(gateway: GatewayProcess, sim: SmscSimulator, messages: readonly Mo[]): Promise<boolean[]> {
  gateway.child.kill('SIGSTOP');
  try {
    const delivered = deliver(sim, messages);
    await sleep(100);
    gateway.child.kill('SIGCONT');
    return await delivered;
  } finally {
    // Never leave it stopped (a failed test): SIGCONT to a process that is gone is a no-op.
    gateway.child.kill('SIGCONT');
  }
}

/**
 * Starts a gateway armed to die at `point`, floods it, waits for the SIGKILL, reads what was left,
 * restarts it unarmed on the same data, and lets the SMSC redeliver what it got no OK for. A kill
 * that cut no batch short (a job of one message got there first) did not test the batched path: it
 * is tried again on fresh data, at most three times.
 */
async function crashAndRecover(point: keyof typeof CUT) {
  for (let attempt = 1; ; attempt++) {
    const { sim, env, probe } = await setUp();
    const { tag, messages } = citizens(FLOOD);
    const first = await startGateway({ ...env, LAPOR_TEST_CRASH_AT: point });
    await sim.waitForBind(10_000);
    const acked = await flood(first, sim, messages);
    const exit = await within(first.exited, 20_000, `the gateway to kill itself at ${point}`);
    // The SMSC has read everything the dead process wrote once it sees the socket closed.
    await waitUnbound(sim);
    const kill = await readKill(sim, probe, messages, exit, acked);
    const cut = CUT[point](kill);
    console.info(
      `${point} (attempt ${attempt}): killed with ${kill.acked}/${FLOOD} acknowledged, ${kill.reports} reports, ${kill.queued.size} replies queued, ` +
        `${[...kill.replies.values()].reduce((a, b) => a + b, 0)} sent; inbound jobs ${kill.inbound.map((j) => `${j.name}(${j.dedupKeys.length}) ${j.state}`).join(', ')}; cut ${cut.join(', ') || 'no batch'}`,
    );
    if (!cut.length && attempt < 3) continue;

    const second = await startGateway(env);
    const restarted = Date.now();
    const rounds = await redeliverUnacked(sim, messages, acked);
    await settle(sim, probe, messages);
    console.info(`${point}: recovered ${Date.now() - restarted} ms after the restart (${rounds} redelivery rounds)`);
    return { sim, probe, messages, secrets: [`Kampung${tag}`, 'berlubang'], gateways: [first, second], kill, cut };
  }
}

describe('the batched path killed at a crash point, then restarted', () => {
  it('inbound-stored: a batch stored but not acknowledged is redelivered whole by the SMSC, and each message is one report', { timeout: 90_000 }, async () => {
    const { kill, cut, ...run } = await crashAndRecover('inbound-stored');
    expect(kill.exit, 'killed by its crash point').toEqual({ code: null, signal: 'SIGKILL' });
    // The first flush killed the process: a batch in Redis, nothing acknowledged, nothing filed.
    expect(cut.length, `a batch stored in Redis: ${jobsLeft(kill)}`).toBeGreaterThan(0);
    expect(kill.acked, 'deliver_sm acknowledged before the kill').toBe(0);
    expect(kill.reports).toBe(0);
    expect(kill.inbound.filter((j) => j.state !== 'waiting' && j.state !== 'active'), 'inbound jobs finished before the kill').toEqual([]);
    const stored = kill.inbound.reduce((n, j) => n + j.dedupKeys.length, 0);

    await expectExactlyOnce(run.sim, run.probe, run.messages, run.gateways, run.secrets);
    // Their dedup keys were never set, so the redelivered copies of the stored messages reached
    // PostgreSQL, which recognised each as a replay: the receipt decided, not the Redis window.
    const { replayed } = outcomes(await inboundJobs(run.probe));
    expect(replayed, 'stored messages whose redelivery PostgreSQL recognised').toBeGreaterThanOrEqual(stored);
  });

  it('intake-filed: reports committed but no reply asked for yet; after the restart one report and one reply each', { timeout: 90_000 }, async () => {
    const { kill, cut, ...run } = await crashAndRecover('intake-filed');
    expect(kill.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(cut.length, `an active batch filed in full, no notify job: ${jobsLeft(kill)}`).toBeGreaterThan(0);
    expect(kill.queued.size, 'replies written as queued rows with their reports').toBe(kill.reports);
    expect(kill.replies.size, 'no reply sent before the kill').toBe(0);

    await expectExactlyOnce(run.sim, run.probe, run.messages, run.gateways, run.secrets);
    await expectReplayed(run.probe, kill, cut);
  });

  it('intake-published: notify jobs added, the inbound job not completed; the retried job is a replay and nobody gets a second reply', { timeout: 90_000 }, async () => {
    const { kill, cut, ...run } = await crashAndRecover('intake-published');
    expect(kill.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(cut.length, `an active batch whose notify job is in Redis: ${jobsLeft(kill)}`).toBeGreaterThan(0);

    // A notify job that started before the kill could have had a reply out but not marked: that
    // one, and only that one, may be sent twice. (In practice there is none: the kill comes first.)
    const twice = new Set(sentUnmarked(kill).map((id) => kill.queued.get(id)!));
    await expectExactlyOnce(run.sim, run.probe, run.messages, run.gateways, run.secrets, twice);
    await expectReplayed(run.probe, kill, cut);
  });

  it('notify-sent: replies handed to the SMSC but not marked are sent again after the restart — only those', { timeout: 90_000 }, async () => {
    const { kill, cut, ...run } = await crashAndRecover('notify-sent');
    expect(kill.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(cut.length, `a notify batch cut between its sends and its marks: ${jobsLeft(kill)}`).toBeGreaterThan(0);
    // SMPP cannot tell us whether a submit_sm accepted before the kill was answered: the row is
    // still 'queued', so the retried notify job sends it again. Those citizens, and only those, get
    // the reply twice: the numbers whose reply went out before the kill but whose row was not marked.
    const unmarked = sentUnmarked(kill);
    // They all belong to notify jobs that were running when the process died.
    const running = new Set(kill.notify.filter((n) => n.state === 'active').flatMap((n) => n.ids));
    expect(unmarked.filter((id) => !running.has(id)), 'sent but unmarked rows outside the jobs active at the kill').toEqual([]);
    const twice = new Set(unmarked.map((id) => kill.queued.get(id)!));

    await expectExactlyOnce(run.sim, run.probe, run.messages, run.gateways, run.secrets, twice);
    console.info(`notify-sent: ${twice.size} replies sent twice, all of them of the notify job(s) killed between send and mark`);
  });
});

/** The inbound jobs a kill cut short ran again after the restart, and found every message of theirs filed. */
async function expectReplayed(probe: Probe, kill: AtKill, cut: readonly string[]): Promise<void> {
  const jobs = await inboundJobs(probe);
  for (const id of cut) {
    const again = jobs.find((j) => j.id === id);
    expect(again?.state, `job ${id} after the restart`).toBe('completed');
    const size = kill.inbound.find((j) => j.id === id)!.dedupKeys.length;
    expect(outcomes([again!]), `what job ${id} did after the restart`).toEqual({ filed: 0, replayed: size });
  }
}

describe('the SMSC redelivers a whole window the gateway acknowledged', () => {
  it('within the Redis window, and again once the dedup keys are gone: PostgreSQL decides, one report and one reply each', { timeout: 90_000 }, async () => {
    const { sim, env, probe } = await setUp();
    const { tag, messages } = citizens(FLOOD);
    const gateway = await startGateway(env);
    await sim.waitForBind(10_000);
    const first = await deliver(sim, messages);
    expect(first.filter((a) => !a).length, 'deliver_sm not acknowledged').toBe(0);
    const jobCount = async () => (await inboundJobs(probe)).length;
    const jobsAfterFlood = await jobCount();
    // The SMSC, unsure its window was acknowledged, delivers every message of it again.
    const redeliverAll = async () => {
      const again = await deliver(sim, messages);
      expect(again.filter((a) => !a).length, 'redelivered deliver_sm not acknowledged').toBe(0);
    };

    // 1. At once, within the Redis window: every message is known there, nothing new is even stored.
    await redeliverAll();
    expect(await jobCount(), 'inbound jobs added for a redelivery within the Redis window').toBe(jobsAfterFlood);
    // 2. At once again, the dedup keys gone (expired, lost with a Redis failover…) while the first
    //    copies are still being filed and answered: every copy is stored again, and only the
    //    receipts in PostgreSQL can tell — racing the batches of the first copies.
    expect(await probe.deleteDedupKeys(), 'dedup keys deleted').toBe(FLOOD);
    await redeliverAll();
    await settle(sim, probe, messages);
    // 3. Long after, on a new bind (the old one died), the keys gone again: the replies were sent
    //    and nothing is sent again.
    const submitsBefore = sim.submits.length;
    await dropAndRebind(sim);
    expect(await probe.deleteDedupKeys()).toBe(FLOOD);
    await redeliverAll();
    await settle(sim, probe, messages);
    expect(sim.submits.length, 'submit_sm for a redelivery of answered messages').toBe(submitsBefore);

    // PostgreSQL saw the copies of (2) and (3) as replays. (A copy stored alone is
    // a job whose id is its dedup key, which BullMQ does not add twice while a job of that id is
    // kept: such a copy never reaches PostgreSQL, which is harmless, its first copy being filed.)
    const jobs = await inboundJobs(probe);
    const { replayed } = outcomes(jobs);
    const alone = new Set(jobs.filter((j) => j.name === 'message').map((j) => j.id)).size;
    console.info(`redelivery: ${replayed} copies recognised by PostgreSQL, ${alone} messages stored alone at least once`);
    expect(replayed, 'redelivered copies PostgreSQL recognised').toBeGreaterThanOrEqual(2 * (FLOOD - alone));
    await expectExactlyOnce(sim, probe, messages, [gateway], [`Kampung${tag}`, 'berlubang']);
  });
});

describe('two gateway processes on one Redis and one PostgreSQL', () => {
  it('file every report acknowledged with a 201 by either exactly once, under distinct tracking IDs', { timeout: 90_000 }, async () => {
    const { sim, env, probe } = await setUp();
    // Both full gateways with the same SMSC account: the lease gives the bind to one, and both take
    // reports over HTTP and run every worker on the shared queues.
    const a = await startGateway(env);
    await sim.waitForBind(10_000);
    const b = await startGateway(env);
    const { tag, messages } = citizens(300);
    const posts = messages.map((m, i) => ({
      url: (i % 2 ? b : a).url,
      body: { text: m.text.replace(/^LAPOR /, ''), reporter: { name: `Warga ${tag}`, phone: m.from } },
    }));
    const answers: { status: number; trackingId?: string }[] = [];
    let next = 0;
    const lane = async () => {
      while (next < posts.length) {
        const post = posts[next++]!;
        const res = await fetch(`${post.url}/api/v1/reports`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(post.body),
          signal: AbortSignal.timeout(10_000),
        });
        const body = (await res.json()) as { trackingId?: string };
        answers.push({ status: res.status, trackingId: body.trackingId });
      }
    };
    await Promise.all(Array.from({ length: 60 }, lane));
    const acknowledged = answers.filter((r) => r.status === 201).map((r) => r.trackingId!);
    expect(answers.filter((r) => r.status !== 201), 'POSTs not answered 201').toEqual([]);
    expect(new Set(acknowledged).size, 'distinct tracking IDs').toBe(acknowledged.length);

    await eventually(
      async () => {
        const filed = await probe.count('SELECT count(*)::int AS n FROM reports WHERE tracking_id = ANY($1)', [acknowledged]);
        const unsent = await probe.count(`SELECT count(*)::int AS n FROM messages WHERE direction = 'out' AND status = 'queued'`);
        return filed === acknowledged.length && unsent === 0 && !Object.keys(await probe.unfinished()).length ? true : undefined;
      },
      40_000,
      'every acknowledged report filed and the queues drained',
    );
    await sleep(500);

    const reports = await probe.reports();
    expect(reports.length, 'count(reports) == 201s').toBe(acknowledged.length);
    expect(new Set(reports.map((r) => r.trackingId)), 'the reports are those acknowledged').toEqual(new Set(acknowledged));
    const wrong = reports.filter((r) => r.receipts !== 1 || r.receivedEvents !== 1 || r.inboundMessages !== 1 || r.outbound.length !== 1 || r.outbound[0]!.status !== 'stored');
    expect(wrong, 'reports without one receipt, one received event, one thread message and one notification stored').toEqual([]);
    const owners = new Set(reports.map((r) => r.contactHash));
    expect(messages.filter((m) => !owners.has(probe.contactHash(m.from))), 'reporters without their report').toEqual([]);
    // Both processes filed: the exactly-once above held across two intake workers.
    expect(inboundJobsHandled(a).length, 'inbound jobs handled by the first process').toBeGreaterThan(0);
    expect(inboundJobsHandled(b).length, 'inbound jobs handled by the second process').toBeGreaterThan(0);
    expect(sim.sessions, 'one bind for the two processes').toBe(1);
    expect(await probe.deadLetters(), 'dead letters').toEqual([]);
    expect(await probe.unfinished(), 'jobs left waiting or active').toEqual({});
    expect(personalDataInLogs([a, b], messages.map((m) => m.from), [`Kampung${tag}`, 'berlubang', `Warga ${tag}`]), 'personal data in the logs').toEqual([]);
    console.info(`two gateways: ${acknowledged.length} reports, inbound jobs handled ${inboundJobsHandled(a).length} + ${inboundJobsHandled(b).length}`);
  });
});

describe('two copies of one SMS either side of its dedup window boundary, filed at the same time', () => {
  /*
   * An SMS has no id: its externalId is a hash of its content plus the dedup window it arrived in
   * (adapters/sms/inbound.ts `toInboundMessage`), and a redelivery in the window before or after has
   * another externalId, which each copy names in `sameAs`. Two copies filed at the same moment must
   * still be one report: in one batch (workers/file-reports.ts takes the later as a copy of the
   * earlier), and in two jobs at once (fileGuarded locks every id a copy may have — the two share
   * one — and reads the receipts again under the locks). Exactly the crash above makes this likely:
   * a batch stored at `inbound-stored` a moment before the window ends has no Redis key; its
   * redelivery after the restart is in the next window and can be filed while the recovered
   * original is. Shown deterministically here, in-process, with the messages as the SMS adapter
   * hands them over (`acceptMessage`, `accept`). (Both tests failed before fileGuarded: two reports.)
   */
  let env: TestEnv | undefined;
  const reports = { oneFlush: 0, twoJobs: 0 };
  beforeAll(async () => {
    env = await createTestEnv({ workers: ['intake'] });
    const { queues, db, keys } = env.runtime;
    const windowMs = env.config.smpp.dedupMinutes * 60_000;
    const boundary = Math.floor(Date.now() / windowMs) * windowMs;
    const sms = citizens(2).messages;
    const copy = (m: Mo, at: number) =>
      toInboundMessage({
        account: 'sim',
        source: { ton: 1, npi: 1, addr: m.from.slice(1) },
        destination: { ton: 0, npi: 1, addr: '1708' },
        text: m.text,
        receivedAt: new Date(at),
        dedupWindowMs: windowMs,
      });
    const reportsOf = async (m: Mo) =>
      (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM reports WHERE contact_hash = $1', [contactHashOf(env!, m.from)])).rows[0]!.n;
    const drained = async () => Object.values(await queues.inbound.getJobCounts('waiting', 'active', 'delayed')).every((n) => n === 0);

    // A copy a second before the boundary and its redelivery a second after, in one flush.
    const [before, after] = [copy(sms[0]!, boundary - 1_000), copy(sms[0]!, boundary + 1_000)];
    expect(after.sameAs?.ids, 'the redelivery names the id of the first copy').toContain(before.externalId);
    const results = await Promise.all([before, after].map((m) => queues.enqueueInbound(m, windowMs, [previousDedupKey(m, windowMs)])));
    expect(results).toEqual([{ status: 'queued' }, { status: 'queued' }]);
    await eventually(async () => ((await drained()) && (await reportsOf(sms[0]!)) > 0 ? true : undefined), 10_000, 'the flush filed');
    reports.oneFlush = await reportsOf(sms[0]!);

    // The same, each copy in a job of its own, the two jobs handled at once — as by two intake workers
    // with warm connections (a cold pool would open the second connection only after the first job
    // is done, which serialises them here and not under load).
    await Promise.all(Array.from({ length: 4 }, () => db.query('SELECT pg_sleep(0.05)')));
    const process = createIntakeProcessor(env.runtime);
    const job = (m: InboundMessage) =>
      ({ id: `b_${m.externalId}`, name: 'batch', data: { messages: [{ channel: m.channel, dedupKey: m.dedupKey, sealed: keys.seal('queue', m) }] } }) as unknown as Job;
    const outcomes = await Promise.all([copy(sms[1]!, boundary - 1_000), copy(sms[1]!, boundary + 1_000)].map((m) => process(job(m))));
    expect(outcomes.join(' '), 'both jobs handled').toContain('new_report');
    reports.twoJobs = await reportsOf(sms[1]!);
  }, 30_000);
  afterAll(async () => {
    await env?.close();
  });

  it('arriving in one flush, they are one report', () => {
    expect(reports.oneFlush, 'reports for one SMS and its redelivery').toBe(1);
  });

  it('in two jobs handled at once, they are one report', () => {
    expect(reports.twoJobs, 'reports for one SMS and its redelivery').toBe(1);
  });
});
