import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { z } from 'zod';
import { verifyOAuth1 } from './oauth1.ts';
import { closeServer, listenOnLoopback } from '../fake-server.ts';

/**
 * A local X (Twitter) API v2 for the gateway's tests and local runs: the four endpoints the X adapter
 * uses (users/me, the mentions timeline, POST /2/tweets, DMs), X's auth rules (bearer = app-only,
 * OAuth 1.0a = user context, verified like X does), rate-limit headers and 429s, X's error bodies,
 * and an Account Activity style webhook (CRC check, signed tweet_create_events). A control API under
 * /_fake/ (and the same methods on the class) plays the citizens: it creates tweets with entities
 * computed like X does, replays recorded pages, edits, injects faults and shows what the gateway did.
 *
 * Where X's behaviour was checked against its reference or real responses, the comment says so;
 * where the fake had to choose, it says "chosen". Plain HTTP on loopback only: a developer tool.
 * The `log` callback gets methods, paths (ids), auth kinds and statuses, never a text.
 */

// ---- shapes (zod at the boundaries; the types follow from them) ----

const Id = z.string().regex(/^[0-9]{1,19}$/);
const Span = { start: z.number().int().min(0), end: z.number().int().min(0) };
const EntitiesSchema = z.looseObject({
  mentions: z.array(z.looseObject({ ...Span, username: z.string(), id: Id.optional() })).optional(),
  hashtags: z.array(z.looseObject({ ...Span, tag: z.string() })).optional(),
  urls: z
    .array(
      z.looseObject({ ...Span, url: z.string(), expanded_url: z.string().optional(), display_url: z.string().optional(), media_key: z.string().optional() }),
    )
    .optional(),
});
const TweetSchema = z.looseObject({
  id: Id,
  text: z.string(),
  author_id: Id.optional(),
  created_at: z.string().optional(),
  conversation_id: Id.optional(),
  edit_history_tweet_ids: z.array(Id).optional(),
  lang: z.string().optional(),
  in_reply_to_user_id: Id.optional(),
  referenced_tweets: z.array(z.looseObject({ type: z.enum(['replied_to', 'quoted', 'retweeted']), id: Id })).optional(),
  entities: EntitiesSchema.optional(),
  attachments: z.looseObject({ media_keys: z.array(z.string()).optional() }).optional(),
  note_tweet: z.looseObject({ text: z.string(), entities: EntitiesSchema.optional() }).optional(),
});
const UserSchema = z.looseObject({ id: Id, username: z.string().regex(/^[A-Za-z0-9_]{1,15}$/), name: z.string() });
const MediaSchema = z.looseObject({ media_key: z.string(), type: z.string(), url: z.string().optional() });

export type V2Tweet = z.infer<typeof TweetSchema>;
export type TweetEntities = z.infer<typeof EntitiesSchema>;
export type XUser = z.infer<typeof UserSchema>;
export type XMedia = z.infer<typeof MediaSchema>;
type UrlEntity = NonNullable<TweetEntities['urls']>[number];
type MentionEntity = NonNullable<TweetEntities['mentions']>[number];
type HashtagEntity = NonNullable<TweetEntities['hashtags']>[number];

const Username = z
  .string()
  .regex(/^@?[A-Za-z0-9_]{1,15}$/)
  .transform((s) => s.replace(/^@/, ''));
const TweetInputSchema = z.strictObject({
  from: z.union([Username, z.strictObject({ id: Id.optional(), username: Username, name: z.string().min(1).max(50).optional() })]),
  text: z.string().max(25_000).default(''),
  inReplyTo: Id.optional(),
  quoteOf: Id.optional(),
  retweetOf: Id.optional(),
  media: z
    .array(
      z.strictObject({
        type: z.enum(['photo', 'video', 'animated_gif']).default('photo'),
        url: z.url(),
        width: z.number().int().positive().optional(),
        height: z.number().int().positive().optional(),
      }),
    )
    .max(4)
    .optional(),
  /** The author may post beyond 280 weighted characters (X Premium, a note tweet). Default true. */
  note: z.boolean().optional(),
  /** Default 'in', as the corpus: LAPOR!'s citizens write Indonesian. */
  lang: z.string().min(2).max(8).optional(),
});
const MentionsPageSchema = z.looseObject({
  data: z.array(TweetSchema).default([]),
  includes: z
    .looseObject({ users: z.array(UserSchema).optional(), tweets: z.array(TweetSchema).optional(), media: z.array(MediaSchema).optional() })
    .optional(),
});
const EndpointSchema = z.enum(['mentions', 'tweets', 'dm', 'me']);
const FaultSchema = z.union([
  z.strictObject({
    endpoint: EndpointSchema,
    status: z.union([z.literal(429), z.literal(500), z.literal(503)]),
    count: z.number().int().min(0).max(100_000).default(1),
    /** For a 429: when x-rate-limit-reset says the window ends. */
    resetInMs: z.number().int().min(0).max(3_600_000).default(3_000),
  }),
  z.strictObject({ endpoint: z.literal('mentions'), partialErrors: z.literal(true), count: z.number().int().min(0).max(100_000).default(1) }),
]);
const UserSettingsSchema = z.strictObject({ acceptsDms: z.boolean().optional(), username: Username.optional(), name: z.string().min(1).max(50).optional() });
const EditSchema = z.strictObject({ text: z.string().min(1).max(25_000) });
const WebhookSchema = z.strictObject({ url: z.url({ protocol: /^https?$/ }) });
const CreateTweetSchema = z.strictObject({
  text: z.string().optional(),
  reply: z
    .strictObject({ in_reply_to_tweet_id: Id, exclude_reply_user_ids: z.array(Id).optional(), auto_populate_reply_metadata: z.boolean().optional() })
    .optional(),
  quote_tweet_id: Id.optional(),
  reply_settings: z.enum(['following', 'mentionedUsers', 'subscribers', 'verified']).optional(),
});
const CreateDmSchema = z.strictObject({
  text: z.string().min(1).max(10_000).optional(),
  attachments: z.array(z.strictObject({ media_id: Id })).max(1).optional(),
});

export type TweetInput = z.input<typeof TweetInputSchema>;
export type MentionsPageInput = z.input<typeof MentionsPageSchema>;
export type FaultInput = z.input<typeof FaultSchema>;
export type Endpoint = z.infer<typeof EndpointSchema>;
type AuthKind = 'app' | 'user';

export interface FakeXOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  account?: { id: string; username: string; name: string };
  bearerToken?: string;
  consumerKey?: string;
  consumerSecret?: string;
  accessToken?: string;
  accessSecret?: string;
  /** OAuth1 signatures are checked as if the request had gone to this origin (the client signs for X). */
  signatureBase?: string;
  /** Requests per window, per endpoint and auth kind; a missing kind means the endpoint refuses it. */
  rateLimits?: Partial<Record<Endpoint, { user?: number; app?: number }>>;
  windowMs?: number;
  /** The Account Activity API also delivers the subscribed account's own tweets. Default true. */
  webhookOwnPosts?: boolean;
  log?: (line: string) => void;
}

export interface PostRecord {
  index: number;
  id: string;
  /** As the client sent it (not escaped, links not wrapped). */
  text: string;
  in_reply_to_tweet_id: string | null;
  quote_tweet_id: string | null;
  created_at: string;
}

export interface DmRecord {
  index: number;
  to: string;
  text: string;
  dm_event_id: string;
  dm_conversation_id: string;
  created_at: string;
}

export interface WebhookDelivery {
  index: number;
  tweetId: string;
  /** The receiver's HTTP status; null when it could not be reached (then `error`). */
  status: number | null;
  error?: string;
}

export interface FakeXStats {
  /** API calls per endpoint and auth kind, refused ones included; `none` = no or bad credentials. */
  requests: Record<Endpoint, { app: number; user: number; none: number }>;
  /** 429s served (the limit's and injected ones). */
  rateLimited: Record<Endpoint, number>;
  /** Injected 5xx served. */
  serverErrors: Record<Endpoint, number>;
  posts: number;
  dms: number;
  webhook: { delivered: number; failed: number };
}

export type WebhookResult = { ok: true } | { ok: false; error: string };

// ---- X's bodies ----

type Body = Record<string, unknown>;
interface Reply {
  status: number;
  body: Body;
  headers?: Record<string, string>;
}
interface ParamError {
  parameters?: Record<string, string[]>;
  message: string;
}

