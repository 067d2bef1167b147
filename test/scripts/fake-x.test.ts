import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiResponseError, TwitterApi, type ITwitterApiClientPlugin } from 'twitter-api-v2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeXApi, weightedLength, type MentionsPageInput, type V2Tweet } from '../../scripts/x/fake-api.ts';
import { hmacSha1Signature, percentEncode, signatureBaseString, verifyOAuth1 } from '../../scripts/x/oauth1.ts';
import { corpusFile } from '../helpers/corpus.ts';

/**
 * The fake X API against the real `twitter-api-v2` client (signing OAuth 1.0a for api.x.com and
 * redirected here by a plugin, as the gateway's adapter does) and plain fetch, so what is checked is
 * the fake alone: X's shapes, auth, limits and webhook, and that a third-party client accepts them.
 */

const ACCOUNT_ID = '1296401852';
const WINDOW_MS = 2_000;
let fake: FakeXApi;

beforeAll(async () => {
  fake = await FakeXApi.start({ windowMs: WINDOW_MS, rateLimits: { me: { user: 5 } } });
});
afterAll(async () => {
  await fake?.stop();
});
beforeEach(() => fake.reset());

// ---- clients ----

const redirect = (): ITwitterApiClientPlugin => ({
  onBeforeRequest({ computedParams }) {
    computedParams.url.protocol = 'http:';
    computedParams.url.hostname = '127.0.0.1';
    computedParams.url.port = String(fake.port);
  },
});
const clientSettings = () => ({ httpAgent: new http.Agent(), plugins: [redirect()] });
const userClient = (overrides: { appSecret?: string } = {}) => {
  const c = fake.credentials;
  const tokens = { appKey: c.consumerKey, appSecret: c.consumerSecret, accessToken: c.accessToken, accessSecret: c.accessSecret };
  return new TwitterApi({ ...tokens, ...overrides }, clientSettings());
};
const appClient = () => new TwitterApi(fake.credentials.bearerToken, clientSettings());

interface Page {
  data?: Array<V2Tweet>;
  includes?: { users?: Array<{ id: string }>; tweets?: V2Tweet[]; media?: Array<{ media_key: string }> };
  errors?: Array<Record<string, unknown>>;
  meta?: { result_count: number; newest_id?: string; oldest_id?: string; next_token?: string; previous_token?: string };
}

/** The v1.1 fields a webhook test reads. */
interface V1Tweet {
  id_str: string;
  text: string;
  truncated: boolean;
  created_at: string;
  timestamp_ms: string;
  entities: Record<string, unknown>;
  user: Record<string, unknown>;
  extended_tweet?: { full_text: string };
}

const MENTION_QUERY = {
  expansions: 'author_id,referenced_tweets.id,referenced_tweets.id.author_id,entities.mentions.username,attachments.media_keys',
  'tweet.fields': 'attachments,author_id,conversation_id,created_at,edit_history_tweet_ids,entities,in_reply_to_user_id,lang,note_tweet,referenced_tweets',
  'user.fields': 'name,username',
  'media.fields': 'url,width,height',
};

async function get(path: string, authorization = `Bearer ${fake.credentials.bearerToken}`) {
  const res = await fetch(fake.url + path, { headers: { authorization } });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Page & Record<string, unknown> };
}

async function mentions(query: Record<string, string>): Promise<Page> {
  const { status, body } = await get(`/2/users/${ACCOUNT_ID}/mentions?${new URLSearchParams({ ...MENTION_QUERY, ...query })}`);
  expect(status).toBe(200);
  return body;
}

/** An OAuth 1.0a header signed by hand, to drive nonce and timestamp cases a library never sends. */
function signed(method: string, path: string, query: Record<string, string>, o: { nonce: string; timestamp?: number }): string {
  const c = fake.credentials;
  const oauth = {
    oauth_consumer_key: c.consumerKey,
    oauth_nonce: o.nonce,
    oauth_signature_method: 'HMAC-SHA1',
    oauth_timestamp: String(o.timestamp ?? Math.floor(Date.now() / 1000)),
    oauth_token: c.accessToken,
    oauth_version: '1.0',
  };
  const base = signatureBaseString(method, `https://api.x.com${path}`, [...Object.entries(oauth), ...Object.entries(query)]);
  const all = { ...oauth, oauth_signature: hmacSha1Signature(base, c.consumerSecret, c.accessSecret) };
  return `OAuth ${Object.entries(all).map(([k, v]) => `${k}="${percentEncode(v)}"`).join(', ')}`;
}

