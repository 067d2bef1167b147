import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeWhatsAppApi } from '../../../scripts/whatsapp/fake-api.ts';
import { normalizeAddress } from '../../../src/core/inbound.ts';
import { createTestEnv, eventually, type TestEnv } from '../../helpers/env.ts';
import { account, call } from '../../helpers/operators.ts';

/**
 * WhatsApp end to end over HTTP: a fake Cloud API (scripts/whatsapp/fake-api.ts) delivers what
 * citizens write to the gateway's /webhooks/whatsapp, signed over Meta's \u-escaped bytes; the
 * gateway files reports and answers through the Graph API, inside or outside the 24-hour window.
 */

const SECRETS = { token: 'wa-test-token', phoneNumberId: '106540352242922', appSecret: 'wa-test-secret', verifyToken: 'wa-verify' };
let fake: FakeWhatsAppApi;
let env: TestEnv;
let url: string;
let counter = Math.floor(Math.random() * 1e6);
const newNumber = () => `62857${String(counter++).padStart(7, '0')}`;

beforeAll(async () => {
  fake = await FakeWhatsAppApi.start({ ...SECRETS, webhookRetryMs: 200 });
  env = await createTestEnv({
    channels: ['whatsapp'],
    env: {
      LAPOR_WHATSAPP_TOKEN: SECRETS.token,
      LAPOR_WHATSAPP_PHONE_ID: SECRETS.phoneNumberId,
      LAPOR_WHATSAPP_APP_SECRET: SECRETS.appSecret,
      LAPOR_WHATSAPP_VERIFY_TOKEN: SECRETS.verifyToken,
      LAPOR_WHATSAPP_API_BASE: fake.graphUrl,
    },
  });
  await env.app.listen({ port: 0, host: '127.0.0.1' });
  const address = env.app.server.address() as { port: number };
  url = `http://127.0.0.1:${address.port}/webhooks/whatsapp`;
  fake.setWebhook(url);
});
afterAll(async () => {
  await env?.close();
  await fake?.stop();
});

async function reportsOf(number: string) {
  const { rows } = await env.runtime.db.query<{ seq: string; tracking_id: string; text: string; rahasia: boolean }>(
    `SELECT seq::text, tracking_id, text, rahasia FROM reports WHERE contact_hash = $1 ORDER BY seq`,
    [env.runtime.keys.blindIndex(normalizeAddress(`wa:${number}`))],
  );
  return rows;
}
const oneReportOf = async (number: string) => {
  const rows = await eventually(async () => ((await reportsOf(number)).length ? reportsOf(number) : undefined), 10_000, `a report of ${number}`);
  expect(rows).toHaveLength(1);
  return rows[0]!;
};
const sentTo = (number: string, matching: RegExp) =>
  eventually(async () => fake.sent({ to: number }).find((s) => matching.test(JSON.stringify(s))), 10_000, `a message to ${number} matching ${matching}`);

