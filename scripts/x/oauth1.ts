import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * OAuth 1.0a request verification (RFC 5849, HMAC-SHA1), as X checks a user-context call. Pure
 * functions: the caller keeps the nonce memory, because whether a nonce was "seen" depends on its
 * own window and lifetime.
 */

export interface OAuth1Keys {
  consumerKey: string;
  consumerSecret: string;
  accessToken: string;
  accessSecret: string;
}

export interface OAuth1Request {
  method: string;
  /** The base string URI (RFC 5849 §3.4.1.2): scheme://host[:port]/path, no query, no fragment. */
  baseUri: string;
  /** Query parameters, already decoded. */
  query: URLSearchParams;
  /** Form body parameters, only for an application/x-www-form-urlencoded body (§3.4.1.3.1). */
  form?: URLSearchParams;
  /** The Authorization header as received. */
  authorization: string;
}

export type OAuth1Verdict =
  | { ok: true; nonce: string; timestamp: number }
  | { ok: false; reason: string };

/** RFC 3986 unreserved characters stay; everything else is %XX in upper case (§3.6). */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The `OAuth k="v", …` parameters, decoded; null when the header is not an OAuth one. */
export function parseOAuthHeader(header: string): Map<string, string> | null {
  const match = /^OAuth\s+(.*)$/i.exec(header.trim());
  if (!match) return null;
  const params = new Map<string, string>();
  for (const part of (match[1] ?? '').split(',')) {
    const pair = /^\s*([A-Za-z0-9_.~%-]+)\s*=\s*"([^"]*)"\s*$/.exec(part);
    if (!pair) return null;
    try {
      params.set(decodeURIComponent(pair[1] ?? ''), decodeURIComponent(pair[2] ?? ''));
    } catch {
      return null;
    }
  }
  return params;
}

/**
 * The signature base string (§3.4.1): METHOD&enc(base URI)&enc(normalized parameters), where the
 * parameters are the oauth_* ones (minus oauth_signature and realm), the query and a form body, each
 * name and value encoded, sorted by name then value, joined with '=' and '&'.
 */
export function signatureBaseString(method: string, baseUri: string, params: Array<[string, string]>): string {
  const normalized = params
    .map(([k, v]) => [percentEncode(k), percentEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return [method.toUpperCase(), percentEncode(baseUri), percentEncode(normalized)].join('&');
}

export function hmacSha1Signature(baseString: string, consumerSecret: string, tokenSecret: string): string {
  const key = `${percentEncode(consumerSecret)}&${percentEncode(tokenSecret)}`;
  return createHmac('sha1', key).update(baseString).digest('base64');
}

/**
 * Checks keys, signature method, version, timestamp skew and the signature itself. A nonce is only
 * returned, not judged (see the module comment). `maxSkewSec` is 300 like X's: a client whose clock
 * is more than five minutes off is refused.
 */
export function verifyOAuth1(request: OAuth1Request, keys: OAuth1Keys, nowMs: number, maxSkewSec = 300): OAuth1Verdict {
  const oauth = parseOAuthHeader(request.authorization);
  if (!oauth) return { ok: false, reason: 'malformed OAuth header' };
  const get = (name: string) => oauth.get(name);
  if (get('oauth_consumer_key') !== keys.consumerKey) return { ok: false, reason: 'unknown consumer key' };
  if (get('oauth_token') !== keys.accessToken) return { ok: false, reason: 'unknown token' };
  if (get('oauth_signature_method') !== 'HMAC-SHA1') return { ok: false, reason: 'signature method is not HMAC-SHA1' };
  const version = get('oauth_version');
  if (version !== undefined && version !== '1.0') return { ok: false, reason: 'oauth_version is not 1.0' };
  const nonce = get('oauth_nonce');
  if (!nonce) return { ok: false, reason: 'no nonce' };
  const timestampText = get('oauth_timestamp') ?? '';
  if (!/^[0-9]{1,12}$/.test(timestampText)) return { ok: false, reason: 'bad timestamp' };
  const timestamp = Number(timestampText);
  if (Math.abs(nowMs / 1000 - timestamp) > maxSkewSec) return { ok: false, reason: 'timestamp out of range' };
  const signature = get('oauth_signature');
  if (!signature) return { ok: false, reason: 'no signature' };

  const params: Array<[string, string]> = [];
  for (const [k, v] of oauth) if (k !== 'oauth_signature' && k !== 'realm') params.push([k, v]);
  for (const [k, v] of request.query) params.push([k, v]);
  for (const [k, v] of request.form ?? []) params.push([k, v]);
  const expected = hmacSha1Signature(signatureBaseString(request.method, request.baseUri, params), keys.consumerSecret, keys.accessSecret);
  const a = Buffer.from(expected);
  const b = Buffer.from(signature);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, reason: 'signature mismatch' };
  return { ok: true, nonce, timestamp };
}
