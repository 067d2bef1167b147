import { createHmac, randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { buttonsFor } from '../../src/core/buttons.ts';
import type { AttachmentSink, ChannelAdapter, DeliverySink, IntakeSink, OutboundMessage, SendResult, WebhookAnswer, WebhookRequest } from '../../src/core/channel.ts';
import type { DataKeys } from '../../src/core/crypto.ts';
import { InboundRefusedError, SendError } from '../../src/core/errors.ts';
import { NOT_JSON, jsonBody, sameSecret } from '../../src/core/webhook.ts';
import type { Attachment } from '../../src/core/inbound.ts';
import type { WhatsAppSettings } from './config.ts';
import { DeliverySchema, deliveryOf, mediaOf, toInbound, unpack, type WaMessage } from './inbound.ts';
import { Pacer, type PaceOptions } from './pace.ts';

/**
 * WhatsApp over the Business Cloud API: Meta posts to `/webhooks/whatsapp` (the `hub.challenge`
 * handshake on GET; every POST signed with X-Hub-Signature-256 over its exact bytes — Meta escapes
 * non-ASCII as \uXXXX, so a body parsed and serialised again would not verify). A POST may carry
 * several messages and delivery statuses; it is answered 200 only once every message is stored.
 *
 * Replies are free text inside the 24-hour customer-service window (counted from the citizen's last
 * message, kept in Redis) and the configured template outside it, so nothing is silently dropped —
 * also when Meta accepts free text and only then reports the window closed (a `failed` status with
 * 131047): the same notification then goes as the template, from here.
 */

export interface WhatsAppCounters {
  ignored(reason: string): void;
  malformed(reason: string): void;
}

export interface WhatsAppAdapterContext {
  settings: WhatsAppSettings;
  redis: Redis | Cluster;
  prefix: string;
  log: Logger;
  intake: IntakeSink;
  deliveries: DeliverySink;
  attachments: AttachmentSink;
  hashAddress(address: string): string;
  counters: WhatsAppCounters;
  /**
   * Seals what waits in Redis for Meta's verdict on a free-text send (the number and the text) and
   * hashes the wamids naming it (src/core/crypto.ts).
   */
  keys: Pick<DataKeys, 'seal' | 'open' | 'blindIndex'>;
  /** Pacing against Meta's limits (./pace.ts); tests shorten it. */
  pace?: Partial<PaceOptions>;
}

export type WhatsAppAdapter = Omit<ChannelAdapter<never>, 'webhook'> & { webhook(request: WebhookRequest): Promise<WebhookAnswer> };

const WINDOW_MS = 24 * 3_600_000;
const DEDUP_WINDOW_MS = 2 * 86_400_000;
const MAX_TEXT = 4_096;
/** A template's body parameter: Meta allows 1,024 characters. */
const MAX_TEMPLATE_PARAM = 1_024;
/** A free-text send is kept this long for a 131047 `failed` status, which Meta sends within seconds. */
const KEPT_MS = 86_400_000;
/**
 * A `failed` status can overtake the send it is about (Meta answers the send, then posts the status;
 * our write of what was sent follows the answer by one Redis round trip): looked for again after these pauses.
 */
const KEPT_RECHECK_MS = [100, 400, 1_000];
/** One process re-sending a notification holds it this long (the send's pacing and timeout fit in it). */
const RESEND_CLAIM_MS = 120_000;
/** What became of a re-send, against Meta delivering the same `failed` status again (it retries for up to 7 days). */
const RESENT_MARK_MS = 7 * 86_400_000;
/** The template's wamid names the first one for its statuses as long as Meta may still deliver it (30 days). */
const ALIAS_MS = 30 * 86_400_000;

const KeptSchema = z.object({ to: z.string().min(1), text: z.string(), trackingId: z.string().optional() });
type Kept = z.infer<typeof KeptSchema>;
type GraphAnswer = { status: number; body: unknown };

export function createWhatsAppAdapter(context: WhatsAppAdapterContext): WhatsAppAdapter {
  const { settings, log, counters, redis } = context;
  const base = settings.apiBase.replace(/\/$/, '');
  const auth = { authorization: `Bearer ${settings.token}` };
  const instance = randomUUID();
  const { keys } = context;
  const pacer = new Pacer(context.pace);

  /** A citizen by keyed hash: the same as their reports' contact hash. */
  const citizen = (waId: string) => context.hashAddress(`wa:${waId}`);
  const windowKey = (who: string) => `${context.prefix}:whatsapp:window:${who}`;
  // A wamid holds the citizen's number (base64): keys name it by keyed hash, values seal it.
  const wamidKey = (kind: 'kept' | 'resend' | 'alias', wamid: string) => `${context.prefix}:whatsapp:${kind}:${keys.blindIndex(`wamid ${wamid}`)}`;

  async function graph(path: string, init: { method?: string; body?: unknown } = {}): Promise<GraphAnswer> {
    const res = await fetch(`${base}/${path}`, {
      method: init.method ?? 'GET',
      headers: { ...auth, ...(init.body ? { 'content-type': 'application/json' } : {}) },
      ...(init.body ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, body: await res.json().catch(() => undefined) };
  }

  async function mediaAttachment(message: WaMessage): Promise<Attachment[]> {
    const media = mediaOf(message);
    if (!media) return [];
    try {
      const info = await graph(encodeURIComponent(media.id));
      const url = z.object({ url: z.url() }).parse(info.body).url;
      const res = await fetch(url, { headers: auth, signal: AbortSignal.timeout(20_000) });
      if (!res.ok) throw new Error(`media answered ${res.status}`);
      const data = Buffer.from(await res.arrayBuffer());
      if (data.length > context.attachments.maxBytes) throw new Error(`larger than ${context.attachments.maxBytes} bytes`);
      const stored = await context.attachments.store({ name: media.name, data });
      if ('refused' in stored) {
        counters.malformed('attachment');
        log.warn({ reason: stored.refused }, 'whatsapp media left out');
        return [];
      }
      return [stored];
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'whatsapp media could not be fetched: filed without it');
      return [];
    }
  }

  async function webhook(request: WebhookRequest): Promise<WebhookAnswer> {
    if (request.method === 'GET') {
      const q = request.query;
      if (q['hub.mode'] === 'subscribe' && typeof q['hub.verify_token'] === 'string' && settings.verifyToken && sameSecret(q['hub.verify_token'], settings.verifyToken)) {
        return { status: 200, body: String(q['hub.challenge'] ?? '') };
      }
      return { status: 403, body: { error: 'forbidden', message: 'verify token does not match' } };
    }
    const signature = request.headers['x-hub-signature-256'];
    const expected = `sha256=${createHmac('sha256', settings.appSecret).update(request.rawBody).digest('hex')}`;
    if (typeof signature !== 'string' || !sameSecret(signature, expected)) {
      counters.malformed('signature');
      log.warn({ signed: typeof signature === 'string' }, 'whatsapp webhook delivery refused: bad or missing signature');
      return { status: 401, body: { error: 'unauthorized', message: 'bad or missing X-Hub-Signature-256' } };
    }
    const payload = jsonBody(request.rawBody);
    if (!payload) {
      counters.malformed('json');
      return NOT_JSON;
    }
    const parsed = DeliverySchema.safeParse(payload.value);
    if (!parsed.success) {
      counters.malformed('delivery');
      return { status: 400, body: { error: 'bad_request', message: 'not a WhatsApp Business Account delivery' } };
    }
    const { messages, statuses } = unpack(parsed.data, settings.phoneId);
    try {
      for (const { raw, name } of messages) {
        const message = toInbound(raw, name, { account: settings.phoneId, now: new Date() });
        if ('ignored' in message) {
          counters.ignored(message.reason);
          log.info({ reason: message.reason }, 'whatsapp message not taken');
          continue;
        }
        // The citizen wrote: free text may answer for the next 24 hours.
        await redis.set(windowKey(citizen(message.replyContext.to!)), '1', 'PX', WINDOW_MS);
        message.attachments = await mediaAttachment(raw as WaMessage);
        try {
          await context.intake.enqueue(message, { windowMs: DEDUP_WINDOW_MS });
        } catch (err) {
          if (!(err instanceof InboundRefusedError)) throw err;
          counters.malformed('refused');
          log.warn({ problems: err.problems }, 'whatsapp message refused: it cannot be stored');
        }
      }
      for (const raw of statuses) {
        const update = deliveryOf(raw);
        if (!update) continue;
        if (update.reengagement && (await resendAsTemplate(update))) continue;
        // A status of a template we re-sent is about the notification its first wamid names.
        const first = await aliasOf(update.transportId);
        await context.deliveries.record({ channel: 'whatsapp', transportId: first ?? update.transportId, state: update.state, detail: update.detail });
      }
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'whatsapp delivery not stored: Meta will deliver it again');
      return { status: 503, body: { error: 'unavailable', message: 'not stored, deliver again' } };
    }
    return { status: 200, body: { ok: true } };
  }

  /**
   * A `failed` status with 131047: Meta accepted free text, then found the window closed. Our window
   * closes for that citizen, and the notification we kept for that wamid goes again as the template —
   * at most once however often the status comes and however many processes receive it (SET NX). True
   * when the status is handled so (sent, or being sent by another); false when we kept nothing for
   * that wamid, so it is recorded failed. Throws (503: Meta delivers the status again) when the
   * template could not be sent for now.
   */
  async function resendAsTemplate(update: { transportId: string; recipient: string; detail: string }): Promise<boolean> {
    if (update.recipient) await redis.del(windowKey(citizen(update.recipient)));
    const claim = wamidKey('resend', update.transportId);
    if (await redis.exists(claim)) return true;
    const kept = await keptFor(update.transportId);
    if (!kept) {
      log.info('whatsapp free text refused outside the window (131047), none of ours kept: recorded failed');
      return false;
    }
    if (!update.recipient) await redis.del(windowKey(citizen(kept.to)));
    if ((await redis.set(claim, instance, 'PX', RESEND_CLAIM_MS, 'NX')) !== 'OK') return true;
    const trackingId = kept.trackingId;
    let result: SendResult;
    try {
      result = answerOf(await paced(kept.to, templateBody(kept.to, kept.text)), citizen(kept.to));
    } catch (err) {
      if (!(err instanceof SendError) || err.retryable) {
        await redis.del(claim).catch(() => undefined);
        throw err;
      }
      await redis.set(claim, 'failed', 'PX', RESENT_MARK_MS);
      await redis.del(wamidKey('kept', update.transportId));
      log.warn({ trackingId, code: err.code, err: { message: err.message } }, 'whatsapp template refused after 131047: the notification stays failed');
      await context.deliveries.record({ channel: 'whatsapp', transportId: update.transportId, state: 'failed', detail: `${update.detail}; template ${err.code}` });
      return true;
    }
    // Sent: should what follows fail (503), the claim stays, so Meta's next delivery sends nothing.
    await redis.set(claim, 'sent', 'PX', RESENT_MARK_MS);
    if (result.transportId) await redis.set(wamidKey('alias', result.transportId), keys.seal('queue', update.transportId), 'PX', ALIAS_MS);
    await redis.del(wamidKey('kept', update.transportId));
    log.info({ trackingId }, 'whatsapp notification re-sent as the template: Meta found the window closed (131047)');
    return true;
  }

  async function keptFor(wamid: string): Promise<Kept | undefined> {
    for (const pause of [0, ...KEPT_RECHECK_MS]) {
      if (pause) await new Promise((r) => setTimeout(r, pause));
      const sealed = await redis.get(wamidKey('kept', wamid));
      if (sealed) return unsealed(sealed, KeptSchema);
    }
    return undefined;
  }

  async function aliasOf(wamid: string): Promise<string | undefined> {
    const sealed = await redis.get(wamidKey('alias', wamid));
    return sealed ? unsealed(sealed, z.string()) : undefined;
  }

  /** What we sealed; undefined (logged) for a box sealed under other keys, so a status is not refused forever. */
  function unsealed<T>(sealed: string, schema: z.ZodType<T>): T | undefined {
    try {
      return schema.parse(keys.open('queue', sealed));
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'whatsapp kept record unreadable: ignored');
      return undefined;
    }
  }

  async function send(message: OutboundMessage): Promise<SendResult> {
    const to = message.to?.replace(/^wa:/, '') || message.replyContext.to;
    if (!to) throw new SendError('invalid_recipient', 'whatsapp: no number to answer');
    const who = citizen(to);
    const inWindow = (await redis.exists(windowKey(who))) === 1;
    const first = await paced(to, inWindow ? freeBody(to, message) : templateBody(to, message.text));
    // Meta closed the window before we thought (clocks differ): the same notification as the template.
    if (inWindow && isReengagement(first.body)) {
      await redis.del(windowKey(who));
      return answerOf(await paced(to, templateBody(to, message.text)), who);
    }
    const result = answerOf(first, who);
    if (inWindow && result.transportId) await keep(result.transportId, { to, text: message.text, ...(message.trackingId ? { trackingId: message.trackingId } : {}) });
    return result;
  }

  /** Free text Meta accepted, sealed, for a `failed` 131047 status that may follow. */
  async function keep(wamid: string, kept: Kept): Promise<void> {
    try {
      await redis.set(wamidKey('kept', wamid), keys.seal('queue', kept), 'PX', KEPT_MS);
    } catch (err) {
      // It is sent: a retry would send it twice. Only its template fallback is lost.
      log.warn({ err: { message: (err as Error).message }, trackingId: kept.trackingId }, 'whatsapp sent message not kept: a 131047 failure of it will not be re-sent');
    }
  }

  /** One send, when Meta's limits let it go (./pace.ts). */
  async function paced(to: string, body: unknown): Promise<GraphAnswer> {
    const turn = await pacer.take(citizen(to));
    if (!turn.ok) throw new SendError('throttled', `whatsapp: this citizen's pair rate is spent for ${turn.waitMs} ms`);
    try {
      return await graph(`${settings.phoneId}/messages`, { method: 'POST', body });
    } catch (err) {
      throw new SendError('unavailable', `whatsapp: ${(err as Error).message}`, { cause: err });
    }
  }

  function answerOf(answer: GraphAnswer, who: string): SendResult {
    if (answer.status < 300) {
      const id = z.object({ messages: z.array(z.object({ id: z.string() })).min(1) }).safeParse(answer.body);
      return { status: 'sent', ...(id.success ? { transportId: id.data.messages[0]!.id } : {}) };
    }
    const error = toSendError(answer.status, answer.body);
    if (error.pairRate) pacer.refused(who);
    throw error.error;
  }

  function freeBody(to: string, message: OutboundMessage): unknown {
    const buttons = buttonsFor(message.kind, message.privacy, message.trackingId, message.lang);
    const replyTo = message.replyContext.messageId;
    return {
      messaging_product: 'whatsapp',
      to,
      ...(replyTo ? { context: { message_id: replyTo } } : {}),
      ...(buttons.length
        ? { type: 'interactive', interactive: { type: 'button', body: { text: message.text.slice(0, 1_024) }, action: { buttons: buttons.map((b) => ({ type: 'reply', reply: { id: b.id, title: b.title.slice(0, 20) } })) } } }
        : { type: 'text', text: { body: message.text.slice(0, MAX_TEXT) } }),
    };
  }

  function templateBody(to: string, text: string): unknown {
    return {
      messaging_product: 'whatsapp',
      to,
      type: 'template',
      template: {
        name: settings.template,
        language: { code: settings.templateLang },
        components: [{ type: 'body', parameters: [{ type: 'text', text: text.replace(/\s*\n\s*/g, ' ').slice(0, MAX_TEMPLATE_PARAM) }] }],
      },
    };
  }

  return {
    id: 'whatsapp',
    limits: { maxTextLength: 1_024 },
    capabilities: { keywords: true, publicReplies: false },
    normalize: () => ({ ignored: true, reason: 'whatsapp messages arrive through its webhook' }),
    send,
    webhook,
    links: () => [{ link: settings.phoneId || instance, state: 'webhook', ok: true }],
  };
}

