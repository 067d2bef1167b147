import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeWhatsAppApi } from '../../../scripts/whatsapp/fake-api.ts';
import {
  adapterHarness,
  outbound,
  reengagementFailure,
  statusDelivery,
  textDelivery,
  waNumbers,
  type AdapterHarness,
} from '../../helpers/whatsapp.ts';

/**
 * Meta accepts free text to a citizen whose 24-hour window it finds closed, then reports a `failed`
 * status with 131047. The adapter re-sends that notification as the template — once, however often
 * the status comes and however many gateway processes (two adapters on one Redis prefix here)
 * receive it — and counts the template's statuses for the first message.
 */

let fake: FakeWhatsAppApi;
let a: AdapterHarness;
let b: AdapterHarness;
const newNumber = waNumbers();
/** Every number and text used: none may reach a log line or Redis in clear. */
const personal: string[] = [];

beforeAll(async () => {
  // No webhook: the statuses the fake would post are posted here by hand, to both processes.
  fake = await FakeWhatsAppApi.start({});
  a = await adapterHarness(fake);
  b = await adapterHarness(fake, { like: a });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await fake?.stop();
});
beforeEach(() => {
  a.recorded.length = 0;
  b.recorded.length = 0;
});

/** A citizen who wrote to us (our window is open) while Meta's clock has their window closed. */
async function citizenOutsideMetasWindow(): Promise<string> {
  const who = newNumber();
  personal.push(who);
  const wrote = await a.deliver(textDelivery(fake.phoneNumberId, who, `wamid.HBgTEST${who}`, 'halo, mau lapor jalan rusak'));
  expect(wrote.status).toBe(200);
  return who;
}

async function freeTextRefusedLater(who: string, text: string, trackingId = '2486883978'): Promise<string> {
  personal.push(text);
  const sent = await a.adapter.send(outbound(who, text, { trackingId }));
  expect(sent.status).toBe('sent');
  const [record] = fake.sent({ to: who });
  expect(record).toMatchObject({ type: 'text', wamid: sent.transportId, failedCode: 131047 });
  return sent.transportId!;
}

const templatesTo = (who: string) => fake.sent({ to: who }).filter((s) => s.type === 'template');
const parameterOf = (sent: { template?: { components?: unknown[] } }) =>
  (sent.template?.components as { parameters: { text: string }[] }[] | undefined)?.[0]?.parameters[0]?.text;

