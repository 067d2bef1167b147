import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import smpp, { type PDU, type Server, type Session } from 'smpp';
import {
  DATA_CODING,
  SINGLE_LIMIT,
  chooseEncoding,
  decodeText,
  encodeText,
  parseUdh,
  partLimit,
  splitEncoded,
  udh16,
  udh8,
  type ConcatInfo,
  type TextEncoding,
} from './text.ts';

/**
 * An SMSC that speaks real SMPP 3.4 (on `smpp.createServer()`), for the gateway's tests, benchmarks and
 * a newcomer's first text (scripts/sim-smsc.ts). It plays the operator's side: accepts binds, records
 * every submit_sm (our replies to citizens), returns delivery receipts, delivers MO texts as deliver_sm
 * it encodes and splits itself, and has knobs for the faults real SMSCs show (throttling, dropped
 * binds, withheld responses, slowness).
 *
 * Privacy: the `log` callback only ever gets ids, counts and statuses, never a number or message text,
 * so it is safe to wire to any logger. The CLI prints texts itself from the events.
 */

/** SMPP 3.4 command_status values the simulator uses. Ours, so we do not depend on the package's table. */
export const SMPP_STATUS = {
  ESME_ROK: 0x00,
  ESME_RINVMSGLEN: 0x01,
  ESME_RINVCMDID: 0x03,
  ESME_RINVBNDSTS: 0x04,
  ESME_RALYBND: 0x05,
  ESME_RSYSERR: 0x08,
  ESME_RBINDFAIL: 0x0d,
  ESME_RINVPASWD: 0x0e,
  ESME_RMSGQFUL: 0x14,
  ESME_RTHROTTLED: 0x58,
} as const;

const ESM_UDHI = 0x40;
const ESM_DELIVERY_RECEIPT = 0x04;
const MESSAGE_STATE_DELIVERED = 2;
const TLV_SAR_REF = 0x020c;
const TLV_SAR_TOTAL = 0x020e;
const TLV_SAR_SEQ = 0x020f;
const TLV_MESSAGE_PAYLOAD = 0x0424;
const HEADER_LENGTH = 16;

export type BindMode = 'transceiver' | 'receiver' | 'transmitter';

export interface SimulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Defaults to 127.0.0.1: the simulator is never meant to face a network. */
  host?: string;
  /** When set, binds with another system_id are refused (ESME_RBINDFAIL). Unset accepts any. */
  systemId?: string;
  /** When set, binds with another password are refused (ESME_RINVPASWD). Unset accepts any. */
  password?: string;
  /** Send a delivery receipt after each accepted submit_sm that asked for one. Default true. */
  receipts?: boolean;
  /** Delay between a submit_sm_resp and its receipt, like a real handset ack. Default 20 ms. */
  receiptDelayMs?: number;
  log?: (line: string) => void;
}

export interface SubmitRecord {
  /** Position in `submits`. */
  index: number;
  sessionId: number;
  systemId: string;
  receivedAt: number;
  sequenceNumber: number;
  source: string;
  sourceTon: number;
  sourceNpi: number;
  destination: string;
  destTon: number;
  destNpi: number;
  /** The destination as a citizen would write it: `+` prefixed when the TON is international. */
  to: string;
  esmClass: number;
  dataCoding: number;
  registeredDelivery: number;
  /** short_message exactly as it came over the wire, UDH included. */
  shortMessage: Buffer;
  messagePayload?: Buffer;
  concat?: ConcatInfo;
  /** This PDU's text, UDH stripped, decoded by data_coding. */
  text: string;
  /** Encoding faults a handset would show (see text.ts and `checkLength`); empty when clean. */
  issues: string[];
  /** The command_status we answered (non-zero when throttled). */
  status: number;
  /** The message_id we returned; null when we refused the submit. */
  messageId: string | null;
  /** Answered with generic_nack (`nackNext`) rather than submit_sm_resp; `status` is the nack's. */
  nacked?: true;
}

export interface Reply {
  /** Index of the first submit of this message in `submits`. */
  index: number;
  to: string;
  from: string;
  text: string;
  /** Parts received (duplicates counted once). */
  parts: number;
  /** All parts arrived (always true for a single-part message). */
  complete: boolean;
}

export interface BindInfo {
  sessionId: number;
  mode: BindMode;
  systemId: string;
}

export interface ReceiptRecord {
  messageId: string;
  sessionId: number;
  /** deliver_sm_resp status, or null when the ESME never answered / no receiving session. */
  status: number | null;
}

export interface SimulatorEvents {
  bind: BindInfo;
  /** A session ended (unbind, socket closed, dropBind). */
  close: { sessionId: number };
  submit: SubmitRecord;
  /** A reply became complete (every part of a multipart message arrived). */
  reply: Reply;
  receipt: ReceiptRecord;
}

export type MoSplit = 'udh8' | 'udh16' | 'sar' | 'payload' | 'none';

