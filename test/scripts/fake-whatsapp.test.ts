import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeWhatsAppApi } from '../../scripts/whatsapp/fake-api.ts';

/**
 * The fake WhatsApp Cloud API called with plain fetch, as Meta documents the requests, and a small
 * webhook receiver that checks what arrives the way a careful gateway must: HMAC over the raw bytes.
 */

interface Received { method: string; url: string; headers: IncomingHttpHeaders; raw: Buffer }

/** A webhook endpoint: answers Meta's handshake and records (or refuses) POSTs. */
class Receiver {
  received: Received[] = [];
  failNext = 0;
  private constructor(private readonly server: Server, readonly url: string, readonly verifyToken: string) {}

  static async start(verifyToken: string): Promise<Receiver> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const receiver = new Receiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`, verifyToken);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        if (req.method === 'GET') {
          const okay = url.searchParams.get('hub.mode') === 'subscribe' && url.searchParams.get('hub.verify_token') === receiver.verifyToken;
          res.writeHead(okay ? 200 : 403).end(okay ? (url.searchParams.get('hub.challenge') ?? '') : 'forbidden');
          return;
        }
        if (receiver.failNext > 0) {
          receiver.failNext--;
          res.writeHead(500).end();
          return;
        }
        receiver.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks) });
        res.writeHead(200).end('EVENT_RECEIVED');
      });
    });
    return receiver;
  }

  /** Parsed bodies of the POSTs received so far. */
  bodies(): Array<{ entry: Array<{ changes: Array<{ value: Record<string, unknown> }> }> }> {
    return this.received.map((r) => JSON.parse(r.raw.toString('utf8')));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const TOKEN = 'fake-wa-token';
const BUDI = '6281234567890';
const SITI = '6285712345678';
const DAY = 24 * 60 * 60 * 1000;

let receiver: Receiver;
let fake: FakeWhatsAppApi;

beforeAll(async () => {
  receiver = await Receiver.start('fake-verify-token');
  fake = await FakeWhatsAppApi.start({ webhookUrl: receiver.url, webhookRetryMs: 30 });
});
afterAll(async () => {
  await fake?.stop();
  await receiver?.stop();
});
beforeEach(async () => {
  fake.reset();
  await fake.idle(); // a POST from the previous test may still be in flight
  receiver.received = [];
  receiver.failNext = 0;
});

const waitFor = async (check: () => boolean, ms = 3_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

async function send(body: Record<string, unknown>, token: string | null = TOKEN) {
  const res = await fetch(`${fake.url}/v21.0/${fake.phoneNumberId}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, never> };
}
const text = (to: string, body: string) => ({ messaging_product: 'whatsapp', recipient_type: 'individual', to, type: 'text', text: { body } });
const template = (to: string) => ({ messaging_product: 'whatsapp', to, type: 'template', template: { name: 'laporan_diterima', language: { code: 'id' } } });