describe('a failed status with 131047 for free text we sent', () => {
  it('re-sends the notification as the template exactly once, delivered to two processes and again', async () => {
    const who = await citizenOutsideMetasWindow();
    const text = 'LAPOR! Laporan 2486883978 telah diteruskan ke Perusahaan Daerah Air Minum untuk ditindaklanjuti.';
    const wamid = await freeTextRefusedLater(who, text);
    const failure = statusDelivery(fake.phoneNumberId, [reengagementFailure(wamid, who)]);
    const answers = await Promise.all([a.deliver(failure), b.deliver(failure), a.deliver(failure), b.deliver(failure)]);
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200, 200]);
    expect(await b.deliver(failure)).toMatchObject({ status: 200 });

    const templates = templatesTo(who);
    expect(templates).toHaveLength(1);
    expect(templates[0]).toMatchObject({ template: { name: 'lapor_kabar', language: 'id' } });
    expect(parameterOf(templates[0]!)).toBe(text);
    // Not recorded failed: it went.
    expect([...a.recorded, ...b.recorded]).toEqual([]);
    expect([...a.logs, ...b.logs].filter((l) => l.includes('re-sent as the template'))).toHaveLength(1);

    // The template's statuses count for the notification's first wamid (the one the store knows).
    const template = templates[0]!.wamid;
    const delivered = { id: template, status: 'delivered', timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: who };
    expect((await b.deliver(statusDelivery(fake.phoneNumberId, [delivered, { ...delivered, status: 'read' }]))).status).toBe(200);
    expect(b.recorded).toEqual([
      { channel: 'whatsapp', transportId: wamid, state: 'delivered', detail: 'delivered' },
      { channel: 'whatsapp', transportId: wamid, state: 'delivered', detail: 'read' },
    ]);

    // Our window for the citizen is closed: the next notification goes as the template at once.
    await a.adapter.send(outbound(who, 'LAPOR! Status laporan 2486883978: sedang diproses.'));
    expect(fake.sent({ to: who }).at(-1)).toMatchObject({ type: 'template' });
  });

  it('finds the notification when the status overtakes our record of the send', async () => {
    const who = await citizenOutsideMetasWindow();
    const before = new Set(await a.redis.keys(`${a.prefix}:whatsapp:kept:*`));
    const wamid = await freeTextRefusedLater(who, 'LAPOR! Laporan 5723181068 telah diteruskan ke Dinas Pekerjaan Umum.', '5723181068');
    const [kept] = (await a.redis.keys(`${a.prefix}:whatsapp:kept:*`)).filter((k) => !before.has(k));
    const sealed = await a.redis.get(kept!);
    await a.redis.del(kept!);
    const late = setTimeout(() => void a.redis.set(kept!, sealed!, 'PX', 60_000), 300);
    try {
      expect((await b.deliver(statusDelivery(fake.phoneNumberId, [reengagementFailure(wamid, who)]))).status).toBe(200);
    } finally {
      clearTimeout(late);
    }
    expect(templatesTo(who)).toHaveLength(1);
    expect(b.recorded).toEqual([]);
  });

  it('records a wamid it kept nothing for as failed, as before, and sends nothing', async () => {
    const who = newNumber();
    personal.push(who);
    const unknown = `wamid.HBgUNKNOWN${who}`;
    expect((await a.deliver(statusDelivery(fake.phoneNumberId, [reengagementFailure(unknown, who)]))).status).toBe(200);
    expect(a.recorded).toEqual([{ channel: 'whatsapp', transportId: unknown, state: 'failed', detail: 'failed 131047 Re-engagement message' }]);
    expect(fake.sent({ to: who })).toEqual([]);
  });

  it('a template Meta refuses for good leaves the notification failed, with both reasons, and is not tried again', async () => {
    const who = await citizenOutsideMetasWindow();
    const wamid = await freeTextRefusedLater(who, 'LAPOR! Laporan 7153980803 telah diteruskan ke Dinas Pendidikan.', '7153980803');
    fake.fault({ code: 131026, count: 1 });
    const failure = statusDelivery(fake.phoneNumberId, [reengagementFailure(wamid, who)]);
    expect((await a.deliver(failure)).status).toBe(200);
    expect(a.recorded).toEqual([{ channel: 'whatsapp', transportId: wamid, state: 'failed', detail: 'failed 131047 Re-engagement message; template invalid_recipient' }]);
    expect((await b.deliver(failure)).status).toBe(200);
    expect(b.recorded).toEqual([]);
    expect(templatesTo(who)).toEqual([]);
  });

  it('a template that cannot go for now answers 503, so Meta delivers the status again; then it goes once', async () => {
    const who = await citizenOutsideMetasWindow();
    const wamid = await freeTextRefusedLater(who, 'LAPOR! Laporan 9770859096 telah diteruskan ke BPJS Kesehatan.', '9770859096');
    fake.fault({ code: 131000, count: 1 });
    const failure = statusDelivery(fake.phoneNumberId, [reengagementFailure(wamid, who)]);
    expect((await a.deliver(failure)).status).toBe(503);
    expect(templatesTo(who)).toEqual([]);
    expect((await b.deliver(failure)).status).toBe(200);
    expect((await a.deliver(failure)).status).toBe(200);
    expect(templatesTo(who)).toHaveLength(1);
    expect([...a.recorded, ...b.recorded]).toEqual([]);
  });

  it('keeps no number, text or wamid in clear, in Redis or in the logs', async () => {
    const keys = await a.redis.keys(`${a.prefix}:*`);
    expect(keys.length).toBeGreaterThan(5);
    const values = await Promise.all(keys.map((k) => a.redis.get(k)));
    const stored = [...keys, ...values].join('\n');
    const logs = [...a.logs, ...b.logs].join('\n');
    const wamids = fake.sent().map((s) => s.wamid);
    expect(personal.length).toBeGreaterThan(8);
    for (const secret of [...personal, ...wamids]) {
      expect(stored, secret).not.toContain(secret);
      expect(logs, secret).not.toContain(secret);
    }
  });
});
