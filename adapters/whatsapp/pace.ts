/**
 * Meta's sending limits for one business number (Cloud API, observed on v21.0):
 *
 * - throughput: 80 messages a second by default, all recipients together (error 130429 beyond it;
 *   https://developers.facebook.com/docs/whatsapp/throughput);
 * - pair rate: one message every 6 seconds to the same WhatsApp user on average; a short burst is
 *   allowed but borrows from the following seconds (error 131056 "pair rate limit hit").
 *
 * Each send takes its turn here, so a burst of notifications is spread out instead of meeting those
 * errors. The pair rate is a GCRA (a leaky bucket with a burst): a citizen's turn waits only that
 * citizen's sends, never another's. A turn further away than `maxWaitMs` is not waited for: the send
 * is refused as throttled and its notify job retried later, so a citizen with a backlog does not hold
 * a worker slot (and its database transaction) for long.
 *
 * Per process, as Telegram's pacer: with several processes sending, Meta's own errors are the
 * backstop — 130429 pauses the `notify-whatsapp` queue in every process, 131056 retries only the job
 * of that citizen and makes `refused()` hold them back here.
 */
export interface PaceOptions {
  /**
   * Messages a second, every recipient together.
   * @defaultValue 80
   */
  perSecond: number;
  /**
   * The pair rate: on average one message to one citizen every this many milliseconds.
   * @defaultValue 6_000
   */
  pairIntervalMs: number;
  /**
   * Messages one citizen may get at once before the pair rate spaces them (Meta allows more; a
   * receipt, a button's answer and a status fit in this).
   * @defaultValue 5
   */
  pairBurst: number;
  /**
   * Longest a send waits here for a citizen's turn; past it the send is refused as throttled.
   * @defaultValue 7_000
   */
  maxWaitMs: number;
}

export const DEFAULT_PACE: PaceOptions = { perSecond: 80, pairIntervalMs: 6_000, pairBurst: 5, maxWaitMs: 7_000 };

export type Turn = { ok: true } | { ok: false; waitMs: number };

export class Pacer {
  /** Per recipient: the GCRA's theoretical arrival time of its next message. */
  private readonly due = new Map<string, number>();
  private readonly recent: number[] = [];
  private readonly options: PaceOptions;

  constructor(
    options: Partial<PaceOptions> = {},
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    this.options = { ...DEFAULT_PACE, ...options };
  }

  /** How far ahead of now a recipient's due time may run: the burst. */
  private get tolerance(): number {
    return (this.options.pairBurst - 1) * this.options.pairIntervalMs;
  }

  /**
   * Resolves when a message to `recipient` (a keyed hash, not the number) may go, the turn taken; or
   * at once, nothing taken, when that is more than `maxWaitMs` away.
   */
  async take(recipient: string): Promise<Turn> {
    for (;;) {
      const t = this.now();
      while (this.recent.length && this.recent[0]! <= t - 1_000) this.recent.shift();
      const due = Math.max(this.due.get(recipient) ?? t, t);
      const pairWait = due - this.tolerance - t;
      if (pairWait > this.options.maxWaitMs) return { ok: false, waitMs: pairWait };
      const overallWait = this.recent.length >= this.options.perSecond ? this.recent[0]! + 1_000 - t : 0;
      const wait = Math.max(pairWait, overallWait);
      if (wait <= 0) {
        this.due.set(recipient, due + this.options.pairIntervalMs);
        this.recent.push(t);
        if (this.due.size > 10_000) for (const [r, at] of this.due) if (at <= t) this.due.delete(r);
        return { ok: true };
      }
      await this.sleep(wait);
    }
  }

  /** Meta refused a message to `recipient` (131056): their burst is spent; the next goes a pair interval from now. */
  refused(recipient: string): void {
    const t = this.now();
    this.due.set(recipient, Math.max(this.due.get(recipient) ?? t, t + this.tolerance + this.options.pairIntervalMs));
  }
}
