import { FakeTelegramApi, type FakeTelegramOptions } from '../../scripts/telegram/fake-api.ts';
import { normalizeAddress } from '../../src/core/inbound.ts';
import { createTestEnv, type TestEnv } from './env.ts';

/**
 * A gateway with the Telegram channel long-polling a fake Bot API of its own
 * (scripts/telegram/fake-api.ts) over HTTP, for a test file. `env` adds or overrides settings.
 */
export async function telegramGateway(env: Record<string, string> = {}, fakeOptions: FakeTelegramOptions = {}): Promise<{ fake: FakeTelegramApi; env: TestEnv; close(): Promise<void> }> {
  const fake = await FakeTelegramApi.start({ flood: false, ...fakeOptions });
  const gateway = await createTestEnv({ channels: ['telegram'], env: { ...telegramVars(fake), ...env } });
  return {
    fake,
    env: gateway,
    async close() {
      await gateway.close();
      await fake.stop();
    },
  };
}

export function telegramVars(fake: FakeTelegramApi): Record<string, string> {
  return {
    LAPOR_TELEGRAM_TOKEN: fake.token,
    LAPOR_TELEGRAM_API_ROOT: fake.url,
    LAPOR_TELEGRAM_POLL_TIMEOUT_SECONDS: '1',
    LAPOR_TELEGRAM_LEASE_MS: '1500',
  };
}

/** Fresh Telegram users, one per call, so each test is its own citizen. */
export function tgUsers(): () => { id: number; first_name: string; language_code: string } {
  let counter = Math.floor(Math.random() * 1e6);
  return () => ({ id: 6_000_000_000 + counter++, first_name: 'Warga', language_code: 'id' });
}

export function tgContactHash(env: TestEnv, chatId: number): string {
  return env.runtime.keys.blindIndex(normalizeAddress(`tg:${chatId}`));
}
