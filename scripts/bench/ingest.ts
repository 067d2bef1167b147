/**
 * bench:ingest — N reports through HTTP until each is persisted with its tracking ID, beside raw
 * BullMQ add+process measured on the same Redis in the same run.
 *
 *   npm run bench:ingest -- [--n 5000] [--rate 1000] [--duration 5] [--pg-fast] [--json]
 *
 * What it does, in order (everything on 127.0.0.1, every loop bounded by a count and the hard
 * timeout):
 *   1. starts its own redis-server (AOF, appendfsync always) and PostgreSQL (fsync on unless
 *      --pg-fast) on free ports, with their data in a fresh directory under /tmp (a real disk, so an
 *      fsync costs what it costs);
 *   2. baseline: a BullMQ Queue adds N ~330-byte jobs with 50 in flight while a Worker (concurrency
 *      50, trivial processor) consumes them; timed from the first add to the last completion, after
 *      --warmup untimed jobs (the gateway gets the same number of untimed reports first);
 *   3. builds the real gateway in this process (openRuntime, every worker stage, buildApp + listen);
 *   4. a load client in a worker thread (its own event loop, so it does not steal the gateway's)
 *      posts reports over keep-alive HTTP: (a) saturation, N with 50 in flight; (b) paced, a fixed
 *      rate for a duration. A report is "persisted" when its row is in `reports`: the client polls
 *      `SELECT … WHERE seq >= $low` every --poll-ms (low = the smallest sequence number not seen
 *      yet, so each poll returns only the few rows committed out of order), and takes the detection
 *      time in Node. Paced latencies are measured from each request's scheduled send time, so a
 *      client that falls behind shows up in the latency instead of hiding it;
 *   5. prints a table (and with --json one `BENCH_JSON {…}` line), stops everything and deletes the
 *      directory, also on error, Ctrl-C or the hard timeout (then it exits non-zero).
 *
 * LAPOR_* variables in the environment (e.g. LAPOR_QUEUE_INTAKE_CONCURRENCY) are passed to the
 * gateway, except the ones the benchmark sets itself.
 */
