import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InboundMessageSchema } from '../../src/core/inbound.ts';
import { charLength, sanitizeText } from '../../src/core/text.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

/**
 * Nothing is acknowledged that cannot be stored. Every input below either gets a 201 and then is a
 * row in PostgreSQL exactly once, with the sanitized text, or gets a 400 and leaves no job and no
 * row behind. Texts go through the real route, queue, intake worker and PostgreSQL.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

type Response = Awaited<ReturnType<TestEnv['app']['inject']>>;

let n = 0;
/** A text of its own per test, so rows are found by it and the rules' duplicate check stays away. */
const unique = (what: string) => `Laporan uji ${what} nomor ${Date.now()}-${++n}: jalan rusak di depan SDN 3`;

function postRaw(payload: string): Promise<Response> {
  return env.app.inject({ method: 'POST', url: '/api/v1/reports', payload, headers: { 'content-type': 'application/json' } });
}
const fileReport = (body: unknown) => postRaw(JSON.stringify(body));

/** The stored row of a tracking ID, once the intake worker has written it; asserts there is one. */
async function storedRow(trackingId: string) {
  const rows = await eventually(async () => {
    const { rows } = await env.runtime.db.query<{ text: string; sealed: string | null; receipts: number }>(
      `SELECT r.text, p.sealed,
              (SELECT count(*)::int FROM inbound_receipts i WHERE i.report_seq = r.seq) AS receipts
         FROM reports r LEFT JOIN reporters p ON p.id = r.reporter_id WHERE r.tracking_id = $1`,
      [trackingId],
    );
    return rows.length ? rows : undefined;
  }, 10_000, `report ${trackingId} in PostgreSQL`);
  expect(rows).toHaveLength(1);
  expect(rows[0]!.receipts).toBe(1);
  const job = await env.runtime.queues.inbound.getJob(`web_${trackingId}`);
  expect(await job?.getState()).toBe('completed');
  return rows[0]!;
}

async function inboundIdle(): Promise<void> {
  await eventually(async () => {
    const counts = await env.runtime.queues.inbound.getJobCounts('wait', 'active', 'delayed', 'prioritized');
    return Object.values(counts).every((c) => c === 0) ? true : undefined;
  }, 10_000, 'an idle inbound queue');
}

async function counts() {
  const { rows } = await env.runtime.db.query<{ reports: number; receipts: number }>(
    'SELECT (SELECT count(*)::int FROM reports) AS reports, (SELECT count(*)::int FROM inbound_receipts) AS receipts',
  );
  const jobs = Object.values(await env.runtime.queues.inbound.getJobCounts()).reduce((a, b) => a + b, 0);
  return { ...rows[0]!, jobs };
}

/** A 400 that names the field, and nothing stored or queued, now or a moment later. */
async function expectRefused(send: () => Promise<Response>, path: string, message: RegExp) {
  await inboundIdle();
  const before = await counts();
  const res = await send();
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 400 });
  const body = res.json();
  expect(body.error).toBe('bad_request');
  expect(body.details).toEqual(expect.arrayContaining([expect.objectContaining({ path, message: expect.stringMatching(message) })]));
  await new Promise((r) => setTimeout(r, 100));
  await inboundIdle();
  expect(await counts()).toEqual(before);
  return body as { error: string; message: string; hint?: string; details: { path: string; message: string }[] };
}

/** A 201, and the row holds exactly `expected`. */
async function expectStored(payload: string, expected: string) {
  const res = await postRaw(payload);
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 201 });
  const row = await storedRow(res.json().trackingId);
  expect(row.text).toBe(expected);
  return { trackingId: res.json().trackingId as string, row };
}

const cp = (code: number) => String.fromCodePoint(code);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => cp(from + i)).join('');

