import { normalizeAddress } from '../../src/core/inbound.ts';
import { SmscSimulator } from '../../scripts/smsc/simulator.ts';
import { createTestEnv, type TestEnv } from './env.ts';

/**
 * A gateway with the SMS channel bound over real SMPP to an SMSC simulator of its own, for a test
 * file: quick reconnects, a short lease, no per-number rate limit in the way. `env` adds or
 * overrides settings.
 */
export async function smsGateway(env: Record<string, string> = {}): Promise<{ sim: SmscSimulator; env: TestEnv; close(): Promise<void> }> {
  const sim = await SmscSimulator.start({ systemId: 'lapor', password: 'secret', receiptDelayMs: 5 });
  const gateway = await createTestEnv({ channels: ['sms'], env: { ...smsBindVars(sim.port), ...env } });
  await sim.waitForBind(10_000);
  return {
    sim,
    env: gateway,
    async close() {
      await gateway.close();
      await sim.close();
    },
  };
}

/** How test gateways bind to a simulator: a fast window, quick reconnects, a short lease, no rate limit in the way. */
export function smsBindVars(simPort: number): Record<string, string> {
  return {
    LAPOR_SMPP_URLS: `smpp://lapor:secret@127.0.0.1:${simPort}?id=sim&tps=1000&window=50`,
    LAPOR_SMPP_RECONNECT_MIN_MS: '50',
    LAPOR_SMPP_RECONNECT_MAX_MS: '200',
    LAPOR_SMPP_LEASE_MS: '2000',
    LAPOR_SMPP_RATE_LIMIT_PER_HOUR: '100000',
    LAPOR_SMPP_CONCAT_TIMEOUT_MS: '1000',
  };
}

/** Fresh Indonesian mobile numbers, one per call, so each test is its own citizen. */
export function numbers(prefix = '+62812'): () => string {
  let counter = Math.floor(Math.random() * 1e6);
  return () => `${prefix}${String(counter++).padStart(7, '0')}`;
}

/** The keyed hash reports are found by for a number (reports.contact_hash). */
export function contactHashOf(env: TestEnv, number: string): string {
  return env.runtime.keys.blindIndex(normalizeAddress(number));
}
