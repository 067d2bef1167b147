import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import smpp, { type PDU } from 'smpp';
import type { Logger } from 'pino';
import { COMMAND, HEADER_LENGTH, STATUS, encodeResponse, encodeSubmitSm, parseDataSm, parseDeliverSm, parseSubmitSmResp, readHeader, type DeliverSm, type SubmitSm } from './pdu.ts';

/**
 * The only file that imports `smpp`. It wraps the package's Session to fix its known traps
 * (DESIGN.md, anchors/reliability.md §0.8):
 * - a PDU the parser cannot read left the session silently deaf (`_busy` stayed true): framing is ours,
 *   a malformed PDU is answered (generic_nack or the command's error status) and reading goes on, and a
 *   PDU whose length cannot be trusted ends the session so it is bound afresh;
 * - requests never timed out and pending callbacks were dropped when the socket closed: every request
 *   here has a timeout and is rejected when the session ends;
 * - there was no reconnect: `SmppClient` rebinds with exponential backoff and jitter;
 * - half-open links went unnoticed: our enquire_link watchdog ends a session that stops answering;
 * - `debug` dumped passwords and message text: we never enable it, and log only ids and statuses.
 *
 * A session is also ended, and bound afresh with the same backoff, when it is alive but useless
 * (test/adapters/sms/link-faults.test.ts drives each case against the simulator):
 * - the SMSC sends `unbind`: answered with unbind_resp, then we close our side at once instead of
 *   waiting for the SMSC to close the socket (one that never does left us "bound" on a dead session);
 * - a generic_nack storm (`nackStormCount` within `nackStormWindowMs`): an SMSC that answers our
 *   well-formed PDUs with generic_nack has lost the session's framing or state, and retrying on the
 *   same session only feeds the storm. One generic_nack rejects its request with SmppNackError, which
 *   is not an SmppStatusError: it says nothing about the message, so the send is retried
 *   (outbound.ts maps it to `unavailable`) instead of failing for good on, say, ESME_RINVCMDID;
 * - a submit_sm that times out with no other submit_sm answered since it was sent: the SMSC's submit
 *   path is stalled (a full window of such requests would only time out one by one) even if it still
 *   answers enquire_link, so the watchdog cannot see it. One lost response on a link that keeps
 *   answering other submits does not end the session. Kannel's default for this case is the same
 *   (`wait-ack-expire = 0x00`: disconnect and reconnect).
 * The backoff only starts over once a bind has lasted `reconnectMaxMs`: an SMSC that accepts the bind
 * and then drops, unbinds or nacks us every time gets binds ever further apart, not every half second.
 * Every session ends through `endSession` once: callbacks of an old session never schedule a second
 * reconnect (which used to leave two binds open when a bind was refused by closing the socket).
 */

export interface SmscAccount {
  /** Our name for the bind, in logs, metrics, leases and dedup keys (e.g. `telkomsel`). */
  id: string;
  host: string;
  port: number;
  tls: boolean;
  systemId: string;
  password: string;
  systemType: string;
  bindMode: 'transceiver' | 'receiver' | 'transmitter';
  tps: number;
  window: number;
}

export interface ClientTimings {
  enquireLinkMs: number;
  requestTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** This many generic_nack within `nackStormWindowMs` end the session. Default 10. */
  nackStormCount?: number;
  /** Default 10 s. */
  nackStormWindowMs?: number;
}

/** PDUs longer than this cannot be a real SMPP 3.4 message; framing is lost. */
const MAX_PDU_LENGTH = 64 * 1024;
const DEFAULT_NACK_STORM_COUNT = 10;
const DEFAULT_NACK_STORM_WINDOW_MS = 10_000;

export class SmppStatusError extends Error {
  readonly code = 'LAPOR_SMPP_STATUS';
  constructor(
    readonly command: string,
    readonly status: number,
  ) {
    super(`${command} answered with status 0x${status.toString(16).padStart(8, '0')}`);
    this.name = 'SmppStatusError';
  }
}

/** The SMSC answered a request with generic_nack: it could not handle the PDU, whatever it carried. */
export class SmppNackError extends Error {
  readonly code = 'LAPOR_SMPP_NACK';
  constructor(
    readonly command: string,
    readonly status: number,
  ) {
    super(`${command} answered with generic_nack 0x${status.toString(16).padStart(8, '0')}`);
    this.name = 'SmppNackError';
  }
}