describe('webhook verification and signing', () => {
  it('runs the hub.challenge handshake, and fails it on a wrong verify token', async () => {
    const result = await fake.verifyWebhook();
    expect(result.ok).toBe(true);
    expect(result.body).toBe(result.challenge);

    const other = await FakeWhatsAppApi.start({ webhookUrl: receiver.url, verifyToken: 'not-the-token' });
    try {
      expect(await other.verifyWebhook()).toMatchObject({ ok: false, status: 403 });
    } finally {
      await other.stop();
    }
  });

  it('signs the exact bytes, escaped as Meta does, so re-serialised JSON does not verify', async () => {
    fake.text({ from: BUDI, name: 'Budi Santoso', text: 'Jalan rusak di depan café 😀 km 3/4' });
    await waitFor(() => receiver.received.length === 1);
    const [hit] = receiver.received;
    const raw = hit?.raw.toString('utf8') ?? '';
    expect(hit?.headers['content-type']).toBe('application/json');
    expect(raw).toContain('caf\\u00e9 \\ud83d\\ude00 km 3\\/4');
    expect(/[^\x00-\x7f]/.test(raw)).toBe(false);

    const hmac = (body: string | Buffer) => `sha256=${createHmac('sha256', 'fake-wa-app-secret').update(body).digest('hex')}`;
    expect(hit?.headers['x-hub-signature-256']).toBe(hmac(hit?.raw ?? ''));
    const reserialised = JSON.stringify(JSON.parse(raw));
    expect(reserialised).not.toBe(raw);
    expect(hmac(reserialised)).not.toBe(hit?.headers['x-hub-signature-256']);

    const value = JSON.parse(raw).entry[0].changes[0].value;
    expect(JSON.parse(raw)).toMatchObject({ object: 'whatsapp_business_account', entry: [{ id: fake.wabaId, changes: [{ field: 'messages' }] }] });
    expect(value).toMatchObject({
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '6281117081708', phone_number_id: '106540352242922' },
      contacts: [{ profile: { name: 'Budi Santoso' }, wa_id: BUDI }],
      messages: [{ from: BUDI, type: 'text', text: { body: 'Jalan rusak di depan café 😀 km 3/4' } }],
    });
    expect(value.messages[0].id).toMatch(/^wamid\.HBg[A-Za-z0-9+/]+=*$/);
    expect(value.messages[0].timestamp).toMatch(/^\d{10}$/);
  });

  it('retries a delivery the receiver refused', async () => {
    receiver.failNext = 1;
    fake.text({ from: BUDI, text: 'halo' });
    await waitFor(() => fake.stats().webhook.delivered === 1); // the receiver records before it answers
    expect(receiver.received).toHaveLength(1);
    expect(fake.stats().webhook).toEqual({ delivered: 1, failed: 1, pending: 0 });
  });

  it('puts a batch of three messages in ONE POST, with one contact per sender', async () => {
    const messages = fake.batch([
      { type: 'text', from: BUDI, name: 'Budi', text: 'satu' },
      { type: 'text', from: SITI, name: 'Siti', text: 'dua' },
      { type: 'location', from: BUDI, latitude: -6.2, longitude: 106.8, name: 'Monas' },
    ]);
    await waitFor(() => receiver.received.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(receiver.received).toHaveLength(1);
    const value = receiver.bodies()[0]?.entry[0]?.changes[0]?.value;
    expect((value?.messages as unknown[]).length).toBe(3);
    expect(value?.messages).toEqual(messages);
    expect(value?.contacts).toEqual([{ profile: { name: 'Budi' }, wa_id: BUDI }, { profile: { name: 'Siti' }, wa_id: SITI }]);
    expect(messages[2]).toMatchObject({ type: 'location', location: { latitude: -6.2, longitude: 106.8, name: 'Monas' } });
  });
});

