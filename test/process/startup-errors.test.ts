import { afterAll, describe, expect, it } from 'vitest';
import { killAllGateways, runCli, startGateway } from '../helpers/gateway-process.ts';

/**
 * Issue #12, point 5: what a newcomer meets when start-up cannot succeed is one plain sentence
 * that says what to do, first on the terminal, and exit code 78 (EX_CONFIG). (The HTTP port taken
 * is in lifecycle.test.ts, beside the check that nothing is left running.)
 */

afterAll(async () => {
  await killAllGateways();
});

// A folder below a regular file can be neither made nor written, even by root.
const UNWRITABLE = '/etc/hostname/lapor-data';

describe('start-up failures a newcomer can fix', () => {
  it('names the data folder that cannot be written, and what to do, for start and for dlq list', { timeout: 30_000 }, async () => {
    const gateway = await startGateway({ LAPOR_DATA_DIR: UNWRITABLE, LAPOR_LOG_LEVEL: 'info' }, { waitReady: false });
    const exit = await gateway.exited;
    expect(exit.code, gateway.output()).toBe(78);
    expect(gateway.stderr.join('').split('\n')[0]).toBe(
      `Cannot write to the data folder ${UNWRITABLE} (ENOTDIR). Make it writable by this user, or point LAPOR_DATA_DIR to a folder you own.`,
    );

    const dlq = runCli(['dlq', 'list'], { LAPOR_DATA_DIR: UNWRITABLE });
    expect((await dlq.exited).code, dlq.output()).toBe(78);
    expect(dlq.output()).toContain(`Cannot write to the data folder ${UNWRITABLE}`);
  });

  it('prints readable lines on request, redacted like JSON', { timeout: 60_000 }, async () => {
    const gateway = await startGateway({ LAPOR_DATA_DIR: UNWRITABLE, LAPOR_LOG_FORMAT: 'pretty' }, { waitReady: false });
    await gateway.exited;
    const out = gateway.stdout.join('');
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d(\.\d+)?\] FATAL.*cannot start/m);
    expect(out).not.toContain('"level"');
  });
});
