import { createHash, createHmac, randomBytes, randomInt } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { WhatsAppSettingsSchema } from '../../adapters/whatsapp/config.ts';
import { createWhatsAppAdapter, type WhatsAppAdapter } from '../../adapters/whatsapp/index.ts';
import type { PaceOptions } from '../../adapters/whatsapp/pace.ts';
import { FakeWhatsAppApi, signature, type FakeWhatsAppOptions } from '../../scripts/whatsapp/fake-api.ts';
import type { DeliverySink, OutboundMessage, WebhookAnswer } from '../../src/core/channel.ts';
import { normalizeAddress, type InboundMessageInput } from '../../src/core/inbound.ts';
import { DataKeys } from '../../src/core/crypto.ts';
import { createLogger } from '../../src/log.ts';
import { createTestEnv, eventually, type TestEnv } from './env.ts';

/**
 * A gateway with the WhatsApp channel and a fake Cloud API of its own (scripts/whatsapp/fake-api.ts)
 * delivering to the gateway's /webhooks/whatsapp over HTTP, for a test file; fresh citizens; Meta's
 * signed POSTs made by hand; a relay that hands every POST to several gateways at once; and the
 * corpus's existing reports put into a gateway's database.
 */

export const WA_SECRETS = { token: 'wa-test-token', appSecret: 'wa-test-secret', verifyToken: 'wa-verify' };

export interface WhatsAppGateway {
  fake: FakeWhatsAppApi;
  env: TestEnv;
  /** The gateway's webhook URL. */
  url: string;
  close(): Promise<void>;
}

/**
 * `env` adds or overrides settings (LAPOR_QUEUE_PREFIX, LAPOR_DATABASE_URL and the keys to share one
 * store between gateways). `webhook: false` leaves the fake's webhook unset.
 */
export async function whatsappGateway(
  env: Record<string, string> = {},
  fakeOptions: FakeWhatsAppOptions = {},
  options: { fake?: FakeWhatsAppApi; webhook?: boolean } = {},
): Promise<WhatsAppGateway> {
  const fake = options.fake ?? (await FakeWhatsAppApi.start({ ...WA_SECRETS, phoneNumberId: '106540352242922', webhookRetryMs: 200, ...fakeOptions }));
  const gateway = await createTestEnv({ channels: ['whatsapp'], env: { ...whatsappVars(fake), ...env } });
  await gateway.app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(gateway.app.server.address() as AddressInfo).port}/webhooks/whatsapp`;
  if (options.webhook !== false) fake.setWebhook(url);
  return {
    fake,
    env: gateway,
    url,
    async close() {
      await gateway.close();
      if (!options.fake) await fake.stop();
    },
  };
}

export function whatsappVars(fake: FakeWhatsAppApi): Record<string, string> {
  return {
    LAPOR_WHATSAPP_TOKEN: fake.token,
    LAPOR_WHATSAPP_PHONE_ID: fake.phoneNumberId,
    LAPOR_WHATSAPP_APP_SECRET: fake.appSecret,
    LAPOR_WHATSAPP_VERIFY_TOKEN: fake.verifyToken,
    LAPOR_WHATSAPP_API_BASE: fake.graphUrl,
  };
}

/** Fresh WhatsApp numbers (wa_id), one per call, so each test is its own citizen. */
export function waNumbers(): () => string {
  let counter = randomInt(1_000_000);
  return () => `62857${String(counter++).padStart(7, '0')}`;
}

/** The keyed hash reports are found by for a WhatsApp number (reports.contact_hash). */
export function waContactHash(env: TestEnv, waId: string): string {
  return env.runtime.keys.blindIndex(normalizeAddress(`wa:${waId}`));
}

export interface FiledReport {
  seq: string;
  tracking_id: string;
  text: string;
  rahasia: boolean;
  attachments: number;
}

export async function reportsOf(env: TestEnv, waId: string): Promise<FiledReport[]> {
  const { rows } = await env.runtime.db.query<FiledReport>(
    `SELECT seq::text, tracking_id, text, rahasia, (SELECT count(*)::int FROM attachments a WHERE a.report_seq = r.seq) AS attachments
     FROM reports r WHERE contact_hash = $1 ORDER BY seq`,
    [waContactHash(env, waId)],
  );
  return rows;
}

export async function oneReportOf(env: TestEnv, waId: string, timeoutMs = 10_000): Promise<FiledReport> {
  const rows = await eventually(async () => {
    const found = await reportsOf(env, waId);
    return found.length ? found : undefined;
  }, timeoutMs, `a report of ${waId}`);
  if (rows.length !== 1) throw new Error(`${rows.length} reports of ${waId}, expected one`);
  return rows[0]!;
}

/** The outbound rows of a report: what the gateway sent and what became of it. */
export async function outboundOf(env: TestEnv, seq: string): Promise<{ id: string; status: string; transport_id: string | null; error: string | null; delivery: Record<string, string> }[]> {
  const { rows } = await env.runtime.db.query<{ id: string; status: string; transport_id: string | null; error: string | null; delivery: Record<string, string> }>(
    `SELECT id::text, status, transport_id, error, delivery FROM messages WHERE report_seq = $1 AND direction = 'out' ORDER BY id`,
    [seq],
  );
  return rows;
}

/** POSTs `body` to a webhook as Meta would, signed with `appSecret` (or with `sign` as given). */
export async function postSigned(url: string, body: Buffer | string, appSecret: string, sign?: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign ?? signature(appSecret, body) },
    body,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** A Cloud API delivery of one text message, as Meta writes it (\u-escaped); `text` is inserted as JSON source. */
export function textDelivery(phoneNumberId: string, from: string, wamid: string, textSource: string, name = 'Warga'): string {
  return (
    `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp",` +
    `"metadata":{"display_phone_number":"6281117081708","phone_number_id":"${phoneNumberId}"},"contacts":[{"profile":{"name":${JSON.stringify(name)}},"wa_id":"${from}"}],` +
    `"messages":[{"from":"${from}","id":"${wamid}","timestamp":"${Math.floor(Date.now() / 1000)}","type":"text","text":{"body":"${textSource}"}}]},"field":"messages"}]}]}`
  );
}