describe('sending and the 24-hour window', () => {
  it('sends text inside the window and reports sent, delivered, read for that wamid', async () => {
    const inbound = fake.text({ from: BUDI, text: 'lapor' });
    const answer = await send({ ...text(`+${BUDI}`, 'Terima kasih'), context: { message_id: inbound.id } });
    expect(answer.status).toBe(200);
    const wamid = (answer.body as unknown as { messages: Array<{ id: string }> }).messages[0]?.id;
    expect(answer.body).toEqual({ messaging_product: 'whatsapp', contacts: [{ input: `+${BUDI}`, wa_id: BUDI }], messages: [{ id: wamid }] });
    expect(fake.sent({ to: BUDI })).toMatchObject([{ wamid, to: BUDI, type: 'text', text: 'Terima kasih', replyTo: inbound.id }]);

    await waitFor(() => fake.statusesDelivered().length === 3);
    expect(fake.statusesDelivered().map((s) => [s.id, s.status, s.recipient_id])).toEqual([
      [wamid, 'sent', BUDI], [wamid, 'delivered', BUDI], [wamid, 'read', BUDI],
    ]);
    expect(fake.statusesDelivered()[0]).toMatchObject({ conversation: { origin: { type: 'service' } }, pricing: { billable: true, category: 'service' } });
    expect(receiver.received).toHaveLength(4); // the inbound message, then one POST per status
  });

  it('delivers statuses in a configured (out of) order', async () => {
    fake.setStatusOrder(['read', 'sent', 'delivered']);
    fake.text({ from: BUDI, text: 'lapor' });
    await send(text(BUDI, 'ok'));
    await waitFor(() => fake.statusesDelivered().length === 3);
    expect(fake.statusesDelivered().map((s) => s.status)).toEqual(['read', 'sent', 'delivered']);
  });

  it('accepts free text outside the window and then reports 131047 in a failed status (default)', async () => {
    fake.text({ from: BUDI, text: 'lapor' });
    fake.advanceTime(DAY + 1000);
    const answer = await send(text(BUDI, 'masih di sana?'));
    expect(answer.status).toBe(200);
    const wamid = (answer.body as unknown as { messages: Array<{ id: string }> }).messages[0]?.id;
    await waitFor(() => fake.statusesDelivered().length === 1);
    expect(fake.statusesDelivered()).toMatchObject([{ id: wamid, status: 'failed', recipient_id: BUDI, errors: [{ code: 131047, title: 'Re-engagement message' }] }]);
    expect(fake.sent()[0]).toMatchObject({ wamid, failedCode: 131047 });
  });

  it('refuses free text outside the window synchronously in sync mode (and to a user who never wrote)', async () => {
    fake.setReengagement('sync');
    const never = await send(text(SITI, 'halo'));
    fake.text({ from: BUDI, text: 'lapor' });
    fake.advanceTime(DAY + 1);
    const late = await send(text(BUDI, 'halo'));
    for (const answer of [never, late]) {
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({
        error: {
          message: '(#131047) Re-engagement message',
          type: 'OAuthException',
          code: 131047,
          error_data: { messaging_product: 'whatsapp', details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' },
          fbtrace_id: expect.any(String),
        },
      });
    }
    expect(fake.sent()).toEqual([]);
    expect(fake.stats().errors).toEqual({ 131047: 2 });
  });

  it('always allows a template, also outside the window', async () => {
    fake.setReengagement('sync');
    fake.text({ from: BUDI, text: 'lapor' });
    fake.advanceTime(3 * DAY);
    const answer = await send(template(BUDI));
    expect(answer.status).toBe(200);
    expect(fake.sent()).toMatchObject([{ type: 'template', template: { name: 'laporan_diterima', language: 'id' } }]);
    await waitFor(() => fake.statusesDelivered().length === 3);
    expect(fake.statusesDelivered()[0]).toMatchObject({ pricing: { category: 'utility' } });
  });

  it('answers 401 with Graph error 190 for a wrong or missing token', async () => {
    for (const token of ['wrong', null]) {
      const answer = await send(template(BUDI), token);
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual({
        error: { message: 'Invalid OAuth access token - Cannot parse access token', type: 'OAuthException', code: 190, fbtrace_id: expect.any(String) },
      });
    }
    expect(fake.sent()).toEqual([]);
  });

  it('serves an injected rate limit (130429) for the next send only', async () => {
    fake.text({ from: BUDI, text: 'lapor' });
    fake.fault({ code: 130429, count: 1 });
    const limited = await send(text(BUDI, 'a'));
    expect(limited.status).toBe(400);
    expect(limited.body).toMatchObject({ error: { message: '(#130429) Rate limit hit', code: 130429, type: 'OAuthException' } });
    expect((await send(text(BUDI, 'b'))).status).toBe(200);
  });

  it('enforces the pair rate: a burst to one user, then 131056 until the borrowed time has passed; others unaffected', async () => {
    const paced = await FakeWhatsAppApi.start({ pairRate: { intervalMs: 6_000, burst: 3 } });
    try {
      const sendTo = async (to: string) => {
        const res = await fetch(`${paced.url}/v21.0/${paced.phoneNumberId}/messages`, {
          method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(template(to)),
        });
        return { status: res.status, body: (await res.json()) as { error?: { code: number; message: string; error_data?: { details: string } } } };
      };
      for (let i = 0; i < 3; i++) expect((await sendTo(BUDI)).status).toBe(200);
      const refused = await sendTo(BUDI);
      expect(refused).toMatchObject({ status: 400, body: { error: { code: 131056, message: '(#131056) (Business Account, Consumer Account) pair rate limit hit' } } });
      expect(refused.body.error?.error_data?.details).toMatch(/same recipient/);
      expect((await sendTo(SITI)).status).toBe(200);
      paced.advanceTime(5_000);
      expect((await sendTo(BUDI)).status).toBe(400);
      paced.advanceTime(1_100);
      expect((await sendTo(BUDI)).status).toBe(200);
      expect((await sendTo(BUDI)).status).toBe(400);
      expect(paced.stats().errors).toEqual({ 131056: 3 });
    } finally {
      await paced.stop();
    }
  });

  it('refuses a malformed send with code 100 and an unknown phone number id', async () => {
    const missing = await send({ messaging_product: 'whatsapp', to: BUDI, type: 'text' });
    expect(missing).toMatchObject({ status: 400, body: { error: { code: 100 } } });
    const res = await fetch(`${fake.url}/v19.0/999/messages`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(template(BUDI)) });
    expect(await res.json()).toMatchObject({ error: { code: 100, error_subcode: 33, type: 'GraphMethodException' } });
  });
});

