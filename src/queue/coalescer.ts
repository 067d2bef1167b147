/**
 * Gathers what arrives together into one batch, so many messages share one durable write.
 *
 * Adaptive, so it adds no latency at low load: a lone item is flushed at the end of the event-loop
 * turn it arrived in (`setImmediate`). Under load, while `maxInFlight` flushes are still waiting for
 * Redis, newcomers wait for one of them to finish — that is when batches grow — but never longer than
 * `maxWaitMs`, and a batch is flushed at once when it reaches `maxItems` or `maxBytes`.
 *
 * `flush` settles each item of the batch: it returns one result per item, in order, or throws, which
 * rejects every item of that batch.
 */
export interface CoalescerOptions {
  maxItems: number;
  maxBytes: number;
  maxWaitMs: number;
  maxInFlight: number;
}

interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export class Coalescer<T, R> {
  private pending: Pending<T, R>[] = [];
  private pendingBytes = 0;
  private inFlight = 0;
  private turn: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: CoalescerOptions,
    private readonly flush: (items: T[]) => Promise<R[]>,
    private readonly sizeOf: (item: T) => number,
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.pendingBytes += this.sizeOf(item);
      if (this.pending.length >= this.options.maxItems || this.pendingBytes >= this.options.maxBytes) this.flushNow();
      else this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight < this.options.maxInFlight) {
      this.turn ??= setImmediate(() => {
        this.turn = undefined;
        if (this.inFlight < this.options.maxInFlight) this.flushNow();
        else this.schedule();
      });
    } else {
      // Busy: wait for a flush to finish (see `settled`), but not past the longest wait.
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.flushNow();
      }, this.options.maxWaitMs);
    }
  }

  private flushNow(): void {
    if (this.turn) clearImmediate(this.turn);
    if (this.timer) clearTimeout(this.timer);
    this.turn = this.timer = undefined;
    const batch = this.pending;
    if (!batch.length) return;
    this.pending = [];
    this.pendingBytes = 0;
    this.inFlight++;
    this.run(batch).finally(() => {
      this.inFlight--;
      if (this.pending.length) this.schedule();
    });
  }

  private async run(batch: Pending<T, R>[]): Promise<void> {
    try {
      const results = await this.flush(batch.map((p) => p.item));
      if (results.length !== batch.length) throw new Error(`coalescer flush returned ${results.length} results for ${batch.length} items`);
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