export interface MoInput {
  from: string;
  /** Defaults to '1708', LAPOR!'s short code. */
  to?: string;
  text: string;
  /** Default 'auto': GSM when every character fits, else UCS-2. */
  encoding?: TextEncoding | 'auto';
  /**
   * How to carry text longer than one SMS (default 'udh8'). A text that fits one SMS goes as one plain
   * PDU unless 'payload' is asked. 'none' puts the whole text in one short_message (max 254 octets),
   * like a broken SMSC would.
   */
  split?: MoSplit;
  order?: 'in' | 'reverse' | 'shuffle';
  /** 1-based part numbers to send a second time, right after the first copy. */
  duplicate?: number[];
  /** Concatenation reference; by default a per-simulator counter. */
  ref?: number;
  /** Per deliver_sm_resp. Default 10 s. */
  timeoutMs?: number;
}

export interface MoResult {
  /** deliver_sm_resp command_status per PDU, in send order. */
  statuses: number[];
  /** Part number (1-based) of each PDU, in send order. */
  order: number[];
}

export interface FloodOptions {
  /** Messages (a multipart message counts once). */
  count: number;
  /** Messages per second; unset or 0 = as fast as the window allows. */
  ratePerSec?: number;
  /** Relative weights of message kinds. Default all single. */
  mix?: { single: number; multipart: number; ucs2: number };
  from?: (i: number) => string;
  /** Overrides the generated text; a 'ucs2' pick still forces UCS-2. */
  textFor?: (i: number) => string;
  /** Max deliver_sm outstanding across the flood. Default 10. */
  window?: number;
  /** Hard bound: nothing is sent after it and the flood returns at it. */
  timeoutMs: number;
}

export interface FloodResult {
  /** Messages whose every PDU was sent. */
  sent: number;
  /** Messages whose every PDU was answered ESME_ROK. */
  acked: number;
  /** Messages with at least one non-zero deliver_sm_resp. */
  nacked: number;
  /** deliver_sm PDUs sent. */
  pdus: number;
  elapsedMs: number;
  /** Per acked message: first PDU sent to last response. */
  ackLatencyMs: number[];
}

interface Pending {
  resolve: (pdu: PDU) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface Link {
  id: number;
  session: Session;
  socket: Socket;
  mode: BindMode | null;
  systemId: string;
  boundAt: number;
  pending: Map<number, Pending>;
  tap: RawTap;
  closed: boolean;
  /** `silence()`: the peer is gone; nothing received is answered and nothing is sent. */
  silent: boolean;
}

interface ReplyGroup {
  key: string | null;
  index: number;
  to: string;
  from: string;
  total: number;
  parts: Map<number, string>;
  complete: boolean;
}

/**
 * The package decodes short_message into a string with its own codec, which would hide exactly the
 * faults we want to see. Node emits 'data' for every chunk a 'readable' consumer read()s, so listening
 * to 'data' beside the package's 'readable' gives us the same bytes without changing its flow; we frame
 * them into PDUs ourselves and hand each to the matching decoded PDU.
 */
class RawTap {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly queue: Buffer[] = [];

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (this.buffer.length >= 4) {
      const length = this.buffer.readUInt32BE(0);
      if (length < HEADER_LENGTH) {
        // Framing is lost; the package will error the session, so stop collecting.
        this.buffer = Buffer.alloc(0);
        return;
      }
      if (this.buffer.length < length) return;
      this.queue.push(this.buffer.subarray(0, length));
      this.buffer = this.buffer.subarray(length);
    }
  }

  /** The raw bytes of `pdu`, if the framing agrees with the package's. */
  take(pdu: PDU): Buffer | undefined {
    const raw = this.queue.shift();
    if (!raw || raw.readUInt32BE(4) !== pdu.command_id || raw.readUInt32BE(12) !== pdu.sequence_number) {
      this.queue.length = 0;
      return undefined;
    }
    return raw;
  }
}

