import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

/**
 * What the public API does with input it must refuse, and with input at the edge of what it
 * accepts. Every refused POST is checked to have written nothing: no report row, no inbound job.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

type Response = Awaited<ReturnType<TestEnv['app']['inject']>>;

const JSON_TYPE = { 'content-type': 'application/json' };
const BODY_LIMIT = 65_536; // LAPOR_HTTP_BODY_LIMIT_BYTES default
const GOOD_TEXT = 'Lampu penerangan jalan di Jl. Merdeka 12 mati sejak seminggu, gelap dan rawan.';

function post(payload: string | Buffer, headers: Record<string, string> = JSON_TYPE): Promise<Response> {
  return env.app.inject({ method: 'POST', url: '/api/v1/reports', payload, headers });
}

function fileReport(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return post(JSON.stringify(body), { ...JSON_TYPE, ...headers });
}

function getReport(trackingId: string): Promise<Response> {
  return env.app.inject({ method: 'GET', url: `/api/v1/reports/${encodeURIComponent(trackingId)}` });
}

/** The public view once the intake worker has stored the report (not the "pending" placeholder). */
async function persisted(trackingId: string) {
  return eventually(async () => {
    const res = await getReport(trackingId);
    const body = res.json();
    return res.statusCode === 200 && !body.pending ? body : undefined;
  }, 10_000, `report ${trackingId}`);
}

/** Asserts the documented error shape `{error, message, hint?}` and returns the body. */
function expectError(res: Response, status: number, error: string, options: { hint?: boolean } = {}) {
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json();
  expect(body).toMatchObject({ error, message: expect.any(String) });
  expect(body.message).not.toBe('');
  for (const key of Object.keys(body)) expect(['error', 'message', 'hint', 'details']).toContain(key);
  // A 400 for a field names the field, so a client can fix it.
  if (error === 'bad_request' && 'details' in body) expect(body.details[0]).toMatchObject({ path: expect.any(String), message: expect.any(String) });
  if (options.hint) expect(body.hint).toEqual(expect.any(String));
  else if ('hint' in body) expect(body.hint).toEqual(expect.any(String));
  return body as { error: string; message: string; hint?: string };
}

async function reportCount(where = 'TRUE', params: unknown[] = []): Promise<number> {
  const { rows } = await env.runtime.db.query<{ count: string }>(`SELECT count(*) FROM reports WHERE ${where}`, params);
  return Number(rows[0]!.count);
}

