import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { weightedLength } from '../../../adapters/x/weighted.ts';
import { FakeXApi } from '../../../scripts/x/fake-api.ts';
import { createTestEnv, eventually, type TestEnv } from '../../helpers/env.ts';
import { handles, xContactHash, xGateway, xVars } from '../../helpers/x.ts';

/**
 * X's Account Activity webhook end to end over HTTP: the test gateway listens on loopback in webhook
 * mode (nothing polls), the fake X API (scripts/x/fake-api.ts) runs the CRC check against it and POSTs
 * each tweet that mentions the account, signed with the app secret (x-twitter-webhooks-signature).
 *
 * The fake delivers through a relay of ours, transparent unless told otherwise for one author: it
 * keeps the exact signed bytes of every delivery (for replays and forgeries built from real ones),
 * can hold a delivery back (answering the fake 200, as if X had delivered it elsewhere), or deliver
 * it three times, two at once and one after (X's retry of a delivery it thought lost).
 *
 * Tests use fresh citizens from `handles()` and count only their own reports and replies, so they
 * may run in any order or at once.
 */

const newUser = handles('hook');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every citizen's username, display name and words used here: none may reach a log line. */
const personal = new Set<string>();

interface Gateway {
  fake: FakeXApi;
  env: TestEnv;
  close(): Promise<void>;
}

let web: Gateway; // webhook mode: the gateway under test
let poll: Gateway; // poll mode, with its webhook registered too
let hookUrl: string; // web's /webhooks/x
let pollHookUrl: string;
let relay: Relay; // between web.fake and web
let pollRelay: Relay; // between poll.fake and poll

beforeAll(async () => {
  [web, poll] = await Promise.all([xGateway({ LAPOR_X_MODE: 'webhook' }), xGateway()]);
  hookUrl = await listen(web.env);
  pollHookUrl = await listen(poll.env);
  [relay, pollRelay] = await Promise.all([startRelay(hookUrl), startRelay(pollHookUrl)]);
  expect(await web.fake.registerWebhook(relay.url)).toEqual({ ok: true });
  expect(await poll.fake.registerWebhook(pollRelay.url)).toEqual({ ok: true });
});

afterAll(async () => {
  await Promise.all([relay?.close(), pollRelay?.close()]);
  await Promise.all([web?.close(), poll?.close()]);
});

// ---- helpers ----

async function listen(env: TestEnv): Promise<string> {
  await env.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = env.app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}/webhooks/x`;
}

function sign(body: Buffer | string, secret = web.fake.credentials.consumerSecret): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('base64')}`;
}

async function post(url: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, body: json };
}

/** POSTs `body` signed with the app secret, as X does. */
function postSigned(body: Buffer | string, url = hookUrl): Promise<{ status: number; body: unknown }> {
  return post(url, body, { 'x-twitter-webhooks-signature': sign(body) });
}

/** A citizen with a display name of their own, all of it remembered as personal data. */
function citizen() {
  const user = newUser();
  const who = { ...user, name: `Siti Rahayu ${user.username.slice(-4)}` };
  personal.add(who.username).add(who.name);
  return who;
}

/** A complaint with a word found nowhere else, remembered as personal data. */
function complaint(what = 'lampu jalan mati di gang') {
  const marker = `Kenanga${randomBytes(4).toString('hex')}`;
  personal.add(marker);
  return { text: `${what} ${marker}`, marker };
}

async function reportsOf(env: TestEnv, userId: string) {
  const { rows } = await env.runtime.db.query<{ seq: string; tracking_id: string; text: string }>(
    `SELECT seq::text, tracking_id, text FROM reports WHERE contact_hash = $1 ORDER BY seq`,
    [xContactHash(env, userId)],
  );
  return rows;
}

