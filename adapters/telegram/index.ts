import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AttachmentSink, ChannelAdapter, CursorStore, Ignored, IntakeSink, LinkStatus, OutboundMessage, SendResult, WebhookAnswer, WebhookRequest } from '../../src/core/channel.ts';
import { buttonsFor } from '../../src/core/buttons.ts';
import { InboundRefusedError, SendError } from '../../src/core/errors.ts';
import { NOT_JSON, jsonBody, sameSecret } from '../../src/core/webhook.ts';
import type { Attachment, InboundMessage } from '../../src/core/inbound.ts';
import { Lease } from '../../src/queue/lease.ts';
import { TelegramApiError, createTelegramClient, type InlineButton, type TelegramClient } from './client.ts';
import type { TelegramSettings } from './config.ts';
import { Pacer } from './pace.ts';
import { UpdateSchema, filesOf, toInbound, type Update } from './inbound.ts';

/**
 * Telegram: a bot citizens chat with. Updates come by long polling (one poller across all
 * processes, a lease; the offset kept in PostgreSQL and moved past an update only once it is stored)
 * or by webhook (`/webhooks/telegram`, the secret header checked, 200 only once stored — Telegram
 * delivers again otherwise). Replies by sendMessage to the chat.
 */

export interface TelegramCounters {
  ignored(reason: string): void;
  malformed(reason: string): void;
}

export interface TelegramAdapterContext {
  settings: TelegramSettings;
  redis: Redis | Cluster;
  prefix: string;
  log: Logger;
  intake: IntakeSink;
  cursors: CursorStore;
  attachments: AttachmentSink;
  /** Keyed hash of an address, to remember blocked chats without keeping chat ids in Redis. */
  hashAddress(address: string): string;
  counters: TelegramCounters;
  client?: TelegramClient;
  owner?: string;
}

export type TelegramAdapter = ChannelAdapter<Update> & {
  start(): Promise<void>;
  stop(): Promise<void>;
  links(): LinkStatus[];
  webhook(request: WebhookRequest): Promise<WebhookAnswer>;
};

/** Telegram retries an update for a day at most: Redis remembers it that long, PostgreSQL for good. */
const DEDUP_WINDOW_MS = 2 * 86_400_000;
/** Telegram's limit for one message. */
const MAX_TEXT = 4_096;

const CursorSchema = z.object({ offset: z.number().int().nonnegative() });

