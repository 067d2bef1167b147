import { createWebAdapter } from '../adapters/web/index.ts';
import type { ChannelAdapter } from './core/channel.ts';
import type { ChannelId } from './core/inbound.ts';

/**
 * The one list of channels. A channel not built yet is `null`, so adding a ChannelId without an
 * entry here is a compile error, and a grep for the channel's name finds it.
 */
export type AdapterFactory = () => ChannelAdapter<never>;

export const ADAPTERS = {
  web: createWebAdapter,
  sms: null, // issue #3: SMPP
  x: null,
  email: null,
  telegram: null,
  whatsapp: null,
} satisfies Record<ChannelId, AdapterFactory | null>;

export type Adapters = Map<ChannelId, ChannelAdapter<never>>;

export function createAdapters(): Adapters {
  const adapters: Adapters = new Map();
  for (const [id, factory] of Object.entries(ADAPTERS) as [ChannelId, AdapterFactory | null][]) {
    if (factory) adapters.set(id, factory());
  }
  return adapters;
}