async function apiError(promise: Promise<unknown>): Promise<ApiResponseError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiResponseError) return error;
    throw error;
  }
  throw new Error('expected X to refuse');
}

const slice = (text: string, e: { start: number; end: number }) => Array.from(text).slice(e.start, e.end).join('');

// ---- tests ----

describe('OAuth 1.0a', () => {
  it('reproduces the signature of X\'s own worked example', () => {
    const oauth = {
      oauth_consumer_key: 'xvz1evFS4wEEPTGEFPHBog',
      oauth_nonce: 'kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg',
      oauth_signature: 'hCtSmYh+iHYCEqBWrE7C7hYmtUk=',
      oauth_signature_method: 'HMAC-SHA1',
      oauth_timestamp: '1318622958',
      oauth_token: '370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb',
      oauth_version: '1.0',
    };
    const request = {
      method: 'POST',
      baseUri: 'https://api.twitter.com/1.1/statuses/update.json',
      query: new URLSearchParams('include_entities=true'),
      form: new URLSearchParams({ status: 'Hello Ladies + Gentlemen, a signed OAuth request!' }),
      authorization: `OAuth ${Object.entries(oauth).map(([k, v]) => `${k}="${percentEncode(v)}"`).join(', ')}`,
    };
    const keys = {
      consumerKey: oauth.oauth_consumer_key,
      consumerSecret: 'kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw',
      accessToken: oauth.oauth_token,
      accessSecret: 'LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE',
    };
    expect(verifyOAuth1(request, keys, 1318622958_000)).toMatchObject({ ok: true });
    expect(verifyOAuth1({ ...request, form: new URLSearchParams({ status: 'tampered' }) }, keys, 1318622958_000)).toMatchObject({ ok: false });
  });

  it('accepts twitter-api-v2 signing for api.x.com; a wrong secret, a replayed nonce or an old timestamp gets 401', async () => {
    const parent = fake.tweet({ from: '@dina_marlina', text: '@LAPOR1708 #lapor lampu jalan mati' });
    const created = await userClient().v2.tweet('Terima kasih, laporan Anda tercatat', { reply: { in_reply_to_tweet_id: parent.id } });
    expect(created.data).toEqual({ edit_history_tweet_ids: [created.data.id], id: created.data.id, text: 'Terima kasih, laporan Anda tercatat' });
    expect(fake.posts()).toMatchObject([{ index: 0, id: created.data.id, in_reply_to_tweet_id: parent.id }]);
    expect(fake.tweetById(created.data.id)).toMatchObject({ author_id: ACCOUNT_ID, in_reply_to_user_id: parent.author_id, conversation_id: parent.id });

    const wrong = await apiError(userClient({ appSecret: 'not-the-secret' }).v2.tweet('hi'));
    expect(wrong.code).toBe(401);
    expect(wrong.data).toEqual({ title: 'Unauthorized', type: 'about:blank', status: 401, detail: 'Unauthorized' });

    const query = { 'user.fields': 'name' };
    const header = signed('GET', '/2/users/me', query, { nonce: 'n-once' });
    expect((await get('/2/users/me?user.fields=name', header)).body).toEqual({ data: { id: ACCOUNT_ID, name: 'LAPOR! 1708', username: 'LAPOR1708' } });
    expect((await get('/2/users/me?user.fields=name', header)).status).toBe(401); // same nonce
    expect((await get('/2/users/me?user.fields=username', signed('GET', '/2/users/me', query, { nonce: 'n2' }))).status).toBe(401); // query not as signed
    const old = signed('GET', '/2/users/me', {}, { nonce: 'n3', timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect((await get('/2/users/me', old)).status).toBe(401);
    expect((await get('/2/users/me', 'Bearer wrong')).status).toBe(401);
    expect(fake.stats().requests.me).toEqual({ app: 0, user: 1, none: 4 });
  });

  it('refuses app-only auth where X wants user context', async () => {
    const refused = await apiError(appClient().v2.tweet('hi'));
    expect(refused.code).toBe(403);
    expect(refused.data).toEqual({
      title: 'Unsupported Authentication',
      detail:
        'Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  ' +
        'Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].',
      type: 'https://api.twitter.com/2/problems/unsupported-authentication',
      status: 403,
    });
    expect(fake.posts()).toEqual([]);
  });
});

describe('tweets and entities', () => {
  it('computes entities in code points on the escaped text, with t.co links', () => {
    const text = '🙏🏽 Min @LAPOR1708, jalan rusak & berlubang di #Sukamulya 😡 lihat https://example.com/foto?id=1&x=2 <3';
    const t = fake.tweet({ from: { username: 'warga_1', name: 'Warga Satu' }, text });
    expect(t.text).toMatch(/^🙏🏽 Min @LAPOR1708, jalan rusak &amp; berlubang di #Sukamulya 😡 lihat https:\/\/t\.co\/[A-Za-z0-9]{10} &lt;3$/);
    expect(t.entities?.mentions).toEqual([{ start: 7, end: 17, username: 'LAPOR1708', id: ACCOUNT_ID }]); // UTF-16 would say 9
    const [hashtag] = t.entities?.hashtags ?? [];
    const [url] = t.entities?.urls ?? [];
    expect(hashtag?.tag).toBe('Sukamulya');
    expect(slice(t.text, hashtag!)).toBe('#Sukamulya');
    expect(url).toMatchObject({ expanded_url: 'https://example.com/foto?id=1&x=2', display_url: 'example.com/foto?id=1&x=2' });
    expect(slice(t.text, url!)).toBe(url?.url);
    expect(url?.url).toHaveLength(23);
    expect(t).toMatchObject({ author_id: fake.userById(t.author_id!)?.id, conversation_id: t.id, edit_history_tweet_ids: [t.id], lang: 'in' });
    expect(BigInt(t.id)).toBeGreaterThan(1900000000000000000n);
    expect(weightedLength('🙏🏽 a')).toBe(6);
    expect(weightedLength('lihat https://example.com/a/very/long/path/that/is/long')).toBe(6 + 23);
  });

  it('keeps a long text as a note tweet and X\'s first 280 in text', () => {
    const body = `@LAPOR1708 #lapor ${'jalan rusak parah sekali '.repeat(14)}mohon segera diperbaiki`;
    const t = fake.tweet({ from: '@panjang', text: body });
    expect(weightedLength(body)).toBeGreaterThan(280);
    expect(t.note_tweet?.text).toBe(body);
    expect(weightedLength(t.text)).toBeLessThanOrEqual(280);
    expect(body.startsWith(t.text)).toBe(true);
    expect(t.note_tweet?.entities?.mentions?.[0]).toEqual(t.entities?.mentions?.[0]);
    expect(() => fake.tweet({ from: '@panjang', text: body, note: false })).toThrow(/note is false/);
  });

  it('makes retweets and quotes like the corpus, and keeps edit chains', async () => {
    const original = fake.tweet({ from: '@dina_marlina', text: '@LAPOR1708 #lapor lampu jalan mati 🙏' });
    const rt = fake.tweet({ from: '@yuni_arti', retweetOf: original.id });
    expect(rt.text).toBe(`RT @dina_marlina: ${original.text}`);
    expect(rt.referenced_tweets).toEqual([{ type: 'retweeted', id: original.id }]);
    for (const e of [...(rt.entities?.mentions ?? []), ...(rt.entities?.hashtags ?? [])]) expect(slice(rt.text, e)).toMatch(/^[@#]/);
    expect(rt.entities?.mentions?.map((m) => m.username)).toEqual(['dina_marlina', 'LAPOR1708']);

    const quote = fake.tweet({ from: '@fajarnug', text: 'Sama di Kel. Margasari @LAPOR1708 #lapor', quoteOf: original.id });
    expect(quote.entities?.urls?.[0]?.expanded_url).toBe(`https://x.com/dina_marlina/status/${original.id}`);

    const first = fake.edit(original.id, '@LAPOR1708 #lapor lampu jalan mati di Jl. Melati');
    const second = fake.edit(first.id, '@LAPOR1708 #lapor lampu jalan mati di Jl. Melati no. 5');
    expect(second.edit_history_tweet_ids).toEqual([original.id, first.id, second.id]);
    expect(second.conversation_id).toBe(original.id);
    expect(() => fake.edit(original.id, 'again')).toThrow(/latest version/);

    const page = await mentions({ max_results: '100' });
    expect(page.data?.map((t) => t.id)).toEqual([second.id, first.id, quote.id, rt.id, original.id]);
    expect(page.data?.[0]?.edit_history_tweet_ids).toEqual([original.id, first.id, second.id]);
    expect(page.includes?.tweets?.map((t) => t.id)).toEqual([original.id]);
  });
});

describe('mentions timeline', () => {
  it('pages with since_id, newest first, and tokens stay valid while tweets arrive', async () => {
    const before = fake.tweet({ from: '@warga', text: '@LAPOR1708 yang lama' });
    const made = Array.from({ length: 25 }, (_, i) => fake.tweet({ from: `@warga${i % 3}`, text: `@LAPOR1708 #lapor laporan ${i}` }).id);
    const newestFirst = [...made].reverse();
    const reader = appClient();
    const read = async (extra: Record<string, string>) => {
      const query = { ...MENTION_QUERY, since_id: before.id, max_results: '10', ...extra };
      return reader.v2.get<Page>('users/:id/mentions', query, { params: { id: ACCOUNT_ID }, fullResponse: true });
    };

    const p1 = await read({});
    expect(p1.data.data?.map((t) => t.id)).toEqual(newestFirst.slice(0, 10));
    expect(p1.data.meta).toMatchObject({ newest_id: newestFirst[0], oldest_id: newestFirst[9], result_count: 10 });
    expect(p1.data.meta?.next_token).toBeTruthy();
    expect(p1.data.meta?.previous_token).toBeUndefined();
    expect(p1.rateLimit).toMatchObject({ limit: 450, remaining: 449 });
    expect(p1.rateLimit?.reset).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));

    fake.tweet({ from: '@warga', text: '@LAPOR1708 baru saja' }); // arrives between pages
    const p2 = await read({ pagination_token: p1.data.meta?.next_token ?? '' });
    expect(p2.data.data?.map((t) => t.id)).toEqual(newestFirst.slice(10, 20));
    expect(p2.data.meta?.next_token && p2.data.meta.previous_token).toBeTruthy();
    const p3 = await read({ pagination_token: p2.data.meta?.next_token ?? '' });
    expect(p3.data.data?.map((t) => t.id)).toEqual(newestFirst.slice(20));
    expect(p3.data.meta).toMatchObject({ result_count: 5, oldest_id: made[0] });
    expect(p3.data.meta?.next_token).toBeUndefined();
    const back = await read({ pagination_token: p3.data.meta?.previous_token ?? '' });
    expect(back.data.data?.map((t) => t.id)).toEqual(newestFirst.slice(10, 20));
    expect(p1.data.includes?.users?.map((u) => u.id)).toEqual(expect.arrayContaining([ACCOUNT_ID, fake.tweetById(made[0]!)?.author_id]));
  });

  it('answers nothing new with meta only, and refuses bad parameters as X does', async () => {
    const t = fake.tweet({ from: '@warga', text: '@LAPOR1708 halo' });
    expect(await mentions({ since_id: t.id })).toEqual({ meta: { result_count: 0 } });

    const tooMany = await get(`/2/users/${ACCOUNT_ID}/mentions?max_results=1000`);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body).toEqual({
      errors: [{ parameters: { max_results: ['1000'] }, message: 'The `max_results` query parameter value [1000] is not between 5 and 100' }],
      title: 'Invalid Request',
      detail: 'One or more parameters to your request was invalid.',
      type: 'https://api.twitter.com/2/problems/invalid-request',
    });
    expect((await get(`/2/users/${ACCOUNT_ID}/mentions?expansions=nope`)).status).toBe(400);
    const missing = await get('/2/users/12345/mentions');
    expect(missing.status).toBe(200);
    expect(missing.body.errors?.[0]).toMatchObject({
      detail: 'Could not find user with id: [12345].',
      resource_type: 'user',
      parameter: 'id',
      resource_id: '12345',
    });
  });

  it('replays every corpus page with the same data and includes', async () => {
    const files = Object.keys(JSON.parse(readFileSync(corpusFile('twitter/expect.json'), 'utf8')) as Record<string, unknown>);
    for (const file of files) {
      const raw: unknown = JSON.parse(readFileSync(corpusFile(`twitter/${file}`), 'utf8'));
      const recorded = raw as Page;
      fake.reset();
      fake.injectMentions(raw as MentionsPageInput);
      const page = await mentions({ max_results: '100' });
      if (!recorded.data) {
        expect(page, file).toEqual({ meta: { result_count: 0 } });
        continue;
      }
      expect(page.data, file).toEqual(recorded.data);
      // X promises no order inside includes (the corpus has pages newest first and oldest first).
      const key = (x: { id?: string; media_key?: string }) => x.id ?? x.media_key ?? '';
      const byId = <T extends { id?: string; media_key?: string }>(list: T[] | undefined) => [...(list ?? [])].sort((a, b) => (key(a) < key(b) ? -1 : 1));
      expect(byId(page.includes?.users), file).toEqual(byId(recorded.includes?.users));
      expect(byId(page.includes?.tweets), file).toEqual(byId(recorded.includes?.tweets));
      expect(byId(page.includes?.media), file).toEqual(byId(recorded.includes?.media));
      const { newest_id, oldest_id, result_count } = recorded.meta ?? {};
      expect(page.meta, file).toMatchObject({ newest_id, oldest_id, result_count });
    }
  });

  it('serves partial errors: a referenced tweet missing from includes', async () => {
    const quoted = fake.tweet({ from: '@tari_wulan', text: 'Lampu jalan di kampung gelap semua' });
    fake.tweet({ from: '@fajarnug', text: '@LAPOR1708 #lapor sama persis', quoteOf: quoted.id });
    fake.fault({ endpoint: 'mentions', partialErrors: true, count: 1 });
    const partial = await mentions({});
    expect(partial.data).toHaveLength(1);
    expect(partial.includes?.tweets).toBeUndefined();
    expect(partial.errors).toEqual([
      {
        value: quoted.id,
        detail: `Could not find tweet with id: [${quoted.id}].`,
        title: 'Not Found Error',
        resource_type: 'tweet',
        parameter: 'referenced_tweets.id',
        resource_id: quoted.id,
        type: 'https://api.twitter.com/2/problems/resource-not-found',
      },
    ]);
    expect((await mentions({})).includes?.tweets?.map((t) => t.id)).toEqual([quoted.id]);
  });
});

describe('limits and faults', () => {
  it('serves 429 with rate-limit headers past the limit, and again after the reset', async () => {
    const me = () => userClient().v2.me();
    for (let i = 0; i < 5; i++) await me();
    const limited = await apiError(me());
    expect(limited.code).toBe(429);
    expect(limited.data).toEqual({ title: 'Too Many Requests', detail: 'Too Many Requests', type: 'about:blank', status: 429 });
    expect(limited.rateLimit).toMatchObject({ limit: 5, remaining: 0 });
    const resetMs = (limited.rateLimit?.reset ?? 0) * 1000;
    expect(resetMs - Date.now()).toBeLessThanOrEqual(WINDOW_MS + 1000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, resetMs - Date.now()) + 50));
    expect((await me()).data.username).toBe('LAPOR1708');
    expect(fake.stats().rateLimited.me).toBe(1);
  });

  it('injects 429s and 5xx for the next calls of one endpoint', async () => {
    fake.fault({ endpoint: 'mentions', status: 429, count: 1, resetInMs: 4_000 });
    fake.fault({ endpoint: 'tweets', status: 503, count: 1 });
    const limited = await get(`/2/users/${ACCOUNT_ID}/mentions`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-rate-limit-remaining')).toBe('0');
    const reset = Number(limited.headers.get('x-rate-limit-reset')) * 1000 - Date.now();
    expect(reset).toBeGreaterThan(2_000);
    expect(reset).toBeLessThanOrEqual(5_000);
    expect((await get(`/2/users/${ACCOUNT_ID}/mentions`)).status).toBe(200);
    const down = await apiError(userClient().v2.tweet('halo'));
    expect(down.code).toBe(503);
    expect(down.data).toMatchObject({ title: 'Service Unavailable', status: 503 });
    await userClient().v2.tweet('halo');
    expect(fake.stats()).toMatchObject({
      rateLimited: { mentions: 1 },
      serverErrors: { tweets: 1 },
      posts: 1,
      requests: { mentions: { app: 2 }, tweets: { user: 2 } },
    });
  });
});

describe('posting rules and direct messages', () => {
  it('refuses duplicate content, over-long text and replies to unknown tweets', async () => {
    const writer = userClient().v2;
    await writer.tweet('Laporan Anda tercatat');
    const duplicate = await apiError(writer.tweet('Laporan Anda tercatat'));
    expect(duplicate.code).toBe(403);
    const detail = 'You are not allowed to create a Tweet with duplicate content.';
    expect(duplicate.data).toEqual({ detail, type: 'about:blank', title: 'Forbidden', status: 403 });
    const long = await apiError(writer.tweet('😀'.repeat(141)));
    expect(long.code).toBe(400);
    expect(JSON.stringify(long.data)).toContain('Your Tweet text is too long.');
    await writer.tweet('😀'.repeat(140)); // 280 exactly
    const hidden = await apiError(writer.tweet('balasan', { reply: { in_reply_to_tweet_id: '1234567890' } }));
    expect(hidden.code).toBe(403);
    expect(hidden.data).toMatchObject({ detail: 'You attempted to reply to a Tweet that is deleted or not visible to you.' });
    expect(fake.posts().map((p) => p.index)).toEqual([0, 1]);
  });

  it('lets a citizen answer the account\'s post, which puts the answer on the mentions timeline', async () => {
    const report = fake.tweet({ from: '@dina_marlina', text: '@LAPOR1708 #lapor jalan berlubang' });
    const { data: ours } = await userClient().v2.reply('Tercatat: 5520856467', report.id);
    const answer = fake.tweet({ from: '@dina_marlina', text: 'CEK 5520856467', inReplyTo: ours.id });
    expect(answer).toMatchObject({ in_reply_to_user_id: ACCOUNT_ID, conversation_id: report.id, referenced_tweets: [{ type: 'replied_to', id: ours.id }] });
    const page = await mentions({});
    expect(page.data?.map((t) => t.id)).toEqual([answer.id, report.id]);
    expect(page.includes?.tweets?.[0]).toMatchObject({ id: ours.id, author_id: ACCOUNT_ID, text: 'Tercatat: 5520856467' });
  });

  it('sends DMs, and refuses them to a user who does not accept them', async () => {
    const citizen = fake.tweet({ from: '@nuraisyah_', text: '@LAPOR1708 #lapor RAHASIA pungli' }).author_id ?? '';
    // X wraps the result in `data` (the reference); twitter-api-v2's sendDmToParticipant type says otherwise.
    const dm = (text: string) =>
      userClient().v2.post<{ data: { dm_conversation_id: string; dm_event_id: string } }>(
        'dm_conversations/with/:participant_id/messages',
        { text },
        { params: { participant_id: citizen } },
      );
    const { data: sent } = await dm('Detail laporan rahasia Anda');
    expect(sent.dm_event_id).toMatch(/^[0-9]+$/);
    expect(sent.dm_conversation_id).toBe([ACCOUNT_ID, citizen].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)).join('-'));
    expect(fake.dms({ to: citizen })).toMatchObject([{ index: 0, text: 'Detail laporan rahasia Anda' }]);

    fake.setUser(citizen, { acceptsDms: false });
    const refused = await apiError(dm('lagi'));
    expect(refused.code).toBe(403);
    expect(refused.data).toMatchObject({ title: 'Forbidden', status: 403 });
    expect(fake.stats().dms).toBe(1);
  });
});

