/**
 * Kannel as the peer of the SMPP benchmark (issue #3): `npm run bench:smpp -- --vs-kannel` pushes
 * the same flood through Debian's Kannel 1.4.5 that it pushes through our gateway, on the same SMSC
 * simulator, so the two figures come from one box in one run instead of from an old anchor.
 *
 * This module only runs Kannel; the caller starts the simulator ({ systemId: 'kannel', password:
 * 'pw' }), waits for the bind and drives the load. What runs, all on 127.0.0.1:
 *
 *   simulator ⇄ bearerbox (SMPP transceiver) ⇄ smsbox ─ GET /mo → HTTP sink (here, in this process)
 *                                                     ← text/plain reply, sent back as a submit_sm
 *
 * The config is /work/shared/anchors/kannel/kannel-reply.conf (the one behind performance.md §4b),
 * embedded below so the benchmark runs without /work/shared. Everything Kannel writes (config,
 * logs, the file store) goes to a fresh temp dir that stop() removes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createConnection, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';
import type { Teardown } from './harness.ts';
import { sleep } from './lib.ts';

export interface KannelOptions {
  /** Port of the SMSC simulator bearerbox binds to. */
  smscPort: number;
  /** 'file': bearerbox keeps every message in a file store (store-type = file), like a durable setup. */
  store: 'none' | 'file';
  teardown: Teardown;
  /** The HTTP service's answer to an MO, which smsbox sends back to the sender. Keep it to one SMS. */
  replyText?: (from: string, text: string) => string;
}

export interface Kannel {
  /** GET /mo requests the sink has answered so far (one per logical MO, parts combined). */
  sinkRequests: () => number;
  /** Stops smsbox, then bearerbox, closes the sink and removes `dir`. Safe to call more than once. */
  stop: () => Promise<void>;
  /** The temp dir with the config and Kannel's logs. */
  dir: string;
}

const BINARIES = ['bearerbox', 'smsbox'] as const;
type BoxName = (typeof BINARIES)[number];

const DEFAULT_REPLY = 'Laporan diterima. ID 1234567890. Cek: CEK 1234567890';
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/**
 * Verbatim copy of /work/shared/anchors/kannel/kannel-reply.conf. The #STORE# line becomes the store
 * options (or nothing), the @…@ placeholders the temp dir and ports.
 */
const TEMPLATE = `# Kannel 1.4.5 (Debian bookworm package) MO + REPLY probe for a side-by-side benchmark, loopback only.
# TEMPLATE: replace @DIR@ @SMSC_PORT@ @SINK_PORT@ @ADMIN_PORT@ @BOX_PORT@
# @SENDSMS_PORT@ and the #STORE# line (store-type none or file) before starting the boxes.
# Same as kannel-mo.conf (bearerbox = SMPP transceiver ESME to an SMSC simulator, smsbox -> get-url ->
# an HTTP service, log-level 3 with both access logs on) except that the HTTP response body is sent back
# to the MO's sender as the reply SMS:
#   max-messages = 1   (kannel-mo.conf has 0 = never reply; 1 = at most one SMS, no splitting)
#   omit-empty = true  (an empty body sends nothing; the HTTP service should always answer text)
#   accept-x-kannel-headers = false (default; the reply needs no X-Kannel-* headers: smsbox sends it
#                        from the MO's receiver, 1708, to the MO's sender, via the only SMSC)
# The service answers Content-Type text/plain, which smsbox takes verbatim as the reply text.
group = core
admin-port = @ADMIN_PORT@
admin-password = probe
admin-allow-ip = "127.0.0.1"
admin-deny-ip = "*.*.*.*"
smsbox-port = @BOX_PORT@
box-allow-ip = "127.0.0.1"
box-deny-ip = "*.*.*.*"
log-file = "@DIR@/bearerbox.log"
log-level = 3
access-log = "@DIR@/access.log"
sms-incoming-queue-limit = -1
sms-combine-concatenated-mo = true
#STORE#

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = @SMSC_PORT@
transceiver-mode = true
smsc-username = kannel
smsc-password = pw
system-type = ""
interface-version = 34
max-pending-submits = 10
reconnect-delay = 2
enquire-link-interval = 60
log-level = 3

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = @BOX_PORT@
sendsms-port = @SENDSMS_PORT@
log-file = "@DIR@/smsbox.log"
log-level = 3
access-log = "@DIR@/smsbox-access.log"
max-pending-requests = 512
mo-recode = true

group = sms-service
keyword = default
catch-all = true
get-url = "http://127.0.0.1:@SINK_PORT@/mo?from=%p&to=%P&coding=%c&text=%a"
max-messages = 1
omit-empty = true
accept-x-kannel-headers = false
`;

// ── finding and installing Kannel ──────────────────────────────────────────────────────────────

