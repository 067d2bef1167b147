import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configFields, envName, loadConfig } from '../../config/load.ts';
import { withConfigTable } from '../../scripts/config-table.ts';

describe('configuration', () => {
  it('needs nothing for a local run', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 3000, env: 'development', redis: { fsync: 'always', allowUnsafe: false } });
    expect(config.queue.attempts).toBeGreaterThan(1);
    expect(config.databaseUrl).toBeUndefined();
  });

  it('reads every leaf from its LAPOR_ variable', () => {
    const config = loadConfig({ LAPOR_QUEUE_LOCK_MS: '1234', LAPOR_REDIS_ALLOW_UNSAFE: 'true', LAPOR_PORT: '8080' });
    expect(config.queue.lockMs).toBe(1234);
    expect(config.redis.allowUnsafe).toBe(true);
    expect(config.port).toBe(8080);
    expect(envName(['queue', 'keepCompletedHours'])).toBe('LAPOR_QUEUE_KEEP_COMPLETED_HOURS');
  });

  it('honours PORT, DATABASE_URL and REDIS_URL below their LAPOR_ names', () => {
    expect(loadConfig({ PORT: '4000' }).port).toBe(4000);
    expect(loadConfig({ PORT: '4000', LAPOR_PORT: '5000' }).port).toBe(5000);
    expect(loadConfig({ REDIS_URL: 'redis://r:6379' }).redisUrl).toBe('redis://r:6379');
  });

  it('lists every bad field with the variable and what it expects', () => {
    let error: unknown;
    try {
      loadConfig({ LAPOR_PORT: 'eighty', LAPOR_REDIS_FSYNC: 'never', LAPOR_DATABASE_URL: 'mysql://x', LAPOR_QEUE_ATTEMPTS: '3' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/LAPOR_PORT: .*number/i);
    expect(problems).toMatch(/LAPOR_REDIS_FSYNC: .*always.*everysec/);
    expect(problems).toMatch(/LAPOR_DATABASE_URL: .*postgres/);
    expect(problems).toMatch(/LAPOR_QEUE_ATTEMPTS: unknown setting/);
    expect((error as ConfigError).problems).toHaveLength(4);
  });

  it('exits with code 2 and names the variable when the configuration is invalid', () => {
    const result = spawnSync(process.execPath, ['bin/lapor.js', 'api'], {
      env: { PATH: process.env.PATH, LAPOR_PORT: '-1', LAPOR_LOG_LEVEL: 'loud' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('LAPOR_PORT');
    expect(result.stderr).toContain('LAPOR_LOG_LEVEL');
  });

  it('has a README table listing every variable, generated from the schema', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const field of configFields()) expect(readme, field.env).toContain(`\`${field.env}\``);
    expect(withConfigTable(readme), 'README table is stale: run npm run config:table').toBe(readme);
  });

  it('prints help for every command', () => {
    for (const command of ['start', 'api', 'worker', 'adapter', 'migrate', 'dlq']) {
      const result = spawnSync(process.execPath, ['bin/lapor.js', command, '--help'], { encoding: 'utf8', timeout: 20_000 });
      expect(result.status, command).toBe(0);
      expect(result.stdout, command).toContain(`lapor ${command}`);
    }
    const top = spawnSync(process.execPath, ['bin/lapor.js', '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(top.stdout).toContain('Commands:');
  });
});
