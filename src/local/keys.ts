import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import type { Config } from '../../config/schema.ts';

const KeyFileSchema = z.strictObject({ dataKey: z.string().min(40), trackingKey: z.string().min(40) });

export interface Keys {
  dataKey: Buffer;
  trackingKey: Buffer;
  /** Where generated keys were kept, if they were generated. */
  file?: string;
}

/**
 * Keys from the configuration or, outside production, from `dataDir/keys.json`, generated on the
 * first run (mode 0600). Losing that file makes the stored personal data unreadable and changes
 * the tracking IDs of new reports: back it up with the data.
 */
export function loadKeys(config: Config): Keys {
  if (config.dataKey && config.trackingKey) {
    return { dataKey: Buffer.from(config.dataKey, 'base64'), trackingKey: Buffer.from(config.trackingKey, 'base64') };
  }
  if (config.env === 'production') {
    throw new Error('LAPOR_DATA_KEY and LAPOR_TRACKING_KEY must be set in production (generate: openssl rand -base64 32)');
  }
  const file = join(resolve(config.dataDir), 'keys.json');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const generated = { dataKey: randomBytes(32).toString('base64'), trackingKey: randomBytes(32).toString('base64') };
    // Written whole, then linked into place: two processes starting at once on a new data dir
    // agree on one key file (the second link fails with EEXIST) and never read a half-written one.
    const draft = `${file}.${process.pid}.tmp`;
    writeFileSync(draft, JSON.stringify(generated, null, 2), { mode: 0o600 });
    try {
      linkSync(draft, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      unlinkSync(draft);
    }
  }
  const stored = KeyFileSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  return {
    dataKey: Buffer.from(config.dataKey ?? stored.dataKey, 'base64'),
    trackingKey: Buffer.from(config.trackingKey ?? stored.trackingKey, 'base64'),
    file,
  };
}
