/**
 * bench:ingest — N reports through HTTP until each is persisted with its tracking ID, beside raw
 * BullMQ add+process measured on the same Redis in the same run.
 *
 *   npm run bench:ingest -- [--n 5000] [--rate 1000] [--duration 5] [--pg-fast] [--json]
 *                          [--one-process] [--batch 1,8,32,64] [--profile DIR] [--soak N]
 *
 * What it does, in order (everything on 127.0.0.1, every loop bounded by a count and the hard
 * timeout):
 *   1. starts its own redis-server (AOF, appendfsync always) and PostgreSQL (fsync on unless
 *      --pg-fast) on free ports, with their data in a fresh directory under /tmp (a real disk, so an
 *      fsync costs what it costs);
 *   2. baseline: a BullMQ Queue adds N ~330-byte jobs with 50 in flight while a Worker (concurrency
 *      50, trivial processor) consumes them; timed from the first add to the last completion, after
 *      --warmup untimed jobs (the gateway gets the same number of untimed reports first);
 *   3. builds the real gateway: the HTTP API in this process (openRuntime, buildApp + listen) and
 *      the worker stages in a `lapor worker …` child process, as a deployment runs them, so the
 *      API's 201s are timed while the workers drain elsewhere (--one-process: all in this process);
 *   4. a load client in a worker thread (its own event loop, so it does not steal the gateway's)
 *      posts reports over keep-alive HTTP: (a) saturation, N with 50 in flight; (b) paced, a fixed
 *      rate for a duration. A report is "persisted" when its row is in `reports`: the client polls
 *      `SELECT … WHERE seq >= $low` every --poll-ms (low = the smallest sequence number not seen
 *      yet, so each poll returns only the few rows committed out of order), and takes the detection
 *      time in Node. Paced latencies are measured from each request's scheduled send time, so a
 *      client that falls behind shows up in the latency instead of hiding it;
 *   5. with --batch: per value, a fresh gateway and worker process with LAPOR_QUEUE_BATCH_MAX set,
 *      a warm-up and the saturation run again; with --soak N: N reports at 80 % of the saturation
 *      rate on a fresh gateway, sampling the processes' memory;
 *   6. prints a table, the cost per report of the saturation runs (costs.ts), the issue's targets
 *      (and with --json one `BENCH_JSON {…}` line), stops everything and deletes the directory,
 *      also on error, Ctrl-C or the hard timeout (then it exits non-zero).
 *
 * LAPOR_* variables in the environment (e.g. LAPOR_QUEUE_INTAKE_CONCURRENCY) are passed to the
 * gateway, except the ones the benchmark sets itself.
 */
import { readlinkSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker as Thread, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Logger } from 'pino';
import { loadConfig } from '../../config/load.ts';
import { TrackingIdCodec } from '../../src/core/tracking-id.ts';
import { buildApp } from '../../src/http/app.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { WORKER_NAMES, startWorkers, type RunningWorkers, type WorkerName } from '../../workers/run.ts';
import { DEADLINES_QUEUE } from '../../src/queue/names.ts';
import { costSections, CostMeter, measureCost, type BatchRow, type PhaseCost } from './costs.ts';
import {
  analyzeTables, batchListOption, batchSetting, beginBench, benchEnv, deadLetters, describePostgres, describeRedis, numberOption, queueDepths, queuesIdle,
  startBenchServices, startWorkerProcess, TimeoutError, UsageError, type Teardown, type WorkerProcess,
} from './harness.ts';
import {
  CpuMeter, threadSyscalls, fmtBytes, fmtInt, fmtMs, fmtRate, rssBytes, sleep, summarize, table, targetsTable, until, type Summary, type TargetRow,
} from './lib.ts';
import { Profiler } from './profile.ts';

// ── options ──────────────────────────────────────────────────────────────────────────────────

interface Options {
  n: number;
  rate: number;
  durationS: number;
  inFlight: number;
  pacedMaxInFlight: number;
  pollMs: number;
  timeoutS: number;
  pgFast: boolean;
  json: boolean;
  gate: boolean;
  stages: WorkerName[];
  warmup: number;
  /** Workers in the HTTP server's process (the old shape); default: a `lapor worker` child process. */
  oneProcess: boolean;
  /** LAPOR_QUEUE_BATCH_MAX values to repeat the saturation run with. */
  batch: number[];
  profileDir: string | undefined;
  /** Reports to push through in the soak; undefined: no soak. */
  soak: number | undefined;
  /** Repeat the saturation run with a second `lapor worker` process on the same gateway. */
  secondWorker: boolean;
}

const USAGE = `usage: npm run bench:ingest -- [options]
  --n N             reports in the saturation run, and jobs in the raw BullMQ baseline (5000)
  --rate R          offered rate of the paced run, reports/s (1000)
  --duration S      length of the paced run, seconds (5)
  --in-flight K     concurrent requests / adds in the saturation and baseline runs (50)
  --paced-max-in-flight K   cap on open requests in the paced run; hitting it means the rate was not kept (500)
  --poll-ms MS      how often the client looks for new rows in PostgreSQL (5)
  --timeout S       hard limit for the whole run; past it, what was reached is printed and the exit code is 1 (120)
  --pg-fast         PostgreSQL with fsync=off, synchronous_commit=off (default: PostgreSQL's durable defaults)
  --json            also print one machine-readable line: BENCH_JSON {...}
  --warmup W        untimed jobs / reports before the raw and the gateway measurements (JIT, connections) (300)
  --stages LIST     worker stages to run, comma-separated (${WORKER_NAMES.join(',')}): leaving stages
                    out shows what they cost the intake path (a diagnostic; the default runs all)
  --gate            before each measured phase, wait (≤ 30 s, within --timeout) until the host is idle
                    (< 0.25 busy cores over 1 s): on a shared box other work otherwise skews the figures
  --workers-process run the worker stages in a \`lapor worker …\` child process (the default)
  --one-process     run them in the HTTP server's process instead (the shape before: they share its event loop)
  --batch LIST      repeat the saturation run once per LAPOR_QUEUE_BATCH_MAX value (e.g. 1,8,32,64), each
                    with a fresh gateway and worker process, and print one row per value: rate,
                    p50/p99, Redis commands, PostgreSQL statements, commits, fsyncs, CPU per report
  --profile DIR     write V8 CPU profiles (.cpuprofile) of the gateway and of the worker process around
                    each saturation run into DIR, and print their top 15 functions by self time
  --second-worker   after the paced run, start a second \`lapor worker …\` process beside the first and
                    run saturation again: what a second worker process adds on this box
  --soak N          at the end, push N reports through the whole path at 80 % of the saturation rate,
                    sampling the memory (RSS) of the gateway and worker processes; stops at --timeout`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      'in-flight': { type: 'string' },
      'paced-max-in-flight': { type: 'string' },
      'poll-ms': { type: 'string' },
      timeout: { type: 'string' },
      'pg-fast': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      gate: { type: 'boolean', default: false },
      stages: { type: 'string' },
      warmup: { type: 'string' },
      'workers-process': { type: 'boolean', default: false },
      'one-process': { type: 'boolean', default: false },
      batch: { type: 'string' },
      profile: { type: 'string' },
      soak: { type: 'string' },
      'second-worker': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = numberOption;
  if (values['one-process'] && values['workers-process']) throw new UsageError('--one-process and --workers-process exclude each other');
  return {
    n: num('n', values.n, 5_000, 1, 1_000_000),
    rate: num('rate', values.rate, 1_000, 1, 100_000, false),
    durationS: num('duration', values.duration, 5, 0.1, 600, false),
    inFlight: num('in-flight', values['in-flight'], 50, 1, 1_000),
    pacedMaxInFlight: num('paced-max-in-flight', values['paced-max-in-flight'], 500, 1, 10_000),
    pollMs: num('poll-ms', values['poll-ms'], 5, 1, 1_000),
    timeoutS: num('timeout', values.timeout, 120, 5, 86_400, false),
    pgFast: values['pg-fast'],
    json: values.json,
    gate: values.gate,
    stages: parseStages(values.stages),
    warmup: num('warmup', values.warmup, 300, 0, 100_000),
    oneProcess: values['one-process'],
    batch: batchListOption(values.batch),
    profileDir: values.profile,
    soak: values.soak === undefined ? undefined : num('soak', values.soak, 0, 1, 100_000_000),
    secondWorker: values['second-worker'],
  };
}


