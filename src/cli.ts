import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, loadRules } from '../config/load.ts';
import type { RulesConfig } from '../config/rules.ts';
import type { Config } from '../config/schema.ts';
import { WORKER_NAMES, startWorkers, type WorkerName } from '../workers/run.ts';
import { telegramConfigured } from '../adapters/telegram/config.ts';
import { whatsappConfigured } from '../adapters/whatsapp/config.ts';
import { xConfigured } from '../adapters/x/config.ts';
import { smscAccounts } from '../adapters/sms/config.ts';
import { emailConfigured } from '../adapters/email/config.ts';
import { CHANNEL_IDS, type ChannelId } from './core/inbound.ts';

/** Channels whose adapter holds an upstream link of its own. */
const PULL_CHANNELS = ['sms', 'x', 'email', 'telegram', 'whatsapp'] as const satisfies readonly ChannelId[];
/** Channels whose provider also pushes to /webhooks/<channel>: the API process takes those deliveries. */
const WEBHOOK_CHANNELS = ['x', 'telegram', 'whatsapp'] as const satisfies readonly ChannelId[];
import { listDeadLetters, replayDeadLetters } from './queue/dlq.ts';
import { createLogger, wantsPrettyLogs } from './log.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import { checkDataDirWritable, checkPortFree } from './local/preflight.ts';
import { StartupError } from './local/services.ts';
import { UnsafeRedisError } from './queue/redis.ts';
import { ROLES } from './core/roles.ts';
import { runUserCommand } from './users-cli.ts';
import { sweepDeadlines } from './store/clocks.ts';
import { sweepOutbox } from './store/cases.ts';
import { startHttp } from './http/server.ts';
import { migrate } from './store/migrate.ts';

const USAGE = {
  main: `lapor — the LAPOR! intake gateway

Usage: lapor <command> [options]

Commands:
  start                 every role in one process: API, workers, adapters
  api                   the HTTP API only
  worker <name>         one worker stage: ${WORKER_NAMES.join(', ')} (repeatable: worker intake notify)
  adapter <channel>     one channel adapter: ${CHANNEL_IDS.join(', ')}
  migrate               apply database migrations and exit
  dlq list [queue]      list dead letters (jobs that failed for good)
  dlq replay <queue> [jobId…|--all]
                        put dead letters back in their queue
  deadlines sweep [--at ISO-TIME]
                        record breached deadlines and auto-close answered reports now
  user add --email E --role R [--agency SLUG] [--unit SLUG] [--password-stdin]
  user list | user disable --email E
                        operator accounts (roles: ${ROLES.join(', ')})

Configuration comes from LAPOR_* environment variables (see README.md); nothing is needed locally.
Run 'lapor <command> --help' for more.`,
  start: `lapor start — API, every worker and every configured adapter in one process.
With no LAPOR_DATABASE_URL / LAPOR_REDIS_URL it starts PostgreSQL and redis-server under LAPOR_DATA_DIR (./data).`,
  api: `lapor api — serve the HTTP API (LAPOR_HOST:LAPOR_PORT). Scale out by starting more.`,
  worker: `lapor worker <name…> — run worker stages (${WORKER_NAMES.join(', ')}). Scale out by starting more.`,
  adapter: `lapor adapter <channel> — run one channel adapter (${CHANNEL_IDS.join(', ')}).`,
  migrate: `lapor migrate — apply pending database migrations (also done by every role at start).`,
  dlq: `lapor dlq list [queue] | lapor dlq replay <queue> [jobId…|--all] — inspect and replay dead letters.`,
  deadlines: `lapor deadlines sweep [--at ISO-TIME]
    One pass of the deadline worker now: records each verification and follow-up past due as breached
    (once), and closes each answered report whose reporter has not replied within the auto-close
    period, telling the reporter. --at runs it as of that time, its events dated then (for tests and
    drills; refused when LAPOR_ENV=production). Exits 0 whether or not it found work.`,
  user: `lapor user add --email E --role R [--agency SLUG] [--unit SLUG] [--password-stdin]
    Adds an account. Roles: super_admin, agency_admin (--agency), liaison (--unit), operator.
    --password-stdin reads the password from one line of standard input (its newline stripped);
    without it a password is generated and printed once.
lapor user list                 every account: email, role, agency or unit, disabled or not
lapor user disable --email E    disables an account and ends its sessions`,
} as const;

