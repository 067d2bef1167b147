import nodemailer, { type SendMailOptions } from 'nodemailer';
import type { OutboundMessage } from '../../src/core/channel.ts';
import { SendError } from '../../src/core/errors.ts';
import type { NotificationKind } from '../../src/core/notifications.ts';
import { ourMessageId } from './inbound.ts';

/**
 * Replies by SMTP (nodemailer). A reply goes to the citizen's own address only — never to anyone
 * they copied — threaded under their mail (In-Reply-To / References), marked as automatic
 * (`Auto-Submitted: auto-replied`, so well-behaved responders do not answer it, and Outlook's
 * `X-Auto-Response-Suppress`), with a Message-ID in our domain carrying the tracking ID, so a reply
 * to it finds its report.
 */

const SUBJECTS: Record<NotificationKind, { id: string; en: string }> = {
  received: { id: 'Laporan Anda telah kami terima', en: 'Your report was received' },
  needs_info: { id: 'Laporan Anda perlu informasi tambahan', en: 'Your report needs more information' },
  forwarded: { id: 'Laporan Anda telah diteruskan', en: 'Your report was forwarded' },
  answered: { id: 'Tanggapan atas laporan Anda', en: 'An answer to your report' },
  closed: { id: 'Laporan Anda telah selesai', en: 'Your report is closed' },
  not_processable: { id: 'Laporan Anda tidak dapat diproses', en: 'Your report cannot be processed' },
  status: { id: 'Status laporan Anda', en: 'Status of your report' },
  follow_up_added: { id: 'Tambahan informasi diterima', en: 'Additional information received' },
  satisfaction_recorded: { id: 'Penilaian Anda telah dicatat', en: 'Your rating was recorded' },
  nothing_to_rate: { id: 'Laporan belum dapat dinilai', en: 'The report cannot be rated yet' },
  unknown_id: { id: 'Nomor laporan tidak ditemukan', en: 'Report number not found' },
  mistyped_id: { id: 'Nomor laporan tidak valid', en: 'Report number not valid' },
  privacy_changed: { id: 'Kerahasiaan laporan Anda diubah', en: 'The privacy of your report changed' },
  help: { id: 'Petunjuk LAPOR!', en: 'LAPOR! help' },
  empty: { id: 'Pesan Anda kosong', en: 'Your message is empty' },
};

const FOOTER = {
  id: 'Balas email ini untuk menambahkan keterangan pada laporan Anda. Email ini dikirim otomatis oleh LAPOR! (Layanan Aspirasi dan Pengaduan Online Rakyat).',
  en: 'Reply to this email to add to your report. This email was sent automatically by LAPOR! (the national public complaint service).',
};

export interface ComposedReply {
  messageId: string;
  envelope: { from: string; to: string };
  options: SendMailOptions;
}

export function composeReply(message: OutboundMessage, mailbox: { from: string; fromAddress: string; domain: string }): ComposedReply {
  const to = message.to;
  if (!to || !to.includes('@')) throw new SendError('invalid_recipient', 'email: no address to answer');
  const lang = message.lang;
  const topic = message.kind ? SUBJECTS[message.kind][lang] : 'LAPOR!';
  const tag = message.trackingId ? `[LAPOR! #${message.trackingId}] ` : '';
  const messageId = ourMessageId(message.trackingId, message.key, mailbox.domain);
  const inReplyTo = message.replyContext.messageId;
  const references = [...(message.replyContext.references ?? '').split(/\s+/).filter(Boolean).reverse(), ...(inReplyTo ? [inReplyTo] : [])];
  const text = `${message.text}\n\n-- \n${FOOTER[lang]}\n`;
  return {
    messageId,
    envelope: { from: mailbox.fromAddress, to },
    options: {
      from: mailbox.from,
      to,
      subject: `${tag}${topic}`,
      messageId: `<${messageId}>`,
      ...(inReplyTo ? { inReplyTo: `<${inReplyTo}>`, references: [...new Set(references)].map((id) => `<${id}>`).join(' ') } : {}),
      headers: { 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'All' },
      text,
      html: `<!doctype html><html lang="${lang}"><body><p>${escapeHtml(message.text)}</p><hr><p style="color:#555;font-size:90%">${escapeHtml(FOOTER[lang])}</p></body></html>`,
      // The SMTP envelope, too, names only the citizen: a Cc or Bcc of theirs is never copied.
      envelope: { from: mailbox.fromAddress, to },
    },
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!).replace(/\n/g, '<br>');
}

/** An SMTP transport for one URL, pooled; its failures in the notify worker's vocabulary. */
export function createSmtpSender(url: string) {
  const transport = nodemailer.createTransport(url.includes('?') ? url : `${url}?pool=true&maxConnections=2`);
  return {
    async send(reply: ComposedReply): Promise<void> {
      try {
        await transport.sendMail(reply.options);
      } catch (err) {
        throw toSendError(err);
      }
    },
    close(): void {
      transport.close();
    },
  };
}

/**
 * 4xx and connection trouble are worth another try; 5xx on a recipient means that address is wrong.
 * Only the codes are kept: the server's own words often repeat the address, and a SendError is
 * logged (its cause too), so the cause is left off.
 */
function toSendError(err: unknown): SendError {
  const e = err as { responseCode?: number; code?: string; command?: string; response?: string };
  const code = e.responseCode;
  const enhanced = /\b[245]\.\d{1,3}\.\d{1,3}\b/.exec(e.response ?? '')?.[0];
  const what = ['email:', code ?? e.code ?? 'error', enhanced, e.command].filter(Boolean).join(' ');
  if (code === undefined || code < 500) return new SendError('unavailable', what);
  if (e.command === 'RCPT TO' || code === 550 || code === 551 || code === 553) return new SendError('invalid_recipient', what);
  return new SendError('rejected', what);
}
