import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { countDeadLetters } from '../../queue/dlq.ts';
import { INBOUND_QUEUE } from '../../queue/names.ts';
import type { HttpDeps } from '../app.ts';

/** /healthz: the process answers. /readyz: it can do its job — stores reachable, someone consuming. */
export function healthRoutes(deps: HttpDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

    app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
      const checks = await Promise.all([
        check('postgres', async () => void (await deps.db.query('SELECT 1'))),
        check('redis', async () => void (await deps.producer.ping())),
        // Workers have been seen to stop consuming after a Redis restart (bullmq#2964): readiness
        // must notice that nobody takes inbound jobs, not just that Redis answers.
        check('intake_workers', async () => {
          const count = await deps.queues.get(INBOUND_QUEUE)!.getWorkersCount();
          if (count === 0) throw new Error('no worker consumes the inbound queue');
        }),
        // A link another process serves (its lease) is fine; one this process should serve and cannot is not.
        ...deps.metrics.links.probe().map(async ({ channel, status }) => {
          const result = await check(`${channel}_${status.link}`, async () => {
            if (!status.ok) throw new Error(`${status.link} is ${status.state}`);
          });
          // The state and what the operator should know of it (X: the month's budget so far).
          return { ...result, state: status.state, ...(status.detail ? { detail: status.detail } : {}) };
        }),
      ]);
      const ready = checks.every((c) => c.ok);
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks, deadLetters: await deadLetters() });
    });

    /**
     * Dead letters do not make the process unready (it still takes and files reports), but each is a
     * message that failed for good and needs an operator, so readiness says so instead of keeping quiet.
     */
    async function deadLetters(): Promise<{ total: number; queues: Record<string, number>; hint?: string } | { error: string }> {
      try {
        const queues = await withTimeout(countDeadLetters(deps.queues), 2_000);
        const total = Object.values(queues).reduce((a, b) => a + b, 0);
        return { total, queues, ...(total ? { hint: 'Messages that failed for good: see `lapor dlq list`, fix the cause, then `lapor dlq replay`.' } : {}) };
      } catch (err) {
        return { error: (err as Error).message };
      }
    }

    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
      const body = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(body);
    });
  };
}

async function check(name: string, probe: () => Promise<void>): Promise<{ name: string; ok: boolean; error?: string }> {
  try {
    await withTimeout(probe(), 2_000);
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, error: (err as Error).message };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref())]);
}
