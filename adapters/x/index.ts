import { createHmac, randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AttachmentSink, ChannelAdapter, CursorStore, Ignored, IntakeSink, LinkStatus, OutboundMessage, SendResult, WebhookAnswer, WebhookRequest } from '../../src/core/channel.ts';
import { InboundRefusedError, SendError } from '../../src/core/errors.ts';
import { NOT_JSON, jsonBody, sameSecret } from '../../src/core/webhook.ts';
import type { InboundMessage } from '../../src/core/inbound.ts';
import type { Lang } from '../../src/core/notifications.ts';
import { Lease } from '../../src/queue/lease.ts';
import { MonthlyBudget } from './budget.ts';
import { XApiError, createXClient, type XClient } from './client.ts';
import { canPost, type XSettings } from './config.ts';
import { V1TweetSchema, fromV1, toInbound, type Tweet, type XUser } from './inbound.ts';
import { photosOf } from './media.ts';
import { nextDelay, pollOnce } from './poller.ts';
import { fitPost } from './weighted.ts';

/**
 * X (@LAPOR1708): mentions carrying #lapor become reports, read by polling the mentions timeline
 * (one poller across all processes, a lease) or delivered to /webhooks/x (Account Activity); both
 * key a tweet by its first version's id, so a tweet seen both ways is one message. Answers go in the
 * thread as public replies that fit 280 weighted characters; for an anonim or rahasia report the
 * public reply is a neutral notice and the detail goes by direct message.
 *
 * Every read and post is counted against the month's budget (LAPOR_X_MONTHLY_READS / _POSTS): once
 * spent, polling stops and replies wait (the notify queue pauses) until the next month.
 */

export interface XCounters {
  ignored(reason: string): void;
  malformed(reason: string): void;
  spent(kind: 'reads' | 'posts', count: number): void;
}

export interface XAdapterContext {
  settings: XSettings;
  redis: Redis | Cluster;
  prefix: string;
  log: Logger;
  intake: IntakeSink;
  cursors: CursorStore;
  attachments: AttachmentSink;
  publicUrl: string;
  counters: XCounters;
  /** Tests hand in a client; otherwise one is made from the settings. */
  client?: XClient;
  owner?: string;
}

export type XAdapter = ChannelAdapter<{ tweet: Tweet; users: ReadonlyMap<string, XUser> }> & {
  start(): Promise<void>;
  stop(): Promise<void>;
  links(): LinkStatus[];
  webhook(request: WebhookRequest): Promise<WebhookAnswer>;
  /** One poll now (the timer does it too); tests call it directly. */
  poll(): Promise<void>;
};

/** How long Redis remembers a tweet id; PostgreSQL's receipts remember it for good. */
const DEDUP_WINDOW_MS = 7 * 86_400_000;
/** The longest direct message X takes. */
const DM_MAX_CHARS = 10_000;

const NOTICES: Record<'dm_sent' | 'dm_closed', Record<Lang, string>> = {
  dm_sent: {
    id: 'LAPOR! Laporan Anda tercatat dengan nomor {trackingId}. Detailnya kami kirim lewat pesan langsung.',
    en: 'LAPOR! Your report is recorded with number {trackingId}. The details were sent by direct message.',
  },
  dm_closed: {
    id: 'LAPOR! Ada kabar untuk laporan {trackingId}, tetapi pesan langsung Anda tertutup. Izinkan pesan langsung dari @{account} agar kami dapat mengirim detailnya.',
    en: 'LAPOR! There is news about report {trackingId}, but your direct messages are closed. Allow direct messages from @{account} so we can send the details.',
  },
};

