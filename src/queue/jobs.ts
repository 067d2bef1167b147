import { z } from 'zod';
import { ChannelIdSchema, DedupKeySchema } from '../core/inbound.ts';
import { TEMPLATES, type NotificationKind } from '../../config/templates.ts';

/**
 * One zod schema per job payload. BullMQ keeps job data in clear text in Redis (and the queue
 * dashboard shows it), so payloads carry ids; personal data travels only inside `sealed` boxes.
 */

export const InboundJobSchema = z.strictObject({
  channel: ChannelIdSchema,
  dedupKey: DedupKeySchema,
  /** The InboundMessage, sealed with the 'queue' key (src/core/crypto.ts). */
  sealed: z.string().min(1),
});
export type InboundJob = z.infer<typeof InboundJobSchema>;

/**
 * What one flush of the adapters' coalescer stored (src/queue/queues.ts): the messages that arrived
 * together, in one job. A job of one message keeps the single shape above, with its dedup key as id.
 */
export const InboundBatchJobSchema = z.strictObject({
  messages: z.array(z.unknown()).min(1).max(1_000),
});
export type InboundBatchJob = z.infer<typeof InboundBatchJobSchema>;

const notificationKinds = Object.keys(TEMPLATES) as [NotificationKind, ...NotificationKind[]];

export const NotifyJobSchema = z.strictObject({
  /** Unique per notification: the outbound row's key, so a replayed job never sends twice. */
  notifyKey: z.string().min(1).max(200),
  kind: z.enum(notificationKinds),
  lang: z.enum(['id', 'en']),
  trackingId: z.string().regex(/^[0-9]{1,12}$/).optional(),
  /** A thread message (sealed) whose text this notification carries: an agency's answer or question. */
  threadMessageId: z.string().regex(/^[0-9]{1,19}$/).optional(),
  /** `{ to, replyContext }` sealed with the 'queue' key; absent for the web channel. */
  target: z.string().optional(),
  vars: z
    .strictObject({
      status: z.string().max(100).optional(),
      agency: z.string().max(200).optional(),
      reason: z.string().max(500).optional(),
      trackingId: z.string().max(40).optional(),
    })
    .default({}),
});
export type NotifyJob = z.infer<typeof NotifyJobSchema>;
export type NotifyJobInput = z.input<typeof NotifyJobSchema>;

/** Outbound rows (`messages`, status 'queued') written by a commit, sent together by one notify job. */
export const NotifyBatchJobSchema = z.strictObject({
  ids: z.array(z.string().regex(/^[0-9]{1,19}$/)).min(1).max(1_000),
});
export type NotifyBatchJob = z.infer<typeof NotifyBatchJobSchema>;

export const ReplyTargetSchema = z.strictObject({
  to: z.string().min(1),
  replyContext: z.record(z.string(), z.string()).default({}),
});
export type ReplyTarget = z.infer<typeof ReplyTargetSchema>;

/** A job to add after a transaction commits (see inbound_receipts.effects). */
export const EffectSchema = z.strictObject({
  queue: z.string().min(1),
  name: z.string().min(1),
  jobId: z.string().min(1),
  data: z.record(z.string(), z.unknown()),
});
export type Effect = z.infer<typeof EffectSchema>;
