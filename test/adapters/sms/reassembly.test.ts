import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { concatGroupKey, type ConcatInfo } from '../../../adapters/sms/concat.ts';
import { Reassembler, type AddResult, type PartInput } from '../../../adapters/sms/reassembly.ts';

const prefix = `{t${randomBytes(5).toString('hex')}}`;
const TIMEOUT_MS = 5_000;
let redis: Redis;
let other: Redis;
let reassembler: Reassembler;

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
  other = new Redis(inject('redisUrl'));
  reassembler = new Reassembler(redis, { prefix, timeoutMs: TIMEOUT_MS });
});
afterAll(() => {
  redis?.disconnect();
  other?.disconnect();
});

let groups = 0;
/**
 * A group key no other test uses, built the way the adapter builds it. The sender varies with it:
 * the 8-bit reference wraps after 256 groups, and a wrapped key with the same texts would meet an
 * earlier group's tombstone.
 */
function freshGroup(total: number, concat: Partial<ConcatInfo> = {}, source?: string): string {
  groups += 1;
  return concatGroupKey({
    account: 'tsel-1',
    source: source ?? `628${100_000_000 + groups}`,
    destination: '1708',
    concat: { ref: groups % 256, refBits: 8, total, seq: 1, ...concat },
  });
}
const part = (groupKey: string, seq: number, total: number, data = `part ${seq} of ${total}`): PartInput => ({
  groupKey,
  seq,
  total,
  data,
  receivedAt: `2026-01-05T10:00:0${seq % 10}.000Z`,
});

async function keysUnderPrefix(): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

const isTombstone = (key: string): boolean => key.startsWith(`${prefix}:sms:concat:released:`);
/** Every key but the tombstones released groups leave behind: what is left once all is released. */
const liveKeys = async (): Promise<string[]> => (await keysUnderPrefix()).filter((key) => !isTombstone(key));
const tombstones = async (): Promise<string[]> => (await keysUnderPrefix()).filter(isTombstone);
/** The tombstones that appeared while `action` ran. */
async function newTombstones(action: () => Promise<unknown>): Promise<string[]> {
  const before = new Set(await tombstones());
  await action();
  return (await tombstones()).filter((key) => !before.has(key));
}

/** Clears what a test left behind (e.g. a failed run), so the SCAN checks start from nothing. */
async function releaseEverything(): Promise<void> {
  for (const group of await reassembler.takeExpired(new Date(Date.now() + 100 * TIMEOUT_MS), { limit: 10_000, claimMs: 1 })) {
    await reassembler.release(group.groupKey);
  }
  expect(await liveKeys()).toEqual([]);
}

const completes = (results: AddResult[]) => results.filter((r) => r.status === 'complete');

