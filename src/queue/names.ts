import type { ChannelId } from '../core/inbound.ts';

/** inbound → intake (which files and verifies) → notify-<channel>; deadlines on its own clock. */
export const INBOUND_QUEUE = 'inbound';
/** One repeating job: the sweep of the regulatory clocks and of the outbox (workers/deadline.ts). */
export const DEADLINES_QUEUE = 'deadlines';
export const notifyQueueName = (channel: ChannelId): `notify-${ChannelId}` => `notify-${channel}`;
