import { z } from 'zod';
import { jsonList, positiveInt } from '../../src/core/settings.ts';

/**
 * Settings of the email channel: the `imap`, `smtp` and `mail` sections of the configuration
 * (LAPOR_IMAP_URL, LAPOR_SMTP_URL, LAPOR_MAIL_*). One mailbox from the two URLs; more through
 * `mail.mailboxes` in the configuration file (LAPOR_CONFIG) or LAPOR_MAIL_MAILBOXES as JSON.
 * No IMAP URL: the channel is off (`npm start` says how to turn it on).
 */

const imapUrl = z
  .string()
  .regex(/^$|^imaps?:\/\/[^\s]+$/, 'imap://user:pass@host:port/INBOX (imaps:// for TLS)');
const smtpUrl = z.string().regex(/^$|^smtps?:\/\/[^\s]+$/, 'smtp://user:pass@host:port (smtps:// for TLS)');

export const ImapSettingsSchema = z.strictObject({
  url: imapUrl
    .default('')
    .describe('The complaint mailbox: `imap://user:pass@host:port/INBOX` (`imaps://` for TLS; user and password URL-encoded). Unset: email is off (`npm run sim:mail` starts a local one).'),
});

export const SmtpSettingsSchema = z.strictObject({
  url: smtpUrl.default('').describe('Where replies are sent: `smtp://user:pass@host:port` (`smtps://` for TLS). Needed with LAPOR_IMAP_URL.'),
});

export const MailboxSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]{1,32}$/, 'a short lower-case name like pengaduan'),
  imapUrl: imapUrl.min(1),
  smtpUrl: smtpUrl.min(1),
  from: z.string().min(3).max(320),
});
export type Mailbox = z.infer<typeof MailboxSchema>;

export const MailSettingsSchema = z.strictObject({
  from: z
    .string()
    .max(320)
    .default('LAPOR! <lapor@lapor.example>')
    .describe('The From of every reply, `Name <address>`; its domain names our Message-IDs.'),
  mailboxes: jsonList(MailboxSchema)
    .default([])
    .describe('More mailboxes, as a JSON list of {id, imapUrl, smtpUrl, from} (one reader for each).'),
  processedFolder: z.string().min(1).max(100).default('LAPOR/Diproses').describe('Where a message goes once it is stored (created when missing).'),
  quarantineFolder: z
    .string()
    .min(1)
    .max(100)
    .default('LAPOR/Karantina')
    .describe('Where a message that cannot be read or stored for good goes, with the reason logged (created when missing).'),
  maxMessageBytes: positiveInt.default(25 * 1024 * 1024).describe('A larger message is not downloaded: it goes to quarantine.'),
  maxAttachments: z.coerce.number().int().min(0).max(20).default(5).describe('Files kept from one message; the rest are left out, the report says so.'),
  maxAttachmentBytes: positiveInt.default(10 * 1024 * 1024).describe('A larger file is left out of the report.'),
  attachmentTypes: z
    .string()
    .regex(/^[a-z/+.,-]*$/, 'comma-separated MIME types, e.g. image/jpeg,application/pdf')
    .default('image/jpeg,image/png,image/webp,application/pdf')
    .describe('Which files are kept (read from their bytes, not their name): photos and PDFs at most.'),
  senderLimitPerHour: positiveInt.default(20).describe('Mails one address may have filed in an hour; more are moved to the processed folder unfiled, logged, not answered.'),
  idleRenewMs: positiveInt.default(5 * 60_000).describe('IDLE is renewed this often (servers drop it after 30 minutes); without IDLE the mailbox is polled this often / 10.'),
  reconnectMinMs: positiveInt.default(1_000).describe('First reconnect delay; doubles up to the maximum, with jitter.'),
  reconnectMaxMs: positiveInt.default(60_000).describe('Longest reconnect delay.'),
  leaseMs: positiveInt.default(30_000).describe('One reader per mailbox across processes; another takes over this long after the holder died.'),
});
export type MailSettings = z.infer<typeof MailSettingsSchema>;

export interface EmailSettings {
  imap: z.infer<typeof ImapSettingsSchema>;
  smtp: z.infer<typeof SmtpSettingsSchema>;
  mail: MailSettings;
}

/** Every mailbox to read: the one from LAPOR_IMAP_URL (id `utama`), then the configured list. */
export function mailboxes(settings: EmailSettings): Mailbox[] {
  const primary: Mailbox[] = settings.imap.url ? [{ id: 'utama', imapUrl: settings.imap.url, smtpUrl: settings.smtp.url, from: settings.mail.from }] : [];
  return [...primary, ...settings.mail.mailboxes];
}

export function emailConfigured(settings: EmailSettings): boolean {
  return mailboxes(settings).length > 0;
}

/** The parts of an imap:// URL imapflow needs. Throws with a plain sentence on a bad URL. */
export function imapTarget(url: string): { host: string; port: number; secure: boolean; user: string; pass: string; folder: string } {
  const parsed = new URL(url);
  const secure = parsed.protocol === 'imaps:';
  const folder = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'INBOX';
  return {
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : secure ? 993 : 143,
    secure,
    user: decodeURIComponent(parsed.username),
    pass: decodeURIComponent(parsed.password),
    folder,
  };
}

/** The address part of `Name <address>` (or the whole when it is a bare address). */
export function addressOf(from: string): string {
  return (/<([^>]+)>/.exec(from)?.[1] ?? from).trim();
}

/** The domain our Message-IDs carry: the From address's. */
export function messageIdDomain(from: string): string {
  return addressOf(from).split('@')[1]?.toLowerCase() || 'lapor.invalid';
}
