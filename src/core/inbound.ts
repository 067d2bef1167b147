import { z } from 'zod';
import { PHONE_HINT, PHONE_MAX_DIGITS, PHONE_MAX_INPUT_CHARS, PHONE_MIN_DIGITS, normalizePhone } from './phone.ts';
import { charLength, isBlank, sanitizeText, truncateChars } from './text.ts';

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

/** Why a report text is refused when nothing visible is left of it (HTTP 400 detail). */
export const EMPTY_TEXT_MESSAGE = 'the text is empty once invisible characters are removed: write what happened, where and when';

/**
 * A free-text field as it is stored: sanitized (src/core/text.ts), optionally trimmed, its length
 * checked in characters. zod's own `.max` counts UTF-16 units, so the limit is checked here and
 * stated through `.meta`, where JSON Schema's `maxLength` counts characters as this does.
 */
export function textField(options: { max: number; trim?: boolean; emptyMessage?: string; description?: string }) {
  const { max, trim = false, emptyMessage, description } = options;
  return z
    .string()
    .meta({ ...(emptyMessage ? { minLength: 1 } : {}), maxLength: max, ...(description ? { description } : {}) })
    .transform((s) => (trim ? sanitizeText(s).trim() : sanitizeText(s)))
    .superRefine((s, ctx) => {
      if (emptyMessage && isBlank(s)) ctx.addIssue({ code: 'custom', message: emptyMessage });
      const length = charLength(s);
      if (length > max) ctx.addIssue({ code: 'custom', message: `at most ${max} characters (this has ${length})` });
    });
}

/** An identifier or address from a provider: sanitized like text, then held to its limits. */
const cleanString = (min: number, max: number) =>
  z
    .string()
    .transform(sanitizeText)
    .pipe(z.string().min(min).max(max));

/** E.164 after normalizing the Indonesian forms (src/core/phone.ts); refused with a hint otherwise. */
export const PhoneSchema = z
  .string()
  .meta({
    maxLength: PHONE_MAX_INPUT_CHARS,
    pattern: '^\\+?[0-9 ().-]+$',
    description: `08…, 62… or +62… (or + and another country code); spaces, dashes, dots and parentheses are ignored. Stored as E.164 (+62…), ${PHONE_MIN_DIGITS} to ${PHONE_MAX_DIGITS} digits.`,
    examples: ['081234567890', '+62 812-3456-7890'],
  })
  .transform((input, ctx) => {
    const phone = normalizePhone(input);
    if (phone.ok) return phone.e164;
    ctx.issues.push({ code: 'custom', message: `not a phone number (${phone.reason}). ${PHONE_HINT}`, input, params: { hint: PHONE_HINT } });
    return z.NEVER;
  });

/** RFC 5321 limits: 254 characters in all, 64 before the @. */
export const EmailSchema = z
  .email({ error: 'not an e-mail address, e.g. nama@contoh.id' })
  .max(254)
  .refine((email) => (email.split('@')[0] ?? '').length <= 64, 'at most 64 characters before the @');

