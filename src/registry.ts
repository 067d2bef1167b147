import type { Logger } from 'pino';
import { emailConfigured } from '../adapters/email/config.ts';
import { createEmailAdapter } from '../adapters/email/index.ts';
import { createSmsAdapter } from '../adapters/sms/index.ts';
import { smscAccounts } from '../adapters/sms/config.ts';
import { createWebAdapter } from '../adapters/web/index.ts';
import { telegramConfigured } from '../adapters/telegram/config.ts';
import { createTelegramAdapter } from '../adapters/telegram/index.ts';
import { whatsappConfigured } from '../adapters/whatsapp/config.ts';
import { createWhatsAppAdapter } from '../adapters/whatsapp/index.ts';
import { xConfigured } from '../adapters/x/config.ts';
import { createXAdapter } from '../adapters/x/index.ts';
import type { Config } from '../config/schema.ts';
import type { AttachmentSink, ChannelAdapter, CursorStore, DeliverySink, IntakeSink } from './core/channel.ts';
import type { DataKeys } from './core/crypto.ts';
import { normalizeAddress, type ChannelId } from './core/inbound.ts';
import type { Metrics } from './metrics.ts';
import type { RedisClient } from './queue/redis.ts';

/** What a channel adapter may be given: configuration, a fail-fast Redis, and the sinks for its traffic. */
export interface AdapterContext {
  config: Config;
  redis: RedisClient;
  log: Logger;
  intake: IntakeSink;
  deliveries: DeliverySink;
  cursors: CursorStore;
  attachments: AttachmentSink;
  keys: DataKeys;
  metrics: Metrics;
}

/** A factory returns undefined when its channel is not configured. */
export type AdapterFactory = (context: AdapterContext) => ChannelAdapter<never> | undefined;

/**
 * The one list of channels. A channel not built yet is `null`, so adding a ChannelId without an
 * entry here is a compile error, and a grep for the channel's name finds it.
 */
export const ADAPTERS = {
  web: () => createWebAdapter(),
  sms: (context) => {
    if (!smscAccounts(context.config.smpp).length) return undefined;
    const { metrics } = context;
    return createSmsAdapter({
      settings: context.config.smpp,
      redis: context.redis,
      prefix: context.config.queue.prefix,
      log: context.log.child({ channel: 'sms' }),
      intake: context.intake,
      deliveries: context.deliveries,
      hashAddress: (address) => context.keys.blindIndex(normalizeAddress(address)),
      counters: {
        shielded: (reason) => metrics.inboundRejected.inc({ channel: 'sms', reason }),
        malformed: (reason) => metrics.inboundRejected.inc({ channel: 'sms', reason: `malformed_${reason}` }),
      },
    });
  },
  x: (context) => {
    if (!xConfigured(context.config.x)) return undefined;
    const { metrics } = context;
    return createXAdapter({
      settings: context.config.x,
      redis: context.redis,
      prefix: context.config.queue.prefix,
      log: context.log.child({ channel: 'x' }),
      intake: context.intake,
      cursors: context.cursors,
      attachments: context.attachments,
      publicUrl: context.config.publicUrl,
      counters: {
        ignored: (reason) => metrics.inboundIgnored.inc({ channel: 'x', reason }),
        malformed: (reason) => metrics.inboundRejected.inc({ channel: 'x', reason: `malformed_${reason}` }),
        spent: (kind, count) => metrics.providerSpend.inc({ channel: 'x', kind }, count),
      },
    });
  },
  email: (context) => {
    const settings = { imap: context.config.imap, smtp: context.config.smtp, mail: context.config.mail };
    if (!emailConfigured(settings)) return undefined;
    const { metrics } = context;
    return createEmailAdapter({
      settings,
      redis: context.redis,
      prefix: context.config.queue.prefix,
      log: context.log.child({ channel: 'email' }),
      intake: context.intake,
      deliveries: context.deliveries,
      cursors: context.cursors,
      attachments: context.attachments,
      hashAddress: (address) => context.keys.blindIndex(normalizeAddress(address)),
      counters: {
        ignored: (reason) => metrics.inboundIgnored.inc({ channel: 'email', reason }),
        malformed: (reason) => metrics.inboundRejected.inc({ channel: 'email', reason: `malformed_${reason}` }),
      },
    });
  },
  telegram: (context) => {
    if (!telegramConfigured(context.config.telegram)) return undefined;
    const { metrics } = context;
    return createTelegramAdapter({
      settings: context.config.telegram,
      redis: context.redis,
      prefix: context.config.queue.prefix,
      log: context.log.child({ channel: 'telegram' }),
      intake: context.intake,
      cursors: context.cursors,
      attachments: context.attachments,
      hashAddress: (address) => context.keys.blindIndex(normalizeAddress(address)),
      counters: {
        ignored: (reason) => metrics.inboundIgnored.inc({ channel: 'telegram', reason }),
        malformed: (reason) => metrics.inboundRejected.inc({ channel: 'telegram', reason: `malformed_${reason}` }),
      },
    });
  },
  whatsapp: (context) => {
    if (!whatsappConfigured(context.config.whatsapp)) return undefined;
    const { metrics } = context;
    return createWhatsAppAdapter({
      settings: context.config.whatsapp,
      redis: context.redis,
      prefix: context.config.queue.prefix,
      log: context.log.child({ channel: 'whatsapp' }),
      intake: context.intake,
      deliveries: context.deliveries,
      attachments: context.attachments,
      hashAddress: (address) => context.keys.blindIndex(normalizeAddress(address)),
      keys: context.keys,
      counters: {
        ignored: (reason) => metrics.inboundIgnored.inc({ channel: 'whatsapp', reason }),
        malformed: (reason) => metrics.inboundRejected.inc({ channel: 'whatsapp', reason: `malformed_${reason}` }),
      },
    });
  },
} satisfies Record<ChannelId, AdapterFactory | null>;

export type Adapters = Map<ChannelId, ChannelAdapter<never>>;

/**
 * The adapters this process runs: always the web channel (its inbound side is the API), plus the
 * named pull channels that are configured. Notify workers run only for these, since only the
 * process holding an SMSC bind can send through it.
 */
export function createAdapters(context: AdapterContext, channels: readonly ChannelId[]): Adapters {
  const adapters: Adapters = new Map();
  for (const [id, factory] of Object.entries(ADAPTERS) as [ChannelId, AdapterFactory | null][]) {
    if (!factory || (id !== 'web' && !channels.includes(id))) continue;
    const adapter = factory(context);
    if (adapter) adapters.set(id, adapter);
  }
  return adapters;
}