/** short_message and TLVs of a raw submit_sm, walked by the SMPP 3.4 layout. */
function parseSubmitBody(raw: Buffer): { shortMessage: Buffer; tlvs: Map<number, Buffer> } | null {
  let offset = HEADER_LENGTH;
  const skipCString = (): boolean => {
    const end = raw.indexOf(0, offset);
    if (end < 0) return false;
    offset = end + 1;
    return true;
  };
  // service_type; source ton, npi, addr; dest ton, npi, addr
  if (!skipCString()) return null;
  offset += 2;
  if (!skipCString()) return null;
  offset += 2;
  if (!skipCString()) return null;
  // esm_class, protocol_id, priority_flag
  offset += 3;
  // schedule_delivery_time, validity_period
  if (!skipCString() || !skipCString()) return null;
  // registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
  offset += 4;
  if (offset >= raw.length) return null;
  const smLength = raw[offset] ?? 0;
  offset += 1;
  if (offset + smLength > raw.length) return null;
  const shortMessage = Buffer.from(raw.subarray(offset, offset + smLength));
  offset += smLength;
  const tlvs = new Map<number, Buffer>();
  while (offset + 4 <= raw.length) {
    const tag = raw.readUInt16BE(offset);
    const length = raw.readUInt16BE(offset + 2);
    offset += 4;
    if (offset + length > raw.length) return null;
    tlvs.set(tag, Buffer.from(raw.subarray(offset, offset + length)));
    offset += length;
  }
  return { shortMessage, tlvs };
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function num(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

function displayNumber(addr: string, ton: number): string {
  return ton === 1 && /^\d+$/.test(addr) ? `+${addr}` : addr;
}

/** TON/NPI the way operators deliver them: `+62…` international, `0…` national, letters alphanumeric. */
function address(addr: string): { addr: string; ton: number; npi: number } {
  if (addr.startsWith('+')) return { addr: addr.slice(1), ton: 1, npi: 1 };
  if (/^0\d+$/.test(addr)) return { addr, ton: 2, npi: 1 };
  if (/[^\d]/.test(addr)) return { addr, ton: 5, npi: 0 };
  return { addr, ton: 0, npi: 1 };
}

/** 'YYMMDDhhmm' in UTC, the receipt's date format. */
function receiptDate(at: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(at.getUTCFullYear() % 100)}${two(at.getUTCMonth() + 1)}${two(at.getUTCDate())}${two(at.getUTCHours())}${two(at.getUTCMinutes())}`;
}

function statusName(status: number): string {
  const name = Object.entries(SMPP_STATUS).find(([, value]) => value === status)?.[0];
  return name ?? `0x${status.toString(16).padStart(8, '0')}`;
}

/** Length faults: more than a single SMS (or one part, counting the UDH) can carry on the air. */
function checkLength(body: Buffer, udhLength: number, dataCoding: number): string | null {
  const textOctets = body.length - udhLength;
  if (dataCoding === DATA_CODING.gsm) {
    const udhSeptets = Math.ceil((udhLength * 8) / 7);
    return udhSeptets + textOctets > 160 ? 'too-long' : null;
  }
  return body.length > 140 ? 'too-long' : null;
}

interface MoPdu {
  seq: number;
  fields: Record<string, unknown>;
}

type FloodKind = 'single' | 'multipart' | 'ucs2';

/** Deterministic, evenly spread pick by weight: i × golden ratio mod 1 walks [0,1) without clumping. */
function pickKind(i: number, mix: { single: number; multipart: number; ucs2: number }): FloodKind {
  const total = mix.single + mix.multipart + mix.ucs2;
  if (total <= 0) return 'single';
  const x = ((i * 0.6180339887498949) % 1) * total;
  if (x < mix.single) return 'single';
  if (x < mix.single + mix.multipart) return 'multipart';
  return 'ucs2';
}

function floodText(i: number, kind: FloodKind): string {
  if (kind === 'ucs2') return `LAPOR #${i} banjir setinggi lutut di Jl. Merdeka 🌊 mohon bantuan`;
  const base = `LAPOR uji beban #${i}: jalan rusak di depan SDN ${i % 50}, lubang [besar] ~2m, sudah 3 bulan.`;
  return kind === 'single' ? base : `${base} ${'Mohon segera diperbaiki sebelum musim hujan. '.repeat(5)}${base}`;
}

export class SmscSimulator {
  readonly submits: SubmitRecord[] = [];
  readonly receipts: ReceiptRecord[] = [];

  private readonly emitter = new EventEmitter();
  private readonly links = new Map<Session, Link>();
  private readonly groups: ReplyGroup[] = [];
  private readonly openGroups = new Map<string, ReplyGroup>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly held: Array<() => void> = [];
  private nextLinkId = 1;
  private messageCounter: number;
  private refCounter: number;
  private throttle = { count: 0, status: SMPP_STATUS.ESME_RTHROTTLED as number };
  private nack = { count: 0, status: SMPP_STATUS.ESME_RINVCMDID as number };
  private holding = false;
  private delayMs = 0;
  private closing = false;

  private constructor(
    private readonly server: Server,
    private readonly options: SimulatorOptions,
    readonly port: number,
  ) {
    // Random starts so two simulators in one test run do not hand out the same ids and refs.
    this.messageCounter = randomInt(0x10000000, 0x7fffffff);
    this.refCounter = randomInt(0, 0x10000);
    this.emitter.on('error', (error: Error) => this.log(`event listener failed: ${error.message}`));
  }

  static async start(options: SimulatorOptions = {}): Promise<SmscSimulator> {
    const server = smpp.createServer();
    const host = options.host ?? '127.0.0.1';
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
    const sim = new SmscSimulator(server, options, port);
    server.on('error', (error: Error) => sim.log(`server error: ${error.message}`));
    server.on('session', (session: Session) => sim.onSession(session));
    sim.log(`listening on ${host}:${port}`);
    return sim;
  }

  on<K extends keyof SimulatorEvents>(event: K, listener: (value: SimulatorEvents[K]) => void): this {
    this.emitter.on(event, listener);
    return this;
  }

  off<K extends keyof SimulatorEvents>(event: K, listener: (value: SimulatorEvents[K]) => void): this {
    this.emitter.off(event, listener);
    return this;
  }

  /** Bound sessions. */
  get sessions(): number {
    return this.boundLinks().length;
  }

  // ---- replies (what the gateway sent to citizens) ----

  /** Accepted submits joined into messages (concatenated parts by reference), in arrival order. */
  replies(): Reply[] {
    return this.groups.map((g) => this.toReply(g));
  }

  async waitForSubmits(n: number, timeoutMs = 5000): Promise<SubmitRecord[]> {
    await this.waitUntil(() => this.submits.length >= n, 'submit', timeoutMs, () => `${this.submits.length}/${n} submit_sm`);
    return this.submits.slice(0, n);
  }

  /** Waits for `n` complete replies. */
  async waitForReplies(n: number, timeoutMs = 5000): Promise<Reply[]> {
    const complete = () => this.replies().filter((r) => r.complete);
    await this.waitUntil(() => complete().length >= n, 'reply', timeoutMs, () => `${complete().length}/${n} replies`);
    return complete().slice(0, n);
  }

  async waitForBind(timeoutMs = 5000): Promise<void> {
    await this.waitUntil(() => this.sessions > 0, 'bind', timeoutMs, () => 'a bind');
  }

  // ---- fault knobs ----

  /** The next `n` submit_sm are answered with `status` (and not delivered). */
  throttleNext(n: number, status: number = SMPP_STATUS.ESME_RTHROTTLED): void {
    this.throttle = { count: n, status };
  }

  /** Destroys the socket of every session, bound or not, without unbind: a dead link. */
  dropBind(): number {
    const links = [...this.links.values()];
    for (const link of links) link.socket.destroy();
    this.log(`dropped ${links.length} session(s)`);
    return links.length;
  }

  /** While held, submit_sm are recorded but not answered, so the ESME's window fills up. */
  holdResponses(hold: boolean): void {
    this.holding = hold;
    if (!hold) for (const respond of this.held.splice(0)) this.schedule(respond);
  }

  /** Every submit_sm response waits this long. */
  respondDelay(ms: number): void {
    this.delayMs = Math.max(0, ms);
  }

  /**
   * The next `n` submit_sm are answered with generic_nack carrying `status` (and not delivered), as an
   * SMSC that lost track of the session does. They are recorded with that status and `nacked: true`.
   * Takes precedence over `throttleNext`.
   */
  nackNext(n: number, status: number = SMPP_STATUS.ESME_RINVCMDID): void {
    this.nack = { count: Math.max(0, n), status };
  }

  /**
   * `true`: the sessions open now go silent — a half-open link, socket open and peer gone. Whatever
   * they receive (enquire_link, submit_sm, responses) is dropped unanswered, nothing more is sent on
   * them, and they no longer count as bound (`sessions`, `sendMo`, `sendPdu` use other sessions).
   * Sessions that connect afterwards are served as usual. `false`: every session answers again.
   * Returns how many sessions changed.
   */
  silence(on: boolean): number {
    const links = [...this.links.values()].filter((l) => !l.closed && l.silent !== on);
    for (const link of links) link.silent = on;
    this.log(`${on ? 'silenced' : 'unsilenced'} ${links.length} session(s)`);
    return links.length;
  }

  // ---- MO (what citizens text) ----

  async sendMo(input: MoInput): Promise<MoResult> {
    const link = this.receiverLink();
    if (!link) throw new Error('no ESME is bound as receiver or transceiver');
    const pdus = this.buildMo(input);
    const order = this.orderParts(pdus.length, input.order ?? 'in', input.duplicate ?? []);
    const timeoutMs = input.timeoutMs ?? 10_000;
    const responses = order.map((seq) => {
      const part = pdus[seq - 1];
      if (!part) throw new RangeError(`no part ${seq}`);
      return this.request(link, new smpp.PDU('deliver_sm', { ...part.fields }), timeoutMs);
    });
    const statuses = (await Promise.all(responses)).map((pdu) => pdu.command_status);
    this.log(`mo: ${order.length} deliver_sm on session ${link.id}, statuses ${statuses.map(statusName).join(',')}`);
    return { statuses, order };
  }

  /** Writes bytes as they are on a bound session's socket (malformed-PDU tests). */
  sendRaw(bytes: Buffer): void {
    const link = this.currentLink();
    if (!link) throw new Error('no ESME is bound');
    link.socket.write(bytes);
  }

  /**
   * Sends any command on the current session and resolves with its response; resolves null at once
   * for a command that has no response (a *_resp or generic_nack sent unsolicited).
   */
  async sendPdu(command: string, fields: Record<string, unknown> = {}, timeoutMs = 5000): Promise<PDU | null> {
    const link = this.currentLink();
    if (!link) throw new Error('no ESME is bound');
    if (!smpp.commands[command]) throw new RangeError(`unknown SMPP command ${command}`);
    const pdu = new smpp.PDU(command, { ...fields });
    if (pdu.isResponse()) {
      link.session.send(pdu);
      return null;
    }
    return this.request(link, pdu, timeoutMs);
  }

  // ---- load ----

  async flood(options: FloodOptions): Promise<FloodResult> {
    const started = performance.now();
    const deadline = started + options.timeoutMs;
    const window = Math.max(1, options.window ?? 10);
    const mix = options.mix ?? { single: 1, multipart: 0, ucs2: 0 };
    const from = options.from ?? ((i: number) => `+62812${String(i).padStart(7, '0')}`);
    const interval = options.ratePerSec ? 1000 / options.ratePerSec : 0;
    const result: FloodResult = { sent: 0, acked: 0, nacked: 0, pdus: 0, elapsedMs: 0, ackLatencyMs: [] };
    let outstanding = 0;
    let wake: (() => void) | null = null;
    const notify = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    // Sleeps until a response frees a slot or `until` (performance.now() time) passes.
    const sleep = (until: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, until - performance.now()));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        wake = done;
      });
    const messages: Promise<void>[] = [];
    let cursor = 0;

    for (let i = 0; i < options.count; i++) {
      const due = started + i * interval;
      while (performance.now() < due && performance.now() < deadline) await sleep(Math.min(due, deadline));
      if (performance.now() >= deadline) break;
      const receivers = this.boundLinks().filter((l) => l.mode !== 'transmitter');
      if (receivers.length === 0) break;
      // Round-robin over receiving binds, the way an operator spreads MO over an ESME's binds.
      const link = receivers[cursor++ % receivers.length] as Link;
      const kind = pickKind(i, mix);
      const text = options.textFor ? options.textFor(i) : floodText(i, kind);
      const pdus = this.buildMo({ from: from(i), text, encoding: kind === 'ucs2' ? 'ucs2' : 'auto' });
      const firstSent = performance.now();
      const answers: Promise<number>[] = [];
      let complete = true;
      for (const part of pdus) {
        while (outstanding >= window && performance.now() < deadline) await sleep(deadline);
        if (performance.now() >= deadline || link.closed) {
          complete = false;
          break;
        }
        outstanding++;
        result.pdus++;
        const answer = this.request(link, new smpp.PDU('deliver_sm', part.fields), deadline - performance.now())
          .then((pdu) => pdu.command_status)
          .finally(() => {
            outstanding--;
            notify();
          });
        answers.push(answer);
      }
      if (!complete) {
        // Observe the orphaned promises so a late timeout is not an unhandled rejection.
        for (const a of answers) a.catch(() => undefined);
        break;
      }
      result.sent++;
      messages.push(
        Promise.allSettled(answers).then((settled) => {
          if (settled.some((s) => s.status === 'fulfilled' && s.value !== 0)) result.nacked++;
          else if (settled.every((s) => s.status === 'fulfilled')) {
            result.acked++;
            result.ackLatencyMs.push(performance.now() - firstSent);
          }
        }),
      );
    }
    // Requests time out at the deadline, so this is bounded too.
    await Promise.all(messages);
    result.elapsedMs = performance.now() - started;
    this.log(`flood: ${result.sent}/${options.count} sent, ${result.acked} acked, ${result.nacked} nacked in ${Math.round(result.elapsedMs)} ms`);
    return result;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.held.length = 0;
    for (const link of this.links.values()) {
      this.failPending(link, 'simulator closed');
      link.socket.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- internals ----

  private log(line: string): void {
    this.options.log?.(`smsc-sim: ${line}`);
  }

  private boundLinks(): Link[] {
    return [...this.links.values()].filter((l) => l.mode !== null && !l.closed && !l.silent).sort((a, b) => a.boundAt - b.boundAt);
  }

  /** The most recently bound session. */
  private currentLink(): Link | undefined {
    return this.boundLinks().at(-1);
  }

  private receiverLink(): Link | undefined {
    return this.boundLinks()
      .filter((l) => l.mode !== 'transmitter')
      .at(-1);
  }

  private onSession(session: Session): void {
    const socket = session.socket;
    const link: Link = {
      id: this.nextLinkId++,
      session,
      socket,
      mode: null,
      systemId: '',
      boundAt: 0,
      pending: new Map(),
      tap: new RawTap(),
      closed: false,
      silent: false,
    };
    this.links.set(session, link);
    // Like a real SMSC (and the gateway's client), the PDUs of one tick leave in one write: a write
    // per PDU made the simulator's socket writes a large share of the benchmark process's CPU,
    // charged to whichever ESME it was flooding.
    const send = session.send.bind(session);
    session.send = ((...args: Parameters<Session['send']>) => {
      if (!socket.writableCorked) {
        socket.cork();
        process.nextTick(() => socket.uncork());
      }
      return send(...args);
    }) as Session['send'];
    socket.on('data', (chunk: Buffer) => link.tap.push(chunk));
    socket.on('error', (error: Error) => this.log(`session ${link.id} socket error: ${error.message}`));
    session.on('error', (error: Error) => {
      // The package stops reading after a PDU it cannot parse; a real SMSC would drop such a link too.
      this.log(`session ${link.id} error: ${error.message}; closing it`);
      socket.destroy();
    });
    session.on('close', () => {
      link.closed = true;
      this.links.delete(session);
      this.failPending(link, 'session closed');
      this.log(`session ${link.id} closed`);
      this.emitter.emit('close', { sessionId: link.id });
    });
    session.on('pdu', (pdu: PDU) => {
      try {
        this.onPdu(link, pdu);
      } catch (error) {
        this.log(`session ${link.id} failed on ${pdu.command}: ${(error as Error).message}`);
      }
    });
    this.log(`session ${link.id} connected`);
  }

  private onPdu(link: Link, pdu: PDU): void {
    const raw = link.tap.take(pdu);
    if (link.silent) {
      this.log(`session ${link.id} is silent: ${pdu.command} dropped`);
      return;
    }
    if (pdu.isResponse()) {
      const pending = link.pending.get(pdu.sequence_number);
      if (pending) {
        link.pending.delete(pdu.sequence_number);
        clearTimeout(pending.timer);
        pending.resolve(pdu);
      }
      return;
    }
    switch (pdu.command) {
      case 'bind_transceiver':
      case 'bind_receiver':
      case 'bind_transmitter':
        this.onBind(link, pdu);
        return;
      case 'enquire_link':
        link.session.send(pdu.response());
        return;
      case 'unbind':
        link.mode = null;
        link.session.send(pdu.response(), undefined, () => link.socket.end());
        this.log(`session ${link.id} unbound`);
        return;
      case 'submit_sm':
        if (link.mode === null || link.mode === 'receiver') {
          link.session.send(pdu.response({ command_status: SMPP_STATUS.ESME_RINVBNDSTS }));
          return;
        }
        this.onSubmit(link, pdu, raw);
        return;
      case 'unknown':
        link.session.send(pdu.response());
        return;
      default: {
        const status = link.mode === null ? SMPP_STATUS.ESME_RINVBNDSTS : SMPP_STATUS.ESME_RINVCMDID;
        // Commands without a *_resp (outbind, alert_notification) can only be generic_nacked.
        const response = smpp.commands[`${pdu.command}_resp`]
          ? pdu.response({ command_status: status })
          : new smpp.PDU('generic_nack', { command_status: status, sequence_number: pdu.sequence_number });
        link.session.send(response);
      }
    }
  }

  private onBind(link: Link, pdu: PDU): void {
    const mode = pdu.command.slice('bind_'.length) as BindMode;
    const systemId = str(pdu.system_id);
    let status: number = SMPP_STATUS.ESME_ROK;
    if (link.mode !== null) status = SMPP_STATUS.ESME_RALYBND;
    else if (this.options.systemId !== undefined && systemId !== this.options.systemId) status = SMPP_STATUS.ESME_RBINDFAIL;
    else if (this.options.password !== undefined && str(pdu.password) !== this.options.password) status = SMPP_STATUS.ESME_RINVPASWD;
    if (status !== SMPP_STATUS.ESME_ROK) {
      link.session.send(pdu.response({ command_status: status }));
      this.log(`session ${link.id} ${pdu.command} refused: ${statusName(status)}`);
      return;
    }
    link.mode = mode;
    link.systemId = systemId;
    link.boundAt = performance.now();
    link.session.send(pdu.response({ system_id: 'LAPORSIM' }));
    this.log(`session ${link.id} bound as ${mode} (system_id ${systemId})`);
    this.emitter.emit('bind', { sessionId: link.id, mode, systemId });
  }

  private onSubmit(link: Link, pdu: PDU, raw: Buffer | undefined): void {
    const issues: string[] = [];
    const body = raw ? parseSubmitBody(raw) : null;
    if (!body) issues.push('raw-unavailable');
    const shortMessage = body?.shortMessage ?? Buffer.alloc(0);
    const messagePayload = body?.tlvs.get(TLV_MESSAGE_PAYLOAD);
    const esmClass = num(pdu.esm_class);
    const dataCoding = num(pdu.data_coding);
    if (messagePayload && shortMessage.length > 0) issues.push('short-message-and-payload');
    const carrier = messagePayload && shortMessage.length === 0 ? messagePayload : shortMessage;

    let concat: ConcatInfo | undefined;
    let udhLength = 0;
    if (esmClass & ESM_UDHI) {
      const udh = parseUdh(carrier);
      if (!udh.ok) issues.push('bad-udh');
      udhLength = udh.length;
      concat = udh.concat;
    } else {
      const ref = body?.tlvs.get(TLV_SAR_REF);
      const total = body?.tlvs.get(TLV_SAR_TOTAL);
      const seq = body?.tlvs.get(TLV_SAR_SEQ);
      if (ref && total && seq && ref.length === 2) {
        concat = { kind: 'sar', ref: ref.readUInt16BE(0), total: total[0] ?? 0, seq: seq[0] ?? 0 };
      }
    }
    if (concat && (concat.total === 0 || concat.seq === 0 || concat.seq > concat.total)) issues.push('bad-concat-numbers');
    if (carrier === shortMessage) {
      const tooLong = checkLength(shortMessage, udhLength, dataCoding);
      if (tooLong) issues.push(tooLong);
    }
    const decoded = decodeText(carrier.subarray(udhLength), dataCoding);
    issues.push(...decoded.issues);

    let status: number = SMPP_STATUS.ESME_ROK;
    let nacked = false;
    if (this.nack.count > 0) {
      this.nack.count--;
      status = this.nack.status;
      nacked = true;
    } else if (this.throttle.count > 0) {
      this.throttle.count--;
      status = this.throttle.status;
    }
    const messageId = status === SMPP_STATUS.ESME_ROK && !nacked ? (this.messageCounter++).toString(16).padStart(10, '0') : null;
    const destination = str(pdu.destination_addr);
    const destTon = num(pdu.dest_addr_ton);
    const record: SubmitRecord = {
      index: this.submits.length,
      sessionId: link.id,
      systemId: link.systemId,
      receivedAt: Date.now(),
      sequenceNumber: pdu.sequence_number,
      source: str(pdu.source_addr),
      sourceTon: num(pdu.source_addr_ton),
      sourceNpi: num(pdu.source_addr_npi),
      destination,
      destTon,
      destNpi: num(pdu.dest_addr_npi),
      to: displayNumber(destination, destTon),
      esmClass,
      dataCoding,
      registeredDelivery: num(pdu.registered_delivery),
      shortMessage,
      ...(messagePayload ? { messagePayload } : {}),
      ...(concat ? { concat } : {}),
      text: decoded.text,
      issues,
      status,
      messageId,
      ...(nacked ? { nacked: true as const } : {}),
    };
    this.submits.push(record);
    const issueNote = issues.length ? `, issues ${issues.join(',')}` : '';
    const partNote = concat ? ` part ${concat.seq}/${concat.total} (${concat.kind})` : '';
    this.log(`session ${link.id} submit_sm #${record.index}${partNote} dc=${dataCoding} → ${nacked ? 'generic_nack ' : ''}${statusName(status)}${issueNote}`);
    this.emitter.emit('submit', record);
    if (status === SMPP_STATUS.ESME_ROK && !nacked) this.addToReplies(record);

    const respond = () => {
      if (link.silent) return;
      if (nacked) {
        link.session.send(new smpp.PDU('generic_nack', { command_status: status, sequence_number: pdu.sequence_number }));
        return;
      }
      const response = messageId ? pdu.response({ message_id: messageId }) : pdu.response({ command_status: status });
      link.session.send(response, undefined, () => {
        // SMPP 3.4 §5.2.17: bits 1-0 = 01 asks for a receipt on success or failure; ours always succeed.
        const wantsReceipt = (record.registeredDelivery & 0x03) === 0x01 || (record.registeredDelivery & 0x03) === 0x03;
        if (messageId && wantsReceipt && this.options.receipts !== false) {
          this.later(() => this.sendReceipt(link, record, messageId), this.options.receiptDelayMs ?? 20);
        }
      });
    };
    if (this.holding) this.held.push(respond);
    else this.schedule(respond);
  }

  private schedule(fn: () => void): void {
    if (this.delayMs > 0) this.later(fn, this.delayMs);
    else fn();
  }

  private later(fn: () => void, ms: number): void {
    if (this.closing) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private sendReceipt(submitLink: Link, record: SubmitRecord, messageId: string): void {
    // A transmitter cannot receive: the receipt goes to a receiver bound with the same system_id.
    const link =
      submitLink.mode === 'transceiver' && !submitLink.closed && !submitLink.silent
        ? submitLink
        : this.boundLinks()
            .filter((l) => l.mode !== 'transmitter' && l.systemId === record.systemId)
            .at(-1);
    const receipt: ReceiptRecord = { messageId, sessionId: link?.id ?? 0, status: null };
    this.receipts.push(receipt);
    if (!link) {
      this.log(`receipt for ${messageId}: no receiving session`);
      this.emitter.emit('receipt', receipt);
      return;
    }
    const date = receiptDate(new Date(record.receivedAt));
    const done = receiptDate(new Date());
    // The text field is the first 20 characters of the message, kept to printable ASCII as receipts are.
    const excerpt = record.text.slice(0, 20).replace(/[^\x20-\x7e]/g, '.');
    const text = `id:${messageId} sub:001 dlvrd:001 submit date:${date} done date:${done} stat:DELIVRD err:000 text:${excerpt}`;
    const pdu = new smpp.PDU('deliver_sm', {
      source_addr_ton: record.destTon,
      source_addr_npi: record.destNpi,
      source_addr: record.destination,
      dest_addr_ton: record.sourceTon,
      dest_addr_npi: record.sourceNpi,
      destination_addr: record.source,
      esm_class: ESM_DELIVERY_RECEIPT,
      data_coding: 0,
      short_message: Buffer.from(text, 'ascii'),
      receipted_message_id: messageId,
      message_state: MESSAGE_STATE_DELIVERED,
    });
    this.request(link, pdu, 10_000).then(
      (response) => {
        receipt.status = response.command_status;
        this.emitter.emit('receipt', receipt);
      },
      (error: Error) => {
        this.log(`receipt for ${messageId} unanswered: ${error.message}`);
        this.emitter.emit('receipt', receipt);
      },
    );
  }

  private addToReplies(record: SubmitRecord): void {
    const concat = record.concat;
    if (!concat || concat.total <= 1) {
      const group: ReplyGroup = {
        key: null,
        index: record.index,
        to: record.to,
        from: record.source,
        total: 1,
        parts: new Map([[1, record.text]]),
        complete: true,
      };
      this.groups.push(group);
      this.emitter.emit('reply', this.toReply(group));
      return;
    }
    const key = `${concat.kind}|${record.source}|${record.destination}|${concat.ref}|${concat.total}`;
    let group = this.openGroups.get(key);
    if (!group) {
      group = { key, index: record.index, to: record.to, from: record.source, total: concat.total, parts: new Map(), complete: false };
      this.groups.push(group);
      this.openGroups.set(key, group);
    }
    // A duplicate part is counted once: a handset shows the message once.
    if (!group.parts.has(concat.seq)) group.parts.set(concat.seq, record.text);
    if (group.parts.size >= group.total) {
      group.complete = true;
      // The reference may be reused by a later message once this one is whole.
      this.openGroups.delete(key);
      this.emitter.emit('reply', this.toReply(group));
    }
  }

  private toReply(group: ReplyGroup): Reply {
    const seqs = [...group.parts.keys()].sort((a, b) => a - b);
    return {
      index: group.index,
      to: group.to,
      from: group.from,
      text: seqs.map((s) => group.parts.get(s) ?? '').join(''),
      parts: group.parts.size,
      complete: group.complete,
    };
  }

  private buildMo(input: MoInput): MoPdu[] {
    const encoding = chooseEncoding(input.text, input.encoding ?? 'auto');
    const split = input.split ?? 'udh8';
    const dataCoding = DATA_CODING[encoding];
    const source = address(input.from);
    const dest = address(input.to ?? '1708');
    const common = {
      source_addr_ton: source.ton,
      source_addr_npi: source.npi,
      source_addr: source.addr,
      dest_addr_ton: dest.ton,
      dest_addr_npi: dest.npi,
      destination_addr: dest.addr,
      data_coding: dataCoding,
      esm_class: 0,
    };
    const whole = encodeText(input.text, encoding);
    if (split === 'payload') {
      // message_payload carries the whole text in one PDU; short_message must then be empty.
      return [{ seq: 1, fields: { ...common, short_message: Buffer.alloc(0), message_payload: whole } }];
    }
    const single = splitEncoded(input.text, encoding, SINGLE_LIMIT[encoding]);
    if (single.length === 1 || split === 'none') {
      if (whole.length > 254) throw new RangeError(`${whole.length} octets do not fit one short_message`);
      return [{ seq: 1, fields: { ...common, short_message: whole } }];
    }
    const parts = splitEncoded(input.text, encoding, partLimit(encoding, split));
    if (parts.length > 255) throw new RangeError(`${parts.length} parts exceed the 255 a UDH can number`);
    const ref = (input.ref ?? this.refCounter++) & (split === 'udh8' ? 0xff : 0xffff);
    const total = parts.length;
    return parts.map((text, i) => {
      const seq = i + 1;
      if (split === 'sar') {
        return {
          seq,
          fields: { ...common, short_message: text, sar_msg_ref_num: ref, sar_total_segments: total, sar_segment_seqnum: seq },
        };
      }
      const udh = split === 'udh8' ? udh8(ref, total, seq) : udh16(ref, total, seq);
      return { seq, fields: { ...common, esm_class: ESM_UDHI, short_message: Buffer.concat([udh, text]) } };
    });
  }

  private orderParts(n: number, order: 'in' | 'reverse' | 'shuffle', duplicate: number[]): number[] {
    const seqs = Array.from({ length: n }, (_, i) => i + 1);
    if (order === 'reverse') seqs.reverse();
    if (order === 'shuffle') {
      for (let i = seqs.length - 1; i > 0; i--) {
        const j = randomInt(0, i + 1);
        [seqs[i], seqs[j]] = [seqs[j] as number, seqs[i] as number];
      }
    }
    return seqs.flatMap((s) => (duplicate.includes(s) ? [s, s] : [s]));
  }

  /** Sends a request and resolves with its response; rejects on timeout or when the session ends. */
  private request(link: Link, pdu: PDU, timeoutMs: number): Promise<PDU> {
    return new Promise<PDU>((resolve, reject) => {
      if (link.closed || !link.session.send(pdu)) {
        reject(new Error(`session ${link.id} is not writable`));
        return;
      }
      const seq = pdu.sequence_number;
      const timer = setTimeout(
        () => {
          link.pending.delete(seq);
          reject(new Error(`${pdu.command} seq ${seq}: no response within ${Math.round(timeoutMs)} ms`));
        },
        Math.max(1, timeoutMs),
      );
      link.pending.set(seq, { resolve, reject, timer });
    });
  }

  private failPending(link: Link, reason: string): void {
    for (const pending of link.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new Error(`session ${link.id}: ${reason}`));
    }
    link.pending.clear();
  }

  private waitUntil(done: () => boolean, event: keyof SimulatorEvents, timeoutMs: number, what: () => string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.emitter.off(event, check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.emitter.off(event, check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
      }, timeoutMs);
      this.emitter.on(event, check);
    });
  }
}
