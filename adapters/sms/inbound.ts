import { createHash } from 'node:crypto';
import type { InboundMessage } from '../../src/core/inbound.ts';
import { concatFromSar, concatGroupKey, parseUdh, type ConcatInfo } from './concat.ts';
import { decodeUserData } from './encoding.ts';
import { STATUS, TLV, UDHI, isReceipt, tlvNumber, tlvString, type Address, type DeliverSm } from './pdu.ts';

/**
 * What one deliver_sm means, decided without I/O: a delivery receipt for one of our replies, a whole
 * citizen message, one part of a long one, or something to refuse with a status.
 */

export type DeliveryState = 'delivered' | 'failed' | 'pending';

export type Classified =
  | { kind: 'receipt'; messageId: string; state: DeliveryState; detail: string }
  | { kind: 'message'; text: string; problems: string[] }
  /** `data`: `<data_coding>.<user data, UDH removed, base64>`; parts are decoded once joined. */
  | { kind: 'part'; groupKey: string; concat: ConcatInfo; data: string; problems: string[] }
  | { kind: 'rejected'; status: number; reason: string };

/** SMPP 3.4 §5.2.28 message_state values. */
const MESSAGE_STATES: Record<number, { name: string; state: DeliveryState }> = {
  1: { name: 'ENROUTE', state: 'pending' },
  2: { name: 'DELIVERED', state: 'delivered' },
  3: { name: 'EXPIRED', state: 'failed' },
  4: { name: 'DELETED', state: 'failed' },
  5: { name: 'UNDELIVERABLE', state: 'failed' },
  6: { name: 'ACCEPTED', state: 'pending' },
  7: { name: 'UNKNOWN', state: 'pending' },
  8: { name: 'REJECTED', state: 'failed' },
};

/** The `stat:` words of the de-facto receipt text (SMPP 3.4 Appendix B). */
const STAT_WORDS: Record<string, DeliveryState> = {
  DELIVRD: 'delivered',
  EXPIRED: 'failed',
  DELETED: 'failed',
  UNDELIV: 'failed',
  REJECTD: 'failed',
  ACCEPTD: 'pending',
  ENROUTE: 'pending',
  UNKNOWN: 'pending',
};

/** Appendix B receipt text. Strict on purpose, so a citizen's words are never taken for a receipt. */
const RECEIPT_TEXT = /^id:(\S{1,65}) sub:\d{1,3} dlvrd:\d{1,3} submit date:\d{10,12} done date:\d{10,12} stat:([A-Z]{7}) err:(\w{1,3})/i;

export function classifyDeliver(pdu: DeliverSm, account: string): Classified {
  const receiptTlv = tlvString(pdu.tlvs, TLV.receipted_message_id);
  const asciiText = Buffer.from(pdu.userData).toString('latin1');
  if (isReceipt(pdu.esmClass) || receiptTlv || RECEIPT_TEXT.test(asciiText)) return classifyReceipt(pdu, receiptTlv, asciiText);

  let userData = pdu.userData;
  let concat: ConcatInfo | undefined;
  const problems: string[] = [];
  if (pdu.esmClass & UDHI) {
    const udh = parseUdh(userData);
    if (!udh.ok) return { kind: 'rejected', status: STATUS.ESME_RINVMSGLEN, reason: udh.reason };
    userData = userData.subarray(udh.headerLength);
    concat = udh.concat;
    if (udh.concatProblem) problems.push(`concatenation ignored: ${udh.concatProblem}`);
  }
  if (!concat) {
    const sar = concatFromSar({
      sar_msg_ref_num: tlvNumber(pdu.tlvs, TLV.sar_msg_ref_num),
      sar_total_segments: tlvNumber(pdu.tlvs, TLV.sar_total_segments),
      sar_segment_seqnum: tlvNumber(pdu.tlvs, TLV.sar_segment_seqnum),
    });
    if (sar && 'invalid' in sar) problems.push(`SAR ignored: ${sar.invalid}`);
    else if (sar) concat = sar;
  }
  if (concat && concat.total > 1) {
    const groupKey = concatGroupKey({ account, source: pdu.source.addr, destination: pdu.destination.addr, concat });
    return { kind: 'part', groupKey, concat, data: `${pdu.dataCoding}.${Buffer.from(userData).toString('base64')}`, problems };
  }
  const decoded = decodeUserData(userData, pdu.dataCoding);
  problems.push(...decoded.problems);
  return { kind: 'message', text: decoded.text, problems };
}

