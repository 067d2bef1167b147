import { createHash } from 'node:crypto';
import type { Attachment, InboundMessage } from '../../src/core/inbound.ts';
import { parseTrackingId } from '../../src/core/tracking-id.ts';
import type { Mail } from './parse.ts';

/**
 * What one mail means, decided without I/O: a citizen's message, something never to answer (an
 * auto-reply, a mailing list, a bounce), or nothing we can file.
 *
 * A mail is keyed by its Message-ID, else by a hash of its bytes (which, unlike UIDVALIDITY and
 * UID, survives the mailbox being renumbered), so a mail seen again — the move to the processed
 * folder lost in a crash, the mailbox renumbered — lands on the same receipt.
 */

export type Screened =
  | { kind: 'mail' }
  /** Never answered, only logged (mail loops, lists, vacation messages). */
  | { kind: 'ignored'; reason: string; category: 'auto_reply' | 'list' | 'daemon' }
  /** A delivery failure: the addresses that failed and our Message-IDs it returns. */
  | { kind: 'bounce'; recipients: string[]; ours: string[] };

const BULK_PRECEDENCE = new Set(['bulk', 'junk', 'list']);

/**
 * Mail that must never be answered (RFC 3834 and what real responders send). A reply to any of it
 * starts a loop, or tells a list of hundreds about one citizen's report.
 */
export function screen(mail: Mail): Screened {
  const header = (name: string) => mail.headers.get(name)?.toLowerCase().trim();
  const isDsn = mail.contentType === 'multipart/report' && (mail.reportType === 'delivery-status' || mail.reportType === 'global-delivery-status');
  const daemon = /^(mailer-daemon|postmaster)@/i.test(mail.from?.address ?? '');
  if (isDsn || (daemon && mail.returnPath === '')) {
    return { kind: 'bounce', recipients: failedRecipients(mail), ours: returnedIds(mail) };
  }
  const auto = header('auto-submitted');
  // The header's value is the sender's to write: only the values RFC 3834 defines are repeated.
  if (auto && !/^no\b/.test(auto)) return { kind: 'ignored', category: 'auto_reply', reason: `Auto-Submitted: ${/^auto-(?:replied|generated|notified)\b/.exec(auto)?.[0] ?? 'other'}` };
  const precedence = header('precedence');
  if (precedence && BULK_PRECEDENCE.has(precedence)) return { kind: 'ignored', category: precedence === 'list' ? 'list' : 'auto_reply', reason: `Precedence: ${precedence}` };
  if (mail.headers.has('list-id')) return { kind: 'ignored', category: 'list', reason: 'a mailing list (List-Id)' };
  if (mail.headers.has('x-autoreply') || mail.headers.has('x-autorespond')) return { kind: 'ignored', category: 'auto_reply', reason: 'an automatic reply (X-Autoreply)' };
  if (daemon) return { kind: 'ignored', category: 'daemon', reason: 'from a mailer daemon' };
  if (mail.returnPath === '') return { kind: 'ignored', category: 'daemon', reason: 'an empty return path (Return-Path: <>)' };
  return { kind: 'mail' };
}

/** Addresses a delivery-status report says failed (`Action: failed`, or any final recipient without one). */
function failedRecipients(mail: Mail): string[] {
  const status = mail.deliveryStatus ?? '';
  const found = new Set<string>();
  // Per-recipient blocks are separated by blank lines; the first block is about the message.
  for (const block of status.split(/\r?\n\s*\r?\n/)) {
    const recipient = /^final-recipient:\s*[^;]*;\s*(\S+@\S+)/im.exec(block)?.[1];
    const action = /^action:\s*(\S+)/im.exec(block)?.[1]?.toLowerCase();
    if (recipient && (action === undefined || action === 'failed')) found.add(recipient.replace(/^<|>$/g, '').toLowerCase());
  }
  return [...found];
}

/** The Message-IDs of ours that a bounce returns: in the returned headers, or in its own thread. */
function returnedIds(mail: Mail): string[] {
  const headers = mail.returnedHeaders ?? '';
  const returned = [...headers.matchAll(/^(?:message-id|in-reply-to|references):[ \t]*((?:.*)(?:\r?\n[ \t].*)*)/gim)].flatMap((m) =>
    [...m[1]!.matchAll(/<([^<>\s]{1,500})>/g)].map((id) => id[1]!),
  );
  return [...new Set([...returned, ...mail.thread])];
}

export interface MailContext {
  /** Our mailbox's id (the account). */
  account: string;
  /** The domain of our Message-IDs: a thread naming `report-<id>…@<domain>` is about that report. */
  domain: string;
  /** The key of a mail without a Message-ID: a hash of its bytes. */
  contentHash: string;
  now: Date;
  attachments: Attachment[];
  /** Files of the mail that were not kept, and why (told in the text so the operator knows). */
  leftOut: string[];
}

/** The Message-ID we give a notification: it carries the report's tracking ID, so replies thread. */
export function ourMessageId(trackingId: string | undefined, key: string, domain: string): string {
  const unique = createHash('sha256').update(key).digest('base64url').slice(0, 16);
  return trackingId ? `report-${trackingId}.${unique}@${domain}` : `lapor.${unique}@${domain}`;
}

/** The tracking ID one of our Message-IDs carries. */
export function reportOfMessageId(id: string, domain: string): string | undefined {
  const match = /^report-([0-9]{10})(?:\.[^@]*)?@(.+)$/i.exec(id);
  if (!match || match[2]!.toLowerCase() !== domain) return undefined;
  const parsed = parseTrackingId(match[1]!);
  return parsed.ok ? parsed.id : undefined;
}