async function oneReportOf(env: TestEnv, userId: string) {
  const rows = await eventually(async () => {
    const found = await reportsOf(env, userId);
    return found.length ? found : undefined;
  }, 10_000, `a report of ${userId}`);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

async function replyIn(fake: FakeXApi, tweetId: string, matching = /diterima/) {
  return eventually(async () => fake.posts({ inReplyTo: tweetId }).find((p) => matching.test(p.text)), 10_000, `a reply to ${tweetId} matching ${matching}`);
}

/** One report and one reply in the thread, and still one of each once everything had time to happen twice. */
async function exactlyOneReportAndReply(g: Gateway, userId: string, tweetId: string) {
  const report = await oneReportOf(g.env, userId);
  const reply = await replyIn(g.fake, tweetId);
  expect(reply.text).toContain(report.tracking_id);
  await sleep(800);
  expect(await reportsOf(g.env, userId)).toHaveLength(1);
  expect(g.fake.posts({ inReplyTo: tweetId })).toHaveLength(1);
  return { report, reply };
}

/** Nothing filed for this citizen after a while. */
async function nothingFiledFor(env: TestEnv, userId: string, waitMs = 600) {
  await sleep(waitMs);
  expect(await reportsOf(env, userId)).toHaveLength(0);
}

/** What X POSTed for a tweet, as the relay kept it. */
async function deliveryOf(r: Relay, tweetId: string): Promise<Captured> {
  return eventually(async () => r.captured.get(tweetId), 10_000, `the delivery of ${tweetId}`);
}

/** A tweet by a fresh citizen that X delivered to the relay and the relay kept (not forwarded). */
async function heldTweet(text: string, g: Gateway = web, r: Relay = relay) {
  const user = citizen();
  r.modes.set(user.id, 'hold');
  const tweet = g.fake.tweet({ from: user, text });
  const delivery = await deliveryOf(r, tweet.id);
  return { user, tweet, delivery, payload: JSON.parse(delivery.body.toString('utf8')) as { for_user_id: string; tweet_create_events: Record<string, unknown>[] } & Record<string, unknown> };
}

// ---- the relay ----

type Mode = 'forward' | 'hold' | 'retry';
interface Captured {
  tweetId: string;
  authorId: string;
  body: Buffer;
  signature: string;
  /** What the gateway answered each time the relay passed it on. */
  statuses: number[];
}
interface Relay {
  url: string;
  /** By tweet id. */
  captured: Map<string, Captured>;
  /** By author id; 'forward' when unset. */
  modes: Map<string, Mode>;
  close(): Promise<void>;
}

async function startRelay(target: string): Promise<Relay> {
  const captured = new Map<string, Captured>();
  const modes = new Map<string, Mode>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const query = req.url?.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
        if (req.method === 'GET') {
          const answer = await fetch(target + query);
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await answer.arrayBuffer()));
          return;
        }
        const signature = String(req.headers['x-twitter-webhooks-signature'] ?? '');
        const event = (JSON.parse(body.toString('utf8')) as { tweet_create_events?: Array<{ id_str: string; user?: { id_str?: string } }> }).tweet_create_events?.[0];
        const record: Captured = { tweetId: event?.id_str ?? '', authorId: event?.user?.id_str ?? '', body, signature, statuses: [] };
        captured.set(record.tweetId, record);
        const mode = modes.get(record.authorId) ?? 'forward';
        if (mode === 'hold') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
          return;
        }
        const send = async () => {
          const { status } = await post(target, body, { 'content-type': String(req.headers['content-type']), 'x-twitter-webhooks-signature': signature });
          record.statuses.push(status);
          return status;
        };
        // X's retry: the first attempt "timed out" while the gateway was still at it, then once more.
        if (mode === 'retry') await Promise.all([send(), send()]);
        const status = await send();
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
      })().catch((err: unknown) => {
        res.writeHead(502).end(String((err as Error).message));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/x-relay`,
    captured,
    modes,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---- 1. CRC ----

describe('the CRC check', () => {
  let spare: FakeXApi;
  let wrong: TestEnv;
  let wrongUrl: string;

  beforeAll(async () => {
    // Another fake X of the same app (same keys), so registering here moves no delivery of `web.fake`.
    spare = await FakeXApi.start({ ...web.fake.credentials });
    wrong = await createTestEnv({ channels: ['x'], workers: false, env: { ...xVars(spare), LAPOR_X_MODE: 'webhook', LAPOR_X_APP_SECRET: 'not-the-app-secret' } });
    wrongUrl = await listen(wrong);
  });
  afterAll(async () => {
    await wrong?.close();
    await spare?.stop();
  });

  it('registers the webhook: the fake checks response_token = sha256=base64(HMAC-SHA256(app secret, crc_token))', async () => {
    expect(await spare.registerWebhook(hookUrl)).toEqual({ ok: true });
    expect(await spare.registerWebhook(pollHookUrl)).toEqual({ ok: true }); // poll mode answers it too

    const token = randomBytes(24).toString('base64url');
    // X adds a nonce to newer CRC requests: an unknown parameter changes nothing.
    const res = await fetch(`${hookUrl}?crc_token=${encodeURIComponent(token)}&nonce=abc123`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toEqual({ response_token: sign(token) });
  });

  it('answers 400 to a GET without a crc_token, or with an empty or repeated one', async () => {
    for (const query of ['', '?crc_token=', '?other=1', '?crc_token=a&crc_token=b']) {
      const res = await fetch(hookUrl + query);
      expect(res.status, query).toBe(400);
      expect(await res.json(), query).not.toHaveProperty('response_token');
    }
  });

  it('fails when the gateway holds a wrong app secret', async () => {
    const result = await spare.registerWebhook(wrongUrl);
    expect(result.ok).toBe(false);
    expect(result).toMatchObject({ error: expect.stringMatching(/wrong response_token/) });
    // And it refuses what the real app secret signed.
    const body = JSON.stringify({ for_user_id: spare.account.id, tweet_create_events: [] });
    expect((await postSigned(body, wrongUrl)).status).toBe(401);
  });
});

// ---- 2. a signed delivery ----

describe('a signed delivery of @LAPOR1708 #lapor', () => {
  it('files exactly one report and answers in the thread with its tracking ID', async () => {
    const user = citizen();
    const { text, marker } = complaint();
    const tweet = web.fake.tweet({ from: user, text: `@LAPOR1708 #lapor ${text}` });
    const { report, reply } = await exactlyOneReportAndReply(web, user.id, tweet.id);
    expect(report.text).toBe(text);
    expect(reply.in_reply_to_tweet_id).toBe(tweet.id);
    expect(weightedLength(reply.text)).toBeLessThanOrEqual(280);
    expect(reply.text).not.toContain(user.username);
    expect(reply.text).not.toContain(marker);

    const delivery = await deliveryOf(relay, tweet.id);
    expect(delivery.statuses).toEqual([200]);
    // Our own reply comes back through the webhook too (X delivers the account's posts): it files nothing.
    const echo = await deliveryOf(relay, reply.id);
    expect(echo.statuses).toEqual([200]);
    await sleep(300);
    expect(await reportsOf(web.env, web.fake.account.id)).toHaveLength(0);
  });

  it('files nothing for a mention without #lapor, #laporan, or a retweet (answered 200: X must not retry)', async () => {
    const user = citizen();
    const original = citizen();
    const first = web.fake.tweet({ from: original, text: `@LAPOR1708 #lapor ${complaint().text}` });
    await oneReportOf(web.env, original.id);
    const tweets = [
      web.fake.tweet({ from: user, text: `@LAPOR1708 ${complaint().text}` }),
      web.fake.tweet({ from: user, text: `@LAPOR1708 #laporan ${complaint().text}` }),
      web.fake.tweet({ from: user, retweetOf: first.id }),
    ];
    await web.fake.settled();
    for (const t of tweets) {
      const d = web.fake.webhookDeliveries().find((x) => x.tweetId === t.id);
      // A retweet does not mention the account itself; X may or may not deliver it.
      if (d) expect(d.status).toBe(200);
    }
    await nothingFiledFor(web.env, user.id);
  });
});

