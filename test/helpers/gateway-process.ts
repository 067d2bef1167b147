import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/local/services.ts';

/**
 * `node bin/lapor.js start` as a real child process, for tests of what only a process shows: a
 * crash (SIGKILL), a graceful SIGTERM, a restart on the same data. The child gets only the
 * environment it is given (plus PATH and HOME), so nothing of the test runner leaks into it.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface GatewayProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  url: string;
  env: Record<string, string>;
  /** From spawn to the first 200 of GET /readyz. */
  startupMs: number;
  stdout: string[];
  stderr: string[];
  /** Everything the child wrote, for failure messages. */
  output(): string;
  /** Resolves when the child has exited (it may have already). */
  exited: Promise<Exit>;
  /** Sends `signal` and waits for the exit; SIGKILLs after `timeoutMs` (then rejects). */
  kill(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

const running = new Set<GatewayProcess>();

export interface StartOptions {
  /** Defaults to a free port; pass the previous one to restart on the same address. */
  port?: number;
  readyTimeoutMs?: number;
  /** false: return at once after the spawn, without waiting for /readyz (start-up failure tests). */
  waitReady?: boolean;
}

export async function startGateway(env: Record<string, string>, options: StartOptions = {}): Promise<GatewayProcess> {
  // A port found free can be taken by a parallel test before the child listens on it: with a port
  // of our own choosing, try another one when the child says exactly that.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGatewayOnce(env, options);
    } catch (err) {
      if (options.port !== undefined || attempt === 3 || !/Port \d+ on [\d.]+ is already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startGatewayOnce(env: Record<string, string>, options: StartOptions): Promise<GatewayProcess> {
  const port = options.port ?? (await freePort());
  const childEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
    LAPOR_HOST: '127.0.0.1',
    // With no SMSC configured, `start` runs the SMSC simulator: on free ports here, never 2775.
    LAPOR_SMPP_SIMULATOR_PORT: '0',
    // The same for the fake X API `start` runs without X credentials: never 2780.
    LAPOR_X_SIMULATOR_PORT: '0',
    LAPOR_TELEGRAM_SIMULATOR_PORT: '0',
    LAPOR_WHATSAPP_SIMULATOR_PORT: '0',
    ...env,
    LAPOR_PORT: String(port),
  };
  const started = Date.now();
  const child = spawn(process.execPath, ['bin/lapor.js', 'start'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => stdout.push(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const output = () => `--- stdout ---\n${stdout.join('')}\n--- stderr ---\n${stderr.join('')}`;
  const url = `http://127.0.0.1:${port}`;

  const gateway: GatewayProcess = {
    child,
    pid: child.pid!,
    port,
    url,
    env: { ...env },
    startupMs: 0,
    stdout,
    stderr,
    output,
    exited,
    async kill(signal = 'SIGTERM', timeoutMs = 20_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`gateway ${child.pid} did not exit within ${timeoutMs} ms of ${signal}\n${output()}`));
        }, timeoutMs);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
  running.add(gateway);
  void exited.then(() => running.delete(gateway));
  if (options.waitReady === false) return gateway;

  const deadline = started + (options.readyTimeoutMs ?? 30_000);
  let last = 'no answer';
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`gateway exited before it was ready (code ${child.exitCode}, signal ${child.signalCode})\n${output()}`);
    }
    if (Date.now() > deadline) {
      await gateway.kill('SIGKILL').catch(() => undefined);
      throw new Error(`gateway not ready after ${options.readyTimeoutMs ?? 30_000} ms (${last})\n${output()}`);
    }
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3_000) });
      if (res.status === 200) break;
      last = `readyz ${res.status}: ${await res.text()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  gateway.startupMs = Date.now() - started;
  return gateway;
}

/** SIGKILLs every gateway child still running (afterEach/afterAll safety net). */
export async function killAllGateways(): Promise<void> {
  await Promise.all([...running].map((g) => g.kill('SIGKILL', 5_000).catch(() => undefined)));
}

export interface CliRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<Exit>;
}

/**
 * `node bin/lapor.js <args>` as a second process beside a gateway, the way an operator runs it from
 * another terminal of the same checkout. Same environment rules as startGateway.
 */
export function runCli(args: string[], env: Record<string, string>, input?: string): CliRun {
  const child = spawn(process.execPath, ['bin/lapor.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', ...(process.env.HOME ? { HOME: process.env.HOME } : {}), ...env },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (input !== undefined) child.stdin!.end(input);
  const chunks: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => chunks.push(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => chunks.push(chunk));
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, output: () => chunks.join(''), exited };
}
