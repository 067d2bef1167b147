import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { Config } from '../../config/schema.ts';

/**
 * Bounded time and bounded connections for the HTTP server, so a client cannot hold a connection
 * and its memory for as long as it likes (a body trickled a byte at a time, or never ended):
 *
 * - headers: Node's `headersTimeout`, counted from the start of the request (an idle connection
 *   included): 408 and the connection closed;
 * - body: from the headers to the last byte of the body (`bodyDeadline` below): 408 and closed;
 * - the whole request: Node's `requestTimeout` for its arrival (408 and closed), and `answerDeadline`
 *   below for its answer (503 with Retry-After: something on our side was slow);
 * - connections: at most `maxConnections` in all (Node's `maxConnections`) and `maxConnectionsPerIp`
 *   from one address; more are closed as they open.
 *
 * Node checks its two deadlines on a timer (`connectionsCheckingInterval`, 30 s unless told), so the
 * interval is made a small fraction of the shortest deadline: a deadline then holds to within it.
 */

export type HttpLimits = Config['http'];

/** Why the server cut a connection or request off before any route answered it (a metric label). */
export type RefusedReason = 'timeout' | 'body_timeout' | 'headers_too_large' | 'malformed' | 'connections_per_address' | 'connections_total';

const STATUS_TEXT = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' } as const;

/** The API's error shape, written straight to the socket: no route, reply or serializer is involved. */
function rawError(status: keyof typeof STATUS_TEXT, error: string, message: string): string {
  const body = JSON.stringify({ error, message });
  return (
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

const TIMEOUT_RESPONSE = rawError(408, 'request_timeout', 'The request did not arrive in time; the connection is closed.');

export function createHttpLimits(limits: HttpLimits, onRefused: (reason: RefusedReason) => void) {
  /** The response in progress on each socket: nothing may be written over one already started. */
  const responses = new WeakMap<Socket, ServerResponse>();

  /** Ends a connection with an answer when no response has started on it, as Node itself does. */
  function cutOff(socket: Socket, response: string): void {
    if (socket.writable && !responses.get(socket)?.headersSent) socket.write(response);
    socket.destroy();
  }

  const checkingInterval = Math.max(25, Math.min(500, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs, limits.bodyTimeoutMs) / 10)));

  /** Fastify constructor options. */
  const fastifyOptions = {
    // Node's own whole-request deadline is the outermost bound, long enough for an upload; the
    // shorter deadline of every other request is kept per request by bodyDeadline below.
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.uploadTimeoutMs),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: { headersTimeout: limits.headersTimeoutMs, requestTimeout: Math.max(limits.requestTimeoutMs, limits.uploadTimeoutMs), connectionsCheckingInterval: checkingInterval } satisfies ServerOptions,
    /** Node's deadlines and parse errors end here (Fastify's default answers in another error shape). */
    clientErrorHandler(err: Error & { code?: string }, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        onRefused('timeout');
        cutOff(socket, TIMEOUT_RESPONSE);
      } else if (err.code === 'HPE_HEADER_OVERFLOW') {
        onRefused('headers_too_large');
        cutOff(socket, rawError(431, 'headers_too_large', 'The request headers are too large.'));
      } else {
        onRefused('malformed');
        cutOff(socket, rawError(400, 'bad_request', 'The request is not valid HTTP.'));
      }
    },
  };

  /**
   * The body's own deadline, as an onRequest hook: Node has none between the headers and the end of
   * the body. Requests injected in tests have no socket and no deadline.
   */
  function bodyDeadline(req: IncomingMessage, res: ServerResponse, upload = false): void {
    const socket = req.socket;
    if (!(socket instanceof Socket)) return;
    responses.set(socket, res);
    // An upload has LAPOR_HTTP_UPLOAD_TIMEOUT_MS; anything else the shorter of its body and whole-request deadlines.
    const ms = upload ? limits.uploadTimeoutMs : Math.min(limits.bodyTimeoutMs, limits.requestTimeoutMs);
    const timer = setTimeout(() => {
      if (req.complete || res.headersSent) return;
      onRefused('body_timeout');
      cutOff(socket, TIMEOUT_RESPONSE);
    }, ms);
    res.once('close', () => {
      clearTimeout(timer);
      if (responses.get(socket) === res) responses.delete(socket);
    });
  }

  /**
   * The answer's deadline, as an onRequest hook: `onLate` runs when no response has started this
   * long after the request (its upload deadline for an upload). Fastify's own handlerTimeout does the
   * same with an AbortController per request, whose abort on every request's close builds a
   * DOMException with a stack trace: 5 % of the API's CPU in the bench:ingest profile.
   */
  function answerDeadline(res: ServerResponse, upload: boolean, onLate: () => void): void {
    const timer = setTimeout(() => {
      if (!res.headersSent && !res.writableEnded) onLate();
    }, upload ? limits.uploadTimeoutMs : limits.requestTimeoutMs);
    res.once('close', () => clearTimeout(timer));
  }

  /** Caps the connections of a server that is about to listen. */
  function guard(server: Server): void {
    server.maxConnections = limits.maxConnections;
    server.on('drop', () => onRefused('connections_total'));
    if (limits.maxConnectionsPerIp === 0) return;
    const open = new Map<string, number>();
    server.on('connection', (socket: Socket) => {
      const address = socket.remoteAddress ?? 'unknown';
      const count = (open.get(address) ?? 0) + 1;
      if (count > limits.maxConnectionsPerIp) {
        onRefused('connections_per_address');
        socket.destroy();
        return;
      }
      open.set(address, count);
      socket.once('close', () => {
        const left = (open.get(address) ?? 1) - 1;
        if (left > 0) open.set(address, left);
        else open.delete(address);
      });
    });
  }

  return { fastifyOptions, bodyDeadline, answerDeadline, guard };
}
