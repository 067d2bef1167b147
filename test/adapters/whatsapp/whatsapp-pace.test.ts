import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pacer, type PaceOptions } from '../../../adapters/whatsapp/pace.ts';
import { SendError } from '../../../src/core/errors.ts';
import { FakeWhatsAppApi } from '../../../scripts/whatsapp/fake-api.ts';
import { eventually } from '../../helpers/env.ts';
import { adapterHarness, oneReportOf, outbound, waNumbers, whatsappGateway, type AdapterHarness, type WhatsAppGateway } from '../../helpers/whatsapp.ts';

/**
 * Pacing against Meta's limits (adapters/whatsapp/pace.ts): on a clock of its own, then the adapter
 * against a fake Cloud API that enforces the pair rate, then the notify worker meeting a 131056.
 */

function clocked(options: Partial<PaceOptions>) {
  let now = 0;
  const pacer = new Pacer(options, () => now, async (ms) => {
    now += ms;
  });
  return { pacer, at: () => now, advance: (ms: number) => void (now += ms) };
}

describe('Pacer', () => {
  it('lets a burst to one citizen go, then one every pair interval, while others go at once', async () => {
    const { pacer, at } = clocked({ pairIntervalMs: 6_000, pairBurst: 3, maxWaitMs: 60_000 });
    const times: string[] = [];
    for (const who of ['a', 'a', 'a', 'b', 'a', 'c', 'a', 'b']) {
      expect(await pacer.take(who)).toEqual({ ok: true });
      times.push(`${who}@${at()}`);
    }
    expect(times).toEqual(['a@0', 'a@0', 'a@0', 'b@0', 'a@6000', 'c@6000', 'a@12000', 'b@12000']);
  });

  it('refills a citizen’s burst as time passes', async () => {
    const { pacer, at, advance } = clocked({ pairIntervalMs: 1_000, pairBurst: 2, maxWaitMs: 60_000 });
    await pacer.take('a');
    await pacer.take('a');
    advance(5_000);
    await pacer.take('a');
    await pacer.take('a');
    expect(at()).toBe(5_000);
    await pacer.take('a');
    expect(at()).toBe(6_000);
  });

  it('waits for a turn up to maxWaitMs away; refuses a further one at once, taking nothing', async () => {
    const { pacer, at } = clocked({ pairIntervalMs: 6_000, pairBurst: 1, maxWaitMs: 7_000 });
    expect(await pacer.take('a')).toEqual({ ok: true });
    expect(await pacer.take('a')).toEqual({ ok: true });
    expect(at()).toBe(6_000);
    const { pacer: strict, at: strictAt } = clocked({ pairIntervalMs: 6_000, pairBurst: 1, maxWaitMs: 5_000 });
    await strict.take('a');
    expect(await strict.take('a')).toEqual({ ok: false, waitMs: 6_000 });
    expect(await strict.take('a')).toEqual({ ok: false, waitMs: 6_000 });
    expect(strictAt()).toBe(0);
    expect(await strict.take('b')).toEqual({ ok: true });
  });

  it('holds a citizen Meta refused (131056) back for a pair interval, their burst spent', async () => {
    const { pacer, at } = clocked({ pairIntervalMs: 6_000, pairBurst: 5, maxWaitMs: 60_000 });
    await pacer.take('a');
    pacer.refused('a');
    await pacer.take('b');
    expect(at()).toBe(0);
    await pacer.take('a');
    expect(at()).toBe(6_000);
    await pacer.take('a');
    expect(at()).toBe(12_000);
  });

  it('lets at most perSecond messages go in any second overall', async () => {
    const { pacer, at } = clocked({ perSecond: 3 });
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      await pacer.take(`citizen${i}`);
      times.push(at());
    }
    expect(times).toEqual([0, 0, 0, 1_000, 1_000, 1_000, 2_000]);
  });
});

