import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LinkStatus } from './core/channel.ts';
import type { Queues } from './queue/queues.ts';

/** One registry per process, so tests running several apps do not share counters. */
export function createMetrics(queues: Queues) {
  const registry = new Registry();
  /** States of a link that is serving: an SMSC bind bound, the X poller polling or its webhook taking deliveries. */
  const UP_STATES = new Set(['bound', 'polling', 'webhook']);
  /** Set by the composition root once the adapters exist. */
  const links: { probe: () => { channel: string; status: LinkStatus }[] } = { probe: () => [] };
  new Gauge({
    name: 'lapor_channel_link_up',
    help: 'Upstream links of this process (SMSC binds, the X poller): 1 up, 0 not; state says why (connecting, backoff, rate_limited, budget_spent, standby: lease held elsewhere).',
    labelNames: ['channel', 'link', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { channel, status } of links.probe()) this.set({ channel, link: status.link, state: status.state }, UP_STATES.has(status.state) ? 1 : 0);
    },
  });
  collectDefaultMetrics({ register: registry, prefix: 'lapor_' });

  const inboundAccepted = new Counter({
    name: 'lapor_inbound_accepted_total',
    help: 'Inbound messages stored in the queue, by channel and result (queued, duplicate).',
    labelNames: ['channel', 'result'] as const,
    registers: [registry],
  });
  const inboundRejected = new Counter({
    name: 'lapor_inbound_rejected_total',
    help: 'Inbound messages refused at the edge, by channel and reason.',
    labelNames: ['channel', 'reason'] as const,
    registers: [registry],
  });
  const inboundIgnored = new Counter({
    name: 'lapor_inbound_ignored_total',
    help: 'Provider items read and not for us (X: a retweet, a mention without the hashtag), by channel and reason.',
    labelNames: ['channel', 'reason'] as const,
    registers: [registry],
  });
  const providerSpend = new Counter({
    name: 'lapor_provider_spend_total',
    help: 'What a paid provider API counts against the plan, by channel and kind (X: posts read, posts and direct messages sent).',
    labelNames: ['channel', 'kind'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'lapor_http_request_duration_seconds',
    help: 'HTTP request duration by route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const httpRefused = new Counter({
    name: 'lapor_http_refused_total',
    help: 'Connections and requests the HTTP server cut off before a route answered: timeout (headers or whole request late), body_timeout, headers_too_large, malformed, connections_per_address, connections_total.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'lapor_queue_jobs',
    help: 'Jobs per queue and state (waiting, active, delayed, failed = dead letters).',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        queues.all().map(async (queue) => {
          const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
          for (const [state, count] of Object.entries(counts)) this.set({ queue: queue.name, state }, count);
        }),
      ).catch(() => undefined);
    },
  });

  /** Set by the composition root: the breaches recorded as events, by clock and agency. */
  const breaches: { probe: () => Promise<{ clock: string; agency: string; count: number }[]> } = { probe: async () => [] };
  new Counter({
    name: 'lapor_deadline_breaches_total',
    help: 'Regulatory deadlines breached, from the deadline_breached events (append-only, so the count only grows): by clock (verification, follow_up) and agency ("-" for none).',
    labelNames: ['clock', 'agency'] as const,
    registers: [registry],
    async collect() {
      const rows = await breaches.probe().catch(() => undefined);
      if (!rows) return;
      this.reset();
      for (const row of rows) this.inc({ clock: row.clock, agency: row.agency }, row.count);
    },
  });

  return { registry, inboundAccepted, inboundRejected, inboundIgnored, providerSpend, httpDuration, httpRefused, links, breaches };
}

export type Metrics = ReturnType<typeof createMetrics>;