function parseStages(raw: string | undefined): WorkerName[] {
  if (raw === undefined) return [...WORKER_NAMES];
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(WORKER_NAMES as readonly string[]).includes(n));
  if (bad.length || !names.includes('intake')) {
    throw new UsageError(`--stages must list intake and any of ${WORKER_NAMES.join(', ')}; got ${raw}`);
  }
  return names as WorkerName[];
}

// ── messages between the main thread (gateway) and the client thread ──────────────────────────

interface ClientInit {
  role: 'bench-client';
  /** As the benchmark's own role (costs.ts BENCH_ROLE), so its polling is not counted as the gateway's statements. */
  databaseUrl: string;
  /** Requests sent so far, over all runs (read by the soak to know its progress). */
  progress: SharedArrayBuffer;
  trackingKey: string;
  pollMs: number;
  maxSockets: number;
}

type RunSpec =
  | { mode: 'saturation'; n: number; inFlight: number }
  /** record false (the soak): no per-request latencies kept, so the client's memory stays flat over millions. */
  | { mode: 'paced'; rate: number; durationS: number; maxInFlight: number; record?: boolean; stopSendingAt?: number };

/** `url`: the gateway of this run (each --batch value has its own). */
type ToClient = { kind: 'run'; spec: RunSpec; url: string; deadline: number } | { kind: 'stop' };
/** The thread's id and its polling connection's backend pid, so their CPU is not counted as the gateway's. */
type FromClient = { kind: 'ready'; tid: number; pollerBackendPid: number } | { kind: 'result'; result: RunResult } | { kind: 'stopped' } | { kind: 'fatal'; message: string };

interface RunResult {
  mode: RunSpec['mode'];
  planned: number;
  sent: number;
  responses: number;
  created: number;
  persisted: number;
  errors: Record<string, number>;
  timedOut: boolean;
  /** Milliseconds from the run's start (the first scheduled send). */
  lastSentMs: number;
  lastResponseMs: number;
  lastPersistedMs: number;
  /** HTTP 201 latency and send→row-seen latency, ms, one entry per created report. */
  httpMs: number[];
  persistMs: number[];
  /** Paced only: how late each request left against its schedule. */
  sendLag?: Summary;
  capHits: number;
  pollQueries: number;
  pollRowsPerQuery: number;
}


// ── the client thread ───────────────────────────────────────────────────────────────────────

async function clientThread(init: ClientInit): Promise<void> {
  const port = parentPort!;
  const send = (m: FromClient) => port.postMessage(m);
  let target = new URL('http://127.0.0.1/');
  const progress = new Int32Array(init.progress);
  const agent = new http.Agent({ keepAlive: true, maxSockets: init.maxSockets, maxFreeSockets: init.maxSockets });
  const codec = new TrackingIdCodec(Buffer.from(init.trackingKey, 'base64'));
  const db = new pg.Client({ connectionString: init.databaseUrl, application_name: 'bench-poller' });
  await db.connect();
  const pollerBackendPid = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

  // ─ persistence detection, shared by the runs (tracking IDs never repeat) ─
  const seenSeqs = new Set<number>();
  let maxSeenSeq = -1;
  /** Rows seen before their HTTP response was read (a worker may commit before the client reads the 201). */
  const seenEarly = new Map<string, number>();
  /** Created reports whose row was not seen yet: trackingId → scheduled send time and sequence number. */
  const waiting = new Map<string, { scheduled: number; seq: number }>();
  const waitingSeqs = new Set<number>();
  let waitingMin = Infinity;
  let waitingMinStale = false;
  let onPersisted: (scheduled: number, seenAt: number) => void = () => undefined;
  let pollQueries = 0;
  let pollRows = 0;
  let stopping = false;

  // Every created report not seen yet has seq >= low, and so has every row committed past the
  // highest seen; a report whose row was committed before its response arrived lowers `low` when
  // the response comes in. So each poll returns only rows committed out of order.
  const lowWatermark = (): number => {
    if (waitingMinStale) {
      waitingMin = Infinity;
      for (const s of waitingSeqs) if (s < waitingMin) waitingMin = s;
      waitingMinStale = false;
    }
    return Math.min(waitingMin, maxSeenSeq + 1);
  };

  const poller = (async () => {
    while (!stopping) {
      const { rows } = await db.query<{ seq: string; tracking_id: string }>(
        // ORDER BY the key: a range on the primary key that the planner, with the table growing
        // between two ANALYZEs, otherwise read by scanning the whole table at every poll.
        'SELECT seq::text AS seq, tracking_id FROM reports WHERE seq >= $1 ORDER BY seq LIMIT 100000',
        [lowWatermark()],
      );
      const seenAt = performance.now();
      pollQueries++;
      pollRows += rows.length;
      for (const row of rows) {
        const seq = Number(row.seq);
        if (seenSeqs.has(seq)) continue;
        seenSeqs.add(seq);
        if (seq > maxSeenSeq) maxSeenSeq = seq;
        const pending = waiting.get(row.tracking_id);
        if (pending) {
          waiting.delete(row.tracking_id);
          waitingSeqs.delete(pending.seq);
          if (pending.seq === waitingMin) waitingMinStale = true;
          onPersisted(pending.scheduled, seenAt);
        } else {
          seenEarly.set(row.tracking_id, seenAt);
        }
      }
      // Rows below the low watermark are never returned again: forget them, or a soak of millions
      // would grow this thread's memory (part of the gateway process's RSS).
      if (seenSeqs.size > 10_000) {
        const low = lowWatermark();
        for (const seq of seenSeqs) if (seq < low) seenSeqs.delete(seq);
      }
      await sleep(init.pollMs);
    }
  })();
  poller.catch((err: unknown) => send({ kind: 'fatal', message: `poller: ${(err as Error).message}` }));

  // ─ HTTP ─
  const body = (i: number) =>
    Buffer.from(
      JSON.stringify({
        text: `Jalan berlubang di depan SDN ${(i % 40) + 1} Sukamaju sejak dua bulan, sudah ada motor jatuh. Mohon segera diperbaiki. (uji beban ${i})`,
      }),
    );

  const post = (i: number): Promise<{ status: number; trackingId?: string; error?: string }> =>
    new Promise((resolve) => {
      const payload = body(i);
      const req = http.request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          method: 'POST',
          path: '/api/v1/reports',
          headers: { 'content-type': 'application/json', 'content-length': payload.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status !== 201) return resolve({ status });
            try {
              const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { trackingId?: unknown };
              resolve(typeof parsed.trackingId === 'string' ? { status, trackingId: parsed.trackingId } : { status: -1, error: 'no_tracking_id' });
            } catch {
              resolve({ status: -1, error: 'bad_json' });
            }
          });
          res.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, error: err.code ?? err.message }));
        },
      );
      req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, error: err.code ?? err.message }));
      req.end(payload);
    });

  // ─ one run ─
  let nextIndex = 0; // request numbers go on across runs, so the texts differ
  async function run(spec: RunSpec, url: string, deadline: number): Promise<RunResult> {
    target = new URL(url);
    const record = spec.mode === 'saturation' || spec.record !== false;
    const httpMs: number[] = [];
    const persistMs: number[] = [];
    const lags: number[] = [];
    const errors: Record<string, number> = {};
    let sent = 0, responses = 0, created = 0, persisted = 0, capHits = 0;
    let lastSent = 0, lastResponse = 0, lastPersisted = 0;
    const queriesBefore = pollQueries, rowsBefore = pollRows;
    const persistedAt = (scheduled: number, seenAt: number) => {
      persisted++;
      if (seenAt > lastPersisted) lastPersisted = seenAt;
      if (record) persistMs.push(seenAt - scheduled);
    };
    onPersisted = persistedAt;

    const fire = async (scheduled: number) => {
      const i = nextIndex++;
      const sentAt = performance.now();
      sent++;
      Atomics.add(progress, 0, 1);
      lastSent = sentAt;
      if (spec.mode === 'paced' && record) lags.push(sentAt - scheduled);
      const res = await post(i);
      const at = performance.now();
      responses++;
      if (at > lastResponse) lastResponse = at;
      if (res.status !== 201 || !res.trackingId) {
        const key = res.status > 0 ? `http_${res.status}` : (res.error ?? 'error');
        errors[key] = (errors[key] ?? 0) + 1;
        return;
      }
      created++;
      if (record) httpMs.push(at - scheduled);
      const early = seenEarly.get(res.trackingId);
      if (early !== undefined) {
        seenEarly.delete(res.trackingId);
        persistedAt(scheduled, early);
        return;
      }
      const seq = codec.toSequence(res.trackingId);
      waiting.set(res.trackingId, { scheduled, seq });
      waitingSeqs.add(seq);
      if (seq < waitingMin) waitingMin = seq;
    };

    const start = performance.now();
    let planned: number;
    if (spec.mode === 'saturation') {
      planned = spec.n;
      let issued = 0;
      const lane = async () => {
        while (issued < spec.n && Date.now() < deadline && !stopping) {
          issued++;
          await fire(performance.now());
        }
      };
      await Promise.all(Array.from({ length: Math.min(spec.inFlight, spec.n) }, lane));
    } else {
      // Open loop: request i is due at start + i/rate, whatever happened to the earlier ones.
      planned = Math.max(1, Math.round(spec.rate * spec.durationS));
      const interval = 1000 / spec.rate;
      let open = 0;
      let i = 0;
      const stopAt = Math.min(deadline, spec.stopSendingAt ?? deadline);
      while (i < planned && Date.now() < stopAt && !stopping) {
        const now = performance.now();
        while (i < planned && start + i * interval <= now) {
          if (open >= spec.maxInFlight) {
            capHits++;
            break;
          }
          open++;
          void fire(start + i * interval).finally(() => open--);
          i++;
        }
        await sleep(Math.max(0, Math.min(start + i * interval - performance.now(), 50)));
      }
      await until(() => open === 0, deadline, 2);
    }
    const complete = await until(() => waiting.size === 0 && responses === sent, deadline, 2);

    return {
      mode: spec.mode,
      planned,
      sent,
      responses,
      created,
      persisted,
      errors,
      timedOut: !complete || sent < planned,
      lastSentMs: lastSent ? lastSent - start : 0,
      lastResponseMs: lastResponse ? lastResponse - start : 0,
      lastPersistedMs: lastPersisted ? lastPersisted - start : 0,
      httpMs,
      persistMs,
      ...(spec.mode === 'paced' ? { sendLag: summarize(lags) } : {}),
      capHits,
      pollQueries: pollQueries - queriesBefore,
      pollRowsPerQuery: pollQueries > queriesBefore ? (pollRows - rowsBefore) / (pollQueries - queriesBefore) : 0,
    };
  }

  port.on('message', (message: ToClient) => {
    if (message.kind === 'run') {
      run(message.spec, message.url, message.deadline)
        .then((result) => send({ kind: 'result', result }))
        .catch((err: unknown) => send({ kind: 'fatal', message: (err as Error).stack ?? String(err) }));
    } else {
      stopping = true;
      void poller
        .catch(() => undefined)
        .then(() => db.end())
        .catch(() => undefined)
        .then(() => {
          agent.destroy();
          send({ kind: 'stopped' });
          port.close();
        });
    }
  });
  // This thread's own id (/proc/thread-self → <pid>/task/<tid>), for the CPU accounting.
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  send({ kind: 'ready', tid, pollerBackendPid });
}

