import { createHash } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Actor } from '../core/roles.ts';
import { actorOfToken } from '../store/users.ts';
import type { HttpDeps } from './app.ts';

/**
 * Bearer tokens for the operator API, and the brakes on guessing passwords. The token is opaque and
 * random; only its hash is stored (src/store/users.ts).
 */

declare module 'fastify' {
  interface FastifyRequest {
    actor?: Actor;
  }
}

/** preHandler for /api/v1/admin: 401 unless the request carries a live token. */
export function requireActor(deps: Pick<HttpDeps, 'db'>) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer ([A-Za-z0-9_-]{20,200})$/.exec(header);
    const actor = match ? await actorOfToken(deps.db, match[1]!) : undefined;
    if (!actor) {
      return reply
        .status(401)
        .header('www-authenticate', 'Bearer realm="lapor-admin"')
        .send({ error: 'unauthorized', message: 'Log in first: POST /api/v1/auth/login, then send Authorization: Bearer <token>.' });
    }
    req.actor = actor;
  };
}

export function hashPassword(password: string): Promise<string> {
  // argon2id with the library's defaults (19 MiB, 2 passes): OWASP's minimum recommendation.
  return argon2Hash(password);
}

export function verifyPassword(hash: string, password: string): Promise<boolean> {
  return argon2Verify(hash, password).catch(() => false);
}

/** Compared against when an email is unknown, so both answers take as long as a real check. */
let decoyHash: Promise<string> | undefined;
export function decoyPasswordHash(): Promise<string> {
  decoyHash ??= hashPassword(createHash('sha256').update(String(Math.random())).digest('hex'));
  return decoyHash;
}