type Command = keyof typeof USAGE;

export async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    options: {
      help: { type: 'boolean', short: 'h' },
      all: { type: 'boolean' },
      email: { type: 'string' },
      role: { type: 'string' },
      agency: { type: 'string' },
      unit: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      at: { type: 'string' },
    },
  });
  const [command, ...rest] = positionals;
  if (!command || !(command in USAGE) || command === 'main') {
    process.stdout.write(`${USAGE.main}\n`);
    return command && !values.help ? 64 : 0;
  }
  const name = command as Exclude<Command, 'main'>;
  if (values.help) {
    process.stdout.write(`${USAGE[name]}\n`);
    return 0;
  }

  let config: Config;
  let rules: RulesConfig;
  try {
    config = loadConfig();
    rules = loadRules(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: config.logLevel, base: { role: name }, pretty: wantsPrettyLogs(config.logFormat) });

  try {
    switch (name) {
      case 'migrate':
        return await runMigrate(config, log, rules);
      case 'dlq':
        return await runDlq(config, log, rules, rest, Boolean(values.all));
      case 'deadlines':
        return await runDeadlines(config, log, rules, rest[0], values.at);
      case 'user':
        return await runUser(config, log, rules, rest[0], values);
      case 'start':
        return await serve(config, log, rules, { http: true, workers: [...WORKER_NAMES], channels: [...PULL_CHANNELS] });
      case 'api':
        return await serve(config, log, rules, { http: true, workers: [], channels: [], webhooks: [...WEBHOOK_CHANNELS] });
      case 'worker': {
        const unknown = rest.filter((w) => !(WORKER_NAMES as readonly string[]).includes(w));
        if (!rest.length || unknown.length) {
          process.stderr.write(`unknown worker ${unknown.join(', ') || '(none given)'}; one of: ${WORKER_NAMES.join(', ')}\n`);
          return 64;
        }
        return await serve(config, log, rules, { http: false, workers: rest as WorkerName[], channels: [] });
      }
      case 'adapter': {
        const channel = rest[0];
        if (!channel || !(CHANNEL_IDS as readonly string[]).includes(channel)) {
          process.stderr.write(`unknown channel ${channel ?? '(none given)'}; one of: ${CHANNEL_IDS.join(', ')}\n`);
          return 64;
        }
        // The web channel's inbound side is the API.
        if (channel === 'web') return await serve(config, log, rules, { http: true, workers: [], channels: [], webhooks: [...WEBHOOK_CHANNELS] });
        if (!(PULL_CHANNELS as readonly string[]).includes(channel)) {
          process.stderr.write(`the ${channel} adapter is not built yet\n`);
          return 69;
        }
        // A pull channel's process also sends its replies: only it holds the link.
        return await serve(config, log, rules, { http: false, workers: ['notify'], channels: [channel as ChannelId] });
      }
    }
  } catch (err) {
    // The sentence that says what to do comes first on the terminal; the log line keeps the details.
    const explained = explainStartupFailure(err, config);
    if (explained) {
      process.stderr.write(`${explained.message}\n`);
      log.fatal({ err: { message: explained.message, code: explained.code } }, 'cannot start');
      return 78;
    }
    log.fatal({ err }, 'cannot start');
    return 1;
  }
}

/** A failure a newcomer can fix, as one plain sentence; undefined for the rest (a bug, an outage). */
function explainStartupFailure(err: unknown, config: Config): { message: string; code: string } | undefined {
  if (err instanceof StartupError || err instanceof UnsafeRedisError) return { message: err.message, code: err.code };
  const { code, syscall } = err as NodeJS.ErrnoException;
  if (code === 'EADDRINUSE' && syscall === 'listen') {
    return { message: `Port ${config.port} is already in use (another program, or another npm start). Start on another port: PORT=${config.port + 1} npm start`, code };
  }
  return undefined;
}

async function runMigrate(config: Config, log: Logger, rules: RulesConfig): Promise<number> {
  await preflight(config, false);
  if (config.databaseUrl) {
    await migrate(config.databaseUrl, log);
    return 0;
  }
  const runtime = await openRuntime(config, log, { rules, role: 'migrate' });
  await runtime.close();
  return 0;
}