// ---- 3. forged and malformed deliveries ----

describe('forged and malformed deliveries', () => {
  it('refuses with 401 a wrong signature, none, or one over other bytes, and files nothing; the genuine bytes then file', async () => {
    // Non-ASCII in the text, so "the same JSON" can be written with other escapes.
    const { user, delivery, payload } = await heldTweet(`@LAPOR1708 #lapor trotoar amblas — 50 cm, “bahaya” ${complaint().text}`);
    const genuine = delivery.body;
    expect(delivery.signature).toBe(sign(genuine));
    const secret = web.fake.credentials.consumerSecret;

    const respaced = Buffer.from(JSON.stringify(payload, null, 2));
    const escaped = Buffer.from(JSON.stringify(payload).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
    const upperEscaped = Buffer.from(escaped.toString('utf8').replace(/\\u([0-9a-f]{4})/g, (_m, hex: string) => `\\u${hex.toUpperCase()}`));
    const tampered = Buffer.from(genuine.toString('utf8').replace('amblas', 'ambles'));
    // Each is the same delivery to a JSON parser, and none is the signed bytes.
    for (const other of [respaced, escaped, upperEscaped]) {
      expect(JSON.parse(other.toString('utf8'))).toEqual(payload);
      expect(other.equals(genuine)).toBe(false);
    }

    const attempts: Array<[string, Buffer, Record<string, string>]> = [
      ['wrong secret', genuine, { 'x-twitter-webhooks-signature': sign(genuine, `${secret}x`) }],
      ['no signature', genuine, {}],
      ['empty signature', genuine, { 'x-twitter-webhooks-signature': '' }],
      ['no sha256= prefix', genuine, { 'x-twitter-webhooks-signature': sign(genuine).slice('sha256='.length) }],
      ['hex, not base64', genuine, { 'x-twitter-webhooks-signature': `sha256=${createHmac('sha256', secret).update(genuine).digest('hex')}` }],
      ['sha1', genuine, { 'x-twitter-webhooks-signature': `sha1=${createHmac('sha1', secret).update(genuine).digest('base64')}` }],
      ['another header name', genuine, { 'x-hub-signature-256': sign(genuine) }],
      ['re-spaced JSON', respaced, { 'x-twitter-webhooks-signature': delivery.signature }],
      ['non-ASCII escaped', escaped, { 'x-twitter-webhooks-signature': delivery.signature }],
      ['escapes in upper case', upperEscaped, { 'x-twitter-webhooks-signature': sign(escaped) }],
      ['a word changed', tampered, { 'x-twitter-webhooks-signature': delivery.signature }],
    ];
    for (const [what, body, headers] of attempts) {
      const answer = await post(hookUrl, body, headers);
      expect(answer.status, what).toBe(401);
      expect(answer.body, what).toMatchObject({ error: 'unauthorized' });
    }
    await nothingFiledFor(web.env, user.id);

    // The same bytes with their own signature are a delivery like any other.
    expect(await postSigned(genuine)).toEqual({ status: 200, body: { stored: 1 } });
    await oneReportOf(web.env, user.id);
  });

  it('answers 400 to a signed body that is not JSON, or not UTF-8', async () => {
    const user = citizen();
    const notUtf8 = Buffer.concat([
      Buffer.from(`{"for_user_id":"${web.fake.account.id}","tweet_create_events":[{"id_str":"1","text":"@LAPOR1708 #lapor jalan `),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
      Buffer.from(`","user":{"id_str":"${user.id}","screen_name":"${user.username}"}}]}`),
    ]);
    const latin1 = Buffer.from(`{"for_user_id":"${web.fake.account.id}","tweet_create_events":[],"note":"jalan berlubang café"}`, 'latin1');
    for (const [what, body] of [
      ['not UTF-8', notUtf8],
      ['Latin-1', latin1],
      ['text', Buffer.from('hello')],
      ['truncated JSON', Buffer.from(`{"for_user_id":"${web.fake.account.id}","tweet_create_events":[`)],
      ['form', Buffer.from('for_user_id=1&tweet_create_events=x')],
      ['empty', Buffer.alloc(0)],
    ] as const) {
      const answer = await postSigned(body);
      expect(answer.status, what).toBe(400);
    }
    await nothingFiledFor(web.env, user.id, 200);
  });

  it('answers 400 to signed JSON that is not an Account Activity delivery', async () => {
    const event = { id_str: '1790000000000000001', text: '@LAPOR1708 #lapor x', user: { id_str: '1', screen_name: 'a' } };
    for (const value of [
      [],
      {},
      'x',
      42,
      null,
      { tweet_create_events: [event] },
      { for_user_id: Number(web.fake.account.id), tweet_create_events: [event] },
      { for_user_id: web.fake.account.id, tweet_create_events: event },
      { for_user_id: web.fake.account.id, tweet_create_events: null },
      [{ for_user_id: web.fake.account.id, tweet_create_events: [event] }],
    ]) {
      const answer = await postSigned(JSON.stringify(value));
      expect(answer.status, JSON.stringify(value)).toBe(400);
      expect(answer.body).toMatchObject({ error: 'bad_request' });
    }
  });

  it('answers 200 to other Account Activity events, and files nothing', async () => {
    const body = JSON.stringify({
      for_user_id: web.fake.account.id,
      favorite_events: [{ id: 'a', favorited_status: { id_str: '1790000000000000002' } }],
      follow_events: [{ type: 'follow' }],
      direct_message_events: [{ type: 'message_create', id: '1' }],
    });
    expect(await postSigned(body)).toEqual({ status: 200, body: { stored: 0 } });
  });

  it('tolerates unknown fields, and any content type (the signature covers the bytes)', async () => {
    const { user, tweet, payload } = await heldTweet(`@LAPOR1708 #lapor ${complaint('got mampet di pasar').text}`);
    const event = payload.tweet_create_events[0]!;
    const extended = {
      ...payload,
      future_field: { nested: [1, 2, 3] },
      tweet_create_events: [{ ...event, brand_new_field: 'x', edit_controls: { editable_until_ms: 1 }, user: { ...(event.user as object), verified_type: 'none' } }],
    };
    const body = JSON.stringify(extended);
    expect(await post(hookUrl, body, { 'content-type': 'text/plain', 'x-twitter-webhooks-signature': sign(body) })).toEqual({ status: 200, body: { stored: 1 } });
    await exactlyOneReportAndReply(web, user.id, tweet.id);
  });

  it('files the good tweet of a delivery whose other tweet is malformed, and answers 200', async () => {
    const { user, tweet, payload } = await heldTweet(`@LAPOR1708 #lapor ${complaint('jembatan retak').text}`);
    const event = payload.tweet_create_events[0]!;
    const other = citizen();
    const malformed = [
      { ...event, id_str: 'not-a-number', user: { id_str: other.id, screen_name: other.username } },
      { ...event, id_str: 12345 },
      'a string',
      null,
    ];
    const body = JSON.stringify({ ...payload, tweet_create_events: [...malformed, event] });
    expect(await postSigned(body)).toEqual({ status: 200, body: { stored: 1 } });
    await exactlyOneReportAndReply(web, user.id, tweet.id);
    expect(await reportsOf(web.env, other.id)).toHaveLength(0);
  });

  it('files nothing from a delivery for another account the app is subscribed for', async () => {
    // One app, one webhook, several subscribed accounts (X's Account Activity allows it): a delivery for
    // another account, signed with our app secret, carries a tweet that mentions THAT account with #lapor.
    // Taking for_user_id as our own id would let the mention of the other account pass as ours: the
    // adapter compares it with our account's id (LAPOR_X_USER_ID, or users/me).
    const user = citizen();
    const otherAccount = { id: '1234567890123', username: 'LAPORJatim' };
    const { text } = complaint();
    const body = JSON.stringify({
      for_user_id: otherAccount.id,
      tweet_create_events: [
        {
          id_str: String(1_700_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e12))),
          text: `@${otherAccount.username} #lapor ${text}`,
          created_at: new Date().toUTCString(),
          user: { id_str: user.id, screen_name: user.username, name: user.name },
          entities: { hashtags: [{ text: 'lapor' }], user_mentions: [{ screen_name: otherAccount.username, id_str: otherAccount.id }], urls: [] },
          lang: 'in',
        },
      ],
    });
    const answer = await postSigned(body);
    expect(answer.status).toBe(200);
    await nothingFiledFor(web.env, user.id, 1_000);
  });
});

