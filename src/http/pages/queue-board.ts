import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import { mayOperate } from '../../core/roles.ts';
import { actorOfToken } from '../../store/users.ts';
import type { HttpDeps } from '../app.ts';
import { SESSION_COOKIE } from './console.ts';
import { langOf } from './layout.ts';

/**
 * bull-board at /admin/queues, behind the console's login, for operators and super admins only.
 * Read-only: removing, cleaning or promoting jobs by hand can lose or duplicate citizens' messages,
 * so replaying a dead letter goes through /admin/operasi (and the API), never through this board.
 * Job data is ids and sealed boxes (src/queue/jobs.ts): nothing personal shows here.
 */
export const QUEUE_BOARD_PATH = '/admin/queues';

export function queueBoard(deps: HttpDeps) {
  return async (app: FastifyInstance) => {
    app.addHook('onRequest', async (req, reply) => {
      const token = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([A-Za-z0-9_-]{20,200})`).exec(req.headers.cookie ?? '')?.[1];
      const actor = token ? await actorOfToken(deps.db, token) : undefined;
      if (!actor) return reply.redirect(`/admin/login?next=${encodeURIComponent(`${QUEUE_BOARD_PATH}/`)}`, 303);
      if (!mayOperate(actor)) {
        // In the console's language: `?lang=`, else the `lang` cookie the console remembers it in.
        const text = langOf(req, 'id') === 'en' ? 'The queue dashboard is for operators and super admins only.' : 'Dasbor antrean hanya untuk operator dan super admin.';
        return reply.status(403).header('content-type', 'text/plain; charset=utf-8').send(text);
      }
    });
    // bull-board's page asks Google for its fonts: an operator's address and the console's URL would
    // go to a third party on every visit (and wait on a closed network). Nothing outside leaves here.
    app.addHook('onSend', async (_req, reply) => {
      reply.header(
        'content-security-policy',
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'",
      );
    });
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(QUEUE_BOARD_PATH);
    createBullBoard({
      queues: deps.queues.all().map((queue) => new BullMQAdapter(queue, { readOnlyMode: true })),
      serverAdapter,
      options: { uiConfig: { boardTitle: 'LAPOR! antrean' } },
    });
    await app.register(serverAdapter.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
  };
}