/** The client thread, started through tsx (Node 20 does not apply `--import` hooks to worker threads). */
class Client {
  private readonly thread: Thread;
  private pending: { resolve: (m: FromClient) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(init: ClientInit) {
    const tsx = import.meta.resolve('tsx/esm/api');
    const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    this.thread = new Thread(bootstrap, { eval: true, workerData: init });
    this.thread.on('message', (m: FromClient) => {
      if (m.kind === 'fatal') return this.fail(new Error(`client thread: ${m.message}`));
      const pending = this.pending;
      this.pending = undefined;
      pending?.resolve(m);
    });
    this.thread.on('error', (err) => this.fail(err));
    this.thread.on('exit', (code) => {
      if (this.pending) this.fail(new Error(`client thread exited (${code})`));
    });
  }

  private fail(err: Error) {
    this.failure ??= err;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
  }

  private next(timeoutMs: number): Promise<FromClient> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('client thread did not answer in time')), timeoutMs);
      this.pending = {
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  }

  async ready(): Promise<{ tid: number; pollerBackendPid: number }> {
    const m = await this.next(30_000);
    if (m.kind !== 'ready') throw new Error(`client thread: expected ready, got ${m.kind}`);
    return { tid: m.tid, pollerBackendPid: m.pollerBackendPid };
  }

  async run(spec: RunSpec, url: string, deadline: number): Promise<RunResult> {
    const answer = this.next(Math.max(0, deadline - Date.now()) + 10_000);
    this.thread.postMessage({ kind: 'run', spec, url, deadline } satisfies ToClient);
    const m = await answer;
    if (m.kind !== 'result') throw new Error(`client thread: expected a result, got ${m.kind}`);
    return m.result;
  }

  async stop(): Promise<void> {
    // Mid-run (Ctrl-C, error): nothing to wait for, the thread is simply ended.
    if (!this.failure && !this.pending) {
      const answer = this.next(5_000).catch(() => undefined);
      this.thread.postMessage({ kind: 'stop' } satisfies ToClient);
      await answer;
    }
    await this.thread.terminate();
  }
}

// ── raw BullMQ baseline ────────────────────────────────────────────────────────────────────────

/** A report-shaped job of ~330 bytes of JSON, like the anchors' `reportPayload`. */
function rawPayload(i: number): Record<string, unknown> {
  const trackingId = String(7_000_000_000 + i);
  const job = {
    channel: 'web',
    dedupKey: `web_${trackingId}`,
    externalId: `t${trackingId}`,
    trackingId,
    receivedAt: new Date().toISOString(),
    text: '',
    anonim: false,
    rahasia: false,
  };
  const base = 'Jalan berlubang di depan SDN 3 Sukamaju sejak dua bulan, sudah ada motor jatuh. Mohon segera diperbaiki oleh dinas terkait. ';
  const room = 330 - Buffer.byteLength(JSON.stringify(job));
  job.text = base.repeat(Math.ceil(room / base.length) + 1).slice(0, Math.max(0, room));
  return job;
}

interface RawResult {
  n: number;
  completed: number;
  added: number;
  addMs: number;
  totalMs: number;
  payloadBytes: number;
  timedOut: boolean;
}

async function rawBullmq(redisUrl: string, n: number, warmup: number, inFlight: number, deadline: number): Promise<RawResult> {
  const prefix = '{bench-raw}';
  const producer = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const consumer = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('raw', { connection: producer, prefix });
  let completed = 0;
  let lastCompletion = 0;
  const worker = new Worker('raw', async () => 'ok', { connection: consumer, prefix, concurrency: 50, autorun: false });
  worker.on('completed', () => {
    completed++;
    lastCompletion = performance.now();
  });
  const failures: Error[] = [];
  worker.on('failed', (_job, err) => failures.push(err));
  worker.on('error', (err) => failures.push(err));
  try {
    await queue.waitUntilReady();
    void worker.run();
    await worker.waitUntilReady();
    const payloads = Array.from({ length: n }, (_, i) => rawPayload(i));
    let next = 0;
    let lastAdd = 0;
    const addAll = async (count: number) => {
      next = 0;
      const lane = async () => {
        while (next < count && Date.now() < deadline) {
          const i = next++;
          await queue.add('r', payloads[i % n]!, { removeOnComplete: true, removeOnFail: true });
          lastAdd = performance.now();
        }
      };
      await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
    };
    if (warmup > 0) {
      await addAll(warmup);
      await until(() => completed >= warmup, deadline, 2);
      completed = 0;
    }
    const start = performance.now();
    lastAdd = start;
    await addAll(n);
    const done = await until(() => completed >= n, deadline, 2);
    if (failures.length) throw failures[0]!;
    return {
      n,
      completed,
      added: Math.min(next, n),
      addMs: lastAdd - start,
      totalMs: (done ? lastCompletion : performance.now()) - start,
      payloadBytes: Buffer.byteLength(JSON.stringify(payloads[0])),
      timedOut: !done,
    };
  } finally {
    await worker.close().catch(() => undefined);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
    producer.disconnect();
    consumer.disconnect();
  }
}

