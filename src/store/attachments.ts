import { createHash, randomBytes } from 'node:crypto';
import type { AttachmentType } from '../core/attachments.ts';
import type { Db, Tx } from './db.ts';

type Queryable = Db | Tx;

export interface StoredAttachment {
  token: string;
  filename: string;
  contentType: AttachmentType;
  size: number;
  sha256: string;
}

/** Keeps an uploaded file until a report claims it by its token. */
export async function storeAttachment(db: Queryable, file: { filename: string; contentType: AttachmentType; data: Buffer }): Promise<StoredAttachment> {
  const token = `att_${randomBytes(18).toString('base64url')}`;
  const sha256 = createHash('sha256').update(file.data).digest('hex');
  await db.query(`INSERT INTO attachments (token, filename, content_type, size, sha256, data) VALUES ($1, $2, $3, $4, $5, $6)`, [
    token,
    file.filename,
    file.contentType,
    file.data.length,
    sha256,
    file.data,
  ]);
  return { token, filename: file.filename, contentType: file.contentType, size: file.data.length, sha256 };
}

/**
 * Reserves the uploads these tokens name for a report about to be acknowledged: all of them, or
 * none (an unknown token, or one reserved or claimed by another report). Returns what was reserved.
 */
export async function reserveAttachments(db: Queryable, tokens: readonly string[]): Promise<StoredAttachment[] | undefined> {
  if (!tokens.length) return [];
  // One statement: the rows are locked, counted, and reserved only if every token is among them.
  const { rows } = await db.query<StoredAttachment>(
    `WITH candidates AS (
       SELECT id FROM attachments WHERE token = ANY($1) AND report_seq IS NULL AND reserved_at IS NULL FOR UPDATE),
     complete AS (SELECT count(*) = $2 AS yes FROM candidates)
     UPDATE attachments a SET reserved_at = now() FROM candidates c, complete
     WHERE a.id = c.id AND complete.yes
     RETURNING a.token, a.filename, a.content_type AS "contentType", a.size, a.sha256`,
    [tokens, tokens.length],
  );
  return rows.length === tokens.length ? rows : undefined;
}

/** Gives reserved uploads back (their report was not acknowledged after all). */
export async function releaseAttachments(db: Queryable, tokens: readonly string[]): Promise<void> {
  await db.query('UPDATE attachments SET reserved_at = NULL WHERE token = ANY($1) AND report_seq IS NULL', [tokens]);
}

/** The uploads a retried request named, still waiting for its report (a replay re-adds them to its job). */
export async function pendingAttachments(db: Queryable, tokens: readonly string[]): Promise<StoredAttachment[]> {
  if (!tokens.length) return [];
  const { rows } = await db.query<StoredAttachment>(
    `SELECT token, filename, content_type AS "contentType", size, sha256 FROM attachments WHERE token = ANY($1) AND report_seq IS NULL`,
    [tokens],
  );
  return rows;
}

export interface AttachmentInfo {
  id: string;
  filename: string;
  contentType: AttachmentType;
  size: number;
}

export async function attachmentsOf(db: Queryable, seq: string): Promise<AttachmentInfo[]> {
  const { rows } = await db.query<AttachmentInfo>(
    `SELECT id::text, filename, content_type AS "contentType", size FROM attachments WHERE report_seq = $1 ORDER BY id`,
    [seq],
  );
  return rows;
}

export async function attachmentData(db: Queryable, seq: string, id: string): Promise<(AttachmentInfo & { data: Buffer }) | undefined> {
  const { rows } = await db.query<AttachmentInfo & { data: Buffer }>(
    `SELECT id::text, filename, content_type AS "contentType", size, data FROM attachments WHERE report_seq = $1 AND id = $2`,
    [seq, id],
  );
  return rows[0];
}

/** Removes uploads no report claimed within `olderThanHours` (a form abandoned after its upload). */
export async function removeUnclaimedAttachments(db: Queryable, olderThanHours = 24): Promise<number> {
  // A reserved upload waits for its report's intake (a backlog, a worker down over a weekend) for a week.
  const { rowCount } = await db.query(
    `DELETE FROM attachments WHERE report_seq IS NULL AND created_at < now() - make_interval(hours => $1)
       AND (reserved_at IS NULL OR reserved_at < now() - interval '7 days')`,
    [olderThanHours],
  );
  return rowCount ?? 0;
}
