import { accessSync, constants, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { StartupError } from './services.ts';

/**
 * Checks a newcomer's start would otherwise fail on half-way through, with a JSON stack trace: run
 * before anything is started, so the one plain sentence that says what to do comes first.
 */

/** The HTTP port is free. */
export async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const problem = await new Promise<NodeJS.ErrnoException | undefined>((done) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => done(err));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => done(undefined)));
  });
  if (!problem) return;
  if (problem.code === 'EADDRINUSE') {
    throw new StartupError(`Port ${port} on ${host} is already in use (another program, or another npm start). Start on another port: PORT=${port + 1} npm start`);
  }
  if (problem.code === 'EACCES') {
    throw new StartupError(`Port ${port} needs privileges this user does not have. Use a port above 1023: PORT=3000 npm start`);
  }
  if (problem.code === 'EADDRNOTAVAIL') {
    throw new StartupError(`${host} is not an address of this machine. Set LAPOR_HOST to one that is (127.0.0.1, or 0.0.0.0 for all).`);
  }
  throw new StartupError(`Cannot listen on ${host}:${port} (${problem.code ?? problem.message}).`);
}

/** The data folder exists (or can be made) and we can write in it. */
export function checkDataDirWritable(dataDir: string): void {
  const dir = resolve(dataDir);
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new StartupError(`Cannot write to the data folder ${dir} (${code}). Make it writable by this user, or point LAPOR_DATA_DIR to a folder you own.`, { cause: err });
  }
}
