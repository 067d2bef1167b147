import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { EMPTY_TEXT_MESSAGE, ReporterSchema, textField, type Attachment } from '../../core/inbound.ts';
import { pendingAttachments, releaseAttachments, reserveAttachments, type StoredAttachment } from '../../store/attachments.ts';
import { STATUS_LABELS, STATUSES, colourOf } from '../../core/report.ts';
import { parseTrackingId } from '../../core/tracking-id.ts';
import { createWebAdapter, type WebReportInput } from '../../../adapters/web/index.ts';
import { EnqueueUnavailableError } from '../../queue/queues.ts';
import * as store from '../../store/reports.ts';
import { httpError, type HttpDeps } from '../app.ts';
import { PublicViewSchema, publicView } from './public-view.ts';

/** Longest report text the API takes, in characters (code points). */
export const MAX_REPORT_TEXT_CHARS = 10_000;

const CreateReportBody = z.strictObject({
  text: textField({
    max: MAX_REPORT_TEXT_CHARS,
    trim: true,
    emptyMessage: EMPTY_TEXT_MESSAGE,
    description:
      'What happened, where and when. Control characters (but tabs and line breaks), lone surrogates and non-characters are removed, ' +
      'white space around it is trimmed; what is left must show something and is counted in characters.',
  }),
  reporter: ReporterSchema.optional(),
  anonim: z.boolean().default(false),
  rahasia: z.boolean().default(false),
  /** Language of the status page and notifications; Bahasa Indonesia unless asked. */
  lang: z.enum(['id', 'en']).optional(),
  /** Files uploaded first with POST /api/v1/attachments, by their tokens. */
  attachments: z.array(z.string().regex(/^att_[A-Za-z0-9_-]{20,40}$/, 'a token from POST /api/v1/attachments')).max(10).optional(),
});

const CreatedReport = z.object({
  trackingId: z.string(),
  status: z.enum(STATUSES),
  statusLabel: z.string(),
  colour: z.enum(['merah', 'kuning', 'hijau']),
});

const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  hint: z.string().optional(),
  /** For a 400: which field was wrong, and how. */
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

const IdempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