const problem = (status: number, title: string, detail = title, type = 'about:blank'): Body => ({ title, type, status, detail });
const UNAUTHORIZED = problem(401, 'Unauthorized');
const NOT_FOUND = problem(404, 'Not Found');
const TOO_MANY = problem(429, 'Too Many Requests');
const TOO_LARGE = problem(413, 'Payload Too Large');
const SERVER_ERRORS: Record<number, Body> = { 500: problem(500, 'Internal Server Error'), 503: problem(503, 'Service Unavailable') };
const APP_ONLY_FORBIDDEN: Body = {
  title: 'Unsupported Authentication',
  detail:
    'Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  ' +
    'Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].',
  type: 'https://api.twitter.com/2/problems/unsupported-authentication',
  status: 403,
};
const forbidden = (detail: string): Body => ({ detail, type: 'about:blank', title: 'Forbidden', status: 403 });
const DUPLICATE = forbidden('You are not allowed to create a Tweet with duplicate content.');
// v1.1's error 385, which v2 still sends as a 403 detail.
const REPLY_HIDDEN = forbidden('You attempted to reply to a Tweet that is deleted or not visible to you.');
const QUOTE_HIDDEN = forbidden('You attempted to quote a Tweet that is deleted or not visible to you.'); // chosen, by analogy
// Chosen: v1.1's error 349 text in v2's problem shape; the v2 reference does not publish this body.
const DM_REFUSED = forbidden('You cannot send messages to this user.');
// Seen in clients' reports of v2: a 400 whose message points to twitter-text.
const TOO_LONG = 'Your Tweet text is too long. For more information on how Twitter determines text length see https://github.com/twitter/twitter-text.';

const invalidRequest = (errors: ParamError[]): Body => ({
  errors,
  title: 'Invalid Request',
  detail: 'One or more parameters to your request was invalid.',
  type: 'https://api.twitter.com/2/problems/invalid-request',
});
const notFoundError = (resource: 'user' | 'tweet' | 'media', value: string, parameter: string, by = 'id'): Body => ({
  value,
  detail: `Could not find ${resource} with ${by}: [${value}].`,
  title: 'Not Found Error',
  resource_type: resource,
  parameter,
  resource_id: value,
  type: 'https://api.twitter.com/2/problems/resource-not-found',
});

/** zod issues as X words schema errors (`$.reply.in_reply_to_tweet_id: is missing but it is required`). */
function schemaErrors(error: z.ZodError, input: unknown): ParamError[] {
  const at = (path: PropertyKey[]): unknown =>
    path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined), input);
  const name = (path: PropertyKey[]) => ['$', ...path.map(String)].join('.');
  return error.issues.flatMap((issue): ParamError[] => {
    if (issue.code === 'unrecognized_keys') {
      const why = 'is not defined in the schema and the schema does not allow additional properties';
      return issue.keys.map((k) => ({ message: `${name([...issue.path, k])}: ${why}` }));
    }
    const value = at(issue.path);
    if (issue.code === 'invalid_type' && value === undefined) {
      const parent = issue.path.slice(0, -1);
      return [{ parameters: { [name(parent)]: [JSON.stringify(at(parent) ?? null)] }, message: `${name(issue.path)}: is missing but it is required` }];
    }
    return [{ parameters: { [name(issue.path)]: [JSON.stringify(value ?? null)] }, message: `${name(issue.path)}: ${issue.message}` }];
  });
}

// Field and expansion names from the v2 reference; anything else is refused as X refuses it.
const words = (s: string): string[] => s.trim().split(/\s+/);
const TWEET_FIELDS = words(`article attachments author_id card_uri community_id context_annotations conversation_id created_at display_text_range
  edit_controls edit_history_tweet_ids entities geo id in_reply_to_user_id lang media_metadata non_public_metrics note_tweet organic_metrics
  possibly_sensitive promoted_metrics public_metrics referenced_tweets reply_settings scopes source text withheld`);
const USER_FIELDS = words(`affiliation confirmed_email connection_status created_at description entities id is_identity_verified location
  most_recent_tweet_id name parody pinned_tweet_id profile_banner_url profile_image_url protected public_metrics receives_your_dm subscription
  subscription_type url username verified verified_followers_count verified_type withheld`);
const MEDIA_FIELDS = words(`alt_text duration_ms height media_key non_public_metrics organic_metrics preview_image_url promoted_metrics
  public_metrics type url variants width`);
const TWEET_EXPANSIONS = words(`article.cover_media article.media_entities attachments.media_keys attachments.media_source_tweet attachments.poll_ids
  author_id edit_history_tweet_ids entities.mentions.username geo.place_id in_reply_to_user_id entities.note.mentions.username referenced_tweets.id
  referenced_tweets.id.attachments.media_keys referenced_tweets.id.author_id`);
const USER_EXPANSIONS = words('affiliation.user_id most_recent_tweet_id pinned_tweet_id');
const MENTIONS_PARAMS = words(`since_id until_id max_results pagination_token start_time end_time expansions tweet.fields user.fields media.fields
  place.fields poll.fields`);
const ME_PARAMS = words('expansions tweet.fields user.fields');
const DEFAULT_FIELDS = { tweet: ['id', 'text', 'edit_history_tweet_ids'], user: ['id', 'name', 'username'], media: ['media_key', 'type'] };

const paramError = (name: string, value: string, why: string): ParamError => ({
  parameters: { [name]: [value] },
  message: `The \`${name}\` query parameter value [${value}] ${why}`,
});

/** Unknown query parameters and list values, in X's words. */
function checkQuery(query: URLSearchParams, allowed: string[], lists: Record<string, string[]>): ParamError[] {
  const errors: ParamError[] = [];
  for (const [key, value] of query) {
    if (!allowed.includes(key)) {
      errors.push({ parameters: { [key]: [value] }, message: `The query parameter [${key}] is not one of [${allowed.join(',')}]` });
      continue;
    }
    const valid = lists[key];
    for (const item of valid ? value.split(',') : []) {
      if (!valid?.includes(item)) errors.push(paramError(key, item, `is not one of [${valid?.join(',')}]`));
    }
  }
  return errors;
}

const idError = (name: string, value: string): ParamError => paramError(name, value, 'does not match ^[0-9]{1,19}$');

/** Keeps X's default fields and the requested ones, in the object's own key order. */
function pick<T extends Record<string, unknown>>(value: T, defaults: string[], requested: Set<string>): Body {
  return Object.fromEntries(Object.entries(value).filter(([k]) => defaults.includes(k) || requested.has(k)));
}

// ---- text: weighting, links, entities (X counts and indexes in code points) ----

