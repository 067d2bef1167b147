import { describe, expect, it } from 'vitest';
import { Pacer } from '../../../adapters/telegram/pace.ts';

/** The pacer on a clock of its own: when each send may go. */
function clocked(options: { perChatMs: number; perSecond: number }) {
  let now = 0;
  const pacer = new Pacer(options, () => now, async (ms) => {
    now += ms;
  });
  return { pacer, at: () => now };
}

describe('Pacer', () => {
  it('spaces messages to one chat a second apart, and lets other chats through meanwhile', async () => {
    const { pacer, at } = clocked({ perChatMs: 1_000, perSecond: 30 });
    const times: number[] = [];
    for (const chat of ['a', 'b', 'a', 'c', 'a']) {
      await pacer.take(chat);
      times.push(at());
    }
    expect(times).toEqual([0, 0, 1_000, 1_000, 2_000]);
  });

  it('lets at most perSecond messages go in any second overall', async () => {
    const { pacer, at } = clocked({ perChatMs: 1_000, perSecond: 3 });
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      await pacer.take(`chat${i}`);
      times.push(at());
    }
    expect(times).toEqual([0, 0, 0, 1_000, 1_000, 1_000, 2_000]);
  });
});
