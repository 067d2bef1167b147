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
import { InboundRefusedError } from '../core/errors.ts';
import { EnqueueUnavailableError } from '../queue/queues.ts';
import { createHttpLimits } from './limits.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { healthRoutes } from './routes/health.ts';
import { pageRoutes } from './pages/plugin.ts';
import { adminRoutes } from './routes/admin.ts';
import { agencyRoutes } from './routes/agencies.ts';
import { attachmentRoutes } from './routes/attachments.ts';
import { authRoutes } from './routes/auth.ts';
import { reportRoutes } from './routes/reports.ts';
import { statsRoutes } from './routes/stats.ts';

export type HttpDeps = Pick<Runtime, 'config' | 'log' | 'db' | 'queues' | 'codec' | 'keys' | 'producer' | 'metrics' | 'adapters' | 'clocks'>;

/**
 * Builds the HTTP API without listening (`app.inject` in tests; src/http/server.ts listens).
 */
export async function buildApp(deps: HttpDeps) {
  const { config } = deps;
  // Deadlines and connection caps (src/http/limits.ts): no client holds a connection for long.
  const limits = createHttpLimits(config.http, (reason) => deps.metrics.httpRefused.inc({ reason }));
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }),
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy,
    // No per-request log lines: metrics count requests, and errors are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    ...limits.fastifyOptions,
  }).withTypeProvider<ZodTypeProvider>();
  limits.guard(app.server);
  app.addHook('onRequest', (req, reply, done) => {
    const upload = (req.routeOptions.config as { upload?: boolean } | undefined)?.upload === true;
    limits.bodyDeadline(req.raw, reply.raw, upload);
    limits.answerDeadline(reply.raw, upload, () => reply.send(new AnswerDeadlineError()));
    done();
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // JSON must be valid UTF-8: Node would otherwise turn bad bytes into U+FFFD silently and store
  // a corrupted complaint as if the citizen had written it.
  // JSON only: Fastify's default text/plain parser would let a string body reach validation as 400
  // instead of the 415 a client needs to see.
  app.removeAllContentTypeParsers();
  // One decoder for every request: building one looks its encoding up by name (bench:ingest profile).
  const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body: Buffer, done) => {
    let text: string;
    try {
      text = strictUtf8.decode(body);
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
    // The connection was cut off before the body was in (a body deadline, a client gone): the body
    // reader's error lands here, and nobody is left to answer.
    if (req.raw.socket?.destroyed && !req.raw.complete) return reply.status(408).send({ error: 'request_timeout', message: 'The request did not arrive in time.' });
    if (hasZodFastifySchemaValidationErrors(err)) {
      rejected('invalid');
      const hint = err.validation.map((v) => hintOf(v.params)).find((h) => h !== undefined);
      return reply.status(400).send({
        error: 'bad_request',
        message: 'The request does not match the API.',
        ...(hint ? { hint } : {}),
        details: err.validation.map((v) => ({ path: v.instancePath || '/', message: v.message })),
      });
    }
    if (err instanceof AnswerDeadlineError) {
      // LAPOR_HTTP_REQUEST_TIMEOUT_MS passed before an answer. A body still arriving is the client's
      // slowness (408, and the connection goes); otherwise ours, and a retry may well succeed.
      if (!req.raw.complete) {
        rejected('timeout');
        return reply.status(408).header('connection', 'close').send({ error: 'request_timeout', message: 'The request did not arrive in time.' });
      }
      req.log.warn({ route: req.routeOptions.url }, 'request not answered within its deadline');
      return reply.status(503).header('retry-after', '5').send({ error: 'unavailable', message: 'Try again in a few seconds.' });
    }
    if (err instanceof InboundRefusedError) {
      // The route's own schema is at least as strict as the inbound boundary, so this is a bug; the
      // client still gets an answer it can act on, and nothing was stored.
      rejected('invalid');
      req.log.warn({ problems: err.problems }, 'inbound message refused after the route accepted it');
      return reply.status(400).send({ error: 'bad_request', message: 'The request does not match the API.', details: [...err.problems] });
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
  await app.register(statsRoutes(deps), { prefix: '/api/v1' });
  await app.register(attachmentRoutes(deps), { prefix: '/api/v1' });
  await app.register(authRoutes(deps), { prefix: '/api/v1' });
  await app.register(adminRoutes(deps), { prefix: '/api/v1/admin' });
  await app.register(pageRoutes(deps));
  await app.register(webhookRoutes(deps));
  return app;
}

/** A hint a schema attached to its issue (`params: { hint }`, e.g. the phone number's). */
function hintOf(params: unknown): string | undefined {
  if (typeof params !== 'object' || params === null || !('params' in params)) return undefined;
  const inner = params.params;
  if (typeof inner !== 'object' || inner === null || !('hint' in inner)) return undefined;
  return typeof inner.hint === 'string' ? inner.hint : undefined;
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

/** No answer within LAPOR_HTTP_REQUEST_TIMEOUT_MS (src/http/limits.ts answerDeadline). */
class AnswerDeadlineError extends Error {
  constructor() {
    super('the request was not answered within its deadline');
    this.name = 'AnswerDeadlineError';
  }
}