// ── the gateway ─────────────────────────────────────────────────────────────────────────────────

/** What every gateway of a run shares. */
interface GatewayContext {
  options: Options;
  log: Logger;
  teardown: Teardown;
  deadline: number;
  /** LAPOR_ settings of every gateway (and its worker process) before the batch setting. */
  env: Record<string, string>;
  /** The cost meter's Redis connection: drain checks on it are not counted as the gateway's commands. */
  probe: Redis;
}

/**
 * The HTTP API here, the worker stages in a `lapor worker` child process (or here with
 * --one-process). One per run, and one more per --batch value and for the soak:
 * LAPOR_QUEUE_BATCH_MAX is read at start-up, so each value needs a fresh gateway and worker process.
 */
class HttpGateway {
  worker: WorkerProcess | undefined;
  private readonly extraWorkers: WorkerProcess[] = [];
  private workers: RunningWorkers | undefined;
  /** Queues with a consumer (the deadline sweep's is left out: its next run always waits). */
  private consumed: Queue[] = [];
  private app: Awaited<ReturnType<typeof buildApp>> | undefined;
  url = '';
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly ctx: GatewayContext,
    readonly runtime: Runtime,
    readonly batchApplied: boolean,
  ) {}

  static async open(ctx: GatewayContext, batchMax?: number): Promise<HttpGateway> {
    const { options, teardown, deadline } = ctx;
    const batch = batchSetting(batchMax);
    const env = { ...ctx.env, ...batch.env };
    const runtime = await openRuntime(loadConfig(env), ctx.log);
    const gateway = new HttpGateway(ctx, runtime, batch.applied);
    teardown.defer('gateway', () => gateway.close());
    let consumed: string[];
    if (options.oneProcess) {
      gateway.workers = await startWorkers(runtime, options.stages, runtime.connectWorker);
      consumed = gateway.workers.workers.map((w) => w.name);
    } else {
      gateway.worker = await startWorkerProcess({
        stages: options.stages, env, queues: runtime.queues.all(), teardown, deadline,
        ...(options.profileDir ? { profileDir: options.profileDir } : {}),
      });
      consumed = gateway.worker.queues.map((q) => q.name);
    }
    gateway.consumed = runtime.queues.all().filter((q) => consumed.includes(q.name) && q.name !== DEADLINES_QUEUE);
    gateway.app = await buildApp(runtime);
    gateway.url = await gateway.app.listen({ host: '127.0.0.1', port: 0 });
    return gateway;
  }

  describe(): Report['gateway'] {
    const queue = this.runtime.config.queue as Record<string, unknown>;
    const concurrency = Object.entries(queue)
      .filter(([k]) => k.endsWith('Concurrency'))
      .map(([k, v]) => `${k.replace(/Concurrency$/, '')} c=${String(v)}`)
      .join(', ');
    const workers = this.worker
      ? `workers ${this.worker.stages.join(', ')} in a child process (lapor worker, pid ${this.worker.pid})`
      : `workers for ${this.workers?.workers.map((w) => w.name).join(', ') ?? '—'} in this process (--one-process)`;
    return { url: this.url, concurrency, workers };
  }

  /** Another `lapor worker` process on the same queues, as scaling out a role is done. */
  async addWorkerProcess(): Promise<void> {
    const { options, teardown, deadline } = this.ctx;
    const env = { ...this.ctx.env, ...batchSetting(undefined).env };
    this.extraWorkers.push(await startWorkerProcess({ stages: options.stages, env, queues: this.runtime.queues.all(), teardown, deadline }));
  }

  consumedQueues(): readonly Queue[] {
    return this.consumed;
  }

  /** Downstream jobs outlive the measured "persisted" moment: each run waits for them. */
  async drain(): Promise<{ ok: boolean; ms: number }> {
    const start = performance.now();
    const ok = await until(() => queuesIdle(this.ctx.probe, this.consumed), this.ctx.deadline, 20);
    return { ok, ms: performance.now() - start };
  }

  /** Stops HTTP, the workers (or the worker process), then the runtime; safe to call twice. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await this.app?.close();
      await this.workers?.close();
      await this.worker?.close();
      for (const extra of this.extraWorkers) await extra.close();
      await this.runtime.close();
    })());
  }
}

function noteProfiles(report: Partial<Report>, phase: string, p: { gateway: string; worker?: string } | undefined): void {
  if (!p) return;
  report.profiles ??= [];
  report.profiles.push({ title: `gateway process (HTTP API${p.worker ? '' : ' and workers'}), ${phase}`, file: p.gateway });
  if (p.worker) report.profiles.push({ title: `worker process, ${phase}`, file: p.worker });
}

async function countReports(url: string): Promise<number> {
  const check = new pg.Client({ connectionString: url });
  await check.connect();
  try {
    const { rows } = await check.query<{ n: string }>('SELECT count(*)::text AS n FROM reports');
    return Number(rows[0]!.n);
  } finally {
    await check.end();
  }
}

// ── the soak ────────────────────────────────────────────────────────────────────────────────────

interface RssTrack {
  /** After the first 10 % of the soak (of what fits before --timeout), so the heap growing to its working size is not counted as growth. */
  start?: number;
  end?: number;
  max: number;
  /**
   * The lowest samples from 10 to 20 % of the soak and from 90 % to the end (the drain included): a
   * heap that saw-tooths with V8's collections is better compared low to low than by one sample each.
   */
  lowEarly?: number;
  lowLate?: number;
}

interface SoakResult {
  planned: number;
  sent: number;
  created: number;
  persisted: number;
  errors: Record<string, number>;
  rate: number;
  offeredPerSecond: number;
  persistedPerSecond: number;
  rowsAdded: number;
  deadLetters: number;
  gateway: RssTrack;
  worker?: RssTrack;
  samples: number;
  stoppedAtTimeout: boolean;
  drained: boolean;
  elapsedS: number;
}

/**
 * N reports at a rate the machine keeps (80 % of the saturation rate measured before), memory
 * sampled every 2 s. It stops sending 20 s before --timeout and waits up to 10 s for the
 * backlog, so what was reached is printed and the services stop cleanly.
 */
