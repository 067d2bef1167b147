import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DeliverySchema, deliveryOf, mediaOf, toInbound, unpack, type WaMessage } from '../../../adapters/whatsapp/inbound.ts';
import { InboundMessageSchema } from '../../../src/core/inbound.ts';
import { parseCitizenMessage } from '../../../src/core/keywords.ts';
import { corpusFile } from '../../helpers/corpus.ts';

/** The WhatsApp normalizer is pure: every corpus delivery in, messages and statuses out. */

type Expect = Record<string, { items: Record<string, { intent: string; attachments: number }> }>;
const expectations = JSON.parse(readFileSync(corpusFile('whatsapp/expect.json'), 'utf8')) as Expect;
const PHONE_ID = '106540352242922';
const NOW = new Date('2026-12-06T00:00:00Z');

const cases = Object.entries(expectations).flatMap(([file, { items }]) => Object.entries(items).map(([id, e]) => ({ file, id, ...e })));

describe('corpus deliveries', () => {
  it.each(cases)('$file → $intent', ({ file, id, intent, attachments }) => {
    const delivery = DeliverySchema.parse(JSON.parse(readFileSync(corpusFile(`whatsapp/${file}`), 'utf8')));
    // The corpus was captured on LAPOR!'s own number.
    const phoneId = delivery.entry[0]!.changes[0]!.value.metadata?.phone_number_id ?? PHONE_ID;
    const { messages, statuses } = unpack(delivery, phoneId);
    if (intent === 'delivery_status') {
      expect(messages).toHaveLength(0);
      expect(statuses.map(deliveryOf)).toEqual([expect.objectContaining({ transportId: id, state: 'delivered' })]);
      return;
    }
    const found = messages.find((m) => (m.raw as { id: string }).id === id)!;
    const message = toInbound(found.raw, found.name, { account: phoneId, now: NOW });
    if ('ignored' in message) throw new Error(`ignored: ${message.reason}`);
    const parsed = InboundMessageSchema.parse(message);
    expect(parsed.externalId).toBe(id);
    expect(parsed.dedupKey).toMatch(/^wa_[A-Za-z0-9_-]{32}$/);
    expect(Boolean(mediaOf(found.raw as WaMessage))).toBe(attachments > 0);
    const command = parseCitizenMessage(parsed.text);
    if (intent === 'follow_up' && command.type === 'new_report') {
      expect(parsed.thread?.ids.length).toBe(1);
      return;
    }
    expect(command.type).toBe(intent);
  });

  it('reads a failed status with 131047 as a re-engagement failure, with or without its recipient', () => {
    const error = { code: 131047, title: 'Re-engagement message' };
    expect(deliveryOf({ id: 'wamid.A', status: 'failed', recipient_id: '6281234567890', errors: [error] })).toEqual({
      transportId: 'wamid.A', state: 'failed', detail: 'failed 131047 Re-engagement message', recipient: '6281234567890', reengagement: true,
    });
    expect(deliveryOf({ id: 'wamid.A', status: 'failed', errors: [error] })).toMatchObject({ recipient: '', reengagement: true });
    expect(deliveryOf({ id: 'wamid.A', status: 'failed', errors: [{ code: 131026 }] })).toMatchObject({ detail: 'failed 131026', reengagement: false });
    expect(deliveryOf({ id: 'wamid.A', status: 'sent' })).toBeUndefined();
  });

  it('skips what it does not take, and a message of another number', () => {
    const sticker = toInbound({ id: 'wamid.X', from: '6281234567890', type: 'sticker', sticker: { id: '1' } }, undefined, { account: PHONE_ID, now: NOW });
    expect(sticker).toMatchObject({ ignored: true, reason: 'type sticker' });
    expect(toInbound({ id: 'wamid.X', type: 'text' }, undefined, { account: PHONE_ID, now: NOW })).toMatchObject({ ignored: true, reason: 'malformed message' });
    const other = DeliverySchema.parse({ object: 'whatsapp_business_account', entry: [{ changes: [{ value: { metadata: { phone_number_id: '999' }, messages: [{}] } }] }] });
    expect(unpack(other, PHONE_ID).messages).toHaveLength(0);
  });
});
