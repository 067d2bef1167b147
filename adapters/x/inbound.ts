import { z } from 'zod';
import type { Ignored } from '../../src/core/channel.ts';
import type { InboundMessage } from '../../src/core/inbound.ts';

/**
 * What one tweet means, decided without I/O: a citizen's message for the gateway, or why it is not
 * one. Tweets come as X API v2 objects (the mentions timeline); the webhook's v1.1 objects are turned
 * into the same shape first (`fromV1`), so both paths decide alike and share one dedup key.
 *
 * Every field is optional but the id and the text: X leaves out what was not asked for, and the
 * `includes` may be missing altogether, so nothing here depends on them being present.
 */

const Id = z.string().regex(/^[0-9]{1,20}$/);

/** What the normalizer reads of a tweet's (or a long post's) entities. */
const EntitiesSchema = z.object({
  mentions: z.array(z.object({ username: z.string(), id: Id.optional() })).optional(),
  hashtags: z.array(z.object({ tag: z.string() })).optional(),
  urls: z.array(z.object({ url: z.string(), expanded_url: z.string().optional(), media_key: z.string().optional() })).optional(),
});

export const TweetSchema = z.object({
  id: Id,
  text: z.string(),
  author_id: Id.optional(),
  created_at: z.string().optional(),
  conversation_id: Id.optional(),
  edit_history_tweet_ids: z.array(Id).min(1).optional(),
  lang: z.string().optional(),
  in_reply_to_user_id: Id.optional(),
  referenced_tweets: z.array(z.object({ type: z.string(), id: Id })).optional(),
  entities: EntitiesSchema.optional(),
  attachments: z.object({ media_keys: z.array(z.string()).max(10).optional() }).optional(),
  /** A long post (over 280): `text` holds only its start. */
  note_tweet: z
    .object({
      text: z.string(),
      entities: EntitiesSchema.optional(),
    })
    .optional(),
});
export type Tweet = z.infer<typeof TweetSchema>;

export const UserSchema = z.object({ id: Id, username: z.string(), name: z.string().optional() });
export type XUser = z.infer<typeof UserSchema>;

/** One page of a timeline. Items are parsed one by one later, so one odd tweet never costs the page. */
export const PageSchema = z.object({
  data: z.array(z.unknown()).optional(),
  includes: z.object({ users: z.array(z.unknown()).optional(), tweets: z.array(z.unknown()).optional(), media: z.array(z.unknown()).optional() }).optional(),
  meta: z
    .object({ result_count: z.number().optional(), newest_id: Id.optional(), oldest_id: Id.optional(), next_token: z.string().optional() })
    .optional(),
  errors: z.array(z.unknown()).optional(),
});
export type Page = z.infer<typeof PageSchema>;

export interface NormalizeContext {
  /** Our account: its numeric id and its handle. */
  accountId: string;
  account: string;
  hashtag: string;
  /** Authors known from the page's `includes.users` (possibly none). */
  users: ReadonlyMap<string, XUser>;
  now: Date;
}

export function toInbound(tweet: Tweet, context: NormalizeContext): InboundMessage | Ignored {
  const ignored = (reason: string): Ignored => ({ ignored: true, reason });
  if (!tweet.author_id) return ignored('no author');
  if (tweet.author_id === context.accountId) return ignored('our own post');
  const refs = tweet.referenced_tweets ?? [];
  if (refs.some((r) => r.type === 'retweeted')) return ignored('retweet');

  const long = tweet.note_tweet;
  const entities = long?.entities ?? tweet.entities ?? {};
  const account = context.account.toLowerCase();
  const mentionsUs = (entities.mentions ?? []).some((m) => m.id === context.accountId || m.username.toLowerCase() === account);
  // A hashtag entity, not text: `#laporan` is another tag, and `#lapor` inside a URL is no tag at all.
  const tag = context.hashtag.normalize('NFC').toLowerCase();
  const tagged = (entities.hashtags ?? []).some((h) => h.tag.normalize('NFC').toLowerCase() === tag);
  const repliesToUs = tweet.in_reply_to_user_id === context.accountId;
  if (!mentionsUs && !repliesToUs) return ignored('not a mention of the account');
  // Without the hashtag only a reply in one of our threads counts (a follow-up, a status question).
  if (!tagged && !repliesToUs) return ignored('no hashtag');

  const quoted = refs.filter((r) => r.type === 'quoted').map((r) => r.id);
  const text = cleanText(long?.text ?? tweet.text, {
    account: context.account,
    hashtag: context.hashtag,
    // Links X added for attached media or the quoted post are not the citizen's words.
    dropUrls: (entities.urls ?? []).filter((u) => u.media_key || quoted.some((id) => u.expanded_url?.includes(`/status/${id}`))).map((u) => u.url),
  });

  // An edit is a new tweet id with the first version's id at the head of its history: keyed by that,
  // an edit of a filed tweet is the same message, and files nothing new.
  const first = tweet.edit_history_tweet_ids?.[0] ?? tweet.id;
  const repliedTo = refs.find((r) => r.type === 'replied_to')?.id;
  const threadIds = [...new Set([repliedTo, tweet.conversation_id].filter((id): id is string => Boolean(id) && id !== first))];
  const author = context.users.get(tweet.author_id);
  const createdAt = tweet.created_at ? new Date(tweet.created_at) : undefined;
  return {
    channel: 'x',
    account: context.account,
    externalId: first,
    dedupKey: `x_${first}`,
    sender: { address: `x:${tweet.author_id}`, ...(author ? { displayName: `@${author.username}` } : {}) },
    text,
    attachments: [],
    receivedAt: (createdAt && !Number.isNaN(createdAt.getTime()) && createdAt <= context.now ? createdAt : context.now).toISOString(),
    replyContext: { tweetId: tweet.id, authorId: tweet.author_id },
    ...(threadIds.length ? { thread: { ids: threadIds, ownerOnly: !tagged } } : {}),
    ...(tweet.lang === 'in' || tweet.lang === 'id' ? { lang: 'id' as const } : tweet.lang === 'en' ? { lang: 'en' as const } : {}),
  };
}

