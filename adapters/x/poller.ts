import type { Logger } from 'pino';
import { z } from 'zod';
import type { CursorStore, Ignored, IntakeSink } from '../../src/core/channel.ts';
import { crashPoint } from '../../src/core/crash.ts';
import { InboundRefusedError } from '../../src/core/errors.ts';
import type { Attachment, InboundMessage } from '../../src/core/inbound.ts';
import { MediaSchema, type Media } from './media.ts';
import type { MonthlyBudget } from './budget.ts';
import { XApiError, type RateLimit, type XClient } from './client.ts';
import { PageSchema, TweetSchema, UserSchema, type Tweet, type XUser } from './inbound.ts';

/**
 * Reads the account's mentions timeline and stores every tweet it finds.
 *
 * Where it stands is kept in PostgreSQL (channel_cursors): `sinceId`, the newest mention of the last
 * finished poll, and, while a poll pages back through a burst, the page token it has reached and the
 * newest id it will move to. `sinceId` moves only once every page of a poll is stored, and the token
 * after each stored page, so a restart continues the poll where it stopped; a tweet read twice
 * anyway (a crash between storing a page and recording it) is the same tweet id, and files nothing new.
 *
 * The very first poll (no cursor yet) reads one page and no further back: the gateway takes on the
 * mentions of the moment it starts, not the account's history.
 */

const CursorSchema = z.object({
  sinceId: z.string().optional(),
  /** A first poll has run (it may have found nothing, leaving no sinceId): later polls read every page. */
  primed: z.boolean().optional(),
  poll: z.object({ newestId: z.string().optional(), nextToken: z.string() }).optional(),
});
type Cursor = z.infer<typeof CursorSchema>;

export interface PollOutcome {
  pages: number;
  stored: number;
  ignored: number;
  /** Why the poll stopped before the end, if it did. */
  stopped?: 'budget';
  /** The rate-limit headers of the last page read. */
  rateLimit?: RateLimit | undefined;
}

/** Tweet fields the normalizer reads; `expansions` bring the authors and the tweets replied to. */
export const MENTION_QUERY = {
  expansions: 'author_id,referenced_tweets.id,attachments.media_keys',
  'tweet.fields': 'attachments,author_id,conversation_id,created_at,edit_history_tweet_ids,entities,in_reply_to_user_id,lang,note_tweet,referenced_tweets',
  'user.fields': 'username,name',
  'media.fields': 'type,url',
} as const;

export interface PollerContext {
  client: XClient;
  cursors: CursorStore;
  intake: IntakeSink;
  budget: MonthlyBudget;
  log: Logger;
  account: string;
  maxResults: number;
  /** How long an X tweet id is remembered in Redis before PostgreSQL's receipts alone decide. */
  dedupWindowMs: number;
  normalize(tweet: Tweet, users: ReadonlyMap<string, XUser>): InboundMessage | Ignored;
  /** The tweet's photos, stored as attachments (adapters/x/media.ts). */
  photos(tweet: Tweet, media: ReadonlyMap<string, Media>): Promise<Attachment[]>;
  counters: { ignored(reason: string): void; malformed(): void; spent(reads: number): void };
}

