import { z } from 'zod';

/**
 * Settings of the WhatsApp channel: the `whatsapp` section of the configuration (LAPOR_WHATSAPP_*),
 * for the WhatsApp Business Cloud API (Meta's Graph API, over HTTP; no SDK).
 */
export const WhatsAppSettingsSchema = z.strictObject({
  token: z.string().default('').describe('The Cloud API access token. Unset: the channel is off (`npm start` runs the fake Cloud API instead).'),
  phoneId: z.string().regex(/^$|^[0-9]{5,30}$/).default('').describe('The phone number id messages are sent from.'),
  appSecret: z.string().default('').describe('The app secret: every webhook POST must carry X-Hub-Signature-256, its HMAC over the exact bytes.'),
  verifyToken: z.string().default('').describe('What Meta sends as hub.verify_token when the webhook is registered.'),
  apiBase: z.url().default('https://graph.facebook.com/v21.0').describe('Where the Graph API is served, with its version. Any server speaking it will do, plain http included (the local fake).'),
  template: z
    .string()
    .regex(/^[a-z0-9_]{1,512}$/)
    .default('lapor_kabar')
    .describe('The approved template for a message outside the 24-hour customer-service window; its body has one parameter, the notification.'),
  templateLang: z.string().regex(/^[a-z]{2,3}(_[A-Z]{2})?$/).default('id').describe('The language code of that template.'),
  simulator: z.enum(['auto', 'on', 'off']).default('auto').describe('`auto`: with no token, `lapor start` runs the fake Cloud API on loopback, delivering to its own webhook.'),
  simulatorPort: z.coerce.number().int().min(0).max(65535).default(2782).describe('Port of that fake Cloud API (`npm run sim:whatsapp` talks to it).'),
});
export type WhatsAppSettings = z.infer<typeof WhatsAppSettingsSchema>;

export function whatsappConfigured(settings: WhatsAppSettings): boolean {
  return Boolean(settings.token && settings.phoneId && settings.appSecret);
}
