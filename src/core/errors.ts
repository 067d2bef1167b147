/**
 * The closed vocabulary of send failures (after Courier's). Adapters reject `send()` only with a
 * SendError; the notify worker alone decides what each code means for retries.
 */
export const SEND_ERROR_CODES = {
  /** The provider asks us to slow down; retry after `retryAfterMs` if given. */
  throttled: { retryable: true },
  /** Network error, timeout, 5xx, no bind: try again later. */
  unavailable: { retryable: true },
  /** The provider refused this message for good (bad content, too long). */
  rejected: { retryable: false },
  /** The recipient does not exist or cannot be reached on this channel. */
  invalid_recipient: { retryable: false },
  /** The citizen blocked us or opted out. */
  blocked: { retryable: false },
} as const satisfies Record<string, { retryable: boolean }>;

export type SendErrorCode = keyof typeof SEND_ERROR_CODES;

export class SendError extends Error {
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(
    readonly code: SendErrorCode,
    message: string,
    options: { retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'SendError';
    this.retryable = SEND_ERROR_CODES[code].retryable;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The inbound boundary (InboundMessageSchema, parsed before the job is added) refused a message:
 * the same message would be refused again, so an adapter answers its provider with a permanent
 * error rather than "try again". `problems` name fields and rules, never the values (personal data).
 */
export class InboundRefusedError extends Error {
  readonly code = 'LAPOR_INBOUND_REFUSED';
  constructor(readonly problems: readonly { path: string; message: string }[]) {
    super(`inbound message refused: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    this.name = 'InboundRefusedError';
  }
}