async function runDeadlines(config: Config, log: Logger, rules: RulesConfig, action: string | undefined, at: string | boolean | undefined): Promise<number> {
  if (action !== 'sweep') {
    process.stderr.write(`${USAGE.deadlines}\n`);
    return 64;
  }
  let asOf = new Date();
  if (typeof at === 'string') {
    if (config.env === 'production') {
      process.stderr.write('--at is refused in production: it would date events in the past or the future\n');
      return 64;
    }
    asOf = new Date(at);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(at) || Number.isNaN(asOf.getTime())) {
      process.stderr.write(`--at takes an ISO time such as 2026-12-24T09:00:00+07:00, not ${at}\n`);
      return 64;
    }
  }
  await preflight(config, false);
  const runtime = await openRuntime(config, log, { rules, role: 'deadlines' });
  try {
    const result = await sweepDeadlines(runtime.db, asOf, (effects) => runtime.queues.addEffects(effects));
    const swept = await sweepOutbox(runtime.db, (effects) => runtime.queues.addEffects(effects), 0);
    process.stdout.write(`as of ${asOf.toISOString()}: ${result.breaches} deadline(s) breached, ${result.autoClosed.length} report(s) closed automatically${swept ? `, ${swept} notification batch(es) published` : ''}\n`);
    return 0;
  } finally {
    await runtime.close();
  }
}

