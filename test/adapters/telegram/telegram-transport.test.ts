import { randomBytes, randomInt } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeTelegramApi } from '../../../scripts/telegram/fake-api.ts';
import { createDatabase, createTestEnv, eventually, type TestEnv } from '../../helpers/env.ts';
import { telegramGateway, telegramVars, tgContactHash } from '../../helpers/telegram.ts';

/**
 * Telegram's transports end to end over HTTP, against the fake Bot API (scripts/telegram/fake-api.ts):
 *
 * - webhook mode: the gateway listens on loopback, the fake POSTs each update to /webhooks/telegram
 *   with the secret header (registered by setWebhook over HTTP), retrying until it gets a 2xx;
 *   forged, broken and repeated deliveries are also posted directly;
 * - polling: two gateways on one queue prefix and one database, each reaching the fake through a
 *   relay of its own that counts its getUpdates calls: only the lease holder polls, the other takes
 *   over when it stops; getUpdates faults are waited out;
 * - sending: a 429 with retry_after and a user who blocked the bot.
 *
 * Every test has its own citizens (fresh ids, names and words) and counts only their reports, and
 * the last test checks that none of their names, usernames or words reached a log line.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every citizen's first name, username and words used here: none may reach a log line. */
const personal = new Set<string>();
const allLogs: string[][] = [];

let userCounter = randomInt(1_000_000);
function newUser(): { id: number; first_name: string; username: string; language_code: string } {
  const n = userCounter++;
  const tag = randomBytes(3).toString('hex');
  const user = { id: 6_100_000_000 + n, first_name: `Sukmawati${tag}`, username: `warga_${tag}${n}`, language_code: 'id' };
  personal.add(user.first_name);
  personal.add(user.username);
  return user;
}
function words(text: string): string {
  personal.add(text);
  return text;
}

/** Update ids for deliveries posted directly: far above the fake's own (at most 1e9), unique. */
let directUpdateId = 5_000_000_000 + randomInt(1_000_000_000);
let directMessageId = 1;

async function reportsOf(env: TestEnv, chatId: number) {
  const { rows } = await env.runtime.db.query<{ seq: string; tracking_id: string; text: string }>(
    `SELECT seq::text, tracking_id, text FROM reports WHERE contact_hash = $1 ORDER BY seq`,
    [tgContactHash(env, chatId)],
  );
  return rows;
}