const REPLY_PREFIX = /^\s*(?:(?:re|fw|fwd|bls|balas|tr|aw|wg|sv|vs|antw|rif)\s*(?:\[\d+\])?\s*[:：]\s*)+/i;

/** The subject without Re:/Fwd:/Bls: prefixes, and whether it had one. */
export function cleanSubject(subject: string): { text: string; reply: boolean } {
  const text = subject.replace(REPLY_PREFIX, '').replace(/\s+/g, ' ').trim();
  return { text, reply: text.length !== subject.replace(/\s+/g, ' ').trim().length };
}

/** A valid tracking ID in a subject: our tag `[LAPOR! #…]`, or any 10-digit number passing the check. */
function reportInSubject(subject: string): string | undefined {
  for (const match of subject.matchAll(/(?<![0-9])[1-9][0-9]{9}(?![0-9])/g)) {
    const parsed = parseTrackingId(match[0]);
    if (parsed.ok) return parsed.id;
  }
  return undefined;
}

export function toInbound(mail: Mail, context: MailContext): InboundMessage {
  const from = mail.from!;
  const subject = cleanSubject(mail.subject);
  const body = cutSignature(cutQuoted(mail.text));
  const fromThread = mail.thread.map((id) => reportOfMessageId(id, context.domain)).find((id) => id !== undefined);
  // A reply names its report by our Message-ID in its thread, or by the ID its subject kept; a
  // fresh mail whose subject holds an ID ("CEK 7741822739") is read by the keyword parser instead.
  const report = fromThread ?? (subject.reply || /\[lapor!?\s*#?[0-9]{10}\]/i.test(mail.subject) ? reportInSubject(mail.subject) : undefined);
  const threaded = report !== undefined || mail.thread.length > 0;
  // The subject is the first line (the keyword parser reads ANONIM/RAHASIA/CEK there); a reply's
  // subject is only "Re: [LAPOR! #…] …" of ours, so only its body is the citizen's.
  // A body that already begins with the subject (a phone's mail app, `sim:mail`) does not repeat it.
  const repeated = squash(body).startsWith(squash(subject.text));
  const lines = [report || repeated ? '' : subject.text, body, ...context.leftOut.map((reason) => `[lampiran tidak disimpan: ${reason}]`)];
  const text = lines.filter((line) => line.trim()).join('\n\n');
  const externalId = mail.messageId ?? `sha256:${context.contentHash}`;
  return {
    channel: 'email',
    account: context.account,
    externalId,
    dedupKey: `em_${createHash('sha256').update(externalId).digest('base64url').slice(0, 32)}`,
    sender: { address: from.address.toLowerCase(), ...(from.name ? { displayName: from.name } : {}) },
    text,
    attachments: context.attachments,
    receivedAt: context.now.toISOString(),
    ...(threaded ? { thread: { ids: mail.thread.slice(0, 10), ...(report ? { report } : {}), ownerOnly: false } } : {}),
    replyContext: {
      mailbox: context.account,
      ...(mail.messageId ? { messageId: mail.messageId } : {}),
      references: mail.thread.slice(0, 5).join(' '),
      subject: subject.text.slice(0, 200),
    },
  };
}

/**
 * The signature below the RFC 3676 delimiter (`-- `, or `--` as many clients write it) is cut: it
 * is no part of the complaint, and it names the sender — in an anonymous report too.
 */
export function cutSignature(text: string): string {
  const lines = text.split('\n');
  const at = lines.findIndex((line) => /^--\s?$/.test(line.replace(/\r$/, '')));
  if (at <= 0) return text;
  return lines.slice(0, at).join('\n').trim() || text;
}

function squash(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
}

/**
 * The citizen's own words of a reply: everything from the quoted message on is cut — Indonesian and
 * English attribution lines ("Pada … menulis:", "On … wrote:", which Gmail may break over two
 * lines), Outlook's header block (From:/Sent:/To:/Subject:, Dari:/Dikirim:/Kepada:/Subjek:) and
 * a trailing run of `>` lines. Text that is only a quote is kept whole rather than lost.
 */
export function cutQuoted(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let end = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const twoLines = `${line} ${lines[i + 1]?.trim() ?? ''}`;
    if (/^(?:pada|on)\b.{0,300}(?:menulis|wrote)\s*:$/i.test(line) || /^(?:pada|on)\b.{0,300}(?:menulis|wrote)\s*:$/i.test(twoLines)) {
      end = i;
      break;
    }
    if (/^-{2,}\s*(?:original message|pesan asli|forwarded message|pesan yang diteruskan)\s*-{2,}$/i.test(line)) {
      end = i;
      break;
    }
    if (/^_{10,}$/.test(line) || /^(?:from|dari)\s*:/i.test(line)) {
      const block = lines.slice(i, i + 6).map((l) => l.trim());
      const labels = block.filter((l) => /^(?:from|dari|sent|dikirim|date|tanggal|to|kepada|subject|subjek|perihal)\s*:/i.test(l)).length;
      if (labels >= 3) {
        end = i;
        break;
      }
    }
  }
  // A trailing run of quoted lines (blank lines among them) is the message being answered.
  let cut = end;
  while (cut > 0 && (/^\s*>/.test(lines[cut - 1]!) || !lines[cut - 1]!.trim())) cut--;
  if (lines.slice(cut, end).some((l) => /^\s*>/.test(l))) end = cut;
  const kept = lines.slice(0, end).join('\n').trim();
  return kept || text.trim();
}