export async function pollOnce(context: PollerContext, userId: string): Promise<PollOutcome> {
  const { client, cursors, budget, log } = context;
  const saved = CursorSchema.safeParse((await cursors.get('x', context.account)) ?? {});
  let cursor: Cursor = saved.success ? saved.data : {};
  if (!saved.success) log.warn({ account: context.account }, 'x cursor unreadable: starting from the newest mentions');
  const outcome: PollOutcome = { pages: 0, stored: 0, ignored: 0 };
  const firstEver = cursor.sinceId === undefined && !cursor.poll && !cursor.primed;

  for (;;) {
    await budget.refresh();
    const left = budget.left('reads');
    if (left <= 0) return { ...outcome, stopped: 'budget' };
    const query: Record<string, string> = { ...MENTION_QUERY, max_results: String(Math.max(5, Math.min(context.maxResults, left))) };
    if (cursor.sinceId) query.since_id = cursor.sinceId;
    if (cursor.poll) query.pagination_token = cursor.poll.nextToken;

    let body: unknown;
    try {
      const response = await client.mentions(userId, query);
      body = response.body;
      outcome.rateLimit = response.rateLimit;
    } catch (err) {
      // X refuses a page token it no longer knows: start the poll again from sinceId.
      if (err instanceof XApiError && err.status === 400 && cursor.poll) {
        log.warn({ detail: err.detail }, 'x refused the page token: polling again from the last finished poll');
        cursor = { ...(cursor.sinceId ? { sinceId: cursor.sinceId } : {}) };
        await cursors.set('x', context.account, cursor);
        continue;
      }
      throw err;
    }
    outcome.pages++;
    const page = PageSchema.safeParse(body);
    if (!page.success) throw new XApiError(200, 'x mentions page is not what the API reference describes', undefined, page.error.issues[0]?.message);
    const items = page.data.data ?? [];
    await budget.spend('reads', items.length);
    context.counters.spent(items.length);
    // A 200 may carry `errors` beside the data (a referenced tweet deleted, a user suspended): the
    // data is still good; the errors are logged by kind (X's own words, no content).
    if (page.data.errors?.length) log.warn({ errors: page.data.errors.length, kinds: errorKinds(page.data.errors) }, 'x returned partial errors with the mentions');

    const users = new Map<string, XUser>();
    for (const raw of page.data.includes?.users ?? []) {
      const user = UserSchema.safeParse(raw);
      if (user.success) users.set(user.data.id, user.data);
    }
    const media = new Map<string, Media>();
    for (const raw of page.data.includes?.media ?? []) {
      const item = MediaSchema.safeParse(raw);
      if (item.success) media.set(item.data.media_key, item.data);
    }
    for (const raw of items) {
      const counted = await storeOne(context, raw, users, media);
      if (counted === 'stored') outcome.stored++;
      else outcome.ignored++;
    }

    crashPoint('x-page-stored');

    const newestId = cursor.poll ? cursor.poll.newestId : page.data.meta?.newest_id;
    const nextToken = page.data.meta?.next_token;
    if (nextToken && !firstEver) {
      cursor = { ...(cursor.sinceId ? { sinceId: cursor.sinceId } : {}), primed: true, poll: { ...(newestId ? { newestId } : {}), nextToken } };
      await cursors.set('x', context.account, cursor);
      // No request left in this window: the rest of the poll waits for the reset (the page token is
      // kept), rather than running into a 429.
      if (outcome.rateLimit && outcome.rateLimit.remaining <= 0) return outcome;
      continue;
    }
    const sinceId = newestId ?? cursor.sinceId;
    await cursors.set('x', context.account, { ...(sinceId ? { sinceId } : {}), primed: true });
    return outcome;
  }
}

/** One tweet of a page into the inbound queue, or a logged reason why not. Storage failures throw. */
async function storeOne(context: PollerContext, raw: unknown, users: ReadonlyMap<string, XUser>, media: ReadonlyMap<string, Media>): Promise<'stored' | 'ignored'> {
  const { log } = context;
  const tweet = TweetSchema.safeParse(raw);
  if (!tweet.success) {
    context.counters.malformed();
    log.warn({ problem: tweet.error.issues[0]?.message, path: tweet.error.issues[0]?.path.join('.') }, 'x tweet skipped: not the shape the API reference describes');
    return 'ignored';
  }
  const message = context.normalize(tweet.data, users);
  if ('ignored' in message) {
    context.counters.ignored(message.reason);
    log.debug({ tweetId: tweet.data.id, reason: message.reason }, 'x tweet not for us');
    return 'ignored';
  }
  if (tweet.data.attachments?.media_keys?.length) message.attachments = await context.photos(tweet.data, media);
  try {
    await context.intake.enqueue(message, { windowMs: context.dedupWindowMs });
    return 'stored';
  } catch (err) {
    if (!(err instanceof InboundRefusedError)) throw err;
    context.counters.malformed();
    log.warn({ tweetId: tweet.data.id, problems: err.problems }, 'x tweet refused: it cannot be stored');
    return 'ignored';
  }
}

function errorKinds(errors: readonly unknown[]): string[] {
  return [...new Set(errors.map((e) => (e && typeof e === 'object' && 'title' in e && typeof e.title === 'string' ? e.title : 'unknown')))];
}

/** How long to wait before the next poll, after a poll or a failure. */
export function nextDelay(options: { intervalMs: number; now: number; rateLimit?: RateLimit | undefined; failures: number; status?: number }): number {
  const { intervalMs, now, rateLimit, failures } = options;
  // 429, or no requests left in the window: wait for the window to reset, never hammer.
  if (rateLimit && (options.status === 429 || rateLimit.remaining <= 0)) return Math.max(intervalMs, rateLimit.resetAt - now + 1_000);
  if (options.status === 429) return Math.max(intervalMs, 15 * 60_000);
  // 5xx and network failures: back off, doubling up to 15 minutes.
  if (failures > 0) return Math.min(15 * 60_000, intervalMs * 2 ** Math.min(failures, 10));
  return intervalMs;
}
