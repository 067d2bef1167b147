import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmscSimulator } from '../../../scripts/smsc/simulator.ts';
import { freePort } from '../../../src/local/services.ts';
import { notifyEffect } from '../../../src/queue/queues.ts';
import { createTestEnv, eventually, type TestEnv } from '../../helpers/env.ts';
import { smsBindVars } from '../../helpers/sms.ts';

/**
 * A process that cannot send SMS — its SMSC not bound yet, or the bind held by another process —
 * leaves SMS replies waiting for one that can, instead of failing them and spending their attempts
 * (ten failures would make a dead letter of a reply nobody could send from here).
 */

let env: TestEnv;
let port: number;
let sim: SmscSimulator | undefined;
beforeAll(async () => {
  port = await freePort();
  env = await createTestEnv({
    channels: ['sms'],
    env: smsBindVars(port),
  });
});
afterAll(async () => {
  await env?.close();
  await sim?.close();
});

describe('SMS replies while this process cannot send', () => {
  it('wait, attempt-free, until the SMSC is bound, and are sent then', async () => {
    await new Promise((r) => setTimeout(r, 600)); // the notify worker has found it cannot send
    const to = '+6281298760001';
    const key = `n_standby_${Date.now()}_help`;
    const target = env.runtime.keys.seal('queue', { to, replyContext: { smsc: 'sim', shortCode: '1708' } });
    await env.runtime.queues.addEffects([notifyEffect('sms', { notifyKey: key, kind: 'help', lang: 'id', target, vars: {} })]);
    await new Promise((r) => setTimeout(r, 1_500));
    const job = await env.runtime.queues.notify.get('sms')!.getJob(key);
    expect(['waiting', 'delayed']).toContain(await job!.getState());
    expect(job!.attemptsMade).toBe(0);

    sim = await SmscSimulator.start({ systemId: 'lapor', password: 'secret', port });
    await sim.waitForBind(10_000);
    const reply = await eventually(async () => sim!.replies().find((r) => r.to === to && r.complete), 10_000, 'the reply sent once bound');
    expect(reply.text).toMatch(/LAPOR/);
    expect((await env.runtime.queues.notify.get('sms')!.getJob(key))!.attemptsMade).toBeLessThanOrEqual(1);
  });
});