export class SmppClosedError extends Error {
  readonly code = 'LAPOR_SMPP_CLOSED';
  constructor(reason: string) {
    super(`the SMPP session ended: ${reason}`);
    this.name = 'SmppClosedError';
  }
}

export class SmppTimeoutError extends Error {
  readonly code = 'LAPOR_SMPP_TIMEOUT';
  constructor(command: string, ms: number) {
    super(`${command} got no response within ${ms} ms`);
    this.name = 'SmppTimeoutError';
  }
}

/**
 * smpp's Session with our own framing. Its constructor binds `this._extractPDUs` to the socket's
 * 'readable' event, so overriding the method replaces the library's reader.
 */
class FramedSession extends smpp.Session {
  private header: Buffer | undefined;

  _extractPDUs(): void {
    const socket = this.socket;
    for (;;) {
      if (!this.header) {
        const header = socket.read(HEADER_LENGTH) as Buffer | null;
        if (!header) return;
        this.header = header;
      }
      const head = readHeader(this.header)!;
      if (head.commandLength < HEADER_LENGTH || head.commandLength > MAX_PDU_LENGTH) {
        this.emit('framing_error', head);
        return;
      }
      const rest = head.commandLength === HEADER_LENGTH ? Buffer.alloc(0) : (socket.read(head.commandLength - HEADER_LENGTH) as Buffer | null);
      if (!rest) return;
      const frame = Buffer.concat([this.header, rest]);
      this.header = undefined;
      this.emit('frame', frame, head);
    }
  }
}

/** A response as a request's caller sees it: the library's PDU, or for submit_sm only its message_id (parsed here). */
type Response = { readonly message_id?: unknown; readonly [field: string]: unknown };
type Pending = { command: string; resolve: (response: Response) => void; reject: (err: Error) => void; timer: NodeJS.Timeout; sentAt: number };

export type ClientState = 'idle' | 'connecting' | 'bound' | 'backoff' | 'stopped';

export interface SmppClientEvents {
  state: [ClientState];
  /** A deliver_sm, parsed. Call `respond(status)` once the message is durably stored (or refused). */
  deliver: [DeliverSm, (status: number) => void];
  /** Something the SMSC sent that we could not use; answered already. */
  malformed: [{ reason: string; commandId: number; status: number }];
}

/**
 * One bind to one SMSC account, kept alive: connect, bind, keep alive, and rebind when the link
 * drops, with exponential backoff and jitter.
 */
export class SmppClient extends EventEmitter<SmppClientEvents> {
  private session: FramedSession | undefined;
  private pending = new Map<number, Pending>();
  private sequence = 0;
  private attempt = 0;
  private stateValue: ClientState = 'idle';
  private watchdog: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;
  /** When the current session was bound; 0 while not bound. */
  private boundAt = 0;
  /** When any submit_sm last got a response (any status): stalled-submit detection. */
  private lastSubmitAnswerAt = 0;
  /** Arrival times of generic_nack on the current session, within the storm window. */
  private nacks: number[] = [];
  private enquiring = false;
  private inFlight = 0;
  private windowWaiters: (() => void)[] = [];
  private nextSendAt = 0;
  private pausedUntil = 0;

  constructor(
    readonly account: SmscAccount,
    private readonly timings: ClientTimings,
    private readonly log: Logger,
  ) {
    super();
  }

  get state(): ClientState {
    return this.stateValue;
  }