/** Full path of an executable, looked up in PATH and in the sbin dirs Debian puts Kannel in. */
function findExecutable(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** null when bearerbox and smsbox are both installed; otherwise a one-line reason. */
export async function kannelAvailable(): Promise<string | null> {
  const missing = BINARIES.filter((name) => findExecutable(name) === null);
  if (missing.length === 0) return null;
  return `Kannel is not installed (${missing.join(' and ')} not found in PATH or /usr/sbin)`;
}

interface CommandResult {
  code: number | null;
  output: string;
}

function runCommand(command: string, args: string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => (output += chunk.toString('utf8'));
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (error) => resolve({ code: null, output: error.message }));
    child.on('close', (code) => resolve({ code, output }));
  });
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/** apt-get's way of saying its package lists are missing or too old to know the package. */
function needsAptUpdate(output: string): boolean {
  return /Unable to locate package|has no installation candidate|Failed to fetch|404\s+Not Found/i.test(output);
}

/**
 * Makes sure bearerbox and smsbox exist: as root with apt-get, installs Debian's `kannel` package
 * (running `apt-get update` first only if the install fails for lack of package lists); otherwise
 * throws an Error saying what to install.
 */
export async function ensureKannel(say: (line: string) => void): Promise<void> {
  const reason = await kannelAvailable();
  if (reason === null) return;
  const aptGet = findExecutable('apt-get');
  if (process.getuid?.() !== 0 || aptGet === null) {
    throw new Error(`${reason}; install Debian's kannel package (apt-get install kannel, as root) or put Kannel 1.4.5's bearerbox and smsbox in PATH`);
  }
  const install = ['install', '-y', '--no-install-recommends', 'kannel'];
  say('installing Kannel: apt-get install -y --no-install-recommends kannel…');
  let result = await runCommand(aptGet, install);
  if (result.code !== 0 && needsAptUpdate(result.output)) {
    say('apt-get has no usable package lists; running apt-get update, then installing again…');
    const update = await runCommand(aptGet, ['update']);
    if (update.code !== 0) throw new Error(`apt-get update failed (exit ${update.code}):\n${lastLines(update.output, 10)}`);
    result = await runCommand(aptGet, install);
  }
  if (result.code !== 0) throw new Error(`apt-get install kannel failed (exit ${result.code}):\n${lastLines(result.output, 10)}`);
  const after = await kannelAvailable();
  if (after !== null) throw new Error(`apt-get installed kannel, but: ${after}`);
  say('Kannel installed');
}

// ── the config ─────────────────────────────────────────────────────────────────────────────────

interface Ports {
  smsc: number;
  sink: number;
  admin: number;
  box: number;
  sendsms: number;
}

/** The store options of the core group (Kannel 1.4.5 user guide, "Core configuration"). */
function storeLines(store: KannelOptions['store'], dir: string): string {
  if (store === 'none') return '';
  return `store-type = file\nstore-location = "${join(dir, 'store')}"`;
}

function renderConfig(dir: string, ports: Ports, store: KannelOptions['store']): string {
  const rendered = TEMPLATE.replace(/^#STORE#$/m, storeLines(store, dir))
    .replaceAll('@DIR@', dir)
    .replaceAll('@SMSC_PORT@', String(ports.smsc))
    .replaceAll('@SINK_PORT@', String(ports.sink))
    .replaceAll('@ADMIN_PORT@', String(ports.admin))
    .replaceAll('@BOX_PORT@', String(ports.box))
    .replaceAll('@SENDSMS_PORT@', String(ports.sendsms));
  const left = /@[A-Z_]+@/.exec(rendered);
  if (left) throw new Error(`kannel config: placeholder ${left[0]} was not filled in`);
  return rendered;
}

// ── ports and the HTTP sink ────────────────────────────────────────────────────────────────────

/** `n` distinct loopback ports that were free a moment ago (all listened on at once, then closed). */
async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createTcpServer());
  const ports = await Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
        }),
    ),
  );
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

interface Sink {
  port: number;
  requests: () => number;
  close: () => Promise<void>;
}

/** The "HTTP service" smsbox calls for every MO: answers GET /mo with the reply text, counting calls. */
async function startSink(replyText: (from: string, text: string) => string): Promise<Sink> {
  let requests = 0;
  const server: HttpServer = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/mo') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    requests++;
    const body = replyText(url.searchParams.get('from') ?? '', url.searchParams.get('text') ?? '');
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) }).end(body);
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { port, requests: () => requests, close };
}

// ── the two boxes ──────────────────────────────────────────────────────────────────────────────

