import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROLES } from '../../core/roles.ts';
import { createSession, findUserByEmail, newToken, revokeSession } from '../../store/users.ts';
import type { HttpDeps } from '../app.ts';
import { decoyPasswordHash, verifyPassword } from '../auth.ts';

const ErrorBody = z.object({ error: z.string(), message: z.string() });

/**
 * Login and logout. Failed logins are counted in Redis per account and, more loosely, per client
 * address; past either limit the answer is 429 with Retry-After, and no token is given even for the
 * right password until the window has passed.
 */
export function authRoutes(deps: HttpDeps): FastifyPluginAsyncZod {
  const { config, db, producer, log } = deps;
  const windowSeconds = config.auth.failureWindowMinutes * 60;
  const key = (kind: 'acct' | 'addr', value: string) =>
    `${config.queue.prefix}:login:${kind}:${createHash('sha256').update(value).digest('base64url').slice(0, 32)}`;

  return async (app) => {
    app.post(
      '/auth/login',
      {
        schema: {
          summary: 'Log in to the operator API',
          body: z.strictObject({ email: z.string().trim().min(3).max(254), password: z.string().min(1).max(1024) }),
          response: {
            200: z.object({ token: z.string(), expiresAt: z.string(), role: z.enum(ROLES) }),
            401: ErrorBody,
            429: ErrorBody,
          },
        },
      },
      async (req, reply) => {
        const email = req.body.email.toLowerCase();
        const keys = [key('acct', email), key('addr', req.ip)];
        // The attempt is counted before the password is checked, so parallel guesses cannot all slip
        // in under the limit while the (slow, on purpose) hash runs; a success gives its count back.
        const counted = await producer.multi().incr(keys[0]!).expire(keys[0]!, windowSeconds, 'NX').incr(keys[1]!).expire(keys[1]!, windowSeconds, 'NX').exec();
        const acct = Number(counted?.[0]?.[1] ?? 0);
        const addr = Number(counted?.[2]?.[1] ?? 0);
        if (acct > config.auth.maxFailuresPerAccount || addr > config.auth.maxFailuresPerAddress) {
          const ttl = Math.max(1, ...(await Promise.all(keys.map((k) => producer.ttl(k)))));
          return reply.status(429).header('retry-after', String(ttl)).send({ error: 'too_many_attempts', message: 'Too many failed logins. Wait, then try again.' });
        }
        const user = await findUserByEmail(db, email);
        const ok = await verifyPassword(user?.passwordHash ?? (await decoyPasswordHash()), req.body.password);
        if (!user || !ok || user.disabledAt) {
          log.info({ userId: user?.id ?? null }, 'login failed');
          return reply.status(401).send({ error: 'unauthorized', message: 'Wrong email or password.' });
        }
        await producer.multi().decr(keys[0]!).decr(keys[1]!).exec();
        const { token, hash } = newToken();
        const expiresAt = new Date(Date.now() + config.auth.tokenHours * 3_600_000);
        await createSession(db, user.id, hash, expiresAt);
        log.info({ userId: user.id, userRole: user.role }, 'login');
        return { token, expiresAt: expiresAt.toISOString(), role: user.role };
      },
    );

    app.post('/auth/logout', { schema: { summary: 'End this token', response: { 204: z.null() } } }, async (req, reply) => {
      const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
      if (match) await revokeSession(db, match[1]!);
      return reply.status(204).send(null);
    });
  };
}