describe('the adapter against a fake that enforces the pair rate', () => {
  let fake: FakeWhatsAppApi;
  let paced: AdapterHarness;
  let bursty: AdapterHarness;
  const newNumber = waNumbers();

  beforeAll(async () => {
    fake = await FakeWhatsAppApi.start({ pairRate: { intervalMs: 400, burst: 2 } });
    // A little slower than the fake's limit: requests reach it later than they leave, by varying delays.
    paced = await adapterHarness(fake, { pace: { pairIntervalMs: 450, pairBurst: 2, maxWaitMs: 5_000 } });
    bursty = await adapterHarness(fake, { pace: { pairIntervalMs: 400, pairBurst: 5, maxWaitMs: 5_000 } });
  });
  afterAll(async () => {
    await paced?.close();
    await bursty?.close();
    await fake?.stop();
  });

  it('spaces a burst to one citizen so Meta refuses none, and does not hold up another citizen', async () => {
    const [a, b] = [newNumber(), newNumber()];
    const started = Date.now();
    const toA = Array.from({ length: 5 }, (_, i) => paced.adapter.send(outbound(a, `kabar ${i}`)));
    const toB = paced.adapter.send(outbound(b, 'kabar untuk b'));
    await toB;
    const bDoneMs = Date.now() - started;
    await Promise.all(toA);
    const allDoneMs = Date.now() - started;
    expect(fake.stats().errors[131056] ?? 0).toBe(0);
    expect(fake.sent({ to: a })).toHaveLength(5);
    // Two at once, then one each 450 ms: the last to A goes 1.35 s after the first; B's went at once.
    expect(allDoneMs).toBeGreaterThanOrEqual(1_300);
    expect(bDoneMs).toBeLessThan(allDoneMs - 800);
  });

  it('a 131056 is a throttle of that citizen only: no pause asked of the queue, another citizen goes, this one is held back', async () => {
    const [a, b] = [newNumber(), newNumber()];
    // Burstier than the fake allows: the third message at once is refused.
    await bursty.adapter.send(outbound(a, 'satu'));
    await bursty.adapter.send(outbound(a, 'dua'));
    const refused = await bursty.adapter.send(outbound(a, 'tiga')).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SendError);
    expect(refused).toMatchObject({ code: 'throttled', retryable: true, retryAfterMs: undefined });
    expect((refused as Error).message).toContain('131056');
    const errors = fake.stats().errors[131056];
    await bursty.adapter.send(outbound(b, 'lain'));
    // Held back here for a pair interval, instead of being sent into another refusal.
    const before = Date.now();
    await bursty.adapter.send(outbound(a, 'empat'));
    expect(Date.now() - before).toBeGreaterThanOrEqual(350);
    expect(fake.stats().errors[131056]).toBe(errors);
    expect(fake.sent({ to: a }).map((s) => s.template?.components)).toHaveLength(3);
  });
});

describe('the notify worker meeting a 131056', () => {
  let gw: WhatsAppGateway;
  const newNumber = waNumbers();

  beforeAll(async () => {
    gw = await whatsappGateway({}, { pairRate: false });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('retries that citizen’s reply alone, later, once; the queue is not paused for the others', async () => {
    const { fake, env } = gw;
    const limiter = `${env.config.queue.prefix}:notify-whatsapp:limiter`;
    const [a, b] = [newNumber(), newNumber()];
    fake.fault({ code: 131056, count: 1 });
    fake.text({ from: a, text: 'saluran air tersumbat sampah di gang Kenari' });
    await oneReportOf(env, a);
    await eventually(async () => (fake.stats().errors[131056] === 1 ? true : undefined), 10_000, 'the 131056');
    fake.text({ from: b, text: 'lampu penerangan jalan padam di Jl. Cempaka' });
    let paused = false;
    const receiptB = await eventually(async () => {
      // The notify workers' limiter counts each job for a second; a pause (rateLimit) sets it for 5 s.
      if ((await env.runtime.producer.pttl(limiter)) > 1_000) paused = true;
      return fake.sent({ to: b }).find((s) => /diterima/.test(JSON.stringify(s)));
    }, 10_000, 'the receipt to b');
    expect(paused).toBe(false);
    expect(receiptB).toBeDefined();
    // A's receipt waits for A's pair interval (6 s), then goes once.
    const receiptA = await eventually(async () => fake.sent({ to: a }).find((s) => /diterima/.test(JSON.stringify(s))), 15_000, 'the receipt to a');
    expect(receiptA.index).toBeGreaterThan(receiptB.index);
    await fake.idle();
    expect(fake.sent({ to: a }).filter((s) => /diterima/.test(JSON.stringify(s)))).toHaveLength(1);
    expect(paused).toBe(false);
  });
});
