import type { ChannelId, InboundMessage, InboundMessageInput } from './inbound.ts';

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
}

export interface SendResult {
  /** `sent`: handed to the provider; `stored`: the channel is the status page itself. */
  status: 'sent' | 'stored';
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
}

export interface LinkStatus {
  /** e.g. the SMSC account id. */
  link: string;
  state: string;
  /** False when this process should be serving the link and is not. */
  ok: boolean;
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
