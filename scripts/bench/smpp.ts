/**
 * bench:smpp — SMS 1708 over real SMPP on loopback: the SMSC simulator floods N mobile-originated
 * messages (mix single 8 : multipart 1 : UCS-2 1) at the gateway, beside the raw `smpp` library's
 * deliver_sm rate measured in the same run.
 *
 *   npm run bench:smpp -- [--n 5000] [--rate 1000] [--duration 5] [--window 50] [--timeout 180]
 *                        [--one-process] [--trace] [--vs-kannel] [--json] [--batch 1,8,32,64] [--profile DIR]
 *
 * Phases (everything on 127.0.0.1, every loop bounded by --timeout):
 *   1. raw: a plain `smpp` ESME bound to a fresh simulator acks every deliver_sm at once; then the
 *      same with a BullMQ `Queue.add()` (on the benchmark's Redis, appendfsync always) before each ack;
 *   1b. with --vs-kannel: Kannel (scripts/bench/kannel.ts, file store) on a simulator of its own, the
 *      same floods (N, then paced), timed the same way (Driver);
 *   2. intake: the gateway (SMS adapter only, NO workers) bound to a simulator; flood N → acked
 *      messages/s and ack latency (first deliver_sm sent → last deliver_sm_resp);
 *   3. whole path: notify worker started beside the adapter, the other stages (intake, and verify
 *      where workers/run.ts still has it) in a second process (`lapor worker intake …`;
 *      --one-process keeps them here); flood N → per message, first deliver_sm built/sent → first
 *      submit_sm the simulator receives for that sender; messages/s until every reply is submitted;
 *   4. paced: --rate for --duration through the whole path;
 *   5. with --batch: per value, a fresh gateway and worker process with LAPOR_QUEUE_BATCH_MAX set,
 *      300 untimed messages, then the whole path again; one row per value.
 * Phases 2 and 3 (and 5) also print what they cost per message (costs.ts: Redis commands and
 * fsyncs, PostgreSQL statements, commits and WAL syncs, CPU per process); --profile writes CPU
 * profiles of them (profile.ts). Reports in PostgreSQL and replies are counted at the end.
 * Redis (AOF, appendfsync always) and PostgreSQL (durable defaults) run from a temp dir under /tmp,
 * removed on exit, error, Ctrl-C or the hard timeout.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Logger } from 'pino';
import smpp, { type PDU, type Session } from 'smpp';
import { loadConfig } from '../../config/load.ts';
import { DEADLINES_QUEUE } from '../../src/queue/names.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { WORKER_NAMES, startWorkers, type RunningWorkers } from '../../workers/run.ts';
import { SmscSimulator, type FloodResult, type SubmitRecord } from '../smsc/simulator.ts';
import { costSections, CostMeter, measureCost, type BatchRow, type PhaseCost } from './costs.ts';
import { ensureKannel, startKannel } from './kannel.ts';
import {
  analyzeTables, batchListOption, batchSetting, beginBench, benchEnv, deadLetters, describeRedis, numberOption, queueDepths, queuesIdle, startBenchServices,
  startWorkerProcess, Teardown, TimeoutError, type BenchServices, type WorkerProcess,
} from './harness.ts';
import { fmtInt, fmtMs, fmtRate, summarize, table, targetsTable, until, type Summary, type TargetRow } from './lib.ts';
import { Profiler } from './profile.ts';

interface Options {
  n: number;
  rate: number;
  durationS: number;
  window: number;
  timeoutS: number;
  json: boolean;
  vsKannel: boolean;
  /** Every worker stage in the same process as the SMS adapter, as `lapor start` runs them. */
  oneProcess: boolean;
  /** Print the queues' depths every second during the whole-path run. */
  trace: boolean;
  /** LAPOR_QUEUE_BATCH_MAX values to repeat the whole path with. */
  batch: number[];
  /** Where to write CPU profiles of the measured phases. */
  profileDir: string | undefined;
}

const USAGE = `usage: npm run bench:smpp -- [options]
  --n N          messages per saturation flood (5000)
  --rate R       offered rate of the paced run, messages/s (1000)
  --duration S   length of the paced run, seconds (5)
  --window W     deliver_sm outstanding at most, in every flood (50)
  --timeout S    hard limit for the whole run (180)
  --one-process  run every worker stage in the adapter's process (default: notify beside the
                 adapter, the other stages in a second process, \`lapor worker intake …\`, as a
                 deployment runs them)
  --trace        print the queues' depths every second of the whole-path run
  --json         also print one line: BENCH_JSON {...}
  --vs-kannel    also run the same floods through Kannel (Debian's kannel, installed with apt-get
                 when missing and root) on a simulator of its own, print our rates over Kannel's
                 and the issue's targets, MET or NOT MET
  --batch LIST   repeat the whole path once per LAPOR_QUEUE_BATCH_MAX value (e.g. 1,8,32,64), each
                 with a fresh gateway and worker process, and print one row per value: rate,
                 p50/p99, Redis commands, PostgreSQL statements, commits, fsyncs, CPU per message
  --profile DIR  write V8 CPU profiles (.cpuprofile) of the gateway and of the worker process
                 around each measured phase into DIR, and print their top 15 functions by self time`;


