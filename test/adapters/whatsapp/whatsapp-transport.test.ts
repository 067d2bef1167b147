import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeWhatsAppApi, metaJson } from '../../../scripts/whatsapp/fake-api.ts';
import { startLocalRedis, type StartedService } from '../../../src/local/services.ts';
import { createLogger } from '../../../src/log.ts';
import { createDatabase, eventually, type TestEnv } from '../../helpers/env.ts';
import { account, call } from '../../helpers/operators.ts';
import {
  WA_SECRETS,
  fanOut,
  oneReportOf,
  outboundOf,
  postSigned,
  reportsOf,
  statusDelivery,
  textDelivery,
  waNumbers,
  whatsappGateway,
  type FanOut,
  type WhatsAppGateway,
} from '../../helpers/whatsapp.ts';

/**
 * WhatsApp's transport end to end over HTTP, against the fake Cloud API (scripts/whatsapp/fake-api.ts)
 * and POSTs made as Meta makes them: a delivery repeated (also across a gateway restart), two
 * gateway processes receiving every webhook at once, Redis stopped under a delivery, media that
 * cannot be had, statuses in every order, bodies too large or not well-formed. Every test has its
 * own citizens; the last checks that none of their numbers, names or words reached a log line.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(64)]);

const newNumber = waNumbers();
/** Every citizen's number, name and words used here: none may reach a log line. */
const personal = new Set<string>();
const allLogs: string[][] = [];
const citizen = () => {
  const number = newNumber();
  personal.add(number);
  return number;
};
const words = (text: string) => {
  personal.add(text);
  return text;
};
const named = (name: string) => {
  personal.add(name);
  return name;
};
let wamidCounter = 0;
/** A wamid of Meta's shape for a message posted by hand. */
const wamidFor = (from: string) =>
  `wamid.${Buffer.concat([Buffer.from([0x1c, 0x18, from.length]), Buffer.from(from), Buffer.from(`TEST${randomBytes(6).toString('hex')}${wamidCounter++}`)]).toString('base64')}`;

/** The store shared by several gateway processes: one database, one queue prefix, one set of keys. */
async function sharedStore(): Promise<Record<string, string>> {
  return {
    LAPOR_QUEUE_PREFIX: `{t${randomBytes(5).toString('hex')}}`,
    LAPOR_DATABASE_URL: await createDatabase(),
    LAPOR_DATA_KEY: randomBytes(32).toString('base64'),
    LAPOR_TRACKING_KEY: randomBytes(32).toString('base64'),
  };
}

const receiptsTo = (fake: FakeWhatsAppApi, number: string) => fake.sent({ to: number }).filter((s) => /diterima dengan nomor/.test(JSON.stringify(s)));
const receiptTo = (fake: FakeWhatsAppApi, number: string) =>
  eventually(async () => receiptsTo(fake, number)[0], 10_000, `the receipt to ${number}`);

/**
 * What a gateway has done by the time a later citizen's message is filed and answered: a barrier
 * instead of a sleep, for "nothing more happened".
 */
async function barrier(gw: { fake: FakeWhatsAppApi; env: TestEnv }): Promise<void> {
  const later = citizen();
  gw.fake.text({ from: later, text: words(`barrier ${randomBytes(4).toString('hex')}: got mampet di gang Dahlia`) });
  await oneReportOf(gw.env, later);
  await receiptTo(gw.fake, later);
  await gw.fake.idle();
}

// ---- one delivery, many times ----