/** Graph's "(#131047) Re-engagement message": free text outside the 24-hour window. */
function isReengagement(body: unknown): boolean {
  return z.object({ error: z.object({ code: z.literal(131047) }) }).safeParse(body).success;
}

/** Graph's errors in the closed vocabulary the notify worker understands. */
function toSendError(status: number, body: unknown): { error: SendError; pairRate: boolean } {
  const error = z.object({ error: z.object({ code: z.number().optional(), message: z.string().optional() }) }).safeParse(body);
  const code = error.success ? error.data.error.code : undefined;
  const text = `whatsapp ${status}${code ? ` (#${code})` : ''}: ${error.success ? (error.data.error.message ?? '') : 'no error body'}`;
  // 131056, the pair rate: one citizen only. Its job is retried on its own; the queue is not paused.
  if (code === 131056) return { error: new SendError('throttled', text), pairRate: true };
  // 130429 (throughput) and 80007 (the account's rate limit): every send waits, in every process.
  if (code === 130429 || code === 80007 || status === 429) return { error: new SendError('throttled', text, { retryAfterMs: 5_000 }), pairRate: false };
  if (status >= 500 || code === 190 || status === 401) return { error: new SendError('unavailable', text), pairRate: false };
  if (code === 131026 || code === 131030) return { error: new SendError('invalid_recipient', text), pairRate: false };
  return { error: new SendError('rejected', text), pairRate: false };
}
