import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AGENCY_KINDS, SlugSchema } from '../../../config/agencies.ts';
import { CHANNEL_IDS, textField } from '../../core/inbound.ts';
import type { StepInput } from '../../core/lifecycle.ts';
import { KINDS, STATUSES, WEIGHTS, type ReportWeight } from '../../core/report.ts';
import { mayOperate, type Actor } from '../../core/roles.ts';
import { listDeadLetters, replayDeadLetters } from '../../queue/dlq.ts';
import { upsertAgency, upsertUnit } from '../../store/agencies.ts';
import { CaseError, attachmentFor, caseDetail, listCases, readReporter, takeStep } from '../../store/cases.ts';
import { deadlinesAtRisk } from '../../store/clocks.ts';
import type { HttpDeps } from '../app.ts';
import { requireActor } from '../auth.ts';

/**
 * The operator API (issue #13): every route needs a Bearer token; a console is a thin client of it.
 * Refusals, in this order: 401 no valid token, 404 a report out of the caller's reach, 403 a role
 * that may never do this, 409 a step the report's status does not allow.
 */

const TrackingIdParam = z.object({ trackingId: z.string().regex(/^[1-9][0-9]{5,9}$/, 'a tracking ID of 10 digits') });
// Operators' words reach the reporter and PostgreSQL: sanitized and counted in characters like a citizen's.
const EMPTY = 'write something the reporter can read';
const Note = textField({ max: 2_000, trim: true, emptyMessage: EMPTY }).optional();
const Reason = textField({ max: 2_000, trim: true, emptyMessage: EMPTY });