describe('statuses on demand', () => {
  it('delivers any status for a sent message, in any order, again, and for a wamid it never sent when told whose', async () => {
    fake.setStatusOrder([]);
    fake.text({ from: BUDI, text: 'lapor' });
    const answer = await send(text(BUDI, 'ok'));
    const wamid = (answer.body as unknown as { messages: Array<{ id: string }> }).messages[0]!.id;
    fake.deliverStatus({ wamid, status: 'read' });
    fake.deliverStatus({ wamid, status: 'delivered' });
    fake.deliverStatus({ wamid, status: 'failed', code: 131026 });
    fake.deliverStatus({ wamid, status: 'failed', code: 131026 });
    const stranger = fake.deliverStatus({ wamid: 'wamid.NOT-OURS', status: 'failed', recipient: SITI });
    expect(stranger).toMatchObject({ recipient_id: SITI, errors: [{ code: 131047, title: 'Re-engagement message' }] });
    expect(() => fake.deliverStatus({ wamid: 'wamid.NOT-OURS', status: 'read' })).toThrow(/unknown message/);
    await waitFor(() => fake.statusesDelivered().length === 5);
    expect(fake.statusesDelivered().map((s) => [s.id, s.status])).toEqual([
      [wamid, 'read'], [wamid, 'delivered'], [wamid, 'failed'], [wamid, 'failed'], ['wamid.NOT-OURS', 'failed'],
    ]);
    expect(fake.statusesDelivered()[2]).toMatchObject({ recipient_id: BUDI, errors: [{ code: 131026, title: 'Message undeliverable' }] });
    expect(receiver.received).toHaveLength(6); // the inbound message and one POST per status
  });

  it('a raw delivery of messages opens their senders’ windows and makes them answerable', async () => {
    fake.setReengagement('sync');
    const id = 'wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNFQjBBM0UwOTE2OUU3QUI0MTE4AA==';
    fake.raw({ object: 'whatsapp_business_account', entry: [{ changes: [{ value: { messages: [{ from: BUDI, id, type: 'text', text: { body: 'halo' } }] }, field: 'messages' }] }] });
    expect((await send({ ...text(BUDI, 'balasan'), context: { message_id: id } })).status).toBe(200);
    expect((await send(text(SITI, 'tidak pernah menulis'))).status).toBe(400);
    expect(fake.buttonReply({ from: BUDI, replyTo: id, id: 'x', title: 'x' })).toMatchObject({ context: { from: BUDI, id } });
  });
});

