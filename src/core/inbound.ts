import { z } from 'zod';

/** The one list of channel names. A grep for the name finds the whole channel. */
export const CHANNEL_IDS = ['web', 'sms', 'x', 'email', 'telegram', 'whatsapp'] as const;
export const ChannelIdSchema = z.enum(CHANNEL_IDS);
export type ChannelId = z.infer<typeof ChannelIdSchema>;

/**
 * A dedup key doubles as a BullMQ job id, which must not contain ':' and must not be all digits
 * (BullMQ treats numeric ids as its own counter). Shape: `<channel prefix>_<provider id>`.
 */
export const DedupKeySchema = z
  .string()
  .min(3)
  .max(200)
  .regex(/^[a-z]+_[A-Za-z0-9_.=-]+$/, 'a dedup key like tg_12345 (no ":", prefixed)');

export const AttachmentSchema = z.strictObject({
  filename: z.string().max(255),
  contentType: z.string().max(127),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Attachment = z.infer<typeof AttachmentSchema>;

export const ReporterSchema = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  phone: z.string().trim().min(5).max(32).optional(),
  email: z.email().max(254).optional(),
});
export type Reporter = z.infer<typeof ReporterSchema>;

/**
 * What every adapter produces from whatever its provider sent: one citizen message.
 * Personal data lives in `sender` and `text`; in a queue job this whole object travels sealed
 * (src/queue/jobs.ts), never in clear text.
 */
export const InboundMessageSchema = z.strictObject({
  channel: ChannelIdSchema,
  /** Which of our accounts received it: an SMSC bind, a mailbox, a bot. */
  account: z.string().min(1).max(100),
  /** The provider's own id for the message (SMPP message id, tweet id, Message-ID…). */
  externalId: z.string().min(1).max(512),
  dedupKey: DedupKeySchema,
  /** The citizen's address on the channel: MSISDN, email address, chat id. Absent for the web form. */
  sender: z.strictObject({ address: z.string().min(1).max(320), displayName: z.string().max(200).optional() }).optional(),
  text: z.string().max(64 * 1024),
  attachments: z.array(AttachmentSchema).max(20).default([]),
  receivedAt: z.iso.datetime({ offset: true }),
  /** Some of the message never arrived (a long SMS missing parts): filed anyway, marked. */
  incomplete: z.boolean().optional(),
  /** The language the citizen chose, when the channel knows it (the web form's `lang`). */
  lang: z.enum(['id', 'en']).optional(),
  /** Whatever the adapter needs to answer in the same conversation (SMSC id, short code, Message-ID, chat id). */
  replyContext: z.record(z.string(), z.string().max(1000)).default({}),
  /**
   * Set by channels whose input is already structured (the web form): the message IS a new report,
   * so the keyword parser is not asked.
   */
  form: z
    .strictObject({
      trackingId: z.string().regex(/^[1-9][0-9]{9}$/).optional(),
      reporter: ReporterSchema.optional(),
      anonim: z.boolean().default(false),
      rahasia: z.boolean().default(false),
    })
    .optional(),
});
export type InboundMessage = z.infer<typeof InboundMessageSchema>;
export type InboundMessageInput = z.input<typeof InboundMessageSchema>;

/**
 * Canonical form of an address, so the same citizen is recognised across messages (ownership of a
 * report, rate limits). Indonesian numbers become 62…; e-mail addresses are lower-cased.
 */
export function normalizeAddress(address: string): string {
  const trimmed = address.trim();
  if (trimmed.includes('@')) return trimmed.toLowerCase();
  const digits = trimmed.replace(/[^0-9]/g, '');
  if (/^[+0-9 ().-]+$/.test(trimmed) && digits.length >= 5) {
    if (digits.startsWith('0')) return `62${digits.slice(1)}`;
    return digits;
  }
  return trimmed.toLowerCase();
}