/** One text per class of code point, as the citizen's app would send it (JSON.stringify escapes what JSON must). */
const CLASSES: { name: string; inside: string; becomes: string }[] = [
  { name: 'NUL', inside: '\u0000', becomes: '' },
  { name: 'a run of NULs (UCS-2 padding)', inside: '\u0000'.repeat(12), becomes: '' },
  { name: 'every C0 control but tab, LF, CR, VT, FF', inside: range(0x00, 0x08) + range(0x0e, 0x1f), becomes: '' },
  { name: 'tab, LF, CR', inside: '\t\n\r', becomes: '\t\n\r' },
  { name: 'VT, FF, NEL (line breaks)', inside: '\u000b\u000c\u0085', becomes: '\n\n\n' },
  { name: 'DEL', inside: '\u007f', becomes: '' },
  { name: 'every C1 control but NEL', inside: range(0x80, 0x84) + range(0x86, 0x9f), becomes: '' },
  { name: 'a lone high surrogate', inside: '\ud83d', becomes: '\ufffd' },
  { name: 'a lone low surrogate', inside: '\ude21', becomes: '\ufffd' },
  { name: 'reversed surrogate halves', inside: '\ude21\ud83d', becomes: '\ufffd\ufffd' },
  { name: 'non-characters U+FDD0–U+FDEF', inside: range(0xfdd0, 0xfdef), becomes: '' },
  { name: 'non-characters U+FFFE, U+FFFF, U+1FFFE, U+10FFFF', inside: '\ufffe\uffff\u{1fffe}\u{10ffff}', becomes: '' },
  { name: 'zero-width characters inside (kept)', inside: '\u200b\u200c\u200d\u2060', becomes: '\u200b\u200c\u200d\u2060' },
  { name: 'a BOM inside (kept)', inside: '\ufeff', becomes: '\ufeff' },
  { name: 'emoji, flags, ZWJ sequences (kept)', inside: '🚧😡🇮🇩👨\u200d👩\u200d👧👍🏽', becomes: '🚧😡🇮🇩👨\u200d👩\u200d👧👍🏽' },
  { name: 'other scripts and combining marks (kept)', inside: 'ꦲꦏ꧀ꦱꦫ 中文 عربي e\u0301', becomes: 'ꦲꦏ꧀ꦱꦫ 中文 عربي e\u0301' },
  { name: 'private use and unassigned code points (kept)', inside: '\ue000\u{f0000}\u{50000}', becomes: '\ue000\u{f0000}\u{50000}' },
  { name: 'U+FFFD itself (kept)', inside: '\ufffd', becomes: '\ufffd' },
];

describe('every class of code point, through the real intake into PostgreSQL', () => {
  it.each(CLASSES)('$name → 201, stored once as the sanitized text', async ({ name, inside, becomes }) => {
    const before = unique(name);
    const text = `${before} [${inside}] selesai`;
    const { row } = await expectStored(JSON.stringify({ text }), `${before} [${becomes}] selesai`);
    expect(Buffer.from(row.text, 'utf8').includes(0)).toBe(false);
  });

  it('all classes in one text, with a reporter name carrying them too', async () => {
    const all = CLASSES.map((c) => c.inside).join('|');
    const sanitized = CLASSES.map((c) => c.becomes).join('|');
    const prefix = unique('all classes');
    const res = await fileReport({ text: `${prefix} ${all}`, reporter: { name: `Budi ${all} Santoso` } });
    expect(res.statusCode).toBe(201);
    const row = await storedRow(res.json().trackingId);
    expect(row.text).toBe(`${prefix} ${sanitized}`);
    expect(sanitizeText(`${prefix} ${all}`)).toBe(row.text);
    const reporter = env.runtime.keys.open('reporter', row.sealed!) as { name: string };
    expect(reporter.name).toBe(`Budi ${CLASSES.map((c) => c.becomes).join('|')} Santoso`);
  });

  it('JSON escapes of NUL and lone surrogates, written by hand, are stored sanitized', async () => {
    const before = unique('escapes');
    await expectStored(`{"text":"${before} \\u0000a\\ud800b\\udfffc\\u0085d"}`, `${before} a\ufffdb\ufffdc\nd`);
  });

  it('NULs and controls at the ends are removed and the rest trimmed', async () => {
    const text = unique('ends');
    await expectStored(JSON.stringify({ text: `\u0000\ufeff  ${text} \u0007\u0000` }), text);
  });

  it('a message put on the queue without the boundary (an older producer) is still stored sanitized', async () => {
    const trackingId = env.runtime.codec.fromSequence(900_000 + Math.floor(Math.random() * 1e5));
    const text = unique('raw job');
    const raw = {
      channel: 'web',
      account: 'api',
      externalId: `t${trackingId}`,
      dedupKey: `web_${trackingId}`,
      text: `${text}\u0000\ud800`,
      attachments: [],
      receivedAt: new Date().toISOString(),
      replyContext: {},
      form: { trackingId, anonim: false, rahasia: false },
    };
    const sealed = env.runtime.keys.seal('queue', raw);
    await env.runtime.queues.inbound.add('message', { channel: 'web', dedupKey: raw.dedupKey, sealed }, { jobId: raw.dedupKey });
    expect((await storedRow(trackingId)).text).toBe(`${text}\ufffd`);
  });
});

