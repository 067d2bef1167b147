import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { RulesConfig } from '../config/rules.ts';
import type { DataKeys } from '../src/core/crypto.ts';
import type { TrackingIdCodec } from '../src/core/tracking-id.ts';
import type { Queues } from '../src/queue/queues.ts';
import type { Adapters } from '../src/registry.ts';
import type { ClockContext } from '../src/store/clocks.ts';
import type { Db } from '../src/store/db.ts';

/** What every worker stage is given. Built once by the composition root (src/runtime.ts). */
export interface WorkerDeps {
  config: Config;
  rules: RulesConfig;
  /** The working-day calendar and clock lengths of the regulatory deadlines. */
  clocks: ClockContext;
  db: Db;
  queues: Queues;
  keys: DataKeys;
  codec: TrackingIdCodec;
  adapters: Adapters;
  log: Logger;
}
