import { createHash, randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AttachmentSink, ChannelAdapter, CursorStore, DeliverySink, Ignored, IntakeSink, LinkStatus, OutboundMessage, SendResult } from '../../src/core/channel.ts';
import { sniffAttachmentType } from '../../src/core/attachments.ts';
import { InboundRefusedError, SendError } from '../../src/core/errors.ts';
import type { Attachment, InboundMessage } from '../../src/core/inbound.ts';
import { Lease } from '../../src/queue/lease.ts';
import { addressOf, mailboxes, messageIdDomain, type EmailSettings, type Mailbox } from './config.ts';
import { screen, toInbound } from './inbound.ts';
import { MailboxReader, type FetchedMail, type Verdict } from './mailbox.ts';
import { composeReply, createSmtpSender } from './outbound.ts';
import { readMail, type Mail } from './parse.ts';

/**
 * Email: citizens write to the complaint mailbox; the gateway reads it over IMAP (one reader per
 * mailbox across processes, a lease) and answers by SMTP, threaded under the citizen's mail.
 * Auto-replies, lists and bounces are never answered; a bounce of one of our notifications marks
 * that notification failed and the address undeliverable.
 */

export interface EmailCounters {
  ignored(reason: string): void;
  malformed(reason: string): void;
}

export interface EmailAdapterContext {
  settings: EmailSettings;
  redis: Redis | Cluster;
  prefix: string;
  log: Logger;
  intake: IntakeSink;
  deliveries: DeliverySink;
  cursors: CursorStore;
  attachments: AttachmentSink;
  /** Keyed hash of an address: rate limits and bounced addresses are kept without the address. */
  hashAddress(address: string): string;
  counters: EmailCounters;
  owner?: string;
}

/** One mail as `normalize` takes it: read, its files already kept. */
export interface MailInput {
  mail: Mail;
  mailbox: Mailbox;
  /** A hash of the raw bytes: the key of a mail without a Message-ID. */
  contentHash: string;
  attachments: Attachment[];
  leftOut: string[];
}

export type EmailAdapter = ChannelAdapter<MailInput> & {
  start(): Promise<void>;
  stop(): Promise<void>;
  links(): LinkStatus[];
  /** One fetched mail through the whole intake path (what each reader does per message). */
  handle(mailbox: Mailbox, fetched: FetchedMail): Promise<Verdict>;
};

/** A mail can be seen again as long as it sits in a folder: PostgreSQL's receipts keep it for good, Redis a month. */
const DEDUP_WINDOW_MS = 30 * 86_400_000;
/** An address that bounced is not written to again for this long (a citizen may fix their mailbox). */
const BOUNCED_TTL_S = 30 * 86_400;
/** A notification is a few hundred characters; a long answer still fits. */
const MAX_TEXT = 20_000;