export function createXAdapter(context: XAdapterContext): XAdapter {
  const { settings, log, counters } = context;
  const client = context.client ?? createXClient(settings);
  const budget = new MonthlyBudget(context.redis, context.prefix, { reads: settings.monthlyReads, posts: settings.monthlyPosts });
  const owner = context.owner ?? randomUUID();
  let accountId = settings.userId;
  let state = settings.mode === 'poll' ? 'starting' : 'webhook';
  let timer: NodeJS.Timeout | undefined;
  let refresher: NodeJS.Timeout | undefined;
  let running = false;
  let failures = 0;
  let polling: Promise<void> | undefined;

  const normalize = (tweet: Tweet, users: ReadonlyMap<string, XUser>, now = new Date()): InboundMessage | Ignored =>
    toInbound(tweet, { accountId: accountId ?? '', account: settings.account, hashtag: settings.hashtag, users, now });

  async function resolveAccountId(): Promise<string> {
    if (accountId) return accountId;
    const me = z.object({ data: z.object({ id: z.string().regex(/^[0-9]{1,20}$/) }) }).parse((await client.me()).body);
    accountId = me.data.id;
    return accountId;
  }

  async function poll(): Promise<void> {
    const userId = await resolveAccountId();
    const outcome = await pollOnce(
      {
        client,
        cursors: context.cursors,
        intake: context.intake,
        budget,
        log,
        account: settings.account,
        maxResults: settings.pollMaxResults,
        dedupWindowMs: DEDUP_WINDOW_MS,
        normalize: (tweet, users) => normalize(tweet, users),
        photos: (tweet, media) => photosOf(tweet, media, context.attachments, log),
        counters: { ignored: (reason) => counters.ignored(reason), malformed: () => counters.malformed('tweet'), spent: (reads) => counters.spent('reads', reads) },
      },
      userId,
    );
    state = outcome.stopped === 'budget' ? 'budget_spent' : 'polling';
    if (outcome.stored || outcome.ignored) log.info({ pages: outcome.pages, stored: outcome.stored, ignored: outcome.ignored }, 'x mentions read');
    return scheduleAfter(nextDelay({ intervalMs: settings.pollIntervalMs, now: Date.now(), rateLimit: outcome.rateLimit, failures: 0 }));
  }

  function scheduleAfter(delayMs: number): void {
    if (!running) return;
    clearTimeout(timer);
    timer = setTimeout(tick, delayMs);
    timer.unref();
  }

  function tick(): void {
    polling = poll()
      .then(() => {
        failures = 0;
      })
      .catch((err: unknown) => {
        failures++;
        const status = err instanceof XApiError ? err.status : undefined;
        state = status === 429 ? 'rate_limited' : 'backoff';
        log.warn({ err: { message: (err as Error).message }, status, failures }, 'x poll failed');
        scheduleAfter(nextDelay({ intervalMs: settings.pollIntervalMs, now: Date.now(), rateLimit: err instanceof XApiError ? err.rateLimit : undefined, failures, ...(status ? { status } : {}) }));
      });
  }

  const lease = new Lease(context.redis, `${context.prefix}:x:lease:${settings.account}`, owner, settings.leaseMs, log, (held) => {
    log.info({ account: settings.account, held }, held ? 'x poller lease taken' : 'x poller lease released');
    running = held;
    if (held) {
      state = 'polling';
      scheduleAfter(0);
    } else {
      clearTimeout(timer);
      state = 'standby';
    }
  });

  async function post(text: string, inReplyTo: string | undefined): Promise<string> {
    const reply = inReplyTo ? { reply: { in_reply_to_tweet_id: inReplyTo } } : {};
    let response;
    try {
      response = await client.post({ text, ...reply });
    } catch (err) {
      // X refuses a post identical to a recent one of the account (a citizen asking CEK twice gets
      // the same status line): said again with the time, it is a new post, and true.
      if (!(err instanceof XApiError && err.status === 403 && /duplicate/i.test(err.detail ?? ''))) throw err;
      const stamped = `${text} (${wibTime(new Date())} WIB)`;
      response = await client.post({ text: fitPost(stamped, {}) === stamped ? stamped : `${fitPost(text, { max: 280 - 16 })} (${wibTime(new Date())} WIB)`, ...reply });
    }
    const id = z.object({ data: z.object({ id: z.string() }) }).safeParse(response.body);
    await spend('posts', 1);
    return id.success ? id.data.data.id : '';
  }

  async function spend(kind: 'reads' | 'posts', count: number): Promise<void> {
    await budget.spend(kind, count);
    counters.spent(kind, count);
  }

  async function send(message: OutboundMessage): Promise<SendResult> {
    if (!canPost(settings)) throw new SendError('unavailable', 'x: no user-context credentials to post with (LAPOR_X_APP_KEY, _APP_SECRET, _ACCESS_TOKEN, _ACCESS_SECRET)');
    await budget.refresh();
    // Checked again within a minute, not only at the month's end: the operator may raise the budget.
    if (budget.left('posts') <= 0) throw new SendError('throttled', 'x: the monthly post budget is spent', { retryAfterMs: Math.min(budget.untilNextMonth(), 60_000) });
    const tweetId = message.replyContext.tweetId;
    const userId = message.to?.replace(/^x:/, '') || message.replyContext.authorId;
    const trackingId = message.trackingId ?? '';
    try {
      if (message.privacy === 'public') {
        if (!tweetId) throw new SendError('invalid_recipient', 'x: no tweet to reply to');
        const link = trackingId ? `${context.publicUrl.replace(/\/$/, '')}/lapor/${trackingId}` : undefined;
        const text = fitPost(message.text, { ...(link && !message.text.includes(link) ? { link } : {}), keep: trackingId ? [trackingId] : [] });
        return { status: 'sent', transportId: await post(text, tweetId) };
      }
      // Anonim and rahasia: never a word of the report in public. The detail by direct message; a
      // neutral notice in the thread on the first answer, or whenever the message could not be sent.
      const ids: string[] = [];
      let delivered = false;
      if (userId) {
        try {
          const dm = await client.directMessage(userId, message.text.slice(0, DM_MAX_CHARS));
          await spend('posts', 1);
          const event = z.object({ data: z.object({ dm_event_id: z.string() }) }).safeParse(dm.body);
          if (event.success) ids.push(event.data.data.dm_event_id);
          delivered = true;
        } catch (err) {
          if (!(err instanceof XApiError && err.status === 403)) throw err;
          log.info({ trackingId: message.trackingId }, 'x direct message refused (closed to us): a neutral notice in the thread instead');
        }
      }
      if (tweetId && (!delivered || message.kind === 'received')) {
        const notice = NOTICES[delivered ? 'dm_sent' : 'dm_closed'][message.lang].replace('{trackingId}', trackingId || '-').replace('{account}', settings.account);
        ids.push(await post(notice, tweetId));
      }
      if (!ids.length && !delivered) throw new SendError('invalid_recipient', 'x: direct messages closed and no thread to answer in');
      return { status: 'sent', transportId: ids.filter(Boolean).join(' ') };
    } catch (err) {
      throw toSendError(err);
    }
  }

  /** Account Activity: the CRC challenge on GET, signed deliveries on POST (signature over the raw bytes). */
  async function webhook(request: WebhookRequest): Promise<WebhookAnswer> {
    if (!settings.appSecret) return { status: 404, body: { error: 'not_found', message: 'The X webhook is not configured (LAPOR_X_APP_SECRET).' } };
    if (request.method === 'GET') {
      const token = request.query.crc_token;
      if (typeof token !== 'string' || !token || token.length > 1_000) return { status: 400, body: { error: 'bad_request', message: 'crc_token missing' } };
      return { status: 200, body: { response_token: `sha256=${hmac(settings.appSecret, token)}` } };
    }
    const signature = request.headers['x-twitter-webhooks-signature'];
    if (typeof signature !== 'string' || !verify(settings.appSecret, request.rawBody, signature)) {
      counters.malformed('signature');
      log.warn({ signed: typeof signature === 'string' }, 'x webhook delivery refused: bad or missing signature');
      return { status: 401, body: { error: 'unauthorized', message: 'bad or missing x-twitter-webhooks-signature' } };
    }
    const payload = jsonBody(request.rawBody);
    if (!payload) {
      counters.malformed('json');
      return NOT_JSON;
    }
    const delivery = z.object({ for_user_id: z.string(), tweet_create_events: z.array(z.unknown()).optional() }).safeParse(payload.value);
    if (!delivery.success) {
      counters.malformed('delivery');
      return { status: 400, body: { error: 'bad_request', message: 'not an Account Activity delivery' } };
    }
    // Signed with our app's secret, but the app may have other accounts subscribed to the same
    // webhook: for_user_id says whose activity this is, and only ours is read.
    let ours: string;
    try {
      ours = await resolveAccountId();
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'x webhook delivery not stored: the account id is unknown (LAPOR_X_USER_ID)');
      return { status: 503, body: { error: 'unavailable', message: 'not stored, deliver again' } };
    }
    if (delivery.data.for_user_id !== ours) return { status: 200, body: { ignored: 'another account' } };
    let stored = 0;
    for (const raw of delivery.data.tweet_create_events ?? []) {
      const v1 = V1TweetSchema.safeParse(raw);
      if (!v1.success) {
        counters.malformed('tweet');
        log.warn({ problem: v1.error.issues[0]?.message }, 'x webhook tweet skipped: not the shape the API reference describes');
        continue;
      }
      const { tweet, user } = fromV1(v1.data);
      const message = toInbound(tweet, { accountId: ours, account: settings.account, hashtag: settings.hashtag, users: new Map(user ? [[user.id, user]] : []), now: new Date() });
      if ('ignored' in message) {
        counters.ignored(message.reason);
        continue;
      }
      try {
        await context.intake.enqueue(message, { windowMs: DEDUP_WINDOW_MS });
        stored++;
      } catch (err) {
        if (!(err instanceof InboundRefusedError)) {
          log.warn({ err: { message: (err as Error).message } }, 'x webhook delivery not stored: X will deliver it again');
          return { status: 503, body: { error: 'unavailable', message: 'not stored, deliver again' } };
        }
        counters.malformed('refused');
        log.warn({ problems: err.problems }, 'x webhook tweet refused: it cannot be stored');
      }
    }
    return { status: 200, body: { stored } };
  }

  return {
    id: 'x',
    limits: { maxTextLength: DM_MAX_CHARS },
    capabilities: { keywords: true, publicReplies: true },
    normalize: ({ tweet, users }, { now }) => normalize(tweet, users, now),
    send,
    webhook,
    poll,
    async start() {
      await budget.refresh().catch(() => undefined);
      // canSend() reads the budget as last seen; other processes spend it too, and a month ends.
      refresher = setInterval(() => void budget.refresh().catch(() => undefined), Math.min(settings.pollIntervalMs, 30_000));
      refresher.unref();
      if (settings.mode === 'poll') lease.start();
    },
    async stop() {
      running = false;
      clearTimeout(timer);
      clearInterval(refresher);
      await polling?.catch(() => undefined);
      await lease.stop();
    },
    canSend: () => canPost(settings) && budget.left('posts') > 0,
    links: () => {
      const spent = budget.snapshot();
      const detail = `reads ${spent.reads.used}/${spent.reads.limit || '∞'}, posts ${spent.posts.used}/${spent.posts.limit || '∞'} this month`;
      const current = settings.mode === 'poll' && !lease.isHeld ? 'standby' : state;
      return [{ link: settings.account, state: current, ok: current !== 'backoff', detail }];
    },
  };
}