const MAX_WEIGHT = 280;
const URL_WEIGHT = 23;
const WEIGHT_ONE: Array<[number, number]> = [
  [0x0000, 0x10ff],
  [0x2000, 0x200d],
  [0x2010, 0x201f],
  [0x2032, 0x2037],
];
const DISPLAY_URL_MAX = 26;
const URL_RE = /https?:\/\/[^\s<>"]+/giu;
const MENTION_RE = /(?<![A-Za-z0-9_!#$%&*@＠])[@＠]([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_@＠])/gu;
const HASHTAG_RE = /(?<![\p{L}\p{M}\p{N}_&])[#＃]([\p{L}\p{M}\p{N}_]+)/gu;

/** X sends text with &, < and > HTML-escaped (nothing else); the corpus shows `&amp;`. */
export const htmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const htmlUnescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const cpLength = (s: string): number => Array.from(s).length;
const charWeight = (ch: string): number => {
  const cp = ch.codePointAt(0) ?? 0;
  return WEIGHT_ONE.some(([lo, hi]) => cp >= lo && cp <= hi) ? 1 : 2;
};

/** http(s) links, trailing punctuation left out as twitter-text does; UTF-16 indices. */
function findUrls(text: string): Array<{ index: number; url: string }> {
  const found: Array<{ index: number; url: string }> = [];
  for (const m of text.matchAll(URL_RE)) {
    const url = m[0].replace(/[.,:;!?'")\]]+$/u, '');
    if (/^https?:\/\/[^/]/i.test(url)) found.push({ index: m.index, url });
  }
  return found;
}

/** The text cut into what weighs together: each link is one piece of 23, any other code point 1 or 2. */
function weighedPieces(text: string): Array<{ text: string; weight: number }> {
  const pieces: Array<{ text: string; weight: number }> = [];
  const chars = (s: string) => Array.from(s, (ch) => pieces.push({ text: ch, weight: charWeight(ch) }));
  let last = 0;
  for (const { index, url } of findUrls(text)) {
    chars(text.slice(last, index));
    pieces.push({ text: url, weight: URL_WEIGHT });
    last = index + url.length;
  }
  chars(text.slice(last));
  return pieces;
}

/** twitter-text's weighted length, simplified: NFC, ranges weigh 1, the rest 2, links 23. */
export function weightedLength(text: string): number {
  return weighedPieces(text.normalize('NFC')).reduce((sum, p) => sum + p.weight, 0);
}

function truncateWeighted(text: string, max: number): string {
  let weight = 0;
  let out = '';
  for (const piece of weighedPieces(text)) {
    if (weight + piece.weight > max) break;
    weight += piece.weight;
    out += piece.text;
  }
  return out;
}

/** UTF-16 index → code point index, for a text. */
function codePointIndexer(text: string): (utf16: number) => number {
  const offsets: number[] = [];
  let cp = 0;
  for (const ch of text) {
    for (let k = 0; k < ch.length; k++) offsets.push(cp);
    cp++;
  }
  return (i) => offsets[i] ?? cp;
}

const TCO_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** A t.co link (23 characters, like X's) that is stable for a seed. */
function tco(seed: string): { url: string; code: string } {
  const digest = createHash('sha256').update(seed).digest();
  const code = Array.from(digest.subarray(0, 10), (b) => TCO_ALPHABET[b % 62]).join('');
  return { url: `https://t.co/${code}`, code };
}
function displayUrl(url: string): string {
  const bare = Array.from(url.replace(/^https?:\/\/(www\.)?/i, ''));
  return bare.length > DISPLAY_URL_MAX ? `${bare.slice(0, DISPLAY_URL_MAX).join('')}…` : bare.join('');
}

interface LinkInfo {
  expanded: string;
  display: string;
  mediaKey?: string;
}

/**
 * Entities of an (escaped) text as v2 gives them: code point `start`/`end`, mentions with the user's
 * id, hashtags without '#', links with their expansion (and media_key for a media link). Nothing is
 * taken from inside a link.
 */
function extractEntities(text: string, links: ReadonlyMap<string, LinkInfo[]>, resolve: (username: string) => XUser): TweetEntities | undefined {
  const at = codePointIndexer(text);
  const spans: Array<[number, number]> = [];
  const urls: UrlEntity[] = [];
  for (const { index, url } of findUrls(text)) {
    spans.push([index, index + url.length]);
    for (const info of links.get(url) ?? [{ expanded: url, display: displayUrl(url) }]) {
      const media = info.mediaKey ? { media_key: info.mediaKey } : {};
      urls.push({ start: at(index), end: at(index + url.length), url, expanded_url: info.expanded, display_url: info.display, ...media });
    }
  }
  const outsideLinks = (i: number) => !spans.some(([a, b]) => i >= a && i < b);
  const mentions: MentionEntity[] = [];
  for (const m of text.matchAll(MENTION_RE)) {
    const username = m[1] ?? '';
    if (outsideLinks(m.index)) mentions.push({ start: at(m.index), end: at(m.index + m[0].length), username, id: resolve(username).id });
  }
  const hashtags: HashtagEntity[] = [];
  for (const m of text.matchAll(HASHTAG_RE)) {
    const tag = m[1] ?? '';
    if (!/^[0-9]+$/.test(tag) && outsideLinks(m.index)) hashtags.push({ start: at(m.index), end: at(m.index + m[0].length), tag });
  }
  const entities: TweetEntities = {
    ...(mentions.length ? { mentions } : {}),
    ...(hashtags.length ? { hashtags } : {}),
    ...(urls.length ? { urls } : {}),
  };
  return Object.keys(entities).length ? entities : undefined;
}

function shiftEntities(entities: TweetEntities | undefined, by: number): TweetEntities {
  const shift = <T extends { start: number; end: number }>(list: T[] | undefined): T[] =>
    (list ?? []).map((e) => ({ ...e, start: e.start + by, end: e.end + by }));
  return { mentions: shift(entities?.mentions), hashtags: shift(entities?.hashtags), urls: shift(entities?.urls) };
}

/** Only entities that end within the first `length` code points (a note tweet's short `text`). */
function entitiesWithin(entities: TweetEntities | undefined, length: number): TweetEntities | undefined {
  const keep = <T extends { end: number }>(list: T[] | undefined) => (list ?? []).filter((e) => e.end <= length);
  const kept: TweetEntities = {};
  for (const key of ['mentions', 'hashtags', 'urls'] as const) {
    const list = keep<{ end: number }>(entities?.[key]);
    if (list.length) Object.assign(kept, { [key]: list });
  }
  return Object.keys(kept).length ? kept : undefined;
}

// ---- ids and pagination tokens ----

const TWITTER_EPOCH = 1288834974657n;
const MIN_ID = 1900000000000000000n; // above every id of the recorded corpus
const byIdAsc = (a: string, b: string) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);
const snowflakeTime = (id: string): Date => new Date(Number((BigInt(id) >> 22n) + TWITTER_EPOCH));

/** Opaque to clients; says which side of which id the next page lies, so new tweets never shift it. */
function encodeToken(direction: 'next' | 'prev', id: string): string {
  return (direction === 'next' ? '7' : '8') + BigInt(id).toString(36).padStart(13, '0');
}
function decodeToken(token: string): { direction: 'next' | 'prev'; id: bigint } | null {
  const m = /^([78])([0-9a-z]{13})$/.exec(token);
  if (!m) return null;
  let id = 0n;
  for (const c of m[2] ?? '') id = id * 36n + BigInt(parseInt(c, 36));
  return { direction: m[1] === '7' ? 'next' : 'prev', id };
}

// ---- v1.1 rendering, for the webhook ----

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SOURCE = '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>';
const V1_SHORT = 140;

/** "Wed Oct 10 20:19:24 +0000 2018". */
export function v1Date(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const time = `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${p(d.getUTCDate())} ${time} +0000 ${d.getUTCFullYear()}`;
}

// ---- the server ----

interface StatusFault {
  status: 429 | 500 | 503;
  remaining: number;
  resetInMs: number;
}

type Fields = Record<'tweet' | 'user' | 'media', Set<string>>;
type Limits = Record<Endpoint, { user?: number; app?: number }>;
// X's per-15-minute limits; POST /2/tweets is really per 24 h on X, kept per window here (configurable).
const DEFAULT_LIMITS: Limits = { mentions: { user: 180, app: 450 }, tweets: { user: 200 }, dm: { user: 200 }, me: { user: 75 } };
const MAX_BODY = 1024 * 1024;
const TIMELINE_REACH = 800; // the mentions timeline serves the 800 most recent (reference)
const DUPLICATE_WINDOW_MS = 24 * 3600_000; // chosen
const ENDPOINTS = EndpointSchema.options;

interface ComposeInput {
  text: string;
  replyTo?: V2Tweet;
  quote?: V2Tweet;
  media: Array<{ type: string; url: string; width?: number; height?: number }>;
  lang: string;
  /** Beyond 280 weighted characters becomes a note tweet; otherwise it is refused. */
  allowLong: boolean;
  /** For an edit: the ids of the earlier versions, oldest first. */
  history?: string[];
}

class ControlError extends Error {
  constructor(
    readonly status: number,
    readonly details: string[],
  ) {
    super(details.join('; '));
  }
}

const parse = <S extends z.ZodType>(schema: S, value: unknown): z.infer<S> => {
  const result = schema.safeParse(value);
  if (!result.success) throw new ControlError(400, result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`));
  return result.data;
};

/** The id a user created by username alone gets: the same for the same name, so a CLI can name users. */
export function derivedUserId(username: string): string {
  const n = BigInt(`0x${createHash('sha256').update(username.toLowerCase()).digest('hex').slice(0, 15)}`);
  return (1_000_000_000_000_000_000n + (n % 8_000_000_000_000_000_000n)).toString();
}

async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Past the limit, keep draining (and dropping) so the client can read our 413.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  }
  return size > MAX_BODY ? null : Buffer.concat(chunks);
}

function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  if (body.length === 0) return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) };
  } catch {
    return { ok: false };
  }
}
const MALFORMED_JSON = invalidRequest([{ message: 'Request body is not valid JSON.' }]); // chosen wording

const emptyStats = (): FakeXStats => ({
  requests: Object.fromEntries(ENDPOINTS.map((e) => [e, { app: 0, user: 0, none: 0 }])) as FakeXStats['requests'],
  rateLimited: Object.fromEntries(ENDPOINTS.map((e) => [e, 0])) as FakeXStats['rateLimited'],
  serverErrors: Object.fromEntries(ENDPOINTS.map((e) => [e, 0])) as FakeXStats['serverErrors'],
  posts: 0,
  dms: 0,
  webhook: { delivered: 0, failed: 0 },
});

export interface FakeXCredentials {
  bearerToken: string;
  consumerKey: string;
  consumerSecret: string;
  accessToken: string;
  accessSecret: string;
}

export class FakeXApi {
  readonly account: XUser;
  /** What a client must present: the bearer token (app-only) and the OAuth 1.0a keys (user context). */
  readonly credentials: Readonly<FakeXCredentials>;
  private readonly keys: Omit<FakeXCredentials, 'bearerToken'>;
  private readonly bearerToken: string;
  private readonly signatureBase: string;
  private readonly limits: Limits;
  private readonly windowMs: number;
  private readonly webhookOwnPosts: boolean;
  private readonly logLine: (line: string) => void;

  private users = new Map<string, XUser>();
  private usernames = new Map<string, string>();
  private acceptsDms = new Map<string, boolean>();
  private tweets = new Map<string, V2Tweet>();
  private media = new Map<string, XMedia>();
  /** Per user id: the ids of tweets that mention (or reply to) them, newest first. */
  private timelines = new Map<string, string[]>();
  private postLog: PostRecord[] = [];
  private dmLog: DmRecord[] = [];
  private windows = new Map<string, { resetAt: number; used: number }>();
  private nonces = new Map<string, number>();
  private statusFaults = new Map<Endpoint, StatusFault>();
  private partialErrors = 0;
  private webhookUrl: string | null = null;
  private deliveries: WebhookDelivery[] = [];
  private pending: Promise<void> = Promise.resolve();
  private counters = emptyStats();
  private lastId = 0n;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    options: FakeXOptions,
  ) {
    this.account = { ...(options.account ?? { id: '1296401852', username: 'LAPOR1708', name: 'LAPOR! 1708' }) };
    this.bearerToken = options.bearerToken ?? 'fake-bearer';
    this.keys = {
      consumerKey: options.consumerKey ?? 'fake-app-key',
      consumerSecret: options.consumerSecret ?? 'fake-app-secret',
      accessToken: options.accessToken ?? 'fake-access-token',
      accessSecret: options.accessSecret ?? 'fake-access-secret',
    };
    this.credentials = Object.freeze({ bearerToken: this.bearerToken, ...this.keys });
    this.signatureBase = (options.signatureBase ?? 'https://api.x.com').replace(/\/+$/, '');
    this.limits = Object.fromEntries(ENDPOINTS.map((e) => [e, { ...DEFAULT_LIMITS[e], ...options.rateLimits?.[e] }])) as Limits;
    this.windowMs = options.windowMs ?? 900_000;
    this.webhookOwnPosts = options.webhookOwnPosts ?? true;
    this.logLine = options.log ?? (() => undefined);
    this.reset();
  }

  static async start(options: FakeXOptions = {}): Promise<FakeXApi> {
    const { server, port } = await listenOnLoopback(options.port);
    const fake = new FakeXApi(server, port, options);
    server.on('request', (req, res) => void fake.handle(req, res).catch(() => res.destroy()));
    server.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    server.on('error', (error: Error) => fake.logLine(`server error: ${error.message}`));
    fake.logLine(`fake X API on 127.0.0.1:${port}`);
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await this.pending;
    await closeServer(this.server);
  }

  /** Forgets the world and the counters; options (keys, limits) stay. */
  reset(): void {
    this.users = new Map([[this.account.id, this.account]]);
    this.usernames = new Map([[this.account.username.toLowerCase(), this.account.id]]);
    this.acceptsDms = new Map();
    this.tweets = new Map();
    this.media = new Map();
    this.timelines = new Map();
    this.postLog = [];
    this.dmLog = [];
    this.windows = new Map();
    this.nonces = new Map();
    this.statusFaults = new Map();
    this.partialErrors = 0;
    this.webhookUrl = null;
    this.deliveries = [];
    this.counters = emptyStats();
  }

  // ---- the world (control) ----

  /** A citizen (or anyone) tweets. Mentions of / replies to the account reach its timeline and webhook. */
  tweet(input: TweetInput): V2Tweet {
    const spec = parse(TweetInputSchema, input);
    const author = this.ensureUser(typeof spec.from === 'string' ? { username: spec.from } : spec.from);
    const find = (id: string | undefined, what: string) => {
      if (id === undefined) return undefined;
      const found = this.tweets.get(id);
      if (!found) throw new ControlError(404, [`${what}: no tweet ${id}`]);
      return found;
    };
    const retweeted = find(spec.retweetOf, 'retweetOf');
    const tweet = retweeted
      ? this.composeRetweet(author, retweeted)
      : this.compose(author, {
          text: spec.text,
          replyTo: find(spec.inReplyTo, 'inReplyTo'),
          quote: find(spec.quoteOf, 'quoteOf'),
          media: spec.media ?? [],
          lang: spec.lang ?? 'in',
          allowLong: spec.note ?? true,
        });
    this.register(tweet);
    return structuredClone(tweet);
  }

  /** X's edit: a new tweet (new id) whose edit_history_tweet_ids is the whole chain, oldest first. */
  edit(id: string, text: string): V2Tweet {
    const { text: newText } = parse(EditSchema, { text });
    const original = this.tweets.get(id);
    if (!original) throw new ControlError(404, [`no tweet ${id}`]);
    const chain = original.edit_history_tweet_ids ?? [id];
    if (chain.at(-1) !== id) throw new ControlError(409, [`tweet ${id} is not the latest version (${chain.at(-1)})`]);
    if (original.referenced_tweets?.some((r) => r.type === 'retweeted')) throw new ControlError(409, ['a retweet cannot be edited']);
    const author = this.users.get(original.author_id ?? '');
    if (!author) throw new ControlError(409, [`the author of ${id} is unknown`]);
    const ref = (type: string) => this.tweets.get(original.referenced_tweets?.find((r) => r.type === type)?.id ?? '');
    const edited = this.compose(author, {
      text: newText,
      replyTo: ref('replied_to'),
      quote: ref('quoted'),
      media: [],
      lang: original.lang ?? 'in',
      allowLong: true,
      history: chain,
    });
    if (original.attachments) edited.attachments = original.attachments;
    for (const version of chain) {
      const older = this.tweets.get(version);
      if (older) older.edit_history_tweet_ids = edited.edit_history_tweet_ids;
    }
    this.register(edited);
    return structuredClone(edited);
  }

  /** Puts recorded v2 tweets (a corpus page) on the account's mentions timeline exactly as they are. */
  injectMentions(page: MentionsPageInput): { injected: number } {
    const { data, includes } = parse(MentionsPageSchema, page);
    for (const user of includes?.users ?? []) this.putUser(user);
    for (const media of includes?.media ?? []) this.media.set(media.media_key, media);
    for (const tweet of [...(includes?.tweets ?? []), ...data]) {
      this.tweets.set(tweet.id, tweet);
      if (BigInt(tweet.id) > this.lastId) this.lastId = BigInt(tweet.id);
    }
    for (const tweet of data) this.addToTimeline(this.account.id, tweet.id);
    return { injected: data.length };
  }

  setUser(id: string, settings: z.input<typeof UserSettingsSchema>): void {
    const { acceptsDms, username, name } = parse(UserSettingsSchema, settings);
    parse(Id, id);
    if (username) this.putUser({ id, username, name: name ?? username });
    if (acceptsDms !== undefined) this.acceptsDms.set(id, acceptsDms);
  }

  /** The next `count` calls to an endpoint fail (status), or mentions pages lose a referenced tweet. */
  fault(input: FaultInput): void {
    const spec = parse(FaultSchema, input);
    if ('partialErrors' in spec) this.partialErrors = spec.count;
    else this.statusFaults.set(spec.endpoint, { status: spec.status, remaining: spec.count, resetInMs: spec.resetInMs });
  }

  tweetById(id: string): V2Tweet | undefined {
    const tweet = this.tweets.get(id);
    return tweet && structuredClone(tweet);
  }

  userById(id: string): XUser | undefined {
    const user = this.users.get(id);
    return user && { ...user };
  }

  // ---- what the client did ----

  posts(filter: { inReplyTo?: string; since?: number } = {}): PostRecord[] {
    const wanted = (p: PostRecord) => p.index >= (filter.since ?? 0) && (!filter.inReplyTo || p.in_reply_to_tweet_id === filter.inReplyTo);
    return this.postLog.filter(wanted).map((p) => ({ ...p }));
  }

  dms(filter: { to?: string } = {}): DmRecord[] {
    return this.dmLog.filter((d) => !filter.to || d.to === filter.to).map((d) => ({ ...d }));
  }

  stats(): FakeXStats {
    return structuredClone(this.counters);
  }

  // ---- webhook ----

  /** Runs the CRC check against `url` (GET ?crc_token=…) and registers it only when answered right. */
  async registerWebhook(url: string): Promise<WebhookResult> {
    const { url: target } = parse(WebhookSchema, { url });
    const token = randomBytes(24).toString('base64url');
    const expected = `sha256=${createHmac('sha256', this.keys.consumerSecret).update(token).digest('base64')}`;
    const crcUrl = new URL(target);
    crcUrl.searchParams.set('crc_token', token);
    try {
      const res = await fetch(crcUrl, { signal: AbortSignal.timeout(3_000) });
      if (res.status !== 200) return { ok: false, error: `CRC check answered HTTP ${res.status}` };
      const body = z.object({ response_token: z.string() }).safeParse(await res.json().catch(() => null));
      if (!body.success) return { ok: false, error: 'CRC check answer has no response_token' };
      if (body.data.response_token !== expected) return { ok: false, error: 'CRC check answer has a wrong response_token' };
    } catch (error) {
      return { ok: false, error: `CRC check failed: ${(error as Error).message}` };
    }
    this.webhookUrl = target;
    this.logLine('webhook registered');
    return { ok: true };
  }

  unregisterWebhook(): void {
    this.webhookUrl = null;
  }

  webhookDeliveries(): WebhookDelivery[] {
    return this.deliveries.map((d) => ({ ...d }));
  }

  /** Resolves once every delivery queued so far has been answered (or failed). */
  async settled(): Promise<void> {
    await this.pending;
  }

  // ---- building tweets ----

  private nextId(): bigint {
    const fromClock = (BigInt(Date.now()) - TWITTER_EPOCH) << 22n;
    let id = fromClock > this.lastId ? fromClock : this.lastId + 1n;
    if (id < MIN_ID) id = MIN_ID;
    this.lastId = id;
    return id;
  }

  private putUser(user: XUser): void {
    const previous = this.users.get(user.id);
    if (previous) this.usernames.delete(previous.username.toLowerCase());
    this.users.set(user.id, user);
    this.usernames.set(user.username.toLowerCase(), user.id);
  }

  /** The user of that username (the account included), created the first time it is seen. */
  private ensureUser(who: { id?: string; username: string; name?: string }): XUser {
    const knownId = this.usernames.get(who.username.toLowerCase());
    const known = knownId ? this.users.get(knownId) : undefined;
    if (known && (!who.id || who.id === known.id)) {
      if (who.name && known.id !== this.account.id) known.name = who.name;
      return known;
    }
    const user = { id: who.id ?? derivedUserId(who.username), username: who.username, name: who.name ?? who.username };
    this.putUser(user);
    return user;
  }

  /** A new v2 tweet from what its author typed (links wrapped, text escaped, entities, note tweet). */
  private compose(author: XUser, input: ComposeInput): V2Tweet {
    const raw = input.text.normalize('NFC');
    const long = weightedLength(raw) > MAX_WEIGHT;
    if (long && !input.allowLong) throw new ControlError(400, [`text weighs ${weightedLength(raw)} > ${MAX_WEIGHT} and note is false`]);
    if (!raw.trim() && !input.media.length && !input.quote) throw new ControlError(400, ['text: empty']);
    const id = this.nextId().toString();
    // X wraps every link in t.co; the text carries the t.co link and the entity the original.
    const links = new Map<string, LinkInfo[]>();
    let rewritten = '';
    let last = 0;
    for (const [i, { index, url }] of findUrls(raw).entries()) {
      const link = tco(`${id}:${i}:${url}`);
      links.set(link.url, [{ expanded: url, display: displayUrl(url) }]);
      rewritten += raw.slice(last, index) + link.url;
      last = index + url.length;
    }
    rewritten += raw.slice(last);
    let shortText = long ? truncateWeighted(rewritten, MAX_WEIGHT) : rewritten;
    const tail: string[] = [];
    if (input.quote) {
      const link = tco(`${id}:quote`);
      const quoted = this.users.get(input.quote.author_id ?? '');
      const expanded = `https://x.com/${quoted?.username ?? 'i'}/status/${input.quote.id}`;
      links.set(link.url, [{ expanded, display: displayUrl(expanded) }]);
      tail.push(link.url);
    }
    const mediaKeys: string[] = [];
    if (input.media.length) {
      const link = tco(`${id}:media`);
      const prefix: Record<string, string> = { photo: '3', video: '7', animated_gif: '16' };
      links.set(
        link.url,
        input.media.map((m, n) => {
          const mediaKey = `${prefix[m.type] ?? '3'}_${this.nextId()}`;
          mediaKeys.push(mediaKey);
          this.media.set(mediaKey, { media_key: mediaKey, type: m.type, url: m.url, width: m.width ?? 1200, height: m.height ?? 1600 });
          const expanded = `https://x.com/${author.username}/status/${id}/${m.type === 'photo' ? 'photo' : 'video'}/${n + 1}`;
          return { expanded, display: `pic.x.com/${link.code}`, mediaKey };
        }),
      );
      tail.push(link.url);
    }
    const withTail = (s: string) => [s, ...tail].filter(Boolean).join(' ');
    const resolve = (username: string) => this.ensureUser({ username });
    const fullText = htmlEscape(withTail(rewritten));
    const fullEntities = extractEntities(fullText, links, resolve);
    if (long) shortText = htmlEscape(shortText);
    const text = long ? shortText : fullText;
    const entities = long ? entitiesWithin(fullEntities, cpLength(text)) : fullEntities;
    const refs = [
      ...(input.replyTo ? [{ type: 'replied_to' as const, id: input.replyTo.id }] : []),
      ...(input.quote ? [{ type: 'quoted' as const, id: input.quote.id }] : []),
    ];
    // An edit stays in its original's conversation, a reply joins its parent's, anything else starts one.
    const original = input.history?.[0];
    const parent = input.replyTo;
    const conversationId = original ? (this.tweets.get(original)?.conversation_id ?? original) : parent ? (parent.conversation_id ?? parent.id) : id;
    return {
      id,
      text,
      author_id: author.id,
      created_at: snowflakeTime(id).toISOString(),
      conversation_id: conversationId,
      edit_history_tweet_ids: [...(input.history ?? []), id],
      lang: input.lang,
      ...(input.replyTo?.author_id ? { in_reply_to_user_id: input.replyTo.author_id } : {}),
      ...(refs.length ? { referenced_tweets: refs } : {}),
      ...(entities ? { entities } : {}),
      ...(mediaKeys.length ? { attachments: { media_keys: mediaKeys } } : {}),
      ...(long ? { note_tweet: { text: fullText, ...(fullEntities ? { entities: fullEntities } : {}) } } : {}),
    };
  }

  /** "RT @orig: <orig text>" with the original's entities moved right, as the corpus shows. */
  private composeRetweet(author: XUser, original: V2Tweet): V2Tweet {
    const origin = this.users.get(original.author_id ?? '');
    if (!origin) throw new ControlError(409, [`the author of ${original.id} is unknown`]);
    const prefix = `RT @${origin.username}: `;
    const moved = shiftEntities(original.entities, cpLength(prefix));
    const mentions = [{ start: 3, end: 4 + origin.username.length, username: origin.username, id: origin.id }, ...(moved.mentions ?? [])];
    const id = this.nextId().toString();
    return {
      id,
      text: prefix + original.text,
      author_id: author.id,
      created_at: snowflakeTime(id).toISOString(),
      conversation_id: id,
      edit_history_tweet_ids: [id],
      lang: original.lang ?? 'in',
      referenced_tweets: [{ type: 'retweeted', id: original.id }],
      entities: { mentions, ...(moved.hashtags?.length ? { hashtags: moved.hashtags } : {}), ...(moved.urls?.length ? { urls: moved.urls } : {}) },
    };
  }

  /** Keeps the timeline newest first (ids compared as snowflakes), each id once. */
  private addToTimeline(userId: string, tweetId: string): void {
    const timeline = this.timelines.get(userId) ?? [];
    this.timelines.set(userId, timeline);
    const id = BigInt(tweetId);
    let [lo, hi] = [0, timeline.length];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const there = BigInt(timeline[mid] ?? 0);
      if (there === id) return;
      if (there > id) lo = mid + 1;
      else hi = mid;
    }
    timeline.splice(lo, 0, tweetId);
  }

  /** Stores a new tweet, puts it on the timelines of whom it mentions or answers, and delivers it. */
  private register(tweet: V2Tweet): void {
    this.tweets.set(tweet.id, tweet);
    const targets = new Set<string>();
    for (const m of (tweet.note_tweet?.entities ?? tweet.entities)?.mentions ?? []) if (m.id) targets.add(m.id);
    if (tweet.in_reply_to_user_id) targets.add(tweet.in_reply_to_user_id);
    if (tweet.author_id) targets.delete(tweet.author_id);
    for (const userId of targets) this.addToTimeline(userId, tweet.id);
    const own = tweet.author_id === this.account.id;
    if (targets.has(this.account.id) || (own && this.webhookOwnPosts)) this.deliver(tweet);
  }

  // ---- webhook delivery (v1.1 payloads, like the Account Activity API) ----

  private deliver(tweet: V2Tweet): void {
    const url = this.webhookUrl;
    if (!url) return;
    const payload = {
      for_user_id: this.account.id,
      ...(tweet.author_id !== this.account.id ? { user_has_blocked: false } : {}),
      tweet_create_events: [this.v1Tweet(tweet, true)],
    };
    const body = Buffer.from(JSON.stringify(payload));
    const signature = `sha256=${createHmac('sha256', this.keys.consumerSecret).update(body).digest('base64')}`;
    const record: WebhookDelivery = { index: this.deliveries.length, tweetId: tweet.id, status: null };
    this.deliveries.push(record);
    // One after another, so a receiver sees them in creation order; no retries (as the brief allows).
    this.pending = this.pending.then(async () => {
      try {
        const headers = { 'content-type': 'application/json', 'x-twitter-webhooks-signature': signature };
        const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(5_000) });
        await res.arrayBuffer();
        record.status = res.status;
      } catch (error) {
        record.error = (error as Error).message;
      }
      const ok = record.status !== null && record.status >= 200 && record.status < 300;
      this.counters.webhook[ok ? 'delivered' : 'failed']++;
      this.logLine(`webhook delivery ${record.index} of ${tweet.id}: ${record.status ?? record.error}`);
    });
  }

  private v1Tweet(t: V2Tweet, nest: boolean): Body {
    const author = this.users.get(t.author_id ?? '');
    const full = t.note_tweet?.text ?? t.text;
    const fullEntities = t.note_tweet?.entities ?? t.entities;
    const ref = (type: string) => t.referenced_tweets?.find((r) => r.type === type)?.id;
    const [replyTo, quoted, retweeted] = [ref('replied_to'), ref('quoted'), ref('retweeted')];
    const created = t.created_at ? new Date(t.created_at) : snowflakeTime(t.id);
    const long = cpLength(htmlUnescape(full)) > V1_SHORT;
    const short = long ? this.v1Truncated(t.id, full, fullEntities) : { text: full, entities: fullEntities };
    const nested = (id: string | undefined) => (nest && id ? this.tweets.get(id) : undefined);
    const quotedTweet = nested(quoted);
    const retweetedTweet = nested(retweeted);
    const entities = this.v1Entities(short.entities);
    const fullV1Entities = this.v1Entities(fullEntities);
    const mediaOf = (e: Body) => (e.media ? { extended_entities: { media: e.media } } : {});
    return {
      created_at: v1Date(created),
      id_str: t.id,
      text: short.text,
      source: SOURCE,
      truncated: long,
      in_reply_to_status_id_str: replyTo ?? null,
      in_reply_to_user_id_str: t.in_reply_to_user_id ?? null,
      in_reply_to_screen_name: this.users.get(t.in_reply_to_user_id ?? '')?.username ?? null,
      user: { id_str: t.author_id ?? null, name: author?.name ?? null, screen_name: author?.username ?? null },
      is_quote_status: Boolean(quoted),
      ...(quoted ? { quoted_status_id_str: quoted } : {}),
      ...(quotedTweet ? { quoted_status: this.v1Tweet(quotedTweet, false) } : {}),
      ...(retweetedTweet ? { retweeted_status: this.v1Tweet(retweetedTweet, false) } : {}),
      ...(long ? { extended_tweet: { full_text: full, display_text_range: [0, cpLength(full)], entities: fullV1Entities, ...mediaOf(fullV1Entities) } } : {}),
      entities,
      ...(long ? {} : mediaOf(entities)),
      lang: t.lang ?? 'und',
      // Edited tweets carry their chain in v1.1 too (edit_history, as the v1.1 reference documents it).
      ...(t.edit_history_tweet_ids && t.edit_history_tweet_ids.length ? { edit_history: { initial_tweet_id: t.edit_history_tweet_ids[0], edit_tweet_ids: t.edit_history_tweet_ids } } : {}),
      timestamp_ms: String(created.getTime()),
    };
  }

  /** v1.1 compatibility text: the first code points, "… ", then a t.co link to the whole tweet (140 in all). */
  private v1Truncated(id: string, full: string, entities: TweetEntities | undefined): { text: string; entities: TweetEntities } {
    const chars = Array.from(full);
    let cut = V1_SHORT - 2 - URL_WEIGHT;
    const spans = [...(entities?.mentions ?? []), ...(entities?.hashtags ?? []), ...(entities?.urls ?? [])];
    for (const e of spans) if (e.start < cut && e.end > cut) cut = e.start;
    const amp = chars.slice(0, cut).lastIndexOf('&');
    if (amp >= 0 && !chars.slice(amp, cut).includes(';')) cut = amp; // never split an &amp;
    const prefix = chars.slice(0, cut).join('').trimEnd();
    const start = cpLength(prefix) + 2;
    const link = tco(`${id}:v1`);
    const kept = entitiesWithin(entities, cpLength(prefix)) ?? {};
    const expanded = `https://twitter.com/i/web/status/${id}`;
    const statusLink = { start, end: start + URL_WEIGHT, url: link.url, expanded_url: expanded, display_url: 'twitter.com/i/web/status/1…' };
    return { text: `${prefix}… ${link.url}`, entities: { ...kept, urls: [...(kept.urls ?? []), statusLink] } };
  }

  private v1Entities(e: TweetEntities | undefined): Body {
    const urls: Body[] = [];
    const media: Body[] = [];
    for (const u of e?.urls ?? []) {
      const link = { url: u.url, expanded_url: u.expanded_url ?? u.url, display_url: u.display_url ?? u.url, indices: [u.start, u.end] };
      if (!u.media_key) urls.push(link);
      else {
        const m = this.media.get(u.media_key);
        media.push({ id_str: u.media_key.split('_')[1] ?? u.media_key, ...link, media_url_https: m?.url ?? null, type: m?.type ?? 'photo' });
      }
    }
    return {
      hashtags: (e?.hashtags ?? []).map((h) => ({ text: h.tag, indices: [h.start, h.end] })),
      user_mentions: (e?.mentions ?? []).map((m) => ({
        screen_name: m.username,
        name: this.users.get(m.id ?? '')?.name ?? m.username,
        id_str: m.id ?? null,
        indices: [m.start, m.end],
      })),
      urls,
      symbols: [],
      ...(media.length ? { media } : {}),
    };
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    let reply: Reply;
    try {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const body = await readBody(req);
      if (body === null) reply = { status: 413, body: TOO_LARGE };
      else if (url.pathname.startsWith('/_fake/')) reply = await this.control(method, url, body);
      else reply = this.api(req, method, url, body);
      this.logLine(`${method} ${url.pathname} → ${reply.status}`);
    } catch (error) {
      this.logLine(`${method} failed: ${(error as Error).message}`);
      reply = { status: 500, body: SERVER_ERRORS[500] ?? {} };
    }
    if (res.headersSent || res.destroyed) return;
    const json = JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), ...reply.headers });
    res.end(json);
  }

  private authenticate(req: IncomingMessage, method: string, url: URL, body: Buffer): AuthKind | null {
    const header = req.headers.authorization ?? '';
    if (/^Bearer /i.test(header)) return header.slice(7).trim() === this.bearerToken ? 'app' : null;
    if (!/^OAuth /i.test(header)) return null;
    const form = /application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '') ? new URLSearchParams(body.toString('utf8')) : undefined;
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    const now = Date.now();
    const verdict = verifyOAuth1({ method, baseUri: this.signatureBase + rawPath, query: url.searchParams, form, authorization: header }, this.keys, now);
    if (!verdict.ok) {
      this.logLine(`OAuth1 refused: ${verdict.reason}`);
      return null;
    }
    for (const [nonce, expires] of this.nonces) if (expires < now) this.nonces.delete(nonce);
    if (this.nonces.has(verdict.nonce)) {
      this.logLine('OAuth1 refused: nonce reused');
      return null;
    }
    // A nonce must be unique while its timestamp is acceptable; after that the skew check refuses it.
    this.nonces.set(verdict.nonce, (verdict.timestamp + 300) * 1000 + 1000);
    return 'user';
  }

  private rateHeaders(limit: number, remaining: number, resetAt: number): Record<string, string> {
    return {
      'x-rate-limit-limit': String(limit),
      'x-rate-limit-remaining': String(Math.max(0, remaining)),
      'x-rate-limit-reset': String(Math.ceil(resetAt / 1000)), // epoch seconds, as X
    };
  }

  private api(req: IncomingMessage, method: string, url: URL, body: Buffer): Reply {
    const path = url.pathname;
    const mentions = /^\/2\/users\/([^/]+)\/mentions$/.exec(path);
    const dm = /^\/2\/dm_conversations\/with\/([^/]+)\/messages$/.exec(path);
    let endpoint: Endpoint;
    if (method === 'GET' && path === '/2/users/me') endpoint = 'me';
    else if (method === 'GET' && mentions) endpoint = 'mentions';
    else if (method === 'POST' && path === '/2/tweets') endpoint = 'tweets';
    else if (method === 'POST' && dm) endpoint = 'dm';
    else return { status: 404, body: NOT_FOUND };

    const auth = this.authenticate(req, method, url, body);
    if (!auth) {
      this.counters.requests[endpoint].none++;
      return { status: 401, body: UNAUTHORIZED };
    }
    this.counters.requests[endpoint][auth]++;
    const limit = this.limits[endpoint][auth];
    if (limit === undefined) return { status: 403, body: APP_ONLY_FORBIDDEN };

    const now = Date.now();
    const key = `${endpoint}:${auth === 'user' ? this.keys.accessToken : 'app'}`;
    let window = this.windows.get(key);
    if (!window || now >= window.resetAt) {
      window = { resetAt: now + this.windowMs, used: 0 };
      this.windows.set(key, window);
    }
    const fault = this.statusFaults.get(endpoint);
    if (fault && fault.remaining > 0) {
      fault.remaining--;
      if (fault.status === 429) {
        this.counters.rateLimited[endpoint]++;
        return { status: 429, body: TOO_MANY, headers: this.rateHeaders(limit, 0, now + fault.resetInMs) };
      }
      this.counters.serverErrors[endpoint]++;
      return { status: fault.status, body: SERVER_ERRORS[fault.status] ?? {}, headers: this.rateHeaders(limit, limit - window.used, window.resetAt) };
    }
    if (window.used >= limit) {
      this.counters.rateLimited[endpoint]++;
      return { status: 429, body: TOO_MANY, headers: this.rateHeaders(limit, 0, window.resetAt) };
    }
    window.used++;
    const headers = this.rateHeaders(limit, limit - window.used, window.resetAt);
    const reply =
      endpoint === 'me'
        ? this.getMe(url.searchParams)
        : endpoint === 'mentions'
          ? this.getMentions(mentions?.[1] ?? '', url.searchParams)
          : endpoint === 'tweets'
            ? this.postTweet(req, body)
            : this.postDm(req, dm?.[1] ?? '', body);
    return { ...reply, headers: { ...headers, ...reply.headers } };
  }

  private getMe(query: URLSearchParams): Reply {
    const errors = checkQuery(query, ME_PARAMS, { expansions: USER_EXPANSIONS, 'tweet.fields': TWEET_FIELDS, 'user.fields': USER_FIELDS });
    if (errors.length) return { status: 400, body: invalidRequest(errors) };
    return { status: 200, body: { data: pick(this.account, DEFAULT_FIELDS.user, new Set(query.get('user.fields')?.split(','))) } };
  }

  private getMentions(userId: string, query: URLSearchParams): Reply {
    const lists = { expansions: TWEET_EXPANSIONS, 'tweet.fields': TWEET_FIELDS, 'user.fields': USER_FIELDS, 'media.fields': MEDIA_FIELDS };
    const errors = checkQuery(query, MENTIONS_PARAMS, lists);
    if (!Id.safeParse(userId).success) errors.push(idError('id', userId));
    const maxText = query.get('max_results');
    const max = maxText === null ? 10 : Number(maxText);
    if (!Number.isInteger(max) || max < 5 || max > 100) errors.push(paramError('max_results', maxText ?? '', 'is not between 5 and 100'));
    for (const name of ['since_id', 'until_id']) {
      const value = query.get(name);
      if (value !== null && !Id.safeParse(value).success) errors.push(idError(name, value));
    }
    for (const name of ['start_time', 'end_time']) {
      const value = query.get(name);
      if (value !== null && Number.isNaN(Date.parse(value))) errors.push(paramError(name, value, 'is not a valid RFC3339 date-time'));
    }
    const tokenText = query.get('pagination_token');
    const token = tokenText === null ? null : decodeToken(tokenText);
    if (tokenText !== null && !token) errors.push(paramError('pagination_token', tokenText, 'is not valid'));
    if (errors.length) return { status: 400, body: invalidRequest(errors) };

    // The reference documents 200 with an `errors` array for a user that does not exist (as every v2
    // lookup does), not a 404.
    if (!this.users.has(userId)) return { status: 200, body: { errors: [notFoundError('user', userId, 'id')] } };

    const since = query.get('since_id');
    const until = query.get('until_id');
    const start = query.get('start_time');
    const end = query.get('end_time');
    const candidates = (this.timelines.get(userId) ?? []).slice(0, TIMELINE_REACH).filter((id) => {
      const t = this.tweets.get(id);
      const at = t?.created_at ? Date.parse(t.created_at) : snowflakeTime(id).getTime();
      const inIds = (!since || BigInt(id) > BigInt(since)) && (!until || BigInt(id) < BigInt(until));
      return inIds && (!start || at >= Date.parse(start)) && (!end || at <= Date.parse(end));
    });
    const page = !token
      ? candidates.slice(0, max)
      : token.direction === 'next'
        ? candidates.filter((id) => BigInt(id) < token.id).slice(0, max)
        : candidates.filter((id) => BigInt(id) > token.id).slice(-max);
    const newest = page[0];
    const oldest = page.at(-1);
    if (!newest || !oldest) return { status: 200, body: { meta: { result_count: 0 } } };

    const expansions = new Set(query.get('expansions')?.split(','));
    const fields: Fields = {
      tweet: new Set(query.get('tweet.fields')?.split(',')),
      user: new Set(query.get('user.fields')?.split(',')),
      media: new Set(query.get('media.fields')?.split(',')),
    };
    const data = page.map((id) => this.tweets.get(id)).filter((t): t is V2Tweet => Boolean(t));
    // The fault drops the first referenced tweet this page has; a page without one leaves it pending.
    const drop = this.partialErrors > 0 ? data.flatMap((t) => t.referenced_tweets ?? []).find((r) => this.tweets.has(r.id))?.id : undefined;
    if (drop) this.partialErrors--;
    const { includes, errors: partial } = this.expand(data, expansions, fields, drop);
    const meta = {
      newest_id: newest,
      oldest_id: oldest,
      result_count: page.length,
      ...(candidates.some((id) => BigInt(id) < BigInt(oldest)) ? { next_token: encodeToken('next', oldest) } : {}),
      ...(candidates.some((id) => BigInt(id) > BigInt(newest)) ? { previous_token: encodeToken('prev', newest) } : {}),
    };
    return {
      status: 200,
      body: {
        data: data.map((t) => pick(t, DEFAULT_FIELDS.tweet, fields.tweet)),
        ...(includes ? { includes } : {}),
        ...(partial.length ? { errors: partial } : {}),
        meta,
      },
    };
  }

  /** includes.users / tweets / media for the asked expansions, and X's partial errors for what is missing. */
  private expand(data: V2Tweet[], expansions: Set<string>, fields: Fields, drop: string | undefined): { includes?: Body; errors: Body[] } {
    const users = new Map<string, XUser>();
    const tweets = new Map<string, V2Tweet>();
    const media = new Map<string, XMedia>();
    const errors = new Map<string, Body>();
    const lookupTweet = (id: string) => (id === drop ? undefined : this.tweets.get(id));
    const addUser = (id: string | undefined, parameter: string) => {
      if (!id) return;
      const user = this.users.get(id);
      if (user) users.set(id, user);
      else errors.set(`user:${id}`, notFoundError('user', id, parameter));
    };
    // By kind: authors, authors of referenced tweets, then mentioned users, as the recorded pages; X
    // promises no order within a kind (the corpus has both newest and oldest first).
    const refs = data.flatMap((t) => t.referenced_tweets ?? []);
    if (expansions.has('author_id')) for (const t of data) addUser(t.author_id, 'author_id');
    if (expansions.has('referenced_tweets.id.author_id')) for (const r of refs) addUser(lookupTweet(r.id)?.author_id, 'referenced_tweets.id.author_id');
    if (expansions.has('in_reply_to_user_id')) for (const t of data) addUser(t.in_reply_to_user_id, 'in_reply_to_user_id');
    if (expansions.has('entities.mentions.username')) {
      for (const m of data.flatMap((t) => t.entities?.mentions ?? [])) {
        const id = m.id ?? this.usernames.get(m.username.toLowerCase());
        const user = id ? this.users.get(id) : undefined;
        if (user) users.set(user.id, user);
        else errors.set(`username:${m.username}`, notFoundError('user', m.username, 'entities.mentions.username', 'username'));
      }
    }
    const addTweet = (id: string, parameter: string) => {
      const t = lookupTweet(id);
      if (t) tweets.set(id, t);
      else errors.set(`tweet:${id}`, notFoundError('tweet', id, parameter));
    };
    if (expansions.has('referenced_tweets.id')) for (const r of refs) addTweet(r.id, 'referenced_tweets.id');
    if (expansions.has('edit_history_tweet_ids')) {
      for (const t of data) for (const id of t.edit_history_tweet_ids ?? []) if (id !== t.id) addTweet(id, 'edit_history_tweet_ids');
    }
    if (expansions.has('attachments.media_keys')) {
      for (const key of data.flatMap((t) => t.attachments?.media_keys ?? [])) {
        const m = this.media.get(key);
        if (m) media.set(key, m);
      }
    }
    const includes: Body = {
      ...(users.size ? { users: [...users.values()].map((u) => pick(u, DEFAULT_FIELDS.user, fields.user)) } : {}),
      ...(tweets.size ? { tweets: [...tweets.values()].map((t) => pick(t, DEFAULT_FIELDS.tweet, fields.tweet)) } : {}),
      ...(media.size ? { media: [...media.values()].map((m) => pick(m, DEFAULT_FIELDS.media, fields.media)) } : {}),
    };
    return { ...(Object.keys(includes).length ? { includes } : {}), errors: [...errors.values()] };
  }

  private jsonBody(req: IncomingMessage, body: Buffer): { ok: true; value: unknown } | { ok: false; reply: Reply } {
    if (!/application\/json/i.test(req.headers['content-type'] ?? '')) {
      return { ok: false, reply: { status: 400, body: invalidRequest([{ message: 'Requests with bodies must have content-type of application/json.' }]) } };
    }
    const json = parseJson(body);
    return json.ok ? json : { ok: false, reply: { status: 400, body: MALFORMED_JSON } };
  }

  private postTweet(req: IncomingMessage, body: Buffer): Reply {
    const json = this.jsonBody(req, body);
    if (!json.ok) return json.reply;
    const parsed = CreateTweetSchema.safeParse(json.value);
    if (!parsed.success) return { status: 400, body: invalidRequest(schemaErrors(parsed.error, json.value)) };
    const { text = '', reply, quote_tweet_id: quoteId } = parsed.data;
    // Chosen wording for an empty post.
    if (!text.trim()) return { status: 400, body: invalidRequest([{ message: 'You must specify either a Tweet text, media, poll or quote_tweet_id.' }]) };
    if (weightedLength(text) > MAX_WEIGHT) return { status: 400, body: invalidRequest([{ message: TOO_LONG }]) };
    const replyTo = reply ? this.tweets.get(reply.in_reply_to_tweet_id) : undefined;
    if (reply && !replyTo) return { status: 403, body: REPLY_HIDDEN };
    const quote = quoteId ? this.tweets.get(quoteId) : undefined;
    if (quoteId && !quote) return { status: 403, body: QUOTE_HIDDEN };
    const now = Date.now();
    if (this.postLog.some((p) => p.text === text && now - Date.parse(p.created_at) < DUPLICATE_WINDOW_MS)) return { status: 403, body: DUPLICATE };
    const tweet = this.compose(this.account, { text, replyTo, quote, media: [], lang: 'in', allowLong: false });
    const [in_reply_to_tweet_id, quote_tweet_id, created_at] = [replyTo?.id ?? null, quote?.id ?? null, tweet.created_at ?? ''];
    this.postLog.push({ index: this.postLog.length, id: tweet.id, text, in_reply_to_tweet_id, quote_tweet_id, created_at });
    this.counters.posts++;
    this.register(tweet);
    return { status: 201, body: { data: { edit_history_tweet_ids: tweet.edit_history_tweet_ids, id: tweet.id, text: tweet.text } } };
  }

  private postDm(req: IncomingMessage, participant: string, body: Buffer): Reply {
    if (!Id.safeParse(participant).success) return { status: 400, body: invalidRequest([idError('participant_id', participant)]) };
    const json = this.jsonBody(req, body);
    if (!json.ok) return json.reply;
    const parsed = CreateDmSchema.safeParse(json.value);
    if (!parsed.success) return { status: 400, body: invalidRequest(schemaErrors(parsed.error, json.value)) };
    const { text = '', attachments } = parsed.data;
    if (!text && !attachments?.length) return { status: 400, body: invalidRequest([{ message: '$.text: is missing but it is required' }]) };
    // Chosen: any numeric id is a user (the fake cannot know all of X); only a refusal set through
    // the control API stops a DM.
    if (this.acceptsDms.get(participant) === false) return { status: 403, body: DM_REFUSED };
    const eventId = this.nextId().toString();
    const pair = [participant, this.account.id].sort(byIdAsc); // X names a 1:1 conversation "<lower id>-<higher id>"
    const created_at = snowflakeTime(eventId).toISOString();
    const record: DmRecord = { index: this.dmLog.length, to: participant, text, dm_event_id: eventId, dm_conversation_id: pair.join('-'), created_at };
    this.dmLog.push(record);
    this.counters.dms++;
    return { status: 201, body: { data: { dm_conversation_id: record.dm_conversation_id, dm_event_id: eventId } } };
  }

  // ---- control API ----

  private async control(method: string, url: URL, raw: Buffer): Promise<Reply> {
    const path = url.pathname;
    const json = parseJson(raw);
    if (method !== 'GET' && method !== 'DELETE' && !json.ok) return { status: 400, body: MALFORMED_JSON };
    const body = json.ok ? json.value : {};
    const q = url.searchParams;
    try {
      const edit = /^\/_fake\/tweets\/([^/]+)\/edit$/.exec(path);
      const user = /^\/_fake\/users\/([^/]+)$/.exec(path);
      const route = `${method} ${path}`;
      if (route === 'POST /_fake/tweets') return { status: 200, body: { data: this.tweet(body as TweetInput) } };
      if (method === 'POST' && edit) return { status: 200, body: { data: this.edit(edit[1] ?? '', parse(EditSchema, body).text) } };
      if (route === 'POST /_fake/mentions/raw') return { status: 200, body: this.injectMentions(body as MentionsPageInput) };
      if (route === 'GET /_fake/posts') {
        return { status: 200, body: { posts: this.posts({ inReplyTo: q.get('inReplyTo') ?? undefined, since: Number(q.get('since')) || 0 }) } };
      }
      if (route === 'GET /_fake/dms') return { status: 200, body: { dms: this.dms({ to: q.get('to') ?? undefined }) } };
      if (method === 'POST' && user) {
        this.setUser(user[1] ?? '', body as z.input<typeof UserSettingsSchema>);
        return { status: 200, body: { ok: true } };
      }
      if (route === 'POST /_fake/fault') {
        this.fault(body as FaultInput);
        return { status: 200, body: { ok: true } };
      }
      if (route === 'POST /_fake/webhook') {
        const result = await this.registerWebhook(parse(WebhookSchema, body).url);
        return { status: result.ok ? 200 : 400, body: result };
      }
      if (route === 'DELETE /_fake/webhook') {
        this.unregisterWebhook();
        return { status: 200, body: { ok: true } };
      }
      if (route === 'GET /_fake/webhook') return { status: 200, body: { url: this.webhookUrl, deliveries: this.webhookDeliveries() } };
      if (route === 'GET /_fake/stats') return { status: 200, body: { ...this.stats() } };
      if (route === 'POST /_fake/reset') {
        this.reset();
        return { status: 200, body: { ok: true } };
      }
      return { status: 404, body: NOT_FOUND };
    } catch (error) {
      if (error instanceof ControlError) return { status: error.status, body: { error: error.details } };
      throw error;
    }
  }
}
