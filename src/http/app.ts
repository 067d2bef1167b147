import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyError } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Runtime } from '../runtime.ts';
import { EnqueueUnavailableError } from '../queue/queues.ts';
import { healthRoutes } from './routes/health.ts';
import { adminRoutes } from './routes/admin.ts';
import { agencyRoutes } from './routes/agencies.ts';
import { authRoutes } from './routes/auth.ts';
import { reportRoutes } from './routes/reports.ts';

export type HttpDeps = Pick<Runtime, 'config' | 'log' | 'db' | 'queues' | 'codec' | 'keys' | 'producer' | 'metrics' | 'adapters' | 'clocks'>;

/**
 * Builds the HTTP API without listening (`app.inject` in tests; src/http/server.ts listens).
 */
export async function buildApp(deps: HttpDeps) {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }),
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy,
    // No per-request log lines: metrics count requests, and errors are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // JSON must be valid UTF-8: Node would otherwise turn bad bytes into U+FFFD silently and store
  // a corrupted complaint as if the citizen had written it.
  // JSON only: Fastify's default text/plain parser would let a string body reach validation as 400
  // instead of the 415 a client needs to see.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body: Buffer, done) => {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      done(httpError(400, 'invalid_utf8', 'The request body is not valid UTF-8.'), undefined);
      return;
    }
    try {
      done(null, text.length ? JSON.parse(text) : undefined);
    } catch {
      done(httpError(400, 'invalid_json', 'The request body is not valid JSON.'), undefined);
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const rejected = (reason: string) => {
      if (req.method === 'POST' && req.routeOptions.url === '/api/v1/reports') deps.metrics.inboundRejected.inc({ channel: 'web', reason });
    };
    if (hasZodFastifySchemaValidationErrors(err)) {
      rejected('invalid');
      return reply.status(400).send({
        error: 'bad_request',
        message: 'The request does not match the API.',
        details: err.validation.map((v) => ({ path: v.instancePath || '/', message: v.message })),
      });
    }
    if (err instanceof EnqueueUnavailableError) {
      rejected('unavailable');
      req.log.warn({ err }, 'enqueue unavailable');
      return reply.status(503).header('retry-after', '5').send({ error: 'unavailable', message: 'Try again in a few seconds.' });
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply.status(status).send({ error: 'internal', message: 'Something went wrong on our side.' });
    }
    const code = errorCodeOf(err, status);
    rejected(code);
    return reply.status(status).send({ error: code, message: err.message });
  });

  app.setNotFoundHandler((_req, reply) => reply.status(404).send({ error: 'not_found', message: 'No such route.' }));

  await app.register(swagger, {
    openapi: {
      info: { title: 'LAPOR! gateway', version: '1', description: 'Intake API of LAPOR! (SP4N)' },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(healthRoutes(deps));
  await app.register(reportRoutes(deps), { prefix: '/api/v1' });
  await app.register(agencyRoutes(deps), { prefix: '/api/v1' });
  await app.register(authRoutes(deps), { prefix: '/api/v1' });
  await app.register(adminRoutes(deps), { prefix: '/api/v1/admin' });
  return app;
}

function errorCodeOf(err: { code?: string }, status: number): string {
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 'payload_too_large';
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return 'unsupported_media_type';
  if (err.code && /^[a-z][a-z0-9_]*$/.test(err.code)) return err.code;
  return status === 404 ? 'not_found' : 'bad_request';
}

export function httpError(statusCode: number, code: string, message: string): Error & { statusCode: number; code: string } {
  return Object.assign(new Error(message), { statusCode, code });
}
