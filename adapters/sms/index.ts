import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ChannelAdapter, DeliverySink, Ignored, IntakeSink, LinkStatus, OutboundMessage } from '../../src/core/channel.ts';
import { InboundRefusedError, SendError } from '../../src/core/errors.ts';
import { HourlyCounter } from './rate-limit.ts';
import type { InboundMessage } from '../../src/core/inbound.ts';
import { parseCitizenMessage } from '../../src/core/keywords.ts';
import { sanitizeText } from '../../src/core/text.ts';
import { SmppClient } from './client.ts';
import { smscAccounts, type SmsSettings } from './config.ts';
import { classifyDeliver, joinParts, msisdnOf, previousDedupKey, toInboundMessage, type Classified } from './inbound.ts';
import { Lease } from '../../src/queue/lease.ts';
import { sendSms } from './outbound.ts';
import { STATUS, type DeliverSm } from './pdu.ts';
import { Reassembler } from './reassembly.ts';

/**
 * SMS 1708 over SMPP 3.4: one bind per SMSC account (held by one process at a time), every
 * deliver_sm acknowledged only after what it carried is durably stored — the part in the reassembly
 * store, the whole message in the inbound queue, the receipt in PostgreSQL — and answered with
 * ESME_RX_T_APPN ("try again later") when that store is unavailable, so the SMSC redelivers.
 */

export interface SmsCounters {
  /** A message refused before any report exists: rate limit, blocklist. */
  shielded(reason: 'rate_limit' | 'blocklist'): void;
  /** A PDU the SMSC sent that we could not use. */
  malformed(reason: string): void;
}

export interface SmsAdapterContext {
  settings: SmsSettings;
  /** The producer connection: fails fast when Redis is away. */
  redis: Redis | Cluster;
  prefix: string;
  log: Logger;
  intake: IntakeSink;
  deliveries: DeliverySink;
  /** Keyed hash of a normalized address, for rate limits without keeping numbers in Redis. */
  hashAddress(address: string): string;
  counters: SmsCounters;
  /** This process, for the bind leases. */
  owner?: string;
}

export type SmsAdapter = ChannelAdapter<{ pdu: DeliverSm; account: string }> & {
  start(): Promise<void>;
  stop(): Promise<void>;
  links(): LinkStatus[];
  /** Runs one sweep of long SMS past their timeout (the timer does it too; tests call it directly). */
  sweep(now?: Date): Promise<number>;
};

interface Bind {
  client: SmppClient;
  lease: Lease;
  shortCode: string;
}

