import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeWhatsAppApi } from '../../../scripts/whatsapp/fake-api.ts';
import { corpusFile, seedCorpusReports, type CorpusReport } from '../../helpers/corpus.ts';
import { eventually } from '../../helpers/env.ts';
import { WA_SECRETS, whatsappGateway, type WhatsAppGateway } from '../../helpers/whatsapp.ts';

/**
 * The WhatsApp corpus end to end: each captured webhook body is delivered by the fake Cloud API to
 * the gateway's webhook, signed as Meta signs (\u-escaped bytes), and each item's expected outcome is
 * checked in the store and in what the gateway sent back. The reports the corpus refers to
 * (reports.json) are seeded first, with our outbound messages that replies and statuses name.
 */

interface Expectation {
  intent: string;
  attachments: number;
  notes: string;
}
type Expect = Record<string, { notes: string; items: Record<string, Expectation> }>;

const expectations = JSON.parse(readFileSync(corpusFile('whatsapp/expect.json'), 'utf8')) as Expect;
const seeded = (JSON.parse(readFileSync(corpusFile('reports.json'), 'utf8')) as CorpusReport[]).filter((r) => r.channel === 'whatsapp');
const cases = Object.entries(expectations).flatMap(([file, { items }]) => Object.entries(items).map(([id, e]) => ({ file, id, ...e })));

/** The outcome intake records on a message's receipt, by the corpus's intent. */
const OUTCOMES: Record<string, string> = {
  new_report: 'new_report',
  status_query: 'status',
  follow_up: 'follow_up',
  satisfied: 'satisfied',
  dissatisfied: 'dissatisfied',
  set_privacy: 'set_privacy',
  help: 'help',
  empty: 'empty',
};

const body = (file: string) => JSON.parse(readFileSync(corpusFile(`whatsapp/${file}`), 'utf8')) as Record<string, unknown>;
interface Value {
  metadata?: { phone_number_id?: string };
  contacts?: { wa_id: string; profile?: { name?: string } }[];
  messages?: { id: string; from: string; context?: { id?: string }; image?: { id: string; mime_type: string }; text?: { body: string }; [k: string]: unknown }[];
  statuses?: { id: string; recipient_id: string }[];
}
const valueOf = (payload: Record<string, unknown>) => (payload as { entry: { changes: { value: Value }[] }[] }).entry[0]!.changes[0]!.value;
const PHONE_ID = valueOf(body(cases[0]!.file)).metadata!.phone_number_id!;

/** A JPEG's first bytes: what the attachment store reads the type from. */
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('corpus photo')]);

let gw: WhatsAppGateway;
let seqs: Map<string, string>;

beforeAll(async () => {
  // The corpus was captured on LAPOR!'s own number: the fake and the gateway serve that one.
  const fake = await FakeWhatsAppApi.start({ ...WA_SECRETS, phoneNumberId: PHONE_ID, displayPhone: '+62 813-1170-1708', wabaId: '102938475610293', webhookRetryMs: 200 });
  gw = await whatsappGateway({}, {}, { fake });
  seqs = await seedCorpusReports(gw.env, seeded);
});
afterAll(async () => {
  await gw?.close();
  await gw?.fake.stop();
});

async function receipt(id: string) {
  const { rows } = await gw.env.runtime.db.query<{ outcome: string; report_seq: string | null }>(
    `SELECT outcome, report_seq::text FROM inbound_receipts WHERE channel = 'whatsapp' AND external_id = $1`,
    [id],
  );
  return rows[0];
}

const trackingIdOf = async (seq: string) =>
  (await gw.env.runtime.db.query<{ tracking_id: string; status: string }>(`SELECT tracking_id, status FROM reports WHERE seq = $1`, [seq])).rows[0]!;

describe('WhatsApp corpus through the fake Cloud API and the gateway', () => {
  it.each(cases)('$file: $intent', async ({ file, id, intent, attachments }) => {
    const { fake, env } = gw;
    const payload = body(file);
    const value = valueOf(payload);
    for (const m of value.messages ?? []) if (m.image) fake.putMedia({ id: m.image.id, bytes: JPEG, mimeType: m.image.mime_type });
    const deliveredBefore = fake.stats().webhook.delivered;
    fake.raw(payload);
    await eventually(async () => (fake.stats().webhook.delivered > deliveredBefore ? true : undefined), 10_000, `${file} answered 200`);

    if (intent === 'delivery_status') {
      const owner = seeded.find((r) => r.outbound_message_id === id)!;
      const row = await eventually(async () => {
        const { rows } = await env.runtime.db.query<{ status: string; delivery: Record<string, string> }>(
          `SELECT m.status, m.delivery FROM outbound_parts p JOIN messages m ON m.id = p.message_id WHERE p.channel = 'whatsapp' AND p.transport_id = $1`,
          [id],
        );
        return rows[0]?.status === 'delivered' ? rows[0] : undefined;
      }, 10_000, `${id} recorded delivered`);
      expect(row.delivery).toEqual({ [id]: 'delivered' });
      expect(await receipt(id)).toBeUndefined();
      expect(seqs.get(owner.tracking_id)).toBeDefined();
      return;
    }

    const message = value.messages!.find((m) => m.id === id)!;
    if (intent === 'ignored') {
      await fake.idle();
      expect(await receipt(id)).toBeUndefined();
      expect(fake.sent({ to: message.from })).toEqual([]);
      return;
    }
    const recorded = await eventually(async () => receipt(id), 10_000, `the receipt of ${id}`);
    expect(recorded.outcome).toBe(OUTCOMES[intent]);
    const report = await trackingIdOf(recorded.report_seq!);
    if (intent === 'new_report') {
      expect(seeded.map((r) => r.tracking_id)).not.toContain(report.tracking_id);
      const { rows } = await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM attachments WHERE report_seq = $1`, [recorded.report_seq]);
      expect(rows[0]!.n).toBe(attachments);
    } else {
      // A follow-up in our thread (context.id names our message) or a command naming the report.
      const named = message.context?.id ? seeded.find((r) => r.outbound_message_id === message.context!.id) : undefined;
      const refers = named ?? seeded.find((r) => JSON.stringify(message).includes(r.tracking_id));
      expect(report.tracking_id).toBe(refers?.tracking_id);
    }
    if (intent === 'follow_up') {
      const { rows } = await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE report_seq = $1 AND direction = 'in' AND external_id = $2`, [recorded.report_seq, id]);
      expect(rows[0]!.n).toBe(1);
    }
    if (intent === 'satisfied') expect(report.status).toBe('selesai');
    // Answered in the chat, naming the report.
    const reply = await eventually(async () => fake.sent({ to: message.from }).find((s) => s.replyTo === id), 10_000, `the answer to ${file}`);
    expect(JSON.stringify(reply)).toContain(report.tracking_id);
  });

  it('logged none of the corpus’s names, numbers or words', () => {
    const logs = gw.env.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    const personal = cases.flatMap(({ file }) => {
      const value = valueOf(body(file));
      return [
        ...(value.contacts ?? []).flatMap((c) => [c.wa_id, c.profile?.name ?? '']),
        ...(value.messages ?? []).flatMap((m) => [m.from, m.text?.body ?? '', m.id]),
        ...(value.statuses ?? []).flatMap((s) => [s.recipient_id]),
      ];
    });
    for (const secret of personal.filter((p) => p.length > 3)) expect(logs, secret).not.toContain(secret);
  });
});
