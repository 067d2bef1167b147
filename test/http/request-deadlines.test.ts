import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

/**
 * Bounded time for every request and a bounded number of connections, tested over raw sockets
 * against a listening server: a client that trickles its headers or its body, or never ends it, gets
 * a 408 (or a closed connection) within the configured deadline, and cannot hold more connections
 * open than the caps allow. Deadlines are short here so the file stays fast.
 */

const HEADERS_MS = 1_000;
const BODY_MS = 1_000;
const REQUEST_MS = 3_000;
const UPLOAD_MS = 6_000;
/** Node checks its deadlines on a timer (a tenth of the shortest here), and CI machines are busy. */
const SLACK_MS = 1_000;
const PER_IP = 4;
const TOTAL = 7;

let env: TestEnv;
let port: number;
beforeAll(async () => {
  env = await createTestEnv({
    env: {
      LAPOR_HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
      LAPOR_HTTP_BODY_TIMEOUT_MS: String(BODY_MS),
      LAPOR_HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
      LAPOR_HTTP_UPLOAD_TIMEOUT_MS: String(UPLOAD_MS),
      LAPOR_HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000',
      LAPOR_HTTP_MAX_CONNECTIONS_PER_IP: String(PER_IP),
      LAPOR_HTTP_MAX_CONNECTIONS: String(TOTAL),
    },
  });
  await env.app.listen({ host: '127.0.0.1', port: 0 });
  port = (env.app.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await env?.close();
});

interface Client {
  socket: Socket;
  /** Resolves when the server closed the connection: after how long, and what it answered. */
  closed: Promise<{ afterMs: number; response: string }>;
  /** Writes `chunk` every `everyMs` until the connection closes. */
  trickle(chunk: string, everyMs: number): void;
}

/** A raw TCP client; `from` is a loopback address of its own, so per-address counts can be told apart. */
function client(options: { from?: string; targetPort?: number } = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    let response = '';
    let timer: NodeJS.Timeout | undefined;
    const socket = connect({ host: '127.0.0.1', port: options.targetPort ?? port, ...(options.from ? { localAddress: options.from } : {}) });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (response += d));
    // A reset after the answer is fine: the server closes a connection it gave up on.
    socket.on('error', () => undefined);
    const closed = new Promise<{ afterMs: number; response: string }>((done) =>
      socket.on('close', () => {
        clearInterval(timer);
        done({ afterMs: Date.now() - startedAt, response });
      }),
    );
    // A test that fails must not leave its client trickling.
    const guard = setTimeout(() => socket.destroy(), 15_000);
    socket.on('close', () => clearTimeout(guard));
    socket.once('connect', () =>
      resolve({
        socket,
        closed,
        trickle(chunk, everyMs) {
          timer = setInterval(() => {
            if (socket.writable) socket.write(chunk);
          }, everyMs);
        },
      }),
    );
    socket.once('error', reject);
  });
}

const POST_HEAD = 'POST /api/v1/reports HTTP/1.1\r\nHost: lapor.test\r\nContent-Type: application/json\r\n';

function expect408(response: string) {
  expect(response).toMatch(/^HTTP\/1\.1 408 /);
  expect(response.toLowerCase()).toContain('connection: close');
  const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));
  expect(body).toMatchObject({ error: 'request_timeout', message: expect.any(String) });
}

