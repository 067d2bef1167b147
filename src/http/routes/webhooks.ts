import type { FastifyPluginAsync } from 'fastify';
import { ChannelIdSchema } from '../../core/inbound.ts';
import type { HttpDeps } from '../app.ts';

/**
 * `/webhooks/<channel>`: what push providers (X's Account Activity, later Telegram and WhatsApp)
 * deliver, handed to the channel's adapter with the body's exact bytes — a signature is computed
 * over them, and a body parsed and serialised again would not verify. The adapter verifies,
 * normalizes and stores, and says what to answer.
 */
/**
 * Larger than the API's own limit (LAPOR_HTTP_BODY_LIMIT_BYTES, 64 KiB): X delivers a long post of up
 * to 25,000 characters (three bytes each in many scripts, six as \u escapes), the post it quotes,
 * several events at once. The signature is checked only once the body is in, so this is also what an
 * unsigned sender can make us read.
 */
const WEBHOOK_BODY_LIMIT = 1024 * 1024;

export function webhookRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    // This scope only: every content type arrives as bytes, whatever the provider declares.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body: Buffer, done) => done(null, body));

    const handle = (method: 'GET' | 'POST') => async (req: { params: unknown; query: unknown; headers: Record<string, string | string[] | undefined>; body: unknown }, reply: { status(code: number): { send(body: unknown): unknown } }) => {
      const channel = ChannelIdSchema.safeParse((req.params as { channel?: string }).channel);
      const adapter = channel.success ? deps.adapters.get(channel.data) : undefined;
      if (!adapter?.webhook) return reply.status(404).send({ error: 'not_found', message: 'No webhook for that channel here.' });
      const answer = await adapter.webhook({
        method,
        query: (req.query ?? {}) as Record<string, string | string[] | undefined>,
        headers: req.headers,
        rawBody: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
      });
      return reply.status(answer.status).send(answer.body);
    };
    app.get('/webhooks/:channel', { schema: { hide: true } }, handle('GET'));
    app.post('/webhooks/:channel', { schema: { hide: true }, bodyLimit: WEBHOOK_BODY_LIMIT }, handle('POST'));
  };
}