describe('webhook (Account Activity)', () => {
  async function receiver(secret: string) {
    const deliveries: Array<{ raw: Buffer; signature: string | undefined }> = [];
    const server = http.createServer((req, res) => {
      const crc = new URL(req.url ?? '/', 'http://localhost').searchParams.get('crc_token');
      if (req.method === 'GET' && crc) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ response_token: `sha256=${createHmac('sha256', secret).update(crc).digest('base64')}` }));
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        deliveries.push({ raw: Buffer.concat(chunks), signature: req.headers['x-twitter-webhooks-signature'] as string | undefined });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/x`;
    return { url, deliveries, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  it('registers only after a right CRC answer', async () => {
    const wrong = await receiver('another-secret');
    expect(await fake.registerWebhook(wrong.url)).toMatchObject({ ok: false, error: expect.stringMatching(/response_token/) });
    const res = await fetch(`${fake.url}/_fake/webhook`, { method: 'POST', body: JSON.stringify({ url: wrong.url }) });
    expect(res.status).toBe(400);
    await wrong.close();
  });

  it('delivers mentions, replies and own posts as signed v1.1 tweet_create_events', async () => {
    const hook = await receiver(fake.credentials.consumerSecret);
    const res = await fetch(`${fake.url}/_fake/webhook`, { method: 'POST', body: JSON.stringify({ url: hook.url }) });
    expect(await res.json()).toEqual({ ok: true });

    const short = fake.tweet({ from: { username: 'dina_marlina', name: 'Dina Marlina' }, text: '@LAPOR1708 #lapor lampu mati 🙏 & gelap' });
    fake.tweet({ from: '@someone', text: 'tidak menyebut siapa-siapa' });
    const long = fake.tweet({ from: '@galih', text: `@LAPOR1708 #lapor ${'sampah menumpuk di pasar '.repeat(8)}` });
    await userClient().v2.reply('Tercatat', short.id);
    await fake.settled();

    expect(hook.deliveries).toHaveLength(3);
    for (const d of hook.deliveries) {
      expect(d.signature).toBe(`sha256=${createHmac('sha256', fake.credentials.consumerSecret).update(d.raw).digest('base64')}`);
    }
    const events = hook.deliveries.map((d) => JSON.parse(d.raw.toString('utf8')) as { for_user_id: string; tweet_create_events: V1Tweet[] });
    expect(events.every((e) => e.for_user_id === ACCOUNT_ID)).toBe(true);
    const [first, second, own] = events.map((e) => e.tweet_create_events[0]);
    const user = { id_str: short.author_id, name: 'Dina Marlina', screen_name: 'dina_marlina' };
    expect(first).toMatchObject({ id_str: short.id, text: short.text, truncated: false, user });
    expect(first?.created_at).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \+0000 \d{4}$/);
    expect(Number(first?.timestamp_ms)).toBe(Date.parse(short.created_at ?? ''));
    expect(first?.entities).toMatchObject({
      user_mentions: [{ screen_name: 'LAPOR1708', id_str: ACCOUNT_ID, indices: [0, 10] }],
      hashtags: [{ text: 'lapor', indices: [11, 17] }],
    });
    expect(Array.from(second?.text ?? '').length).toBeLessThanOrEqual(140);
    expect(second).toMatchObject({ id_str: long.id, truncated: true, extended_tweet: { full_text: long.note_tweet?.text ?? long.text } });
    expect(own).toMatchObject({ in_reply_to_status_id_str: short.id, in_reply_to_user_id_str: short.author_id, user: { screen_name: 'LAPOR1708' } });
    expect(fake.stats().webhook).toEqual({ delivered: 3, failed: 0 });
    await hook.close();
  });
});

