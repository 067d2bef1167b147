import { z } from 'zod';

/** Building blocks of configuration schemas (config/schema.ts, adapters/<channel>/config.ts). */

/** A boolean as an environment variable writes it: true/false, 1/0, yes/no. */
export const envBool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

export const positiveInt = z.coerce.number().int().positive();

/**
 * A list given as JSON in one environment variable (LAPOR_SMPP_ACCOUNTS, LAPOR_MAIL_MAILBOXES), or as
 * an array in the configuration file. Text that is not JSON fails the array check, with the variable's name.
 */
export function jsonList<T extends z.ZodType>(item: T) {
  return z.preprocess((value) => {
    if (typeof value !== 'string') return value;
    if (!value.trim()) return [];
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }, z.array(item));
}