function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      window: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      'one-process': { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      'vs-kannel': { type: 'boolean', default: false },
      batch: { type: 'string' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = numberOption;
  return {
    n: num('n', values.n, 5_000, 1, 1_000_000),
    rate: num('rate', values.rate, 1_000, 1, 100_000, false),
    durationS: num('duration', values.duration, 5, 0.1, 600, false),
    window: num('window', values.window, 50, 1, 1_000),
    timeoutS: num('timeout', values.timeout, 180, 5, 3_600, false),
    json: values.json,
    vsKannel: values['vs-kannel'],
    oneProcess: values['one-process'],
    trace: values.trace,
    batch: batchListOption(values.batch),
    profileDir: values.profile,
  };
}

const MIX = { single: 8, multipart: 1, ucs2: 1 };

// ── raw baseline: a plain smpp ESME ────────────────────────────────────────────────────────────

interface RawDigest {
  messages: number;
  pdus: number;
  acked: number;
  messagesPerSecond: number;
  pdusPerSecond: number;
  ack?: Summary;
}

function digestFlood(r: FloodResult): RawDigest {
  const s = r.elapsedMs / 1000;
  return { messages: r.sent, pdus: r.pdus, acked: r.acked, messagesPerSecond: r.acked / s, pdusPerSecond: r.pdus / s, ack: summarize(r.ackLatencyMs) };
}

async function rawEsme(options: Options, deadline: number, onDeliver?: (pdu: PDU) => Promise<unknown>): Promise<FloodResult> {
  const sim = await SmscSimulator.start({ systemId: 'raw', password: 'raw' });
  let session: Session | undefined;
  try {
    session = smpp.connect({ host: '127.0.0.1', port: sim.port, auto_enquire_link_period: 0 });
    const s = session;
    s.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      (s.bind_transceiver as (fields: Record<string, unknown>, cb: (pdu: PDU) => void) => void)({ system_id: 'raw', password: 'raw' }, (pdu) =>
        pdu.command_status === 0 ? resolve() : reject(new Error(`raw bind refused: ${pdu.command_status}`)),
      );
    });
    s.on('pdu', (pdu: PDU) => {
      if (pdu.command !== 'deliver_sm') return;
      if (!onDeliver) s.send(pdu.response());
      else void onDeliver(pdu).then(() => s.send(pdu.response()), () => s.send(pdu.response({ command_status: 0x08 })));
    });
    await sim.waitForBind(5_000);
    const timeoutMs = Math.max(1_000, deadline - Date.now());
    // Warm-up (JIT), untimed.
    await sim.flood({ count: Math.min(500, options.n), window: options.window, mix: MIX, timeoutMs });
    return await sim.flood({ count: options.n, window: options.window, mix: MIX, timeoutMs: Math.max(1_000, deadline - Date.now()) });
  } finally {
    await new Promise<void>((resolve) => (session ? session.close(() => resolve()) : resolve())).catch(() => undefined);
    session?.destroy();
    await sim.close();
  }
}

// ── the load, the same for our gateway and for Kannel ─────────────────────────────────────────────

interface Flooded {
  result: FloodResult;
  senders: string[];
  sentAt: number[];
  start: number;
}

/**
 * Floods a simulator with numbered senders and times, per message, its first deliver_sm against the
 * first submit_sm the simulator receives for that sender — whoever sits behind the bind.
 */
class Driver {
  /** First accepted submit_sm per destination, with its time. */
  readonly firstSubmit = new Map<string, number>();
  private numberBase = 1_000_000;

  constructor(
    private readonly sim: SmscSimulator,
    private readonly window: number,
    private readonly deadline: number,
  ) {
    sim.on('submit', (s: SubmitRecord) => {
      if (s.status === 0 && !this.firstSubmit.has(s.to)) this.firstSubmit.set(s.to, performance.now());
    });
  }

  async flood(count: number, ratePerSec?: number): Promise<Flooded> {
    const base = this.numberBase;
    this.numberBase += count + 10;
    const senders: string[] = [];
    const sentAt: number[] = [];
    const start = performance.now();
    const result = await this.sim.flood({
      count,
      window: this.window,
      mix: MIX,
      ...(ratePerSec ? { ratePerSec } : {}),
      from: (i) => {
        const number = `+62813${String(base + i).padStart(7, '0')}`;
        senders[i] = number;
        sentAt[i] = performance.now();
        return number;
      },
      timeoutMs: Math.max(1_000, this.deadline - Date.now()),
    });
    return { result, senders, sentAt, start };
  }

