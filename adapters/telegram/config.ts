import { z } from 'zod';
import { positiveInt } from '../../src/core/settings.ts';

/**
 * Settings of the Telegram channel: the `telegram` section of the configuration (LAPOR_TELEGRAM_*).
 * One bot, named by its token. Updates come by long polling (`getUpdates`, one poller across all
 * processes) or by webhook (`/webhooks/telegram`, Telegram's secret header checked).
 */
export const TelegramSettingsSchema = z.strictObject({
  token: z
    .string()
    .regex(/^$|^[0-9]{1,20}:[A-Za-z0-9_-]{10,100}$/, 'a bot token like 123456:ABC-DEF… from @BotFather')
    .default('')
    .describe('The bot token from @BotFather. Unset: the channel is off (`npm start` runs the fake Telegram API instead).'),
  apiRoot: z.url().default('https://api.telegram.org').describe('Where the Bot API is served. Any server speaking it will do, plain http included (the local fake).'),
  mode: z
    .enum(['polling', 'webhook'])
    .default('polling')
    .describe('`polling`: long-poll getUpdates (no public address needed). `webhook`: Telegram posts to /webhooks/telegram (register it with setWebhook and the secret).'),
  webhookSecret: z
    .string()
    .regex(/^$|^[A-Za-z0-9_-]{1,256}$/, '1-256 characters A-Z, a-z, 0-9, _ and -')
    .default('')
    .describe('The secret_token given to setWebhook: every delivery must carry it in X-Telegram-Bot-Api-Secret-Token.'),
  pollTimeoutSeconds: z.coerce.number().int().min(0).max(50).default(30).describe('How long one getUpdates waits for an update (long polling).'),
  leaseMs: positiveInt.default(15_000).describe('One poller across all processes; another takes over this long after the holder died.'),
  simulator: z.enum(['auto', 'on', 'off']).default('auto').describe('`auto`: with no bot token, `lapor start` runs the fake Telegram Bot API on loopback and polls it.'),
  simulatorPort: z.coerce.number().int().min(0).max(65535).default(2781).describe('Port of that fake Telegram API (`npm run sim:telegram` talks to it).'),
});
export type TelegramSettings = z.infer<typeof TelegramSettingsSchema>;

export function telegramConfigured(settings: TelegramSettings): boolean {
  return Boolean(settings.token);
}