describe('Reassembler.add', () => {
  it('joins parts in order, reversed and shuffled with duplicates: exactly one complete, parts ordered', async () => {
    const arrival = fc
      .integer({ min: 1, max: 8 })
      .chain((total) =>
        fc.record({
          total: fc.constant(total),
          order: fc.shuffledSubarray(
            Array.from({ length: total }, (_, i) => i + 1),
            { minLength: total, maxLength: total },
          ),
          duplicates: fc.array(fc.tuple(fc.integer({ min: 1, max: total }), fc.nat()), { maxLength: 6 }),
        }),
      )
      .map(({ total, order, duplicates }) => {
        const sequence = [...order];
        // A duplicate goes anywhere after the first copy of its part (an SMSC resends what it sent).
        for (const [seq, at] of duplicates) {
          const first = sequence.indexOf(seq);
          sequence.splice(first + 1 + (at % (sequence.length - first)), 0, seq);
        }
        return { total, sequence };
      });
    const inOrder = { total: 5, sequence: [1, 2, 3, 4, 5] };
    const reversed = { total: 5, sequence: [5, 4, 3, 2, 1] };

    await fc.assert(
      fc.asyncProperty(arrival, async ({ total, sequence }) => {
        const groupKey = freshGroup(total);
        const results: AddResult[] = [];
        for (const seq of sequence) results.push(await reassembler.add(part(groupKey, seq, total)));

        // The complete comes exactly when the last missing part first arrives; copies are duplicates.
        const seen = new Set<number>();
        results.forEach((result, i) => {
          const seq = sequence[i]!;
          const fresh = !seen.has(seq);
          seen.add(seq);
          const expected = !fresh ? 'duplicate' : seen.size === total ? 'complete' : 'stored';
          expect(result.status).toBe(expected);
          if (result.status === 'stored') expect(result).toEqual({ status: 'stored', received: seen.size, total });
        });
        const [complete] = completes(results);
        expect(complete).toEqual({
          status: 'complete',
          parts: Array.from({ length: total }, (_, i) => ({ seq: i + 1, data: `part ${i + 1} of ${total}`, receivedAt: part(groupKey, i + 1, total).receivedAt })),
        });
        await reassembler.release(groupKey);
      }),
      { numRuns: 60, examples: [[inOrder], [reversed]] },
    );
    expect(await liveKeys()).toEqual([]);
  });

  it('keeps the first copy of a part and reports later copies as duplicates, also after completion until release', async () => {
    const groupKey = freshGroup(2);
    expect(await reassembler.add(part(groupKey, 2, 2, 'dua'))).toEqual({ status: 'stored', received: 1, total: 2 });
    expect(await reassembler.add(part(groupKey, 2, 2, 'changed'))).toEqual({ status: 'duplicate', received: 1, total: 2 });
    const complete = await reassembler.add(part(groupKey, 1, 2, 'satu'));
    expect(complete).toMatchObject({ status: 'complete', parts: [{ seq: 1, data: 'satu' }, { seq: 2, data: 'dua' }] });
    // Redelivered after completion (e.g. the SMSC missed our deliver_sm_resp): not a second message.
    expect(await reassembler.add(part(groupKey, 1, 2, 'satu'))).toEqual({ status: 'duplicate', received: 2, total: 2 });
    expect(await reassembler.add(part(groupKey, 2, 2, 'dua'))).toEqual({ status: 'duplicate', received: 2, total: 2 });
    await reassembler.release(groupKey);
    // Released: the same reference may now carry a new message (other text, so not a late copy).
    expect(await reassembler.add(part(groupKey, 1, 2, 'baru'))).toEqual({ status: 'stored', received: 1, total: 2 });
    await reassembler.release(groupKey);
    expect(await liveKeys()).toEqual([]);
  });

  it('gives exactly one complete when two connections add the parts of one group concurrently', async () => {
    const onOther = new Reassembler(other, { prefix, timeoutMs: TIMEOUT_MS });
    for (let round = 0; round < 25; round++) {
      const total = 2 + (round % 7);
      const groupKey = freshGroup(total);
      const adds: Promise<AddResult>[] = [];
      for (let seq = 1; seq <= total; seq++) {
        // Every part from one side, half of them from the other as well: races on new and on the same parts.
        adds.push(reassembler.add(part(groupKey, seq, total)));
        if (seq % 2 === round % 2) adds.push(onOther.add(part(groupKey, seq, total)));
      }
      const results = await Promise.all(adds);
      expect(completes(results)).toHaveLength(1);
      const [complete] = completes(results);
      expect(complete?.status === 'complete' && complete.parts.map((p) => p.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      await reassembler.release(groupKey);
    }
    expect(await liveKeys()).toEqual([]);
  });

  it('does not mix groups with the same reference from different senders, or 8- and 16-bit references', async () => {
    const keys = [
      freshGroup(2, { ref: 0x34 }, '628111'),
      freshGroup(2, { ref: 0x34 }, '628222'),
      freshGroup(2, { ref: 0x34, refBits: 16 }, '628111'),
      freshGroup(2, { ref: 0x1234, refBits: 16 }, '628111'),
    ];
    for (const [i, key] of keys.entries()) {
      expect(await reassembler.add(part(key, 1, 2, `a${i}`))).toMatchObject({ status: 'stored', received: 1 });
    }
    for (const [i, key] of keys.entries()) {
      const result = await reassembler.add(part(key, 2, 2, `b${i}`));
      expect(result).toMatchObject({ status: 'complete', parts: [{ data: `a${i}` }, { data: `b${i}` }] });
    }
    for (const key of keys) await reassembler.release(key);
    expect(await liveKeys()).toEqual([]);
  });

  it("keeps the group's total when a part announces another one, and never loses a part's text", async () => {
    const groupKey = freshGroup(3);
    expect(await reassembler.add(part(groupKey, 1, 3))).toEqual({ status: 'stored', received: 1, total: 3 });
    // Announces 2 parts: seq 2 still counts towards the group's 3.
    expect(await reassembler.add(part(groupKey, 2, 2))).toEqual({ status: 'stored', received: 2, total: 3 });
    // Announces 5: seq 4 lies beyond the group's total, is kept but doesn't count.
    expect(await reassembler.add(part(groupKey, 4, 5))).toEqual({ status: 'stored', received: 2, total: 3 });
    const complete = await reassembler.add(part(groupKey, 3, 3));
    expect(complete.status === 'complete' && complete.parts.map((p) => p.seq)).toEqual([1, 2, 3, 4]);
    await reassembler.release(groupKey);
  });

  it('rejects a part that is not a sane sequence number (a caller bug, not input)', async () => {
    const groupKey = freshGroup(2);
    const before = (await keysUnderPrefix()).sort();
    await expect(reassembler.add(part(groupKey, 0, 2))).rejects.toThrow(RangeError);
    await expect(reassembler.add(part(groupKey, 3, 2))).rejects.toThrow(RangeError);
    await expect(reassembler.add(part(groupKey, 1, 0))).rejects.toThrow(RangeError);
    expect(await liveKeys()).toEqual([]);
    expect((await keysUnderPrefix()).sort()).toEqual(before);
  });

  it('puts a safety-net TTL on every key it writes', async () => {
    const groupKey = freshGroup(2);
    await reassembler.add(part(groupKey, 1, 2));
    const keys = await liveKeys();
    expect(keys).toHaveLength(2);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(9 * TIMEOUT_MS);
      expect(ttl).toBeLessThanOrEqual(10 * TIMEOUT_MS);
    }
    await reassembler.release(groupKey);
  });
});

describe('Reassembler.takeExpired', () => {
  beforeAll(releaseEverything);

  it('returns a partial group once after the timeout, again only after the claim lapses, and release leaves only an expiring tombstone', async () => {
    const groupKey = freshGroup(4);
    await reassembler.add(part(groupKey, 3, 4, 'tiga'));
    await reassembler.add(part(groupKey, 1, 4, 'satu'));
    await reassembler.add(part(groupKey, 1, 4, 'satu'));

    expect(await reassembler.takeExpired(new Date())).toEqual([]);
    const later = new Date(Date.now() + TIMEOUT_MS + 1_000);
    const claimMs = 30_000;
    const taken = await reassembler.takeExpired(later, { claimMs });
    expect(taken).toEqual([
      {
        groupKey,
        total: 4,
        parts: [
          { seq: 1, data: 'satu', receivedAt: part(groupKey, 1, 4).receivedAt },
          { seq: 3, data: 'tiga', receivedAt: part(groupKey, 3, 4).receivedAt },
        ],
      },
    ]);
    // Claimed: a second sweeper (or the same one on its next tick) doesn't take it again…
    expect(await reassembler.takeExpired(later, { claimMs })).toEqual([]);
    expect(await new Reassembler(other, { prefix, timeoutMs: TIMEOUT_MS }).takeExpired(new Date(later.getTime() + claimMs - 1), { claimMs })).toEqual([]);
    // …until the claim lapses, as when the sweeper died before enqueueing it.
    const retaken = await reassembler.takeExpired(new Date(later.getTime() + claimMs + 1), { claimMs });
    expect(retaken.map((g) => g.groupKey)).toEqual([groupKey]);

    // Only the tombstone remains, and it expires (default: 60 minutes, the SMSC's redelivery window).
    const [tombstone, ...more] = await newTombstones(() => reassembler.release(groupKey));
    expect(more).toEqual([]);
    expect(await liveKeys()).toEqual([]);
    expect(await redis.pttl(tombstone!)).toBeGreaterThan(60 * 60_000 - 5_000);
    expect(await redis.pttl(tombstone!)).toBeLessThanOrEqual(60 * 60_000);
    // Small: a hash per released part, not its text.
    expect(Object.values(await redis.hgetall(tombstone!)).join()).not.toMatch(/satu|tiga/);
    expect(await reassembler.takeExpired(new Date(later.getTime() + 10 * claimMs))).toEqual([]);
  });

  it('lets concurrent sweepers on two connections take each group once', async () => {
    const keys = Array.from({ length: 20 }, () => freshGroup(3));
    for (const key of keys) await reassembler.add(part(key, 2, 3));
    const later = new Date(Date.now() + TIMEOUT_MS + 1_000);
    const sweepers = [reassembler, new Reassembler(other, { prefix, timeoutMs: TIMEOUT_MS })];
    const rounds = await Promise.all(sweepers.flatMap((s) => [s.takeExpired(later, { limit: 7 }), s.takeExpired(later, { limit: 7 })]));
    const rest = await reassembler.takeExpired(later);
    const taken = [...rounds.flat(), ...rest].map((g) => g.groupKey);
    expect(taken.sort()).toEqual([...keys].sort());
    for (const key of keys) await reassembler.release(key);
    expect(await liveKeys()).toEqual([]);
  });

  it('hands a completed but unreleased group to the sweeper a timeout after completion (caller died before enqueueing)', async () => {
    const groupKey = freshGroup(2);
    await reassembler.add(part(groupKey, 1, 2));
    const completedAt = Date.now();
    expect((await reassembler.add(part(groupKey, 2, 2))).status).toBe('complete');
    expect(await reassembler.takeExpired(new Date(completedAt + TIMEOUT_MS - 500))).toEqual([]);
    const [recovered] = await reassembler.takeExpired(new Date(Date.now() + TIMEOUT_MS + 1));
    expect(recovered?.parts).toHaveLength(recovered?.total ?? -1);
    await reassembler.release(groupKey);
    expect(await liveKeys()).toEqual([]);
  });

  it('respects the limit', async () => {
    const keys = Array.from({ length: 5 }, () => freshGroup(2));
    for (const key of keys) await reassembler.add(part(key, 1, 2));
    const later = new Date(Date.now() + TIMEOUT_MS + 1_000);
    expect(await reassembler.takeExpired(later, { limit: 2 })).toHaveLength(2);
    expect(await reassembler.takeExpired(later, { limit: 10 })).toHaveLength(3);
    for (const key of keys) await reassembler.release(key);
  });
});

describe('Reassembler.release tombstones', () => {
  beforeAll(releaseEverything);
  const far = () => new Date(Date.now() + 100 * TIMEOUT_MS);

  /** Adds every part of a fresh group and releases it, as the adapter does once it is complete. */
  async function completedAndReleased(total: number, on = reassembler): Promise<string> {
    const groupKey = freshGroup(total);
    for (let seq = 1; seq <= total; seq++) await on.add(part(groupKey, seq, total));
    await on.release(groupKey);
    return groupKey;
  }

  it('reports a late copy of a released part as a duplicate and opens no group, so no incomplete report follows', async () => {
    const groupKey = await completedAndReleased(3);
    const before = (await keysUnderPrefix()).sort();
    // The SMSC missed our deliver_sm_resp for the last part (bind dropped) and sends it again, maybe twice.
    expect(await reassembler.add(part(groupKey, 3, 3))).toEqual({ status: 'duplicate', received: 3, total: 3 });
    expect(await reassembler.add(part(groupKey, 3, 3))).toEqual({ status: 'duplicate', received: 3, total: 3 });
    expect(await reassembler.add(part(groupKey, 1, 3))).toEqual({ status: 'duplicate', received: 3, total: 3 });
    // Nothing stored: no group, no open-set entry, no new key.
    expect((await keysUnderPrefix()).sort()).toEqual(before);
    expect(await liveKeys()).toEqual([]);
    expect(await reassembler.takeExpired(far(), { limit: 10_000 })).toEqual([]);
  });

  it('knows late copies of a group released after the timeout (partial), but not parts it never had', async () => {
    const groupKey = freshGroup(3);
    await reassembler.add(part(groupKey, 1, 3));
    const [expired] = await reassembler.takeExpired(far(), { limit: 10_000 });
    expect(expired?.groupKey).toBe(groupKey);
    await reassembler.release(groupKey);
    expect(await reassembler.add(part(groupKey, 1, 3))).toEqual({ status: 'duplicate', received: 1, total: 3 });
    expect(await liveKeys()).toEqual([]);
    // Part 2 never arrived before: new text, so it is stored (and reported) rather than lost.
    expect(await reassembler.add(part(groupKey, 2, 3))).toEqual({ status: 'stored', received: 1, total: 3 });
    await reassembler.release(groupKey);
  });

  it('starts a new group for the same key with other data (the 8-bit reference wrapped around)', async () => {
    const groupKey = await completedAndReleased(2);
    expect(await reassembler.add(part(groupKey, 2, 2, 'pesan baru, bagian 2'))).toEqual({ status: 'stored', received: 1, total: 2 });
    // A late copy of the old message meanwhile is still known, and not mixed into the new one.
    expect(await reassembler.add(part(groupKey, 1, 2))).toEqual({ status: 'duplicate', received: 2, total: 2 });
    const complete = await reassembler.add(part(groupKey, 1, 2, 'pesan baru, bagian 1'));
    expect(complete).toMatchObject({ status: 'complete', parts: [{ seq: 1, data: 'pesan baru, bagian 1' }, { seq: 2, data: 'pesan baru, bagian 2' }] });
    await reassembler.release(groupKey);
    // Both messages' parts are remembered now.
    expect((await reassembler.add(part(groupKey, 2, 2))).status).toBe('duplicate');
    expect((await reassembler.add(part(groupKey, 2, 2, 'pesan baru, bagian 2'))).status).toBe('duplicate');
    // The same text at another seq is not a copy of a released part.
    expect(await reassembler.add(part(groupKey, 1, 2, 'part 2 of 2'))).toEqual({ status: 'stored', received: 1, total: 2 });
    await reassembler.release(groupKey);
    expect(await liveKeys()).toEqual([]);
  });

  it('sets the tombstone TTL to tombstoneMs, and once it has expired a late copy opens a group again', async () => {
    const shortLived = new Reassembler(redis, { prefix, timeoutMs: TIMEOUT_MS, tombstoneMs: 300 });
    const tombstoneMs = 2 * 60_000;
    const withWindow = new Reassembler(redis, { prefix, timeoutMs: TIMEOUT_MS, tombstoneMs });
    const [tombstone] = await newTombstones(() => completedAndReleased(2, withWindow));
    expect(await redis.pttl(tombstone!)).toBeGreaterThan(tombstoneMs - 5_000);
    expect(await redis.pttl(tombstone!)).toBeLessThanOrEqual(tombstoneMs);

    let groupKey = '';
    const [brief] = await newTombstones(async () => (groupKey = await completedAndReleased(2, shortLived)));
    expect(await redis.pttl(brief!)).toBeGreaterThan(0);
    expect(await redis.pttl(brief!)).toBeLessThanOrEqual(300);
    expect((await shortLived.add(part(groupKey, 2, 2))).status).toBe('duplicate');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await redis.exists(brief!)).toBe(0);
    expect(await shortLived.add(part(groupKey, 2, 2))).toEqual({ status: 'stored', received: 1, total: 2 });
    await shortLived.release(groupKey);

    // tombstoneMs 0: release leaves nothing at all.
    const none = new Reassembler(redis, { prefix, timeoutMs: TIMEOUT_MS, tombstoneMs: 0 });
    expect(await newTombstones(() => completedAndReleased(2, none))).toEqual([]);
    expect(() => new Reassembler(redis, { prefix, timeoutMs: TIMEOUT_MS, tombstoneMs: -1 })).toThrow(/tombstoneMs/);
    expect(await liveKeys()).toEqual([]);
  });

  it('keeps a second release from wiping the tombstone', async () => {
    const [tombstone] = await newTombstones(async () => {
      const groupKey = await completedAndReleased(2);
      await reassembler.release(groupKey);
    });
    expect(await redis.hlen(tombstone!)).toBe(3);
  });

  it('gives duplicates only when the late copy arrives on two connections at once, also racing the release', async () => {
    const onOther = new Reassembler(other, { prefix, timeoutMs: TIMEOUT_MS });
    for (let round = 0; round < 25; round++) {
      const total = 2 + (round % 4);
      const groupKey = freshGroup(total);
      for (let seq = 1; seq <= total; seq++) await reassembler.add(part(groupKey, seq, total));
      const late = part(groupKey, total, total);
      // Odd rounds: the group is released first. Even rounds: the release races the copies, so each
      // copy meets either the completed group or the tombstone — never neither.
      if (round % 2 === 1) await reassembler.release(groupKey);
      const racing: Promise<unknown>[] = [];
      if (round % 2 === 0) racing.push(reassembler.release(groupKey));
      const adds = [reassembler.add(late), onOther.add(late), onOther.add(late), reassembler.add(late)];
      await Promise.all(racing);
      for (const result of await Promise.all(adds)) expect(result).toEqual({ status: 'duplicate', received: total, total });
      expect(await liveKeys()).toEqual([]);
    }
    expect(await reassembler.takeExpired(far(), { limit: 10_000 })).toEqual([]);
  });
});
