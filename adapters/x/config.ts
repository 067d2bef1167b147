import { z } from 'zod';
import { positiveInt } from '../../src/core/settings.ts';

/**
 * Settings of the X channel: the `x` section of the configuration (LAPOR_X_*). Reads (the mentions
 * timeline) use the app-only bearer token; posting and direct messages need the account's user
 * context (OAuth 1.0a: app key and secret, access token and secret). The app secret also signs the
 * Account Activity webhook's deliveries and answers its CRC challenge.
 */
export const XSettingsSchema = z.strictObject({
  apiBase: z
    .url()
    .default('https://api.x.com')
    .describe('Where the X API v2 is served. Any server speaking it will do, plain http included (the local fake).'),
  bearerToken: z.string().default('').describe('App-only bearer token, for reading the mentions timeline.'),
  appKey: z.string().default('').describe('The app\'s API key (OAuth 1.0a consumer key), for posting replies and direct messages.'),
  appSecret: z.string().default('').describe('The app\'s API key secret: signs posts, and checks the webhook\'s signatures and CRC.'),
  accessToken: z.string().default('').describe('The account\'s access token (user context).'),
  accessSecret: z.string().default('').describe('The account\'s access token secret.'),
  userId: z
    .string()
    .regex(/^[0-9]{1,20}$/)
    .optional()
    .describe('The numeric id of the account. Unset: asked once from `GET /2/users/me`.'),
  account: z.string().regex(/^[A-Za-z0-9_]{1,15}$/).default('LAPOR1708').describe('The account citizens mention, without @.'),
  hashtag: z.string().regex(/^[\p{L}\p{N}_]{1,100}$/u).default('lapor').describe('The hashtag that makes a mention a report, without # (matched case-insensitively, as a hashtag only).'),
  mode: z.enum(['poll', 'webhook']).default('poll').describe('`poll`: read the mentions timeline every interval. `webhook`: X posts to /webhooks/x (Account Activity); no polling.'),
  pollIntervalMs: positiveInt.default(60_000).describe('How often the mentions timeline is read (each poll costs reads; X allows 180 per 15 minutes).'),
  pollMaxResults: z.coerce.number().int().min(5).max(100).default(100).describe('Tweets asked for per page of mentions (X: 5 to 100).'),
  monthlyReads: z.coerce.number().int().min(0).default(10_000).describe('Posts read per calendar month (UTC) that the plan pays for; polling stops once spent. 0: no limit.'),
  monthlyPosts: z.coerce.number().int().min(0).default(3_000).describe('Posts and direct messages sent per calendar month (UTC); replies wait once spent. 0: no limit.'),
  leaseMs: positiveInt.default(15_000).describe('One poller across all processes; another takes over this long after the holder died.'),
  simulator: z
    .enum(['auto', 'on', 'off'])
    .default('auto')
    .describe('`auto`: with no X credentials, `lapor start` runs the fake X API on loopback and polls it.'),
  simulatorPort: z.coerce.number().int().min(0).max(65535).default(2780).describe('Port of that fake X API (`npm run sim:x` talks to it).'),
});
export type XSettings = z.infer<typeof XSettingsSchema>;

/** The channel runs when it can read: a bearer token (poll) or an app secret to check deliveries (webhook). */
export function xConfigured(settings: XSettings): boolean {
  return settings.mode === 'poll' ? Boolean(settings.bearerToken) : Boolean(settings.appSecret);
}

/** Posting needs the whole user context. */
export function canPost(settings: XSettings): boolean {
  return Boolean(settings.appKey && settings.appSecret && settings.accessToken && settings.accessSecret);
}