async function runUser(config: Config, log: Logger, rules: RulesConfig, action: string | undefined, values: Record<string, string | boolean | undefined>): Promise<number> {
  await preflight(config, false);
  const runtime = await openRuntime(config, log, { rules, role: 'user' });
  try {
    return await runUserCommand(runtime.db, action, values, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
  } finally {
    await runtime.close();
  }
}

async function runDlq(config: Config, log: Logger, rules: RulesConfig, args: string[], all: boolean): Promise<number> {
  await preflight(config, false);
  const runtime = await openRuntime(config, log, { migrate: false, rules, role: 'dlq' });
  try {
    const [action, queue, ...ids] = args;
    if (action === 'list') {
      const letters = await listDeadLetters(runtime.queues, queue);
      process.stdout.write(letters.length ? `${letters.map((l) => `${l.queue}\t${l.id}\t${l.failedAt}\t${l.attempts}\t${l.reason}`).join('\n')}\n` : 'no dead letters\n');
      return 0;
    }
    if (action === 'replay' && queue && (all || ids.length)) {
      const replayed = await replayDeadLetters(runtime.queues, queue, all ? 'all' : ids);
      process.stdout.write(`replayed ${replayed} job(s) in ${queue}\n`);
      return 0;
    }
    process.stderr.write(`${USAGE.dlq}\n`);
    return 64;
  } finally {
    await runtime.close();
  }
}

/**
 * Runs until SIGTERM/SIGINT, then stops taking work, finishes what is in flight, and exits. The
 * signal handlers come first, so a signal during start-up, or a failing start-up step, still stops
 * everything already started (local redis-server and PostgreSQL included) in reverse order.
 */
/** `auto`: a newcomer's `npm start` with no SMSC gets a simulated one to text from a second terminal. */
function wantsSimulator(config: Config, roles: Roles): boolean {
  if (config.smpp.simulator === 'on') return true;
  return config.smpp.simulator === 'auto' && roles.http && roles.workers.length > 0 && smscAccounts(config.smpp).length === 0;
}

async function startSimulator(config: Config, log: Logger): Promise<{ config: Config; stop: () => Promise<void> }> {
  // Loaded only here: the simulator is a developer tool, not part of a production role.
  const { SmscSimulator } = await import('../scripts/smsc/simulator.ts');
  const { startControl } = await import('../scripts/smsc/control.ts');
  const sim = await SmscSimulator.start({ port: config.smpp.simulatorPort, systemId: 'lapor', password: 'lapor' });
  const control = await startControl(sim, config.smpp.simulatorPort === 0 ? 0 : config.smpp.simulatorPort + 1);
  log.info(
    { smsc: `127.0.0.1:${sim.port}`, control: `http://127.0.0.1:${control.port}`, try: `npm run sim:smsc -- send --control ${control.port} --from +6281234567890 "LAPOR jalan rusak di depan SDN 3"` },
    'no SMSC configured: started the SMSC simulator on loopback',
  );
  const url = `smpp://lapor:lapor@127.0.0.1:${sim.port}?id=simulator&tps=500&window=50`;
  return {
    config: { ...config, smpp: { ...config.smpp, urls: [config.smpp.urls, url].filter(Boolean).join(',') } },
    stop: async () => {
      await control.close();
      await sim.close();
    },
  };
}

/** A local provider's port already taken: one sentence naming the variables that move or switch it off. */
function portTaken(what: string, port: number, variable: string): (err: unknown) => never {
  return (err) => {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw new StartupError(`Port ${port} of ${what} is already in use (another npm start?). Use another: ${variable}_PORT=${port + 10}, or ${variable}=off.`);
  };
}

/** `auto`: with no X credentials, `npm start` polls a fake X API a second terminal can tweet at. */
function wantsXSimulator(config: Config, roles: Roles): boolean {
  if (config.x.simulator === 'on') return true;
  return config.x.simulator === 'auto' && roles.http && roles.workers.length > 0 && !xConfigured(config.x);
}

async function startXSimulator(config: Config, log: Logger): Promise<{ config: Config; stop: () => Promise<void> }> {
  const { FakeXApi } = await import('../scripts/x/fake-api.ts');
  const fake = await FakeXApi.start({ port: config.x.simulatorPort }).catch(portTaken('the fake X API', config.x.simulatorPort, 'LAPOR_X_SIMULATOR'));
  log.info(
    { api: fake.url, try: `npm run sim:x -- tweet${fake.port === 2780 ? '' : ` --port ${fake.port}`} --from @warga "@${fake.account.username} #lapor lampu jalan mati di Jl. Melati"` },
    'no X credentials: started the fake X API on loopback',
  );
  return {
    config: {
      ...config,
      x: {
        ...config.x,
        apiBase: fake.url,
        bearerToken: fake.credentials.bearerToken,
        appKey: fake.credentials.consumerKey,
        appSecret: fake.credentials.consumerSecret,
        accessToken: fake.credentials.accessToken,
        accessSecret: fake.credentials.accessSecret,
        account: fake.account.username,
        // A newcomer's tweet is answered in seconds, not at the production interval.
        pollIntervalMs: Math.min(config.x.pollIntervalMs, 2_000),
      },
    },
    stop: () => fake.stop(),
  };
}

/** `auto`: with no bot token, `npm start` long-polls a fake Bot API a second terminal can chat through. */
function wantsTelegramSimulator(config: Config, roles: Roles): boolean {
  if (config.telegram.simulator === 'on') return true;
  return config.telegram.simulator === 'auto' && roles.http && roles.workers.length > 0 && !telegramConfigured(config.telegram);
}

async function startTelegramSimulator(config: Config, log: Logger): Promise<{ config: Config; stop: () => Promise<void> }> {
  const { FakeTelegramApi } = await import('../scripts/telegram/fake-api.ts');
  const fake = await FakeTelegramApi.start({ port: config.telegram.simulatorPort }).catch(portTaken('the fake Telegram API', config.telegram.simulatorPort, 'LAPOR_TELEGRAM_SIMULATOR'));
  log.info(
    { api: fake.url, try: `npm run sim:telegram -- say${fake.port === 2781 ? '' : ` --port ${fake.port}`} --from @warga_kota "lampu jalan mati di Jl. Melati"` },
    'no Telegram bot token: started the fake Telegram Bot API on loopback',
  );
  return {
    config: { ...config, telegram: { ...config.telegram, token: fake.token, apiRoot: fake.url, mode: 'polling', pollTimeoutSeconds: Math.min(config.telegram.pollTimeoutSeconds, 10) } },
    stop: () => fake.stop(),
  };
}

/** `auto`: with no WhatsApp token, `npm start` runs a fake Cloud API that delivers to its own webhook. */
function wantsWhatsAppSimulator(config: Config, roles: Roles): boolean {
  if (config.whatsapp.simulator === 'on') return true;
  return config.whatsapp.simulator === 'auto' && roles.http && roles.workers.length > 0 && !whatsappConfigured(config.whatsapp);
}

async function startWhatsAppSimulator(config: Config, log: Logger): Promise<{ config: Config; stop: () => Promise<void> }> {
  const { FakeWhatsAppApi } = await import('../scripts/whatsapp/fake-api.ts');
  const secrets = { token: 'fake-wa-token', phoneNumberId: '106540352242922', appSecret: 'fake-wa-app-secret', verifyToken: 'fake-verify-token' };
  const fake = await FakeWhatsAppApi.start({ port: config.whatsapp.simulatorPort, webhookUrl: `http://${config.host}:${config.port}/webhooks/whatsapp`, ...secrets }).catch(
    portTaken('the fake WhatsApp API', config.whatsapp.simulatorPort, 'LAPOR_WHATSAPP_SIMULATOR'),
  );
  log.info(
    { api: fake.url, try: `npm run sim:whatsapp -- say${fake.port === 2782 ? '' : ` --port ${fake.port}`} --from 6281234567890 "lampu jalan mati di Jl. Melati"` },
    'no WhatsApp token: started the fake WhatsApp Cloud API on loopback',
  );
  return {
    config: { ...config, whatsapp: { ...config.whatsapp, token: secrets.token, phoneId: secrets.phoneNumberId, appSecret: secrets.appSecret, verifyToken: secrets.verifyToken, apiBase: fake.graphUrl } },
    stop: () => fake.stop(),
  };
}

/** What would otherwise fail half-way through start-up, checked before anything starts. */
async function preflight(config: Config, http: boolean): Promise<void> {
  if (!config.redisUrl || !config.databaseUrl || !config.dataKey || !config.trackingKey) checkDataDirWritable(config.dataDir);
  if (http) await checkPortFree(config.host, config.port);
}

interface Roles {
  http: boolean;
  workers: WorkerName[];
  /** Pull channels whose links (SMPP binds, the X poller) this process holds. */
  channels: ChannelId[];
  /** Channels whose webhooks this process answers without holding their links (the API). */
  webhooks?: ChannelId[];
}

async function serve(initialConfig: Config, log: Logger, rules: RulesConfig, roles: Roles): Promise<number> {
  let config = initialConfig;
  let signalled: NodeJS.Signals | undefined;
  let shuttingDown = false;
  let wake: () => void = () => undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal during shutdown; exiting at once');
      process.exit(130);
    }
    signalled ??= signal;
    wake();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    // Reverse order of start-up: stop accepting HTTP, finish in-flight jobs, then close the stores.
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => log.warn({ err }, 'error while stopping'));
  };
  try {
    await preflight(config, roles.http);
    if (roles.channels.includes('sms') && wantsSimulator(config, roles)) {
      const simulated = await startSimulator(config, log);
      stops.push(simulated.stop);
      config = simulated.config;
    }
    if (roles.channels.includes('x') && wantsXSimulator(config, roles)) {
      const simulated = await startXSimulator(config, log);
      stops.push(simulated.stop);
      config = simulated.config;
    }
    if (roles.channels.includes('telegram') && wantsTelegramSimulator(config, roles)) {
      const simulated = await startTelegramSimulator(config, log);
      stops.push(simulated.stop);
      config = simulated.config;
    }
    if (roles.channels.includes('whatsapp') && wantsWhatsAppSimulator(config, roles)) {
      const simulated = await startWhatsAppSimulator(config, log);
      stops.push(simulated.stop);
      config = simulated.config;
    }
    if (roles.channels.includes('email') && !emailConfigured(config)) {
      log.info({ try: 'npm run sim:mail (in another terminal), then start again with the LAPOR_IMAP_URL, LAPOR_SMTP_URL and LAPOR_MAIL_FROM it prints' }, 'email is off: no LAPOR_IMAP_URL');
    }
    const channels = [...new Set([...roles.channels, ...(roles.webhooks ?? [])])];
    const runtime: Runtime = await openRuntime(config, log, { rules, channels, role: String(log.bindings().role ?? 'lapor') });
    stops.push(() => runtime.close());
    for (const adapter of runtime.adapters.values()) {
      // A channel only taking webhooks here is not started: its links are held elsewhere.
      if (signalled || !adapter.start || !(roles.channels as string[]).concat('web').includes(adapter.id)) continue;
      await adapter.start();
      stops.push(() => adapter.stop?.() ?? Promise.resolve());
    }
    if (!signalled && roles.workers.length) {
      const workers = await startWorkers(runtime, roles.workers, runtime.connectWorker);
      stops.push(() => workers.close());
    }
    if (!signalled && roles.http) {
      const http = await startHttp(runtime);
      stops.push(() => http.close());
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  if (!signalled) {
    log.info({ roles }, 'lapor gateway running');
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
  }
  shuttingDown = true;
  log.info({ signal: signalled }, 'shutting down');
  const deadline = setTimeout(() => {
    log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown deadline passed; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs);
  deadline.unref();
  await stopAll();
  clearTimeout(deadline);
  log.info('stopped');
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
