import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/queue/coalescer.ts';

/** A flush that the test releases by hand, recording each batch it was given. */
function gatedFlush() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const flush = async (items: number[]) => {
    batches.push(items);
    await new Promise<void>((resolve) => gates.push(resolve));
    if (items.includes(-1)) throw new Error('store failed');
    return items.map((i) => i * 10);
  };
  return { batches, flush, release: () => gates.shift()?.() };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('Coalescer', () => {
  it('flushes a lone item at the end of the turn it arrived in, not later', async () => {
    const { batches, flush, release } = gatedFlush();
    const c = new Coalescer<number, number>({ maxItems: 64, maxBytes: 1e6, maxWaitMs: 1_000, maxInFlight: 2 }, flush, () => 1);
    const result = c.add(1);
    expect(batches).toEqual([]);
    await turn();
    expect(batches).toEqual([[1]]);
    release();
    expect(await result).toBe(10);
  });

  it('gathers what arrives in one turn into one batch, and lets batches grow while flushes are in flight', async () => {
    const { batches, flush, release } = gatedFlush();
    const c = new Coalescer<number, number>({ maxItems: 64, maxBytes: 1e6, maxWaitMs: 1_000, maxInFlight: 1 }, flush, () => 1);
    const first = [1, 2, 3].map((i) => c.add(i));
    await turn();
    const second = [4, 5].map((i) => c.add(i));
    await turn();
    const third = [6].map((i) => c.add(i));
    await turn();
    // One flush in flight: 4, 5 and 6 wait for it, together.
    expect(batches).toEqual([[1, 2, 3]]);
    release();
    expect(await Promise.all(first)).toEqual([10, 20, 30]);
    await turn();
    expect(batches).toEqual([[1, 2, 3], [4, 5, 6]]);
    release();
    expect(await Promise.all([...second, ...third])).toEqual([40, 50, 60]);
  });

  it('flushes at once on the item or byte limit, and after the longest wait when busy', async () => {
    const { batches, flush, release } = gatedFlush();
    const c = new Coalescer<number, number>({ maxItems: 3, maxBytes: 100, maxWaitMs: 20, maxInFlight: 1 }, flush, (i) => (i >= 50 ? 60 : 1));
    const all = [1, 2, 3].map((i) => c.add(i));
    expect(batches).toEqual([[1, 2, 3]]); // synchronously: the third item filled the batch
    all.push(c.add(50), c.add(51)); // 120 bytes: over the byte limit
    expect(batches).toEqual([[1, 2, 3], [50, 51]]);
    all.push(c.add(7)); // two flushes in flight, one allowed: waits, but not past maxWaitMs
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(batches).toEqual([[1, 2, 3], [50, 51], [7]]);
    release();
    release();
    release();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 500, 510, 70]);
  });

  it('rejects every item of a failed flush, and only those', async () => {
    const { flush, release } = gatedFlush();
    const c = new Coalescer<number, number>({ maxItems: 2, maxBytes: 1e6, maxWaitMs: 1_000, maxInFlight: 4 }, flush, () => 1);
    const failed = [c.add(-1), c.add(2)];
    const fine = [c.add(3), c.add(4)];
    release();
    release();
    await expect(failed[0]).rejects.toThrow('store failed');
    await expect(failed[1]).rejects.toThrow('store failed');
    expect(await Promise.all(fine)).toEqual([30, 40]);
  });
});
