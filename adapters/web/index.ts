import type { ChannelAdapter } from '../../src/core/channel.ts';
import type { Attachment, InboundMessage, Reporter } from '../../src/core/inbound.ts';

/** A report filed through the web form or the public API, already validated by the HTTP route. */
export interface WebReportInput {
  trackingId: string;
  text: string;
  reporter?: Reporter | undefined;
  anonim: boolean;
  rahasia: boolean;
  idempotencyKey?: string | undefined;
  lang?: 'id' | 'en' | undefined;
  /** Files uploaded before the report (POST /api/v1/attachments), claimed by it at intake. */
  attachments?: Attachment[] | undefined;
}

/**
 * The web channel: its inbound side is `POST /api/v1/reports`; its outbound side is the status
 * page, so `send` has nothing to deliver — the notify worker's thread record is what the status
 * view shows.
 */
export type WebAdapter = Omit<ChannelAdapter<WebReportInput>, 'normalize'> & {
  /** Never ignores: the HTTP route has validated the input already. */
  normalize(input: WebReportInput, context: { now: Date }): InboundMessage;
};

export function createWebAdapter(): WebAdapter {
  return {
    id: 'web',
    limits: { maxTextLength: 2_000 },
    capabilities: { keywords: false, publicReplies: false },
    normalize(input, { now }): InboundMessage {
      // The route has already resolved any Idempotency-Key to this tracking ID, so the ID is the
      // message's identity. (Keying the receipt on the Idempotency-Key would outlive the key's Redis
      // window and swallow a later report that reuses the key.)
      return {
        channel: 'web',
        account: 'api',
        externalId: `t${input.trackingId}`,
        dedupKey: `web_${input.trackingId}`,
        text: input.text,
        attachments: input.attachments ?? [],
        receivedAt: now.toISOString(),
        replyContext: {},
        ...(input.lang ? { lang: input.lang } : {}),
        form: { trackingId: input.trackingId, reporter: input.reporter, anonim: input.anonim, rahasia: input.rahasia },
      };
    },
    async send() {
      return { status: 'stored' };
    },
  };
}