  async digest(f: Flooded, planned: number, waitReplies: boolean): Promise<PathDigest> {
    const { result, senders, sentAt, start } = f;
    let timedOut = result.sent < planned;
    if (waitReplies) {
      // Replies come roughly in order: a cursor over the senders checks each one about once (an
      // every() per poll would cost the benchmark's own process O(N) every 5 ms).
      let replied = 0;
      const allReplied = () => {
        while (replied < senders.length && this.firstSubmit.has(senders[replied]!)) replied++;
        return replied === senders.length;
      };
      const ok = await until(allReplied, this.deadline, 5);
      if (!ok) timedOut = true;
    }
    const latencies: number[] = [];
    let last = 0;
    for (let i = 0; i < senders.length; i++) {
      const at = this.firstSubmit.get(senders[i]!);
      if (at === undefined) continue;
      latencies.push(at - sentAt[i]!);
      last = Math.max(last, at);
    }
    const lastSend = sentAt.length ? sentAt[sentAt.length - 1]! : start;
    return {
      planned,
      sent: result.sent,
      acked: result.acked,
      nacked: result.nacked,
      replied: latencies.length,
      ackPerSecond: result.acked / (result.elapsedMs / 1000),
      repliedPerSecond: last > start ? latencies.length / ((last - start) / 1000) : Number.NaN,
      sentPerSecond: sentAt.length > 1 ? (sentAt.length - 1) / ((lastSend - sentAt[0]!) / 1000) : Number.NaN,
      ack: summarize(result.ackLatencyMs),
      reply: summarize(latencies),
      timedOut,
    };
  }
}

/**
 * The same floods through Kannel (bearerbox bound to a simulator of its own, smsbox answering
 * every message through an HTTP sink), with its file store on as our path is durable. Kannel has
 * no "intake only" mode: its deliver_sm acks are counted with the replies running.
 */
async function runKannel(options: Options, teardown: Teardown, deadline: number, say: (line: string) => void): Promise<{ whole: PathDigest; paced: PathDigest }> {
  await ensureKannel(say);
  const sim = await SmscSimulator.start({ systemId: 'kannel', password: 'pw' });
  teardown.defer('kannel simulator', () => sim.close());
  const kannel = await startKannel({ smscPort: sim.port, store: 'file', teardown });
  try {
    await sim.waitForBind(20_000);
    const drive = new Driver(sim, options.window, deadline);
    say('kannel: warm-up 300, untimed…');
    await drive.digest(await drive.flood(300), 300, true);
    say(`kannel: ${fmtInt(options.n)} messages…`);
    const whole = await drive.digest(await drive.flood(options.n), options.n, true);
    say(`kannel: ${fmtRate(whole.ackPerSecond, ' msgs/s')} acked, ${fmtRate(whole.repliedPerSecond, ' msgs/s')} replied`);
    if (whole.timedOut) throw new TimeoutError('Kannel run');
    const pacedN = Math.round(options.rate * options.durationS);
    say(`kannel paced: ${fmtInt(options.rate)}/s for ${options.durationS} s…`);
    const paced = await drive.digest(await drive.flood(pacedN, options.rate), pacedN, true);
    if (paced.timedOut) throw new TimeoutError('Kannel paced run');
    return { whole, paced };
  } finally {
    await kannel.stop();
  }
}

// ── the gateway ───────────────────────────────────────────────────────────────────────────────

interface PathDigest {
  planned: number;
  sent: number;
  acked: number;
  nacked: number;
  replied: number;
  ackPerSecond: number;
  /** Messages per second from the first send until the last reply was submitted. */
  repliedPerSecond: number;
  /** Achieved offered rate (paced). */
  sentPerSecond: number;
  ack?: Summary;
  reply?: Summary;
  timedOut: boolean;
}

/** Where the backlog is: waiting and active jobs per queue, once a second (plain commands: see queueDepths). */
function traceQueues(redis: Redis, queues: readonly Queue[], say: (line: string) => void): NodeJS.Timeout {
  return setInterval(() => {
    void queueDepths(redis, queues).then((depths) => {
      const parts = [...depths].filter(([, d]) => d.waiting + d.active + d.delayed > 0).map(([name, d]) => `${name} w${d.waiting} a${d.active} d${d.delayed}`);
      say(`queues: ${parts.join(' · ') || 'empty'}`);
    }, () => undefined);
  }, 1_000);
}

// ── the gateway ─────────────────────────────────────────────────────────────────────────────────

/** What every gateway of a run shares: the services, the simulator, the settings. */
interface GatewayContext {
  options: Options;
  services: BenchServices;
  sim: SmscSimulator;
  meter: CostMeter;
  log: Logger;
  teardown: Teardown;
  deadline: number;
  /** LAPOR_ settings of every gateway (and its worker process) before the batch setting. */
  env: Record<string, string>;
}

/**
 * The SMS gateway as `lapor adapter sms` + workers run it: its adapter bound to the simulator here,
 * workers started on demand. One per run, and one more per --batch value (LAPOR_QUEUE_BATCH_MAX is
 * read at start-up, so each value needs a fresh gateway and worker process).
 */