// ---- 4. replays and retries ----

describe('a delivery seen more than once', () => {
  it('files one report and one reply when the same signed bytes are POSTed again, at once and later', async () => {
    const user = citizen();
    const tweet = web.fake.tweet({ from: user, text: `@LAPOR1708 #lapor ${complaint('pohon tumbang').text}` });
    const delivery = await deliveryOf(relay, tweet.id);
    await oneReportOf(web.env, user.id);
    // Replayed by anyone who saw them: at once, and after the reply went out.
    const concurrent = await Promise.all([1, 2, 3, 4].map(() => post(hookUrl, delivery.body, { 'x-twitter-webhooks-signature': delivery.signature })));
    for (const answer of concurrent) expect(answer.status).toBe(200);
    await replyIn(web.fake, tweet.id);
    expect((await post(hookUrl, delivery.body, { 'x-twitter-webhooks-signature': delivery.signature })).status).toBe(200);
    await exactlyOneReportAndReply(web, user.id, tweet.id);
  });

  it("files one report and one reply through X's retry (the same delivery twice at once, then again)", async () => {
    const user = citizen();
    relay.modes.set(user.id, 'retry');
    const tweet = web.fake.tweet({ from: user, text: `@LAPOR1708 #lapor ${complaint('banjir setinggi lutut').text}` });
    await exactlyOneReportAndReply(web, user.id, tweet.id);
    const delivery = await eventually(async () => {
      const d = await deliveryOf(relay, tweet.id);
      return d.statuses.length === 3 ? d : undefined;
    }, 10_000, 'three attempts');
    expect(delivery.statuses).toEqual([200, 200, 200]);
  });

  it('files one report for an edit delivered after its original (keyed by edit_history.initial_tweet_id)', async () => {
    const { user, tweet, delivery, payload } = await heldTweet(`@LAPOR1708 #lapor ${complaint('lampu merah mati').text}`);
    expect((await postSigned(delivery.body)).status).toBe(200);
    await replyIn(web.fake, tweet.id);
    const edited = web.fake.edit(tweet.id, `@LAPOR1708 #lapor ${complaint('lampu merah mati total').text}`);
    const editDelivery = await deliveryOf(relay, edited.id);
    // The fake's v1.1 tweets carry no edit_history; X's do (since the edit feature): add it as X sends it.
    const editPayload = JSON.parse(editDelivery.body.toString('utf8')) as typeof payload;
    const event = { ...editPayload.tweet_create_events[0]!, edit_history: { initial_tweet_id: tweet.id, edit_tweet_ids: [tweet.id, edited.id] } };
    expect((await postSigned(JSON.stringify({ ...editPayload, tweet_create_events: [event] }))).status).toBe(200);
    await exactlyOneReportAndReply(web, user.id, tweet.id);
    expect(web.fake.posts({ inReplyTo: edited.id })).toHaveLength(0);
  });
});

