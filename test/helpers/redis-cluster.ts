import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, redisAnswers, sleep } from '../../src/local/services.ts';

/**
 * A Redis Cluster of real redis-server masters (Debian's package), on free loopback ports in a
 * temporary folder of its own, so test files using one run in parallel. Each master has the strict
 * profile of the local Redis (AOF, appendfsync always, noeviction) and no replica.
 */
export interface RedisCluster {
  /** One node's URL: the gateway discovers the others. */
  url: string;
  ports: number[];
  /** A plain connection to one master, for CONFIG SET and CLUSTER INFO. */
  node(port: number): Redis;
  stop(): Promise<void>;
}

const run = promisify(execFile);

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  // Every write is fsynced; on tmpfs that costs nothing.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'lapor-cluster-'));
  const children: ChildProcess[] = [];
  const clients = new Map<number, Redis>();
  const stop = async () => {
    for (const client of clients.values()) client.disconnect();
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      // The cluster bus defaults to port + 10000, which may be taken or past 65535: pick it too.
      const busPort = await freePort();
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      const child = spawn(
        'redis-server',
        [
          '--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--dir', nodeDir,
          '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000',
          '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction',
          '--save', '', '--daemonize', 'no', '--logfile', join(nodeDir, 'redis.log'),
        ],
        { stdio: 'ignore' },
      );
      child.on('error', () => undefined); // seen below as a process that never answers
      children.push(child);
      ports.push(port);
    }
    await Promise.all(
      ports.map((port, i) =>
        until(async () => {
          // A redis-server that refused its options is gone at once: say why instead of waiting.
          if (children[i]!.exitCode !== null || !children[i]!.pid) throw new Error(`redis-server on ${port} stopped: ${tail(join(dir, String(port), 'redis.log'))}`);
          return redisAnswers(`redis://127.0.0.1:${port}`);
        }, `redis-server on ${port}`),
      ),
    );
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);

    for (const port of ports) {
      const client = new Redis({ host: '127.0.0.1', port });
      client.on('error', () => undefined);
      clients.set(port, client);
    }
    const node = (port: number) => {
      const client = clients.get(port);
      if (!client) throw new Error(`no master on port ${port}`);
      return client;
    };
    // Every master must see every slot served before a client may rely on the cluster.
    const infos = () => Promise.all([...clients.values()].map((c) => c.cluster('INFO')));
    await until(async () => (await infos()).every((info) => /cluster_state:ok/.test(info)), 'cluster_state:ok');
    return { url: `redis://127.0.0.1:${ports[0]}`, ports, node, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function tail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ') : 'no log';
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