class SmsGateway {
  private workers: RunningWorkers | undefined;
  worker: WorkerProcess | undefined;
  /** Queues with a consumer once startWorkers() ran (the deadline sweep's is left out: never empty). */
  consumed: Queue[] = [];
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly ctx: GatewayContext,
    readonly runtime: Runtime,
    private readonly env: Record<string, string>,
    /** Whether LAPOR_QUEUE_BATCH_MAX was set (this build knows it). */
    readonly batchApplied: boolean,
  ) {}

  static async open(ctx: GatewayContext, batchMax?: number): Promise<SmsGateway> {
    const batch = batchSetting(batchMax);
    const env = { ...ctx.env, ...batch.env };
    const runtime = await openRuntime(loadConfig(env), ctx.log, { channels: ['sms'] });
    const gateway = new SmsGateway(ctx, runtime, env, batch.applied);
    ctx.teardown.defer('gateway', () => gateway.close());
    for (const adapter of runtime.adapters.values()) await adapter.start?.();
    await ctx.sim.waitForBind(10_000);
    return gateway;
  }

  /**
   * The notify worker sends through the bind, so it runs where the adapter runs; the other stages
   * run in a second process unless --one-process (then every stage runs here).
   */
  async startWorkers(): Promise<void> {
    const { options, teardown, deadline } = this.ctx;
    const here = options.oneProcess ? WORKER_NAMES : (['notify'] as const);
    this.workers = await startWorkers(this.runtime, here, this.runtime.connectWorker);
    const consumed = this.workers.workers.map((w) => w.name);
    if (!options.oneProcess) {
      const stages = WORKER_NAMES.filter((s) => s !== 'notify' && s !== 'deadline');
      this.worker = await startWorkerProcess({
        stages, env: this.env, queues: this.runtime.queues.all(), teardown, deadline,
        ...(options.profileDir ? { profileDir: options.profileDir } : {}),
      });
      consumed.push(...this.worker.queues.map((q) => q.name));
    }
    this.consumed = this.runtime.queues.all().filter((q) => consumed.includes(q.name) && q.name !== DEADLINES_QUEUE);
  }

  /** Every job the run caused is done, checked with the cost meter's connection (its commands are not counted). */
  async drain(): Promise<boolean> {
    return until(() => queuesIdle(this.ctx.meter.redis, this.consumed), this.ctx.deadline, 50);
  }

  /** Stops the workers, the worker process, the adapter (unbind) and the runtime; safe to call twice. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await this.workers?.close();
      await this.worker?.close();
      for (const adapter of this.runtime.adapters.values()) await adapter.stop?.();
      await this.runtime.close();
      await until(() => this.ctx.sim.sessions === 0, Date.now() + 10_000, 20);
    })());
  }
}

type BenchReport = Record<string, unknown> & {
  raw?: RawDigest;
  rawBull?: RawDigest;
  intake?: PathDigest;
  whole?: PathDigest;
  paced?: PathDigest;
  kannel?: { whole: PathDigest; paced: PathDigest };
  costs?: { label: string; cost: PhaseCost }[];
  batches?: BatchRow[];
  profiles?: { title: string; file: string }[];
  gatewayTps?: string;
};

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { startedAt, deadline, log, say, teardown } = beginBench(options.timeoutS);

  const report: BenchReport = { options, cores: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', loadavg: loadavg(), costs: [], batches: [], profiles: [] };
  let exitCode = 0;
  try {
    const services = await startBenchServices(teardown, log, { name: 'smpp', measureCosts: true });
    const { dir, redis, postgres } = services;
    report.dataDir = dir;
    report.filesystem = services.filesystem;
    report.redis = await describeRedis(redis.url);
    say(`data in ${dir} (${String(report.filesystem)}); redis ${JSON.stringify(report.redis)}`);

    // 1. raw
    say(`raw smpp ESME: ${fmtInt(options.n)} messages, window ${options.window}…`);
    report.raw = digestFlood(await rawEsme(options, deadline));
    say(`raw: ${fmtRate(report.raw.messagesPerSecond, ' msgs/s')} (${fmtRate(report.raw.pdusPerSecond, ' PDUs/s')})`);
    if (Date.now() >= deadline) throw new TimeoutError('raw baseline');
    {
      const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
      const queue = new Queue('raw-smpp', { connection: conn, prefix: '{bench-raw}' });
      try {
        await queue.waitUntilReady();
        say('raw smpp ESME + BullMQ add before each ack…');
        const r = await rawEsme(options, deadline, (pdu) =>
          queue.add('mo', { from: pdu.source_addr, to: pdu.destination_addr, esm: pdu.esm_class, dc: pdu.data_coding, sm: String(pdu.short_message ?? '') }, { removeOnComplete: true }),
        );
        report.rawBull = digestFlood(r);
        say(`raw + add: ${fmtRate(report.rawBull.messagesPerSecond, ' msgs/s')}`);
      } finally {
        await queue.obliterate({ force: true }).catch(() => undefined);
        await queue.close().catch(() => undefined);
        conn.disconnect();
      }
    }
    if (Date.now() >= deadline) throw new TimeoutError('raw + BullMQ baseline');
    if (options.vsKannel) report.kannel = await runKannel(options, teardown, deadline, say);

    // 2. the gateway, SMS adapter only
    const sim = await SmscSimulator.start({ systemId: 'lapor', password: 'secret', receiptDelayMs: 5 });
    teardown.defer('simulator', () => sim.close());
    // tps: each bind throttles its submit_sm to 50/s by default (adapters/sms/config.ts), which would
    // cap the whole path at 50/s; Kannel has no throttle by default. Both run unthrottled.
    const smscUrl = `smpp://lapor:secret@127.0.0.1:${sim.port}?id=sim&tps=100000&window=${Math.max(options.window, 50)}`;
    report.gatewayTps = new URL(smscUrl).searchParams.get('tps') ?? '50 (default)';
    const ownVars = {
      ...benchEnv({ dir, postgres, redis }, 'bench'),
      LAPOR_HOST: '127.0.0.1',
      LAPOR_PORT: '0',
      LAPOR_REDIS_FSYNC: 'always',
      LAPOR_SMPP_URLS: smscUrl,
      LAPOR_SMPP_SIMULATOR: 'off',
      LAPOR_SMPP_RATE_LIMIT_PER_HOUR: '10000000',
      LAPOR_SMPP_LEASE_MS: '2000',
      LAPOR_SMPP_RECONNECT_MIN_MS: '50',
      LAPOR_SMPP_RECONNECT_MAX_MS: '200',
    };
    const passed = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('LAPOR_') && !(k in ownVars) && v !== undefined)) as Record<string, string>;
    let gateway: SmsGateway | undefined;
    const meter = await CostMeter.open({
      redis: { url: redis.url, pid: redis.pid },
      postgres: { url: services.benchUrl!, pid: postgres.pid },
      cpu: {
        gateway: () => ({ pid: process.pid }),
        worker: () => (gateway?.worker ? { pid: gateway.worker.pid } : undefined),
        redis: () => ({ pid: redis.pid, children: true }),
        postgres: () => ({ pid: postgres.pid, children: true }),
      },
      teardown,
      say,
    });
    const profiler = options.profileDir ? new Profiler(options.profileDir) : undefined;
    const measure = {
      around: <T>(phase: string, gw: SmsGateway, messages: (value: T) => number, work: () => Promise<T>) =>
        measureCost(meter, profiler, phase, gw.worker ? { pid: gw.worker.pid } : undefined, messages, work),
    };
    const noteProfiles = (label: string, p?: { gateway: string; worker?: string }) => {
      if (!p) return;
      report.profiles!.push({ title: `gateway process (adapter, ${options.oneProcess ? 'every worker' : 'notify'}, simulator), ${label}`, file: p.gateway });
      if (p.worker) report.profiles!.push({ title: `worker process, ${label}`, file: p.worker });
    };
    const ctx: GatewayContext = { options, services, sim, meter, log, teardown, deadline, env: { ...passed, ...ownVars } };
    gateway = await SmsGateway.open(ctx);

    const drive = new Driver(sim, options.window, deadline);
    const { firstSubmit } = drive;
    let expected = 0;
    const flood = (count: number, ratePerSec?: number) => ((expected += count), drive.flood(count, ratePerSec));
    const digestPath = (f: Flooded, planned: number, waitReplies: boolean) => drive.digest(f, planned, waitReplies);
    // N messages through the whole path, measured; the window ends once the pipeline is idle again,
    // so the notify jobs' last writes count too.
    const wholePath = (gw: SmsGateway, phase: string) =>
      measure.around(phase, gw, (d: PathDigest) => d.replied, async () => {
        const d = await digestPath(await flood(options.n), options.n, true);
        if (!d.timedOut && !(await gw.drain())) d.timedOut = true;
        return d;
      });

    say('gateway, intake only (no workers): warm-up 300, untimed…');
    await flood(300);
    say(`intake: ${fmtInt(options.n)} messages, window ${options.window}…`);
    const intake = await measure.around('intake', gateway, (d: PathDigest) => d.acked, async () => digestPath(await flood(options.n), options.n, false));
    report.intake = intake.value;
    report.costs!.push({ label: 'intake only', cost: intake.cost });
    noteProfiles('intake only', intake.profiles);
    say(`intake: ${fmtRate(report.intake.ackPerSecond, ' msgs/s')} acked (${report.intake.acked}/${report.intake.planned}, ${report.intake.nacked} nacked)`);
    if (report.intake.timedOut) throw new TimeoutError('intake run');

    // 3. whole path
    await gateway.startWorkers();
    say(`workers ${options.oneProcess ? 'in this process' : `${gateway.worker!.stages.join(', ')} in a second process; notify here`} started; draining the intake run's backlog…`);
    if (!(await gateway.drain())) throw new TimeoutError('drain after intake');
    await analyzeTables(services.benchUrl!);
    await until(() => sim.submits.length > 0 && performance.now() - (sim.submits[sim.submits.length - 1]?.receivedAt ?? 0) > 300, Math.min(deadline, Date.now() + 5_000), 50);

    say(`whole path: ${fmtInt(options.n)} messages…`);
    const trace = options.trace ? traceQueues(meter.redis, gateway.consumed, say) : undefined;
    const whole = await wholePath(gateway, 'whole');
    clearInterval(trace);
    report.whole = whole.value;
    report.costs!.push({ label: 'whole path', cost: whole.cost });
    noteProfiles('whole path', whole.profiles);
    say(`whole path: ${fmtRate(report.whole.repliedPerSecond, ' msgs/s')} replied (${report.whole.replied}/${report.whole.planned})`);
    if (report.whole.timedOut) throw new TimeoutError('whole-path run');

    // 4. paced
    const pacedN = Math.round(options.rate * options.durationS);
    say(`paced: ${fmtInt(options.rate)}/s for ${options.durationS} s (${fmtInt(pacedN)} messages)…`);
    report.paced = await digestPath(await flood(pacedN, options.rate), pacedN, true);
    if (report.paced.timedOut) throw new TimeoutError('paced run');
    await gateway.drain();

    // 5. the whole path once per --batch value, each on a gateway of its own
    for (const batchMax of options.batch) {
      await gateway.close();
      gateway = await SmsGateway.open(ctx, batchMax);
      await gateway.startWorkers();
      say(`batch ${batchMax}${gateway.batchApplied ? '' : ' (not applied: this build has no LAPOR_QUEUE_BATCH_MAX)'}: warm-up 300 through the whole path, untimed…`);
      const warm = await digestPath(await flood(300), 300, true);
      if (warm.timedOut || !(await gateway.drain())) throw new TimeoutError(`batch ${batchMax} warm-up`);
      say(`batch ${batchMax}: whole path, ${fmtInt(options.n)} messages…`);
      const run = await wholePath(gateway, `whole-batch${batchMax}`);
      report.batches!.push({ batch: batchMax, applied: gateway.batchApplied, rate: run.value.repliedPerSecond, p50: run.value.reply?.p50, p99: run.value.reply?.p99, cost: run.cost });
      noteProfiles(`whole path, batch ${batchMax}`, run.profiles);
      say(`batch ${batchMax}: ${fmtRate(run.value.repliedPerSecond, ' msgs/s')} replied`);
      if (run.value.timedOut) throw new TimeoutError(`whole path with batch ${batchMax}`);
    }

    const check = new pg.Client({ connectionString: postgres.url });
    await check.connect();
    try {
      const { rows } = await check.query<{ n: string }>('SELECT count(*)::text AS n FROM reports');
      report.rowsInPostgres = Number(rows[0]!.n);
    } finally {
      await check.end();
    }
    report.expectedReports = expected;
    report.replies = sim.replies().filter((r) => r.complete).length;
    report.repliedNumbers = firstSubmit.size;
    report.deadLetters = await deadLetters(meter.redis, gateway.runtime.queues.all());
    if (report.rowsInPostgres !== expected || firstSubmit.size !== expected) {
      console.error(`mismatch: ${expected} messages sent, ${String(report.rowsInPostgres)} reports in PostgreSQL, ${firstSubmit.size} numbers replied to`);
      exitCode = 1;
    }
  } catch (err) {
    exitCode = 1;
    if (teardown.interrupted) console.error('interrupted; printing what was reached');
    else if (err instanceof TimeoutError) console.error(`hard timeout (${options.timeoutS} s) reached during the ${err.message}; printing what was reached`);
    else console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    report.elapsedS = (Date.now() - startedAt) / 1000;
    print(report, options);
    await teardown.run();
  }
  return exitCode;
}

function print(report: BenchReport, options: Options): void {
  const out: string[] = [];
  const redis = report.redis as { appendonly: string; appendfsync: string } | undefined;
  out.push('');
  out.push(`bench:smpp — ${String(report.cores)} cores (${String(report.cpuModel)}), Node ${process.version}, load average at start ${(report.loadavg as number[]).map((l) => l.toFixed(2)).join(' ')}`);
  if (redis) out.push(`Redis appendonly ${redis.appendonly}, appendfsync ${redis.appendfsync}; PostgreSQL durable defaults; data on ${String(report.filesystem)}`);
  const childStages = WORKER_NAMES.filter((st) => st !== 'notify' && st !== 'deadline').join(', ');
  out.push(`whole path: ${options.oneProcess ? 'every worker stage in the adapter\'s process' : `${childStages} in a second process (lapor worker), notify beside the adapter`}; SMSC bind tps=${report.gatewayTps ?? '?'}`);
  out.push(`N = ${fmtInt(options.n)} per flood, mix single ${MIX.single} : multipart ${MIX.multipart} : ucs2 ${MIX.ucs2}, window ${options.window}; paced ${fmtInt(options.rate)}/s × ${options.durationS} s`);
  out.push('');
  const lat = (s: Summary | undefined) => [fmtMs(s?.p50), fmtMs(s?.p99), fmtMs(s?.max)];
  const rows: string[][] = [];
  if (report.raw) rows.push([`raw smpp ESME, ack at once (${fmtInt(report.raw.acked)} msgs, ${fmtInt(report.raw.pdus)} PDUs)`, fmtRate(report.raw.messagesPerSecond), fmtRate(report.raw.pdusPerSecond), ...lat(report.raw.ack)]);
  if (report.rawBull) rows.push([`raw smpp + BullMQ add before ack (${fmtInt(report.rawBull.acked)})`, fmtRate(report.rawBull.messagesPerSecond), fmtRate(report.rawBull.pdusPerSecond), ...lat(report.rawBull.ack)]);
  const i = report.intake;
  if (i) rows.push([`ours, intake (ack after store, no workers) ${fmtInt(i.acked)}/${fmtInt(i.planned)}`, fmtRate(i.ackPerSecond), '', ...lat(i.ack)]);
  const w = report.whole;
  if (w) {
    rows.push([`ours, whole path: deliver_sm acked ${fmtInt(w.acked)}/${fmtInt(w.planned)}`, fmtRate(w.ackPerSecond), '', ...lat(w.ack)]);
    rows.push([`ours, whole path: deliver_sm → reply submit_sm ${fmtInt(w.replied)}`, fmtRate(w.repliedPerSecond), '', ...lat(w.reply)]);
  }
  const p = report.paced;
  if (p) {
    rows.push([`paced ${fmtInt(options.rate)}/s: acked ${fmtInt(p.acked)}/${fmtInt(p.planned)}`, fmtRate(p.ackPerSecond), '', ...lat(p.ack)]);
    rows.push([`paced ${fmtInt(options.rate)}/s: deliver_sm → reply ${fmtInt(p.replied)}`, fmtRate(p.repliedPerSecond), '', ...lat(p.reply)]);
  }
  out.push(table(['', 'msgs/s', 'PDUs/s', 'p50', 'p99', 'max'], rows));
  out.push('');
  if (report.raw && i) out.push(`ratio intake / raw smpp = ${(i.ackPerSecond / report.raw.messagesPerSecond).toFixed(3)}${report.rawBull ? `; intake / (raw + BullMQ add) = ${(i.ackPerSecond / report.rawBull.messagesPerSecond).toFixed(3)}` : ''}`);
  if (report.raw && w) out.push(`ratio whole path / raw smpp = ${(w.repliedPerSecond / report.raw.messagesPerSecond).toFixed(3)}`);
  if (p) {
    const kept = pacedKept(p, options.rate);
    const p99 = p.reply?.p99 ?? Infinity;
    out.push(`paced: offered ${fmtRate(p.sentPerSecond)} (${fmtInt(p.sent)}/${fmtInt(p.planned)} sent), replied ${fmtRate(p.repliedPerSecond)} → rate ${kept ? 'kept' : 'NOT kept'}`);
    const verdict = options.rate !== 1000 ? 'not judged: the goal is at 1,000/s' : p99 < 250 && kept ? 'met' : 'NOT met';
    out.push(`paced: p99 deliver_sm → reply ${fmtMs(p99)} (goal < 250 ms at 1,000/s: ${verdict})`);
  }
  const k = report.kannel;
  if (k) {
    out.push('');
    out.push(table(['Kannel 1.4.5, file store, same floods on a simulator of its own', 'msgs/s', 'p50', 'p99', 'max'], [
      [`deliver_sm acked (replies running) ${fmtInt(k.whole.acked)}/${fmtInt(k.whole.planned)}`, fmtRate(k.whole.ackPerSecond), ...lat(k.whole.ack)],
      [`deliver_sm → reply submit_sm ${fmtInt(k.whole.replied)}`, fmtRate(k.whole.repliedPerSecond), ...lat(k.whole.reply)],
      [`paced ${fmtInt(options.rate)}/s: deliver_sm → reply ${fmtInt(k.paced.replied)}`, fmtRate(k.paced.repliedPerSecond), ...lat(k.paced.reply)],
    ]));
    if (i) out.push(`vs Kannel, measured in this run: intake ${(i.ackPerSecond / k.whole.ackPerSecond).toFixed(2)}× Kannel's acks (goal ≥ 3×)${w ? `, whole path ${(w.repliedPerSecond / k.whole.repliedPerSecond).toFixed(2)}× Kannel's replies (goal ≥ 1.5×)` : ''}`);
    out.push("(Kannel acks from an unbounded in-memory queue ahead of its replies, so with a small N its ack rate is a burst; compare the reply rates, or use --n 20000)");
  } else {
    out.push('Kannel (not run; --vs-kannel runs it; /work/shared/anchors/performance.md §4b, same simulator, W=10): intake ~1,390 msgs/s, full path ~1,390 msgs/s, p99 at 1,000/s ~99 ms');
    if (i) out.push(`vs Kannel anchor: intake ${(i.ackPerSecond / 1390).toFixed(2)}× (goal ≥ 3×)${w ? `, whole path ${(w.repliedPerSecond / 1390).toFixed(2)}× (goal ≥ 1.5×)` : ''} — anchor figures, not measured in this run`);
  }
  printCosts(out, report, options);
  if (options.vsKannel) printTargets(out, report, options);
  if (report.rowsInPostgres !== undefined) out.push(`check: ${fmtInt(report.rowsInPostgres as number)} reports in PostgreSQL of ${fmtInt(report.expectedReports as number)} sent; ${fmtInt(report.repliedNumbers as number)} numbers replied to (${fmtInt(report.replies as number)} complete replies); ${String(report.deadLetters)} dead letters`);
  out.push('latency "deliver_sm → reply" = the flood builds the message\'s first deliver_sm (window wait included) → the simulator receives the first submit_sm to that number');
  out.push(`elapsed ${(report.elapsedS as number | undefined)?.toFixed(1) ?? '?'} s`);
  console.log(out.join('\n'));
  if (options.json) {
    const slim = JSON.parse(JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))) as unknown;
    console.log(`BENCH_JSON ${JSON.stringify(slim)}`);
  }
}

/** The paced run offered the rate it was asked for, and the replies kept up with it. */
function pacedKept(p: PathDigest, rate: number): boolean {
  return p.sent === p.planned && p.sentPerSecond >= 0.97 * rate && p.repliedPerSecond >= 0.97 * rate;
}