interface Box {
  name: BoxName;
  child: ChildProcess;
  /** Where the box's stdout and stderr go. */
  stdioFile: string;
  /** The box's own log-file from the config. */
  logFile: string;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Starts one box with its stdio to `<dir>/<name>.out`. `-v 3` keeps its console at errors only:
 * the default is debug, which logs every message and would cost Kannel much of its CPU.
 */
function spawnBox(name: BoxName, config: string, dir: string): Box {
  const binary = findExecutable(name);
  if (binary === null) throw new Error(`${name} not found in PATH or /usr/sbin`);
  const stdioFile = join(dir, `${name}.out`);
  const fd = openSync(stdioFile, 'a');
  try {
    const child = spawn(binary, ['-v', '3', config], { cwd: dir, stdio: ['ignore', fd, fd] });
    child.on('error', () => undefined); // a spawn failure shows up as an early exit
    return { name, child, stdioFile, logFile: join(dir, `${name}.log`) };
  } finally {
    closeSync(fd);
  }
}

/** A frame of the backtrace Kannel prints after a PANIC, e.g. `PANIC: smsbox(main+0xdce) [0x5638…]`. */
const BACKTRACE_FRAME = /PANIC: \S+\(.*\) \[0x[0-9a-f]+\]$/;

/** The last lines of a log, without backtrace frames (they would push the actual error out). */
function tailOf(file: string, n = 10): string {
  try {
    const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() && !BACKTRACE_FRAME.test(line));
    return lines.slice(-n).join('\n');
  } catch {
    return '';
  }
}

/** Why a box stopped: its exit, with the tail of its console output (or of its log-file). */
function exitReport(box: Box): string {
  const { exitCode, signalCode } = box.child;
  const how = signalCode ? `killed by ${signalCode}` : `exited with code ${exitCode}`;
  const tail = tailOf(box.stdioFile) || tailOf(box.logFile);
  return `${box.name} ${how} during start-up${tail ? `; last lines of its log:\n${tail}` : ' (its log is empty)'}`;
}

function acceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => (socket.destroy(), resolve(false)));
  });
}

/** Waits until `port` accepts TCP; throws if the box exits first or START_TIMEOUT_MS passes. */
async function waitForListening(box: Box, port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (hasExited(box.child)) throw new Error(exitReport(box));
    if (await acceptsTcp(port)) return;
    await sleep(50);
  }
  throw new Error(`${box.name} did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s; see ${box.logFile}`);
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => (child.off('exit', onExit), resolve(false)), timeoutMs);
    function onExit() {
      clearTimeout(timer);
      resolve(true);
    }
    child.once('exit', onExit);
  });
}

/** SIGTERM, up to STOP_TIMEOUT_MS for Kannel's own shutdown, then SIGKILL. */
async function stopBox(box: Box): Promise<void> {
  if (hasExited(box.child)) return;
  box.child.kill('SIGTERM');
  if (await waitForExit(box.child, STOP_TIMEOUT_MS)) return;
  box.child.kill('SIGKILL');
  await waitForExit(box.child, STOP_TIMEOUT_MS);
}

// ── start and stop ─────────────────────────────────────────────────────────────────────────────

/**
 * Starts the sink, bearerbox and smsbox. Resolves once bearerbox's box port and smsbox's sendsms
 * port accept TCP; the SMPP bind happens on its own afterwards (the caller waits for it on the
 * simulator). Rejects, after cleaning up, when a box exits during start-up.
 */
export async function startKannel(options: KannelOptions): Promise<Kannel> {
  const dir = mkdtempSync('/tmp/lapor-bench-kannel-');
  const boxes: Box[] = [];
  let sink: Sink | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // The reverse of start-up: smsbox (bearerbox's client) first, then bearerbox.
      for (const box of [...boxes].reverse()) await stopBox(box);
      await sink?.close();
      rmSync(dir, { recursive: true, force: true });
    })());
  options.teardown.track(undefined, dir);
  options.teardown.defer('kannel', stop);

  /** Spawns a box and waits for its port, unless stop() (Ctrl-C) came first. */
  const startBox = async (name: BoxName, config: string, port: number) => {
    if (stopping) throw new Error('kannel: stopped during start-up');
    const box = spawnBox(name, config, dir);
    boxes.push(box);
    options.teardown.track(box.child);
    await waitForListening(box, port);
  };

  try {
    sink = await startSink(options.replyText ?? (() => DEFAULT_REPLY));
    const [admin, box, sendsms] = (await freePorts(3)) as [number, number, number];
    const ports: Ports = { smsc: options.smscPort, sink: sink.port, admin, box, sendsms };
    const config = join(dir, 'kannel.conf');
    writeFileSync(config, renderConfig(dir, ports, options.store));
    // smsbox connects to bearerbox's box port at start and gives up if nothing listens there yet.
    await startBox('bearerbox', config, ports.box);
    await startBox('smsbox', config, ports.sendsms);
  } catch (error) {
    await stop();
    await sink?.close(); // in case stop() ran before the sink existed
    throw error;
  }
  return { sinkRequests: sink.requests, stop, dir };
}