export function reportRoutes(deps: HttpDeps): FastifyPluginAsyncZod {
  const { config, db, queues, codec, producer, metrics, keys } = deps;
  // The web adapter's normalizer is pure; the route is its inbound side.
  const web = createWebAdapter();
  const idemTtlSeconds = config.dedup.webHours * 3600;
  const sequence = new store.SequenceBlocks(db);

  return async (app) => {
    app.post(
      '/reports',
      {
        schema: {
          summary: 'File a report',
          description:
            'Returns the tracking ID at once. Send an Idempotency-Key to retry safely. ' +
            `Limits: a body of at most ${config.http.bodyLimitBytes} bytes (else 413); text and names are counted in characters (Unicode code points). ` +
            `The headers must arrive within ${config.http.headersTimeoutMs} ms, the body within ${config.http.bodyTimeoutMs} ms after them and the whole request within ` +
            `${config.http.requestTimeoutMs} ms, else 408 and the connection is closed; one address may hold ${config.http.maxConnectionsPerIp || 'any number of'} connections at once.`,
          headers: z.object({ 'idempotency-key': IdempotencyKey.optional() }),
          body: CreateReportBody,
          response: { 201: CreatedReport, 400: ErrorBody, 408: ErrorBody, 413: ErrorBody, 422: ErrorBody, 503: ErrorBody },
        },
      },
      async (req, reply) => {
        const body = req.body;
        const key = req.headers['idempotency-key'];
        const idemRedisKey = key
          ? `${config.queue.prefix}:idem:web:${createHash('sha256').update(key).digest('base64url')}`
          : undefined;
        // Only a request with an Idempotency-Key is compared with an earlier one.
        const fingerprint = key ? createHash('sha256').update(JSON.stringify(body)).digest('base64url').slice(0, 22) : '';

        let trackingId: string | undefined;
        let replayed = false;
        let attachments: Attachment[] = [];
        let reservedTokens: string[] = [];
        try {
          if (idemRedisKey) trackingId = await claimedTrackingId(idemRedisKey, fingerprint);
          replayed = Boolean(trackingId);
          // Checked before an ID is handed out: a refused request must leave no Idempotency-Key behind
          // that a retry would answer with 201. (A replay's files were claimed by its own first try.)
          if (!trackingId) {
            const candidate = codec.fromSequence(await sequence.take());
            if (idemRedisKey) {
              const won = await producer.set(idemRedisKey, `${candidate}:${fingerprint}`, 'EX', idemTtlSeconds, 'NX');
              // Lost a race with a concurrent retry of the same request: answer with its ID.
              trackingId = won ? candidate : await claimedTrackingId(idemRedisKey, fingerprint);
              replayed = !won;
            } else {
              trackingId = candidate;
            }
            // The files are reserved by the request that won the key: a refusal takes the key back,
            // so a fixed retry is a new report, not a replay of nothing.
            if (!replayed && body.attachments?.length) {
              try {
                attachments = await reservedAttachments(body.attachments);
                reservedTokens = attachments.flatMap((a) => (a.ref ? [a.ref] : []));
              } catch (err) {
                if (idemRedisKey) await producer.del(idemRedisKey).catch(() => undefined);
                throw err;
              }
            }
          }
          // A retry (or the loser of a race with it): its files, still waiting for the report, go with it again.
          if (replayed && body.attachments?.length) attachments = await retriedAttachments(body.attachments);
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode) throw err;
          throw new EnqueueUnavailableError(err);
        }
        if (!trackingId) throw new EnqueueUnavailableError(new Error('idempotency key vanished'));

        const input: WebReportInput = { trackingId, text: body.text, reporter: body.reporter, anonim: body.anonim, rahasia: body.rahasia, idempotencyKey: key, lang: body.lang, attachments };
        // The dedup key is a tracking ID allocated just now (or the one an Idempotency-Key resolved to):
        // the job id alone deduplicates it, so no dedup window is needed.
        let result;
        try {
          result = await queues.enqueueInbound(web.normalize(input, { now: new Date() }), 0);
        } catch (err) {
          // Not acknowledged: the files are free again for the citizen's retry.
          if (reservedTokens.length) await releaseAttachments(db, reservedTokens).catch(() => undefined);
          throw err;
        }
        metrics.inboundAccepted.inc({ channel: 'web', result: replayed ? 'duplicate' : result.status });
        if (replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(201).send({
          trackingId,
          status: 'belum_terverifikasi',
          statusLabel: STATUS_LABELS.belum_terverifikasi[body.lang ?? config.lang],
          colour: colourOf('belum_terverifikasi'),
        });
      },
    );

    /** Reserves the uploads a new report names: every token known and free, else 400 and none reserved. */
    async function reservedAttachments(tokens: readonly string[]): Promise<Attachment[]> {
      const unique = [...new Set(tokens)];
      if (unique.length > config.attachments.maxCount) {
        throw httpError(400, 'too_many_attachments', `A report takes at most ${config.attachments.maxCount} files.`);
      }
      const reserved = await reserveAttachments(db, unique);
      if (!reserved) {
        throw httpError(400, 'unknown_attachment', 'An attachment token is unknown or already used by a report: upload the file again.');
      }
      return reserved.map(toAttachment);
    }

    /** A retried request's uploads, still waiting for its report: its job carries them again. */
    async function retriedAttachments(tokens: readonly string[]): Promise<Attachment[]> {
      return (await pendingAttachments(db, [...new Set(tokens)])).map(toAttachment);
    }

    /** The tracking ID an earlier request with this key got; 422 when the body differs. */
    async function claimedTrackingId(redisKey: string, fingerprint: string): Promise<string | undefined> {
      const stored = await producer.get(redisKey);
      if (!stored) return undefined;
      const [id, storedFingerprint] = stored.split(':');
      if (storedFingerprint !== fingerprint) {
        throw httpError(422, 'idempotency_key_reused', 'This Idempotency-Key was used for a different report.');
      }
      return id;
    }

    app.get(
      '/reports/:trackingId',
      {
        schema: {
          summary: 'Status of a report',
          description: 'Public view; redacted for anonim and rahasia reports.',
          params: z.object({ trackingId: z.string().max(40) }),
          querystring: z.object({ lang: z.enum(['id', 'en']).optional() }),
          response: { 200: PublicViewSchema, 400: ErrorBody, 404: ErrorBody },
        },
      },
      async (req, reply) => {
        const lang = req.query.lang ?? config.lang;
        const parsed = parseTrackingId(req.params.trackingId);
        if (!parsed.ok) {
          const hint =
            parsed.reason === 'check_digit'
              ? 'The last digit does not match: the number was probably mistyped. Check all 10 digits.'
              : 'A tracking ID has 10 digits, for example 5723181068.';
          return reply.status(400).send({ error: parsed.reason === 'check_digit' ? 'mistyped_tracking_id' : 'invalid_tracking_id', message: 'Not a valid tracking ID.', hint });
        }
        const report = await store.findReport(db, parsed.id);
        if (report) return reply.send(await publicView(db, keys, report, lang));
        // Filed a moment ago and still in the queue: the citizen already holds this ID.
        const pending = await queues.inbound.getJob(`web_${parsed.id}`).catch(() => undefined);
        if (pending && !(await pending.isFailed())) {
          return reply.send({
            trackingId: parsed.id,
            status: 'belum_terverifikasi',
            statusLabel: STATUS_LABELS.belum_terverifikasi[lang],
            colour: colourOf('belum_terverifikasi'),
            pending: true,
            timeline: [],
            notifications: [],
          });
        }
        return reply.status(404).send({ error: 'unknown_tracking_id', message: 'No report has this tracking ID.' });
      },
    );
  };
}

function toAttachment(a: StoredAttachment): Attachment {
  return { filename: a.filename, contentType: a.contentType, size: a.size, sha256: a.sha256, ref: a.token };
}
