import type { Cluster, Redis } from 'ioredis';

/**
 * What the X plan pays for in a calendar month (UTC): posts read, and posts and direct messages
 * sent. Counted in Redis, shared by every process, one key per month (kept 40 days for the record).
 * A limit of 0 means no limit. The count is checked before spending and added after, so processes
 * spending at the same moment may pass the limit by what they spend at once — a page, a reply.
 */
export type BudgetKind = 'reads' | 'posts';

export class MonthlyBudget {
  private readonly used: Record<BudgetKind, number> = { reads: 0, posts: 0 };
  private month = '';

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    private readonly limits: Record<BudgetKind, number>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private key(kind: BudgetKind, month: string): string {
    return `${this.prefix}:x:budget:${month}:${kind}`;
  }

  private currentMonth(): string {
    return this.now().toISOString().slice(0, 7);
  }

  /** Reads the month's counts (a new month starts from zero). */
  async refresh(): Promise<void> {
    const month = this.currentMonth();
    const [reads, posts] = await Promise.all([this.redis.get(this.key('reads', month)), this.redis.get(this.key('posts', month))]);
    this.month = month;
    this.used.reads = Number(reads ?? 0);
    this.used.posts = Number(posts ?? 0);
  }

  async spend(kind: BudgetKind, count: number): Promise<void> {
    if (count <= 0) return;
    const month = this.currentMonth();
    const key = this.key(kind, month);
    const [[, total]] = (await this.redis.multi().incrby(key, count).pexpire(key, 40 * 86_400_000).exec()) as [[Error | null, number]];
    if (month !== this.month) await this.refresh();
    this.used[kind] = Number(total);
  }

  /** What is left this month as last seen (Infinity without a limit). A new month refreshes first. */
  left(kind: BudgetKind): number {
    if (this.month && this.month !== this.currentMonth()) return this.limits[kind] ? this.limits[kind] : Infinity;
    return this.limits[kind] ? Math.max(0, this.limits[kind] - this.used[kind]) : Infinity;
  }

  snapshot(): Record<BudgetKind, { used: number; limit: number }> {
    return { reads: { used: this.used.reads, limit: this.limits.reads }, posts: { used: this.used.posts, limit: this.limits.posts } };
  }

  /** Milliseconds until the next month starts, when a spent budget is renewed. */
  untilNextMonth(): number {
    const now = this.now();
    return Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) - now.getTime();
  }
}