// ---- 5. webhook and poller together ----

describe('a gateway in poll mode with its webhook registered', () => {
  async function sinceId(): Promise<bigint> {
    const { rows } = await poll.env.runtime.db.query<{ since: string | null }>(`SELECT cursor->>'sinceId' AS since FROM channel_cursors WHERE channel = 'x'`);
    return BigInt(rows[0]?.since ?? '0');
  }

  it('files one report when the webhook and the poller see the same tweet at about the same time', async () => {
    const users = [citizen(), citizen(), citizen(), citizen()];
    const tweets = users.map((user) => poll.fake.tweet({ from: user, text: `@LAPOR1708 #lapor ${complaint('sampah menumpuk').text}` }));
    await Promise.all(users.map((user, i) => exactlyOneReportAndReply(poll, user.id, tweets[i]!.id)));
    for (const t of tweets) expect((await deliveryOf(pollRelay, t.id)).statuses).toEqual([200]);
    // And the poller did read them.
    const newest = tweets.map((t) => BigInt(t.id)).reduce((a, b) => (a > b ? a : b));
    await eventually(async () => ((await sinceId()) >= newest ? true : undefined), 10_000, 'the poller past the tweets');
  });

  it('files one report when the webhook delivers a tweet the poller has already filed', async () => {
    const { user, tweet, delivery } = await heldTweet(`@LAPOR1708 #lapor ${complaint('kabel menjuntai').text}`, poll, pollRelay);
    await oneReportOf(poll.env, user.id); // by the poller: the delivery was held
    await replyIn(poll.fake, tweet.id);
    expect((await post(pollHookUrl, delivery.body, { 'x-twitter-webhooks-signature': delivery.signature })).status).toBe(200);
    await exactlyOneReportAndReply(poll, user.id, tweet.id);
  });
});

