import { FakeXApi, type FakeXOptions } from '../../scripts/x/fake-api.ts';
import { normalizeAddress } from '../../src/core/inbound.ts';
import { createTestEnv, type TestEnv } from './env.ts';

/**
 * A gateway with the X channel polling a fake X API of its own (scripts/x/fake-api.ts) over HTTP,
 * for a test file: a fast poll, a short lease. `env` adds or overrides settings.
 */
export async function xGateway(env: Record<string, string> = {}, fakeOptions: FakeXOptions = {}): Promise<{ fake: FakeXApi; env: TestEnv; close(): Promise<void> }> {
  const fake = await FakeXApi.start(fakeOptions);
  const gateway = await createTestEnv({ channels: ['x'], env: { ...xVars(fake), ...env } });
  return {
    fake,
    env: gateway,
    async close() {
      await gateway.close();
      await fake.stop();
    },
  };
}

/** How test gateways reach a fake X API. */
export function xVars(fake: FakeXApi): Record<string, string> {
  return {
    LAPOR_X_API_BASE: fake.url,
    LAPOR_X_BEARER_TOKEN: fake.credentials.bearerToken,
    LAPOR_X_APP_KEY: fake.credentials.consumerKey,
    LAPOR_X_APP_SECRET: fake.credentials.consumerSecret,
    LAPOR_X_ACCESS_TOKEN: fake.credentials.accessToken,
    LAPOR_X_ACCESS_SECRET: fake.credentials.accessSecret,
    LAPOR_X_ACCOUNT: fake.account.username,
    LAPOR_X_POLL_INTERVAL_MS: '100',
    LAPOR_X_LEASE_MS: '1500',
  };
}

/** Fresh X users, one per call, so each test is its own citizen. */
export function handles(prefix = 'warga'): () => { id: string; username: string } {
  let counter = Math.floor(Math.random() * 1e6);
  return () => {
    const n = counter++;
    return { id: String(7_000_000_000 + n), username: `${prefix}${n}`.slice(0, 15) };
  };
}

/** The keyed hash reports are found by for an X user (reports.contact_hash). */
export function xContactHash(env: TestEnv, userId: string): string {
  return env.runtime.keys.blindIndex(normalizeAddress(`x:${userId}`));
}
