import { timingSafeEqual } from 'node:crypto';
import type { WebhookAnswer } from './channel.ts';

/**
 * What every webhook adapter does with what a provider posts, before reading it: compare a secret
 * or signature in constant time, and open the exact bytes as strict UTF-8 JSON (bad bytes are
 * refused, never turned into U+FFFD inside a citizen's words).
 */

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether `given` equals `expected`, in time that does not tell how much of it matched. */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The body as JSON, or undefined when it is not UTF-8 JSON. */
export function jsonBody(raw: Buffer): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(strictUtf8.decode(raw)) };
  } catch {
    return undefined;
  }
}

/** The answer to a body that is not UTF-8 JSON (after its signature checked out). */
export const NOT_JSON: WebhookAnswer = { status: 400, body: { error: 'bad_request', message: 'the body is not UTF-8 JSON' } };
