/**
 * Strict decoding of the PDUs that carry citizens' words: deliver_sm (and data_sm). The smpp
 * package's own parser decodes short_message into text by a guessed alphabet, loses the odd byte of a
 * bad UCS-2 message, and trusts every length it reads; here every length is checked against the
 * buffer, and the user data stays raw bytes for adapters/sms/encoding.ts. Pure: fuzzed in tests.
 */

export const COMMAND = {
  generic_nack: 0x80000000,
  submit_sm: 0x00000004,
  submit_sm_resp: 0x80000004,
  deliver_sm: 0x00000005,
  deliver_sm_resp: 0x80000005,
  data_sm: 0x00000103,
  data_sm_resp: 0x80000103,
} as const;

/** SMPP 3.4 §5.3 TLV tags we read. */
export const TLV = {
  receipted_message_id: 0x001e,
  sar_msg_ref_num: 0x020c,
  sar_total_segments: 0x020e,
  sar_segment_seqnum: 0x020f,
  network_error_code: 0x0423,
  message_payload: 0x0424,
  message_state: 0x0427,
} as const;

/** command_status values we answer with (SMPP 3.4 §5.1.3). */
export const STATUS = {
  ESME_ROK: 0x00,
  ESME_RINVMSGLEN: 0x01,
  ESME_RINVCMDLEN: 0x02,
  ESME_RINVCMDID: 0x03,
  ESME_RSYSERR: 0x08,
  ESME_RINVSRCADR: 0x0a,
  ESME_RINVDSTADR: 0x0b,
  ESME_RMSGQFUL: 0x14,
  ESME_RTHROTTLED: 0x58,
  ESME_RX_T_APPN: 0x64,
  ESME_RX_P_APPN: 0x65,
  ESME_RX_R_APPN: 0x66,
} as const;

export const HEADER_LENGTH = 16;

export interface PduHeader {
  commandLength: number;
  commandId: number;
  commandStatus: number;
  sequence: number;
}

export function readHeader(buffer: Uint8Array): PduHeader | undefined {
  if (buffer.length < HEADER_LENGTH) return undefined;
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return { commandLength: view.getUint32(0), commandId: view.getUint32(4), commandStatus: view.getUint32(8), sequence: view.getUint32(12) };
}

export interface Address {
  ton: number;
  npi: number;
  addr: string;
}

export interface DeliverSm {
  sequence: number;
  serviceType: string;
  source: Address;
  destination: Address;
  esmClass: number;
  protocolId: number;
  priority: number;
  registeredDelivery: number;
  dataCoding: number;
  /** short_message, or message_payload when short_message is empty — raw, UDH included. */
  userData: Uint8Array;
  fromPayload: boolean;
  tlvs: Map<number, Uint8Array>;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; status: number; reason: string };

class Reader {
  offset = HEADER_LENGTH;
  constructor(private readonly buffer: Uint8Array) {}

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  octet(field: string): number {
    if (this.remaining < 1) throw new PduError(`truncated at ${field}`);
    return this.buffer[this.offset++]!;
  }

  /** A NUL-terminated ASCII string of at most `max` octets including the NUL (SMPP 3.4 §3.1). */
  cString(field: string, max: number): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw new PduError(`truncated at ${field}`);
    if (end - this.offset + 1 > max) throw new PduError(`${field} longer than ${max - 1}`);
    const value = Buffer.from(this.buffer.subarray(this.offset, end)).toString('latin1');
    this.offset = end + 1;
    return value;
  }

  bytes(field: string, length: number): Uint8Array {
    if (this.remaining < length) throw new PduError(`${field} runs past the end of the PDU`);
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  uint16(field: string): number {
    const [hi, lo] = this.bytes(field, 2);
    return (hi! << 8) | lo!;
  }
}

class PduError extends Error {}

/**
 * Parses a whole deliver_sm PDU (header included; the caller has framed it by command_length).
 * A malformed body gives the status to answer in deliver_sm_resp, so the SMSC knows it was refused
 * rather than lost.
 */
