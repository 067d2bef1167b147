import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../app.ts';
import { citizenPages } from './citizen.ts';
import { consolePages } from './console.ts';
import { queueBoard } from './queue-board.ts';

/**
 * The pages: citizens' at `/`, the console at `/admin`. Server-rendered HTML from the same process
 * as the API, no build step and no framework: the heaviest page is a few kilobytes (measured in
 * test/pages), which a cheap phone on a slow network loads at once.
 */

const ASSETS = ['lapor.css'] as const;
const TYPES: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8' };

export function pageRoutes(deps: HttpDeps) {
  return async (app: FastifyInstance) => {
    // HTML forms post urlencoded: parsed only in this scope, the API stays JSON-only.
    await app.register(formbody, { bodyLimit: deps.config.http.bodyLimitBytes });

    for (const name of ASSETS) {
      const body = readFileSync(new URL(`./assets/${name}`, import.meta.url));
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
      app.get(`/assets/${name}`, { schema: { hide: true } }, async (req, reply) => {
        reply.header('etag', etag).header('cache-control', 'public, max-age=3600');
        if (req.headers['if-none-match'] === etag) return reply.status(304).send();
        return reply.header('content-type', TYPES[name.split('.').pop()!]!).send(body);
      });
    }
    await app.register(citizenPages(deps));
    await app.register(consolePages(deps));
    await app.register(queueBoard(deps));
  };
}