// ---- 6. size ----

describe('size', () => {
  it('answers 413 to a body far over the body limit, and files nothing', async () => {
    const { user, payload } = await heldTweet(`@LAPOR1708 #lapor ${complaint('aspal mengelupas').text}`);
    // 2 MiB: over the API's body limit (64 KiB) and over any limit a webhook route would sensibly have.
    const body = JSON.stringify({ ...payload, padding: 'x'.repeat(2 * 1024 * 1024) });
    const answer = await postSigned(body);
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({ error: 'payload_too_large' });
    await nothingFiledFor(web.env, user.id);
    // The gateway is none the worse.
    expect((await fetch(`${hookUrl}?crc_token=abc`)).status).toBe(200);
  });

  it('files a long post (a note tweet near 25,000 weighted characters) whole', async () => {
    const user = citizen();
    const { marker } = complaint();
    const unit = '“Jalan di depan SDN 3 Sukamaju rusak — berlubang 🕳 dan tergenang 🌧.” ';
    const words = `${marker} ${unit.repeat(Math.floor((24_900 - weightedLength(`@LAPOR1708 #lapor ${marker} `)) / weightedLength(unit)))}`;
    expect(weightedLength(`@LAPOR1708 #lapor ${words}`)).toBeLessThanOrEqual(25_000);
    const tweet = web.fake.tweet({ from: user, text: `@LAPOR1708 #lapor ${words}` });
    expect(tweet.note_tweet).toBeDefined();
    const { report } = await exactlyOneReportAndReply(web, user.id, tweet.id);
    expect(report.text).toBe(words.trim());
    expect((await deliveryOf(relay, tweet.id)).body.length).toBeGreaterThan(25_000);
  });

  it('files a long post whose delivery is over 64 KiB (Thai, within X\'s 25,000)', async () => {
    // 24,000 Thai characters weigh 24,000 on X (within a long post's 25,000) but take 3 bytes each in
    // UTF-8: the delivery is ~70 KB, over the 64 KiB the rest of the API accepts. Refused, X would give
    // up after its retries and in webhook mode nothing else reads the tweet, so the webhook route takes
    // up to 1 MiB. (X's \uXXXX-escaped JSON gets there from ~11,000 non-ASCII characters.)
    const user = citizen();
    const { marker } = complaint();
    const unit = 'ถนนชำรุด ';
    const words = `${marker} ${unit.repeat(Math.floor((24_900 - weightedLength(`@LAPOR1708 #lapor ${marker} `)) / weightedLength(unit)))}`;
    expect(weightedLength(`@LAPOR1708 #lapor ${words}`)).toBeLessThanOrEqual(25_000);
    const tweet = web.fake.tweet({ from: user, text: `@LAPOR1708 #lapor ${words}` });
    const delivery = await eventually(async () => {
      const d = relay.captured.get(tweet.id);
      return d?.statuses.length ? d : undefined;
    }, 10_000, 'the delivery answered');
    expect(delivery.body.length).toBeGreaterThan(64 * 1024);
    expect(delivery.statuses).toEqual([200]); // today: [413]
    const report = await oneReportOf(web.env, user.id);
    expect(report.text).toBe(words.trim());
  });
});

