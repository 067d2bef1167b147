import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { SmscSimulator } from './simulator.ts';

/**
 * A small HTTP control API beside a running simulator, so a second terminal can text the gateway
 * (`npm run sim:smsc -- send …`) and read its replies. Loopback only: it is a developer tool.
 *
 *   POST /mo     {"from","text","encoding"?,"split"?}  → {"statuses":[…]}
 *   GET  /replies?to=+62…&since=N                     → {"replies":[{"index","to","text","parts"}…]}
 *   POST /flood  {"count","rate"?,"mix"?}              → the flood's figures
 *   POST /fault  {"kind","count"?}                     → what was done; kinds: drop (the bind dies),
 *                unbind (the SMSC unbinds), throttle / nack (the next `count` submit_sm answered with
 *                ESME_RTHROTTLED / generic_nack), silence / hold (stop answering everything / submits),
 *                heal (answer again)
 */

const MoBody = z.strictObject({
  from: z.string().regex(/^\+?[0-9]{5,15}$/),
  to: z.string().regex(/^[0-9]{3,15}$/).optional(),
  text: z.string().max(2_000),
  encoding: z.enum(['gsm', 'ucs2', 'latin1', 'auto']).optional(),
  split: z.enum(['udh8', 'udh16', 'sar', 'payload', 'none']).optional(),
});

const FloodBody = z.strictObject({
  count: z.number().int().positive().max(1_000_000),
  rate: z.number().positive().optional(),
  mix: z.strictObject({ single: z.number().min(0), multipart: z.number().min(0), ucs2: z.number().min(0) }).optional(),
  timeoutMs: z.number().int().positive().max(600_000).default(120_000),
});

const FaultBody = z.strictObject({
  kind: z.enum(['drop', 'unbind', 'throttle', 'nack', 'silence', 'hold', 'heal']),
  count: z.number().int().positive().max(10_000).default(5),
});

/** Applies a fault so the gateway's handling of it can be watched live (logs, /readyz, /metrics). */
async function applyFault(sim: SmscSimulator, { kind, count }: z.infer<typeof FaultBody>): Promise<Record<string, unknown>> {
  switch (kind) {
    case 'drop':
      return { dropped: sim.dropBind() };
    case 'unbind':
      return { unbind: (await sim.sendPdu('unbind'))?.command_status ?? null };
    case 'throttle':
      sim.throttleNext(count);
      return { throttled: count };
    case 'nack':
      sim.nackNext(count);
      return { nacked: count };
    case 'silence':
      sim.silence(true);
      return { silenced: true };
    case 'hold':
      sim.holdResponses(true);
      return { holding: true };
    case 'heal':
      sim.silence(false);
      sim.holdResponses(false);
      sim.throttleNext(0);
      sim.nackNext(0);
      return { healed: true };
  }
}

/** A refused body's problems, one line each, for the developer at the other terminal. */
const issues = (error: z.ZodError): string[] => error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);

async function readJson(req: IncomingMessage): Promise<unknown> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error('body too large');
  }
  return body ? JSON.parse(body) : {};
}

export async function startControl(sim: SmscSimulator, port: number, host = '127.0.0.1'): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const send = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const url = new URL(req.url ?? '/', 'http://localhost');
    (async () => {
      if (req.method === 'POST' && url.pathname === '/mo') {
        const body = MoBody.safeParse(await readJson(req));
        if (!body.success) return send(400, { error: issues(body.error) });
        const { from, ...rest } = body.data;
        return send(200, await sim.sendMo({ from: from.startsWith('+') ? from : `+${from}`, ...rest }));
      }
      if (req.method === 'GET' && url.pathname === '/replies') {
        const to = url.searchParams.get('to');
        const since = Number(url.searchParams.get('since') ?? 0);
        const replies = sim.replies().filter((r) => r.complete && r.index >= since && (!to || r.to === to));
        return send(200, { replies });
      }
      if (req.method === 'POST' && url.pathname === '/flood') {
        const body = FloodBody.safeParse(await readJson(req));
        if (!body.success) return send(400, { error: issues(body.error) });
        const { count, rate, mix, timeoutMs } = body.data;
        return send(200, await sim.flood({ count, ...(rate ? { ratePerSec: rate } : {}), ...(mix ? { mix } : {}), timeoutMs }));
      }
      if (req.method === 'POST' && url.pathname === '/fault') {
        const body = FaultBody.safeParse(await readJson(req));
        if (!body.success) return send(400, { error: issues(body.error) });
        return send(200, await applyFault(sim, body.data));
      }
      return send(404, { error: 'POST /mo, GET /replies, POST /flood, POST /fault' });
    })().catch((err: unknown) => send(500, { error: (err as Error).message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.on('error', () => undefined);
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
