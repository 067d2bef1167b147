import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { startLocalRedis, type LocalService } from '../../src/local/services.ts';
import { UnsafeRedisError, checkRedisDurability } from '../../src/queue/redis.ts';

/** A redis-server of this file's own, whose settings the tests change at will. */
let redis: LocalService;
let client: Redis;
let dir: string;
const log = createLogger({ level: 'silent' });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lapor-redis-check-'));
  redis = await startLocalRedis({ dir, fsync: 'always', log });
  client = new Redis(redis.url);
});
afterAll(async () => {
  // Turning AOF on starts a rewrite, during which Redis refuses SIGTERM ("Writing initial AOF, can't exit").
  for (let i = 0; i < 100 && /aof_rewrite_in_progress:1/.test(await client.info('persistence')); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  client?.disconnect();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function set(settings: Record<string, string>) {
  for (const [key, value] of Object.entries(settings)) await client.config('SET', key, value);
}

describe('Redis durability check at start-up', () => {
  it('accepts AOF with appendfsync always and noeviction', async () => {
    await set({ appendonly: 'yes', appendfsync: 'always', 'maxmemory-policy': 'noeviction' });
    expect(await checkRedisDurability(client, { fsync: 'always', allowUnsafe: false }, log)).toEqual([]);
  });

  it('refuses every unsafe setting at once, with the fix in the message', async () => {
    await set({ appendonly: 'no', appendfsync: 'everysec', 'maxmemory-policy': 'allkeys-lru' });
    const error = await checkRedisDurability(client, { fsync: 'always', allowUnsafe: false }, log).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UnsafeRedisError);
    const { problems, message } = error as UnsafeRedisError;
    expect(problems).toHaveLength(3);
    expect(message).toContain('CONFIG SET maxmemory-policy noeviction');
    expect(message).toContain('CONFIG SET appendonly yes');
    expect(message).toContain('appendfsync always');
    expect(message).toContain('LAPOR_REDIS_ALLOW_UNSAFE');
  });

  it('accepts everysec only when configured to, and never appendfsync no', async () => {
    await set({ appendonly: 'yes', appendfsync: 'everysec', 'maxmemory-policy': 'noeviction' });
    await expect(checkRedisDurability(client, { fsync: 'always', allowUnsafe: false }, log)).rejects.toThrow(UnsafeRedisError);
    expect(await checkRedisDurability(client, { fsync: 'everysec', allowUnsafe: false }, log)).toEqual([]);
    await set({ appendfsync: 'no' });
    await expect(checkRedisDurability(client, { fsync: 'everysec', allowUnsafe: false }, log)).rejects.toThrow(/appendfsync is no/);
  });

  it('runs anyway, reporting the problems, when explicitly overridden', async () => {
    await set({ appendonly: 'no', 'maxmemory-policy': 'volatile-lru' });
    const problems = await checkRedisDurability(client, { fsync: 'always', allowUnsafe: true }, log);
    expect(problems.join('\n')).toMatch(/volatile-lru/);
  });

  it('refuses when it cannot read the configuration (CONFIG disabled), unless overridden', async () => {
    await set({ appendonly: 'yes', appendfsync: 'always', 'maxmemory-policy': 'noeviction' });
    // A managed Redis often disables CONFIG: an ACL user without it stands in for that here.
    await client.call('ACL', 'SETUSER', 'noconfig', 'on', '>pw', '~*', '&*', '+@all', '-config');
    const limited = new Redis(redis.url, { username: 'noconfig', password: 'pw' });
    try {
      await expect(checkRedisDurability(limited, { fsync: 'always', allowUnsafe: false }, log)).rejects.toThrow(/cannot read the configuration/);
      expect(await checkRedisDurability(limited, { fsync: 'always', allowUnsafe: true }, log)).toHaveLength(1);
    } finally {
      limited.disconnect();
    }
  });
});
