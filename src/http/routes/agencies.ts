import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { listAgencies } from '../../store/agencies.ts';
import type { HttpDeps } from '../app.ts';

/** The bodies a report can be forwarded to, public: a citizen may want to know who handles what. */
export function agencyRoutes(deps: HttpDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/agencies',
      {
        schema: {
          summary: 'Agencies and their units',
          response: {
            200: z.object({
              agencies: z.array(z.object({ slug: z.string(), name: z.string(), kind: z.string(), units: z.array(z.object({ slug: z.string(), name: z.string() })) })),
            }),
          },
        },
      },
      async () => ({ agencies: await listAgencies(deps.db) }),
    );
  };
}