// ---- 7. logs ----

describe('logs', () => {
  it('carry no citizen username, display name or tweet text', async () => {
    // This test's own traffic: a filed tweet, a forged one, a malformed one, a refused body.
    const user = citizen();
    const { text } = complaint('pungli di kantor kelurahan');
    const tweet = web.fake.tweet({ from: user, text: `@LAPOR1708 #lapor ${text}` });
    await exactlyOneReportAndReply(web, user.id, tweet.id);
    const { delivery, payload } = await heldTweet(`@LAPOR1708 #lapor ${complaint('jalan licin').text}`);
    expect((await post(hookUrl, delivery.body, { 'x-twitter-webhooks-signature': 'sha256=forged' })).status).toBe(401);
    const event = payload.tweet_create_events[0]!;
    const bad = JSON.stringify({ ...payload, tweet_create_events: [{ ...event, id_str: 'x', text: `${String(event.text)} ${user.username}` }] });
    expect((await postSigned(bad)).status).toBe(200);
    expect((await postSigned(`not json ${user.username} ${text}`)).status).toBe(400);
    await sleep(300);

    const lines = [...web.env.logs, ...poll.env.logs];
    // The refusals were logged, so the search below is over lines that exist.
    expect(web.env.logs.some((l) => /x webhook delivery refused/.test(l))).toBe(true);
    expect(web.env.logs.some((l) => /x webhook tweet skipped/.test(l))).toBe(true);
    for (const line of lines) JSON.parse(line);
    const all = lines.join('\n').toLowerCase();
    expect(personal.size).toBeGreaterThan(10);
    for (const secret of personal) expect(all, `log lines mention ${secret}`).not.toContain(secret.toLowerCase());
    for (const fragment of ['pungli di kantor kelurahan', 'siti rahayu', 'lapor1708 #lapor']) expect(all).not.toContain(fragment);
  });
});