const ErrorBody = z.object({ error: z.string(), message: z.string(), status: z.enum(STATUSES).optional() });
const StepResult = z.object({
  trackingId: z.string(),
  status: z.enum(STATUSES),
  colour: z.enum(['merah', 'kuning', 'hijau']),
  agency: z.string().nullable(),
  unit: z.string().nullable(),
});
const STEP_RESPONSES = { 200: StepResult, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

const STEPS = {
  // Privacy only tightens: a verifier may make a report anonim or rahasia, never lift what the citizen chose.
  verify: z.strictObject({ kind: z.enum(KINDS), weight: z.enum(WEIGHTS), anonim: z.literal(true).optional(), rahasia: z.literal(true).optional(), note: Note }),
  weight: z.strictObject({ weight: z.enum(WEIGHTS), note: Note }),
  // The super admin forwards to an agency; the agency admin hands it to one of its units.
  dispose: z.union([z.strictObject({ agency: SlugSchema, note: Note }), z.strictObject({ unit: SlugSchema, note: Note })]),
  return: z.strictObject({ reason: Reason }),
  'request-info': z.strictObject({ message: textField({ max: 1_000, trim: true, emptyMessage: EMPTY }) }),
  answer: z.strictObject({ text: textField({ max: 10_000, trim: true, emptyMessage: EMPTY }) }),
  close: z.strictObject({ reason: z.enum(['puas', 'debat_kusir', 'selesai']), note: Note }),
  reject: z.strictObject({ reason: Reason }),
  archive: z.strictObject({ reason: Reason }),
} as const;

function toStepInput(route: keyof typeof STEPS, body: Record<string, unknown>): StepInput {
  switch (route) {
    case 'dispose':
      return 'unit' in body ? { step: 'assign', unit: String(body.unit), note: body.note as string | undefined } : { step: 'dispose', agency: String(body.agency), note: body.note as string | undefined };
    case 'request-info':
      return { step: 'request_info', message: String(body.message) };
    case 'weight':
      return { step: 'reweigh', weight: body.weight as ReportWeight, note: body.note as string | undefined };
    default:
      return { step: route, ...body } as StepInput;
  }
}

const STATUS_OF: Record<CaseError['code'], number> = {
  not_found: 404,
  forbidden: 403,
  illegal_transition: 409,
  unknown_agency: 400,
  unknown_unit: 400,
  bad_cursor: 400,
};

function sendCaseError(reply: FastifyReply, err: unknown) {
  if (!(err instanceof CaseError)) throw err;
  return reply.status(STATUS_OF[err.code]).send({ error: err.code, message: err.message, ...(err.status ? { status: err.status } : {}) });
}

/** The operator's routes show queues, links and failures; never report content. */
function requireOperator(req: FastifyRequest, reply: FastifyReply) {
  if (!mayOperate(req.actor!)) return reply.status(403).send({ error: 'forbidden', message: 'Only operators and super admins see the queues.' });
  return undefined;
}

export function adminRoutes(deps: HttpDeps): FastifyPluginAsyncZod {
  const { db, keys, queues, clocks } = deps;
  const publish = (effects: Parameters<typeof queues.addEffects>[0]) => queues.addEffects(effects);
  const actorOf = (req: FastifyRequest): Actor => req.actor!;

  return async (app) => {
    app.addHook('preHandler', requireActor(deps));

    app.get(
      '/reports',
      {
        schema: {
          summary: 'Reports the caller may see, newest first',
          querystring: z.strictObject({
            status: z.enum(STATUSES).optional(),
            colour: z.enum(['merah', 'kuning', 'hijau']).optional(),
            agency: SlugSchema.optional(),
            unit: SlugSchema.optional(),
            channel: z.enum(CHANNEL_IDS).optional(),
            weight: z.enum(WEIGHTS).optional(),
            q: z.string().trim().min(2).max(200).optional(),
            cursor: z.string().max(200).optional(),
            limit: z.coerce.number().int().min(1).max(200).default(50),
          }),
        },
      },
      async (req, reply) => {
        const actor = actorOf(req);
        if (actor.role === 'operator') return reply.status(403).send({ error: 'forbidden', message: 'Operators see queues and links, not reports.' });
        try {
          return await listCases(db, actor, req.query);
        } catch (err) {
          return sendCaseError(reply, err);
        }
      },
    );

    app.get(
      '/deadlines',
      {
        schema: {
          summary: 'Deadlines breached, or falling due within the next hours, of the reports the caller may see',
          querystring: z.strictObject({ withinHours: z.coerce.number().int().min(0).max(24 * 30).default(24) }),
        },
      },
      async (req, reply) => {
        const actor = actorOf(req);
        if (actor.role === 'operator') return reply.status(403).send({ error: 'forbidden', message: 'Operators see queues and links, not reports.' });
        const reach = actor.role === 'super_admin' ? null : actor.role === 'agency_admin' ? { agency: actor.agencySlug } : { unit: actor.unitSlug };
        return { deadlines: await deadlinesAtRisk(db, new Date(), req.query.withinHours * 3_600_000, reach) };
      },
    );

    app.get('/reports/:trackingId', { schema: { summary: 'One report: text, thread, events, suggestions', params: TrackingIdParam } }, async (req, reply) => {
      const actor = actorOf(req);
      try {
        if (actor.role === 'operator') throw new CaseError('forbidden', 'Operators see queues and links, not reports.');
        return await caseDetail(db, keys, clocks, actor, req.params.trackingId);
      } catch (err) {
        return sendCaseError(reply, err);
      }
    });

    app.get(
      '/reports/:trackingId/attachments/:id',
      { schema: { summary: 'A file the reporter attached (always as a download)', params: TrackingIdParam.extend({ id: z.string().regex(/^\d{1,19}$/) }) } },
      async (req, reply) => {
        const actor = actorOf(req);
        try {
          if (actor.role === 'operator') throw new CaseError('forbidden', 'Operators see queues and links, not reports.');
          const file = await attachmentFor(db, actor, req.params.trackingId, req.params.id);
          // Never shown inline: a PDF or an image opens as a download, so nothing in it runs in our origin.
          return reply
            .header('content-type', file.contentType)
            .header('content-disposition', `attachment; filename="${file.filename.replace(/[^A-Za-z0-9._ -]/g, '_')}"`)
            .header('x-content-type-options', 'nosniff')
            .header('cache-control', 'private, no-store')
            .send(file.data);
        } catch (err) {
          return sendCaseError(reply, err);
        }
      },
    );

    app.get('/reports/:trackingId/reporter', { schema: { summary: "The reporter's identity (recorded as read)", params: TrackingIdParam } }, async (req, reply) => {
      const actor = actorOf(req);
      try {
        if (actor.role === 'operator') throw new CaseError('forbidden', 'Operators see queues and links, not reporters.');
        return await readReporter(db, keys, actor, req.params.trackingId);
      } catch (err) {
        return sendCaseError(reply, err);
      }
    });

    for (const [route, body] of Object.entries(STEPS) as [keyof typeof STEPS, (typeof STEPS)[keyof typeof STEPS]][]) {
      app.post(
        `/reports/:trackingId/${route}`,
        { schema: { summary: `Lifecycle step: ${route}`, params: TrackingIdParam, body, response: STEP_RESPONSES } },
        async (req, reply) => {
          const actor = actorOf(req);
          try {
            // An operator may never act on a report: 403, whether or not the report exists.
            if (actor.role === 'operator') throw new CaseError('forbidden', 'Operators do not act on reports.');
            return await takeStep({ db, keys, clocks, publish, onPublishFailed: (err) => req.log.warn({ err }, 'step committed, its notification left to the outbox sweep') }, actor, req.params.trackingId, toStepInput(route, req.body as Record<string, unknown>));
          } catch (err) {
            return sendCaseError(reply, err);
          }
        },
      );
    }

    // ---- agencies and units, managed by super admins ----
    app.put(
      '/agencies/:slug',
      { schema: { summary: 'Create or rename an agency', params: z.object({ slug: SlugSchema }), body: z.strictObject({ name: textField({ max: 200, trim: true, emptyMessage: 'a name' }), kind: z.enum(AGENCY_KINDS) }) } },
      async (req, reply) => {
        if (actorOf(req).role !== 'super_admin') return reply.status(403).send({ error: 'forbidden', message: 'Only super admins manage agencies.' });
        const outcome = await upsertAgency(db, { slug: req.params.slug, ...req.body });
        if (outcome === 'taken') return reply.status(409).send({ error: 'slug_taken', message: `${req.params.slug} is a unit's slug.` });
        return reply.status(outcome === 'created' ? 201 : 200).send({ slug: req.params.slug, ...req.body });
      },
    );
    app.put(
      '/agencies/:agency/units/:slug',
      {
        schema: {
          summary: 'Create or rename a unit of an agency',
          params: z.object({ agency: SlugSchema, slug: SlugSchema }),
          body: z.strictObject({ name: textField({ max: 200, trim: true, emptyMessage: 'a name' }) }),
        },
      },
      async (req, reply) => {
        if (actorOf(req).role !== 'super_admin') return reply.status(403).send({ error: 'forbidden', message: 'Only super admins manage units.' });
        const { rowCount } = await db.query('SELECT 1 FROM agencies WHERE slug = $1', [req.params.agency]);
        if (!rowCount) return reply.status(404).send({ error: 'not_found', message: `There is no agency ${req.params.agency}.` });
        const outcome = await upsertUnit(db, { slug: req.params.slug, agencySlug: req.params.agency, name: req.body.name });
        if (outcome === 'taken') return reply.status(409).send({ error: 'slug_taken', message: `${req.params.slug} is taken by another agency or unit.` });
        return reply.status(outcome === 'created' ? 201 : 200).send({ slug: req.params.slug, agency: req.params.agency, name: req.body.name });
      },
    );

    // ---- the engineer on duty: queues, links, dead letters (never a job's contents) ----
    app.get('/queues', { schema: { summary: 'Queue depths and failures' } }, async (req, reply) => {
      if (requireOperator(req, reply)) return reply;
      const queuesList = await Promise.all(
        queues.all().map(async (q) => ({ name: q.name, ...(await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized')) })),
      );
      return { queues: queuesList };
    });
    app.get('/channels', { schema: { summary: "Each upstream link's state" } }, async (req, reply) => {
      if (requireOperator(req, reply)) return reply;
      return { links: deps.metrics.links.probe().map(({ channel, status }) => ({ channel, ...status })) };
    });
    app.get('/dead-letters', { schema: { summary: 'Jobs that failed for good (ids and errors, never contents)' } }, async (req, reply) => {
      if (requireOperator(req, reply)) return reply;
      return { deadLetters: await listDeadLetters(queues) };
    });
    app.post(
      '/dead-letters/:queue/:jobId/replay',
      { schema: { summary: 'Put one dead letter back in its queue', params: z.object({ queue: z.string().min(1).max(100), jobId: z.string().min(1).max(300) }) } },
      async (req, reply) => {
        if (requireOperator(req, reply)) return reply;
        if (!queues.get(req.params.queue)) return reply.status(404).send({ error: 'not_found', message: `No queue ${req.params.queue}.` });
        const replayed = await replayDeadLetters(queues, req.params.queue, [req.params.jobId]);
        if (!replayed) return reply.status(404).send({ error: 'not_found', message: `No dead letter ${req.params.jobId} in ${req.params.queue}.` });
        return { replayed };
      },
    );
  };
}
