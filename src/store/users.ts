import { createHash, randomBytes } from 'node:crypto';
import type { Actor, Role } from '../core/roles.ts';
import type { Db, Tx } from './db.ts';

type Queryable = Db | Tx;

export interface UserRow {
  id: string;
  email: string;
  role: Role;
  agencySlug: string | null;
  unitSlug: string | null;
  passwordHash: string;
  disabledAt: Date | null;
  createdAt: Date;
}

const USER_COLUMNS = `id::text, email, role, agency_slug AS "agencySlug", unit_slug AS "unitSlug",
  password_hash AS "passwordHash", disabled_at AS "disabledAt", created_at AS "createdAt"`;

export async function insertUser(
  db: Queryable,
  user: { email: string; role: Role; agencySlug: string | null; unitSlug: string | null; passwordHash: string },
): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(
    `INSERT INTO users (email, role, agency_slug, unit_slug, password_hash) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (email) DO NOTHING RETURNING ${USER_COLUMNS}`,
    [user.email.toLowerCase(), user.role, user.agencySlug, user.unitSlug, user.passwordHash],
  );
  return rows[0];
}

export async function findUserByEmail(db: Queryable, email: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE email = $1`, [email.toLowerCase()]);
  return rows[0];
}

export async function listUsers(db: Queryable): Promise<UserRow[]> {
  const { rows } = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users ORDER BY id`);
  return rows;
}

/** Disables a user and ends their sessions at once. */
export async function disableUser(db: Queryable, email: string): Promise<boolean> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE users SET disabled_at = COALESCE(disabled_at, now()) WHERE email = $1 RETURNING id::text`,
    [email.toLowerCase()],
  );
  if (!rows[0]) return false;
  await db.query(`UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, [rows[0].id]);
  return true;
}

/** Login tokens: 32 random bytes for the client, their SHA-256 for us. */
export function newToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: tokenHash(token) };
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export async function createSession(db: Queryable, userId: string, hash: string, expiresAt: Date): Promise<void> {
  await db.query(`INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`, [hash, userId, expiresAt]);
}

/** The actor behind a token: only a session not expired, not revoked, of a user not disabled. */
export async function actorOfToken(db: Queryable, token: string): Promise<Actor | undefined> {
  const { rows } = await db.query<Actor>(
    `SELECT u.id::text AS "userId", u.role, u.agency_slug AS "agencySlug", u.unit_slug AS "unitSlug"
     FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL`,
    [tokenHash(token)],
  );
  return rows[0];
}

export async function revokeSession(db: Queryable, token: string): Promise<void> {
  await db.query(`UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL`, [tokenHash(token)]);
}
