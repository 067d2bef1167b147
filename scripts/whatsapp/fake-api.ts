import { createHash, createHmac, randomBytes, randomInt } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { z } from 'zod';
import { closeServer, listenOnLoopback } from '../fake-server.ts';

/**
 * A local WhatsApp Business Cloud API (Meta Graph API) for the gateway's tests and local runs:
 * `POST /{version}/{phone-number-id}/messages` (with Meta's pair rate, 131056), media lookup and
 * download, and webhook delivery (verification handshake, `X-Hub-Signature-256` over Meta-style
 * escaped JSON, retries, status callbacks — a free-form send outside the window accepted, then
 * failed with 131047). A control API under /_fake/ (and the same methods on the class) plays the
 * citizens, serves chosen media, delivers any status on demand and injects faults.
 *
 * Shapes were checked against Meta's reference and captured payloads; where the fake had to choose,
 * the comment says "chosen". Plain HTTP on loopback only. `log` gets routes and statuses, never a text.
 */

// ---- control inputs (zod at the boundary) ----

const WaId = z.string().regex(/^[1-9]\d{6,14}$/, 'a wa_id: the number in international form, digits only');
const Wamid = z.string().startsWith('wamid.');
const Bytes = z.union([z.custom<Buffer>((v) => Buffer.isBuffer(v)), z.base64().transform((s) => Buffer.from(s, 'base64'))]);
const Name = z.string().min(1).max(256).optional();
const TextSchema = z.strictObject({ from: WaId, name: Name, text: z.string().min(1).max(4096), replyTo: Wamid.optional() });
const ImageSchema = z.strictObject({ from: WaId, name: Name, caption: z.string().max(1024).optional(), bytes: Bytes, mimeType: z.string().regex(/^image\//) });
const DocumentSchema = z.strictObject({
  from: WaId, name: Name, caption: z.string().max(1024).optional(), bytes: Bytes, fileName: z.string().min(1), mimeType: z.string().min(1),
});
/** `name` and `address` are the place's (as in Meta's location message), not the sender's. */
const LocationSchema = z.strictObject({
  from: WaId, latitude: z.number().min(-90).max(90), longitude: z.number().min(-180).max(180), name: z.string().optional(), address: z.string().optional(),
});
const ButtonReplySchema = z.strictObject({ from: WaId, name: Name, replyTo: Wamid, id: z.string().min(1).max(256), title: z.string().min(1).max(20) });
const BatchItem = z.discriminatedUnion('type', [
  TextSchema.extend({ type: z.literal('text') }),
  ImageSchema.extend({ type: z.literal('image') }),
  DocumentSchema.extend({ type: z.literal('document') }),
  LocationSchema.extend({ type: z.literal('location') }),
  ButtonReplySchema.extend({ type: z.literal('buttonReply') }),
]);
const BatchSchema = z.array(BatchItem).min(1).max(100);
const FaultSchema = z.strictObject({ code: z.number().int().positive(), status: z.number().int().min(400).max(599).optional(), count: z.number().int().min(0).default(1) });
const StatusName = z.enum(['sent', 'delivered', 'read']);
const OrderSchema = z.array(StatusName).max(3);
const RawSchema = z.record(z.string(), z.unknown());
const MediaSchema = z.strictObject({ id: z.string().regex(/^[0-9]{5,30}$/).optional(), bytes: Bytes, mimeType: z.string().min(1) });
const MediaFaultSchema = z.strictObject({ stage: z.enum(['lookup', 'download']), count: z.number().int().min(0).default(1) });
const StatusSchema = z.strictObject({
  wamid: Wamid,
  status: z.enum(['sent', 'delivered', 'read', 'failed']),
  /** A failed status's error code (131047 when omitted). */
  code: z.number().int().positive().optional(),
  /** For a wamid the fake did not send: whose it is said to be. */
  recipient: WaId.optional(),
});
const PairRateSchema = z.strictObject({ intervalMs: z.number().int().positive(), burst: z.number().int().positive() });

export type TextInput = z.input<typeof TextSchema>;
export type ImageInput = z.input<typeof ImageSchema>;
export type DocumentInput = z.input<typeof DocumentSchema>;
export type LocationInput = z.input<typeof LocationSchema>;
export type ButtonReplyInput = z.input<typeof ButtonReplySchema>;
export type BatchInput = z.input<typeof BatchSchema>;
export type FaultInput = z.input<typeof FaultSchema>;
export type MediaInput = z.input<typeof MediaSchema>;
export type MediaFaultInput = z.input<typeof MediaFaultSchema>;
export type StatusInput = z.input<typeof StatusSchema>;
export type PairRate = z.infer<typeof PairRateSchema>;
export type StatusName = z.infer<typeof StatusName>;

// ---- what the gateway sends (Graph's side of the boundary) ----

const SendSchema = z.object({
  messaging_product: z.literal('whatsapp'),
  recipient_type: z.literal('individual').optional(),
  to: z.string().regex(/^\+?[\d\s()-]{7,20}$/),
  type: z.enum(['text', 'template', 'interactive']).default('text'),
  text: z.object({ body: z.string().min(1).max(4096), preview_url: z.boolean().optional() }).optional(),
  template: z.object({ name: z.string().min(1), language: z.object({ code: z.string().min(2) }), components: z.array(z.unknown()).optional() }).optional(),
  interactive: z.object({ type: z.enum(['button', 'list', 'cta_url']), body: z.object({ text: z.string().min(1).max(1024) }), action: z.record(z.string(), z.unknown()) }).passthrough().optional(),
  context: z.object({ message_id: Wamid }).optional(),
});

export interface FakeWhatsAppOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  token?: string;
  phoneNumberId?: string;
  displayPhone?: string;
  wabaId?: string;
  appSecret?: string;
  verifyToken?: string;
  webhookUrl?: string;
  /**
   * How a free-form send outside the 24-hour window fails. 'status' (the default): Cloud API accepts
   * the send (200 + wamid) and reports 131047 in a `failed` status webhook, as the reference and
   * captured payloads show. 'sync': the older/alternative synchronous 400 Graph error.
   */
  reengagement?: 'status' | 'sync';
  /** The status webhooks after an accepted send, in this order (out of order allowed; [] = none). */
  statusOrder?: StatusName[];
  /** Pause before a failed webhook delivery is tried again. */
  webhookRetryMs?: number;
  /**
   * Meta's pair rate: on average one message to one user every `intervalMs`, bursts of up to `burst`
   * borrowing from the following seconds; beyond it a send is refused with 131056. Default Meta's
   * documented 6 s and 45; `false` turns it off.
   */
  pairRate?: PairRate | false;
  log?: (line: string) => void;
}

export interface SentRecord {
  index: number;
  wamid: string;
  to: string;
  type: 'text' | 'template' | 'interactive';
  text?: string;
  template?: { name: string; language: string; components?: unknown[] };
  interactive?: Record<string, unknown>;
  replyTo?: string;
  /** Set when the send was accepted but then failed (131047 reported by status webhook). */
  failedCode?: number;
}
export interface WaStatus { id: string; status: StatusName | 'failed'; timestamp: string; recipient_id: string; [key: string]: unknown }
export interface FakeWhatsAppStats {
  /** Graph calls by route ('messages', 'media', 'download'), refused ones included. */
  calls: Record<string, number>;
  /** Graph errors served, by code. */
  errors: Record<string, number>;
  webhook: { delivered: number; failed: number; pending: number };
}
export interface VerifyResult { ok: boolean; status: number; challenge: string; body: string }

// ---- Graph's answers ----

const WINDOW_MS = 24 * 60 * 60 * 1000;
const MEDIA_URL_TTL_MS = 5 * 60 * 1000; // "The returned URL is temporary and expires after 5 minutes"
const ERRORS_HREF = 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/';
const REENGAGEMENT_DETAILS = 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.';
/** Known codes: title, details and the HTTP status Graph uses (130429 → 400 is chosen; `fault` can override). */
const KNOWN: Record<number, { title: string; details?: string; status: number }> = {
  190: { title: 'Invalid OAuth access token - Cannot parse access token', status: 401 },
  100: { title: 'Invalid parameter', status: 400 },
  130429: { title: 'Rate limit hit', details: 'Cloud API message throughput has been reached.', status: 400 },
  131026: { title: 'Message undeliverable', details: 'Unable to deliver message.', status: 400 },
  131056: {
    title: '(Business Account, Consumer Account) pair rate limit hit',
    details: 'Too many messages sent from the sender phone number to the same recipient phone number in a short period of time.',
    status: 400,
  },
  131047: { title: 'Re-engagement message', details: REENGAGEMENT_DETAILS, status: 400 },
  131000: { title: 'Something went wrong', details: 'Message failed to send due to an unknown error.', status: 500 },
};

interface Reply { status: number; body: unknown; contentType?: string }
const fbtrace = () => `A${randomBytes(16).toString('base64url').slice(0, 22)}`;

class GraphError extends Error {
  // Messaging errors read "(#code) Title"; the token error and explicit messages are bare (as Graph's).
  private readonly bare: boolean;
  constructor(readonly code: number, readonly status: number, readonly details?: string, readonly extra: Record<string, unknown> = {}, message?: string) {
    super(message ?? KNOWN[code]?.title ?? `Error ${code}`);
    this.bare = message !== undefined || code === 190;
  }
  body(): unknown {
    const message = this.bare ? this.message : `(#${this.code}) ${this.message}`;
    const data = this.details ? { error_data: { messaging_product: 'whatsapp', details: this.details } } : {};
    return { error: { message, type: 'OAuthException', code: this.code, ...data, ...this.extra, fbtrace_id: fbtrace() } };
  }
}
const graphError = (code: number, status?: number, details?: string) => new GraphError(code, status ?? KNOWN[code]?.status ?? 400, details ?? KNOWN[code]?.details);
/** Graph's answer for a node that is not there (or not this token's). */
const noSuchObject = (verb: 'get' | 'post', id: string) =>
  new GraphError(100, 400, undefined, { error_subcode: 33, type: 'GraphMethodException' },
    `Unsupported ${verb} request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`);

class ControlError extends Error {
  constructor(readonly status: number, readonly details: string[]) {
    super(details.join('; '));
  }
}
const parse = <S extends z.ZodType>(schema: S, value: unknown): z.infer<S> => {
  const result = schema.safeParse(value);
  if (!result.success) throw new ControlError(400, result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`));
  return result.data;
};

/**
 * JSON as Meta writes webhook bodies: non-ASCII as lowercase `\uXXXX` (emoji as surrogate pairs) and
 * `/` as `\/`. A receiver that re-serialises the parsed body therefore gets other bytes and another HMAC.
 * '/' only occurs inside strings in JSON, so escaping every one is safe.
 */
export function metaJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/\//g, '\\/');
}
export function signature(appSecret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
}

/** A wamid like Meta's: base64 of a small binary record holding the wa_id and a random hex key. */
function newWamid(waId: string): string {
  const key = Buffer.from(randomBytes(10).toString('hex').toUpperCase());
  return `wamid.${Buffer.concat([Buffer.from([0x1c, 0x18, waId.length]), Buffer.from(waId), Buffer.from([0x15, 0x02, 0x00, 0x12, 0x18, key.length]), key, Buffer.from([0])]).toString('base64')}`;
}
/** The messages of a webhook payload (a raw one: only what has a sender and an id). */
function messagesIn(payload: Record<string, unknown>): Array<{ from: string; id: string }> {
  const Shape = z.object({ entry: z.array(z.object({ changes: z.array(z.object({ value: z.object({ messages: z.array(z.unknown()).optional() }) })) })) });
  const parsed = Shape.safeParse(payload);
  if (!parsed.success) return [];
  return parsed.data.entry
    .flatMap((e) => e.changes.flatMap((c) => c.value.messages ?? []))
    .flatMap((m) => {
      const message = z.object({ from: WaId, id: z.string().min(1) }).safeParse(m);
      return message.success ? [message.data] : [];
    });
}
const mediaId = () => String(1_000_000_000_000_000 + randomInt(2 ** 47));
const clone = <T>(value: T): T => structuredClone(value);
const digits = (phone: string) => phone.replace(/\D/g, '');

interface Media { id: string; bytes: Buffer; mimeType: string; sha256hex: string; urlKey: string; urlExpires: number }
interface Pending { body: string; statuses: WaStatus[] }
type Inbound = Record<string, unknown> & { from: string; id: string };

export class FakeWhatsAppApi {
  readonly token: string;
  readonly phoneNumberId: string;
  readonly displayPhone: string;
  readonly wabaId: string;
  readonly appSecret: string;
  readonly verifyToken: string;
  webhookUrl: string | undefined;
  private reengagement: 'status' | 'sync';
  private statusOrder: StatusName[];
  private readonly webhookRetryMs: number;
  private readonly pairRate: PairRate | false;
  private readonly initial: { reengagement: 'status' | 'sync'; statusOrder: StatusName[] };
  private readonly logLine: (line: string) => void;

  private clockOffset = 0;
  private lastInbound = new Map<string, number>(); // wa_id → ms on the fake clock
  private names = new Map<string, string>();
  private authors = new Map<string, string>(); // wamid → who wrote it (wa_id or the business number)
  private media = new Map<string, Media>();
  private sentLog: SentRecord[] = [];
  private deliveredStatuses: WaStatus[] = [];
  private faults: Array<{ code: number; status?: number; remaining: number }> = [];
  private mediaFaults: Array<{ stage: 'lookup' | 'download'; remaining: number }> = [];
  private pairDue = new Map<string, number>(); // wa_id → the pair rate's next due time (fake clock)
  private queue: Pending[] = [];
  private counters = { calls: {} as Record<string, number>, errors: {} as Record<string, number>, webhook: { delivered: 0, failed: 0 } };
  private pumping: Promise<void> | null = null;
  private wakeRetry: (() => void) | null = null;
  private readonly inFlight = new AbortController();
  private stopped = false;
  private generation = 0; // a delivery that finishes after reset() is not counted

  private constructor(private readonly server: Server, readonly port: number, options: FakeWhatsAppOptions) {
    this.token = options.token ?? 'fake-wa-token';
    this.phoneNumberId = options.phoneNumberId ?? '106540352242922';
    this.displayPhone = options.displayPhone ?? '+62 811-1708-1708';
    this.wabaId = options.wabaId ?? '102290129340398';
    this.appSecret = options.appSecret ?? 'fake-wa-app-secret';
    this.verifyToken = options.verifyToken ?? 'fake-verify-token';
    this.webhookUrl = options.webhookUrl;
    this.initial = { reengagement: options.reengagement ?? 'status', statusOrder: options.statusOrder ?? ['sent', 'delivered', 'read'] };
    this.reengagement = this.initial.reengagement;
    this.statusOrder = this.initial.statusOrder;
    this.webhookRetryMs = options.webhookRetryMs ?? 1000;
    this.pairRate = options.pairRate === undefined ? { intervalMs: 6_000, burst: 45 } : options.pairRate === false ? false : parse(PairRateSchema, options.pairRate);
    this.logLine = options.log ?? (() => undefined);
  }

  static async start(options: FakeWhatsAppOptions = {}): Promise<FakeWhatsAppApi> {
    const { server, port } = await listenOnLoopback(options.port);
    const fake = new FakeWhatsAppApi(server, port, options);
    server.on('request', (req, res) => void fake.handle(req, res).catch(() => res.destroy()));
    server.on('error', (error: Error) => fake.logLine(`server error: ${error.message}`));
    fake.logLine(`fake WhatsApp Cloud API on 127.0.0.1:${port}`);
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What a client uses instead of https://graph.facebook.com/v21.0. */
  get graphUrl(): string {
    return `${this.url}/v21.0`;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.inFlight.abort();
    this.wakeRetry?.();
    await this.pumping;
    await closeServer(this.server);
  }

  /** Forgets users, media, sends, faults, the webhook queue and the counters; clock and settings back to start. */
  reset(): void {
    this.reengagement = this.initial.reengagement;
    this.statusOrder = this.initial.statusOrder;
    for (const map of [this.lastInbound, this.names, this.authors, this.media, this.pairDue]) map.clear();
    this.sentLog = [];
    this.deliveredStatuses = [];
    this.faults = [];
    this.mediaFaults = [];
    this.queue = [];
    this.clockOffset = 0;
    this.counters = { calls: {}, errors: {}, webhook: { delivered: 0, failed: 0 } };
    this.generation++;
    this.wakeRetry?.();
  }

  /** Resolves once no webhook POST is in flight or waiting for a retry (an empty queue, or no webhookUrl). */
  async idle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  // ---- clock and settings ----

  now(): number {
    return Date.now() + this.clockOffset;
  }

  /** Moves the fake clock (message timestamps, the 24-hour window, media URL expiry). */
  advanceTime(ms: number): void {
    this.clockOffset += parse(z.number().finite(), ms);
  }

  setWebhook(url: string | undefined): void {
    this.webhookUrl = url;
    this.wakeRetry?.();
    this.kick();
  }

  setStatusOrder(order: StatusName[]): void {
    this.statusOrder = parse(OrderSchema, order);
  }

  setReengagement(mode: 'status' | 'sync'): void {
    this.reengagement = parse(z.enum(['status', 'sync']), mode);
  }

  /** The next `count` sends fail with Graph error `code` (status from the known table unless given). */
  fault(input: FaultInput): void {
    const { code, status, count } = parse(FaultSchema, input);
    this.faults.push({ code, status, remaining: count });
  }

  /**
   * The next `count` media lookups (`lookup`: Graph answers that the object does not exist, as for
   * media Meta deleted) or downloads (`download`: the URL answers 404) fail.
   */
  mediaFault(input: MediaFaultInput): void {
    const { stage, count } = parse(MediaFaultSchema, input);
    this.mediaFaults.push({ stage, remaining: count });
  }

  /** Media the gateway may fetch, under a chosen id (e.g. a captured payload's); returns the id. */
  putMedia(input: MediaInput): string {
    const { id, bytes, mimeType } = parse(MediaSchema, input);
    return this.store(bytes, mimeType, id).id;
  }

  // ---- the citizens (control) ----

  /** Meta's subscription check: GET with hub.* parameters; the receiver must echo the challenge. */
  async verifyWebhook(): Promise<VerifyResult> {
    if (!this.webhookUrl) throw new ControlError(409, ['no webhookUrl set']);
    const challenge = String(randomInt(1_000_000_000, 2_000_000_000));
    const url = new URL(this.webhookUrl);
    url.searchParams.set('hub.mode', 'subscribe');
    url.searchParams.set('hub.challenge', challenge);
    url.searchParams.set('hub.verify_token', this.verifyToken);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      return { ok: res.status === 200 && body === challenge, status: res.status, challenge, body };
    } catch (error) {
      return { ok: false, status: 0, challenge, body: (error as Error).message }; // unreachable receiver
    }
  }

  text(input: TextInput): Inbound {
    return this.deliverMessages([this.build({ type: 'text', ...parse(TextSchema, input) })])[0] as Inbound;
  }

  image(input: ImageInput): Inbound {
    return this.deliverMessages([this.build({ type: 'image', ...parse(ImageSchema, input) })])[0] as Inbound;
  }

  document(input: DocumentInput): Inbound {
    return this.deliverMessages([this.build({ type: 'document', ...parse(DocumentSchema, input) })])[0] as Inbound;
  }

  location(input: LocationInput): Inbound {
    return this.deliverMessages([this.build({ type: 'location', ...parse(LocationSchema, input) })])[0] as Inbound;
  }

  buttonReply(input: ButtonReplyInput): Inbound {
    return this.deliverMessages([this.build({ type: 'buttonReply', ...parse(ButtonReplySchema, input) })])[0] as Inbound;
  }

  /** Several messages in ONE webhook POST (Meta batches under load), one contacts entry per sender. */
  batch(items: BatchInput): Inbound[] {
    return this.deliverMessages(parse(BatchSchema, items).map((item) => this.build(item)));
  }

  /**
   * Any object, signed and delivered as it is (Meta's escaping applies). The messages it carries
   * count as written: each opens its sender's window, and a reply may name it.
   */
  raw(payload: Record<string, unknown>): void {
    const value = parse(RawSchema, payload);
    for (const message of messagesIn(value)) {
      this.lastInbound.set(message.from, this.now());
      this.authors.set(message.id, message.from);
    }
    this.enqueue(value, []);
  }

  /**
   * One status webhook for a message: any state in any order after the ones the fake sent by
   * itself (read before delivered, failed after delivered), again (Meta delivers a webhook twice at
   * times), or for a wamid it never sent (with `recipient`).
   */
  deliverStatus(input: StatusInput): WaStatus {
    const { wamid, status: name, code, recipient } = parse(StatusSchema, input);
    const to = recipient ?? this.sentLog.find((r) => r.wamid === wamid)?.to;
    if (!to) throw new ControlError(404, [`unknown message ${wamid}: name its recipient`]);
    const status = name === 'failed' ? this.failedStatus(wamid, to, code ?? 131047) : this.okStatus(wamid, to, name, randomBytes(16).toString('hex'), 'service');
    this.enqueue(this.envelope({ statuses: [status] }), [status]);
    return clone(status);
  }

  // ---- what the gateway did ----

  sent(filter: { to?: string } = {}): SentRecord[] {
    return this.sentLog.filter((r) => filter.to === undefined || r.to === digits(filter.to)).map(clone);
  }

  /** Status objects whose webhook POST was answered 2xx, in delivery order. */
  statusesDelivered(): WaStatus[] {
    return this.deliveredStatuses.map(clone);
  }

  stats(): FakeWhatsAppStats {
    return { ...clone(this.counters), webhook: { ...this.counters.webhook, pending: this.queue.length } };
  }

  // ---- building inbound messages ----

  private build(item: z.infer<typeof BatchItem>): Inbound {
    const from = item.from;
    if ('name' in item && item.name && item.type !== 'location') this.names.set(from, item.name);
    this.lastInbound.set(from, this.now()); // every inbound message (re)opens the customer service window
    const base = { from, id: newWamid(from), timestamp: String(Math.floor(this.now() / 1000)) };
    const context = (replyTo: string | undefined) => {
      if (!replyTo) return {};
      const author = this.authors.get(replyTo);
      if (!author) throw new ControlError(404, [`unknown message ${replyTo}`]);
      return { context: { from: author, id: replyTo } };
    };
    let message: Inbound;
    switch (item.type) {
      case 'text':
        message = { ...base, ...context(item.replyTo), type: 'text', text: { body: item.text } };
        break;
      case 'image':
      case 'document': {
        const media = this.store(item.bytes, item.mimeType);
        // Webhooks carry the sha256 in base64 (the media endpoint in hex), as captured payloads show.
        const common = { mime_type: item.mimeType, sha256: createHash('sha256').update(item.bytes).digest('base64'), id: media.id };
        message = item.type === 'image'
          ? { ...base, type: 'image', image: { ...(item.caption ? { caption: item.caption } : {}), ...common } }
          : { ...base, type: 'document', document: { ...(item.caption ? { caption: item.caption } : {}), filename: item.fileName, ...common } };
        break;
      }
      case 'location': {
        const { latitude, longitude, name, address } = item;
        message = { ...base, type: 'location', location: { latitude, longitude, ...(name ? { name } : {}), ...(address ? { address } : {}) } };
        break;
      }
      case 'buttonReply':
        message = { ...base, ...context(item.replyTo), type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: item.id, title: item.title } } };
        break;
    }
    this.authors.set(message.id, from);
    return message;
  }

  private deliverMessages(messages: Inbound[]): Inbound[] {
    const senders = [...new Set(messages.map((m) => m.from))];
    const contacts = senders.map((waId) => ({ profile: { name: this.names.get(waId) ?? `Warga ${waId.slice(-4)}` }, wa_id: waId }));
    this.enqueue(this.envelope({ contacts, messages }), []);
    return messages.map(clone);
  }

  private envelope(value: Record<string, unknown>): Record<string, unknown> {
    const metadata = { display_phone_number: digits(this.displayPhone), phone_number_id: this.phoneNumberId };
    return { object: 'whatsapp_business_account', entry: [{ id: this.wabaId, changes: [{ value: { messaging_product: 'whatsapp', metadata, ...value }, field: 'messages' }] }] };
  }

  private store(bytes: Buffer, mimeType: string, id = mediaId()): Media {
    const media: Media = {
      id, bytes, mimeType, sha256hex: createHash('sha256').update(bytes).digest('hex'), urlKey: randomBytes(12).toString('base64url'), urlExpires: 0,
    };
    this.media.set(media.id, media);
    return media;
  }

  // ---- Graph API ----

  private sendMessage(phoneNumberId: string, raw: Buffer): Reply {
    if (phoneNumberId !== this.phoneNumberId) throw noSuchObject('post', phoneNumberId);
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw graphError(100, 400, 'The request body is not valid JSON.');
    }
    const parsed = SendSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw graphError(100, 400, `Parameter ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`); // wording chosen
    }
    const body = parsed.data;
    const payload = body.type === 'text' ? body.text : body.type === 'template' ? body.template : body.interactive;
    if (!payload) throw graphError(100, 400, `Parameter ${body.type} is required for type ${body.type}.`);
    const fault = this.faults.find((f) => f.remaining > 0);
    if (fault) {
      fault.remaining--;
      throw graphError(fault.code, fault.status);
    }
    const to = digits(body.to);
    const last = this.lastInbound.get(to);
    const outside = body.type !== 'template' && (last === undefined || this.now() - last > WINDOW_MS);
    if (outside && this.reengagement === 'sync') throw graphError(131047);
    this.pairTurn(to);
    const wamid = newWamid(to);
    this.authors.set(wamid, digits(this.displayPhone));
    this.sentLog.push({
      index: this.sentLog.length, wamid, to, type: body.type,
      ...(body.text ? { text: body.text.body } : {}),
      ...(body.template ? { template: { name: body.template.name, language: body.template.language.code, ...(body.template.components ? { components: body.template.components } : {}) } } : {}),
      ...(body.interactive ? { interactive: clone(body.interactive) } : {}),
      ...(body.context ? { replyTo: body.context.message_id } : {}),
      ...(outside ? { failedCode: 131047 } : {}),
    });
    this.sendStatuses(wamid, to, body.type === 'template' ? 'utility' : 'service', outside);
    return { status: 200, body: { messaging_product: 'whatsapp', contacts: [{ input: body.to, wa_id: to }], messages: [{ id: wamid }] } };
  }

  /**
   * Meta's pair rate (a leaky bucket with a burst, on the fake clock): throws 131056 when `to` has had
   * too many messages too fast; an accepted send takes its turn.
   */
  private pairTurn(to: string): void {
    if (!this.pairRate) return;
    const { intervalMs, burst } = this.pairRate;
    const t = this.now();
    const due = Math.max(this.pairDue.get(to) ?? t, t);
    if (due - (burst - 1) * intervalMs > t) throw graphError(131056);
    this.pairDue.set(to, due + intervalMs);
  }

  /** One webhook POST per status, as Meta sends them; a closed window gives one `failed` instead. */
  private sendStatuses(wamid: string, to: string, category: 'service' | 'utility', failed: boolean): void {
    if (failed) {
      const status = this.failedStatus(wamid, to, 131047);
      this.enqueue(this.envelope({ statuses: [status] }), [status]);
      return;
    }
    const conversationId = randomBytes(16).toString('hex');
    for (const name of this.statusOrder) {
      const status = this.okStatus(wamid, to, name, conversationId, category);
      this.enqueue(this.envelope({ statuses: [status] }), [status]);
    }
  }

  private okStatus(wamid: string, to: string, name: StatusName, conversationId: string, category: 'service' | 'utility'): WaStatus {
    const base = { id: wamid, timestamp: String(Math.floor(this.now() / 1000)), recipient_id: to };
    // Conversation and pricing come with sent and delivered; read carries neither (captured payloads).
    const conversation = { id: conversationId, ...(name === 'sent' ? { expiration_timestamp: String(Math.floor((this.now() + WINDOW_MS) / 1000)) } : {}), origin: { type: category } };
    const extra = name === 'read' ? {} : { conversation, pricing: { billable: true, pricing_model: 'CBP', category } };
    return { ...base, status: name, ...extra };
  }

  private failedStatus(wamid: string, to: string, code: number): WaStatus {
    const base = { id: wamid, timestamp: String(Math.floor(this.now() / 1000)), recipient_id: to };
    const title = code === 131047 ? 'Re-engagement message' : (KNOWN[code]?.title ?? `Error ${code}`);
    const details = code === 131047 ? REENGAGEMENT_DETAILS : (KNOWN[code]?.details ?? title);
    return { ...base, status: 'failed', errors: [{ code, title, message: title, error_data: { details }, href: ERRORS_HREF }] };
  }

  /** Whether an injected media fault applies to this request (and uses it up). */
  private mediaFaulted(stage: 'lookup' | 'download'): boolean {
    const fault = this.mediaFaults.find((f) => f.stage === stage && f.remaining > 0);
    if (fault) fault.remaining--;
    return Boolean(fault);
  }

  private mediaInfo(id: string): Reply {
    const media = this.media.get(id);
    if (!media || this.mediaFaulted('lookup')) throw noSuchObject('get', id);
    media.urlKey = randomBytes(12).toString('base64url');
    media.urlExpires = this.now() + MEDIA_URL_TTL_MS;
    const ext = Math.floor(media.urlExpires / 1000);
    // Meta's URL lives on lookaside.fbsbx.com; the fake serves the same path itself.
    const url = `${this.url}/whatsapp_business/attachments/?mid=${id}&ext=${ext}&hash=${media.urlKey}`;
    return { status: 200, body: { url, mime_type: media.mimeType, sha256: media.sha256hex, file_size: media.bytes.length, id, messaging_product: 'whatsapp' } };
  }

  private download(url: URL): Reply {
    const media = this.media.get(url.searchParams.get('mid') ?? '');
    // Chosen: an unknown, stale or expired URL is a plain 404.
    const stale = !media || media.urlKey !== url.searchParams.get('hash') || this.now() > media.urlExpires;
    if (stale || this.mediaFaulted('download')) return { status: 404, body: 'Not Found', contentType: 'text/plain' };
    return { status: 200, body: media.bytes, contentType: media.mimeType };
  }

  // ---- webhook delivery ----

  private enqueue(payload: unknown, statuses: WaStatus[]): void {
    this.queue.push({ body: metaJson(payload), statuses });
    this.kick();
  }

  private kick(): void {
    if (this.stopped || this.pumping || !this.webhookUrl || !this.queue.length) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      this.kick();
    });
  }

  /** Delivers in order, one POST at a time; a non-2xx or network error is retried after webhookRetryMs. */
  private async pump(): Promise<void> {
    for (let url = this.webhookUrl, next = this.queue[0]; !this.stopped && url && next; url = this.webhookUrl, next = this.queue[0]) {
      const generation = this.generation;
      const error = await this.post(url, next.body);
      if (generation !== this.generation) continue;
      if (error === null) {
        this.queue = this.queue.filter((p) => p !== next);
        this.counters.webhook.delivered++;
        this.deliveredStatuses.push(...next.statuses);
        continue;
      }
      this.counters.webhook.failed++;
      this.logLine(`webhook delivery failed: ${error}`);
      if (this.stopped) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.webhookRetryMs);
        this.wakeRetry = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeRetry = null;
    }
  }

  private async post(url: string, body: string): Promise<string | null> {
    const headers = { 'content-type': 'application/json', 'x-hub-signature-256': signature(this.appSecret, body), 'user-agent': 'facebookexternalua' };
    try {
      const signal = AbortSignal.any([this.inFlight.signal, AbortSignal.timeout(10_000)]);
      const res = await fetch(url, { method: 'POST', headers, body, signal });
      await res.arrayBuffer();
      return res.ok ? null : `HTTP ${res.status}`;
    } catch (error) {
      return (error as Error).message;
    }
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    let reply: Reply;
    if (url.pathname.startsWith('/_fake/')) reply = await this.control(method, url, body);
    else reply = this.graph(method, url, req.headers.authorization, body);
    this.logLine(`${method} ${url.pathname} → ${reply.status}`);
    if (res.headersSent || res.destroyed) return;
    const payload = Buffer.isBuffer(reply.body) || typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  }

  private graph(method: string, url: URL, authorization: string | undefined, body: Buffer): Reply {
    const messages = /^\/v\d+\.\d+\/([^/]+)\/messages$/.exec(url.pathname);
    const node = /^\/v\d+\.\d+\/([^/]+)\/?$/.exec(url.pathname);
    const download = url.pathname === '/whatsapp_business/attachments/';
    const route = messages ? 'messages' : download ? 'download' : node ? 'media' : 'unknown';
    this.counters.calls[route] = (this.counters.calls[route] ?? 0) + 1;
    try {
      if (authorization !== `Bearer ${this.token}`) throw graphError(190);
      if (messages && method === 'POST') return this.sendMessage(messages[1] ?? '', body);
      if (node && method === 'GET') return this.mediaInfo(node[1] ?? '');
      if (download && method === 'GET') return this.download(url);
      throw new GraphError(2500, 400, undefined, {}, `Unknown path components: ${url.pathname}`); // wording chosen
    } catch (error) {
      if (!(error instanceof GraphError)) throw error;
      this.counters.errors[error.code] = (this.counters.errors[error.code] ?? 0) + 1;
      return { status: error.status, body: error.body() };
    }
  }

  private async control(method: string, url: URL, raw: Buffer): Promise<Reply> {
    const route = `${method} ${url.pathname.slice('/_fake'.length)}`;
    try {
      // The methods validate their input with zod; the casts only name what they expect.
      const body: unknown = raw.length ? JSON.parse(raw.toString('utf8')) : {};
      const field = (key: string): unknown => (body as Record<string, unknown>)[key];
      const routes: Record<string, () => unknown> = {
        'POST /text': () => this.text(body as TextInput),
        'POST /image': () => this.image(body as ImageInput),
        'POST /document': () => this.document(body as DocumentInput),
        'POST /location': () => this.location(body as LocationInput),
        'POST /button-reply': () => this.buttonReply(body as ButtonReplyInput),
        'POST /batch': () => this.batch(body as BatchInput),
        'POST /raw': () => this.raw(body as Record<string, unknown>),
        'POST /fault': () => this.fault(body as FaultInput),
        'POST /media': () => this.putMedia(body as MediaInput),
        'POST /media-fault': () => this.mediaFault(body as MediaFaultInput),
        'POST /status': () => this.deliverStatus(body as StatusInput),
        'POST /advance-time': () => this.advanceTime(field('ms') as number),
        'POST /status-order': () => this.setStatusOrder(field('order') as StatusName[]),
        'POST /webhook': () => this.setWebhook(parse(z.url().optional(), field('url'))),
        'POST /verify-webhook': () => this.verifyWebhook(),
        'POST /reset': () => this.reset(),
        'GET /sent': () => this.sent({ to: url.searchParams.get('to') ?? undefined }),
        'GET /statuses': () => this.statusesDelivered(),
        'GET /stats': () => this.stats(),
      };
      const run = routes[route];
      return run ? { status: 200, body: { ok: true, result: (await run()) ?? true } } : { status: 404, body: { ok: false, error: ['no such control route'] } };
    } catch (error) {
      if (error instanceof ControlError) return { status: error.status, body: { ok: false, error: error.details } };
      if (error instanceof SyntaxError) return { status: 400, body: { ok: false, error: ['body is not JSON'] } };
      throw error;
    }
  }
}
