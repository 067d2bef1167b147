import http from 'node:http';
import https from 'node:https';
import { ApiRequestError, ApiResponseError, TwitterApi, type ITwitterApiClientPlugin } from 'twitter-api-v2';
import type { XSettings } from './config.ts';

/**
 * The only file that knows twitter-api-v2. It signs requests (OAuth 1.0a for the account, the bearer
 * token for app-only reads), and this file turns every answer into what the adapter needs: the body,
 * the rate-limit headers, and one error type with the HTTP status.
 *
 * twitter-api-v2 1.29 has no base-URL setting and always calls `https.request` for api.x.com
 * (ecosystem anchor, verified). A plugin rewrites each request's URL to LAPOR_X_API_BASE after the
 * library has signed it for api.x.com, so an OAuth signature stays what X itself would check; for
 * a plain-http base (the local fake) an http.Agent makes `https.request` speak plain HTTP.
 */

export interface RateLimit {
  limit: number;
  remaining: number;
  /** When the window resets, epoch milliseconds. */
  resetAt: number;
}

export interface XResponse {
  body: unknown;
  rateLimit: RateLimit | undefined;
}

/** Any failure of a call: `status` 0 when no HTTP answer came (network, timeout). */
export class XApiError extends Error {
  readonly code = 'LAPOR_X_API';
  constructor(
    readonly status: number,
    message: string,
    readonly rateLimit: RateLimit | undefined,
    /** X's problem `detail` or `title`, for the log (never personal data: X's own words). */
    readonly detail: string | undefined,
  ) {
    super(message);
    this.name = 'XApiError';
  }
}

export interface XClient {
  /** GET /2/users/me (user context). */
  me(): Promise<XResponse>;
  /** GET /2/users/:id/mentions (app-only bearer). */
  mentions(userId: string, query: Record<string, string>): Promise<XResponse>;
  /** POST /2/tweets (user context). */
  post(body: { text: string; reply?: { in_reply_to_tweet_id: string } }): Promise<XResponse>;
  /** POST /2/dm_conversations/with/:participant_id/messages (user context). */
  directMessage(userId: string, text: string): Promise<XResponse>;
}

const REQUEST_TIMEOUT_MS = 15_000;

export function createXClient(settings: XSettings): XClient {
  const base = new URL(settings.apiBase);
  const plain = base.protocol === 'http:';
  const agent = plain ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
  const redirect: ITwitterApiClientPlugin = {
    onBeforeRequest({ computedParams }) {
      const url = computedParams.url;
      url.protocol = base.protocol;
      url.hostname = base.hostname;
      url.port = base.port;
      // A base with a path (a proxy under /x) keeps it in front of /2/….
      if (base.pathname !== '/') url.pathname = `${base.pathname.replace(/\/$/, '')}${url.pathname}`;
    },
  };
  const clientSettings = { httpAgent: agent, plugins: [redirect], compression: false as const };
  const reader = new TwitterApi(settings.bearerToken || 'unset', clientSettings);
  // twitter-api-v2 throws on an empty app key or secret: without them the channel only reads.
  const writer =
    settings.appKey && settings.appSecret
      ? new TwitterApi({ appKey: settings.appKey, appSecret: settings.appSecret, accessToken: settings.accessToken, accessSecret: settings.accessSecret }, clientSettings)
      : undefined;
  const userContext = (): TwitterApi => {
    if (!writer) throw new XApiError(401, 'x: no user-context credentials (LAPOR_X_APP_KEY, _APP_SECRET, _ACCESS_TOKEN, _ACCESS_SECRET)', undefined, undefined);
    return writer;
  };

  async function call(request: () => Promise<{ data: unknown; rateLimit?: { limit: number; remaining: number; reset: number } }>): Promise<XResponse> {
    try {
      const response = await request();
      return { body: response.data, rateLimit: rateLimitOf(response.rateLimit) };
    } catch (err) {
      throw toXApiError(err);
    }
  }

  const options = { fullResponse: true as const, timeout: REQUEST_TIMEOUT_MS };
  return {
    me: () => call(() => userContext().v2.get('users/me', undefined, options)),
    mentions: (userId, query) => call(() => reader.v2.get('users/:id/mentions', query, { ...options, params: { id: userId } })),
    post: (body) => call(() => userContext().v2.post('tweets', body, options)),
    directMessage: (userId, text) =>
      call(() => userContext().v2.post('dm_conversations/with/:participant_id/messages', { text }, { ...options, params: { participant_id: userId } })),
  };
}

function rateLimitOf(raw: { limit: number; remaining: number; reset: number } | undefined): RateLimit | undefined {
  if (!raw || !Number.isFinite(raw.reset)) return undefined;
  return { limit: raw.limit, remaining: raw.remaining, resetAt: raw.reset * 1_000 };
}

function toXApiError(err: unknown): XApiError {
  if (err instanceof XApiError) return err;
  if (err instanceof ApiResponseError) {
    const data = err.data as { detail?: unknown; title?: unknown } | undefined;
    const detail = typeof data?.detail === 'string' ? data.detail : typeof data?.title === 'string' ? data.title : undefined;
    return new XApiError(err.code, `X answered ${err.code}${detail ? `: ${detail}` : ''}`, rateLimitOf(err.rateLimit), detail);
  }
  if (err instanceof ApiRequestError) return new XApiError(0, `X did not answer: ${err.requestError.message}`, undefined, undefined);
  return new XApiError(0, `X call failed: ${(err as Error).message}`, undefined, undefined);
}