/**
 * The citizen's words: HTML entities decoded (X escapes &, < and > in `text`), the leading run of
 * @handles (a reply's automatic mentions) and our handle and hashtag anywhere removed, the given
 * links dropped, whitespace collapsed.
 */
export function cleanText(raw: string, options: { account: string; hashtag: string; dropUrls?: readonly string[] }): string {
  let text = raw.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  for (const url of options.dropUrls ?? []) text = text.split(url).join(' ');
  text = text.replace(/^(\s*@[A-Za-z0-9_]{1,15}\b)+/, ' ');
  const handle = new RegExp(`(^|[^\\p{L}\\p{N}_@])@${escape(options.account)}(?![A-Za-z0-9_])`, 'giu');
  const hashtag = new RegExp(`(^|[^\\p{L}\\p{N}_&#/])[#＃]${escape(options.hashtag)}(?![\\p{L}\\p{N}_])`, 'giu');
  text = text.replace(handle, '$1').replace(hashtag, '$1');
  return text.replace(/[ \t]+/g, ' ').replace(/ *\n */g, '\n').trim();
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** An Account Activity delivery: `tweet_create_events` carry v1.1 tweets. */
const V1EntitiesSchema = z.object({
  hashtags: z.array(z.object({ text: z.string() })).optional(),
  user_mentions: z.array(z.object({ screen_name: z.string(), id_str: Id.optional() })).optional(),
  urls: z.array(z.object({ url: z.string(), expanded_url: z.string().nullish() })).optional(),
  media: z.array(z.object({ url: z.string() })).optional(),
});

export const V1TweetSchema = z.object({
  id_str: Id,
  text: z.string().optional(),
  full_text: z.string().optional(),
  created_at: z.string().optional(),
  lang: z.string().optional(),
  user: z.object({ id_str: Id, screen_name: z.string(), name: z.string().optional() }).optional(),
  in_reply_to_status_id_str: Id.nullish(),
  in_reply_to_user_id_str: Id.nullish(),
  quoted_status_id_str: Id.nullish(),
  retweeted_status: z.object({ id_str: Id }).passthrough().nullish(),
  entities: V1EntitiesSchema.optional(),
  extended_tweet: z
    .object({
      full_text: z.string(),
      entities: V1EntitiesSchema.optional(),
    })
    .optional(),
  edit_history: z.object({ initial_tweet_id: Id, edit_tweet_ids: z.array(Id).optional() }).optional(),
});
export type V1Tweet = z.infer<typeof V1TweetSchema>;

/** A v1.1 tweet in the v2 shape `toInbound` reads, and its author for the `users` map. */
export function fromV1(v1: V1Tweet): { tweet: Tweet; user: XUser | undefined } {
  const entities = v1.extended_tweet?.entities ?? v1.entities ?? {};
  const refs = [
    ...(v1.retweeted_status ? [{ type: 'retweeted', id: v1.retweeted_status.id_str }] : []),
    ...(v1.quoted_status_id_str ? [{ type: 'quoted', id: v1.quoted_status_id_str }] : []),
    ...(v1.in_reply_to_status_id_str ? [{ type: 'replied_to', id: v1.in_reply_to_status_id_str }] : []),
  ];
  const createdAt = v1.created_at ? new Date(v1.created_at) : undefined;
  const tweet: Tweet = {
    id: v1.id_str,
    text: v1.extended_tweet?.full_text ?? v1.full_text ?? v1.text ?? '',
    ...(v1.user ? { author_id: v1.user.id_str } : {}),
    ...(createdAt && !Number.isNaN(createdAt.getTime()) ? { created_at: createdAt.toISOString() } : {}),
    ...(v1.edit_history ? { edit_history_tweet_ids: [v1.edit_history.initial_tweet_id] } : {}),
    ...(v1.lang ? { lang: v1.lang } : {}),
    ...(v1.in_reply_to_user_id_str ? { in_reply_to_user_id: v1.in_reply_to_user_id_str } : {}),
    ...(refs.length ? { referenced_tweets: refs } : {}),
    entities: {
      hashtags: (entities.hashtags ?? []).map((h) => ({ tag: h.text })),
      mentions: (entities.user_mentions ?? []).map((m) => ({ username: m.screen_name, ...(m.id_str ? { id: m.id_str } : {}) })),
      urls: [
        ...(entities.urls ?? []).map((u) => ({ url: u.url, ...(u.expanded_url ? { expanded_url: u.expanded_url } : {}) })),
        ...(entities.media ?? []).map((m) => ({ url: m.url, media_key: 'media' })),
      ],
    },
  };
  return { tweet, user: v1.user ? { id: v1.user.id_str, username: v1.user.screen_name, ...(v1.user.name ? { name: v1.user.name } : {}) } : undefined };
}
