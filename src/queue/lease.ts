import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * One holder across every process (an SMSC bind, the X poller): a Redis key holding the owner's id, set with
 * NX and a TTL, renewed while held. When the holder dies the key expires and another process takes
 * over. Renewal and release compare the owner first, so a process never extends or deletes a lease
 * it lost.
 */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export class Lease {
  private timer: NodeJS.Timeout | undefined;
  private held = false;
  private stopped = false;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly key: string,
    private readonly owner: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly onChange: (held: boolean) => void,
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  /** Tries now and then every third of the TTL: take the lease when free, renew it while held. */
  start(): void {
    this.stopped = false;
    void this.tick();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const ok = this.held
        ? (await this.redis.eval(RENEW, 1, this.key, this.owner, this.ttlMs)) === 1
        : (await this.redis.set(this.key, this.owner, 'PX', this.ttlMs, 'NX')) === 'OK';
      this.set(ok);
    } catch (err) {
      // Redis unreachable: we cannot prove we still hold it, and after the TTL someone else may.
      this.log.warn({ err: { message: (err as Error).message }, lease: this.key }, 'lease check failed');
      this.set(false);
    }
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), Math.max(100, Math.floor(this.ttlMs / 3)));
      this.timer.unref();
    }
  }

  private set(held: boolean): void {
    if (held === this.held) return;
    this.held = held;
    this.onChange(held);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.held) await this.redis.eval(RELEASE, 1, this.key, this.owner).catch(() => undefined);
    this.set(false);
  }
}
