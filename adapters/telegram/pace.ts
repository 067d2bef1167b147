/**
 * Telegram's flood limits for a bot: about 30 messages a second overall and one a second per chat
 * (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this). Each send
 * waits here for its turn, so a burst of replies is spread out instead of meeting 429s. Per process:
 * with several processes sending, Telegram's 429 and retry_after (the notify queue's pause) are the
 * backstop.
 */
export class Pacer {
  private readonly nextPerChat = new Map<string, number>();
  private readonly recent: number[] = [];

  constructor(
    private readonly options: { perChatMs: number; perSecond: number } = { perChatMs: 1_000, perSecond: 30 },
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  /** Resolves when a message to `chat` may go; the turn is taken on resolving. */
  async take(chat: string): Promise<void> {
    for (;;) {
      const t = this.now();
      while (this.recent.length && this.recent[0]! <= t - 1_000) this.recent.shift();
      const chatWait = (this.nextPerChat.get(chat) ?? 0) - t;
      const overallWait = this.recent.length >= this.options.perSecond ? this.recent[0]! + 1_000 - t : 0;
      const wait = Math.max(chatWait, overallWait);
      if (wait <= 0) {
        this.nextPerChat.set(chat, t + this.options.perChatMs);
        this.recent.push(t);
        if (this.nextPerChat.size > 10_000) for (const [c, at] of this.nextPerChat) if (at <= t) this.nextPerChat.delete(c);
        return;
      }
      await this.sleep(wait);
    }
  }
}
