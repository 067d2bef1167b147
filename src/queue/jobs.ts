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

export const VerifyJobSchema = z.strictObject({ trackingId: z.string().regex(/^[1-9][0-9]{9}$/) });
export type VerifyJob = z.infer<typeof VerifyJobSchema>;

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