describe('text that is empty once invisible characters are removed → 400, nothing stored', () => {
  it.each([
    ['NUL only', '\u0000'],
    ['NULs and controls only', '\u0000\u0001\u007f\u0085\u009f'],
    ['the five zero widths of the issue', '\u200b\u200c\u200d\u2060\ufeff'],
    ['zero widths and spaces', ' \u200b \u200b\u00a0\u3000\n'],
    ['bidi marks and a soft hyphen', '\u200e\u200f\u00ad'],
    ['Hangul fillers', '\u3164\u3164'],
    ['blank Braille', '\u2800\u2800\u2800'],
    ['lone non-characters', '\ufffe\ufdd0'],
  ])('%s', async (_name, text) => {
    const body = await expectRefused(() => fileReport({ text }), '/text', /empty once invisible characters are removed/);
    expect(body.message).not.toBe('');
  });
});

describe('lengths count characters', () => {
  it('10,000 emoji (20,000 UTF-16 units, 40,000 bytes) are accepted and stored whole', async () => {
    const text = `${unique('emoji')} ${'🚧'.repeat(10_000)}`;
    const exact = Array.from(text).slice(0, 10_000).join('');
    expect(charLength(exact)).toBe(10_000);
    const { row } = await expectStored(JSON.stringify({ text: exact }), exact);
    expect(charLength(row.text)).toBe(10_000);
  });

  it('10,001 characters are refused, whatever their width', async () => {
    await expectRefused(() => fileReport({ text: '🚧'.repeat(10_001) }), '/text', /at most 10000 characters/);
    await expectRefused(() => fileReport({ text: 'a'.repeat(10_001) }), '/text', /at most 10000 characters/);
  });

  it('a reporter name counts characters: 200 emoji pass, 201 do not', async () => {
    const res = await fileReport({ text: unique('name'), reporter: { name: '🙂'.repeat(200) } });
    expect(res.statusCode).toBe(201);
    const row = await storedRow(res.json().trackingId);
    expect((env.runtime.keys.open('reporter', row.sealed!) as { name: string }).name).toBe('🙂'.repeat(200));
    await expectRefused(() => fileReport({ text: unique('name'), reporter: { name: '🙂'.repeat(201) } }), '/reporter/name', /at most 200 characters/);
  });

  it('a name with nothing visible is refused', async () => {
    await expectRefused(() => fileReport({ text: unique('blank name'), reporter: { name: '\u200b\u0000' } }), '/reporter/name', /empty once invisible/);
  });
});