export function createEmailAdapter(context: EmailAdapterContext): EmailAdapter {
  const { settings, log, counters } = context;
  const owner = context.owner ?? randomUUID();
  const boxes = mailboxes(settings);
  const allowedTypes = new Set(settings.mail.attachmentTypes.split(',').map((t) => t.trim()).filter(Boolean));
  const senders = new Map(boxes.map((box) => [box.id, { sender: createSmtpSender(box.smtpUrl), from: box.from, fromAddress: addressOf(box.from), domain: messageIdDomain(box.from) }]));
  const ourAddresses = new Set(boxes.map((box) => addressOf(box.from).toLowerCase()));
  const uidValidities = new Map<string, string>();

  const bouncedKey = (address: string) => `${context.prefix}:email:bounced:${context.hashAddress(address.toLowerCase())}`;
  const rateKey = (address: string) => `${context.prefix}:email:rate:${context.hashAddress(address.toLowerCase())}:${Math.floor(Date.now() / 3_600_000)}`;

  async function handle(mailbox: Mailbox, fetched: FetchedMail): Promise<Verdict> {
    const where = { mailbox: mailbox.id, uid: fetched.uid };
    if (!fetched.source) {
      counters.malformed('too_large');
      return { to: 'quarantine', reason: `larger than ${settings.mail.maxMessageBytes} bytes (${fetched.size})` };
    }
    const mail = await readMail(fetched.source);
    if ('refused' in mail) {
      counters.malformed('unreadable');
      return { to: 'quarantine', reason: mail.refused };
    }
    if (mail.problems.length) log.info({ ...where, problems: mail.problems }, 'mail read with problems');

    const screened = screen(mail);
    if (screened.kind === 'ignored') {
      counters.ignored(screened.category);
      log.info({ ...where, reason: screened.reason }, 'mail ignored: never answered');
      return { to: 'processed' };
    }
    if (screened.kind === 'bounce') {
      await bounced(screened.recipients, screened.ours, where);
      return { to: 'processed' };
    }
    if (!mail.from) {
      counters.malformed('no_from');
      return { to: 'quarantine', reason: 'no sender address (From)' };
    }
    const sender = mail.from.address.toLowerCase();
    if (ourAddresses.has(sender)) {
      counters.ignored('own_address');
      log.warn(where, 'mail from our own address ignored (a loop)');
      return { to: 'processed' };
    }
    const sent = Number(await context.redis.get(rateKey(sender)));
    if (sent >= settings.mail.senderLimitPerHour) {
      counters.ignored('sender_rate');
      log.warn({ ...where, limit: settings.mail.senderLimitPerHour }, 'mail ignored: its sender wrote more than the hourly limit');
      return { to: 'processed' };
    }

    const { attachments, leftOut } = await keepFiles(mail, where);
    const contentHash = createHash('sha256').update(fetched.source).digest('hex');
    const message = normalize({ mail, mailbox, contentHash, attachments, leftOut }, new Date());
    if ('ignored' in message) return { to: 'quarantine', reason: message.reason };
    try {
      const stored = await context.intake.enqueue(message, { windowMs: DEDUP_WINDOW_MS });
      if (stored.status === 'queued') await context.redis.multi().incr(rateKey(sender)).expire(rateKey(sender), 3_600).exec();
      log.debug({ ...where, status: stored.status }, 'mail stored');
      return { to: 'processed' };
    } catch (err) {
      if (err instanceof InboundRefusedError) {
        counters.malformed('refused');
        return { to: 'quarantine', reason: `refused at intake: ${err.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}` };
      }
      return { to: 'stay', reason: `not stored: ${(err as Error).message}` };
    }
  }

  /**
   * The files of a mail kept on its report: of the allowed types (read from the bytes), within the
   * size and count limits. Each one left out is named in the report's text, so an operator knows.
   */
  async function keepFiles(mail: Mail, where: object): Promise<{ attachments: Attachment[]; leftOut: string[] }> {
    const attachments: Attachment[] = [];
    const leftOut: string[] = [];
    const maxBytes = Math.min(settings.mail.maxAttachmentBytes, context.attachments.maxBytes);
    for (const file of mail.files.filter((f) => !f.related)) {
      const name = (file.filename ?? 'lampiran').slice(0, 80);
      const type = sniffAttachmentType(file.data);
      if (attachments.length >= settings.mail.maxAttachments) leftOut.push(`${name}: lebih dari ${settings.mail.maxAttachments} berkas`);
      else if (file.data.length > maxBytes) leftOut.push(`${name}: lebih dari ${Math.floor(maxBytes / 1_048_576)} MB`);
      else if (!type || !allowedTypes.has(type)) leftOut.push(`${name}: jenis berkas tidak diterima`);
      else {
        const stored = await context.attachments.store({ name: file.filename, data: file.data });
        if ('refused' in stored) leftOut.push(`${name}: ${stored.refused}`);
        else attachments.push(stored);
      }
    }
    if (leftOut.length) {
      counters.malformed('attachment');
      log.info({ ...where, leftOut: leftOut.length }, 'mail files left out of the report');
    }
    return { attachments, leftOut };
  }

  /** A bounce: our notification is recorded failed, and the address is not written to again for a while. */
  async function bounced(recipients: string[], ours: string[], where: object): Promise<void> {
    let matched = 0;
    for (const id of ours) {
      const result = await context.deliveries.record({ channel: 'email', transportId: id, state: 'failed', detail: 'bounced: the address cannot receive mail' });
      if (result === 'updated') matched++;
    }
    // Only a bounce of a message we really sent marks an address: a forged one names none of ours.
    if (matched) for (const address of recipients) await context.redis.set(bouncedKey(address), '1', 'EX', BOUNCED_TTL_S);
    counters.ignored('bounce');
    log.info({ ...where, recipients: recipients.length, ours: matched }, matched ? 'bounce of our notification: the address is marked undeliverable' : 'bounce of nothing we sent: ignored');
  }

  /** Pure: a read mail → the citizen's message, or why it is none. */
  function normalize(input: MailInput, now: Date): InboundMessage | Ignored {
    const screened = screen(input.mail);
    if (screened.kind !== 'mail') return { ignored: true, reason: screened.kind === 'bounce' ? 'a bounce' : screened.reason };
    if (!input.mail.from) return { ignored: true, reason: 'no sender address (From)' };
    return toInbound(input.mail, {
      account: input.mailbox.id,
      domain: messageIdDomain(input.mailbox.from),
      contentHash: input.contentHash,
      now,
      attachments: input.attachments,
      leftOut: input.leftOut,
    });
  }

  async function send(message: OutboundMessage): Promise<SendResult> {
    const box = senders.get(message.replyContext.mailbox ?? '') ?? senders.values().next().value;
    if (!box) throw new SendError('unavailable', 'email: no mailbox configured to send from');
    if (message.to && (await context.redis.exists(bouncedKey(message.to)))) throw new SendError('invalid_recipient', 'email: the address bounced earlier');
    const reply = composeReply({ ...message, text: message.text.slice(0, MAX_TEXT) }, box);
    await box.sender.send(reply);
    return { status: 'sent', transportId: reply.messageId };
  }

  const readers = boxes.map((mailbox) => {
    const reader = new MailboxReader({
      mailbox,
      settings: settings.mail,
      log: log.child({ mailbox: mailbox.id }),
      handle: (fetched) => handle(mailbox, fetched),
      onOpen: async (uidValidity) => {
        if (uidValidities.get(mailbox.id) === uidValidity) return;
        const saved = (await context.cursors.get('email', mailbox.id)) as { uidValidity?: string } | undefined;
        if (saved?.uidValidity && saved.uidValidity !== uidValidity) {
          log.warn({ mailbox: mailbox.id }, 'mailbox UIDVALIDITY changed: its messages are renumbered; nothing is imported twice (mail is keyed by Message-ID)');
        }
        if (saved?.uidValidity !== uidValidity) await context.cursors.set('email', mailbox.id, { uidValidity });
        uidValidities.set(mailbox.id, uidValidity);
      },
    });
    const lease = new Lease(context.redis, `${context.prefix}:email:lease:${mailbox.id}`, owner, settings.mail.leaseMs, log, (held) => {
      log.info({ mailbox: mailbox.id, held }, held ? 'mailbox reader lease taken' : 'mailbox reader lease released');
      if (held) reader.start();
      else void reader.stop();
    });
    return { mailbox, reader, lease };
  });

  return {
    id: 'email',
    limits: { maxTextLength: MAX_TEXT },
    capabilities: { keywords: true, publicReplies: false },
    normalize: (input, { now }) => normalize(input, now),
    handle,
    send,
    async start() {
      for (const { lease } of readers) lease.start();
    },
    async stop() {
      for (const { lease, reader } of readers) {
        await lease.stop();
        await reader.stop();
      }
      for (const box of senders.values()) box.sender.close();
    },
    links: () =>
      readers.map(({ mailbox, reader, lease }) => {
        const state = lease.isHeld ? reader.state : 'standby';
        return { link: mailbox.id, state, ok: state !== 'down' };
      }),
  };
}