export function createSmsAdapter(context: SmsAdapterContext): SmsAdapter {
  const { settings, log, counters } = context;
  const accounts = smscAccounts(settings);
  const owner = context.owner ?? randomUUID();
  const dedupWindowMs = settings.dedupMinutes * 60_000;
  /**
   * An SMS carries no id, so the same text from the same number within the window is taken for the
   * SMSC redelivering it. For a report or a follow-up a long window is right (a second copy would be
   * a second report); a citizen repeating `CEK 123` because no answer came must be answered again,
   * so queries, which change nothing, get a short window, still longer than a redelivery after a
   * dropped bind.
   */
  const windowFor = (text: string): number => {
    const type = parseCitizenMessage(text).type;
    return type === 'status_query' || type === 'help' || type === 'empty' ? settings.queryDedupSeconds * 1_000 : dedupWindowMs;
  };
  // A part the SMSC redelivers after its message was filed is known for as long as any redelivery.
  const reassembler = new Reassembler(context.redis, { prefix: context.prefix, timeoutMs: settings.concatTimeoutMs, tombstoneMs: dedupWindowMs });
  const blocked = new Set(settings.blocklist.split(',').map((n) => n.trim()).filter(Boolean).map((n) => context.hashAddress(msisdnOf({ ton: 0, npi: 0, addr: n }))));
  const binds = new Map<string, Bind>();
  const hourly = new HourlyCounter(context.redis, context.prefix);
  let sweeper: NodeJS.Timeout | undefined;

  for (const account of accounts) {
    const client = new SmppClient(account, settings, log);
    client.on('deliver', (pdu, respond) => {
      handleDeliver(account.id, pdu).then(respond, (err: unknown) => {
        if (err instanceof InboundRefusedError) {
          // It would be refused again: a permanent error, so the SMSC stops redelivering it.
          counters.malformed('refused');
          log.warn({ smsc: account.id, problems: err.problems }, 'deliver_sm refused: the message cannot be stored');
          respond(STATUS.ESME_RX_P_APPN);
          return;
        }
        log.warn({ err: { message: (err as Error).message }, smsc: account.id }, 'deliver_sm not stored; asking the SMSC to retry');
        respond(STATUS.ESME_RX_T_APPN);
      });
    });
    client.on('malformed', (info) => counters.malformed(info.reason.split(' ')[0] ?? 'unknown'));
    const lease = new Lease(context.redis, `${context.prefix}:sms:lease:${account.id}`, owner, settings.leaseMs, log, (held) => {
      log.info({ smsc: account.id, held }, held ? 'bind lease taken' : 'bind lease released');
      if (held) client.start();
      else void client.stop();
    });
    binds.set(account.id, { client, lease, shortCode: account.shortCodes[0] ?? settings.shortCode });
  }

  async function handleDeliver(account: string, pdu: DeliverSm): Promise<number> {
    const classified: Classified = classifyDeliver(pdu, account);
    switch (classified.kind) {
      case 'rejected':
        counters.malformed('deliver_sm');
        log.warn({ smsc: account, reason: classified.reason }, 'deliver_sm refused');
        return classified.status;
      case 'receipt': {
        const result = await context.deliveries.record({ channel: 'sms', transportId: classified.messageId, state: classified.state, detail: classified.detail });
        if (result === 'unknown') log.info({ smsc: account }, 'receipt for a message we do not know');
        return STATUS.ESME_ROK;
      }
      case 'message':
      case 'part':
        // Refused before any part is acknowledged: a message with no sender could never be stored
        // (nor answered), and a long one would be refused only once its parts had been acknowledged.
        if (!sanitizeText(msisdnOf(pdu.source)).trim()) {
          counters.malformed('source_addr');
          log.warn({ smsc: account }, 'deliver_sm refused: no source address');
          return STATUS.ESME_RINVSRCADR;
        }
        return classified.kind === 'message' ? acceptMessage(account, pdu, classified) : acceptPart(account, pdu, classified);
    }
  }

  async function acceptMessage(account: string, pdu: DeliverSm, classified: Extract<Classified, { kind: 'message' }>): Promise<number> {
    if (classified.problems.length) log.info({ smsc: account, problems: classified.problems }, 'sms decoded with problems');
    const windowMs = windowFor(classified.text);
    return accept(toInboundMessage({ account, source: pdu.source, destination: pdu.destination, text: classified.text, receivedAt: new Date(), dedupWindowMs: windowMs }), windowMs);
  }

  async function acceptPart(account: string, pdu: DeliverSm, classified: Extract<Classified, { kind: 'part' }>): Promise<number> {
    const result = await reassembler.add({
      groupKey: classified.groupKey,
      seq: classified.concat.seq,
      total: classified.concat.total,
      data: classified.data,
      receivedAt: new Date().toISOString(),
    });
    if (result.status !== 'complete') return STATUS.ESME_ROK;
    const joined = joinParts(result.parts, classified.concat.total);
    if (joined.problems.length) log.info({ smsc: account, problems: joined.problems }, 'sms decoded with problems');
    const windowMs = windowFor(joined.text);
    const message = toInboundMessage({
      account,
      source: pdu.source,
      destination: pdu.destination,
      text: joined.text,
      concatRef: `${classified.concat.refBits}:${classified.concat.ref}:${classified.concat.total}`,
      receivedAt: new Date(result.parts[0]?.receivedAt ?? Date.now()),
      dedupWindowMs: windowMs,
    });
    const status = await accept(message, windowMs);
    // Released only once the whole message is stored: a crash before this re-completes it.
    await reassembler.release(classified.groupKey);
    return status;
  }

  /** The abuse shield, then the queue. Refused messages are acknowledged: a retry would not help. */
  async function accept(message: InboundMessage, windowMs: number): Promise<number> {
    const sender = context.hashAddress(message.sender!.address);
    if (blocked.has(sender)) {
      counters.shielded('blocklist');
      return STATUS.ESME_ROK;
    }
    if ((await hourly.add(sender)) > settings.rateLimitPerHour) {
      counters.shielded('rate_limit');
      return STATUS.ESME_ROK;
    }
    await context.intake.enqueue(message, { windowMs, equivalentKeys: [previousDedupKey(message, windowMs)] });
    return STATUS.ESME_ROK;
  }

  async function sweep(now = new Date()): Promise<number> {
    const expired = await reassembler.takeExpired(now);
    for (const group of expired) {
      const [account, source, destination, refBits, ref, total] = JSON.parse(group.groupKey) as [string, string, string, number, number, number];
      const joined = joinParts(group.parts, group.total);
      const message = toInboundMessage({
        account,
        source: { ton: 0, npi: 0, addr: source },
        destination: { ton: 0, npi: 0, addr: destination },
        text: joined.text,
        concatRef: `${refBits}:${ref}:${total}`,
        incomplete: joined.incomplete,
        receivedAt: new Date(group.parts[0]?.receivedAt ?? now),
        dedupWindowMs,
      });
      // Parts that never joined up are a report, incomplete: the long window.
      try {
        await accept(message, dedupWindowMs);
      } catch (err) {
        // Kept, it would be refused again at every sweep; the parts were acknowledged long ago.
        if (!(err instanceof InboundRefusedError)) throw err;
        counters.malformed('refused');
        log.warn({ smsc: account, problems: err.problems }, 'long sms refused: the message cannot be stored');
      }
      await reassembler.release(group.groupKey);
      log.info({ smsc: account, parts: group.parts.length, total: group.total, incomplete: joined.incomplete }, 'long sms filed after its timeout');
    }
    return expired.length;
  }

  return {
    id: 'sms',
    // Replies are capped at maxSegments GSM-7 segments; the templates are sized to fit three.
    limits: { maxTextLength: settings.maxSegments * 153 },
    capabilities: { keywords: true, publicReplies: false },
    normalize({ pdu, account }, { now }): InboundMessage | Ignored {
      const classified = classifyDeliver(pdu, account);
      if (classified.kind !== 'message') return { ignored: true, reason: classified.kind };
      return toInboundMessage({ account, source: pdu.source, destination: pdu.destination, text: classified.text, receivedAt: now, dedupWindowMs: windowFor(classified.text) });
    },
    async send(message: OutboundMessage) {
      const bind = binds.get(message.replyContext.smsc ?? '') ?? [...binds.values()].find((b) => b.client.state === 'bound');
      if (!bind || bind.client.state !== 'bound') throw new SendError('unavailable', 'sms: no bound SMSC here for this reply');
      return sendSms(bind.client, settings, message, message.replyContext.shortCode ?? bind.shortCode);
    },
    async start() {
      for (const bind of binds.values()) bind.lease.start();
      sweeper = setInterval(() => {
        sweep().catch((err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'long sms sweep failed'));
      }, Math.max(1_000, Math.floor(settings.concatTimeoutMs / 4)));
      sweeper.unref();
    },
    async stop() {
      clearInterval(sweeper);
      await Promise.all([...binds.values()].map(async (b) => {
        await b.client.stop();
        await b.lease.stop();
      }));
    },
    canSend: () => [...binds.values()].some((b) => b.client.state === 'bound'),
    links: () =>
      [...binds.entries()].map(([smsc, b]) => {
        // Without the lease the bind belongs to another process: standby, and that is fine.
        const state = b.lease.isHeld ? b.client.state : 'standby';
        return { link: smsc, state, ok: !b.lease.isHeld || b.client.state === 'bound' };
      }),
    sweep,
  };
}
