import type { Attachment, ChannelId, InboundMessage, InboundMessageInput } from './inbound.ts';
import type { Privacy } from './keywords.ts';
import type { Lang, NotificationKind } from './notifications.ts';

/** What a channel can carry, so templates and splitting fit it. */
export interface ChannelLimits {
  /** Longest text one notification may have on this channel (SMS: segments × per-segment length). */
  maxTextLength: number;
}

export interface ChannelCapabilities {
  /**
   * Whether citizens type commands here (CEK, BALAS, PUAS…). The web form is structured and does not;
   * conversational channels go through the one keyword parser (src/core/keywords.ts).
   */
  keywords: boolean;
  /**
   * Whether what we send is seen by everyone (a reply on X is a public post). Such a channel is told
   * the state of a report only by the report's own author: a stranger asking learns nothing.
   */
  publicReplies: boolean;
}

/** One message to a citizen, already rendered in their language. */
export interface OutboundMessage {
  trackingId: string | undefined;
  /** Stable id of this notification, for the provider's own idempotency where it has one. */
  key: string;
  text: string;
  /** The citizen's address on the channel (decrypted only for the send). */
  to: string | undefined;
  replyContext: Record<string, string>;
  /** What the notification is about, so a channel whose replies are public can say less of it. */
  kind: NotificationKind | undefined;
  /** The report's privacy ('public' for a reply about no report): anonim and rahasia are never told in public. */
  privacy: Privacy;
  lang: Lang;
}

/**
 * Channels whose notifications are read where they are kept — the web's status page — rather than
 * sent: intake writes them as 'stored' in the commit that files the report, with no notify job
 * (which only ever marked them so: half the jobs and statements of a web report).
 */
export const STORED_NOT_SENT: ReadonlySet<ChannelId> = new Set<ChannelId>(['web']);

export interface SendResult {
  /** `sent`: handed to the provider; `stored`: the channel is the status page itself. */
  status: 'sent' | 'stored';
  /** The provider's id of what was sent; several (SMS segments, a post and a direct message) space-separated. */
  transportId?: string;
}

/** Normalizers say why they dropped something, so the adapter can log it and answer its provider. */
export interface Ignored {
  ignored: true;
  reason: string;
}

/**
 * The contract every channel implements (adapters/<channel>/index.ts). `normalize` is pure; `send`
 * rejects only with a `SendError`.
 */
export interface ChannelAdapter<Raw = unknown> {
  readonly id: ChannelId;
  readonly limits: ChannelLimits;
  readonly capabilities: ChannelCapabilities;
  normalize(raw: Raw, context: { now: Date }): InboundMessage | Ignored;
  send(message: OutboundMessage): Promise<SendResult>;
  /** Pull-based channels (SMPP binds, mailboxes) connect here; push-based ones need nothing. */
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /** The state of each upstream link (an SMSC bind, a mailbox), for /readyz and /metrics. */
  links?(): LinkStatus[];
  /**
   * False while this process cannot send on the channel — an SMS process whose binds are held by
   * another process, or not bound yet. Its notify worker then waits, leaving the jobs to a process
   * that can send, instead of failing them and spending their attempts.
   */
  canSend?(): boolean;
  /**
   * Push channels answer their provider's webhook here (`/webhooks/<channel>`, GET and POST, the raw
   * body untouched so a signature over its bytes can be checked). Answer 2xx only once what came is
   * stored: the provider delivers again otherwise.
   */
  webhook?(request: WebhookRequest): Promise<WebhookAnswer>;
}

export interface WebhookRequest {
  method: 'GET' | 'POST';
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  /** The exact bytes received (empty for a GET). */
  rawBody: Buffer;
}

export interface WebhookAnswer {
  status: number;
  body: unknown;
}

export interface LinkStatus {
  /** e.g. the SMSC account id. */
  link: string;
  state: string;
  /** False when this process should be serving the link and is not. */
  ok: boolean;
  /** More for the operator (X: the month's budget spent so far). */
  detail?: string;
}

/**
 * Where an adapter puts what it received. `enqueue` normalizes the message (InboundMessageSchema)
 * and resolves once it is durably stored; it rejects with an `InboundRefusedError` when the message
 * can never be stored, and with any other error when storing failed for now.
 */
export interface IntakeSink {
  enqueue(message: InboundMessageInput, options: { windowMs: number; equivalentKeys?: string[] }): Promise<{ status: 'queued' | 'duplicate' }>;
}

/** Where an adapter reports the fate of a message it sent (SMS delivery receipts, read receipts). */
export interface DeliverySink {
  /** `retrying`: no message has that transport id yet (its commit may still be on its way); tried again later. */
  record(update: { channel: ChannelId; transportId: string; state: 'delivered' | 'failed' | 'pending'; detail: string }): Promise<'updated' | 'unknown' | 'retrying'>;
}

/**
 * Where a pull channel keeps its place in the provider's stream (X's newest mention, a mailbox's
 * last UID), in PostgreSQL (src/store/cursors.ts), so a restart resumes where it stopped.
 */
export interface CursorStore {
  get(channel: ChannelId, account: string): Promise<unknown>;
  set(channel: ChannelId, account: string, cursor: unknown): Promise<void>;
}

/**
 * Where an adapter keeps a file a citizen sent (a photo in a tweet, a bot's document) before the
 * message naming it is stored: the bytes go to PostgreSQL and the message carries the attachment's
 * token (`ref`), claimed by its report at intake. The type is read from the bytes (src/core/attachments.ts):
 * anything but a photo or a PDF, an executable named foto.jpg included, is refused with the reason.
 */
export interface AttachmentSink {
  readonly maxBytes: number;
  store(file: { name?: string | undefined; data: Buffer }): Promise<Attachment | { refused: string }>;
}