describe('Meta delivering the same POST again', () => {
  let fake: FakeWhatsAppApi;
  let shared: Record<string, string>;
  let gw: WhatsAppGateway | undefined;

  beforeAll(async () => {
    fake = await FakeWhatsAppApi.start({ ...WA_SECRETS, webhookRetryMs: 200 });
    shared = await sharedStore();
    gw = await whatsappGateway(shared, {}, { fake });
    allLogs.push(gw.env.logs);
  });
  afterAll(async () => {
    await gw?.close();
    await fake?.stop();
  });

  it('files one report, answered once, also when it comes again after a gateway restart', async () => {
    const from = citizen();
    const payload = JSON.parse(textDelivery(fake.phoneNumberId, from, wamidFor(from), words('trotoar Jl. Kenari amblas sepanjang lima meter'), named('Sri Rahayu'))) as Record<string, unknown>;
    // Meta's first delivery, then the same bytes again, twice at once and once more.
    fake.raw(payload);
    const body = metaJson(payload);
    const report = await oneReportOf(gw!.env, from);
    const answers = await Promise.all([postSigned(gw!.url, body, fake.appSecret), postSigned(gw!.url, body, fake.appSecret)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect((await postSigned(gw!.url, body, fake.appSecret)).status).toBe(200);
    await receiptTo(fake, from);

    // The gateway restarts on the same store; Meta delivers the same bytes again.
    await gw!.close();
    gw = await whatsappGateway(shared, {}, { fake });
    allLogs.push(gw.env.logs);
    expect((await postSigned(gw.url, body, fake.appSecret)).status).toBe(200);
    await barrier(gw);
    expect(await reportsOf(gw.env, from)).toEqual([report]);
    expect(fake.sent({ to: from })).toHaveLength(1);
  });
});

// ---- two processes ----

describe('two gateway processes receiving every webhook at once', () => {
  let fake: FakeWhatsAppApi;
  let first: WhatsAppGateway;
  let second: WhatsAppGateway;
  let relay: FanOut;

  beforeAll(async () => {
    fake = await FakeWhatsAppApi.start({ ...WA_SECRETS, webhookRetryMs: 200 });
    const shared = await sharedStore();
    first = await whatsappGateway(shared, {}, { fake, webhook: false });
    second = await whatsappGateway(shared, {}, { fake, webhook: false });
    allLogs.push(first.env.logs, second.env.logs);
    relay = await fanOut([first.url, second.url]);
    fake.setWebhook(relay.url);
  });
  afterAll(async () => {
    await relay?.close();
    await first?.close();
    await second?.close();
    await fake?.stop();
  });

  it('a message reaching both files one report, answered once', async () => {
    const from = citizen();
    fake.text({ from, name: named('Bambang Sutejo'), text: words('kabel listrik putus menjuntai di depan SDN 4 Cibeunying') });
    const report = await oneReportOf(first.env, from);
    await receiptTo(fake, from);
    await barrier(first);
    expect(await reportsOf(second.env, from)).toEqual([report]);
    expect(receiptsTo(fake, from)).toHaveLength(1);
  });

  it('a 131047 failure reaching both re-sends the notification as the template once; its statuses deliver it', async () => {
    const from = citizen();
    fake.text({ from, text: words('pintu air Kali Bekasi macet tidak bisa dibuka') });
    const report = await oneReportOf(first.env, from);
    await receiptTo(fake, from);
    // Our window still open; Meta's a day on: it takes the free text, then reports 131047, to both.
    fake.advanceTime(25 * 3_600_000);
    const admin = await account(first.env, 'super_admin');
    expect((await call(first.env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/verify`, admin, { kind: 'pengaduan', weight: 'sedang' })).statusCode).toBe(200);
    expect((await call(first.env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/dispose`, admin, { agency: 'pupr' })).statusCode).toBe(200);
    const template = await eventually(async () => fake.sent({ to: from }).find((s) => s.type === 'template' && /diteruskan/.test(JSON.stringify(s))), 10_000, 'the template');
    const refused = fake.sent({ to: from }).find((s) => s.failedCode === 131047)!;
    expect(JSON.stringify(template.template)).toContain(refused.text!);
    await eventually(async () => ((await outboundOf(first.env, report.seq)).some((m) => m.transport_id === refused.wamid && m.status === 'delivered') ? true : undefined), 10_000, 'the notification delivered');
    await barrier(first);
    expect(fake.sent({ to: from }).filter((s) => s.type === 'template')).toHaveLength(1);
  });
});

// ---- Redis stopped ----

describe('a delivery while Redis is stopped', () => {
  const log = createLogger({ level: 'silent' });
  let dir: string;
  let redis: StartedService;
  let gw: WhatsAppGateway;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lapor-wa-redis-'));
    redis = await startLocalRedis({ dir, fsync: 'always', log });
    gw = await whatsappGateway({ LAPOR_REDIS_URL: redis.url }, { webhookRetryMs: 300 });
    allLogs.push(gw.env.logs);
  });
  afterAll(async () => {
    await gw?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is answered 503 with nothing stored; Meta’s retry once Redis is back files it exactly once', { timeout: 60_000 }, async () => {
    const { fake, env } = gw;
    const attachments = async () => (await env.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM attachments')).rows[0]!.n;
    const baseline = citizen();
    fake.text({ from: baseline, text: words('pasar tumpah menutup jalan raya Cileunyi') });
    await oneReportOf(env, baseline);
    await receiptTo(fake, baseline);
    const attachmentsBefore = await attachments();

    const killed = new Promise((resolve) => redis.child.once('exit', resolve));
    redis.child.kill('SIGKILL');
    await killed;
    const from = citizen();
    const failedBefore = fake.stats().webhook.failed;
    fake.image({ from, caption: words('jalan longsor di tikungan Cadas Pangeran'), bytes: JPEG, mimeType: 'image/jpeg' });
    await eventually(async () => (fake.stats().webhook.failed >= failedBefore + 2 ? true : undefined), 15_000, 'refused deliveries');
    expect(env.logs.some((l) => l.includes('whatsapp delivery not stored'))).toBe(true);
    expect(await reportsOf(env, from)).toEqual([]);
    expect(await attachments()).toBe(attachmentsBefore);

    redis = await startLocalRedis({ dir, port: redis.port, fsync: 'always', log });
    const report = await oneReportOf(env, from, 30_000);
    expect(report).toMatchObject({ text: 'jalan longsor di tikungan Cadas Pangeran', attachments: 1 });
    await receiptTo(fake, from);
    await barrier(gw);
    expect(await reportsOf(env, from)).toHaveLength(1);
    expect(receiptsTo(fake, from)).toHaveLength(1);
  });
});

// ---- one gateway: media, statuses, bodies ----

describe('one gateway', () => {
  let gw: WhatsAppGateway;

  beforeAll(async () => {
    gw = await whatsappGateway();
    allLogs.push(gw.env.logs);
  });
  afterAll(async () => {
    await gw?.close();
  });

  const logsSince = (from: number) => gw.env.logs.slice(from).join('\n');

  describe('media that cannot be had', () => {
    it('a 404 from the media URL: filed without the file, the reason logged', async () => {
      const { fake, env } = gw;
      const from = citizen();
      const before = env.logs.length;
      fake.mediaFault({ stage: 'download' });
      fake.image({ from, caption: words('tiang listrik miring di Jl. Pahlawan'), bytes: JPEG, mimeType: 'image/jpeg' });
      expect(await oneReportOf(env, from)).toMatchObject({ text: 'tiang listrik miring di Jl. Pahlawan', attachments: 0 });
      expect(logsSince(before)).toMatch(/whatsapp media could not be fetched: filed without it.*media answered 404|media answered 404.*whatsapp media could not be fetched/);
    });

    it('media Graph no longer has: filed without it, the reason logged', async () => {
      const { fake, env } = gw;
      const from = citizen();
      const before = env.logs.length;
      fake.mediaFault({ stage: 'lookup' });
      fake.document({ from, caption: words('surat edaran pungutan sekolah'), bytes: Buffer.from('%PDF-1.4 surat'), fileName: 'edaran.pdf', mimeType: 'application/pdf' });
      expect(await oneReportOf(env, from)).toMatchObject({ text: 'surat edaran pungutan sekolah', attachments: 0 });
      expect(logsSince(before)).toContain('whatsapp media could not be fetched');
    });

    it('an executable sent as image/jpeg: filed without it, the reason logged', async () => {
      const { fake, env } = gw;
      const from = citizen();
      const before = env.logs.length;
      const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01]), randomBytes(100)]);
      fake.image({ from, caption: words('foto bukti pungli loket kecamatan'), bytes: elf, mimeType: 'image/jpeg' });
      expect(await oneReportOf(env, from)).toMatchObject({ text: 'foto bukti pungli loket kecamatan', attachments: 0 });
      const line = gw.env.logs.slice(before).find((l) => l.includes('whatsapp media left out'));
      expect(line).toBeDefined();
      expect(JSON.parse(line!).reason).toEqual(expect.any(String));
    });
  });

  describe('statuses', () => {
    it('read before delivered (and sent last): the reply is delivered', async () => {
      const { fake, env } = gw;
      fake.setStatusOrder(['read', 'delivered', 'sent']);
      try {
        const from = citizen();
        fake.text({ from, text: words('sampah tidak diangkut dua minggu di RW 07') });
        const report = await oneReportOf(env, from);
        const receipt = await receiptTo(fake, from);
        const row = await eventually(async () => (await outboundOf(env, report.seq)).find((m) => m.status === 'delivered'), 10_000, 'delivered');
        expect(row).toMatchObject({ transport_id: receipt.wamid, delivery: { [receipt.wamid]: 'delivered' }, error: null });
      } finally {
        fake.setStatusOrder(['sent', 'delivered', 'read']);
      }
    });

    it('failed after delivered: the reply is recorded failed, with the reason', async () => {
      const { fake, env } = gw;
      const from = citizen();
      fake.text({ from, text: words('antrean BPJS di puskesmas Sukajadi sampai sore') });
      const report = await oneReportOf(env, from);
      const receipt = await receiptTo(fake, from);
      await eventually(async () => ((await outboundOf(env, report.seq)).some((m) => m.transport_id === receipt.wamid && m.status === 'delivered') ? true : undefined), 10_000, 'delivered');
      await fake.idle();
      fake.deliverStatus({ wamid: receipt.wamid, status: 'failed', code: 131026 });
      const row = await eventually(async () => (await outboundOf(env, report.seq)).find((m) => m.transport_id === receipt.wamid && m.status === 'failed'), 10_000, 'failed');
      expect(row.error).toBe('receipt: failed 131026 Message undeliverable');
    });

    it('a status for a wamid we never sent is answered 200 and changes nothing; a 131047 for one sends nothing', async () => {
      const { fake, env } = gw;
      const from = citizen();
      const unknown = wamidFor(from);
      const now = String(Math.floor(Date.now() / 1000));
      const statuses = [
        { id: unknown, status: 'delivered', timestamp: now, recipient_id: from },
        { id: unknown, status: 'failed', timestamp: now, recipient_id: from, errors: [{ code: 131047, title: 'Re-engagement message' }] },
      ];
      expect((await postSigned(gw.url, statusDelivery(fake.phoneNumberId, statuses), fake.appSecret)).status).toBe(200);
      await barrier(gw);
      const { rows } = await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE transport_id = $1 OR delivery ? $1`, [unknown]);
      expect(rows[0]!.n).toBe(0);
      expect(fake.sent({ to: from })).toEqual([]);
    });
  });

  describe('bodies', () => {
    it('over 1 MiB is refused with 413, filing nothing; the gateway goes on', async () => {
      const { fake, env } = gw;
      const from = citizen();
      const body = textDelivery(fake.phoneNumberId, from, wamidFor(from), `jalan rusak ${'parah '.repeat(200_000)}`);
      expect(Buffer.byteLength(body)).toBeGreaterThan(1024 * 1024);
      expect((await postSigned(gw.url, body, fake.appSecret)).status).toBe(413);
      await barrier(gw);
      expect(await reportsOf(env, from)).toEqual([]);
    });

    it('bytes that are not UTF-8 are a 400; lone surrogates are filed cleaned', async () => {
      const { fake, env } = gw;
      const from = citizen();
      const [head, tail] = textDelivery(fake.phoneNumberId, from, wamidFor(from), 'caf<bytes> au lait').split('<bytes>');
      const latin1 = Buffer.concat([Buffer.from(head!), Buffer.from([0xe9, 0xff]), Buffer.from(tail!)]);
      expect((await postSigned(gw.url, latin1, fake.appSecret)).status).toBe(400);
      expect((await postSigned(gw.url, '{"object":"whatsapp_business_account","entry":', fake.appSecret)).status).toBe(400);
      expect((await postSigned(gw.url, '{"object":"whatsapp_business_account"}', fake.appSecret)).status).toBe(400);

      words('pohon tumbang');
      const broken = textDelivery(fake.phoneNumberId, from, wamidFor(from), 'pohon tumbang \\ud83d di jalan \\udc00 Kartini');
      expect((await postSigned(gw.url, broken, fake.appSecret)).status).toBe(200);
      const report = await oneReportOf(env, from);
      expect(report.text).toBe('pohon tumbang \uFFFD di jalan \uFFFD Kartini');
      expect(report.text).not.toMatch(LONE_SURROGATE);
    });
  });

  it('the webhook still answers Meta after all that', async () => {
    expect(await gw.fake.verifyWebhook()).toMatchObject({ ok: true });
    await barrier(gw);
  });
});

// ---- a status it cannot place ----

describe('a status the gateway cannot place', () => {
  let gw: WhatsAppGateway;

  beforeAll(async () => {
    gw = await whatsappGateway();
    allLogs.push(gw.env.logs);
  });
  afterAll(async () => {
    await gw?.close();
  });

  /**
   * A wamid is base64 of a record holding the citizen's number (`HBgN` + "6285…"): logging one logs
   * the number. The receipt src/deliveries.ts cannot place ("receipt for a message we do not know")
   * is logged without it.
   */
  it('logs no wamid (a wamid names the citizen’s number)', { timeout: 20_000 }, async () => {
    const { fake, env } = gw;
    const from = citizen();
    const unknown = wamidFor(from);
    expect(Buffer.from(unknown.slice('wamid.'.length), 'base64').toString('latin1')).toContain(from);
    const before = env.logs.length;
    const status = { id: unknown, status: 'read', timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: from };
    expect((await postSigned(gw.url, statusDelivery(fake.phoneNumberId, [status]), fake.appSecret)).status).toBe(200);
    // The delivery sink tries such a receipt again for 6.25 s before it gives up and logs it.
    await eventually(async () => (env.logs.slice(before).some((l) => l.includes('receipt for a message we do not know')) ? true : undefined), 15_000, 'the receipt given up');
    expect(env.logs.join('\n')).not.toContain(unknown);
  });
});

// ---- personal data ----

describe('logs', () => {
  it('name no citizen and quote no words', () => {
    expect(personal.size).toBeGreaterThan(15);
    const logs = allLogs.flat().join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of personal) expect(logs, secret).not.toContain(secret);
  });
});
