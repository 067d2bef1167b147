import { z } from 'zod';
import { STATUS_LABELS, STATUSES, colourOf, type ReportStatus } from '../../core/report.ts';
import type { DataKeys } from '../../core/crypto.ts';
import type { Db } from '../../store/db.ts';
import * as store from '../../store/reports.ts';

/**
 * Events whose existence the public may see: every change of status, and the answer. Who did it,
 * internal notes and reasons stay with operators.
 */
const PUBLIC_EVENTS = new Set(['received', 'status_changed', 'forwarded', 'answered', 'closed']);
const isPublic = (e: { type: string; fromStatus?: string | null | undefined; toStatus?: string | null | undefined }) =>
  PUBLIC_EVENTS.has(e.type) || (Boolean(e.toStatus) && e.toStatus !== e.fromStatus && e.type !== 'archived');

export const PublicViewSchema = z.object({
  trackingId: z.string(),
  status: z.enum(STATUSES),
  statusLabel: z.string(),
  colour: z.enum(['merah', 'kuning', 'hijau']),
  anonim: z.boolean().optional(),
  rahasia: z.boolean().optional(),
  /** True while the report is still in the intake queue (filed a moment ago). */
  pending: z.boolean().optional(),
  receivedAt: z.string().optional(),
  kind: z.string().optional(),
  text: z.string().optional(),
  agency: z.object({ slug: z.string(), name: z.string().nullable() }).nullable().optional(),
  timeline: z.array(z.object({ at: z.string(), event: z.string(), status: z.string().optional(), statusLabel: z.string().optional() })),
  notifications: z.array(z.object({ at: z.string(), kind: z.string().nullable(), text: z.string().optional() })),
});
export type PublicView = z.infer<typeof PublicViewSchema>;

/**
 * What anyone holding the tracking ID may see. Never the reporter. For a rahasia report, only its
 * state: not its text, not the agency, not the messages.
 */
export async function publicView(db: Db, keys: DataKeys, report: store.ReportRow, lang: 'id' | 'en'): Promise<PublicView> {
  const events = await store.listEvents(db, report.seq);
  const timeline = events
    .filter(isPublic)
    .map((e) => ({
      at: e.at.toISOString(),
      event: e.type,
      status: e.toStatus,
      statusLabel: e.toStatus ? STATUS_LABELS[e.toStatus as ReportStatus][lang] : undefined,
    }));
  const base = {
    trackingId: report.trackingId,
    status: report.status,
    statusLabel: STATUS_LABELS[report.status][lang],
    colour: colourOf(report.status),
    anonim: report.anonim,
    rahasia: report.rahasia,
    receivedAt: report.receivedAt.toISOString(),
    timeline,
  };
  if (report.rahasia) return { ...base, notifications: [] };
  const thread = await store.listThread(db, report.seq);
  return {
    ...base,
    kind: report.kind,
    text: report.text,
    agency: report.agencySlug ? { slug: report.agencySlug, name: report.agencyName } : null,
    // The web channel's outbound messages are its notifications: the status page shows them.
    notifications: thread
      .filter((m) => m.direction === 'out' && m.channel === 'web' && m.status === 'stored')
      .map((m) => ({ at: m.createdAt.toISOString(), kind: m.kind, text: openText(keys, m.sealedText) })),
  };
}

/** Notification texts are templates with the tracking ID in them, sealed like every thread message. */
function openText(keys: DataKeys, sealed: string): string | undefined {
  try {
    const text = keys.open('thread', sealed);
    return typeof text === 'string' ? text : undefined;
  } catch {
    return undefined;
  }
}
