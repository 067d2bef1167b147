import { z } from 'zod';

/** Building blocks of configuration schemas (config/schema.ts, adapters/<channel>/config.ts). */

/** A boolean as an environment variable writes it: true/false, 1/0, yes/no. */
export const envBool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

export const positiveInt = z.coerce.number().int().positive();
