import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markOutboundMany, recordDeliveries } from '../../src/store/reports.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';

/**
 * Delivery receipts applied many at once (src/store/reports.ts recordDeliveries): parts of one
 * message merged, in order, whatever the batch mixes.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv({ workers: false });
});
afterAll(async () => {
  await env?.close();
});

let counter = 0;
/** A reply as notify leaves it: queued, then marked sent with the SMSC's id of each segment. */
async function sentMessage(parts: string[]): Promise<string> {
  const { rows } = await env.runtime.db.query<{ id: string }>(
    `INSERT INTO messages (direction, channel, notify_key, kind, sealed_text, status) VALUES ('out', 'sms', $1, 'received', 'x', 'queued') RETURNING id::text`,
    [`n_deliveries_${counter++}_${Date.now()}`],
  );
  await markOutboundMany(env.runtime.db, [{ id: rows[0]!.id, status: 'sent', transportId: parts.join(' ') }]);
  return rows[0]!.id;
}

const stateOf = async (id: string) =>
  (await env.runtime.db.query<{ status: string; delivery: Record<string, string>; error: string | null }>('SELECT status, delivery, error FROM messages WHERE id = $1', [id])).rows[0]!;

const receipt = (transportId: string, state: 'delivered' | 'failed' | 'pending', detail = state.toUpperCase()) => ({ channel: 'sms', transportId, state, detail });

describe('recordDeliveries', () => {
  it('delivers a message once every part is, merging parts that arrive in the same batch', async () => {
    const tag = `m${Date.now()}`;
    const three = await sentMessage([`${tag}a`, `${tag}b`, `${tag}c`]);
    const other = await sentMessage([`${tag}x`]);
    expect(await recordDeliveries(env.runtime.db, [receipt(`${tag}a`, 'pending'), receipt(`${tag}a`, 'delivered'), receipt(`${tag}x`, 'delivered'), receipt(`${tag}b`, 'delivered')])).toEqual([
      'updated',
      'updated',
      'updated',
      'updated',
    ]);
    // The later receipt for part a wins; part c is still missing.
    expect(await stateOf(three)).toMatchObject({ status: 'sent', delivery: { [`${tag}a`]: 'delivered', [`${tag}b`]: 'delivered' } });
    expect((await stateOf(other)).status).toBe('delivered');
    await recordDeliveries(env.runtime.db, [receipt(`${tag}c`, 'delivered')]);
    expect((await stateOf(three)).status).toBe('delivered');
  });

  it('fails a message as soon as one part failed, keeps the reason, and tells unknown ids apart', async () => {
    const tag = `f${Date.now()}`;
    const two = await sentMessage([`${tag}a`, `${tag}b`]);
    expect(await recordDeliveries(env.runtime.db, [receipt(`${tag}a`, 'delivered'), receipt('no-such-id', 'delivered'), receipt(`${tag}b`, 'failed', 'UNDELIV err:001')])).toEqual([
      'updated',
      'unknown',
      'updated',
    ]);
    expect(await stateOf(two)).toMatchObject({ status: 'failed', error: 'receipt: UNDELIV err:001' });
    // A late "delivered" for the failed part does not undo the failure.
    await recordDeliveries(env.runtime.db, [receipt(`${tag}b`, 'delivered')]);
    expect((await stateOf(two)).status).toBe('failed');
  });

  it('names the newest message when an SMSC reuses a transport id', async () => {
    const reused = `r${Date.now()}`;
    const old = await sentMessage([reused]);
    const fresh = await sentMessage([reused]);
    await recordDeliveries(env.runtime.db, [receipt(reused, 'delivered')]);
    expect((await stateOf(fresh)).status).toBe('delivered');
    expect((await stateOf(old)).status).toBe('sent');
  });
});