function printCosts(out: string[], report: BenchReport, options: Options): void {
  const cpuLabels = {
    gateway: `bench process (adapter, ${options.oneProcess ? 'every worker' : 'notify'}, simulator)`,
    worker: 'worker process',
    redis: 'redis-server',
    postgres: 'postgres, all processes',
  };
  costSections(out, report, {
    costTitle: 'Cost per message (costs.ts: counted, not estimated; n/a says why); the whole-path window ends when the queues are idle again',
    cpuLabels,
    batchTitle: 'Whole path per LAPOR_QUEUE_BATCH_MAX (each on a fresh gateway and worker process, after 300 untimed messages)',
    rateLabel: 'replies/s',
    latencyLabel: 'deliver_sm → reply',
    fmtMs,
  });
}

/** The issue's targets, measured side by side with Kannel in this run. */
function printTargets(out: string[], report: BenchReport, options: Options): void {
  const k = report.kannel;
  const { intake: i, whole: w, paced: p } = report;
  if (!k) return;
  const ratio = (ours: number, theirs: number) => ours / theirs;
  const rows: TargetRow[] = [];
  if (i) {
    const r = ratio(i.ackPerSecond, k.whole.ackPerSecond);
    rows.push({ target: 'SMS intake acks/s vs Kannel', measured: `${r.toFixed(2)}× (${fmtRate(i.ackPerSecond)} vs ${fmtRate(k.whole.ackPerSecond)})`, goal: '≥ 3×', met: r >= 3 });
  }
  if (w) {
    const r = ratio(w.repliedPerSecond, k.whole.repliedPerSecond);
    rows.push({ target: 'SMS whole path replies/s vs Kannel', measured: `${r.toFixed(2)}× (${fmtRate(w.repliedPerSecond)} vs ${fmtRate(k.whole.repliedPerSecond)})`, goal: '≥ 1.5×', met: r >= 1.5 });
  }
  if (p) {
    const kept = pacedKept(p, options.rate);
    const [p99, kp99] = [p.reply?.p99 ?? Infinity, k.paced.reply?.p99 ?? Number.NaN];
    const [p50, kp50] = [p.reply?.p50 ?? Infinity, k.paced.reply?.p50 ?? Number.NaN];
    rows.push({
      target: `SMS paced ${fmtInt(options.rate)}/s: rate kept; reply p99 vs Kannel's; p50 vs half Kannel's`,
      measured: `${kept ? 'kept' : 'NOT kept'} (${fmtRate(p.repliedPerSecond)}); p99 ${fmtMs(p99)} vs ${fmtMs(kp99)}; p50 ${fmtMs(p50)} vs ${fmtMs(kp50 / 2)}`,
      goal: 'kept, p99 ≤ Kannel, p50 ≤ ½ Kannel',
      met: options.rate !== 1000 ? 'the goal is at --rate 1000' : kept && p99 <= kp99 && p50 <= kp50 / 2,
    });
  }
  out.push('');
  out.push('Targets (issue #15), Kannel measured in this run on the same box and simulator. Both sides run with the SMSC');
  out.push(`submit throttle off: the gateway's bind URL carries tps=${report.gatewayTps ?? '?'} (adapters/sms/config.ts defaults to 50 per bind), Kannel's`);
  out.push('config sets no throughput (none by default). We keep Redis appendfsync always and PostgreSQL synchronous_commit on;');
  out.push("Kannel's file store does not fsync (gw/bb_store_file.c: fflush only).");
  out.push(targetsTable(rows));
}

const code = await main();
process.exitCode = code;
setTimeout(() => process.exit(code), 2_000).unref();