describe('reporter phone and e-mail mean what they say', () => {
  it.each([
    ['081234567890', '+6281234567890'],
    ['0812-3456-7890', '+6281234567890'],
    ['(0812) 3456 7890', '+6281234567890'],
    ['6281234567890', '+6281234567890'],
    ['+62 812 3456 7890', '+6281234567890'],
    ['+60 12 345 6789', '+60123456789'],
  ])('%s is stored as %s', async (phone, e164) => {
    const res = await fileReport({ text: unique(`phone ${phone}`), reporter: { phone } });
    expect(res.statusCode).toBe(201);
    const row = await storedRow(res.json().trackingId);
    expect(env.runtime.keys.open('reporter', row.sealed!)).toMatchObject({ phone: e164 });
  });

  it.each([
    ['letters', '0812-ABCD-7890'],
    ['30 digits', '1'.repeat(30)],
    ['16 digits', '+1234567890123456'],
    ['7 digits once 0 is +62', '081234'],
    ['no 0, 62 or +', '81234567890'],
    ['62 then the trunk 0', '+62 0812 3456 7890'],
  ])('%s → 400 with a hint', async (_name, phone) => {
    const body = await expectRefused(() => fileReport({ text: unique('bad phone'), reporter: { phone } }), '/reporter/phone', /not a phone number/);
    expect(body.hint).toMatch(/081234567890/);
    expect(body.hint).toMatch(/8 to 15/);
  });

  it.each(['budi', 'budi@contoh', 'budi@ contoh.id', `${'a'.repeat(65)}@contoh.id`])('e-mail %s → 400', async (email) => {
    await expectRefused(() => fileReport({ text: unique('bad email'), reporter: { email } }), '/reporter/email', /.+/);
  });

  it('a valid e-mail is stored as given', async () => {
    const res = await fileReport({ text: unique('email'), reporter: { email: 'siti.rahma+lapor@contoh.go.id' } });
    expect(res.statusCode).toBe(201);
    const row = await storedRow(res.json().trackingId);
    expect(env.runtime.keys.open('reporter', row.sealed!)).toMatchObject({ email: 'siti.rahma+lapor@contoh.go.id' });
  });
});

describe('the OpenAPI document states every limit', () => {
  it('text, name, phone, e-mail, Idempotency-Key, body size and deadlines', async () => {
    const doc = (await env.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const post = doc.paths['/api/v1/reports'].post;
    const body = post.requestBody.content['application/json'].schema;
    expect(body.properties.text).toMatchObject({ type: 'string', minLength: 1, maxLength: 10_000 });
    expect(body.properties.text.description).toMatch(/characters/);
    const reporter = body.properties.reporter.properties;
    expect(reporter.name).toMatchObject({ type: 'string', maxLength: 200 });
    expect(reporter.phone).toMatchObject({ type: 'string', maxLength: 32, pattern: expect.any(String) });
    expect(reporter.phone.description).toMatch(/8 to 15 digits/);
    expect(reporter.email).toMatchObject({ type: 'string', format: 'email', maxLength: 254 });
    const idem = post.parameters.find((p: { name: string }) => p.name === 'idempotency-key');
    expect(idem.schema).toMatchObject({ maxLength: 255, pattern: expect.any(String) });
    expect(post.description).toContain(`${env.config.http.bodyLimitBytes} bytes`);
    expect(post.description).toContain(`${env.config.http.headersTimeoutMs} ms`);
    expect(post.description).toContain(`${env.config.http.bodyTimeoutMs} ms`);
    expect(post.description).toContain(`${env.config.http.requestTimeoutMs} ms`);
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['201', '400', '408', '413', '503']));
  });
});

describe('the boundary itself', () => {
  it('InboundMessageSchema refuses a blank web form even if a route forgot to', () => {
    expect(
      InboundMessageSchema.safeParse({
        channel: 'web',
        account: 'api',
        externalId: 't1',
        dedupKey: 'web_1',
        text: '\u200b',
        receivedAt: new Date().toISOString(),
        form: {},
      }).success,
    ).toBe(false);
  });
});
