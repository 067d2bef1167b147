import { createHmac, randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { buttonsFor } from '../../src/core/buttons.ts';
import type { AttachmentSink, ChannelAdapter, DeliverySink, IntakeSink, OutboundMessage, SendResult, WebhookAnswer, WebhookRequest } from '../../src/core/channel.ts';
import { InboundRefusedError, SendError } from '../../src/core/errors.ts';
import { NOT_JSON, jsonBody, sameSecret } from '../../src/core/webhook.ts';
import type { Attachment } from '../../src/core/inbound.ts';
import type { WhatsAppSettings } from './config.ts';
import { DeliverySchema, deliveryOf, mediaOf, toInbound, unpack, type WaMessage } from './inbound.ts';

/**
 * WhatsApp over the Business Cloud API: Meta posts to `/webhooks/whatsapp` (the `hub.challenge`
 * handshake on GET; every POST signed with X-Hub-Signature-256 over its exact bytes — Meta escapes
 * non-ASCII as \uXXXX, so a body parsed and serialised again would not verify). A POST may carry
 * several messages and delivery statuses; it is answered 200 only once every message is stored.
 *
 * Replies are free text inside the 24-hour customer-service window (counted from the citizen's last
 * message, kept in Redis) and the configured template outside it, so nothing is silently dropped.
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
}

export type WhatsAppAdapter = Omit<ChannelAdapter<never>, 'webhook'> & { webhook(request: WebhookRequest): Promise<WebhookAnswer> };

const WINDOW_MS = 24 * 3_600_000;
const DEDUP_WINDOW_MS = 2 * 86_400_000;
const MAX_TEXT = 4_096;
/** A template's body parameter: Meta allows 1,024 characters. */
const MAX_TEMPLATE_PARAM = 1_024;

export function createWhatsAppAdapter(context: WhatsAppAdapterContext): WhatsAppAdapter {
  const { settings, log, counters } = context;
  const base = settings.apiBase.replace(/\/$/, '');
  const auth = { authorization: `Bearer ${settings.token}` };
  const windowKey = (waId: string) => `${context.prefix}:whatsapp:window:${context.hashAddress(`wa:${waId}`)}`;
  const instance = randomUUID();

  async function graph(path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: unknown }> {
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
        await context.redis.set(windowKey(message.replyContext.to!), '1', 'PX', WINDOW_MS);
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
        await context.deliveries.record({ channel: 'whatsapp', transportId: update.transportId, state: update.state, detail: update.detail });
        // 131047: the window had closed; what follows to this citizen goes as the template.
        if (update.reengagement) await context.redis.del(windowKey(update.recipient));
      }
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'whatsapp delivery not stored: Meta will deliver it again');
      return { status: 503, body: { error: 'unavailable', message: 'not stored, deliver again' } };
    }
    return { status: 200, body: { ok: true } };
  }

  async function send(message: OutboundMessage): Promise<SendResult> {
    const to = message.to?.replace(/^wa:/, '') || message.replyContext.to;
    if (!to) throw new SendError('invalid_recipient', 'whatsapp: no number to answer');
    const inWindow = (await context.redis.exists(windowKey(to))) === 1;
    const first = await post(to, message, inWindow);
    // Meta closed the window before we thought (clocks differ): the same notification as the template.
    if (inWindow && isReengagement(first.body)) {
      await context.redis.del(windowKey(to));
      return answerOf(await post(to, message, false));
    }
    return answerOf(first);
  }

  function answerOf(answer: { status: number; body: unknown }): SendResult {
    if (answer.status < 300) {
      const id = z.object({ messages: z.array(z.object({ id: z.string() })).min(1) }).safeParse(answer.body);
      return { status: 'sent', ...(id.success ? { transportId: id.data.messages[0]!.id } : {}) };
    }
    throw toSendError(answer.status, answer.body);
  }

  async function post(to: string, message: OutboundMessage, inWindow: boolean): Promise<{ status: number; body: unknown }> {
    const buttons = buttonsFor(message.kind, message.privacy, message.trackingId, message.lang);
    const replyTo = message.replyContext.messageId;
    const body = inWindow
      ? {
          messaging_product: 'whatsapp',
          to,
          ...(replyTo ? { context: { message_id: replyTo } } : {}),
          ...(buttons.length
            ? { type: 'interactive', interactive: { type: 'button', body: { text: message.text.slice(0, 1_024) }, action: { buttons: buttons.map((b) => ({ type: 'reply', reply: { id: b.id, title: b.title.slice(0, 20) } })) } } }
            : { type: 'text', text: { body: message.text.slice(0, MAX_TEXT) } }),
        }
      : {
          messaging_product: 'whatsapp',
          to,
          type: 'template',
          template: {
            name: settings.template,
            language: { code: settings.templateLang },
            components: [{ type: 'body', parameters: [{ type: 'text', text: message.text.replace(/\s*\n\s*/g, ' ').slice(0, MAX_TEMPLATE_PARAM) }] }],
          },
        };
    try {
      return await graph(`${settings.phoneId}/messages`, { method: 'POST', body });
    } catch (err) {
      throw new SendError('unavailable', `whatsapp: ${(err as Error).message}`, { cause: err });
    }
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


/** Graph's errors in the closed vocabulary the notify worker understands. */
/** Graph's "(#131047) Re-engagement message": free text outside the 24-hour window. */
function isReengagement(body: unknown): boolean {
  return z.object({ error: z.object({ code: z.literal(131047) }) }).safeParse(body).success;
}

function toSendError(status: number, body: unknown): SendError {
  const error = z.object({ error: z.object({ code: z.number().optional(), message: z.string().optional() }) }).safeParse(body);
  const code = error.success ? error.data.error.code : undefined;
  const text = `whatsapp ${status}${code ? ` (#${code})` : ''}: ${error.success ? (error.data.error.message ?? '') : 'no error body'}`;
  if (code === 130429 || code === 131056 || code === 80007 || status === 429) return new SendError('throttled', text, { retryAfterMs: 5_000 });
  if (status >= 500 || code === 190 || status === 401) return new SendError('unavailable', text);
  if (code === 131026 || code === 131030) return new SendError('invalid_recipient', text);
  return new SendError('rejected', text);
}