function classifyReceipt(pdu: DeliverSm, receiptTlv: string | undefined, text: string): Classified {
  const match = RECEIPT_TEXT.exec(text);
  const messageId = receiptTlv ?? match?.[1];
  if (!messageId) return { kind: 'rejected', status: STATUS.ESME_RSYSERR, reason: 'delivery receipt without a message id' };
  const stateTlv = tlvNumber(pdu.tlvs, TLV.message_state);
  const fromTlv = stateTlv !== undefined ? MESSAGE_STATES[stateTlv] : undefined;
  const stat = match?.[2]?.toUpperCase();
  const state = fromTlv?.state ?? (stat ? STAT_WORDS[stat] : undefined) ?? 'pending';
  const error = match?.[3] && match[3] !== '000' ? ` err:${match[3]}` : '';
  return { kind: 'receipt', messageId, state, detail: `${fromTlv?.name ?? stat ?? 'unknown'}${error}` };
}

/** `+62…` for an international number, as the rest of the gateway writes MSISDNs. */
export function msisdnOf(address: Address): string {
  const digits = address.addr.replace(/[^0-9]/g, '');
  if (address.ton === 1 && digits) return `+${digits}`;
  if (digits.startsWith('62')) return `+${digits}`;
  if (digits.startsWith('0')) return `+62${digits.slice(1)}`;
  return address.addr;
}

export interface MessageInput {
  account: string;
  source: Address;
  destination: Address;
  text: string;
  /** For a joined message: its reference, so two long SMS with equal text stay two. */
  concatRef?: string;
  incomplete?: boolean;
  receivedAt: Date;
  dedupWindowMs: number;
}

/**
 * The InboundMessage of one whole SMS. MO messages have no id of their own, so the dedup key is a
 * hash of what identifies one: the SMSC account, both numbers, the concatenation reference and the
 * text, within a window as long as the SMSC's redelivery (`bucket` below). The previous window's key
 * is checked too (see `previousDedupKey`), so a redelivery across the boundary is still caught.
 */
export function toInboundMessage(input: MessageInput): InboundMessage {
  const bucket = Math.floor(input.receivedAt.getTime() / input.dedupWindowMs);
  const hash = contentHash(input);
  const id = `${hash}_${bucket.toString(36)}`;
  return {
    channel: 'sms',
    account: input.account,
    externalId: id,
    dedupKey: `sms_${id}`,
    sameAs: { ids: [`${hash}_${(bucket - 1).toString(36)}`, `${hash}_${(bucket + 1).toString(36)}`], withinMs: input.dedupWindowMs },
    sender: { address: msisdnOf(input.source) },
    text: input.text,
    attachments: [],
    receivedAt: input.receivedAt.toISOString(),
    replyContext: {
      smsc: input.account,
      shortCode: input.destination.addr,
    },
    ...(input.incomplete ? { incomplete: true } : {}),
  };
}

export function previousDedupKey(message: InboundMessage, dedupWindowMs: number): string {
  const [hash] = message.externalId.split('_');
  const bucket = Math.floor(new Date(message.receivedAt).getTime() / dedupWindowMs) - 1;
  return `sms_${hash}_${bucket.toString(36)}`;
}

function contentHash(input: MessageInput): string {
  return createHash('sha256')
    .update(JSON.stringify([input.account, input.source.addr, input.destination.addr, input.concatRef ?? '', input.text]))
    .digest('base64url')
    .slice(0, 22)
    .replace(/[_-]/g, 'x');
}

/**
 * Joins reassembled parts (base64 user data) and decodes them. Runs of consecutive parts are decoded
 * as one, since a phone may split a GSM escape pair or a UTF-16 surrogate pair across two parts;
 * missing parts leave a visible gap, so an operator sees the text is partial.
 */
export function joinParts(parts: readonly { seq: number; data: string }[], total: number): { text: string; incomplete: boolean; problems: string[] } {
  const split = (data: string) => {
    const dot = data.indexOf('.');
    return { dataCoding: Number(data.slice(0, dot)), bytes: Buffer.from(data.slice(dot + 1), 'base64') };
  };
  // The first part's alphabet stands for the message: a phone does not switch alphabet mid-message.
  const dataCoding = parts[0] ? split(parts[0].data).dataCoding : 0;
  const bySeq = new Map(parts.map((p) => [p.seq, split(p.data).bytes]));
  const runs: Buffer[][] = [[]];
  let missing = false;
  for (let seq = 1; seq <= total; seq++) {
    const bytes = bySeq.get(seq);
    if (bytes) runs[runs.length - 1]!.push(bytes);
    else {
      missing = true;
      if (runs[runs.length - 1]!.length) runs.push([]);
    }
  }
  const problems: string[] = [];
  const texts = runs
    .filter((run) => run.length)
    .map((run) => {
      const decoded = decodeUserData(Buffer.concat(run), dataCoding);
      problems.push(...decoded.problems);
      return decoded.text.trim();
    });
  const leadingGap = !bySeq.has(1);
  const trailingGap = !bySeq.has(total);
  const text = `${leadingGap ? '[…] ' : ''}${texts.join(' […] ')}${trailingGap ? ' […]' : ''}`;
  return { text, incomplete: missing, problems };
}
