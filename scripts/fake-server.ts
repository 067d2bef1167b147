import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The HTTP server under every provider fake (scripts/x|telegram|whatsapp/fake-api.ts): listening on
 * loopback only, on the given port or a free one, and closed with its open connections.
 */
export async function listenOnLoopback(port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer();
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
  return { server, port: bound };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