describe('a citizen writes on WhatsApp', () => {
  it('the webhook is verified with hub.challenge', async () => {
    expect(await fake.verifyWebhook()).toMatchObject({ ok: true });
    const wrong = await fetch(`${url}?hub.mode=subscribe&hub.challenge=123&hub.verify_token=salah`);
    expect(wrong.status).toBe(403);
  });

  it('a message files one report, answered in the chat with its tracking ID and the privacy buttons', async () => {
    const from = newNumber();
    fake.text({ from, name: 'Siti Aminah', text: 'lampu jalan mati di Jl. Melati, Kelurahan Sukamulya' });
    const report = await oneReportOf(from);
    expect(report.text).toBe('lampu jalan mati di Jl. Melati, Kelurahan Sukamulya');
    const reply = await sentTo(from, /diterima dengan nomor/);
    expect(reply.type).toBe('interactive');
    expect(JSON.stringify(reply)).toContain(report.tracking_id);
    expect(JSON.stringify(reply)).toContain(`p:r:${report.tracking_id}`);
    // Statuses come back in any order: the reply is recorded delivered.
    await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ status: string }>(`SELECT status FROM messages WHERE report_seq = $1 AND direction = 'out'`, [report.seq]);
      return rows[0]?.status === 'delivered' ? true : undefined;
    }, 10_000, 'the reply delivered');
    const logs = env.logs.join('\n');
    for (const secret of ['Siti Aminah', from, 'Kelurahan Sukamulya']) expect(logs).not.toContain(secret);
  });

  it('three messages in one POST are three reports; the Rahasiakan button makes one confidential', async () => {
    const numbers = [newNumber(), newNumber(), newNumber()];
    fake.batch(numbers.map((from, i) => ({ type: 'text' as const, from, text: `got mampet di gang ${i + 1} RW 04 sejak minggu lalu` })));
    const reports = await Promise.all(numbers.map(oneReportOf));
    const receipt = await sentTo(numbers[0]!, /diterima dengan nomor/);
    fake.buttonReply({ from: numbers[0]!, replyTo: receipt.wamid, id: `p:r:${reports[0]!.tracking_id}`, title: 'Rahasiakan' });
    await sentTo(numbers[0]!, /dirahasiakan/);
    expect((await reportsOf(numbers[0]!))[0]!.rahasia).toBe(true);
  });

  it('words, then a photo without a caption and a place, in one POST: one report with its photo and place', async () => {
    const from = newNumber();
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('foto trotoar')]).toString('base64');
    fake.batch([
      { type: 'text', from, text: 'trotoar ambles di depan pasar Kosambi, ada lubang dalam' },
      { type: 'image', from, bytes: jpeg, mimeType: 'image/jpeg' },
      { type: 'location', from, latitude: -6.9211, longitude: 107.6198, name: 'Pasar Kosambi' },
    ]);
    const report = await oneReportOf(from);
    await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE report_seq = $1 AND direction = 'in'`, [report.seq]);
      return rows[0]!.n === 3 ? true : undefined;
    }, 10_000, 'the photo and the place in the thread');
    const { rows } = await env.runtime.db.query<{ content_type: string }>('SELECT content_type FROM attachments WHERE report_seq = $1', [report.seq]);
    expect(rows).toEqual([{ content_type: 'image/jpeg' }]);
    expect(await reportsOf(from)).toHaveLength(1);
  });

  it('outside the 24-hour window the answer goes as the template, not dropped', async () => {
    const from = newNumber();
    fake.text({ from, text: 'jembatan kayu di Dusun Krajan lapuk dan berlubang' });
    const report = await oneReportOf(from);
    await sentTo(from, /diterima dengan nomor/);
    // A day and more later (the window, kept in Redis, has expired), an operator's step notifies.
    await env.runtime.producer.del(...(await env.runtime.producer.keys(`${env.config.queue.prefix}:whatsapp:window:*`)));
    fake.advanceTime(25 * 3_600_000);
    const admin = await account(env, 'super_admin');
    const res = await call(env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/verify`, admin, { kind: 'pengaduan', weight: 'sedang' });
    expect(res.statusCode, res.body).toBe(200);
    const dispose = await call(env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/dispose`, admin, { agency: 'pln' });
    expect(dispose.statusCode).toBe(200);
    const template = await sentTo(from, /diteruskan/);
    expect(template.type).toBe('template');
    expect(template.template?.name).toBe('lapor_kabar');
  });

  it('when Meta says the window closed (131047), the same notification goes as the template', async () => {
    const from = newNumber();
    fake.text({ from, text: 'tiang listrik roboh menimpa pagar rumah warga di gang Mawar' });
    const report = await oneReportOf(from);
    await sentTo(from, /diterima dengan nomor/);
    // Our window (Redis) still says open; Meta's clock is a day on and refuses free text at once.
    fake.setReengagement('sync');
    fake.advanceTime(25 * 3_600_000);
    try {
      const admin = await account(env, 'super_admin');
      expect((await call(env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/verify`, admin, { kind: 'pengaduan', weight: 'sedang' })).statusCode).toBe(200);
      expect((await call(env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/dispose`, admin, { agency: 'pln' })).statusCode).toBe(200);
      const template = await sentTo(from, /diteruskan/);
      expect(template.type).toBe('template');
    } finally {
      fake.setReengagement('status');
    }
  });

  it('when Meta accepts free text and then reports 131047 in a failed status, the same notification goes once as the template', async () => {
    const from = newNumber();
    fake.text({ from, text: 'pipa air bersih bocor di depan balai desa Sukamaju' });
    const report = await oneReportOf(from);
    await sentTo(from, /diterima dengan nomor/);
    // Our window (Redis) still says open; Meta's clock is a day on: it takes the free text, then fails it.
    fake.advanceTime(25 * 3_600_000);
    const admin = await account(env, 'super_admin');
    expect((await call(env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/verify`, admin, { kind: 'pengaduan', weight: 'sedang' })).statusCode).toBe(200);
    expect((await call(env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/dispose`, admin, { agency: 'pdam' })).statusCode).toBe(200);
    const template = await sentTo(from, /"type":"template".*diteruskan/);
    const refused = fake.sent({ to: from }).find((s) => s.type === 'text' && /diteruskan/.test(s.text ?? ''));
    expect(refused).toMatchObject({ failedCode: 131047 });
    expect(JSON.stringify(template.template?.components)).toContain(refused!.text!);
    // The notification's row: its first wamid, delivered by the template's statuses, no error.
    const row = await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ status: string; transport_id: string; error: string | null }>(
        `SELECT status, transport_id, error FROM messages WHERE report_seq = $1 AND direction = 'out' AND kind = 'forwarded'`,
        [report.seq],
      );
      return rows[0]?.status === 'delivered' ? rows[0] : undefined;
    }, 10_000, 'the notification delivered');
    expect(row).toMatchObject({ transport_id: refused!.wamid, error: null });
    // Meta delivers the failed status again: nothing more is sent.
    fake.deliverStatus({ wamid: refused!.wamid, status: 'failed', code: 131047 });
    await fake.idle();
    expect(fake.sent({ to: from }).filter((s) => s.type === 'template')).toHaveLength(1);
    const logs = env.logs.join('\n');
    expect(logs).toContain('re-sent as the template');
    for (const secret of [from, 'balai desa Sukamaju', refused!.wamid]) expect(logs).not.toContain(secret);
  });

  it('refuses forged, unsigned and re-serialised deliveries, filing nothing', async () => {
    const from = newNumber();
    const body = `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"${SECRETS.phoneNumberId}"},"contacts":[{"profile":{"name":"Ren\\u00e9"},"wa_id":"${from}"}],"messages":[{"from":"${from}","id":"wamid.TEST${from}","timestamp":"${Math.floor(Date.now() / 1000)}","type":"text","text":{"body":"jalan \\u00e9 rusak 3\\/4 km"}}]},"field":"messages"}]}]}`;
    const sign = (b: string, secret = SECRETS.appSecret) => `sha256=${createHmac('sha256', secret).update(b).digest('hex')}`;
    const post = (b: string, signature?: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(signature ? { 'x-hub-signature-256': signature } : {}) }, body: b });
    expect((await post(body)).status).toBe(401);
    expect((await post(body, sign(body, 'salah'))).status).toBe(401);
    const reserialised = JSON.stringify(JSON.parse(body));
    expect(reserialised).not.toBe(body);
    expect((await post(reserialised, sign(body))).status).toBe(401);
    expect((await post('{"object":', sign('{"object":'))).status).toBe(400);
    expect(await reportsOf(from)).toHaveLength(0);
    // The genuine bytes, twice: one report.
    expect((await post(body, sign(body))).status).toBe(200);
    expect((await post(body, sign(body))).status).toBe(200);
    const report = await oneReportOf(from);
    expect(report.text).toBe('jalan é rusak 3/4 km');
  });
});
