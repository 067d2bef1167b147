import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizeAddress } from '../../src/core/inbound.ts';
import type { TestEnv } from './env.ts';

/**
 * The sample citizen messages of shared/corpus. The project's copy lives in test/fixtures/corpus so a
 * clone tests on its own; when the team's shared/ sits beside the checkout (as on our machines and
 * in CI), that fresher copy wins, and LAPOR_CORPUS_DIR can point anywhere else.
 */
export function corpusFile(name: string): string {
  const candidates = [
    process.env.LAPOR_CORPUS_DIR ? join(process.env.LAPOR_CORPUS_DIR, name) : undefined,
    fileURLToPath(new URL(`../../../shared/corpus/${name}`, import.meta.url)),
    fileURLToPath(new URL(`../fixtures/corpus/${name}`, import.meta.url)),
  ].filter((c): c is string => Boolean(c));
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`corpus file ${name} not found; tried ${candidates.join(', ')}`);
  return found;
}

export function readCorpusLines<T>(name: string): T[] {
  return readFileSync(corpusFile(name), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as T);
}

/** One report of the corpus's reports.json. */
export interface CorpusReport {
  tracking_id: string;
  channel: string;
  owner: string;
  privacy: 'public' | 'anonim' | 'rahasia';
  kind: string;
  weight: string | null;
  agency: string | null;
  status: string;
  summary: string;
  received_at?: string;
  outbound_message_id?: string;
  /** Email: the Message-ID of our notification, `<report-…@…>`. */
  notification_message_id?: string;
}

/**
 * Puts reports of the corpus into the store as the earlier system left them: reporter (sealed, with
 * its contact hash), report with its ID, status and agency, and — where the corpus names one — our
 * outbound message with its transport id, so replies to it and its statuses find the report.
 * Returns report seq by tracking ID.
 */
export async function seedCorpusReports(env: TestEnv, reports: readonly CorpusReport[]): Promise<Map<string, string>> {
  const seqs = new Map<string, string>();
  const { db, keys } = env.runtime;
  for (const r of reports) {
    const channel = r.channel === 'twitter' ? 'x' : r.channel;
    const replyContext = r.owner.startsWith('wa:') ? { to: r.owner.slice(3) } : {};
    const contactHash = keys.blindIndex(normalizeAddress(r.owner));
    const { rows } = await db.query<{ seq: string }>(
      `WITH reporter AS (INSERT INTO reporters (contact_hash, sealed) VALUES ($1, $2) RETURNING id)
       INSERT INTO reports (seq, tracking_id, channel, kind, weight, status, anonim, rahasia, agency_slug, text, reporter_id, contact_hash, received_at)
       SELECT nextval('report_seq'), $3, $4, $5, $6, $7, $8, $9, $10, $11, reporter.id, $1, $12 FROM reporter RETURNING seq::text`,
      [
        contactHash,
        keys.seal('reporter', { channel, address: r.owner, replyContext }),
        r.tracking_id,
        channel,
        r.kind,
        r.weight,
        r.status.replace(/ /g, '_'),
        r.privacy === 'anonim',
        r.privacy === 'rahasia',
        r.agency,
        r.summary,
        r.received_at ?? new Date().toISOString(),
      ],
    );
    const seq = rows[0]!.seq;
    seqs.set(r.tracking_id, seq);
    const sentId = r.outbound_message_id ?? r.notification_message_id?.replace(/^<|>$/g, '');
    if (sentId) {
      const sent = await db.query<{ id: string }>(
        `INSERT INTO messages (report_seq, direction, channel, notify_key, kind, sealed_text, status, transport_id, transport_ids)
         VALUES ($1, 'out', $2, $3, 'answered', $4, 'sent', $5, ARRAY[$5]) RETURNING id::text`,
        [seq, channel, `seed_${r.tracking_id}`, keys.seal('thread', `LAPOR! tanggapan untuk laporan ${r.tracking_id}`), sentId],
      );
      await db.query(`INSERT INTO outbound_parts (channel, transport_id, message_id) VALUES ($1, $2, $3)`, [channel, sentId, sent.rows[0]!.id]);
    }
  }
  return seqs;
}
