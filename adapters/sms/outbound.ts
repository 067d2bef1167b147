import { SendError } from '../../src/core/errors.ts';
import type { OutboundMessage, SendResult } from '../../src/core/channel.ts';
import { SmppClosedError, SmppNackError, SmppStatusError, SmppTimeoutError, type SmppClient } from './client.ts';
import { encodeSms } from './encoding.ts';
import { STATUS, UDHI } from './pdu.ts';
import type { SmsSettings } from './config.ts';

/** How long to hold an account's submits after the SMSC says it is throttling or its queue is full. */
const THROTTLE_PAUSE_MS = 1_000;

/**
 * Sends one notification as SMS from the short code: GSM-7 when the text allows, else UCS-2, split
 * with a concatenation UDH and capped at `maxSegments`; a delivery receipt is asked for every part.
 * Resolves with the SMSC's message ids (space-separated, one per part) so receipts can be matched.
 */
export async function sendSms(client: SmppClient, settings: SmsSettings, message: OutboundMessage, shortCode: string): Promise<SendResult> {
  if (!message.to) throw new SendError('invalid_recipient', 'sms: no number to send to');
  const destination = message.to.replace(/[^0-9]/g, '');
  // SMPP carries at most 20 digits (destination_addr, §4.4.1); E.164 numbers have at most 15.
  if (destination.length < 8 || destination.length > 20) throw new SendError('invalid_recipient', 'sms: not a phone number');
  const encoded = encodeSms(message.text, {
    transliterate: settings.transliterate,
    maxSegments: settings.maxSegments,
    reference: referenceFor(message.key),
  });
  const ids: string[] = [];
  for (const segment of encoded.segments) {
    try {
      ids.push(
        await client.submit({
          source: { ton: 3, npi: 0, addr: shortCode }, // network-specific: a short code
          destination: { ton: 1, npi: 1, addr: destination },
          esmClass: encoded.udh ? UDHI : 0,
          dataCoding: encoded.dataCoding,
          registeredDelivery: 1,
          shortMessage: segment,
        }),
      );
    } catch (err) {
      throw toSendError(client, err);
    }
  }
  return { status: 'sent', transportId: ids.join(' ') };
}

/**
 * The same notification always gets the same concatenation reference, so the parts of a retried
 * send do not mix with another message's parts on the phone.
 */
function referenceFor(key: string): number {
  let hash = 0;
  for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) >>> 0;
  return hash % 256;
}

function toSendError(client: SmppClient, err: unknown): SendError {
  if (err instanceof SmppStatusError) {
    if (err.status === STATUS.ESME_RTHROTTLED || err.status === STATUS.ESME_RMSGQFUL) {
      client.pause(THROTTLE_PAUSE_MS);
      return new SendError('throttled', `sms: ${err.message}`, { retryAfterMs: THROTTLE_PAUSE_MS, cause: err });
    }
    if (err.status === STATUS.ESME_RINVDSTADR) return new SendError('invalid_recipient', `sms: ${err.message}`, { cause: err });
    if (err.status === STATUS.ESME_RSYSERR || err.status === STATUS.ESME_RX_T_APPN) return new SendError('unavailable', `sms: ${err.message}`, { cause: err });
    return new SendError('rejected', `sms: ${err.message}`, { cause: err });
  }
  // A generic_nack says the SMSC could not handle the PDU, not that the message is bad: retry.
  if (err instanceof SmppClosedError || err instanceof SmppTimeoutError || err instanceof SmppNackError) return new SendError('unavailable', `sms: ${err.message}`, { cause: err });
  return new SendError('unavailable', `sms: ${(err as Error).message}`, { cause: err });
}
