import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SmscSimulator } from '../../../scripts/smsc/simulator.ts';
import { eventually, type TestEnv } from '../../helpers/env.ts';
import { contactHashOf, numbers, smsGateway } from '../../helpers/sms.ts';

/**
 * The abuse shield in front of the SMS intake: a number past LAPOR_SMPP_RATE_LIMIT_PER_HOUR, or on
 * the blocklist, is acknowledged (a retry would not help) but files nothing.
 */

let sim: SmscSimulator;
let env: TestEnv;
let close: () => Promise<void>;
const newNumber = numbers('+62815');
const blocked = newNumber();

beforeAll(async () => {
  ({ sim, env, close } = await smsGateway({ LAPOR_SMPP_RATE_LIMIT_PER_HOUR: '3', LAPOR_SMPP_BLOCKLIST: blocked }));
});
afterAll(async () => {
  await close?.();
});

const reportsFrom = async (number: string) =>
  (await env.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM reports WHERE contact_hash = $1', [contactHashOf(env, number)])).rows[0]!.n;

describe('the SMS abuse shield', () => {
  it('files at most the hourly limit of one number, counting messages that arrive together, and leaves other numbers alone', async () => {
    const flooder = newNumber();
    const other = newNumber();
    const texts = Array.from({ length: 6 }, (_, i) => `Pengaduan ke-${i}: pungutan liar di loket samsat kota, tiap warga diminta uang tambahan.`);
    const acks = await Promise.all([...texts.map((text) => sim.sendMo({ from: flooder, text })), sim.sendMo({ from: other, text: texts[0]! })]);
    expect(acks.flatMap((a) => a.statuses).every((s) => s === 0)).toBe(true);
    await eventually(async () => ((await reportsFrom(other)) === 1 ? true : undefined), 10_000, 'the other number filed');
    await eventually(async () => ((await reportsFrom(flooder)) === 3 ? true : undefined), 10_000, 'three reports filed');
    await new Promise((r) => setTimeout(r, 300));
    expect(await reportsFrom(flooder)).toBe(3);
    // Every counter expires within the hour it counts.
    const keys = await env.runtime.producer.keys(`${env.config.queue.prefix}:sms:rate:*`);
    expect(keys.length).toBeGreaterThanOrEqual(2);
    for (const key of keys) {
      const ttl = await env.runtime.producer.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(3_600_000);
    }
  });

  it('acknowledges a blocked number and files nothing from it', async () => {
    const ack = await sim.sendMo({ from: blocked, text: 'Jalan rusak parah di depan kantor kecamatan, mohon segera diperbaiki.' });
    expect(ack.statuses).toEqual([0]);
    await new Promise((r) => setTimeout(r, 500));
    expect(await reportsFrom(blocked)).toBe(0);
  });
});
