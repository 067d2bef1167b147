import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The sample agencies and units a new database starts with (config/agencies.json). Loaded once per
 * database (src/store/agencies.ts); after that, super admins manage them through the API.
 */

export const SlugSchema = z
  .string()
  .min(2)
  .max(63)
  .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'lower-case letters, digits and single dashes, like dinas-kesehatan');

export const AGENCY_KINDS = ['kementerian', 'lembaga', 'pemda', 'bumn', 'polri', 'lainnya'] as const;

export const UnitSeedSchema = z.strictObject({ slug: SlugSchema, name: z.string().trim().min(2).max(200) });
export const AgencySeedSchema = z.strictObject({
  slug: SlugSchema,
  name: z.string().trim().min(2).max(200),
  kind: z.enum(AGENCY_KINDS),
  units: z.array(UnitSeedSchema).default([]),
});
export const AgencySeedFileSchema = z
  .strictObject({ $comment: z.string().optional(), agencies: z.array(AgencySeedSchema) })
  .superRefine((file, ctx) => {
    const seen = new Set<string>();
    for (const slug of file.agencies.flatMap((a) => [a.slug, ...a.units.map((u) => u.slug)])) {
      if (seen.has(slug)) ctx.addIssue({ code: 'custom', message: `slug ${slug} appears twice` });
      seen.add(slug);
    }
  });
export type AgencySeed = z.infer<typeof AgencySeedSchema>;

export function loadAgencySeed(file = new URL('./agencies.json', import.meta.url)): AgencySeed[] {
  return AgencySeedFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).agencies;
}