export const AttachmentSchema = z.strictObject({
  filename: cleanString(0, 255),
  contentType: cleanString(0, 127),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Where the bytes wait to be claimed by the report (the attachments table's token), when stored already. */
  ref: z.string().regex(/^att_[A-Za-z0-9_-]{20,40}$/).optional(),
});
export type Attachment = z.infer<typeof AttachmentSchema>;

export const ReporterSchema = z.strictObject({
  name: textField({ max: 200, trim: true, emptyMessage: 'the name is empty once invisible characters are removed' }).optional(),
  phone: PhoneSchema.optional(),
  email: EmailSchema.optional(),
});
export type Reporter = z.infer<typeof ReporterSchema>;

/** Longest message text any channel may carry, in characters (a long e-mail; an SMS is far shorter). */
export const MAX_TEXT_CHARS = 64 * 1024;

/**
 * What every adapter produces from whatever its provider sent: one citizen message.
 * Personal data lives in `sender` and `text`; in a queue job this whole object travels sealed
 * (src/queue/jobs.ts), never in clear text.
 *
 * This schema is the one normalization at the boundary of every channel: the inbound queue parses
 * each message with it before the job is added (src/queue/queues.ts), so nothing is acknowledged
 * that a later stage would refuse. Every string that can reach PostgreSQL or a provider is sanitized
 * (src/core/text.ts); a display name longer than its limit is cut, since refusing the message for it
 * would lose the complaint. Parsing a parsed message changes nothing, so the intake worker parses
 * again safely.
 */
export const InboundMessageSchema = z
  .strictObject({
    channel: ChannelIdSchema,
    /** Which of our accounts received it: an SMSC bind, a mailbox, a bot. */
    account: cleanString(1, 100),
    /** The provider's own id for the message (SMPP message id, tweet id, Message-ID…). */
    externalId: cleanString(1, 512),
    dedupKey: DedupKeySchema,
    /**
     * Other provider ids the same message may have had, and for how long: a message under one of them
     * received within `withinMs` of this one is this one (SMS: an id is a content hash per dedup window,
     * and a redelivery can fall in the window before or after).
     */
    sameAs: z
      .strictObject({ ids: z.array(cleanString(1, 512)).max(4), withinMs: z.number().int().positive().max(7 * 86_400_000) })
      .optional(),
    /** The citizen's address on the channel: MSISDN, email address, chat id. Absent for the web form. */
    sender: z
      .strictObject({
        address: z
          .string()
          .transform((s) => sanitizeText(s).trim())
          .pipe(z.string().min(1).max(320)),
        displayName: z
          .string()
          .transform((s) => truncateChars(sanitizeText(s).trim(), 200))
          .optional(),
      })
      .optional(),
    /**
     * May be blank on conversational channels: the keyword parser reads a blank message as empty and
     * the citizen gets the "empty" help reply. A form (the web) must carry text; see the refinement.
     */
    text: textField({ max: MAX_TEXT_CHARS }),
    attachments: z.array(AttachmentSchema).max(20).default([]),
    receivedAt: z.iso.datetime({ offset: true }),
    /**
     * The conversation this message answers, where the channel has threads (a reply on X, an e-mail's
     * In-Reply-To): provider ids of earlier messages, ours (a notification's transport id) or the
     * citizen's (a message's external id). A message that names no report itself is a follow-up of
     * the report of that thread when its author owns the report. From anyone else it is taken on its
     * own — or, with `ownerOnly`, ignored (X: a reply without #lapor is a report only as a follow-up).
     * `report` names the report outright where the conversation itself carries its tracking ID (an
     * e-mail answering one of our notifications, whose Message-ID and subject hold it).
     */
    thread: z
      .strictObject({
        ids: z.array(cleanString(1, 512)).max(10).default([]),
        report: z.string().regex(/^[1-9][0-9]{9}$/).optional(),
        ownerOnly: z.boolean().default(false),
      })
      .refine((thread) => thread.ids.length > 0 || thread.report !== undefined, 'a thread names earlier messages or a report')
      .optional(),
    /**
     * The message holds no words of the citizen's, only a file or a place (a photo without a caption,
     * a shared location) — on chat apps, usually sent just after the words it belongs with. Intake
     * adds it to the sender's report of the last half hour on the channel; with none, it is a
     * report of its own (its text says what it holds), and the rules ask for the words.
     */
    addendum: z.boolean().optional(),
    /** Some of the message never arrived (a long SMS missing parts): filed anyway, marked. */
    incomplete: z.boolean().optional(),
    /** The language the citizen chose, when the channel knows it (the web form's `lang`). */
    lang: z.enum(['id', 'en']).optional(),
    /** Whatever the adapter needs to answer in the same conversation (SMSC id, short code, Message-ID, chat id). */
    replyContext: z.record(z.string(), cleanString(0, 1000)).default({}),
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
  })
  .superRefine((message, ctx) => {
    if (message.form && isBlank(message.text)) ctx.addIssue({ code: 'custom', path: ['text'], message: EMPTY_TEXT_MESSAGE });
  });
export type InboundMessage = z.infer<typeof InboundMessageSchema>;
export type InboundMessageInput = z.input<typeof InboundMessageSchema>;

/**
 * A report's text made of addenda alone: what a photo, a document or a place sent without words is
 * filed as (`[foto]`, `[dokumen]`, `[lokasi: …]`) when no report of the sender's came just before.
 */
export const ADDENDA_ONLY = /^(?:\s*\[(?:foto|dokumen|lokasi[^\]]*)\])+\s*$/;

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