export interface FanOut {
  url: string;
  /** Webhook POSTs relayed (each to every target). */
  relayed: number;
  close(): Promise<void>;
}

/**
 * Meta's webhook reaching several gateway processes at once (two instances behind one address, a
 * retry overlapping the first try): every request goes to every target concurrently; the answer is
 * the first target's.
 */
export async function fanOut(targets: string[]): Promise<FanOut> {
  const relay: FanOut = { url: '', relayed: 0, close: async () => undefined };
  const forward = (target: string, method: string, headers: Record<string, string | string[] | undefined>, body: Buffer) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
      const to = new URL(target);
      const req = httpRequest({ host: to.hostname, port: to.port, path: `${to.pathname}${to.search}`, method, headers: { ...headers, host: to.host } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST') relay.relayed++;
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://relay');
      const answers = targets.map((t) => forward(`${t}${url.search}`, req.method ?? 'GET', req.headers, body));
      void Promise.allSettled(answers).then(([first]) => {
        if (first?.status !== 'fulfilled') return void res.writeHead(502).end();
        res.writeHead(first.value.status, { 'content-type': String(first.value.headers['content-type'] ?? 'application/json') }).end(first.value.body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/whatsapp`;
  relay.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return relay;
}

// ---- the adapter on its own ----

export type RecordedDelivery = Parameters<DeliverySink['record']>[0];

/** The WhatsApp adapter alone on real Redis and a fake Cloud API, its sinks recording what they get. */
export interface AdapterHarness {
  adapter: WhatsAppAdapter;
  redis: Redis;
  prefix: string;
  /** The keyed-hash secret (shared by a harness made `like` this one). */
  secret: string;
  logs: string[];
  enqueued: InboundMessageInput[];
  recorded: RecordedDelivery[];
  /** Signs `body` with the fake's app secret and hands it to the adapter's webhook. */
  deliver(body: string | Buffer): Promise<WebhookAnswer>;
  close(): Promise<void>;
}

/**
 * `like`: a second gateway process of the same deployment (same Redis prefix, same keys).
 * `pace`: the adapter's pacing (adapters/whatsapp/pace.ts).
 */
export async function adapterHarness(fake: FakeWhatsAppApi, options: { like?: AdapterHarness; pace?: Partial<PaceOptions> } = {}): Promise<AdapterHarness> {
  const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  const prefix = options.like?.prefix ?? `{wa${randomBytes(5).toString('hex')}}`;
  const secret = options.like?.secret ?? randomBytes(32).toString('hex');
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const enqueued: InboundMessageInput[] = [];
  const recorded: RecordedDelivery[] = [];
  const settings = WhatsAppSettingsSchema.parse({ token: fake.token, phoneId: fake.phoneNumberId, appSecret: fake.appSecret, verifyToken: fake.verifyToken, apiBase: fake.graphUrl });
  const adapter = createWhatsAppAdapter({
    settings,
    redis,
    prefix,
    log: createLogger({ level: 'debug', destination: sink }).child({ channel: 'whatsapp' }),
    intake: {
      async enqueue(message) {
        enqueued.push(message);
        return { status: 'queued' };
      },
    },
    deliveries: {
      async record(update) {
        recorded.push(update);
        return 'updated';
      },
    },
    attachments: { maxBytes: 5 * 1024 * 1024, store: async () => ({ refused: 'not in this harness' }) },
    hashAddress: (address) => createHmac('sha256', secret).update(normalizeAddress(address)).digest('base64url').slice(0, 32),
    keys: new DataKeys(createHash('sha256').update(secret).digest()),
    counters: { ignored: () => undefined, malformed: () => undefined },
    ...(options.pace ? { pace: options.pace } : {}),
  });
  return {
    adapter,
    redis,
    prefix,
    secret,
    logs,
    enqueued,
    recorded,
    deliver: (body) => adapter.webhook({ method: 'POST', query: {}, headers: { 'x-hub-signature-256': signature(fake.appSecret, body) }, rawBody: Buffer.from(body) }),
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** A notification to a WhatsApp number, as the notify worker hands it over. */
export function outbound(waId: string, text: string, extra: Partial<OutboundMessage> = {}): OutboundMessage {
  return { trackingId: undefined, key: `k_${randomBytes(6).toString('hex')}`, text, to: `wa:${waId}`, replyContext: {}, kind: undefined, privacy: 'public', lang: 'id', ...extra };
}

/** A Cloud API delivery of statuses for our number, as Meta writes it. */
export function statusDelivery(phoneNumberId: string, statuses: Record<string, unknown>[]): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '102290129340398', changes: [{ value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '6281117081708', phone_number_id: phoneNumberId }, statuses }, field: 'messages' }] }],
  });
}

/** Meta's `failed` status for free text sent outside the 24-hour window. */
export function reengagementFailure(wamid: string, recipient: string): Record<string, unknown> {
  return {
    id: wamid,
    status: 'failed',
    timestamp: String(Math.floor(Date.now() / 1000)),
    recipient_id: recipient,
    errors: [{ code: 131047, title: 'Re-engagement message', message: 'Re-engagement message', error_data: { details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' } }],
  };
}