export function createTelegramAdapter(context: TelegramAdapterContext): TelegramAdapter {
  const { settings, log, counters } = context;
  const client = context.client ?? createTelegramClient(settings);
  const owner = context.owner ?? randomUUID();
  // The bot's name in commands (`/status@LaporBot`): the token's id part is enough to tell the
  // account apart in receipts; the username is only needed to read addressed commands.
  const account = settings.token.split(':')[0] ?? 'bot';
  let state = settings.mode === 'polling' ? 'starting' : 'webhook';
  let running = false;
  /** Each lease taken starts one loop; a loop of an older lease ends at its next turn. */
  let generation = 0;
  let loop: Promise<void> | undefined;
  let abort: AbortController | undefined;

  const pacer = new Pacer();

  const normalize = (update: Update, now = new Date()): InboundMessage | Ignored => toInbound(update, { bot: account, now });

  /** One update into the inbound queue, or a logged reason why not. Storage failures throw. */
  async function store(raw: unknown): Promise<void> {
    const update = UpdateSchema.safeParse(raw);
    if (!update.success) {
      counters.malformed('update');
      log.warn({ problem: update.error.issues[0]?.message, path: update.error.issues[0]?.path.join('.') }, 'telegram update skipped: not the shape the Bot API describes');
      return;
    }
    const member = update.data.my_chat_member;
    if (member && member.chat.type === 'private') {
      await setReachable(String(member.chat.id), member.new_chat_member.status !== 'kicked');
      return;
    }
    const message = normalize(update.data);
    if ('ignored' in message && message.reason === 'group') await hintPrivateChat(update.data);
    if ('ignored' in message) {
      // A button we do not know still gets its answer, or the citizen's app keeps spinning.
      const pressed = update.data.callback_query;
      if (pressed) await client.answerCallbackQuery(pressed.id).catch(() => undefined);
      counters.ignored(message.reason);
      log.debug({ updateId: update.data.update_id, reason: message.reason }, 'telegram update not for us');
      return;
    }
    message.attachments = await attachmentsOf(update.data);
    try {
      const stored = await context.intake.enqueue(message, { windowMs: DEDUP_WINDOW_MS });
      // A pressed button is answered once, when first stored (Telegram shows a spinner until then);
      // the confirmation itself comes in the chat, from intake.
      const pressed = update.data.callback_query;
      if (pressed && stored.status === 'queued') {
        await client.answerCallbackQuery(pressed.id).catch((err: unknown) => log.info({ err: { message: (err as Error).message } }, 'telegram callback not answered'));
      }
    } catch (err) {
      if (!(err instanceof InboundRefusedError)) throw err;
      counters.malformed('refused');
      log.warn({ updateId: update.data.update_id, problems: err.problems }, 'telegram update refused: it cannot be stored');
    }
  }

  /**
   * A citizen who blocked the bot cannot be written to: replies to that chat fail at once as
   * `blocked` (recorded undeliverable on the report) instead of each costing a refused call, until
   * the citizen unblocks the bot.
   */
  const unreachableKey = (chat: string) => `${context.prefix}:telegram:unreachable:${context.hashAddress(`tg:${chat}`)}`;
  async function setReachable(chat: string, reachable: boolean): Promise<void> {
    if (reachable) await context.redis.del(unreachableKey(chat));
    else await context.redis.set(unreachableKey(chat), '1');
    log.info({ reachable }, reachable ? 'telegram chat reachable again' : 'telegram chat blocked the bot: replies to it are undeliverable');
  }

  /**
   * Complaints are not filed from groups (the others there would read them). A command to the bot in
   * a group is answered with where to write instead — at most once an hour per group, so the bot
   * never floods a group.
   */
  async function hintPrivateChat(update: Update): Promise<void> {
    const message = update.message;
    if (!message || !message.text?.startsWith('/')) return;
    const group = String(message.chat.id);
    const first = await context.redis.set(`${context.prefix}:telegram:group-hint:${context.hashAddress(`tg:${group}`)}`, '1', 'EX', 3_600, 'NX');
    if (first !== 'OK') return;
    const en = message.from?.language_code?.startsWith('en');
    const text = en
      ? 'LAPOR! Reports are not taken in groups, so that others do not read them. Write to this bot in a private chat.'
      : 'LAPOR! Laporan tidak diterima di grup, agar tidak dibaca orang lain. Kirim laporan Anda lewat chat pribadi dengan bot ini.';
    await client.sendMessage(group, text, { replyTo: message.message_id }).catch((err: unknown) => log.info({ err: { message: (err as Error).message } }, 'telegram group hint not sent'));
  }

  /**
   * A photo's largest size and a document, kept as attachments: only photos and PDFs, read from the
   * bytes (an executable named foto.jpg is refused). One that cannot be had is left out and logged;
   * the citizen's words are filed without it.
   */
  async function attachmentsOf(update: Update): Promise<Attachment[]> {
    const kept: Attachment[] = [];
    for (const file of filesOf(update)) {
      try {
        if (file.size !== undefined && file.size > context.attachments.maxBytes) throw new Error(`larger than ${context.attachments.maxBytes} bytes`);
        const stored = await context.attachments.store({ name: file.name, data: await client.download(file.fileId, context.attachments.maxBytes) });
        if ('refused' in stored) {
          counters.malformed('attachment');
          log.warn({ updateId: update.update_id, reason: stored.refused }, 'telegram file left out');
        } else kept.push(stored);
      } catch (err) {
        log.warn({ updateId: update.update_id, err: { message: (err as Error).message } }, 'telegram file could not be fetched: filed without it');
      }
    }
    return kept;
  }

  /** The long-poll loop: the offset moves past an update only once it is stored. */
  async function pollLoop(own: number): Promise<void> {
    let failures = 0;
    while (running && own === generation) {
      try {
        const saved = CursorSchema.safeParse(await context.cursors.get('telegram', account));
        const offset = saved.success ? saved.data.offset : 0;
        abort = new AbortController();
        const updates = await client.getUpdates(offset, settings.pollTimeoutSeconds, abort.signal);
        if (!running || own !== generation) return;
        let next = offset;
        for (const raw of updates) {
          await store(raw);
          const id = (raw as { update_id?: unknown }).update_id;
          if (typeof id === 'number' && id >= next) next = id + 1;
        }
        if (next !== offset) await context.cursors.set('telegram', account, { offset: next });
        state = 'polling';
        failures = 0;
      } catch (err) {
        if (!running || own !== generation) return;
        failures++;
        const status = err instanceof TelegramApiError ? err.status : undefined;
        // 409: a webhook is set, or another poller runs (the lease should prevent it): wait and see.
        state = status === 409 ? 'conflict' : 'backoff';
        const retryAfterMs = err instanceof TelegramApiError && err.retryAfterS ? err.retryAfterS * 1_000 : Math.min(60_000, 500 * 2 ** Math.min(failures, 7));
        log.warn({ err: { message: (err as Error).message }, status, failures }, 'telegram getUpdates failed');
        await new Promise((r) => setTimeout(r, retryAfterMs).unref());
      }
    }
  }

  const lease = new Lease(context.redis, `${context.prefix}:telegram:lease:${account}`, owner, settings.leaseMs, log, (held) => {
    log.info({ held }, held ? 'telegram poller lease taken' : 'telegram poller lease released');
    running = held;
    if (held) {
      const own = ++generation;
      loop = (loop ?? Promise.resolve()).then(() => pollLoop(own));
    } else {
      abort?.abort();
      state = 'standby';
    }
  });

  async function webhook(request: WebhookRequest): Promise<WebhookAnswer> {
    if (request.method !== 'POST') return { status: 405, body: { error: 'method_not_allowed', message: 'Telegram delivers by POST.' } };
    const given = request.headers['x-telegram-bot-api-secret-token'];
    if (!settings.webhookSecret || typeof given !== 'string' || !sameSecret(given, settings.webhookSecret)) {
      counters.malformed('secret');
      log.warn({ given: typeof given === 'string' }, 'telegram webhook delivery refused: bad or missing secret token');
      return { status: 401, body: { error: 'unauthorized', message: 'bad or missing X-Telegram-Bot-Api-Secret-Token' } };
    }
    const payload = jsonBody(request.rawBody);
    if (!payload) {
      counters.malformed('json');
      return NOT_JSON;
    }
    try {
      await store(payload.value);
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'telegram update not stored: Telegram will deliver it again');
      return { status: 503, body: { error: 'unavailable', message: 'not stored, deliver again' } };
    }
    return { status: 200, body: { ok: true } };
  }

  async function send(message: OutboundMessage): Promise<SendResult> {
    const chatId = message.to?.replace(/^tg:/, '') || message.replyContext.chatId;
    if (!chatId) throw new SendError('invalid_recipient', 'telegram: no chat to answer');
    if (await context.redis.exists(unreachableKey(chatId))) throw new SendError('blocked', 'telegram: the citizen blocked the bot');
    await pacer.take(chatId);
    const replyTo = Number(message.replyContext.messageId);
    const buttons = keyboardFor(message);
    try {
      const sent = await client.sendMessage(chatId, message.text.slice(0, MAX_TEXT), {
        ...(Number.isSafeInteger(replyTo) && replyTo > 0 ? { replyTo } : {}),
        ...(buttons ? { buttons } : {}),
      });
      return { status: 'sent', transportId: `${chatId}_${sent.message_id}` };
    } catch (err) {
      // Blocked, and the my_chat_member update missed (or not yet read): remember it the same way.
      if (err instanceof TelegramApiError && err.status === 403) await setReachable(chatId, false).catch(() => undefined);
      throw toSendError(err);
    }
  }

  return {
    id: 'telegram',
    limits: { maxTextLength: MAX_TEXT },
    capabilities: { keywords: true, publicReplies: false },
    normalize: (update, { now }) => normalize(update, now),
    send,
    webhook,
    async start() {
      if (settings.mode === 'polling') lease.start();
    },
    async stop() {
      running = false;
      abort?.abort();
      await lease.stop();
      await loop?.catch(() => undefined);
    },
    links: () => {
      const current = settings.mode === 'polling' && !lease.isHeld ? 'standby' : state;
      return [{ link: account, state: current, ok: current !== 'backoff' && current !== 'conflict' }];
    },
  };
}

/** Our buttons (src/core/buttons.ts) as an inline keyboard, one row. */
function keyboardFor(message: OutboundMessage): InlineButton[][] | undefined {
  const buttons = buttonsFor(message.kind, message.privacy, message.trackingId, message.lang);
  return buttons.length ? [buttons.map((b) => ({ text: b.title, callback_data: b.id }))] : undefined;
}


/** The Bot API's answers in the closed vocabulary the notify worker understands. */
function toSendError(err: unknown): SendError {
  if (!(err instanceof TelegramApiError)) return new SendError('unavailable', `telegram: ${(err as Error).message}`, { cause: err });
  if (err.status === 429) return new SendError('throttled', 'telegram 429: flood control', { retryAfterMs: (err.retryAfterS ?? 1) * 1_000, cause: err });
  if (err.status === 0 || err.status >= 500) return new SendError('unavailable', err.message, { cause: err });
  if (err.status === 403) return new SendError('blocked', err.message, { cause: err });
  if (err.status === 400 && /chat not found|user not found/i.test(err.description)) return new SendError('invalid_recipient', err.message, { cause: err });
  return new SendError('rejected', err.message, { cause: err });
}