describe('control API over HTTP', () => {
  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${fake.url}/_fake${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('plays citizens, replays pages, edits, sets users and faults, and reports what the client did', async () => {
    const photo = await control('POST', '/tweets', {
      from: '@dina_marlina',
      text: '@LAPOR1708 ini fotonya min',
      media: [{ type: 'photo', url: 'https://pbs.twimg.com/media/abc.jpg' }],
    });
    const tweet = photo.body.data as V2Tweet;
    const [mediaKey] = tweet.attachments?.media_keys ?? [];
    expect(mediaKey).toMatch(/^3_[0-9]+$/);
    const link = tweet.entities?.urls?.[0];
    expect(link).toMatchObject({ media_key: mediaKey, display_url: expect.stringMatching(/^pic\.x\.com\//) });
    expect(link?.expanded_url).toBe(`https://x.com/dina_marlina/status/${tweet.id}/photo/1`);
    const media = { media_key: mediaKey, type: 'photo', url: 'https://pbs.twimg.com/media/abc.jpg', width: 1200, height: 1600 };
    expect((await mentions({})).includes?.media).toEqual([media]);

    const raw: unknown = JSON.parse(readFileSync(corpusFile('twitter/mentions-rahasia.json'), 'utf8'));
    expect(await control('POST', '/mentions/raw', raw)).toEqual({ status: 200, body: { injected: 1 } });
    const edited = await control('POST', `/tweets/${tweet.id}/edit`, { text: '@LAPOR1708 ini fotonya min, tiangnya patah' });
    expect((edited.body.data as V2Tweet).edit_history_tweet_ids).toEqual([tweet.id, (edited.body.data as V2Tweet).id]);
    expect((await control('POST', '/tweets/1/edit', { text: 'x' })).status).toBe(404);

    expect(await control('POST', `/users/${tweet.author_id}`, { acceptsDms: false })).toEqual({ status: 200, body: { ok: true } });
    const params = { participant_id: tweet.author_id ?? '' };
    expect((await apiError(userClient().v2.post('dm_conversations/with/:participant_id/messages', { text: 'hai' }, { params }))).code).toBe(403);
    expect((await control('POST', '/fault', { endpoint: 'me', status: 500, count: 1 })).status).toBe(200);
    expect((await control('POST', '/fault', { endpoint: 'nowhere', status: 500 })).status).toBe(400);
    expect((await apiError(userClient().v2.me())).code).toBe(500);

    await userClient().v2.reply('Foto diterima', tweet.id);
    const posts = (await control('GET', `/posts?inReplyTo=${tweet.id}`)).body.posts;
    expect(posts).toMatchObject([{ index: 0, text: 'Foto diterima', in_reply_to_tweet_id: tweet.id }]);
    expect((await control('GET', `/dms?to=${tweet.author_id}`)).body).toEqual({ dms: [] });
    expect((await control('GET', '/stats')).body).toMatchObject({ posts: 1, dms: 0, serverErrors: { me: 1 }, requests: { dm: { user: 1 }, me: { user: 1 } } });
    expect((await control('DELETE', '/webhook')).body).toEqual({ ok: true });
    expect((await control('POST', '/reset')).body).toEqual({ ok: true });
    expect(await mentions({})).toEqual({ meta: { result_count: 0 } });
    expect((await control('GET', '/nothing')).status).toBe(404);
  });
});

describe('bad input', () => {
  it('answers malformed JSON, huge bodies and unknown paths in X\'s shapes, and keeps serving', async () => {
    const header = signed('POST', '/2/tweets', {}, { nonce: 'bad-json' });
    const json = { 'content-type': 'application/json' };
    const malformed = await fetch(`${fake.url}/2/tweets`, { method: 'POST', headers: { authorization: header, ...json }, body: '{"text": "oops' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ title: 'Invalid Request', type: 'https://api.twitter.com/2/problems/invalid-request' });
    const schema = await fetch(`${fake.url}/2/tweets`, {
      method: 'POST',
      headers: { authorization: signed('POST', '/2/tweets', {}, { nonce: 'bad-schema' }), ...json },
      body: JSON.stringify({ text: 'x', reply: {} }),
    });
    const problem = (await schema.json()) as { errors: Array<{ message: string }> };
    expect(problem.errors[0]?.message).toBe('$.reply.in_reply_to_tweet_id: is missing but it is required');

    const huge = await fetch(`${fake.url}/_fake/tweets`, { method: 'POST', body: 'x'.repeat(1024 * 1024 + 1) });
    expect(huge.status).toBe(413);
    expect((await fetch(`${fake.url}/_fake/tweets`, { method: 'POST', body: '{nope' })).status).toBe(400);
    expect((await fetch(`${fake.url}/_fake/tweets`, { method: 'POST', body: JSON.stringify({ from: 'bad name!' }) })).status).toBe(400);
    const unknown = await fetch(`${fake.url}/2/nothing`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ title: 'Not Found', type: 'about:blank', status: 404, detail: 'Not Found' });

    const created = await fetch(`${fake.url}/_fake/tweets`, { method: 'POST', body: JSON.stringify({ from: '@warga', text: '@LAPOR1708 masih hidup?' }) });
    expect(created.status).toBe(200);
    expect(((await mentions({})).data ?? []).length).toBe(1);
    expect(await (await fetch(`${fake.url}/_fake/posts?since=0`)).json()).toEqual({ posts: [] });
  });
});