export function parseDeliverSm(pdu: Uint8Array): ParseResult<DeliverSm> {
  return parseBody(pdu, (r) => {
    const serviceType = r.cString('service_type', 6);
    const source = { ton: r.octet('source_addr_ton'), npi: r.octet('source_addr_npi'), addr: r.cString('source_addr', 21) };
    const destination = { ton: r.octet('dest_addr_ton'), npi: r.octet('dest_addr_npi'), addr: r.cString('destination_addr', 21) };
    const esmClass = r.octet('esm_class');
    const protocolId = r.octet('protocol_id');
    const priority = r.octet('priority_flag');
    r.cString('schedule_delivery_time', 17);
    r.cString('validity_period', 17);
    const registeredDelivery = r.octet('registered_delivery');
    r.octet('replace_if_present_flag');
    const dataCoding = r.octet('data_coding');
    r.octet('sm_default_msg_id');
    const smLength = r.octet('sm_length');
    const shortMessage = r.bytes('short_message', smLength);
    const tlvs = readTlvs(r);
    const payload = tlvs.get(TLV.message_payload);
    if (payload && smLength > 0) {
      // SMPP 3.4 §5.3.2.32: short_message and message_payload must not both carry data.
      throw new PduError('both short_message and message_payload carry data');
    }
    const fields = { serviceType, source, destination, esmClass, protocolId, priority, registeredDelivery, dataCoding, tlvs };
    return { ...fields, userData: payload ?? shortMessage, fromPayload: Boolean(payload) };
  });
}

/**
 * Parses a data_sm (SMPP 3.4 §4.7.1), which some SMSCs use instead of deliver_sm for mobile-originated
 * messages and receipts: the same addresses, esm_class and data_coding, no short_message — the text
 * is in message_payload. It comes out in deliver_sm's shape, so everything after treats both alike.
 */
export function parseDataSm(pdu: Uint8Array): ParseResult<DeliverSm> {
  return parseBody(pdu, (r) => {
    const serviceType = r.cString('service_type', 6);
    const source = { ton: r.octet('source_addr_ton'), npi: r.octet('source_addr_npi'), addr: r.cString('source_addr', 65) };
    const destination = { ton: r.octet('dest_addr_ton'), npi: r.octet('dest_addr_npi'), addr: r.cString('destination_addr', 65) };
    const esmClass = r.octet('esm_class');
    const registeredDelivery = r.octet('registered_delivery');
    const dataCoding = r.octet('data_coding');
    const tlvs = readTlvs(r);
    const payload = tlvs.get(TLV.message_payload) ?? new Uint8Array(0);
    return { serviceType, source, destination, esmClass, protocolId: 0, priority: 0, registeredDelivery, dataCoding, tlvs, userData: payload, fromPayload: true };
  });
}

/** Frames the header, runs `body` on a reader past it; a PduError becomes ESME_RINVMSGLEN with its reason. */
function parseBody(pdu: Uint8Array, body: (r: Reader) => Omit<DeliverSm, 'sequence'>): ParseResult<DeliverSm> {
  const header = readHeader(pdu);
  if (!header) return { ok: false, status: STATUS.ESME_RINVCMDLEN, reason: 'shorter than a PDU header' };
  if (header.commandLength !== pdu.length) return { ok: false, status: STATUS.ESME_RINVCMDLEN, reason: 'command_length does not match the PDU' };
  try {
    return { ok: true, value: { sequence: header.sequence, ...body(new Reader(pdu)) } };
  } catch (err) {
    if (err instanceof PduError) return { ok: false, status: STATUS.ESME_RINVMSGLEN, reason: err.message };
    throw err;
  }
}

function readTlvs(r: Reader): Map<number, Uint8Array> {
  const tlvs = new Map<number, Uint8Array>();
  while (r.remaining > 0) {
    if (r.remaining < 4) throw new PduError('truncated TLV header');
    const tag = r.uint16('tlv tag');
    const length = r.uint16('tlv length');
    tlvs.set(tag, r.bytes(`tlv 0x${tag.toString(16)}`, length));
  }
  return tlvs;
}

export function tlvNumber(tlvs: Map<number, Uint8Array>, tag: number): number | undefined {
  const value = tlvs.get(tag);
  if (!value || value.length === 0 || value.length > 4) return undefined;
  return value.reduce((n, byte) => n * 256 + byte, 0);
}

export function tlvString(tlvs: Map<number, Uint8Array>, tag: number): string | undefined {
  const value = tlvs.get(tag);
  if (!value) return undefined;
  const end = value.indexOf(0);
  return Buffer.from(end >= 0 ? value.subarray(0, end) : value).toString('latin1');
}