/** The time in Jakarta (UTC+7, no daylight saving), HH.MM.SS as Indonesians write it. */
function wibTime(at: Date): string {
  return new Date(at.getTime() + 7 * 3_600_000).toISOString().slice(11, 19).replace(/:/g, '.');
}

function hmac(secret: string, data: string | Buffer): string {
  return createHmac('sha256', secret).update(data).digest('base64');
}

function verify(secret: string, body: Buffer, signature: string): boolean {
  return sameSecret(signature, `sha256=${hmac(secret, body)}`);
}

/** X's answers in the closed vocabulary the notify worker understands. */
function toSendError(err: unknown): SendError {
  if (err instanceof SendError) return err;
  if (!(err instanceof XApiError)) return new SendError('unavailable', `x: ${(err as Error).message}`, { cause: err });
  if (err.status === 429) {
    const retryAfterMs = err.rateLimit ? Math.max(1_000, err.rateLimit.resetAt - Date.now()) : 60_000;
    return new SendError('throttled', 'x 429: rate limited', { retryAfterMs, cause: err });
  }
  if (err.status === 0 || err.status >= 500 || err.status === 401) return new SendError('unavailable', err.message, { cause: err });
  if (err.status === 403 && /duplicate/i.test(err.detail ?? '')) return new SendError('rejected', 'x refused a duplicate post', { cause: err });
  if (err.status === 403) return new SendError('invalid_recipient', err.message, { cause: err });
  return new SendError('rejected', err.message, { cause: err });
}
