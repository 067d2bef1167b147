import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeTelegramApi, type TgMessage, type Update } from '../../scripts/telegram/fake-api.ts';

/**
 * The fake Telegram Bot API called with plain fetch, exactly as the Bot API documents its requests
 * (JSON, form or query parameters; `{ok, result}` / `{ok, error_code, description, parameters}`).
 */

let fake: FakeTelegramApi;

beforeAll(async () => {
  fake = await FakeTelegramApi.start({ flood: false, webhookRetryMs: 50 });
});
afterAll(async () => {
  await fake?.stop();
});
beforeEach(() => fake.reset());

interface Answer<T = unknown> {
  status: number;
  body: { ok: boolean; result: T; error_code?: number; description?: string; parameters?: { retry_after: number } };
}

async function call<T = unknown>(method: string, params: Record<string, unknown> = {}, api = fake): Promise<Answer<T>> {
  const res = await fetch(`${api.apiUrl}/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(params),
  });
  return { status: res.status, body: (await res.json()) as Answer<T>['body'] };
}

const BUDI = { id: 81234567, first_name: 'Budi', username: 'budi_santoso', language_code: 'id' };

/** A loopback URL nobody listens on. */
async function closedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hook`;
}

const waitFor = async (check: () => boolean, ms = 3_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('requests and answers', () => {
  it('answers getMe in JSON, form and query form, with case-insensitive method names', async () => {
    const json = await call<{ id: number; is_bot: boolean; username: string }>('getMe');
    expect(json).toMatchObject({ status: 200, body: { ok: true, result: { id: 7000000001, is_bot: true, username: 'LaporBot' } } });
    const form = await fetch(`${fake.apiUrl}/sendMessage`, { method: 'POST', body: new URLSearchParams({ chat_id: '1', text: 'x' }) });
    expect(await form.json()).toEqual({ ok: false, error_code: 400, description: 'Bad Request: chat not found' });
    const query = await fetch(`${fake.apiUrl}/GETME?x=1`);
    expect(((await query.json()) as { ok: boolean }).ok).toBe(true);
  });

  it('refuses a wrong token and an unknown method as Telegram does', async () => {
    const wrong = await fetch(`${fake.url}/bot999:nope/getMe`);
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ ok: false, error_code: 401, description: 'Unauthorized' });
    expect(await call('sendTelepathy')).toEqual({ status: 404, body: { ok: false, error_code: 404, description: 'Not Found' } });
    const garbage = await fetch(`${fake.apiUrl}/sendMessage`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(await garbage.json()).toMatchObject({ error_code: 400, description: 'Bad Request: JSON object expected' });
  });
});

describe('getUpdates', () => {
  it('holds a long poll until an update arrives, and answers [] after the timeout', async () => {
    const started = Date.now();
    const poll = call<Update[]>('getUpdates', { timeout: 10 });
    await new Promise((r) => setTimeout(r, 150));
    const update = fake.say({ from: BUDI, text: 'halo' });
    const { body } = await poll;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(body.result).toEqual([update]);
    const message = body.result[0]?.message as TgMessage;
    expect(message).toMatchObject({ message_id: 1, text: 'halo', chat: { id: BUDI.id, type: 'private', first_name: 'Budi' }, from: { ...BUDI, is_bot: false } });

    const quiet = Date.now();
    const empty = await call<Update[]>('getUpdates', { offset: update.update_id + 1, timeout: 1 });
    expect(empty.body).toEqual({ ok: true, result: [] });
    expect(Date.now() - quiet).toBeGreaterThanOrEqual(900);
  });

  it('forgets updates below offset, clamps limit and keeps the last -offset for a negative one', async () => {
    const [a, b, c, d] = ['1', '2', '3', '4'].map((text) => fake.say({ from: BUDI, text }).update_id);
    expect(b).toBe((a ?? 0) + 1);
    const ids = async (params: Record<string, unknown>) => (await call<Update[]>('getUpdates', params)).body.result.map((u) => u.update_id);
    expect(await ids({})).toEqual([a, b, c, d]);
    expect(await ids({ offset: b, limit: 0 })).toEqual([b]); // limit 0 is clamped to 1
    expect(await ids({})).toEqual([b, c, d]); // a was confirmed for good
    expect(await ids({ offset: -1 })).toEqual([d]);
    expect(await ids({})).toEqual([d]);
    expect(fake.stats().pendingUpdates).toBe(1);
  });

  it('ends the earlier of two long polls with 409, and refuses getUpdates while a webhook is set', async () => {
    const first = call('getUpdates', { timeout: 10 });
    await new Promise((r) => setTimeout(r, 50));
    const second = call<Update[]>('getUpdates', { timeout: 10 });
    expect(await first).toEqual({
      status: 409,
      body: { ok: false, error_code: 409, description: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running' },
    });
    fake.say({ from: BUDI, text: 'masih ada?' });
    expect((await second).body.result).toHaveLength(1);

    expect((await call('setWebhook', { url: await closedUrl() })).body).toEqual({ ok: true, result: true, description: 'Webhook was set' });
    expect(await call('getUpdates')).toMatchObject({
      status: 409,
      body: { description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first" },
    });
  });

  it('applies allowed_updates to updates created afterwards', async () => {
    await call('getUpdates', { allowed_updates: ['callback_query'] });
    fake.say({ from: BUDI, text: 'dropped' });
    expect((await call<Update[]>('getUpdates')).body.result).toEqual([]);
    await call('getUpdates', { allowed_updates: [] }); // back to the default
    fake.say({ from: BUDI, text: 'kept' });
    expect((await call<Update[]>('getUpdates')).body.result).toHaveLength(1);
  });

  it('ends a held poll quietly when its client goes away', async () => {
    const aborted = new AbortController();
    const poll = fetch(`${fake.apiUrl}/getUpdates?timeout=10`, { signal: aborted.signal }).catch((e: Error) => e.name);
    await new Promise((r) => setTimeout(r, 50));
    aborted.abort();
    expect(await poll).toBe('AbortError');
    await new Promise((r) => setTimeout(r, 20));
    fake.say({ from: BUDI, text: 'nobody listens' });
    expect((await call<Update[]>('getUpdates')).body.result).toHaveLength(1);
  });
});

describe('webhook', () => {
  interface Hit {
    headers: IncomingHttpHeaders;
    body: Update;
  }
  let receiver: Server;
  let hits: Hit[];
  let failFirst: number;
  let hookUrl: string;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        hits.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Update });
        res.writeHead(failFirst-- > 0 ? 500 : 200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/tg`;
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
  beforeEach(() => {
    hits = [];
    failFirst = 0;
  });

  it('posts each update with the secret header, retries until 2xx, and keeps the order', async () => {
    failFirst = 2;
    expect((await call('setWebhook', { url: hookUrl, secret_token: 'lapor_S3cret-token' })).body.result).toBe(true);
    const a = fake.say({ from: BUDI, text: 'satu' });
    const b = fake.say({ from: BUDI, text: 'dua' });
    await waitFor(() => hits.length === 4);
    expect(hits.map((h) => h.body.update_id)).toEqual([a.update_id, a.update_id, a.update_id, b.update_id]);
    expect(hits[0]?.body).toEqual(a);
    for (const hit of hits) {
      expect(hit.headers['x-telegram-bot-api-secret-token']).toBe('lapor_S3cret-token');
      expect(hit.headers['content-type']).toBe('application/json');
    }
    await waitFor(() => fake.stats().pendingUpdates === 0);
    const info = await call<Record<string, unknown>>('getWebhookInfo');
    expect(info.body.result).toMatchObject({ url: hookUrl, pending_update_count: 0, last_error_message: 'Wrong response from the webhook: 500 Internal Server Error' });
    expect(info.body.result.last_error_date).toBeTypeOf('number');
    expect(fake.stats().webhook).toEqual({ delivered: 2, failed: 2 });
  });

  it('keeps an update pending while the receiver is down, and hands it to getUpdates after deleteWebhook', async () => {
    await call('setWebhook', { url: await closedUrl() });
    const update = fake.say({ from: BUDI, text: 'tunggu' });
    await waitFor(() => fake.stats().webhook.failed >= 2);
    const info = await call<Record<string, unknown>>('getWebhookInfo');
    expect(info.body.result).toMatchObject({ pending_update_count: 1, last_error_message: 'Connection refused' });
    expect((await call('deleteWebhook')).body).toEqual({ ok: true, result: true, description: 'Webhook was deleted' });
    expect((await call<Update[]>('getUpdates')).body.result).toEqual([update]);
  });

  it('refuses a bad secret token and drops pending updates when asked', async () => {
    expect((await call('setWebhook', { url: hookUrl, secret_token: 'no spaces' })).body.description).toBe(
      'Bad Request: secret token contains unallowed characters',
    );
    fake.say({ from: BUDI, text: 'lama' });
    await call('setWebhook', { url: hookUrl, drop_pending_updates: true });
    expect((await call<{ pending_update_count: number }>('getWebhookInfo')).body.result.pending_update_count).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(hits).toEqual([]);
  });
});

describe('sendMessage', () => {
  const keyboard = { inline_keyboard: [[{ text: 'Status', callback_data: 'status:123' }]] };

  it('returns the Message, with the keyboard and the reply, and records it', async () => {
    const asked = fake.say({ from: BUDI, text: '/lapor jalan rusak' });
    const askedId = (asked.message as TgMessage).message_id;
    const { status, body } = await call<TgMessage>('sendMessage', {
      chat_id: BUDI.id,
      text: 'Laporan diterima',
      reply_markup: keyboard,
      reply_parameters: { message_id: askedId },
    });
    expect(status).toBe(200);
    expect(body.result).toMatchObject({
      message_id: 2,
      from: { id: 7000000001, is_bot: true },
      chat: { id: BUDI.id, type: 'private' },
      text: 'Laporan diterima',
      reply_markup: keyboard,
      reply_to_message: { message_id: askedId },
    });
    expect(fake.sent({ chatId: BUDI.id })).toMatchObject([{ index: 0, method: 'sendMessage', message: { text: 'Laporan diterima' } }]);
    expect((await call('sendMessage', { chat_id: BUDI.id, text: 'x', reply_to_message_id: 99 })).body.description).toBe(
      'Bad Request: message to be replied not found',
    );
  });

  it("answers Telegram's errors: too long, empty, chat not found, bad button data, blocked", async () => {
    fake.say({ from: BUDI, text: 'hai' });
    const send = (params: Record<string, unknown>) => call('sendMessage', { chat_id: BUDI.id, ...params });
    expect((await send({ text: 'a'.repeat(4097) })).body).toEqual({ ok: false, error_code: 400, description: 'Bad Request: message is too long' });
    expect((await send({ text: '😀'.repeat(4096) })).status).toBe(200); // counted in code points
    expect((await send({ text: '' })).body.description).toBe('Bad Request: message text is empty');
    expect((await call('sendMessage', { chat_id: 42, text: 'x' })).body.description).toBe('Bad Request: chat not found');
    const longData = { inline_keyboard: [[{ text: 'x', callback_data: 'd'.repeat(65) }]] };
    expect((await send({ text: 'x', reply_markup: longData })).body.description).toBe('Bad Request: BUTTON_DATA_INVALID');

    const blocked = fake.block(BUDI.id);
    expect(blocked.my_chat_member).toMatchObject({ chat: { id: BUDI.id }, new_chat_member: { status: 'kicked', user: { id: 7000000001 } } });
    expect(await send({ text: 'x' })).toEqual({ status: 403, body: { ok: false, error_code: 403, description: 'Forbidden: bot was blocked by the user' } });
    expect(fake.unblock(BUDI.id).my_chat_member).toMatchObject({ new_chat_member: { status: 'member' } });
    expect((await send({ text: 'x' })).status).toBe(200);
  });

  it('parses HTML like TDLib and refuses what it cannot parse', async () => {
    fake.say({ from: BUDI, text: 'hai' });
    const ok = await call<TgMessage>('sendMessage', { chat_id: BUDI.id, parse_mode: 'HTML', text: '<b>Tiket</b> &lt;123&gt; &amp; <a href="https://lapor.go.id">lihat</a>' });
    expect(ok.body.result.text).toBe('Tiket <123> & lihat');
    const bad = await call('sendMessage', { chat_id: BUDI.id, parse_mode: 'HTML', text: 'harga < 5000' });
    expect(bad.body.description).toBe('Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 6');
    const unclosed = await call('sendMessage', { chat_id: BUDI.id, parse_mode: 'HTML', text: '<b>tebal' });
    expect(unclosed.body.description).toBe('Bad Request: can\'t parse entities: Can\'t find end tag corresponding to start tag "b"');
  });

  it('says 403 to a user seen only in a group', async () => {
    fake.inGroup({ from: { first_name: 'Sari', username: 'sari_w' }, groupId: -4001, title: 'Warga RT 05', text: '/status@LaporBot 123' });
    const update = (await call<Update[]>('getUpdates')).body.result[0];
    const message = update?.message as TgMessage;
    expect(message.chat).toEqual({ id: -4001, type: 'group', title: 'Warga RT 05' });
    expect(message.entities).toEqual([{ type: 'bot_command', offset: 0, length: 16 }]);
    expect((await call('sendMessage', { chat_id: message.from?.id, text: 'x' })).body).toMatchObject({
      error_code: 403,
      description: "Forbidden: bot can't initiate conversation with a user",
    });
    expect((await call('sendMessage', { chat_id: -4001, text: 'x' })).status).toBe(200);
  });
});

describe('flood control', () => {
  it('answers 429 with retry_after past one message per second per chat, and past the global limit', async () => {
    const strict = await FakeTelegramApi.start({ perChatPerSecond: 1, globalPerSecond: 2, retryAfterSeconds: 1 });
    try {
      for (const id of [11111, 22222, 33333]) strict.say({ from: { id, first_name: `U${id}` }, text: 'hai' });
      expect((await call('sendMessage', { chat_id: 11111, text: '1' }, strict)).status).toBe(200);
      const refused = await call('sendMessage', { chat_id: 11111, text: '2' }, strict);
      expect(refused).toEqual({
        status: 429,
        body: { ok: false, error_code: 429, description: 'Too Many Requests: retry after 1', parameters: { retry_after: 1 } },
      });
      expect((await call('sendMessage', { chat_id: 22222, text: '1' }, strict)).status).toBe(200);
      expect((await call('sendMessage', { chat_id: 33333, text: '1' }, strict)).status).toBe(429); // 2 per second overall
      await new Promise((r) => setTimeout(r, 1_100));
      expect((await call('sendMessage', { chat_id: 11111, text: '2' }, strict)).status).toBe(200);
      expect(strict.stats().tooManyRequests).toBe(2);
    } finally {
      await strict.stop();
    }
  });

  it('serves injected faults: 429 with its retry_after, 500 in JSON, 502 from nginx in HTML', async () => {
    fake.fault({ method: 'getMe', status: 429, retryAfter: 7 });
    expect((await call('getMe')).body).toEqual({ ok: false, error_code: 429, description: 'Too Many Requests: retry after 7', parameters: { retry_after: 7 } });
    fake.fault({ method: 'getMe', status: 500 });
    expect((await call('getMe')).body).toEqual({ ok: false, error_code: 500, description: 'Internal Server Error' });
    fake.fault({ method: 'getMe', status: 502 });
    const res = await fetch(`${fake.apiUrl}/getMe`);
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toBe('text/html');
    expect(await res.text()).toContain('502 Bad Gateway');
    expect((await call('getMe')).status).toBe(200);
    expect(fake.stats()).toMatchObject({ tooManyRequests: 1, serverErrors: 2, calls: { getMe: 4 } });
  });
});

describe('buttons and edits', () => {
  it('delivers presses (even with data the keyboard lacks) and refuses a second answer', async () => {
    fake.say({ from: BUDI, text: '/start' });
    const keyboard = { inline_keyboard: [[{ text: 'Ya', callback_data: 'confirm:1' }]] };
    const sent = (await call<TgMessage>('sendMessage', { chat_id: BUDI.id, text: 'Kirim?', reply_markup: keyboard })).body.result;
    const press = fake.press({ from: BUDI, messageId: sent.message_id, data: 'confirm:1' });
    const query = press.callback_query as { id: string; data: string; message: TgMessage; from: { id: number }; chat_instance: string };
    expect(query).toMatchObject({ data: 'confirm:1', from: { id: BUDI.id }, message: { message_id: sent.message_id, reply_markup: keyboard } });
    expect(query.chat_instance).toMatch(/^-?[0-9]+$/);

    expect((await call('answerCallbackQuery', { callback_query_id: query.id, text: 'Terkirim' })).body).toEqual({ ok: true, result: true });
    expect((await call('answerCallbackQuery', { callback_query_id: query.id })).body).toEqual({
      ok: false,
      error_code: 400,
      description: 'Bad Request: query is too old and response timeout expired or query ID is invalid',
    });
    expect(fake.callbackAnswers()).toEqual([{ callback_query_id: query.id, text: 'Terkirim', show_alert: false }]);
    expect((fake.press({ from: BUDI, messageId: sent.message_id, data: 'forged' }).callback_query as { data: string }).data).toBe('forged');
  });

  it('edits the bot message, removes the keyboard when none is given, and says when nothing changed', async () => {
    fake.say({ from: BUDI, text: 'hai' });
    const keyboard = { inline_keyboard: [[{ text: 'Ya', callback_data: 'y' }]] };
    const sent = (await call<TgMessage>('sendMessage', { chat_id: BUDI.id, text: 'Kirim?', reply_markup: keyboard })).body.result;
    const where = { chat_id: BUDI.id, message_id: sent.message_id };
    const edited = await call<TgMessage>('editMessageText', { ...where, text: 'Terkirim' });
    expect(edited.body.result).toMatchObject({ text: 'Terkirim', message_id: sent.message_id });
    expect(edited.body.result.reply_markup).toBeUndefined();
    expect(edited.body.result.edit_date).toBeTypeOf('number');
    expect((await call('editMessageReplyMarkup', where)).body.description).toMatch(/^Bad Request: message is not modified: /);
    expect((await call('editMessageText', { chat_id: BUDI.id, message_id: 99, text: 'x' })).body.description).toBe('Bad Request: message to edit not found');
    expect((await call('editMessageText', { chat_id: BUDI.id, message_id: 1, text: 'x' })).body.description).toBe("Bad Request: message can't be edited");
    expect(fake.sent().map((r) => r.method)).toEqual(['sendMessage', 'editMessageText']);
  });

  it('turns a user edit into an edited_message with the same message_id', async () => {
    const first = fake.say({ from: '@budi_santoso', text: '/lapor jalan' });
    const id = (first.message as TgMessage).message_id;
    const edited = fake.edit({ from: '@budi_santoso', messageId: id, text: '/lapor jalan rusak' });
    expect(edited.update_id).toBe(first.update_id + 1);
    expect(edited.edited_message).toMatchObject({ message_id: id, text: '/lapor jalan rusak', entities: [{ type: 'bot_command', offset: 0, length: 6 }] });
    expect((edited.edited_message as TgMessage).edit_date).toBeTypeOf('number');
  });
});

describe('files and entities', () => {
  it('serves an uploaded document and photo through getFile and /file/bot<token>/<path>', async () => {
    const bytes = Buffer.from('%PDF-1.4 bukti pembayaran');
    const update = fake.sendDocument({ from: BUDI, caption: '/lapor pungli', bytes, fileName: 'bukti.pdf', mimeType: 'application/pdf' });
    const message = update.message as TgMessage;
    expect(message.document).toMatchObject({ file_name: 'bukti.pdf', mime_type: 'application/pdf', file_size: bytes.length });
    expect(message.caption_entities).toEqual([{ type: 'bot_command', offset: 0, length: 6 }]);
    const file = await call<{ file_id: string; file_unique_id: string; file_size: number; file_path: string }>('getFile', { file_id: message.document?.file_id });
    expect(file.body.result).toMatchObject({ file_id: message.document?.file_id, file_size: bytes.length, file_path: expect.stringMatching(/^documents\/.+\.pdf$/) });
    const download = await fetch(`${fake.url}/file/bot${fake.token}/${file.body.result.file_path}`);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(bytes);

    const photo = (fake.sendPhoto({ from: BUDI, bytes: Buffer.from([0xff, 0xd8, 0xff]) }).message as TgMessage).photo ?? [];
    expect(photo.map((p) => p.width)).toEqual([90, 320, 1280]);
    const largest = await call<{ file_path: string }>('getFile', { file_id: photo.at(-1)?.file_id });
    expect(largest.body.result.file_path).toMatch(/^photos\//);
    expect((await call('getFile', { file_id: 'AgACAgUAAxkBAAInvalid' })).body.description).toBe('Bad Request: invalid file_id');
    expect((await fetch(`${fake.url}/file/bot${fake.token}/documents/none.pdf`)).status).toBe(404);
  });

  it('marks bot commands as TDLib does, offsets in UTF-16 units', () => {
    const entities = (text: string) => (fake.say({ from: BUDI, text }).message as TgMessage).entities;
    expect(entities('/start payload')).toEqual([{ type: 'bot_command', offset: 0, length: 6 }]);
    expect(entities('/status 123')).toEqual([{ type: 'bot_command', offset: 0, length: 7 }]);
    expect(entities('/lapor jalan berlubang')).toEqual([{ type: 'bot_command', offset: 0, length: 6 }]);
    expect(entities('/start@LaporBot')).toEqual([{ type: 'bot_command', offset: 0, length: 15 }]);
    expect(entities('😀 tolong /lapor')).toEqual([{ type: 'bot_command', offset: 10, length: 6 }]);
    expect(entities('jalan/rusak dan 1/2')).toBeUndefined();
    expect(entities('/ab@cd')).toBeUndefined(); // a mention shorter than 3 spoils the command
  });

  it('injects raw updates and sends locations', async () => {
    const raw = fake.raw({ update_id: 5, mystery_update: { x: 1 } });
    const located = fake.sendLocation({ from: BUDI, latitude: -6.2, longitude: 106.8 });
    const result = (await call<Update[]>('getUpdates')).body.result;
    expect(result).toEqual([raw, located]);
    expect((located.message as TgMessage).location).toEqual({ latitude: -6.2, longitude: 106.8 });
  });
});

describe('captured updates (raw) and files by id', () => {
  const RINA = { id: 5123498765, is_bot: false, first_name: 'Rina', language_code: 'id' };
  const chat = { id: RINA.id, first_name: 'Rina', type: 'private' };
  const botMessage = (messageId: number) => ({ message_id: messageId, from: { id: 7000000001, is_bot: true, first_name: 'LAPOR!', username: 'LaporBot' }, chat, date: 1741150862, text: 'Laporan diterima' });

  it('learns the chat, the user and the message of a captured update: the bot answers there, ids follow the highest', async () => {
    fake.raw({ update_id: 482910002, message: { message_id: 3, from: RINA, chat, date: 1741150860, text: '/lapor jalan rusak' } });
    const reply = await call<TgMessage>('sendMessage', { chat_id: RINA.id, text: 'Laporan diterima', reply_parameters: { message_id: 3 } });
    expect(reply.body.result).toMatchObject({ message_id: 4, chat: { id: RINA.id, type: 'private' }, reply_to_message: { message_id: 3, text: '/lapor jalan rusak' } });
    // A reply to a bot message the fake never sent: that message is learnt too, and can be pressed.
    fake.raw({ update_id: 482910006, message: { message_id: 9, from: RINA, chat, date: 1741151200, reply_to_message: botMessage(7), location: { latitude: -7.4, longitude: 111 } } });
    expect(fake.press({ from: { id: RINA.id, first_name: 'Rina' }, messageId: 7, data: 'p:r:1' }).callback_query).toMatchObject({ message: { message_id: 7 } });
    expect((await call<TgMessage>('sendMessage', { chat_id: RINA.id, text: 'Lokasi diterima' })).body.result.message_id).toBe(10);
    expect(fake.edit({ from: { id: RINA.id, first_name: 'Rina' }, messageId: 3, text: 'jalan rusak parah' }).edited_message).toMatchObject({ message_id: 3 });
  });

  it('learns a captured button press (answered once) and a block (403 until unblocked); a malformed update is delivered, not learnt', async () => {
    fake.raw({ update_id: 482910009, callback_query: { id: '2678123540987612345', from: RINA, message: botMessage(15), chat_instance: '-1', data: 'privasi:rahasia:5370467387' } });
    expect((await call('answerCallbackQuery', { callback_query_id: '2678123540987612345' })).body).toEqual({ ok: true, result: true });
    expect((await call('answerCallbackQuery', { callback_query_id: '2678123540987612345' })).status).toBe(400);
    const member = (status: string) => ({ chat, from: RINA, date: 1741155800, old_chat_member: { user: { id: 7000000001 }, status: 'member' }, new_chat_member: { user: { id: 7000000001, is_bot: true, first_name: 'LAPOR!' }, status } });
    fake.raw({ update_id: 482910010, my_chat_member: member('kicked') });
    expect((await call('sendMessage', { chat_id: RINA.id, text: 'x' })).body.description).toBe('Forbidden: bot was blocked by the user');
    fake.raw({ update_id: 482910011, my_chat_member: member('member') });
    expect((await call('sendMessage', { chat_id: RINA.id, text: 'x' })).status).toBe(200);

    const stranger = 6_999_000_001;
    const broken = fake.raw({ update_id: 482910012, message: { message_id: 'x', from: { id: stranger }, chat: { id: stranger, type: 'private' }, text: 'hai' } });
    expect((await call('sendMessage', { chat_id: stranger, text: 'x' })).body.description).toBe('Bad Request: chat not found');
    expect((await call<Update[]>('getUpdates', { offset: 482910012 })).body.result).toEqual([broken]);
  });

  it('serves a file put under a given file_id, by getFile and download; the same id again replaces it', async () => {
    const fileId = 'BQACAgUAAxkBAAIapBH_pr64ve4Mj02CKZKPRT4SZjOg7XtObPX46wbQbj14kPkj77s7BE9AAQYE';
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(500, 32)]);
    const put = fake.putFile({ fileId, bytes: pdf, filePath: 'documents/file_7.pdf' });
    expect(put).toMatchObject({ file_id: fileId, file_size: pdf.length, file_path: 'documents/file_7.pdf' });
    const file = await call<{ file_id: string; file_size: number; file_path: string }>('getFile', { file_id: fileId });
    expect(file.body.result).toEqual(put);
    expect(Buffer.from(await (await fetch(`${fake.url}/file/bot${fake.token}/${file.body.result.file_path}`)).arrayBuffer())).toEqual(pdf);
    const shorter = Buffer.from('%PDF-1.7\n');
    expect(fake.putFile({ fileId, bytes: shorter })).toMatchObject({ file_size: shorter.length, file_path: 'documents/file_7.pdf' });
    const res = await fetch(`${fake.url}/_fake/file`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fileId: 'AgAC-other', bytes: pdf.toString('base64') }) });
    expect(((await res.json()) as { result: { file_size: number } }).result.file_size).toBe(pdf.length);
  });
});

describe('control API over HTTP', () => {
  const control = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const res = await fetch(`${fake.url}/_fake${path}`, { method, ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: (await res.json()) as { ok: boolean; result: unknown; error?: string[] } };
  };

  it('plays citizens and reads back what the bot did', async () => {
    const said = await control('POST', '/say', { from: BUDI, text: '/start' });
    expect(said.body.result).toMatchObject({ message: { text: '/start', entities: [{ type: 'bot_command' }] } });
    const photo = await control('POST', '/photo', { from: BUDI, bytes: Buffer.from('jpeg').toString('base64') });
    expect(photo.body.result).toMatchObject({ message: { photo: [{ width: 90 }, { width: 320 }, { width: 1280 }] } });
    await call('sendMessage', { chat_id: BUDI.id, text: 'Selamat datang' });
    expect((await control('GET', `/sent?chatId=${BUDI.id}`)).body.result).toMatchObject([{ message: { text: 'Selamat datang' } }]);
    expect((await control('POST', '/block', { userId: BUDI.id })).body.result).toMatchObject({ my_chat_member: { new_chat_member: { status: 'kicked' } } });
    expect((await control('POST', '/fault', { method: 'sendMessage', status: 500 })).body).toEqual({ ok: true, result: true });
    expect((await control('GET', '/stats')).body.result).toMatchObject({ calls: { sendMessage: 1 }, pendingUpdates: 3 });
  });

  it('refuses malformed control input with the reasons', async () => {
    const bad = await control('POST', '/say', { from: BUDI });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.[0]).toMatch(/^text: /);
    expect((await control('POST', '/press', { from: BUDI, messageId: 9, data: 'x' })).status).toBe(404);
    expect((await control('GET', '/nothing')).status).toBe(404);
  });
});