describe('media and other inbound kinds', () => {
  it('serves media put under a chosen id, and fails lookups and downloads on request', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const bytes = Buffer.from('\xff\xd8\xff corpus', 'latin1');
    expect(fake.putMedia({ id: '2968918326816180', bytes, mimeType: 'image/jpeg' })).toBe('2968918326816180');
    const lookup = async () => fetch(`${fake.url}/v21.0/2968918326816180`, { headers: auth }).then(async (r) => ({ status: r.status, body: (await r.json()) as { url?: string; error?: { code: number } } }));
    fake.mediaFault({ stage: 'lookup' });
    expect(await lookup()).toMatchObject({ status: 400, body: { error: { code: 100 } } });
    const info = await lookup();
    expect(info.status).toBe(200);
    fake.mediaFault({ stage: 'download', count: 1 });
    const refused = await fetch(info.body.url!, { headers: auth });
    expect(refused.status).toBe(404);
    await refused.arrayBuffer();
    const download = await fetch(info.body.url!, { headers: auth });
    expect(Buffer.from(await download.arrayBuffer())).toEqual(bytes);
    const post = (path: string, body: unknown) => fetch(`${fake.url}/_fake/${path}`, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.json());
    expect(await post('media', { id: '1234567', bytes: bytes.toString('base64'), mimeType: 'image/jpeg' })).toEqual({ ok: true, result: '1234567' });
    expect(await post('media-fault', { stage: 'nope' })).toMatchObject({ ok: false });
    expect(await post('media-fault', { stage: 'download' })).toEqual({ ok: true, result: true });
  });


  it('gives the media URL for its id and serves the bytes only with the token', async () => {
    const bytes = Buffer.from('\xff\xd8\xff fake jpeg', 'latin1');
    const message = fake.image({ from: BUDI, caption: 'lubang', bytes, mimeType: 'image/jpeg' });
    const image = message.image as { id: string; sha256: string; mime_type: string; caption: string };
    expect(image).toMatchObject({ caption: 'lubang', mime_type: 'image/jpeg', sha256: createHash('sha256').update(bytes).digest('base64') });

    const auth = { authorization: `Bearer ${TOKEN}` };
    const info = (await (await fetch(`${fake.url}/v21.0/${image.id}`, { headers: auth })).json()) as Record<string, unknown>;
    expect(info).toEqual({
      url: expect.stringMatching(/\/whatsapp_business\/attachments\/\?mid=/),
      mime_type: 'image/jpeg',
      sha256: createHash('sha256').update(bytes).digest('hex'),
      file_size: bytes.length,
      id: image.id,
      messaging_product: 'whatsapp',
    });
    const anonymous = await fetch(String(info.url));
    expect(anonymous.status).toBe(401);
    await anonymous.arrayBuffer();
    const download = await fetch(String(info.url), { headers: auth });
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await download.arrayBuffer())).toEqual(bytes);

    fake.advanceTime(6 * 60 * 1000); // the URL lives five minutes
    const stale = await fetch(String(info.url), { headers: auth });
    expect(stale.status).toBe(404);
    await stale.arrayBuffer();
  });

  it('makes documents and button replies with the business as the context author', async () => {
    fake.text({ from: BUDI, text: 'lapor' });
    const sent = await send({
      messaging_product: 'whatsapp', to: BUDI, type: 'interactive',
      interactive: { type: 'button', body: { text: 'Kirim?' }, action: { buttons: [{ type: 'reply', reply: { id: 'yes', title: 'Ya' } }] } },
    });
    const wamid = (sent.body as unknown as { messages: Array<{ id: string }> }).messages[0]?.id ?? '';
    const reply = fake.buttonReply({ from: BUDI, replyTo: wamid, id: 'yes', title: 'Ya' });
    expect(reply).toMatchObject({ type: 'interactive', context: { from: '6281117081708', id: wamid }, interactive: { type: 'button_reply', button_reply: { id: 'yes', title: 'Ya' } } });
    const doc = fake.document({ from: BUDI, bytes: Buffer.from('%PDF-1.4'), fileName: 'ktp.pdf', mimeType: 'application/pdf' });
    expect(doc).toMatchObject({ type: 'document', document: { filename: 'ktp.pdf', mime_type: 'application/pdf' } });
    expect(() => fake.buttonReply({ from: BUDI, replyTo: 'wamid.nope', id: 'x', title: 'x' })).toThrow(/unknown message/);
  });

  it('offers the same through /_fake/ routes', async () => {
    const post = (path: string, body: unknown) => fetch(`${fake.url}/_fake/${path}`, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.json());
    expect(await post('text', { from: BUDI, text: 'lewat http' })).toMatchObject({ ok: true, result: { type: 'text', text: { body: 'lewat http' } } });
    expect(await post('text', { from: 'budi', text: 'x' })).toMatchObject({ ok: false, error: [expect.stringMatching(/^from:/)] });
    expect(await post('advance-time', { ms: DAY + 1 })).toEqual({ ok: true, result: true });
    expect(await post('verify-webhook', {})).toMatchObject({ ok: true, result: { ok: true } });
    await send(text(BUDI, 'late'));
    await waitFor(() => fake.statusesDelivered().length === 1);
    expect(await (await fetch(`${fake.url}/_fake/statuses`)).json()).toMatchObject({ ok: true, result: [{ status: 'failed' }] });
    expect(await (await fetch(`${fake.url}/_fake/sent?to=${BUDI}`)).json()).toMatchObject({ ok: true, result: [{ text: 'late', failedCode: 131047 }] });
  });
});