import http from 'node:http';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker as Thread, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../../config/load.ts';
import { TrackingIdCodec } from '../../src/core/tracking-id.ts';
import { buildApp } from '../../src/http/app.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { WORKER_NAMES, startWorkers, type WorkerName } from '../../workers/run.ts';
import { DEADLINES_QUEUE } from '../../src/queue/names.ts';
import { beginBench, benchEnv, describePostgres, describeRedis, numberOption, startBenchServices, TimeoutError, UsageError } from './harness.ts';
import { CpuMeter, threadSyscalls, fmtInt, fmtMs, fmtRate, sleep, summarize, table, until, type Summary } from './lib.ts';

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
  --stages LIST     worker stages to run, comma-separated (intake,verify,notify): leaving verify and notify
                    out shows what they cost the intake path (a diagnostic; the default runs all)
  --gate            before each measured phase, wait (≤ 30 s, within --timeout) until the host is idle
                    (< 0.25 busy cores over 1 s): on a shared box other work otherwise skews the figures`;

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
    inFlight: num('in-flight', values['in-flight'], 50, 1, 1_000),
    pacedMaxInFlight: num('paced-max-in-flight', values['paced-max-in-flight'], 500, 1, 10_000),
    pollMs: num('poll-ms', values['poll-ms'], 5, 1, 1_000),
    timeoutS: num('timeout', values.timeout, 120, 5, 3_600, false),
    pgFast: values['pg-fast'],
    json: values.json,
    gate: values.gate,
    stages: parseStages(values.stages),
    warmup: num('warmup', values.warmup, 300, 0, 100_000),
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
  url: string;
  databaseUrl: string;
  trackingKey: string;
  pollMs: number;
  maxSockets: number;
}

type RunSpec = { mode: 'saturation'; n: number; inFlight: number } | { mode: 'paced'; rate: number; durationS: number; maxInFlight: number };

type ToClient = { kind: 'run'; spec: RunSpec; deadline: number } | { kind: 'stop' };
type FromClient = { kind: 'ready' } | { kind: 'result'; result: RunResult } | { kind: 'stopped' } | { kind: 'fatal'; message: string };

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
  const target = new URL(init.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: init.maxSockets, maxFreeSockets: init.maxSockets });
  const codec = new TrackingIdCodec(Buffer.from(init.trackingKey, 'base64'));
  const db = new pg.Client({ connectionString: init.databaseUrl, application_name: 'bench-poller' });
  await db.connect();

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
        'SELECT seq::text AS seq, tracking_id FROM reports WHERE seq >= $1',
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
  async function run(spec: RunSpec, deadline: number): Promise<RunResult> {
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
      persistMs.push(seenAt - scheduled);
    };
    onPersisted = persistedAt;

    const fire = async (scheduled: number) => {
      const i = nextIndex++;
      const sentAt = performance.now();
      sent++;
      lastSent = sentAt;
      if (spec.mode === 'paced') lags.push(sentAt - scheduled);
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
      httpMs.push(at - scheduled);
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
      while (i < planned && Date.now() < deadline && !stopping) {
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
      run(message.spec, message.deadline)
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
  send({ kind: 'ready' });
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

  async ready(): Promise<void> {
    const m = await this.next(30_000);
    if (m.kind !== 'ready') throw new Error(`client thread: expected ready, got ${m.kind}`);
  }

  async run(spec: RunSpec, deadline: number): Promise<RunResult> {
    const answer = this.next(Math.max(0, deadline - Date.now()) + 10_000);
    this.thread.postMessage({ kind: 'run', spec, deadline } satisfies ToClient);
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

/** Samples the gateway's PostgreSQL pool every 10 ms and the inbound backlog every 100 ms. */
function sampleGateway(runtime: Runtime): () => Promise<GaugeSummary> {
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
      const waiting = await runtime.queues.inbound.getWaitingCount().catch(() => 0);
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

async function measured<T>(meter: CpuMeter, work: () => Promise<T>, runtime?: Runtime): Promise<{ value: T; phase: Phase }> {
  const stopGauges = runtime ? sampleGateway(runtime) : undefined;
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
    const services = await startBenchServices(teardown, log, { name: 'ingest', pgFast: options.pgFast });
    const { dir, redis, postgres } = services;
    report.dataDir = dir;
    report.filesystem = services.filesystem;
    say(`data in ${dir} (${report.filesystem}${report.filesystem === 'tmpfs' ? ': fsync costs nothing here!' : ', fsync hits the disk'})`);
    report.redis = await describeRedis(redis.url);
    report.postgres = await describePostgres(postgres.url);
    say(`redis ${report.redis.version} on ${redis.url}: appendonly ${report.redis.appendonly}, appendfsync ${report.redis.appendfsync}`);
    say(`postgres ${report.postgres.version} on port ${postgres.port}: fsync ${report.postgres.fsync}, synchronous_commit ${report.postgres.synchronousCommit}`);

    const meter = new CpuMeter({
      gatewayThread: CpuMeter.mainThreadOfSelf(),
      otherThreads: CpuMeter.otherThreadsOfSelf(),
      redis: CpuMeter.procStat(redis.child.pid),
      postgres: CpuMeter.procStat(postgres.child.pid, true),
    });

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
    const config = loadConfig({ ...benchDefaults, ...passed, ...ownVars });
    const runtime = await openRuntime(config, log);
    teardown.defer('runtime', () => runtime.close());
    const workers = await startWorkers(runtime, options.stages, runtime.connectWorker);
    teardown.defer('workers', () => workers.close());
    const app = await buildApp(runtime);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    teardown.defer('http', () => app.close());
    report.gateway = {
      url,
      intakeConcurrency: config.queue.intakeConcurrency,
      verifyConcurrency: 0,
      notifyConcurrency: config.queue.notifyConcurrency,
      workers: workers.workers.map((w) => w.name),
    };
    say(`gateway on ${url}: workers ${report.gateway.workers.join(', ')} (intake c=${config.queue.intakeConcurrency}, notify c=${config.queue.notifyConcurrency})`);

    // Downstream jobs (verify, notify) outlive the measured "persisted" moment: each run waits for
    // them, so the next one starts on an idle pipeline.
    const drained = async () => {
      const consumed = new Set(workers.workers.map((w) => w.name));
      // The deadline sweep's next run always waits as a delayed job: never "drained", and no backlog.
      const queues = runtime.queues.all().filter((q) => consumed.has(q.name) && q.name !== DEADLINES_QUEUE);
      const counts = await Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children')));
      return counts.every((c) => Object.values(c).every((v) => v === 0));
    };
    const drain = async () => {
      const start = performance.now();
      const ok = await until(drained, deadline, 20);
      return { ok, ms: performance.now() - start };
    };

    const client = new Client({
      role: 'bench-client',
      url,
      databaseUrl: postgres.url,
      trackingKey: ownVars.LAPOR_TRACKING_KEY,
      pollMs: options.pollMs,
      maxSockets: Math.max(options.inFlight, options.pacedMaxInFlight),
    });
    teardown.defer('client thread', () => client.stop());
    await client.ready();

    let warmedUp = 0;
    if (options.warmup > 0) {
      say(`warm-up: ${fmtInt(options.warmup)} reports, untimed…`);
      const warm = await client.run({ mode: 'saturation', n: options.warmup, inFlight: options.inFlight }, deadline);
      warmedUp = warm.created;
      if (warm.timedOut || !(await drain()).ok) throw new TimeoutError('warm-up');
    }

    // 4a. saturation
    await gate('saturation');
    say(`saturation: ${fmtInt(options.n)} reports, ${options.inFlight} in flight…`);
    const sat = await measured(meter, () => client.run({ mode: 'saturation', n: options.n, inFlight: options.inFlight }, deadline), runtime);
    report.saturation = digest(sat.value, sat.phase);
    const satDrain = await drain();
    if (satDrain.ok) report.saturation.drainAfterMs = satDrain.ms;
    say(`saturation: ${fmtRate(report.saturation.persistedPerSecond, ' reports/s')} persisted; downstream drained ${fmtMs(satDrain.ms)} later`);
    if (sat.value.timedOut || !satDrain.ok) throw new TimeoutError('saturation run');

    // 4b. paced
    await gate('paced');
    say(`paced: ${fmtInt(options.rate)}/s for ${options.durationS} s…`);
    const paced = await measured(meter, () =>
      client.run({ mode: 'paced', rate: options.rate, durationS: options.durationS, maxInFlight: options.pacedMaxInFlight }, deadline),
      runtime,
    );
    report.paced = digest(paced.value, paced.phase);
    const pacedDrain = await drain();
    if (pacedDrain.ok) report.paced.drainAfterMs = pacedDrain.ms;
    if (paced.value.timedOut || !pacedDrain.ok) throw new TimeoutError('paced run');

    // Cross-check: every created report is a row, and nothing went to the dead letters.
    const check = new pg.Client({ connectionString: postgres.url });
    await check.connect();
    try {
      const { rows } = await check.query<{ n: string }>('SELECT count(*)::text AS n FROM reports');
      report.rowsInPostgres = Number(rows[0]!.n);
    } finally {
      await check.end();
    }
    const failed = await Promise.all(runtime.queues.all().map((q) => q.getJobCounts('failed')));
    report.deadLetters = failed.reduce((sum, c) => sum + (c.failed ?? 0), 0);
    const created = warmedUp + sat.value.created + paced.value.created;
    if (report.rowsInPostgres !== created) {
      console.error(`mismatch: ${created} reports created over HTTP, ${report.rowsInPostgres} rows in PostgreSQL`);
      exitCode = 1;
    }
    const errors = { ...sat.value.errors };
    for (const [k, v] of Object.entries(paced.value.errors)) errors[k] = (errors[k] ?? 0) + v;
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
  gateway: { url: string; intakeConcurrency: number; verifyConcurrency: number; notifyConcurrency: number; workers: string[] };
  saturation: RunDigest;
  paced: RunDigest;
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
  if (report.gateway) out.push(`gateway: workers ${report.gateway.workers.join(', ')}; intake c=${report.gateway.intakeConcurrency}, verify c=${report.gateway.verifyConcurrency}, notify c=${report.gateway.notifyConcurrency} per channel, all in this process; load client in a worker thread`);
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
    out.push(`${name}: ${run.pollQueries} polls, ${run.pollRowsPerQuery.toFixed(1)} rows each; downstream (verify, notify) ${run.drainAfterMs === undefined ? 'not drained' : `drained ${fmtMs(run.drainAfterMs)} after`}${errs ? `; errors ${errs}` : ''}${run.timedOut ? '; TIMED OUT' : ''}`);
  }
  const cpuLine = (name: string, phase: Phase | undefined) => {
    if (!phase) return;
    const c = phase.cores;
    const f = (v: number | undefined) => (v ?? 0).toFixed(2);
    out.push(
      `cpu ${name.padEnd(10)} gateway thread ${f(c.gatewayThread)} (event loop busy ${(phase.elu * 100).toFixed(0)} %), other node threads ${f(c.otherThreads)}, redis ${f(c.redis)}, postgres ${f(c.postgres)}; ` +
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
  if (report.rowsInPostgres !== undefined) out.push(`check: ${fmtInt(report.rowsInPostgres)} rows in reports, ${report.deadLetters} dead letters`);
  out.push(`"until persisted" = scheduled send → poll saw the row (resolution ${options.pollMs} ms + one query); paced latencies count from each request's scheduled time`);
  console.log(out.join('\n'));
  if (options.json) {
    const slim = JSON.parse(JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))) as unknown;
    console.log(`BENCH_JSON ${JSON.stringify(slim)}`);
  }
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