async function refusedCount(reason: string): Promise<number> {
  const text = (await env.app.inject({ method: 'GET', url: '/metrics' })).body;
  const match = new RegExp(`^lapor_http_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/** The server holds no connection any more (every test's clients were cut off or closed). */
async function serverIdle() {
  await eventually(
    () => new Promise<true | undefined>((resolve) => env.app.server.getConnections((_err, n) => resolve(n === 0 ? true : undefined))),
    5_000,
    'no open connection on the server',
  );
}

describe('deadlines', () => {
  it('a connection that sends nothing gets 408 and is closed at the headers deadline', async () => {
    const c = await client();
    const { afterMs, response } = await c.closed;
    expect408(response);
    expect(afterMs).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(afterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it('headers trickled a byte at a time get 408 at the headers deadline', async () => {
    const c = await client();
    c.socket.write(POST_HEAD);
    c.trickle('X', 50);
    const { afterMs, response } = await c.closed;
    expect408(response);
    expect(afterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it('a chunked body trickled forever gets 408 at the body deadline, and nothing is filed', async () => {
    const before = await refusedCount('body_timeout');
    const c = await client();
    c.socket.write(`${POST_HEAD}Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n`);
    c.trickle('1\r\n \r\n', 50);
    const { afterMs, response } = await c.closed;
    expect408(response);
    expect(afterMs).toBeGreaterThanOrEqual(BODY_MS - 50);
    // Cut by the body's own deadline, well before the whole request's.
    expect(afterMs).toBeLessThan(Math.min(REQUEST_MS, BODY_MS + SLACK_MS));
    expect(await refusedCount('body_timeout')).toBe(before + 1);
    expect(Object.values(await env.runtime.queues.inbound.getJobCounts()).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('a Content-Length body that stops halfway gets 408 at the body deadline', async () => {
    const c = await client();
    c.socket.write(`${POST_HEAD}Content-Length: 500\r\n\r\n{"text":"Jalan rusak`);
    const { afterMs, response } = await c.closed;
    expect408(response);
    expect(afterMs).toBeLessThan(BODY_MS + SLACK_MS);
  });

  it('many slow clients at once are all cut off in time', async () => {
    const clients = await Promise.all(Array.from({ length: PER_IP }, () => client()));
    for (const c of clients) {
      c.socket.write(`${POST_HEAD}Transfer-Encoding: chunked\r\n\r\n`);
      c.trickle('1\r\n \r\n', 100);
    }
    const results = await Promise.all(clients.map((c) => c.closed));
    for (const r of results) {
      expect408(r.response);
      expect(r.afterMs).toBeLessThan(BODY_MS + SLACK_MS);
    }
    await serverIdle();
  });

  it('a request that arrives in time is answered as usual, and an idle keep-alive connection is closed', async () => {
    const c = await client();
    const body = JSON.stringify({ text: 'Lampu jalan mati di Jl. Melati sejak seminggu, gelap sekali.' });
    c.socket.write(`${POST_HEAD}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const { afterMs, response } = await c.closed;
    expect(response).toMatch(/^HTTP\/1\.1 201 /);
    // Closed by LAPOR_HTTP_KEEP_ALIVE_TIMEOUT_MS (1 s here; Node waits a second more than it tells
    // the client, HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER), not held for Fastify's default 72 s.
    expect(afterMs).toBeGreaterThanOrEqual(1_000);
    expect(afterMs).toBeLessThan(1_000 + 1_000 + SLACK_MS);
  });
});

describe('connection caps', () => {
  it(`one address holds at most ${PER_IP} connections; the next is closed at once, and a slot frees when one closes`, async () => {
    await serverIdle();
    const before = await refusedCount('connections_per_address');
    const held = await Promise.all(Array.from({ length: PER_IP }, () => client()));
    const extra = await client();
    const { afterMs, response } = await extra.closed;
    expect(response).toBe('');
    expect(afterMs).toBeLessThan(500);
    expect(await refusedCount('connections_per_address')).toBe(before + 1);
    // The held ones still work.
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(async () => (held[0]!.socket.bytesRead > 0 ? true : undefined), 2_000, 'an answer on a held connection');
    // One closes: another may open, and is served.
    held[1]!.socket.destroy();
    await held[1]!.closed;
    await new Promise((r) => setTimeout(r, 50));
    const next = await client();
    next.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect((await next.closed).response).toMatch(/^HTTP\/1\.1 200 /);
    for (const c of held) c.socket.destroy();
    await serverIdle();
  });

  it(`the server holds at most ${TOTAL} connections from all addresses together`, async () => {
    await serverIdle();
    const before = await refusedCount('connections_total');
    const addresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    const held: Client[] = [];
    for (let i = 0; i < TOTAL; i++) held.push(await client({ from: addresses[i % addresses.length]! }));
    const extra = await client({ from: '127.0.0.5' });
    const { afterMs, response } = await extra.closed;
    expect(response).toBe('');
    expect(afterMs).toBeLessThan(500);
    await eventually(async () => ((await refusedCount('connections_total')) === before + 1 ? true : undefined), 2_000, 'the drop counted');
    for (const c of held) c.socket.destroy();
    await serverIdle();
  });

  it('slow clients cannot hold connections past the deadline, so the caps cannot be held forever', async () => {
    await serverIdle();
    const held = await Promise.all(Array.from({ length: PER_IP }, () => client()));
    await Promise.all(held.map((c) => c.closed));
    await serverIdle();
    const fresh = await client();
    fresh.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect((await fresh.closed).response).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe('the whole request has its own deadline', () => {
  let slow: TestEnv;
  let slowPort: number;
  beforeAll(async () => {
    // A generous body deadline, so only the whole request's can cut this one off.
    slow = await createTestEnv({
      workers: false,
      env: { LAPOR_HTTP_HEADERS_TIMEOUT_MS: '500', LAPOR_HTTP_BODY_TIMEOUT_MS: '10000', LAPOR_HTTP_REQUEST_TIMEOUT_MS: '1500' },
    });
    await slow.app.listen({ host: '127.0.0.1', port: 0 });
    slowPort = (slow.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await slow?.close();
  });

  it('a body trickled past LAPOR_HTTP_REQUEST_TIMEOUT_MS gets 408 and is closed', async () => {
    const c = await client({ targetPort: slowPort });
    c.socket.write(`${POST_HEAD}Transfer-Encoding: chunked\r\n\r\n`);
    c.trickle('1\r\n \r\n', 50);
    const { afterMs, response } = await c.closed;
    expect408(response);
    expect(afterMs).toBeGreaterThanOrEqual(1_450);
    expect(afterMs).toBeLessThan(1_500 + SLACK_MS);
  });

  it('gives an upload its own, longer deadline: a photo arriving slowly is taken, still cut off at the upload deadline', async () => {
    const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082', 'hex');
    const photo = Buffer.concat([PNG, Buffer.alloc(4_000)]);
    const head = `POST /api/v1/attachments HTTP/1.1\r\nHost: lapor.test\r\nContent-Type: image/png\r\nContent-Length: ${photo.length}\r\nConnection: close\r\n\r\n`;
    // A slow phone: the body takes ~3.5 s, longer than the body and whole-request deadlines (1 s, 3 s).
    const slow = await client();
    slow.socket.write(head);
    for (let i = 0; i < 7; i++) {
      slow.socket.write(photo.subarray(i * Math.ceil(photo.length / 7), (i + 1) * Math.ceil(photo.length / 7)));
      await new Promise((r) => setTimeout(r, 500));
    }
    const taken = await slow.closed;
    expect(taken.response, taken.response).toMatch(/^HTTP\/1\.1 201 /);
    expect(taken.response).toContain('"attachment":"att_');
    // One that never finishes is still cut off, at the upload deadline.
    const stuck = await client();
    stuck.socket.write(head + 'x');
    const cut = await stuck.closed;
    expect408(cut.response);
    expect(cut.afterMs).toBeGreaterThanOrEqual(UPLOAD_MS - 100);
    expect(cut.afterMs).toBeLessThan(UPLOAD_MS + SLACK_MS + 1_000);
  });

  it('refuses a headers deadline longer than the whole request at start', async () => {
    await expect(createTestEnv({ workers: false, env: { LAPOR_HTTP_HEADERS_TIMEOUT_MS: '5000', LAPOR_HTTP_REQUEST_TIMEOUT_MS: '1000' } })).rejects.toThrow(
      /LAPOR_HTTP_HEADERS_TIMEOUT_MS: must not be longer than LAPOR_HTTP_REQUEST_TIMEOUT_MS/,
    );
  });
});

describe('the answer has a deadline too', () => {
  it('a request our side is too slow to answer gets 503 with Retry-After at LAPOR_HTTP_REQUEST_TIMEOUT_MS, and the server stays up', async () => {
    const { buildApp } = await import('../../src/http/app.ts');
    const app = await buildApp(env.runtime);
    // A handler stuck behind something slow of ours (a database that stopped answering).
    app.get('/api/v1/test-slow', async () => new Promise((resolve) => setTimeout(() => resolve({ late: true }), REQUEST_MS + 2_000)));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      const startedAt = Date.now();
      const res = await fetch(`${base}/api/v1/test-slow`);
      const afterMs = Date.now() - startedAt;
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await res.json()).toMatchObject({ error: 'unavailable' });
      expect(afterMs).toBeGreaterThanOrEqual(REQUEST_MS - 50);
      expect(afterMs).toBeLessThan(REQUEST_MS + SLACK_MS);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      await app.close();
    }
  }, 15_000);
});
