import { z } from 'zod';
import { envBool, jsonList, positiveInt } from '../../src/core/settings.ts';
import type { SmscAccount } from './client.ts';

/**
 * Settings of the SMS channel: the `smpp` section of the configuration (LAPOR_SMPP_*). For quick setup
 * one variable is enough: LAPOR_SMPP_URLS=smpp://user:pass@host:port?tps=50&window=10 (ssmpp:// for
 * TLS), comma-separated for several SMSCs; LAPOR_SMPP_ACCOUNTS takes a JSON list for full control.
 */

export const SmscAccountSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]{1,32}$/, 'a short lower-case name like telkomsel'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(2775),
  tls: z.boolean().default(false),
  systemId: z.string().min(1).max(15),
  password: z.string().max(8),
  systemType: z.string().max(12).default(''),
  bindMode: z.enum(['transceiver', 'receiver', 'transmitter']).default('transceiver'),
  shortCodes: z.array(z.string().regex(/^[0-9]{3,15}$/)).default([]),
  tps: z.number().positive().default(50),
  window: z.number().int().positive().max(1000).default(10),
});
export type SmscAccountConfig = z.infer<typeof SmscAccountSchema>;

export const SmsSettingsSchema = z.strictObject({
  urls: z
    .string()
    .default('')
    .describe('SMSC binds, comma-separated: `smpp://system_id:password@host:port?tps=50&window=10&id=telkomsel` (`ssmpp://` for TLS).'),
  accounts: jsonList(SmscAccountSchema).default([]).describe('SMSC binds as a JSON list (id, host, port, tls, systemId, password, systemType, bindMode, shortCodes, tps, window).'),
  shortCode: z.string().regex(/^[0-9]{3,15}$/).default('1708').describe('The short code replies are sent from.'),
  simulator: z
    .enum(['auto', 'on', 'off'])
    .default('auto')
    .describe('`auto`: with no SMSC configured, `lapor start` runs the SMSC simulator on loopback and binds to it.'),
  simulatorPort: z.coerce.number().int().min(0).max(65535).default(2775).describe('Port of that simulator (its control API is on the next port).'),
  enquireLinkMs: positiveInt.default(30_000).describe('enquire_link after this long without traffic; no answer ends the bind.'),
  requestTimeoutMs: positiveInt
    .default(10_000)
    .describe('How long a bind, submit_sm or enquire_link may wait for its response. A submit_sm unanswered this long, with no other submit_sm answered meanwhile, ends the bind.'),
  reconnectMinMs: positiveInt
    .default(500)
    .describe('First reconnect delay; doubles up to the maximum, with jitter, and starts over once a bind has lasted the maximum.'),
  reconnectMaxMs: positiveInt.default(60_000).describe('Longest reconnect delay.'),
  nackStormCount: positiveInt
    .default(10)
    .describe('This many generic_nack from the SMSC within LAPOR_SMPP_NACK_STORM_WINDOW_MS mean the session is broken: the bind is closed and renewed.'),
  nackStormWindowMs: positiveInt.default(10_000).describe('The sliding window for that count of generic_nack.'),
  concatTimeoutMs: positiveInt.default(120_000).describe('A long SMS still missing parts after this becomes one report, marked incomplete.'),
  dedupMinutes: positiveInt.default(60).describe('How long the same SMS from the same number counts as a redelivery.'),
  queryDedupSeconds: positiveInt
    .default(120)
    .describe('The same for a status query or help request (CEK, INFO): shorter, so a citizen who asks again is answered again.'),
  maxSegments: z.coerce.number().int().min(1).max(10).default(3).describe('Most SMS segments one notification may take.'),
  transliterate: envBool.default(true).describe('Replace common non-GSM characters (curly quotes, dashes) so replies stay GSM-7.'),
  rateLimitPerHour: positiveInt.default(30).describe('Messages accepted per number per hour; more are refused before any report exists.'),
  blocklist: z.string().default('').describe('Numbers whose messages are refused, comma-separated.'),
  leaseMs: positiveInt.default(15_000).describe('A bind is held by one process; another takes over this long after the holder died.'),
});
export type SmsSettings = z.infer<typeof SmsSettingsSchema>;

/** Every SMSC account, from LAPOR_SMPP_ACCOUNTS and LAPOR_SMPP_URLS. */
export function smscAccounts(settings: SmsSettings): (SmscAccount & { shortCodes: string[] })[] {
  const fromUrls = settings.urls
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)
    .map((u, i) => parseSmppUrl(u, i));
  const all = [...settings.accounts, ...fromUrls];
  const ids = new Set<string>();
  for (const account of all) {
    if (ids.has(account.id)) throw new Error(`two SMSC accounts are named ${account.id}; give each an id`);
    ids.add(account.id);
  }
  return all.map((a) => ({ ...a, shortCodes: a.shortCodes.length ? a.shortCodes : [settings.shortCode] }));
}

export function parseSmppUrl(raw: string, index = 0): SmscAccountConfig {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`LAPOR_SMPP_URLS: not a URL (entry ${index + 1})`);
  }
  if (url.protocol !== 'smpp:' && url.protocol !== 'ssmpp:') throw new Error(`LAPOR_SMPP_URLS: entry ${index + 1} must start with smpp:// or ssmpp://`);
  const q = url.searchParams;
  const parsed = SmscAccountSchema.safeParse({
    id: q.get('id') ?? `smsc${index + 1}`,
    host: url.hostname,
    port: url.port ? Number(url.port) : url.protocol === 'ssmpp:' ? 3550 : 2775,
    tls: url.protocol === 'ssmpp:',
    systemId: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    systemType: q.get('system_type') ?? '',
    bindMode: q.get('mode') ?? 'transceiver',
    shortCodes: q.get('short_codes')?.split('+').filter(Boolean) ?? [],
    tps: q.has('tps') ? Number(q.get('tps')) : 50,
    window: q.has('window') ? Number(q.get('window')) : 10,
  });
  // The URL holds a password: name the field that is wrong, never echo the URL.
  if (!parsed.success) {
    throw new Error(`LAPOR_SMPP_URLS entry ${index + 1}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}