async function soak(args: {
  options: Options;
  gateway: HttpGateway;
  client: Client;
  progress: SharedArrayBuffer;
  probe: Redis;
  deadline: number;
  say: (line: string) => void;
  rate: number;
}): Promise<SoakResult> {
  const { options, gateway, client, deadline, say } = args;
  const n = options.soak!;
  const rate = Math.max(1, args.rate);
  const stopSendingAt = deadline - 20_000;
  const progress = new Int32Array(args.progress);
  const sentBefore = Atomics.load(progress, 0);
  const rowsBefore = await countReports(gateway.runtime.config.databaseUrl!);
  const workerPid = gateway.worker?.pid;
  const gw: RssTrack = { max: 0 };
  const wk: RssTrack | undefined = workerPid ? { max: 0 } : undefined;
  let samples = 0;
  // Memory is first taken once 10 % of the soak has gone: of N, or of what fits before --timeout.
  const expected = Math.min(n, (rate * (stopSendingAt - Date.now())) / 1000);
  const sample = (final: boolean) => {
    const sent = Atomics.load(progress, 0) - sentBefore;
    for (const [track, pid] of [[gw, process.pid], [wk, workerPid]] as const) {
      const rss = track && pid ? rssBytes(pid) : undefined;
      if (!track || rss === undefined) continue;
      track.max = Math.max(track.max, rss);
      if (track.start === undefined && sent >= 0.1 * expected) track.start = rss;
      if (sent >= 0.1 * expected && sent < 0.2 * expected) track.lowEarly = Math.min(track.lowEarly ?? rss, rss);
      if (final || sent >= 0.9 * expected) track.lowLate = Math.min(track.lowLate ?? rss, rss);
      if (final) track.end = rss;
    }
    samples++;
  };
  say(`soak: ${fmtInt(n)} reports at ${fmtRate(rate)} (80 % of saturation), ~${fmtInt(Math.round(n / rate))} s…`);
  const every = setInterval(() => {
    sample(false);
    if (samples % 30 === 0) say(`soak: ${fmtInt(Atomics.load(progress, 0) - sentBefore)} of ${fmtInt(n)} sent; gateway RSS ${fmtBytes(rssBytes(process.pid))}${workerPid ? `, worker ${fmtBytes(rssBytes(workerPid))}` : ''}`);
  }, 2_000);
  const started = performance.now();
  let run: RunResult;
  try {
    run = await client.run({ mode: 'paced', rate, durationS: n / rate, maxInFlight: options.pacedMaxInFlight, record: false, stopSendingAt }, gateway.url, deadline - 10_000);
  } finally {
    clearInterval(every);
  }
  const drain = await until(() => queuesIdle(args.probe, gateway.consumedQueues()), deadline - 8_000, 50);
  sample(true);
  return {
    planned: n,
    sent: run.sent,
    created: run.created,
    persisted: run.persisted,
    errors: run.errors,
    rate,
    offeredPerSecond: run.lastSentMs > 0 ? (run.sent - 1) / (run.lastSentMs / 1000) : Number.NaN,
    persistedPerSecond: run.lastPersistedMs > 0 ? run.persisted / (run.lastPersistedMs / 1000) : Number.NaN,
    rowsAdded: (await countReports(gateway.runtime.config.databaseUrl!)) - rowsBefore,
    deadLetters: await deadLetters(args.probe, gateway.runtime.queues.all()),
    gateway: gw,
    ...(wk ? { worker: wk } : {}),
    samples,
    stoppedAtTimeout: run.sent < n,
    drained: drain,
    elapsedS: (performance.now() - started) / 1000,
  };
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────

type Snapshot = ReturnType<CpuMeter['snapshot']>;

interface Phase {
  wallMs: number;
  cores: Record<string, number>;
  /** Event-loop utilisation of the gateway's (main) thread. */
  elu: number;
  /** Busy cores of the host not used by any of ours: other work on a shared box skews the figures. */
  foreign: number | undefined;
  /** read/write system calls of the gateway's thread (socket I/O: one per Redis command or PG query, mostly). */
  syscalls?: { reads: number; writes: number };
  gauges?: GaugeSummary;
}

interface GaugeSummary {
  samples: number;
  /** Requests waiting for a PostgreSQL connection from the gateway's pool (max 20 in src/runtime.ts). */
  poolWaitingMean: number;
  poolWaitingMax: number;
  poolInUseMean: number;
  /** Jobs waiting in the inbound queue. */
  inboundWaitingMax: number;
}

/**
 * Samples the gateway's PostgreSQL pool every 10 ms and the inbound backlog every 100 ms (LLEN on
 * the cost meter's connection, `probe`, so the sampling is not counted as the gateway's commands).
 */
function sampleGateway(runtime: Runtime, probe: Redis): () => Promise<GaugeSummary> {
  let samples = 0, waitingSum = 0, waitingMax = 0, inUseSum = 0, inboundMax = 0;
  let stopped = false;
  const pool = runtime.db;
  const fast = setInterval(() => {
    samples++;
    waitingSum += pool.waitingCount;
    waitingMax = Math.max(waitingMax, pool.waitingCount);
    inUseSum += pool.totalCount - pool.idleCount;
  }, 10);
  const slow = (async () => {
    while (!stopped) {
      const depth = await queueDepths(probe, [runtime.queues.inbound]).catch(() => undefined);
      const waiting = depth?.get(runtime.queues.inbound.name)?.waiting ?? 0;
      inboundMax = Math.max(inboundMax, waiting);
      await sleep(100);
    }
  })();
  return async () => {
    stopped = true;
    clearInterval(fast);
    await slow;
    return {
      samples,
      poolWaitingMean: samples ? waitingSum / samples : 0,
      poolWaitingMax: waitingMax,
      poolInUseMean: samples ? inUseSum / samples : 0,
      inboundWaitingMax: inboundMax,
    };
  };
}

/** Waits until the whole host uses < `maxCores` over a 1 s window (→ true), or `maxWaitMs` passes (→ false). */
async function quietHost(maxCores: number, maxWaitMs: number, deadline: number): Promise<{ quiet: boolean; waitedMs: number; busy: number | undefined }> {
  const start = Date.now();
  const stop = Math.min(deadline, start + maxWaitMs);
  let busy: number | undefined;
  for (;;) {
    const before = CpuMeter.hostBusySeconds();
    await sleep(1_000);
    const after = CpuMeter.hostBusySeconds();
    if (before === undefined || after === undefined) return { quiet: false, waitedMs: Date.now() - start, busy: undefined };
    busy = after - before;
    if (busy < maxCores) return { quiet: true, waitedMs: Date.now() - start, busy };
    if (Date.now() >= stop) return { quiet: false, waitedMs: Date.now() - start, busy };
  }
}

async function measured<T>(meter: CpuMeter, work: () => Promise<T>, runtime?: Runtime, probe?: Redis): Promise<{ value: T; phase: Phase }> {
  const stopGauges = runtime && probe ? sampleGateway(runtime, probe) : undefined;
  const before: Snapshot = meter.snapshot();
  const hostBefore = CpuMeter.hostBusySeconds();
  const ioBefore = threadSyscalls(process.pid, process.pid);
  const elu = performance.eventLoopUtilization();
  const start = performance.now();
  const value = await work();
  const wallMs = performance.now() - start;
  const hostAfter = CpuMeter.hostBusySeconds();
  const cores = CpuMeter.cores(before, meter.snapshot(), wallMs);
  const ours = Object.values(cores).reduce((a, b) => a + b, 0);
  const foreign = hostBefore !== undefined && hostAfter !== undefined ? Math.max(0, (hostAfter - hostBefore) / (wallMs / 1000) - ours) : undefined;
  const phase: Phase = { wallMs, cores, elu: performance.eventLoopUtilization(elu).utilization, foreign };
  const ioAfter = threadSyscalls(process.pid, process.pid);
  if (ioBefore && ioAfter) phase.syscalls = { reads: ioAfter.reads - ioBefore.reads, writes: ioAfter.writes - ioBefore.writes };
  if (stopGauges) phase.gauges = await stopGauges();
  return { value, phase };
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { startedAt, deadline, log, say, teardown } = beginBench(options.timeoutS);

  const report: Partial<Report> = { options, cores: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', loadavg: loadavg() };
  let exitCode = 0;
  try {
    // 1. services
    const services = await startBenchServices(teardown, log, { name: 'ingest', pgFast: options.pgFast, measureCosts: true });
    const { dir, redis, postgres } = services;
    report.dataDir = dir;
    report.filesystem = services.filesystem;
    say(`data in ${dir} (${report.filesystem}${report.filesystem === 'tmpfs' ? ': fsync costs nothing here!' : ', fsync hits the disk'})`);
    report.redis = await describeRedis(redis.url);
    report.postgres = await describePostgres(postgres.url);
    say(`redis ${report.redis.version} on ${redis.url}: appendonly ${report.redis.appendonly}, appendfsync ${report.redis.appendfsync}`);
    say(`postgres ${report.postgres.version} on port ${postgres.port}: fsync ${report.postgres.fsync}, synchronous_commit ${report.postgres.synchronousCommit}`);

    let gateway: HttpGateway | undefined;
    const meter = new CpuMeter({
      gatewayThread: CpuMeter.mainThreadOfSelf(),
      otherThreads: CpuMeter.otherThreadsOfSelf(),
      workerProcess: () => CpuMeter.procStat(gateway?.worker?.pid)(),
      redis: CpuMeter.procStat(redis.child.pid),
      postgres: CpuMeter.procStat(postgres.child.pid, true),
    });
    // The load client runs in a thread of this process and polls PostgreSQL: neither is the gateway.
    const cpu: { clientTid?: number; pollerBackendPid?: number } = {};
    const costMeter = await CostMeter.open({
      redis: { url: redis.url, pid: redis.pid },
      postgres: { url: services.benchUrl!, pid: postgres.pid },
      cpu: {
        gateway: () => ({ pid: process.pid, exceptThreads: cpu.clientTid === undefined ? [] : [cpu.clientTid] }),
        worker: () => (gateway?.worker ? { pid: gateway.worker.pid } : undefined),
        redis: () => ({ pid: redis.pid, children: true }),
        postgres: () => ({ pid: postgres.pid, children: true, exceptProcesses: cpu.pollerBackendPid === undefined ? [] : [cpu.pollerBackendPid] }),
      },
      teardown,
      say,
    });
    const profiler = options.profileDir ? new Profiler(options.profileDir) : undefined;

    // 2. baseline
    say(`raw BullMQ: ${fmtInt(options.n)} jobs, ${options.inFlight} adds in flight, worker concurrency 50…`);
    const gate = async (phase: string) => {
      if (!options.gate) return;
      const g = await quietHost(0.25, 30_000, deadline);
      say(`${phase}: host ${g.quiet ? 'quiet' : 'still busy'} (${g.busy?.toFixed(2) ?? '?'} cores) after ${fmtMs(g.waitedMs)}`);
    };
    await gate('raw BullMQ');
    const raw = await measured(meter, () => rawBullmq(redis.url, options.n, options.warmup, options.inFlight, deadline));
    report.raw = { ...raw.value, jobsPerSecond: raw.value.completed / (raw.value.totalMs / 1000), phase: raw.phase };
    say(`raw BullMQ: ${fmtRate(report.raw.jobsPerSecond, ' jobs/s')}`);
    if (raw.value.timedOut) throw new TimeoutError('raw BullMQ baseline');

    // 3. the gateway
    const ownVars = {
      ...benchEnv({ dir, postgres, redis }, 'bench'),
      LAPOR_HOST: '127.0.0.1',
      LAPOR_PORT: '0',
      LAPOR_REDIS_FSYNC: 'always',
    };
    // The bench is one address standing for many citizens: the per-address connection cap would
    // refuse its sockets (up to --paced-max-in-flight of them), so it is lifted unless asked for.
    const benchDefaults = { LAPOR_HTTP_MAX_CONNECTIONS_PER_IP: '0', LAPOR_HTTP_MAX_CONNECTIONS: '100000' };
    const passed = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('LAPOR_') && !(k in ownVars) && v !== undefined)) as Record<string, string>;
    if (Object.keys(passed).length) say(`passing to the gateway: ${Object.entries(passed).map(([k, v]) => `${k}=${v}`).join(' ')}`);

    const ctx: GatewayContext = { options, log, teardown, deadline, env: { ...benchDefaults, ...passed, ...ownVars }, probe: costMeter.redis };
    gateway = await HttpGateway.open(ctx);
    // The client polls `reports`: it starts once the first gateway has run the migrations.
    const progress = new SharedArrayBuffer(4);
    const client = new Client({
      role: 'bench-client',
      databaseUrl: services.benchUrl!,
      trackingKey: ownVars.LAPOR_TRACKING_KEY,
      pollMs: options.pollMs,
      maxSockets: Math.max(options.inFlight, options.pacedMaxInFlight),
      progress,
    });
    teardown.defer('client thread', () => client.stop());
    const { tid: clientTid, pollerBackendPid } = await client.ready();

    cpu.clientTid = clientTid;
    cpu.pollerBackendPid = pollerBackendPid;
    report.gateway = gateway.describe();
    say(`gateway on ${gateway.url}: ${report.gateway.workers} (${report.gateway.concurrency})`);

    let created = 0;
    const warmUp = async (n: number) => {
      if (n <= 0) return;
      say(`warm-up: ${fmtInt(n)} reports, untimed…`);
      const warm = await client.run({ mode: 'saturation', n, inFlight: options.inFlight }, gateway!.url, deadline);
      created += warm.created;
      if (warm.timedOut || !(await gateway!.drain()).ok) throw new TimeoutError('warm-up');
      await analyzeTables(services.benchUrl!);
    };
    await warmUp(options.warmup);

    // 4a. saturation, its cost per report: the window runs until downstream jobs are done too.
    const saturation = async (phase: string) => {
      await gate(phase);
      say(`${phase}: ${fmtInt(options.n)} reports, ${options.inFlight} in flight…`);
      const gw = gateway!;
      const m = await measureCost(costMeter, profiler, phase, gw.worker, (v) => v.run.value.created, async () => {
        const run = await measured(meter, () => client.run({ mode: 'saturation', n: options.n, inFlight: options.inFlight }, gw.url, deadline), gw.runtime, costMeter.redis);
        return { run, drain: await gw.drain() };
      });
      const { run, drain } = m.value;
      created += run.value.created;
      const result = digest(run.value, run.phase);
      if (drain.ok) result.drainAfterMs = drain.ms;
      noteProfiles(report, phase, m.profiles);
      say(`${phase}: ${fmtRate(result.persistedPerSecond, ' reports/s')} persisted; downstream drained ${fmtMs(drain.ms)} later`);
      if (run.value.timedOut || !drain.ok) throw new TimeoutError(`${phase} run`);
      return { result, cost: m.cost, errors: run.value.errors };
    };
    const sat = await saturation('saturation');
    report.saturation = sat.result;
    report.costs = [{ label: 'saturation', cost: sat.cost }];
    const errors: Record<string, number> = {};
    const addErrors = (e: Record<string, number>) => { for (const [k, v] of Object.entries(e)) errors[k] = (errors[k] ?? 0) + v; };
    addErrors(sat.errors);

    // 4b. paced
    await gate('paced');
    say(`paced: ${fmtInt(options.rate)}/s for ${options.durationS} s…`);
    const gw = gateway;
    const paced = await measured(meter, () =>
      client.run({ mode: 'paced', rate: options.rate, durationS: options.durationS, maxInFlight: options.pacedMaxInFlight }, gw.url, deadline),
      gw.runtime, costMeter.redis,
    );
    created += paced.value.created;
    addErrors(paced.value.errors);
    report.paced = digest(paced.value, paced.phase);
    const pacedDrain = await gw.drain();
    if (pacedDrain.ok) report.paced.drainAfterMs = pacedDrain.ms;
    if (paced.value.timedOut || !pacedDrain.ok) throw new TimeoutError('paced run');

    // 4c. what a second worker process adds (same gateway, same settings)
    if (options.secondWorker && gateway.worker) {
      await gateway.addWorkerProcess();
      say('second worker process started');
      await warmUp(Math.min(options.warmup, 300));
      const two = await saturation('saturation-2-workers');
      addErrors(two.errors);
      report.secondWorker = { one: sat.result.persistedPerSecond, two: two.result.persistedPerSecond, p99: two.result.persist?.p99 };
      report.costs.push({ label: 'two workers', cost: two.cost });
    }

    // 5. saturation once per --batch value, each on a gateway (and worker process) of its own
    report.batches = [];
    for (const batchMax of options.batch) {
      await gateway.close();
      gateway = await HttpGateway.open(ctx, batchMax);
      say(`batch ${batchMax}${gateway.batchApplied ? '' : ' (not applied: this build has no LAPOR_QUEUE_BATCH_MAX)'}:`);
      await warmUp(Math.min(options.warmup, 300));
      const b = await saturation(`saturation-batch${batchMax}`);
      addErrors(b.errors);
      report.batches.push({ batch: batchMax, applied: gateway.batchApplied, rate: b.result.persistedPerSecond, p50: b.result.persist?.p50, p99: b.result.persist?.p99, cost: b.cost });
    }

    // 6. the soak, on a fresh gateway at 80 % of the saturation rate measured above
    if (options.soak !== undefined) {
      if (options.batch.length) {
        await gateway.close();
        gateway = await HttpGateway.open(ctx);
      }
      await warmUp(Math.min(options.warmup, 300));
      report.soak = await soak({ options, gateway, client, progress, probe: costMeter.redis, deadline, say, rate: 0.8 * sat.result.persistedPerSecond });
      created += report.soak.created;
      addErrors(report.soak.errors);
      if (report.soak.stoppedAtTimeout) exitCode = 1;
    }

    // Cross-check: every created report is a row, and nothing went to the dead letters.
    report.rowsInPostgres = await countReports(postgres.url);
    report.deadLetters = await deadLetters(costMeter.redis, gateway.runtime.queues.all());
    if (report.rowsInPostgres !== created) {
      console.error(`mismatch: ${created} reports created over HTTP, ${report.rowsInPostgres} rows in PostgreSQL`);
      exitCode = 1;
    }
    if (Object.keys(errors).length) exitCode = 1;
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

// ── results ──────────────────────────────────────────────────────────────────────────────────

interface RunDigest {
  planned: number;
  sent: number;
  created: number;
  persisted: number;
  errors: Record<string, number>;
  timedOut: boolean;
  /** Created reports per second over first send → last 201. */
  acceptedPerSecond: number;
  /** Persisted reports per second over first send → last row seen. */
  persistedPerSecond: number;
  /** Requests sent per second (paced: achieved offered rate). */
  sentPerSecond: number;
  http?: Summary;
  persist?: Summary;
  sendLag?: Summary;
  capHits: number;
  pollQueries: number;
  pollRowsPerQuery: number;
  drainAfterMs?: number;
  phase: Phase;
}

interface Report {
  options: Options;
  cores: number;
  cpuModel: string;
  loadavg: number[];
  dataDir: string;
  filesystem: string;
  redis: { version: string; appendonly: string; appendfsync: string };
  postgres: { version: string; fsync: string; synchronousCommit: string };
  raw: RawResult & { jobsPerSecond: number; phase: Phase };
  /** concurrency: the stages' settings as this build has them; workers: where they run. */
  gateway: { url: string; concurrency: string; workers: string };
  saturation: RunDigest;
  paced: RunDigest;
  /** Cost per report of the saturation run (costs.ts). */
  costs: { label: string; cost: PhaseCost }[];
  batches: BatchRow[];
  profiles: { title: string; file: string }[];
  soak: SoakResult;
  secondWorker: { one: number; two: number; p99: number | undefined };
  rowsInPostgres: number;
  deadLetters: number;
  elapsedS: number;
}

function digest(r: RunResult, phase: Phase): RunDigest {
  const perSecond = (count: number, ms: number) => (ms > 0 ? count / (ms / 1000) : Number.NaN);
  return {
    planned: r.planned,
    sent: r.sent,
    created: r.created,
    persisted: r.persisted,
    errors: r.errors,
    timedOut: r.timedOut,
    acceptedPerSecond: perSecond(r.created, r.lastResponseMs),
    persistedPerSecond: perSecond(r.persisted, r.lastPersistedMs),
    sentPerSecond: perSecond(Math.max(0, r.sent - 1), r.lastSentMs),
    http: summarize(r.httpMs),
    persist: summarize(r.persistMs),
    ...(r.sendLag ? { sendLag: r.sendLag } : {}),
    capHits: r.capHits,
    pollQueries: r.pollQueries,
    pollRowsPerQuery: r.pollRowsPerQuery,
    phase,
  };
}

function print(report: Partial<Report>, options: Options): void {
  const out: string[] = [];
  const goalRatio = 0.5;
  const goalP99 = 50;
  out.push('');
  out.push(`bench:ingest — ${report.cores} cores (${report.cpuModel}), Node ${process.version}, load average at start ${report.loadavg?.map((l) => l.toFixed(2)).join(' ')}`);
  if (report.redis) out.push(`Redis ${report.redis.version}: appendonly ${report.redis.appendonly}, appendfsync ${report.redis.appendfsync}; data on ${report.filesystem} (${report.dataDir})`);
  if (report.postgres) out.push(`PostgreSQL ${report.postgres.version}: fsync ${report.postgres.fsync}, synchronous_commit ${report.postgres.synchronousCommit}${options.pgFast ? ' (--pg-fast)' : ''}`);
  out.push(`N = ${fmtInt(options.n)} (after ${fmtInt(options.warmup)} untimed), ${options.inFlight} in flight; paced ${fmtInt(options.rate)}/s × ${options.durationS} s; rows polled every ${options.pollMs} ms`);
  if (report.gateway) out.push(`gateway: HTTP API in this process, ${report.gateway.workers}; ${report.gateway.concurrency} (notify per channel); load client in a worker thread of this process`);
  out.push('');

  const rows: string[][] = [];
  const lat = (s: Summary | undefined) => [fmtMs(s?.p50), fmtMs(s?.p95), fmtMs(s?.p99), fmtMs(s?.max)];
  if (report.raw) {
    rows.push([`raw BullMQ add+process (${fmtInt(report.raw.completed)} jobs, ${report.raw.payloadBytes} B)`, fmtRate(report.raw.jobsPerSecond, ' jobs/s'), '', '', '', '']);
  }
  const sat = report.saturation;
  if (sat) {
    rows.push([`saturation: HTTP 201 (${fmtInt(sat.created)}/${fmtInt(sat.planned)})`, fmtRate(sat.acceptedPerSecond), ...lat(sat.http)]);
    rows.push([`saturation: until persisted (${fmtInt(sat.persisted)})`, fmtRate(sat.persistedPerSecond), ...lat(sat.persist)]);
  }
  if (report.secondWorker) {
    const { one, two } = report.secondWorker;
    rows.push([`saturation, a second worker process: until persisted`, fmtRate(two), '', '', fmtMs(report.secondWorker.p99), '']);
    rows.push([`  (one worker process: ${fmtRate(one)}; the second adds ${((two / one - 1) * 100).toFixed(0)} %)`, '', '', '', '', '']);
  }
  const paced = report.paced;
  if (paced) {
    rows.push([`paced ${fmtInt(options.rate)}/s: HTTP 201 (${fmtInt(paced.created)}/${fmtInt(paced.planned)})`, fmtRate(paced.acceptedPerSecond), ...lat(paced.http)]);
    rows.push([`paced ${fmtInt(options.rate)}/s: until persisted`, fmtRate(paced.persistedPerSecond), ...lat(paced.persist)]);
  }
  out.push(table(['', 'rate', 'p50', 'p95', 'p99', 'max'], rows));
  out.push('');

  if (report.raw && sat) {
    const ratio = sat.persistedPerSecond / report.raw.jobsPerSecond;
    out.push(`ratio ours/raw BullMQ = ${ratio.toFixed(3)}  (goal ≥ ${goalRatio}: ${ratio >= goalRatio ? 'met' : 'NOT met'})`);
  }
  if (paced) {
    const keptSend = paced.sent === paced.planned && paced.capHits === 0 && (paced.sendLag?.p99 ?? Infinity) <= 5;
    const keptPipeline = paced.persistedPerSecond >= 0.97 * options.rate;
    const p99 = paced.persist?.p99 ?? Infinity;
    out.push(
      `paced: offered ${fmtRate(paced.sentPerSecond)} (send lag p99 ${fmtMs(paced.sendLag?.p99)}, max ${fmtMs(paced.sendLag?.max)}${paced.capHits ? `, in-flight cap hit ${paced.capHits}×` : ''}), ` +
        `persisted ${fmtRate(paced.persistedPerSecond)} → rate ${keptSend && keptPipeline ? 'kept' : 'NOT kept'}`,
    );
    const verdict = options.rate !== 1000 ? 'not judged: the goal is at 1,000/s' : p99 < goalP99 && keptSend && keptPipeline ? 'met' : 'NOT met';
    out.push(`paced: p99 until persisted ${fmtMs(p99)} (goal < ${goalP99} ms at 1,000/s with the rate kept: ${verdict})`);
  }
  for (const [name, run] of [['saturation', sat], ['paced', paced]] as const) {
    if (!run) continue;
    const errs = Object.entries(run.errors).map(([k, v]) => `${k}×${v}`).join(' ');
    out.push(`${name}: ${run.pollQueries} polls, ${run.pollRowsPerQuery.toFixed(1)} rows each; downstream jobs ${run.drainAfterMs === undefined ? 'not drained' : `drained ${fmtMs(run.drainAfterMs)} after`}${errs ? `; errors ${errs}` : ''}${run.timedOut ? '; TIMED OUT' : ''}`);
  }
  const cpuLine = (name: string, phase: Phase | undefined) => {
    if (!phase) return;
    const c = phase.cores;
    const f = (v: number | undefined) => (v ?? 0).toFixed(2);
    out.push(
      `cpu ${name.padEnd(10)} gateway thread ${f(c.gatewayThread)} (event loop busy ${(phase.elu * 100).toFixed(0)} %), other node threads ${f(c.otherThreads)}, ` +
        `${c.workerProcess ? `worker process ${f(c.workerProcess)}, ` : ''}redis ${f(c.redis)}, postgres ${f(c.postgres)}; ` +
        `foreign ${phase.foreign === undefined ? '?' : f(phase.foreign)}${(phase.foreign ?? 0) > 0.15 ? ' (shared box busy: figures skewed)' : ''} — cores over ${(phase.wallMs / 1000).toFixed(1)} s`,
    );
  };
  for (const [name, run] of [['saturation', sat], ['paced', paced]] as const) {
    const g = run?.phase.gauges;
    if (g) {
      out.push(
        `pool ${name.padEnd(10)} PostgreSQL pool: ${g.poolInUseMean.toFixed(1)} connections in use on average, ` +
          `${g.poolWaitingMean.toFixed(1)} callers waiting for one (max ${g.poolWaitingMax}); inbound backlog max ${fmtInt(g.inboundWaitingMax)}`,
      );
    }
  }
  const sys = (name: string, phase: Phase | undefined, units: number | undefined, unit: string) => {
    if (!phase?.syscalls || !units) return;
    out.push(`io  ${name.padEnd(10)} gateway thread: ${(phase.syscalls.writes / units).toFixed(1)} write and ${(phase.syscalls.reads / units).toFixed(1)} read system calls per ${unit}`);
  };
  sys('raw', report.raw?.phase, report.raw?.completed, 'job');
  sys('saturation', sat?.phase, sat?.created, 'report');
  sys('paced', paced?.phase, paced?.created, 'report');
  cpuLine('raw', report.raw?.phase);
  cpuLine('saturation', sat?.phase);
  cpuLine('paced', paced?.phase);
  printCosts(out, report, options);
  printSoak(out, report.soak);
  printTargets(out, report, options);
  if (report.rowsInPostgres !== undefined) out.push(`check: ${fmtInt(report.rowsInPostgres)} rows in reports, ${report.deadLetters} dead letters`);
  out.push(`"until persisted" = scheduled send → poll saw the row (resolution ${options.pollMs} ms + one query); paced latencies count from each request's scheduled time`);
  console.log(out.join('\n'));
  if (options.json) {
    const slim = JSON.parse(JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))) as unknown;
    console.log(`BENCH_JSON ${JSON.stringify(slim)}`);
  }
}

