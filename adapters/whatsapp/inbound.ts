import { createHash } from 'node:crypto';
import { z } from 'zod';
import { buttonText } from '../../src/core/buttons.ts';
import type { Ignored } from '../../src/core/channel.ts';
import type { InboundMessage } from '../../src/core/inbound.ts';

/**
 * What a Cloud API webhook POST means, decided without I/O: its citizen messages (a POST may carry
 * several) and the delivery statuses of what we sent. Everything but the fields read is tolerated.
 */

const MessageSchema = z.object({
  id: z.string().min(1).max(512),
  from: z.string().regex(/^[0-9]{5,20}$/),
  timestamp: z.string().regex(/^[0-9]{1,12}$/).optional(),
  type: z.string(),
  text: z.object({ body: z.string() }).optional(),
  image: z.object({ id: z.string(), caption: z.string().optional(), mime_type: z.string().optional() }).optional(),
  document: z.object({ id: z.string(), caption: z.string().optional(), filename: z.string().optional() }).optional(),
  location: z.object({ latitude: z.number(), longitude: z.number(), name: z.string().optional(), address: z.string().optional() }).optional(),
  button: z.object({ text: z.string().optional(), payload: z.string().optional() }).optional(),
  interactive: z
    .object({
      type: z.string(),
      button_reply: z.object({ id: z.string(), title: z.string().optional() }).optional(),
      list_reply: z.object({ id: z.string(), title: z.string().optional() }).optional(),
    })
    .optional(),
  context: z.object({ id: z.string().optional() }).optional(),
});
export type WaMessage = z.infer<typeof MessageSchema>;

const StatusSchema = z.object({
  id: z.string().min(1).max(512),
  status: z.string(),
  recipient_id: z.string().regex(/^[0-9]{5,20}$/).optional(),
  errors: z.array(z.object({ code: z.number().optional(), title: z.string().optional() })).optional(),
});
export type WaStatus = z.infer<typeof StatusSchema>;

export const DeliverySchema = z.object({
  object: z.string(),
  entry: z.array(
    z.object({
      changes: z.array(
        z.object({
          field: z.string().optional(),
          value: z.object({
            metadata: z.object({ phone_number_id: z.string().optional() }).optional(),
            contacts: z.array(z.object({ wa_id: z.string(), profile: z.object({ name: z.string().optional() }).optional() })).optional(),
            messages: z.array(z.unknown()).optional(),
            statuses: z.array(z.unknown()).optional(),
          }),
        }),
      ),
    }),
  ),
});

export interface Unpacked {
  messages: { raw: unknown; name: string | undefined }[];
  statuses: unknown[];
}

/** The messages (with their sender's profile name) and statuses of a delivery for our number. */
export function unpack(delivery: z.infer<typeof DeliverySchema>, phoneId: string): Unpacked {
  const out: Unpacked = { messages: [], statuses: [] };
  for (const entry of delivery.entry) {
    for (const change of entry.changes) {
      const value = change.value;
      if (value.metadata?.phone_number_id && value.metadata.phone_number_id !== phoneId) continue;
      const names = new Map((value.contacts ?? []).map((c) => [c.wa_id, c.profile?.name]));
      for (const raw of value.messages ?? []) {
        const from = (raw as { from?: unknown }).from;
        out.messages.push({ raw, name: typeof from === 'string' ? names.get(from) : undefined });
      }
      out.statuses.push(...(value.statuses ?? []));
    }
  }
  return out;
}

/** The media a message carries, to fetch with the token. */
export function mediaOf(message: WaMessage): { id: string; name: string } | undefined {
  if (message.image) return { id: message.image.id, name: `foto-${message.timestamp ?? 'wa'}` };
  if (message.document) return { id: message.document.id, name: message.document.filename ?? `dokumen-${message.timestamp ?? 'wa'}` };
  return undefined;
}

export function toInbound(raw: unknown, name: string | undefined, context: { account: string; now: Date }): InboundMessage | Ignored {
  const parsed = MessageSchema.safeParse(raw);
  if (!parsed.success) return { ignored: true, reason: 'malformed message' };
  const message = parsed.data;
  const text = textOf(message);
  if (text === undefined) return { ignored: true, reason: `type ${message.type.slice(0, 20)}` };
  const sentAt = message.timestamp ? new Date(Number(message.timestamp) * 1000) : undefined;
  const replyTo = message.context?.id;
  return {
    channel: 'whatsapp',
    account: context.account,
    externalId: message.id,
    // A wamid holds '+', '/' and '=': hashed to fit a job id.
    dedupKey: `wa_${createHash('sha256').update(message.id).digest('base64url').slice(0, 32)}`,
    sender: { address: `wa:${message.from}`, ...(name ? { displayName: name } : {}) },
    text,
    attachments: [],
    receivedAt: (sentAt && sentAt <= context.now ? sentAt : context.now).toISOString(),
    replyContext: { to: message.from, messageId: message.id },
    ...(replyTo ? { thread: { ids: [replyTo], ownerOnly: false } } : {}),
    // A photo or document without a caption, or a place: it joins the report written just before.
    ...(isAddendum(message) ? { addendum: true } : {}),
  };
}

function isAddendum(message: WaMessage): boolean {
  if (message.type === 'location') return true;
  if (message.type === 'image') return !message.image?.caption?.trim();
  if (message.type === 'document') return !message.document?.caption?.trim();
  return false;
}

/** The citizen's words in each message type; undefined for a type we do not take (audio, stickers…). */
function textOf(message: WaMessage): string | undefined {
  switch (message.type) {
    case 'text':
      return message.text?.body ?? '';
    case 'image':
      return message.image?.caption || '[foto]';
    case 'document':
      return message.document?.caption || '[dokumen]';
    case 'location': {
      const l = message.location;
      if (!l) return '';
      const place = [l.name, l.address].filter(Boolean).join(', ');
      return `[lokasi: ${l.latitude.toFixed(6)}, ${l.longitude.toFixed(6)}${place ? ` ${place}` : ''}]`;
    }
    case 'button':
      return buttonText(message.button?.payload) ?? pressed(message.button?.text, message.button?.payload);
    case 'interactive': {
      const reply = message.interactive?.button_reply ?? message.interactive?.list_reply;
      return buttonText(reply?.id) ?? pressed(reply?.title, reply?.id);
    }
    default:
      return undefined;
  }
}

/**
 * A button that is not one of ours (an older template's, "puas:ya:2486883978"): its title, with the
 * tracking ID its id names, is what the citizen said ("Puas 2486883978").
 */
function pressed(title: string | undefined, id: string | undefined): string {
  const trackingId = /(?<![0-9])[1-9][0-9]{9}(?![0-9])/.exec(id ?? '')?.[0];
  return [title, trackingId].filter(Boolean).join(' ');
}

/** A delivery status in the gateway's terms; `sent` says nothing a later state does not. */
export function deliveryOf(raw: unknown): { transportId: string; state: 'delivered' | 'failed'; detail: string; recipient: string; reengagement: boolean } | undefined {
  const status = StatusSchema.safeParse(raw);
  if (!status.success) return undefined;
  const { id, status: state, errors, recipient_id: recipient = '' } = status.data;
  if (state === 'delivered' || state === 'read') return { transportId: id, state: 'delivered', detail: state, recipient, reengagement: false };
  if (state === 'failed') {
    const code = errors?.[0]?.code;
    return { transportId: id, state: 'failed', detail: `failed ${code ?? ''} ${errors?.[0]?.title ?? ''}`.trim(), recipient, reengagement: code === 131047 };
  }
  return undefined;
}