async function oneReportOf(env: TestEnv, chatId: number, timeoutMs = 10_000) {
  const rows = await eventually(async () => {
    const found = await reportsOf(env, chatId);
    return found.length ? found : undefined;
  }, timeoutMs, `a report of chat ${chatId}`);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

const receipts = (fake: FakeTelegramApi, chatId: number) => fake.sent({ chatId }).filter((s) => /diterima/.test(s.message.text ?? ''));

const answer = (fake: FakeTelegramApi, chatId: number, matching: RegExp, timeoutMs = 10_000) =>
  eventually(async () => fake.sent({ chatId }).find((s) => matching.test(s.message.text ?? '')), timeoutMs, `a message to ${chatId} matching ${matching}`);

/** A private text message as the Bot API would deliver it. */
function update(user: { id: number; first_name?: string; username?: string }, text: string, extra: Record<string, unknown> = {}) {
  return {
    update_id: directUpdateId++,
    message: {
      message_id: directMessageId++,
      date: Math.floor(Date.now() / 1000),
      chat: { id: user.id, type: 'private', first_name: user.first_name },
      from: { id: user.id, is_bot: false, first_name: user.first_name, username: user.username },
      text,
      ...extra,
    },
  };
}

async function post(url: string, body: Buffer | string, headers: Record<string, string> = {}, method = 'POST'): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(method === 'GET' ? {} : { body }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

async function listen(env: TestEnv): Promise<string> {
  await env.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = env.app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}/webhooks/telegram`;
}

async function botApi(fake: FakeTelegramApi, method: string, params: Record<string, unknown>): Promise<{ ok: boolean; result?: unknown; description?: string }> {
  const res = await fetch(`${fake.apiUrl}/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return (await res.json()) as { ok: boolean };
}

interface Relay {
  url: string;
  /** getUpdates calls that passed through. */
  getUpdates: number;
  /** Per update id, the deliveries seen (webhook relays). */
  seen: Map<number, number>;
  close(): Promise<void>;
}

/**
 * Between a gateway and the fake (polling: counts getUpdates) or between the fake and a gateway
 * (webhook: passes each delivery on and, for updates of `loseFirstAnswer` chats, answers the fake
 * 503 the first time although the gateway stored it — Telegram then delivers it again).
 */
async function startRelay(target: string, loseFirstAnswer = new Set<number>()): Promise<Relay> {
  const relay: Relay = { url: '', getUpdates: 0, seen: new Map(), close: async () => undefined };
  const base = new URL(target);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url?.endsWith('/getUpdates')) relay.getUpdates++;
      let lose = false;
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { update_id?: number; message?: { chat?: { id?: number } } };
        if (typeof parsed.update_id === 'number') {
          const times = (relay.seen.get(parsed.update_id) ?? 0) + 1;
          relay.seen.set(parsed.update_id, times);
          lose = times === 1 && loseFirstAnswer.has(parsed.message?.chat?.id ?? -1);
        }
      } catch {
        // not JSON: passed on as it is
      }
      const path = base.pathname === '/' ? req.url! : base.pathname;
      const upstream = httpRequest(
        { host: base.hostname, port: base.port, path, method: req.method, headers: { ...req.headers, host: base.host } },
        (up) => {
          if (lose) {
            up.resume();
            up.on('end', () => res.writeHead(503).end('lost'));
            return;
          }
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      res.on('close', () => upstream.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  relay.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return relay;
}

// ---- webhook mode ----

describe('webhook mode', () => {
  const secret = `s_${randomBytes(16).toString('hex')}`;
  const lossy = new Set<number>();
  let fake: FakeTelegramApi;
  let env: TestEnv;
  let close: () => Promise<void>;
  let hookUrl: string;
  let relay: Relay;

  beforeAll(async () => {
    ({ fake, env, close } = await telegramGateway({ LAPOR_TELEGRAM_MODE: 'webhook', LAPOR_TELEGRAM_WEBHOOK_SECRET: secret }, { webhookRetryMs: 200 }));
    allLogs.push(env.logs);
    hookUrl = await listen(env);
    relay = await startRelay(hookUrl, lossy);
    const set = await botApi(fake, 'setWebhook', { url: relay.url, secret_token: secret });
    expect(set.ok).toBe(true);
  });
  afterAll(async () => {
    await relay?.close();
    await close?.();
  });

  const signed = (body: Buffer | string) => post(hookUrl, body, { 'x-telegram-bot-api-secret-token': secret });

  it('a message delivered by the fake files one report, answered in the chat', async () => {
    const user = newUser();
    fake.say({ from: user, text: words('jembatan bambu di Dusun Krajan hampir putus') });
    const report = await oneReportOf(env, user.id);
    expect(report.text).toBe('jembatan bambu di Dusun Krajan hampir putus');
    expect((await answer(fake, user.id, /diterima/)).message.text).toContain(report.tracking_id);
    expect(fake.stats().webhook.delivered).toBeGreaterThanOrEqual(1);
    expect(fake.stats().calls.getUpdates ?? 0).toBe(0);
  });

  it('a wrong or missing secret is refused with 401 and files nothing', async () => {
    const user = newUser();
    const forged = JSON.stringify(update(user, words('laporan palsu tanpa rahasia webhook')));
    expect((await post(hookUrl, forged)).status).toBe(401);
    expect((await post(hookUrl, forged, { 'x-telegram-bot-api-secret-token': `${secret}x` })).status).toBe(401);
    expect((await post(hookUrl, forged, { 'x-telegram-bot-api-secret-token': secret.slice(0, -1) })).status).toBe(401);
    expect((await post(hookUrl, forged, { 'x-telegram-bot-api-secret-token': '' })).status).toBe(401);
    // The same citizen, delivered properly: only that one is filed.
    expect((await signed(JSON.stringify(update(user, words('saluran irigasi sawah jebol di Desa Sukamaju'))))).status).toBe(200);
    const report = await oneReportOf(env, user.id);
    expect(report.text).toBe('saluran irigasi sawah jebol di Desa Sukamaju');
    await sleep(300);
    expect(await reportsOf(env, user.id)).toHaveLength(1);
  });

  it('a body that is not JSON or not UTF-8 is a 400', async () => {
    expect((await signed('{"update_id": 1, "message":')).status).toBe(400);
    expect((await signed('not json at all')).status).toBe(400);
    expect((await signed('')).status).toBe(400);
    const latin1 = Buffer.concat([Buffer.from('{"update_id": 1, "message": {"text": "caf'), Buffer.from([0xe9, 0xff]), Buffer.from('"}}')]);
    expect((await signed(latin1)).status).toBe(400);
  });

  it('malformed updates are answered 200 and skipped or filed cleaned; the gateway keeps working', async () => {
    const user = newUser();
    // An update type the gateway does not read.
    expect((await signed(JSON.stringify({ update_id: directUpdateId++, poll: { id: '1', question: 'q', options: [] } })))).toMatchObject({ status: 200 });
    // Not the Bot API's shape at all.
    expect((await signed(JSON.stringify({ update_id: 'x' })))).toMatchObject({ status: 200 });
    expect((await signed(JSON.stringify([1, 2, 3])))).toMatchObject({ status: 200 });
    expect((await signed('null'))).toMatchObject({ status: 200 });
    // A message without `from` (a channel post relayed): not a citizen's.
    const noFrom = update(user, words('pesan tanpa pengirim dari kanal'));
    delete (noFrom.message as { from?: unknown }).from;
    expect((await signed(JSON.stringify(noFrom))).status).toBe(200);
    await sleep(300);
    expect(await reportsOf(env, user.id)).toHaveLength(0);

    // A caption of 5,000 characters (Telegram allows 1,024): skipped or filed, never a crash.
    const long = newUser();
    const caption = words(`banjir rob di pesisir Muara Angke ${'air laut naik '.repeat(400)}`.slice(0, 5_000));
    const captioned = update(long, '');
    delete (captioned.message as { text?: unknown }).text;
    Object.assign(captioned.message, { caption });
    expect((await signed(JSON.stringify(captioned))).status).toBe(200);

    // Lone surrogates in the text (valid JSON escapes, not valid Unicode).
    const broken = newUser();
    const body = JSON.stringify(update(broken, 'PLACEHOLDER')).replace('PLACEHOLDER', 'pohon tumbang \\ud83d di jalan \\udc00 Kartini');
    words('pohon tumbang');
    expect((await signed(body)).status).toBe(200);

    // The gateway still files the next citizen's message.
    const next = newUser();
    fake.say({ from: next, text: words('sampah menumpuk di pasar Cikini') });
    await oneReportOf(env, next.id);

    // The broken text is filed cleaned (each lone surrogate replaced); whatever was filed of the two
    // is well-formed text within the limits.
    expect((await oneReportOf(env, broken.id)).text).toBe('pohon tumbang \uFFFD di jalan \uFFFD Kartini');
    for (const who of [long, broken]) {
      for (const report of await reportsOf(env, who.id)) {
        expect(report.text).not.toMatch(LONE_SURROGATE);
        expect(report.text.length).toBeLessThanOrEqual(5_000);
      }
    }
  });

  it('the same update delivered twice files one report; so does Telegram redelivering after a lost answer', async () => {
    const user = newUser();
    const body = JSON.stringify(update(user, words('kabel listrik menjuntai di gang Mawar')));
    const [a, b] = await Promise.all([signed(body), signed(body)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect((await signed(body)).status).toBe(200);
    await oneReportOf(env, user.id);
    await sleep(500);
    expect(await reportsOf(env, user.id)).toHaveLength(1);

    // Through the fake: the gateway stores the update, its 200 is lost (503 to the fake), the fake
    // delivers it again.
    const other = newUser();
    lossy.add(other.id);
    const failedBefore = fake.stats().webhook.failed;
    const sent = fake.say({ from: other, text: words('jalan berlubang besar depan SDN 3') });
    await oneReportOf(env, other.id);
    await eventually(async () => ((relay.seen.get(sent.update_id) ?? 0) >= 2 ? true : undefined), 10_000, 'the redelivery');
    expect(fake.stats().webhook.failed).toBeGreaterThan(failedBefore);
    await answer(fake, other.id, /diterima/);
    await sleep(500);
    expect(await reportsOf(env, other.id)).toHaveLength(1);
    expect(receipts(fake, other.id)).toHaveLength(1);
  });

  it('GET is a 405', async () => {
    expect((await post(hookUrl, '', { 'x-telegram-bot-api-secret-token': secret }, 'GET')).status).toBe(405);
  });
});

// ---- polling: two pollers, one lease ----

describe('polling with two gateways on one prefix and one database', () => {
  let fake: FakeTelegramApi;
  let first: TestEnv;
  let second: TestEnv;
  let relayA: Relay;
  let relayB: Relay;
  let firstClosed = false;
  const leaseMs = 1_500;

  beforeAll(async () => {
    fake = await FakeTelegramApi.start({ flood: false });
    [relayA, relayB] = await Promise.all([startRelay(fake.url), startRelay(fake.url)]);
    const databaseUrl = await createDatabase();
    const shared = {
      LAPOR_QUEUE_PREFIX: `{t${randomBytes(5).toString('hex')}}`,
      LAPOR_DATABASE_URL: databaseUrl,
      LAPOR_DATA_KEY: randomBytes(32).toString('base64'),
      LAPOR_TRACKING_KEY: randomBytes(32).toString('base64'),
    };
    first = await createTestEnv({ channels: ['telegram'], env: { ...telegramVars(fake), LAPOR_TELEGRAM_API_ROOT: relayA.url, ...shared } });
    allLogs.push(first.logs);
    // The first holds the lease before the second starts.
    await eventually(async () => (relayA.getUpdates > 0 ? true : undefined), 5_000, 'the first poller polling');
    second = await createTestEnv({ channels: ['telegram'], env: { ...telegramVars(fake), LAPOR_TELEGRAM_API_ROOT: relayB.url, ...shared } });
    allLogs.push(second.logs);
  });
  afterAll(async () => {
    if (!firstClosed) await first?.close();
    await second?.close();
    await Promise.all([relayA?.close(), relayB?.close()]);
    await fake?.stop();
  });

  it('only the lease holder polls; when it stops the other takes over within the lease time, nothing filed twice', async () => {
    const users = [newUser(), newUser(), newUser()];
    for (const [i, user] of users.entries()) fake.say({ from: user, text: words(`genangan air di perempatan nomor ${i} Jl. Sudirman`) });
    for (const user of users) await oneReportOf(first, user.id);
    for (const user of users) await answer(fake, user.id, /diterima/);
    await sleep(leaseMs + 500); // a lease period and more: the second stays in standby
    expect(relayB.getUpdates).toBe(0);
    expect(relayA.getUpdates).toBeGreaterThan(0);
    expect(second.runtime.adapters.get('telegram')!.links!()[0]).toMatchObject({ state: 'standby' });

    const stoppedAt = Date.now();
    await first.close();
    firstClosed = true;
    const takenAt = await eventually(async () => (relayB.getUpdates > 0 ? Date.now() : undefined), leaseMs * 3, 'the second poller taking over');
    expect(takenAt - stoppedAt).toBeLessThanOrEqual(leaseMs + 1_000);

    const later = newUser();
    fake.say({ from: later, text: words('lampu lalu lintas padam di Tugu') });
    await oneReportOf(second, later.id);
    await answer(fake, later.id, /diterima/);
    await sleep(1_000);
    // Nothing the first stored came again through the second.
    for (const user of [...users, later]) {
      expect(await reportsOf(second, user.id)).toHaveLength(1);
      expect(receipts(fake, user.id)).toHaveLength(1);
    }
  });
});

// ---- polling faults and sending ----

describe('one polling gateway: getUpdates faults, sendMessage faults', () => {
  let fake: FakeTelegramApi;
  let env: TestEnv;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ fake, env, close } = await telegramGateway());
    allLogs.push(env.logs);
    await eventually(async () => ((fake.stats().calls.getUpdates ?? 0) > 0 ? true : undefined), 5_000, 'polling');
  });
  afterAll(async () => {
    await close?.();
  });

  it('getUpdates 500 and 502 are backed off and recovered from, nothing lost', async () => {
    const errors = () => fake.stats().serverErrors;
    const before = errors();
    // One fault per method at a time in the fake: a 500 first, then two 502s (nginx's HTML page).
    fake.fault({ method: 'getUpdates', status: 500, count: 1 });
    await eventually(async () => (errors() > before ? true : undefined), 10_000, 'the 500');
    fake.fault({ method: 'getUpdates', status: 502, count: 2 });
    const user = newUser();
    fake.say({ from: user, text: words('pipa PDAM bocor di Jl. Diponegoro') });
    await eventually(async () => (errors() - before >= 3 ? true : undefined), 15_000, 'the 502s');
    expect(await reportsOf(env, user.id)).toHaveLength(0); // still backing off: nothing read yet
    await oneReportOf(env, user.id, 15_000);
    await answer(fake, user.id, /diterima/);
    expect(fake.stats().pendingUpdates).toBe(0);
    expect(env.logs.some((l) => l.includes('telegram getUpdates failed'))).toBe(true);
    expect(env.runtime.adapters.get('telegram')!.links!()[0]).toMatchObject({ ok: true });
  });

  it('a 409 (a webhook set meanwhile) is backed off; once it is deleted polling resumes, nothing lost', async () => {
    const before = env.logs.length;
    expect((await botApi(fake, 'setWebhook', { url: 'http://127.0.0.1:9/nowhere' })).ok).toBe(true);
    await eventually(async () => (env.logs.slice(before).some((l) => l.includes('"status":409')) ? true : undefined), 10_000, 'a 409');
    expect(env.runtime.adapters.get('telegram')!.links!()[0]).toMatchObject({ state: 'conflict', ok: false });
    const user = newUser();
    fake.say({ from: user, text: words('tiang telepon miring di Jl. Kenanga') });
    await sleep(300);
    expect((await botApi(fake, 'deleteWebhook', {})).ok).toBe(true);
    await oneReportOf(env, user.id, 20_000);
    await answer(fake, user.id, /diterima/);
    expect(receipts(fake, user.id)).toHaveLength(1);
  });

  it('a 429 with retry_after on sendMessage: the reply goes out after the wait, exactly once', async () => {
    const user = newUser();
    const callsBefore = fake.stats().calls.sendMessage ?? 0;
    fake.fault({ method: 'sendMessage', status: 429, count: 1, retryAfter: 2 });
    fake.say({ from: user, text: words('trotoar dipakai parkir liar di Jl. Braga') });
    const report = await oneReportOf(env, user.id);
    const refusedAt = await eventually(async () => (fake.stats().tooManyRequests > 0 && (fake.stats().calls.sendMessage ?? 0) > callsBefore ? Date.now() : undefined), 10_000, 'the 429');
    const receipt = await answer(fake, user.id, /diterima/, 15_000);
    const sentAt = Date.now();
    expect(receipt.message.text).toContain(report.tracking_id);
    expect(sentAt - refusedAt).toBeGreaterThanOrEqual(1_500);
    await sleep(1_000);
    expect(receipts(fake, user.id)).toHaveLength(1);
    expect((fake.stats().calls.sendMessage ?? 0) - callsBefore).toBe(2);
  });

  it('a user who blocked the bot: the reply fails for good, without a retry storm', async () => {
    const user = newUser();
    const callsBefore = fake.stats().calls.sendMessage ?? 0;
    fake.say({ from: user, text: words('pungli di loket pembuatan KTP kecamatan') });
    fake.block(user.id);
    const report = await oneReportOf(env, user.id);
    const row = await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ status: string; error: string | null }>(
        `SELECT status, error FROM messages WHERE report_seq = $1 AND direction = 'out'`,
        [report.seq],
      );
      return rows.find((r) => r.status === 'failed');
    }, 10_000, 'the reply marked failed');
    expect(row.error).toMatch(/blocked/);
    await sleep(2_000);
    expect(fake.sent({ chatId: user.id })).toHaveLength(0);
    // At most the one refused call (none once the my_chat_member update was read first).
    expect((fake.stats().calls.sendMessage ?? 0) - callsBefore).toBeLessThanOrEqual(1);
  });
});

// ---- personal data ----

describe('logs', () => {
  it('name no citizen and quote no words', () => {
    expect(personal.size).toBeGreaterThan(10);
    const logs = allLogs.flat().join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of personal) expect(logs, secret).not.toContain(secret);
  });
});