// ---- 8. no adapter, not configured ----

describe('where there is no X webhook', () => {
  let unconfigured: TestEnv;
  let spare: FakeXApi;

  beforeAll(async () => {
    spare = await FakeXApi.start();
    // Webhook mode without an app secret: the channel is not configured at all.
    unconfigured = await createTestEnv({ channels: ['x'], workers: false, env: { ...xVars(spare), LAPOR_X_MODE: 'webhook', LAPOR_X_APP_SECRET: '' } });
  });
  afterAll(async () => {
    await unconfigured?.close();
    await spare?.stop();
  });

  async function answers404(env: TestEnv, path: string, secret: string) {
    const get = await env.app.inject({ method: 'GET', url: `${path}?crc_token=abc` });
    expect(get.statusCode, path).toBe(404);
    expect(get.body).not.toContain('response_token');
    const body = JSON.stringify({ for_user_id: spare.account.id, tweet_create_events: [] });
    const headers = { 'content-type': 'application/json', 'x-twitter-webhooks-signature': sign(body, secret) };
    const res = await env.app.inject({ method: 'POST', url: path, headers, payload: body });
    expect(res.statusCode, path).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found' });
  }

  it('answers 404 for a channel without a webhook adapter, or no channel at all', async () => {
    for (const path of ['/webhooks/telegram', '/webhooks/whatsapp', '/webhooks/email', '/webhooks/nope', '/webhooks/X']) {
      await answers404(web.env, path, web.fake.credentials.consumerSecret);
    }
  });

  it('answers 404 on /webhooks/x when X is not configured', async () => {
    expect(unconfigured.runtime.adapters.has('x')).toBe(false);
    await answers404(unconfigured, '/webhooks/x', spare.credentials.consumerSecret);
    await answers404(unconfigured, '/webhooks/x', '');
  });

  it('starts read-only and answers 404 on /webhooks/x in poll mode without an app secret', async () => {
    // Poll mode with the bearer token alone reads only (replies wait, canPost() is false): twitter-api-v2
    // refuses an empty app key or secret ("Invalid consumer tokens"), so the posting client is made only
    // when the keys are there, and the gateway starts.
    const readOnly = { LAPOR_X_APP_KEY: '', LAPOR_X_APP_SECRET: '', LAPOR_X_ACCESS_TOKEN: '', LAPOR_X_ACCESS_SECRET: '', LAPOR_X_USER_ID: spare.account.id };
    const env = await createTestEnv({ channels: ['x'], workers: false, env: { ...xVars(spare), ...readOnly, LAPOR_X_POLL_INTERVAL_MS: '60000' } });
    try {
      expect(env.runtime.adapters.has('x')).toBe(true);
      await answers404(env, '/webhooks/x', '');
    } finally {
      await env.close();
    }
  });
});
