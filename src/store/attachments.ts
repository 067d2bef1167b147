import { createHash, randomBytes } from 'node:crypto';
import { safeFilename, sniffAttachmentType, type AttachmentType } from '../core/attachments.ts';
import type { AttachmentSink } from '../core/channel.ts';
import type { Db, Tx } from './db.ts';

type Queryable = Db | Tx;

export interface StoredAttachment {
  token: string;
  filename: string;
  contentType: AttachmentType;
  size: number;
  sha256: string;
}

/**
 * Keeps an uploaded file until a report claims it by its token. `reserved`: already promised to a
 * message on its way to intake (a channel's attachment), so the cleanup of abandoned uploads leaves it.
 */
export async function storeAttachment(db: Queryable, file: { filename: string; contentType: AttachmentType; data: Buffer; reserved?: boolean }): Promise<StoredAttachment> {
  const token = `att_${randomBytes(18).toString('base64url')}`;
  const sha256 = createHash('sha256').update(file.data).digest('hex');
  await db.query(`INSERT INTO attachments (token, filename, content_type, size, sha256, data, reserved_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
    token,
    file.filename,
    file.contentType,
    file.data.length,
    sha256,
    file.data,
    file.reserved ? new Date() : null,
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

/** A channel's attachments, kept as uploads reserved for the message that names them. */
export function createAttachmentSink(db: Queryable, maxBytes: number): AttachmentSink {
  return {
    maxBytes,
    async store({ name, data }) {
      if (!data.length) return { refused: 'empty file' };
      if (data.length > maxBytes) return { refused: `larger than ${maxBytes} bytes` };
      const type = sniffAttachmentType(data);
      if (!type) return { refused: 'not a photo or a PDF' };
      const stored = await storeAttachment(db, { filename: safeFilename(name, type), contentType: type, data, reserved: true });
      return { filename: stored.filename, contentType: stored.contentType, size: stored.size, sha256: stored.sha256, ref: stored.token };
    },
  };
}

/** The uploads a follow-up names, claimed by the report it adds to. */
export async function claimAttachments(db: Queryable, seq: string | number, tokens: readonly string[]): Promise<void> {
  if (!tokens.length) return;
  await db.query('UPDATE attachments SET report_seq = $1 WHERE token = ANY($2) AND report_seq IS NULL', [seq, tokens]);
}
