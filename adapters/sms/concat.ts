/**
 * Concatenated-SMS headers, pure: the User Data Header of 3GPP TS 23.040 §9.2.3.24 (sent when
 * esm_class has UDHI, 0x40) and the SMPP 3.4 SAR TLVs (§5.3.2.22–24). Nothing here touches Redis;
 * reassembly.ts does the joining.
 */

export interface ConcatInfo {
  ref: number;
  refBits: 8 | 16;
  total: number;
  seq: number;
}

export interface UdhElement {
  iei: number;
  data: Uint8Array;
}

/**
 * Two kinds of failure, on purpose:
 * - `ok: false` — the header itself is broken (no UDHL octet, UDHL longer than the message, an IE
 *   running past the UDH). We cannot tell where the text starts, so the adapter must reject the PDU
 *   (a clear error, not a guess at the text).
 * - `ok: true` with `concat` undefined and `concatProblem` set — the header is well formed but its
 *   concatenation IE is not usable (total 0, seq 0, seq > total, wrong IE length). The text is still
 *   locatable, so the adapter stores the message as a single message instead of dropping it or
 *   parking it in a group that can never complete.
 */
export type UdhResult =
  | {
      ok: true;
      /** Bytes taken by the UDH, including the UDHL octet: the text starts here. */
      headerLength: number;
      concat?: ConcatInfo;
      /** Why a concatenation IE present in the header was ignored. */
      concatProblem?: string;
      /** Every IE in header order, the concatenation IE included, so nothing is lost to callers. */
      elements: UdhElement[];
    }
  | { ok: false; reason: string };

const IEI_CONCAT_8 = 0x00;
const IEI_CONCAT_16 = 0x08;

const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

export function parseUdh(shortMessage: Uint8Array): UdhResult {
  if (shortMessage.length === 0) return { ok: false, reason: 'UDHI is set but the message is empty (no UDH length octet)' };
  const udhl = shortMessage[0]!;
  const end = 1 + udhl;
  if (end > shortMessage.length) {
    return { ok: false, reason: `UDH length ${udhl} runs past the message (${shortMessage.length - 1} bytes after the UDHL octet)` };
  }

  const elements: UdhElement[] = [];
  let concatIe: UdhElement | undefined;
  for (let i = 1; i < end; ) {
    if (i + 2 > end) return { ok: false, reason: `information element at byte ${i} is truncated (no length octet)` };
    const iei = shortMessage[i]!;
    const length = shortMessage[i + 1]!;
    const dataEnd = i + 2 + length;
    if (dataEnd > end) return { ok: false, reason: `information element ${hex(iei)} of length ${length} runs past the UDH` };
    // A copy, so the caller may keep the element after the PDU buffer is reused.
    const element = { iei, data: new Uint8Array(shortMessage.subarray(i + 2, dataEnd)) };
    elements.push(element);
    // 23.040 §9.2.3.24: for a non-repeatable IE given twice, the last occurrence counts.
    if (iei === IEI_CONCAT_8 || iei === IEI_CONCAT_16) concatIe = element;
    i = dataEnd;
  }

  if (!concatIe) return { ok: true, headerLength: end, elements };
  const concat = concatFromIe(concatIe);
  if ('problem' in concat) return { ok: true, headerLength: end, concatProblem: concat.problem, elements };
  return { ok: true, headerLength: end, concat, elements };
}

function concatFromIe({ iei, data }: UdhElement): ConcatInfo | { problem: string } {
  let info: ConcatInfo;
  if (iei === IEI_CONCAT_8) {
    if (data.length !== 3) return { problem: `8-bit concatenation IE has length ${data.length}, expected 3` };
    info = { ref: data[0]!, refBits: 8, total: data[1]!, seq: data[2]! };
  } else {
    if (data.length !== 4) return { problem: `16-bit concatenation IE has length ${data.length}, expected 4` };
    info = { ref: (data[0]! << 8) | data[1]!, refBits: 16, total: data[2]!, seq: data[3]! };
  }
  const problem = sequenceProblem(info.total, info.seq);
  return problem ? { problem } : info;
}

function sequenceProblem(total: number, seq: number): string | undefined {
  if (total === 0) return 'concatenation total is 0';
  if (seq === 0) return 'concatenation sequence number is 0';
  if (seq > total) return `concatenation sequence number ${seq} exceeds total ${total}`;
  return undefined;
}

export interface SarTlvs {
  sar_msg_ref_num?: number;
  sar_total_segments?: number;
  sar_segment_seqnum?: number;
}

/**
 * SAR TLVs → ConcatInfo. None present: not a segment (undefined). Some but not all, or out of range:
 * `{ invalid }` — like a broken UDH concat IE, the adapter should store the message as a single one.
 */
export function concatFromSar(tlvs: SarTlvs): ConcatInfo | undefined | { invalid: string } {
  const { sar_msg_ref_num: ref, sar_total_segments: total, sar_segment_seqnum: seq } = tlvs;
  const present = [ref, total, seq].filter((v) => v !== undefined).length;
  if (present === 0) return undefined;
  if (ref === undefined || total === undefined || seq === undefined) {
    return { invalid: `only ${present} of the 3 SAR TLVs (sar_msg_ref_num, sar_total_segments, sar_segment_seqnum) present` };
  }
  // SMPP 3.4: the reference is 2 octets, total and sequence 1 octet each.
  if (!isUint(ref, 0xffff)) return { invalid: `sar_msg_ref_num ${ref} is not a 16-bit integer` };
  if (!isUint(total, 0xff) || !isUint(seq, 0xff)) return { invalid: `SAR total ${total} / sequence ${seq} not 1-octet integers` };
  const problem = sequenceProblem(total, seq);
  if (problem) return { invalid: problem };
  return { ref, refBits: 16, total, seq };
}

const isUint = (n: number, max: number): boolean => Number.isInteger(n) && n >= 0 && n <= max;

/**
 * The reassembly group of a part: one message is identified by the SMSC account, both addresses,
 * the reference (with its width: 8-bit ref 5 and 16-bit ref 5 are different messages) and the total.
 * JSON keeps the fields apart whatever characters the addresses hold.
 */
export function concatGroupKey(parts: { account: string; source: string; destination: string; concat: ConcatInfo }): string {
  const { account, source, destination, concat } = parts;
  return JSON.stringify([account, source, destination, concat.refBits, concat.ref, concat.total]);
}