function printCosts(out: string[], report: Partial<Report>, options: Options): void {
  const cpuLabels = {
    gateway: `gateway process (HTTP API${options.oneProcess ? ' and workers' : ''}; not the load client thread)`,
    worker: 'worker process',
    redis: 'redis-server',
    postgres: 'postgres, all processes (not the poller\'s backend)',
  };
  costSections(out, report, {
    costTitle: 'Cost per report (costs.ts: counted, not estimated; n/a says why); the window ends when the downstream jobs are done too',
    cpuLabels,
    unit: 'report',
    batchTitle: 'Saturation per LAPOR_QUEUE_BATCH_MAX (each on a fresh gateway and worker process, after a warm-up)',
    rateLabel: 'persisted/s',
    latencyLabel: 'until persisted',
    fmtMs,
  });
}

const growth = (t: RssTrack | undefined) => (t?.start && t.end !== undefined ? (100 * (t.end - t.start)) / t.start : Number.NaN);

function printSoak(out: string[], soak: SoakResult | undefined): void {
  if (!soak) return;
  const rss = (name: string, t: RssTrack | undefined) =>
    t ? `${name} RSS ${fmtBytes(t.start)} → ${fmtBytes(t.end)} (${Number.isFinite(growth(t)) ? `${growth(t) >= 0 ? '+' : ''}${growth(t).toFixed(1)} %` : '—'}, max ${fmtBytes(t.max)})` : '';
  out.push('');
  out.push(`soak: ${fmtInt(soak.sent)} of ${fmtInt(soak.planned)} reports sent at ${fmtRate(soak.rate)} asked (80 % of saturation), offered ${fmtRate(soak.offeredPerSecond)}, persisted ${fmtRate(soak.persistedPerSecond)}; ${soak.elapsedS.toFixed(0)} s${soak.stoppedAtTimeout ? ' — STOPPED at --timeout' : ''}`);
  out.push(`soak: ${fmtInt(soak.created)} created (201), ${fmtInt(soak.persisted)} seen persisted, ${fmtInt(soak.rowsAdded)} rows added; ${soak.deadLetters} dead letters (failed jobs in the queues); backlog ${soak.drained ? 'drained' : 'NOT drained'}${Object.keys(soak.errors).length ? `; errors ${Object.entries(soak.errors).map(([k, v]) => `${k}×${v}`).join(' ')}` : ''}`);
  out.push(`soak: ${[rss('gateway process', soak.gateway), rss('worker process', soak.worker)].filter(Boolean).join('; ')} — start = the first sample after 10 % of the soak, end = after the drain; ${soak.samples} samples, one every 2 s`);
  const lows = (name: string, t: RssTrack | undefined) =>
    t?.lowEarly && t.lowLate !== undefined ? `${name} ${fmtBytes(t.lowEarly)} → ${fmtBytes(t.lowLate)} (${t.lowLate >= t.lowEarly ? '+' : ''}${((100 * (t.lowLate - t.lowEarly)) / t.lowEarly).toFixed(1)} %)` : '';
  const low = [lows('gateway', soak.gateway), lows('worker', soak.worker)].filter(Boolean);
  if (low.length) out.push(`soak: lowest RSS from 10 to 20 % of the soak → from 90 % to the end: ${low.join('; ')} (the heap saw-tooths with V8's collections; the verdict below keeps start → end)`);
  out.push('soak: the gateway process also holds the load client thread (its per-request state is not kept in the soak)');
}

