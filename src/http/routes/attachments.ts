import type { FastifyInstance } from 'fastify';
import { ATTACHMENT_TYPES, safeFilename, sniffAttachmentType } from '../../core/attachments.ts';
import { storeAttachment } from '../../store/attachments.ts';
import type { HttpDeps } from '../app.ts';

/**
 * POST /api/v1/attachments: a photo or a PDF as the raw body (its type in Content-Type, its name in
 * an optional `X-Filename`), before the report that will carry it. Answers a token that
 * POST /api/v1/reports names in `attachments`. The content must be what it says it is (first
 * bytes), and at most LAPOR_ATTACHMENTS_MAX_BYTES.
 */
export function attachmentRoutes(deps: HttpDeps) {
  const { config, db } = deps;
  return async (app: FastifyInstance) => {
    // Raw bytes for these types only, in this scope only: the rest of the API stays JSON.
    app.addContentTypeParser([...ATTACHMENT_TYPES], { parseAs: 'buffer', bodyLimit: config.attachments.maxBytes }, (_req, body, done) => done(null, body));

    app.post(
      '/attachments',
      {
        bodyLimit: config.attachments.maxBytes,
        // A photo over a slow mobile link takes longer than a JSON body: the upload deadlines apply.
        config: { upload: true },
        schema: {
          summary: 'Upload a photo or a PDF for a report',
          description: `Body: the file itself, Content-Type one of ${ATTACHMENT_TYPES.join(', ')}, at most ${config.attachments.maxBytes} bytes (else 413); optional header X-Filename. Answers {attachment: token}, to list in the report's "attachments" (at most ${config.attachments.maxCount}).`,
        },
      },
      async (req, reply) => {
        const declared = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        const data = req.body;
        if (!Buffer.isBuffer(data) || data.length === 0) return reply.status(400).send({ error: 'bad_request', message: 'The body must be the file itself.' });
        const actual = sniffAttachmentType(data);
        if (!actual || actual !== declared) {
          return reply.status(415).send({ error: 'unsupported_media_type', message: `Only ${ATTACHMENT_TYPES.join(', ')}, and the file must be what its Content-Type says.` });
        }
        const header = req.headers['x-filename'];
        const name = typeof header === 'string' ? decodeURIComponentSafe(header) : undefined;
        const stored = await storeAttachment(db, { filename: safeFilename(name, actual), contentType: actual, data });
        return reply.status(201).send({ attachment: stored.token, filename: stored.filename, contentType: stored.contentType, size: stored.size, sha256: stored.sha256 });
      },
    );
  };
}

function decodeURIComponentSafe(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
