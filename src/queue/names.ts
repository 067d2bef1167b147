import type { ChannelId } from '../core/inbound.ts';

/** inbound → intake → verify → notify-<channel>. */
export const INBOUND_QUEUE = 'inbound';
export const VERIFY_QUEUE = 'verify';
export const notifyQueueName = (channel: ChannelId): `notify-${ChannelId}` => `notify-${channel}`;