/** esm_class bits 2–5 (SMPP 3.4 §5.2.12): 0x04 SMSC delivery receipt, 0x08/0x10/0x20 other acks and notifications. */
export function isReceipt(esmClass: number): boolean {
  return (esmClass & 0x3c) !== 0;
}

export const UDHI = 0x40;

/** The submit_sm fields a reply sets; every other field is empty or 0 (SMPP 3.4 §4.4.1). */
export interface SubmitSm {
  source: Address;
  destination: Address;
  esmClass: number;
  dataCoding: number;
  registeredDelivery: number;
  /** User data as it goes on the wire: the UDH (when esm_class has UDHI) and the encoded text. */
  shortMessage: Uint8Array;
}

/** Most octets of source_addr and destination_addr, without their NUL (SMPP 3.4 §4.4.1). */
const ADDRESS_MAX = 20;
/** sm_length is one octet, and SMPP 3.4 §4.4.1 allows at most 254 octets of short_message. */
const SHORT_MESSAGE_MAX = 254;

/**
 * Encodes submit_sm, the PDU of every reply segment. Written here rather than through the smpp
 * package, whose per-field encoders were a tenth of the SMS adapter's CPU in the bench:smpp profile
 * (the same octets: test/adapters/sms/pdu.test.ts compares the two).
 */
export function encodeSubmitSm(sm: SubmitSm, sequence: number): Buffer {
  const source = Buffer.from(sm.source.addr, 'latin1');
  const destination = Buffer.from(sm.destination.addr, 'latin1');
  if (source.length > ADDRESS_MAX || destination.length > ADDRESS_MAX) throw new RangeError(`submit_sm: an address longer than ${ADDRESS_MAX} octets`);
  if (sm.shortMessage.length > SHORT_MESSAGE_MAX) throw new RangeError(`submit_sm: short_message longer than ${SHORT_MESSAGE_MAX} octets`);
  const length = HEADER_LENGTH + 1 + 2 + source.length + 1 + 2 + destination.length + 1 + 3 + 1 + 1 + 4 + 1 + sm.shortMessage.length;
  const buffer = Buffer.alloc(length); // zero-filled: every empty C-string and unset field is already there
  buffer.writeUInt32BE(length, 0);
  buffer.writeUInt32BE(COMMAND.submit_sm, 4);
  buffer.writeUInt32BE(0, 8);
  buffer.writeUInt32BE(sequence, 12);
  let at = HEADER_LENGTH + 1; // service_type: empty
  buffer[at++] = sm.source.ton;
  buffer[at++] = sm.source.npi;
  at += source.copy(buffer, at) + 1;
  buffer[at++] = sm.destination.ton;
  buffer[at++] = sm.destination.npi;
  at += destination.copy(buffer, at) + 1;
  buffer[at++] = sm.esmClass;
  at += 2; // protocol_id, priority_flag
  at += 2; // schedule_delivery_time, validity_period: empty
  buffer[at++] = sm.registeredDelivery;
  at += 1; // replace_if_present_flag
  buffer[at++] = sm.dataCoding;
  at += 1; // sm_default_msg_id
  buffer[at++] = sm.shortMessage.length;
  buffer.set(sm.shortMessage, at);
  return buffer;
}

/**
 * The message_id of a submit_sm_resp (SMPP 3.4 §4.4.2): a C-string of at most 65 octets. A response
 * carrying an error may have no body at all; then there is no id.
 */
export function parseSubmitSmResp(pdu: Uint8Array): ParseResult<string> {
  const reader = new Reader(pdu);
  if (reader.remaining === 0) return { ok: true, value: '' };
  try {
    return { ok: true, value: reader.cString('message_id', 65) };
  } catch (err) {
    if (err instanceof PduError) return { ok: false, status: STATUS.ESME_RSYSERR, reason: `submit_sm_resp: ${err.message}` };
    throw err;
  }
}

/** A response PDU with no body: deliver_sm_resp carries an empty message_id (one NUL). */
export function encodeResponse(commandId: number, status: number, sequence: number): Buffer {
  const body = commandId === COMMAND.generic_nack ? Buffer.alloc(0) : Buffer.from([0]);
  const buffer = Buffer.alloc(HEADER_LENGTH + body.length);
  buffer.writeUInt32BE(buffer.length, 0);
  buffer.writeUInt32BE(commandId, 4);
  buffer.writeUInt32BE(status, 8);
  buffer.writeUInt32BE(sequence, 12);
  body.copy(buffer, HEADER_LENGTH);
  return buffer;
}