/** Every inbound job ever added (BullMQ keeps completed ones for a day): a sum over all states. */
async function inboundJobCount(): Promise<number> {
  const counts = await env.runtime.queues.inbound.getJobCounts();
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Waits until no inbound job is waiting or running, so counts taken now stay still. */
async function inboundIdle(): Promise<void> {
  await eventually(async () => {
    const counts = await env.runtime.queues.inbound.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
    return Object.values(counts).every((n) => n === 0) ? true : undefined;
  }, 10_000, 'an idle inbound queue');
}

async function counts() {
  return { reports: await reportCount(), inboundJobs: await inboundJobCount() };
}

/** Sends a request that must be refused; asserts the error and that it wrote nothing. */
async function expectRejected(send: () => Promise<Response>, status: number, error: string, options: { hint?: boolean } = {}) {
  await inboundIdle();
  const before = await counts();
  const res = await send();
  const body = expectError(res, status, error, options);
  expect(await counts()).toEqual(before);
  // Anything it enqueued by mistake would have become a report by now.
  await inboundIdle();
  expect(await counts()).toEqual(before);
  return body;
}

/** A JSON body of exactly `bytes` bytes: `{"text":"aaa…"}`. */
function bodyOfSize(bytes: number): string {
  const frame = '{"text":""}'.length;
  return `{"text":"${'a'.repeat(bytes - frame)}"}`;
}

describe('POST /api/v1/reports refuses a body that is not a JSON object', () => {
  it.each([
    { name: 'invalid JSON', payload: '{"text": ', error: 'invalid_json' },
    { name: 'trailing garbage', payload: '{"text": "jalan rusak"} x', error: 'invalid_json' },
    { name: 'an empty body', payload: '', error: 'bad_request' },
    { name: 'a JSON array', payload: `[${JSON.stringify({ text: GOOD_TEXT })}]`, error: 'bad_request' },
    { name: 'a JSON string', payload: JSON.stringify(GOOD_TEXT), error: 'bad_request' },
    { name: 'JSON null', payload: 'null', error: 'bad_request' },
    { name: 'a JSON number', payload: '42', error: 'bad_request' },
  ])('$name → 400 $error', async ({ payload, error }) => {
    await expectRejected(() => post(payload), 400, error);
  });
});

describe('POST /api/v1/reports refuses a body over the size limit', () => {
  it('a 10 MB body → 413 payload_too_large', async () => {
    const payload = JSON.stringify({ text: 'a'.repeat(10 * 1024 * 1024) });
    await expectRejected(() => post(payload), 413, 'payload_too_large');
  });

  it('a body one byte over LAPOR_HTTP_BODY_LIMIT_BYTES → 413', async () => {
    expect(env.config.http.bodyLimitBytes).toBe(BODY_LIMIT);
    const payload = bodyOfSize(BODY_LIMIT + 1);
    expect(Buffer.byteLength(payload)).toBe(BODY_LIMIT + 1);
    await expectRejected(() => post(payload), 413, 'payload_too_large');
  });

  it('a body of exactly the limit is read (and then refused only for its too-long text)', async () => {
    const payload = bodyOfSize(BODY_LIMIT);
    await expectRejected(() => post(payload), 400, 'bad_request');
  });

  it('the limit counts bytes, not characters: 16,400 emoji (65,600 bytes) → 413', async () => {
    const payload = JSON.stringify({ text: '🚧'.repeat(16_400) });
    expect(payload.length).toBeLessThan(BODY_LIMIT);
    expect(Buffer.byteLength(payload)).toBeGreaterThan(BODY_LIMIT);
    await expectRejected(() => post(payload), 413, 'payload_too_large');
  });
});

describe('POST /api/v1/reports validates fields', () => {
  it.each([
    { name: 'text is a number', body: { text: 42 } },
    { name: 'text is null', body: { text: null } },
    { name: 'text is missing', body: {} },
    { name: 'text is missing (reporter only)', body: { reporter: { name: 'Budi' } } },
    { name: 'text is empty', body: { text: '' } },
    { name: 'text is only whitespace', body: { text: ' \t\n\u00a0 \r\n ' } },
    { name: 'text is over 10,000 characters', body: { text: 'a'.repeat(10_001) } },
    { name: 'anonim is a string', body: { text: GOOD_TEXT, anonim: 'yes' } },
    { name: 'rahasia is a number', body: { text: GOOD_TEXT, rahasia: 1 } },
    { name: 'reporter is a string', body: { text: GOOD_TEXT, reporter: 'x' } },
    { name: 'reporter is an array', body: { text: GOOD_TEXT, reporter: [] } },
    { name: 'reporter.email is not an e-mail address', body: { text: GOOD_TEXT, reporter: { email: 'not-an-email' } } },
    { name: 'reporter.phone is too short', body: { text: GOOD_TEXT, reporter: { phone: '12' } } },
    { name: 'reporter.name is a number', body: { text: GOOD_TEXT, reporter: { name: 7 } } },
    { name: 'an unknown top-level field', body: { text: GOOD_TEXT, category: 'jalan' } },
    { name: 'a mistyped top-level field', body: { text: GOOD_TEXT, anonym: true } },
    { name: 'a field trying to set the tracking ID', body: { text: GOOD_TEXT, trackingId: '5723181068' } },
    { name: 'an unknown field inside reporter', body: { text: GOOD_TEXT, reporter: { name: 'Budi', nik: '3201010101010001' } } },
  ])('$name → 400 bad_request', async ({ body }) => {
    await expectRejected(() => fileReport(body), 400, 'bad_request');
  });

  it('text of exactly 10,000 characters is accepted', async () => {
    const res = await fileReport({ text: `${GOOD_TEXT} ${'x'.repeat(10_000 - GOOD_TEXT.length - 1)}` });
    expect(res.statusCode).toBe(201);
    const view = await persisted(res.json().trackingId);
    expect(view.text).toHaveLength(10_000);
  });
});

describe('POST /api/v1/reports requires JSON in UTF-8', () => {
  const frame = (bad: number[]) =>
    Buffer.concat([Buffer.from('{"text":"Jalan rusak '), Buffer.from(bad), Buffer.from(' di depan SDN 3 Sukamaju"}')]);
  const BAD_UTF8 = [
    { name: '0xff 0xfe inside a string', bytes: [0xff, 0xfe] },
    { name: 'a truncated 3-byte sequence', bytes: [0xe2, 0x82] },
    { name: 'an overlong encoding of "/"', bytes: [0xc0, 0xaf] },
    { name: 'an encoded UTF-16 surrogate', bytes: [0xed, 0xa0, 0x80] },
    { name: 'a lone continuation byte', bytes: [0x80] },
  ];

  it.each(BAD_UTF8)('$name → 400, nothing written', async ({ bytes }) => {
    // Checks everything but the error code, which the next test is about.
    await inboundIdle();
    const before = await counts();
    const res = await post(frame(bytes));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ message: 'The request body is not valid UTF-8.' });
    await inboundIdle();
    expect(await counts()).toEqual(before);
  });

  it.each(BAD_UTF8)('$name → error invalid_utf8', async ({ bytes }) => {
    expectError(await post(frame(bytes)), 400, 'invalid_utf8');
  });

  it.each<{ name: string; headers: Record<string, string> }>([
    { name: 'application/x-www-form-urlencoded', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    { name: 'application/xml', headers: { 'content-type': 'application/xml' } },
    { name: 'missing', headers: {} },
  ])('content-type $name → 415 unsupported_media_type', async ({ headers }) => {
    await expectRejected(() => post(JSON.stringify({ text: GOOD_TEXT }), headers), 415, 'unsupported_media_type');
  });

  it('content-type text/plain → 415 unsupported_media_type', async () => {
    expectError(await post(JSON.stringify({ text: GOOD_TEXT }), { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
  });

  it('application/json with a charset parameter is accepted', async () => {
    const res = await post(JSON.stringify({ text: GOOD_TEXT }), { 'content-type': 'application/json; charset=utf-8' });
    expect(res.statusCode).toBe(201);
  });

  it('stores multi-byte UTF-8 (emoji, Javanese, Arabic, combining marks) byte-exact', async () => {
    const text = [
      'Jalan berlubang 🚧🕳️ di depan pasar 👩🏽‍🦯 sangat berbahaya',
      'ꦢꦭꦤ꧀ꦲꦶꦁꦥꦱꦂꦫꦸꦱꦏ꧀', // Javanese script
      'الطريق أمام السوق مكسور', // Arabic, right to left
      'Cafe\u0301 ditutup; ﬁ ligature; 𝔘𝔫𝔦𝔠𝔬𝔡𝔢', // decomposed é, compatibility characters: no normalisation
    ].join('\n');
    // The raw bytes, not JSON escapes: the parser must decode them itself.
    const res = await post(Buffer.from(JSON.stringify({ text }), 'utf8'));
    expect(res.statusCode).toBe(201);
    const view = await persisted(res.json().trackingId);
    expect(view.text).toBe(text);
    expect(Buffer.from(view.text, 'utf8').equals(Buffer.from(text, 'utf8'))).toBe(true);
    const { rows } = await env.runtime.db.query<{ text: string }>('SELECT text FROM reports WHERE tracking_id = $1', [view.trackingId]);
    expect(Buffer.from(rows[0]!.text, 'utf8').equals(Buffer.from(text, 'utf8'))).toBe(true);
  });

  it('JSON \\u escapes of astral characters decode to the same text', async () => {
    const text = 'Banjir setinggi lutut di Jl. Kenanga 😡';
    const res = await post('{"text":"Banjir setinggi lutut di Jl. Kenanga \\ud83d\\ude21"}');
    expect(res.statusCode).toBe(201);
    expect((await persisted(res.json().trackingId)).text).toBe(text);
  });
});

describe('Idempotency-Key', () => {
  let n = 0;
  const uniqueKey = () => `test-${Date.now()}-${++n}`;
  const uniqueText = (what: string) => `${GOOD_TEXT} (${what} ${Date.now()}-${++n})`;

  it('the same key and body twice → the same tracking ID and exactly one report', async () => {
    await inboundIdle();
    const before = await counts();
    const key = uniqueKey();
    const body = { text: uniqueText('retry'), reporter: { name: 'Budi Santoso' } };

    const first = await fileReport(body, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    const second = await fileReport(body, { 'idempotency-key': key });
    expect(second.statusCode).toBe(201);
    expect(second.json()).toEqual(first.json());
    expect(second.headers['idempotent-replayed']).toBe('true');

    const { trackingId } = first.json();
    await persisted(trackingId);
    await new Promise((r) => setTimeout(r, 300));
    await inboundIdle();
    expect(await reportCount('tracking_id = $1', [trackingId])).toBe(1);
    expect(await counts()).toEqual({ reports: before.reports + 1, inboundJobs: before.inboundJobs + 1 });
  });

  it('the same key with a different body → 422 idempotency_key_reused, nothing written', async () => {
    const key = uniqueKey();
    const first = await fileReport({ text: uniqueText('first') }, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    await persisted(first.json().trackingId);

    await expectRejected(() => fileReport({ text: uniqueText('other') }, { 'idempotency-key': key }), 422, 'idempotency_key_reused');
    // Only a privacy flag differs: still a different report.
    await expectRejected(() => fileReport({ text: 'x', rahasia: true }, { 'idempotency-key': key }), 422, 'idempotency_key_reused');
  });

  it.each([
    { name: 'a key with spaces', key: 'my retry key' },
    { name: 'a key of 256 characters', key: 'k'.repeat(256) },
    { name: 'a key with a tab', key: 'a\tb' },
  ])('$name → 400 bad_request', async ({ key }) => {
    await expectRejected(() => fileReport({ text: uniqueText('bad key') }, { 'idempotency-key': key }), 400, 'bad_request');
  });

  it('a key of exactly 255 printable characters is accepted', async () => {
    const key = `${uniqueKey()}-`.padEnd(255, '~');
    expect(key).toHaveLength(255);
    const res = await fileReport({ text: uniqueText('long key') }, { 'idempotency-key': key });
    expect(res.statusCode).toBe(201);
    await persisted(res.json().trackingId);
  });

  it('concurrent requests with the same key → one tracking ID and one report', async () => {
    await inboundIdle();
    const before = await counts();
    const key = uniqueKey();
    const body = { text: uniqueText('concurrent') };

    const responses = await Promise.all(Array.from({ length: 5 }, () => fileReport(body, { 'idempotency-key': key })));
    for (const res of responses) expect(res.statusCode).toBe(201);
    const ids = new Set(responses.map((r) => r.json().trackingId));
    expect(ids.size).toBe(1);

    const [trackingId] = [...ids] as [string];
    await persisted(trackingId);
    await new Promise((r) => setTimeout(r, 300));
    await inboundIdle();
    expect(await reportCount('tracking_id = $1', [trackingId])).toBe(1);
    expect(await counts()).toEqual({ reports: before.reports + 1, inboundJobs: before.inboundJobs + 1 });
  });

  it('a refused request does not use up its key', async () => {
    const key = uniqueKey();
    await expectRejected(() => fileReport({ text: '   ' }, { 'idempotency-key': key }), 400, 'bad_request');
    const res = await fileReport({ text: uniqueText('after a refusal') }, { 'idempotency-key': key });
    expect(res.statusCode).toBe(201);
    await persisted(res.json().trackingId);
  });

  it('field order and explicit defaults do not make a different body', async () => {
    const key = uniqueKey();
    const text = uniqueText('same body');
    const a = await post(JSON.stringify({ text, anonim: true }), { ...JSON_TYPE, 'idempotency-key': key });
    const b = await post(JSON.stringify({ rahasia: false, anonim: true, text }), { ...JSON_TYPE, 'idempotency-key': key });
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(201);
    expect(b.json().trackingId).toBe(a.json().trackingId);
    await persisted(a.json().trackingId);
  });

  /**
   * A key is remembered for LAPOR_DEDUP_WEB_HOURS; then it may be used again. Deleting the route's
   * Redis record stands in for its TTL running out.
   */
  async function reuseAfterExpiry() {
    const key = uniqueKey();
    const first = await fileReport({ text: uniqueText('a day ago') }, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    const t1: string = first.json().trackingId;
    await persisted(t1);
    const redisKey = `${env.config.queue.prefix}:idem:web:${createHash('sha256').update(key).digest('base64url')}`;
    const ttl = await env.runtime.producer.ttl(redisKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(env.config.dedup.webHours * 3600);
    expect(await env.runtime.producer.del(redisKey)).toBe(1);

    const text = uniqueText('a new complaint today');
    const second = await fileReport({ text }, { 'idempotency-key': key });
    expect(second.statusCode).toBe(201);
    const t2: string = second.json().trackingId;
    expect(t2).not.toBe(t1);
    const job = await env.runtime.queues.inbound.getJob(`web_${t2}`);
    expect(job).toBeDefined();
    await eventually(async () => ((await job!.getState()) === 'completed' ? true : undefined), 10_000, `job web_${t2}`);
    return { t1, t2, text };
  }

  it('a key whose record expired is accepted again with a new tracking ID', async () => {
    await reuseAfterExpiry();
  });

  // Regression: the receipt was once keyed on the Idempotency-Key and outlived its Redis window.
  it('…and that report is stored', async () => {
    const { t2, text } = await reuseAfterExpiry();
    expect(await reportCount('tracking_id = $1', [t2])).toBe(1);
    const view = await persisted(t2);
    expect(view.text).toBe(text);
  });

  it('different keys with the same body → two reports', async () => {
    const body = { text: uniqueText('two keys') };
    const a = await fileReport(body, { 'idempotency-key': uniqueKey() });
    const b = await fileReport(body, { 'idempotency-key': uniqueKey() });
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(201);
    expect(a.json().trackingId).not.toBe(b.json().trackingId);
    await persisted(a.json().trackingId);
    await persisted(b.json().trackingId);
  });
});

describe('GET /api/v1/reports/:trackingId', () => {
  /** A 10-digit ID with the right check digit that no report has (the sequence never gets there). */
  const unknownId = () => env.runtime.codec.fromSequence(123_456_789);
  const withDigit = (id: string, index: number, digit: number) => id.slice(0, index) + String(digit) + id.slice(index + 1);
  const wrongCheckDigit = (id: string) => withDigit(id, 9, (Number(id[9]) + 1) % 10);

  it('a wrong check digit → 400 mistyped_tracking_id with a hint', async () => {
    const res = await getReport(wrongCheckDigit(unknownId()));
    const body = expectError(res, 400, 'mistyped_tracking_id', { hint: true });
    expect(body.hint).toMatch(/digit/i);
  });

  it('a single mistyped digit or swapped neighbours of a filed ID → mistyped_tracking_id', async () => {
    const filed = await fileReport({ text: GOOD_TEXT });
    const id: string = filed.json().trackingId;
    await persisted(id);
    const typo = withDigit(id, 3, (Number(id[3]) + 5) % 10);
    const swapAt = [...id].findIndex((d, i) => i > 0 && i < 9 && d !== id[i + 1]);
    const swapped = id.slice(0, swapAt) + id[swapAt + 1] + id[swapAt] + id.slice(swapAt + 2);
    for (const bad of [typo, swapped]) {
      expect(bad).not.toBe(id);
      expectError(await getReport(bad), 400, 'mistyped_tracking_id', { hint: true });
    }
  });

  it.each([
    { name: 'letters', id: 'abcdefghij' },
    { name: 'digits with a letter', id: '57231810x8' },
    { name: 'too short (5 digits)', id: '12345' },
    { name: 'too long (11 digits)', id: '57231810681' },
    { name: 'a leading zero', id: '0723181068' },
    { name: 'an emoji', id: '🚧' },
  ])('$name → 400 invalid_tracking_id with a hint', async ({ id }) => {
    expectError(await getReport(id), 400, 'invalid_tracking_id', { hint: true });
  });

  it('an unknown ?lang → 400', async () => {
    const res = await env.app.inject({ method: 'GET', url: `/api/v1/reports/${unknownId()}?lang=fr` });
    expectError(res, 400, 'bad_request');
  });

  it('a parameter over 40 characters → 400', async () => {
    expectError(await getReport('1'.repeat(41)), 400, 'bad_request');
  });

  it('a valid but never issued ID → 404 unknown_tracking_id', async () => {
    expectError(await getReport(unknownId()), 404, 'unknown_tracking_id');
  });

  it('a legacy 8-digit ID with a valid check digit that does not exist → 404', async () => {
    expectError(await getReport('79812002'), 404, 'unknown_tracking_id');
  });

  it('accepts the separators citizens copy an ID with', async () => {
    const filed = await fileReport({ text: GOOD_TEXT });
    const id: string = filed.json().trackingId;
    await persisted(id);
    const spaced = `#${id.slice(0, 3)}-${id.slice(3, 6)}-${id.slice(6)}`;
    const res = await getReport(spaced);
    expect(res.statusCode).toBe(200);
    expect(res.json().trackingId).toBe(id);
  });
});

describe('privacy of the public view', () => {
  const reporter = { name: 'Siti Rahmawati Kusumadewi', phone: '081298765432', email: 'siti.rahmawati.k@example.id' };
  const secretText = 'Kepala dinas meminta uang pelicin Rp 5 juta untuk izin usaha, terjadi di kantor kecamatan Selasa lalu.';

  function expectNoReporter(view: unknown) {
    const json = JSON.stringify(view);
    for (const value of [reporter.name, 'Siti', reporter.phone, '81298765432', reporter.email, 'example.id']) {
      expect(json).not.toContain(value);
    }
    // No reporter-shaped key either (agency has a "name", so that one is allowed).
    expect(json).not.toMatch(/"(reporter\w*|phone|email|contact\w*)":/i);
  }

  it('rahasia: no text, no agency, no kind and no reporter, pending or stored', async () => {
    const res = await fileReport({ text: secretText, reporter, rahasia: true });
    expect(res.statusCode).toBe(201);
    expectNoReporter(res.json());
    const { trackingId } = res.json();

    const early = await getReport(trackingId);
    expect(early.statusCode).toBe(200);
    expect(early.body).not.toContain('pelicin');
    expectNoReporter(early.json());

    const view = await persisted(trackingId);
    expect(view).toMatchObject({ trackingId, rahasia: true });
    expect(view).not.toHaveProperty('text');
    expect(view).not.toHaveProperty('agency');
    expect(view).not.toHaveProperty('kind');
    expect(view.notifications).toEqual([]);
    expect(JSON.stringify(view)).not.toContain('pelicin');
    expectNoReporter(view);
  });

  it('anonim: the text is shown, the reporter is not', async () => {
    const text = 'Sampah menumpuk di TPS Jl. Cempaka 4 sudah tiga minggu tidak diangkut, bau dan banyak lalat.';
    const res = await fileReport({ text, reporter, anonim: true });
    expect(res.statusCode).toBe(201);
    const view = await persisted(res.json().trackingId);
    expect(view).toMatchObject({ anonim: true, rahasia: false, text });
    expectNoReporter(view);
  });

  it('a public report with a reporter never shows the reporter either', async () => {
    const text = 'Pipa PDAM bocor di depan Puskesmas Sukamaju, air terbuang sejak kemarin pagi.';
    const res = await fileReport({ text, reporter });
    expect(res.statusCode).toBe(201);
    const view = await persisted(res.json().trackingId);
    expect(view.text).toBe(text);
    expectNoReporter(view);
  });
});

describe('other routes', () => {
  it.each([
    { method: 'GET' as const, url: '/api/v1/nope' },
    { method: 'GET' as const, url: '/api/v2/reports/5723181068' },
    { method: 'DELETE' as const, url: '/api/v1/reports/5723181068' },
    { method: 'GET' as const, url: '/no-such-page' },
  ])('$method $url → 404 JSON', async ({ method, url }) => {
    expectError(await env.app.inject({ method, url }), 404, 'not_found');
  });

  it('/healthz → 200', async () => {
    const res = await env.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz → 200 with every check passing', async () => {
    const res = await env.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('ready');
    const checks = body.checks as { name: string; ok: boolean }[];
    expect(checks.map((c) => c.name).sort()).toEqual(['intake_workers', 'postgres', 'redis']);
    for (const c of checks) expect(c).toMatchObject({ ok: true });
  });

  it('/metrics exposes lapor_inbound_accepted_total, counting a filed report', async () => {
    expect((await fileReport({ text: GOOD_TEXT })).statusCode).toBe(201);
    const res = await env.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain('# TYPE lapor_inbound_accepted_total counter');
    expect(res.body).toMatch(/^lapor_inbound_accepted_total\{channel="web",result="queued"\} [1-9]/m);
  });

  it('/docs/json is an OpenAPI document listing the report routes', async () => {
    const res = await env.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/reports', '/api/v1/reports/{trackingId}']));
    expect(doc.paths['/api/v1/reports']).toHaveProperty('post');
    expect(doc.paths['/api/v1/reports/{trackingId}']).toHaveProperty('get');
  });
});