/** The issue's targets, measured in this run. */
function printTargets(out: string[], report: Partial<Report>, options: Options): void {
  const { raw, saturation: sat, paced, soak } = report;
  const rows: TargetRow[] = [];
  if (raw && sat) {
    const r = sat.persistedPerSecond / raw.jobsPerSecond;
    rows.push({ target: 'HTTP persisted/s vs raw BullMQ add+process', measured: `${r.toFixed(2)}× (${fmtRate(sat.persistedPerSecond)} vs ${fmtRate(raw.jobsPerSecond)})`, goal: '≥ 0.5×', met: r >= 0.5 });
  }
  if (paced) {
    const keptSend = paced.sent === paced.planned && paced.capHits === 0 && (paced.sendLag?.p99 ?? Infinity) <= 5;
    const p99 = paced.http?.p99 ?? Infinity;
    rows.push({
      target: `HTTP p99 → 201 at ${fmtInt(options.rate)}/s, workers draining`,
      measured: `${fmtMs(p99)}${keptSend ? '' : ' (offered rate not kept)'}${options.oneProcess ? ' (workers in the HTTP process)' : ''}`,
      goal: '< 50 ms',
      met: options.rate !== 1000 ? 'the goal is at --rate 1000' : options.oneProcess ? 'the goal is with workers in their own process' : keptSend && p99 < 50,
    });
  }
  if (soak) {
    const growths = [growth(soak.gateway), ...(soak.worker ? [growth(soak.worker)] : [])];
    const measured = `RSS ${growths.map((g) => (Number.isFinite(g) ? `${g >= 0 ? '+' : ''}${g.toFixed(1)} %` : '—')).join(' / ')} (gateway${soak.worker ? ' / worker' : ''}), ${soak.deadLetters} dead letters${soak.stoppedAtTimeout ? `, stopped at --timeout after ${fmtInt(soak.sent)} of ${fmtInt(soak.planned)}` : ''}`;
    const met = growths.every((g) => Number.isFinite(g) && g < 10) && soak.deadLetters === 0;
    rows.push({ target: 'soak RSS growth, dead letters', measured, goal: '< 10 %, 0', met: growths.some((g) => !Number.isFinite(g)) ? 'no RSS sample after 10 % of the soak' : met });
  }
  if (!rows.length) return;
  out.push('');
  out.push('Targets (issue #15), both sides measured in this run on the same box: raw BullMQ on the same Redis with');
  out.push('appendfsync always; ours also commits each report to PostgreSQL with synchronous_commit on.');
  out.push(targetsTable(rows));
}

// ── entry ────────────────────────────────────────────────────────────────────────────────────

if (isMainThread) {
  const code = await main();
  process.exitCode = code;
  // Should a handle stay open after cleanup, do not hang.
  setTimeout(() => process.exit(code), 2_000).unref();
} else if ((workerData as ClientInit | undefined)?.role === 'bench-client') {
  await clientThread(workerData as ClientInit);
}