  private setState(state: ClientState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  start(): void {
    if (this.stateValue !== 'idle' && this.stateValue !== 'stopped') return;
    this.setState('connecting');
    this.connect();
  }

  /** Unbinds politely (bounded by the request timeout), then closes; pending requests are rejected. */
  async stop(): Promise<void> {
    const wasBound = this.stateValue === 'bound';
    this.setState('stopped');
    clearTimeout(this.reconnectTimer);
    if (this.session && wasBound) await this.request('unbind', {}).catch(() => undefined);
    this.endSession('stopped');
  }

  private connect(): void {
    const { host, port } = this.account;
    const socket = this.account.tls ? tls.connect({ host, port }) : net.connect({ host, port });
    const session = new FramedSession({ socket });
    this.session = session;
    session.on('error', (err: Error) => this.log.warn({ err: { message: err.message, code: (err as { code?: string }).code }, smsc: this.account.id }, 'smpp socket error'));
    session.on('close', () => {
      if (this.session === session) this.endSession('socket closed');
    });
    session.on('frame', (frame: Buffer, head: ReturnType<typeof readHeader> & object) => this.onFrame(session, frame, head));
    session.on('framing_error', (head: ReturnType<typeof readHeader> & object) => {
      this.log.warn({ smsc: this.account.id, commandLength: head.commandLength }, 'smpp pdu with an impossible length; rebinding');
      this.emit('malformed', { reason: `command_length ${head.commandLength}`, commandId: head.commandId, status: STATUS.ESME_RINVCMDLEN });
      // SMPP 3.4 §2.3: generic_nack for a PDU we cannot frame; then the stream cannot be trusted.
      writeCorked(socket, encodeResponse(COMMAND.generic_nack, STATUS.ESME_RINVCMDLEN, head.sequence));
      socket.end();
      setTimeout(() => socket.destroy(), 1_000).unref();
    });
    socket.once(this.account.tls ? 'secureConnect' : 'connect', () => void this.bind(session));
  }

  private async bind(session: FramedSession): Promise<void> {
    const command = `bind_${this.account.bindMode}`;
    try {
      await this.request(command, {
        system_id: this.account.systemId,
        password: this.account.password,
        system_type: this.account.systemType,
        interface_version: 0x34,
      });
    } catch (err) {
      // Already ended (socket closed, stopped) when the bind was rejected by endSession itself.
      if (this.session !== session) return;
      this.log.warn({ smsc: this.account.id, err: { message: (err as Error).message } }, 'smpp bind failed');
      this.endSession('bind failed');
      return;
    }
    if (this.session !== session) return;
    this.lastHeard = Date.now();
    this.boundAt = Date.now();
    this.nacks = [];
    this.setState('bound');
    this.log.info({ smsc: this.account.id, mode: this.account.bindMode }, 'smpp bound');
    this.startWatchdog();
  }

  /** Sends enquire_link when the link is quiet; ends a session that does not answer it. */
  private startWatchdog(): void {
    clearInterval(this.watchdog);
    const every = this.timings.enquireLinkMs;
    this.enquiring = false;
    this.watchdog = setInterval(() => {
      const session = this.session;
      if (this.stateValue !== 'bound' || !session || this.enquiring) return;
      if (Date.now() - this.lastHeard < every) return;
      // One enquire_link at a time: on a dead link, more would only pile up behind the first.
      this.enquiring = true;
      this.request('enquire_link', {}).then(
        () => {
          if (this.session === session) this.enquiring = false;
        },
        (err: Error) => {
          if (this.session !== session) return; // the session ended for another reason meanwhile
          this.enquiring = false;
          this.log.warn({ smsc: this.account.id, err: { message: err.message } }, 'smpp enquire_link unanswered; rebinding');
          this.endSession('enquire_link unanswered');
        },
      );
    }, Math.max(250, Math.floor(every / 2)));
    this.watchdog.unref();
  }

  private onFrame(session: FramedSession, frame: Buffer, head: { commandId: number; commandStatus: number; sequence: number }): void {
    this.lastHeard = Date.now();
    if (head.commandId === COMMAND.deliver_sm || head.commandId === COMMAND.data_sm) {
      // data_sm carries MO and receipts like deliver_sm does; both are handled alike from here on.
      const dataSm = head.commandId === COMMAND.data_sm;
      const responseId = dataSm ? COMMAND.data_sm_resp : COMMAND.deliver_sm_resp;
      const parsed = dataSm ? parseDataSm(frame) : parseDeliverSm(frame);
      if (!parsed.ok) {
        this.log.warn({ smsc: this.account.id, reason: parsed.reason }, `malformed ${dataSm ? 'data_sm' : 'deliver_sm'} refused`);
        this.emit('malformed', { reason: parsed.reason, commandId: head.commandId, status: parsed.status });
        writeCorked(session.socket, encodeResponse(responseId, parsed.status, head.sequence));
        return;
      }
      let answered = false;
      this.emit('deliver', parsed.value, (status) => {
        if (answered) return;
        answered = true;
        // The socket may have closed meanwhile: then the SMSC redelivers, and dedup absorbs it.
        if (this.session === session && session.socket.writable) {
          writeCorked(session.socket, encodeResponse(responseId, status, head.sequence));
        }
      });
      if (this.listenerCount('deliver') === 0) writeCorked(session.socket, encodeResponse(responseId, STATUS.ESME_RX_T_APPN, head.sequence));
      return;
    }
    if (head.commandId === COMMAND.submit_sm_resp) {
      // Every reply segment's answer: read here, not by the library's parser (see encodeSubmitSm).
      const parsed = parseSubmitSmResp(frame);
      if (!parsed.ok) this.log.warn({ smsc: this.account.id, reason: parsed.reason }, 'malformed submit_sm_resp');
      this.answer(head.sequence, head.commandStatus, false, { message_id: parsed.ok ? parsed.value : '' });
      return;
    }
    let pdu: PDU;
    try {
      pdu = new smpp.PDU(frame);
    } catch (err) {
      this.log.warn({ smsc: this.account.id, commandId: head.commandId, err: { message: (err as Error).message } }, 'undecodable pdu');
      this.emit('malformed', { reason: (err as Error).message, commandId: head.commandId, status: STATUS.ESME_RSYSERR });
      if (!(head.commandId & 0x80000000)) writeCorked(session.socket, encodeResponse(COMMAND.generic_nack, STATUS.ESME_RSYSERR, head.sequence));
      return;
    }
    if (pdu.isResponse()) {
      this.answer(pdu.sequence_number, pdu.command_status, pdu.command === 'generic_nack', pdu);
      return;
    }
    switch (pdu.command) {
      case 'enquire_link':
        corkForTick(session.socket);
        session.send(pdu.response());
        return;
      case 'unbind':
        this.log.info({ smsc: this.account.id }, 'smsc unbound us; rebinding');
        corkForTick(session.socket);
        session.send(pdu.response());
        // Closed on our side now: the SMSC may never close the socket, and nothing more may be sent.
        this.endSession('smsc unbound us', true);
        return;
      case 'unknown':
        this.emit('malformed', { reason: 'unknown command_id', commandId: head.commandId, status: STATUS.ESME_RINVCMDID });
        writeCorked(session.socket, encodeResponse(COMMAND.generic_nack, STATUS.ESME_RINVCMDID, head.sequence));
        return;
      default:
        // alert_notification, outbind…: nothing the gateway uses; say so rather than stay silent.
        writeCorked(session.socket, encodeResponse(COMMAND.generic_nack, STATUS.ESME_RINVCMDID, head.sequence));
    }
  }

  /** Settles the request a response (or generic_nack) answers. */
  private answer(sequence: number, status: number, nack: boolean, response: Response): void {
    const pending = this.pending.get(sequence);
    if (pending) {
      this.pending.delete(sequence);
      clearTimeout(pending.timer);
      if (pending.command === 'submit_sm') this.lastSubmitAnswerAt = Date.now();
      if (nack) pending.reject(new SmppNackError(pending.command, status));
      else if (status !== 0) pending.reject(new SmppStatusError(pending.command, status));
      else pending.resolve(response);
    }
    // Unsolicited ones (a sequence we never sent, or 0) count too: they are the same symptom.
    if (nack) this.countNack(status);
  }

  /** generic_nack storm detection: `nackStormCount` within the sliding `nackStormWindowMs` end the session. */
  private countNack(status: number): void {
    if (this.stateValue !== 'bound') return;
    const limit = this.timings.nackStormCount ?? DEFAULT_NACK_STORM_COUNT;
    const windowMs = this.timings.nackStormWindowMs ?? DEFAULT_NACK_STORM_WINDOW_MS;
    const now = Date.now();
    this.nacks.push(now);
    while (this.nacks.length && (this.nacks[0] ?? now) <= now - windowMs) this.nacks.shift();
    if (this.nacks.length < limit) return;
    this.log.warn(
      { smsc: this.account.id, nacks: this.nacks.length, windowMs, status: `0x${status.toString(16).padStart(8, '0')}` },
      'smpp generic_nack storm; rebinding',
    );
    this.endSession('generic_nack storm');
  }

  /**
   * Ends the current session once: rejects what is pending and, unless stopped, schedules the next
   * connect. `graceful` lets what was written go out first (unbind_resp) before the socket is closed.
   */
  private endSession(reason: string, graceful = false): void {
    clearInterval(this.watchdog);
    const session = this.session;
    this.session = undefined;
    session?.removeAllListeners('frame');
    session?.removeAllListeners('framing_error');
    if (session && graceful) {
      session.socket.end();
      setTimeout(() => session.destroy(), 1_000).unref();
    } else {
      session?.destroy();
    }
    // The backoff starts over only after a session that lasted: a flapping SMSC is not hammered.
    if (this.boundAt > 0 && Date.now() - this.boundAt >= this.timings.reconnectMaxMs) this.attempt = 0;
    this.boundAt = 0;
    this.nacks = [];
    for (const [sequence, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new SmppClosedError(reason));
      this.pending.delete(sequence);
    }
    this.releaseWindow(true);
    if (this.stateValue === 'stopped') return;
    this.setState('backoff');
    const base = Math.min(this.timings.reconnectMaxMs, this.timings.reconnectMinMs * 2 ** this.attempt);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt = Math.min(this.attempt + 1, 16);
    this.log.info({ smsc: this.account.id, reason, retryInMs: delay }, 'smpp session ended');
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (this.stateValue === 'stopped') return;
      this.setState('connecting');
      this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  /** Sends a request and resolves with its response; times out, and is rejected if the session ends. */
  request(command: string, fields: Record<string, unknown>): Promise<Response> {
    return this.send(command, (sequence) => new smpp.PDU(command, { ...fields, sequence_number: sequence }).toBuffer());
  }

  /** Sends the PDU `encode` makes for the next sequence number; resolves with its response, as `request`. */
  private send(command: string, encode: (sequence: number) => Buffer): Promise<Response> {
    const session = this.session;
    if (!session || !session.socket.writable) return Promise.reject(new SmppClosedError('not connected'));
    this.sequence = this.sequence >= 0x7fffffff ? 1 : this.sequence + 1;
    const sequence = this.sequence;
    let bytes: Buffer;
    try {
      bytes = encode(sequence);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const sentAt = Date.now();
      const timer = setTimeout(() => {
        this.pending.delete(sequence);
        reject(new SmppTimeoutError(command, this.timings.requestTimeoutMs));
        // A stalled submit path: nothing submitted since this one was sent has been answered either.
        if (command === 'submit_sm' && this.session === session && this.stateValue === 'bound' && this.lastSubmitAnswerAt < sentAt) {
          this.log.warn({ smsc: this.account.id, timeoutMs: this.timings.requestTimeoutMs, pending: this.pending.size }, 'smpp submit_sm unanswered; rebinding');
          this.endSession('submit_sm unanswered');
        }
      }, this.timings.requestTimeoutMs);
      this.pending.set(sequence, { command, resolve, reject, timer, sentAt });
      writeCorked(session.socket, bytes);
    });
  }

  /**
   * submit_sm within the account's window (responses outstanding) and TPS. Resolves with the SMSC's
   * message_id; rejects with SmppStatusError (e.g. ESME_RTHROTTLED), SmppTimeoutError or SmppClosedError.
   */
  async submit(sm: SubmitSm): Promise<string> {
    if (this.stateValue !== 'bound') throw new SmppClosedError(`not bound (${this.stateValue})`);
    await this.acquireWindow();
    try {
      await this.paceTps();
      const response = await this.send('submit_sm', (sequence) => encodeSubmitSm(sm, sequence));
      return typeof response.message_id === 'string' ? response.message_id : '';
    } finally {
      this.releaseWindow(false);
    }
  }

  /** Holds every submit for `ms`: the SMSC said it is throttling this account. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
  }

  private async acquireWindow(): Promise<void> {
    while (this.inFlight >= this.account.window) {
      await new Promise<void>((resolve) => this.windowWaiters.push(resolve));
      if (this.stateValue !== 'bound') throw new SmppClosedError('session ended while waiting for the window');
    }
    this.inFlight++;
  }

  private releaseWindow(all: boolean): void {
    if (all) {
      this.inFlight = 0;
      for (const wake of this.windowWaiters.splice(0)) wake();
      return;
    }
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.windowWaiters.shift()?.();
  }

  private async paceTps(): Promise<void> {
    const now = Date.now();
    const slot = Math.max(now, this.nextSendAt, this.pausedUntil);
    this.nextSendAt = slot + 1000 / this.account.tps;
    if (slot > now) await new Promise((r) => setTimeout(r, slot - now));
  }
}

/**
 * The PDUs written in one tick of the event loop leave in one system call: the socket is corked at
 * the first write and uncorked once the tick's work is done. A flood of deliver_sm is answered by
 * a flood of deliver_sm_resp and submit_sm, and a write per PDU made socket writes the largest
 * single cost of the SMS adapter's process (bench:smpp profile: writev, 29 % of its CPU).
 */
function corkForTick(socket: net.Socket): void {
  if (socket.writableCorked) return;
  socket.cork();
  process.nextTick(() => socket.uncork());
}

function writeCorked(socket: net.Socket, bytes: Uint8Array): void {
  corkForTick(socket);
  socket.write(bytes);
}
