import { z } from 'zod';
import type { Ignored } from '../../src/core/channel.ts';
import { buttonText } from '../../src/core/buttons.ts';
import type { InboundMessage } from '../../src/core/inbound.ts';

/**
 * What one Telegram update means, decided without I/O. Commands are turned into the words of the one
 * keyword parser (src/core/keywords.ts), so a bot command and an SMS keyword behave alike:
 * `/lapor x` is `LAPOR x`, `/status 123` is `CEK 123`, `/rahasia x` is `RAHASIA x`, `/anonim x` is
 * `ANONIM x`, `/start` and `/bantuan` ask for help. Plain text files a report.
 *
 * A message is keyed by its chat and message id (its external id), so a retried update, a
 * redelivered webhook and a restarted poller land on the same receipt; the update id is its dedup key.
 */

const ChatSchema = z.object({ id: z.number().int(), type: z.string() });
const UserSchema = z.object({
  id: z.number().int(),
  is_bot: z.boolean().optional(),
  first_name: z.string().optional(),
  last_name: z.string().optional(),
  username: z.string().optional(),
  language_code: z.string().optional(),
});
const MessageSchema = z.object({
  message_id: z.number().int(),
  date: z.number().int().optional(),
  edit_date: z.number().int().optional(),
  chat: ChatSchema,
  from: UserSchema.optional(),
  text: z.string().optional(),
  caption: z.string().optional(),
  location: z.object({ latitude: z.number(), longitude: z.number() }).optional(),
  /** The sizes of one photo, smallest first. */
  photo: z.array(z.object({ file_id: z.string(), file_size: z.number().optional(), width: z.number().optional() })).optional(),
  document: z.object({ file_id: z.string(), file_name: z.string().optional(), file_size: z.number().optional() }).optional(),
  reply_to_message: z.object({ message_id: z.number().int() }).optional(),
});
export type TelegramMessage = z.infer<typeof MessageSchema>;

/** Only the parts the gateway reads; anything else in an update is tolerated and ignored. */
export const UpdateSchema = z.object({
  update_id: z.number().int().nonnegative(),
  message: MessageSchema.optional(),
  edited_message: MessageSchema.optional(),
  /** The bot's own membership in a chat changed: `kicked` in a private chat is the user blocking the bot. */
  my_chat_member: z.object({ chat: ChatSchema, new_chat_member: z.object({ status: z.string() }) }).optional(),
  callback_query: z
    .object({
      id: z.string().min(1).max(200),
      from: UserSchema,
      message: z.object({ message_id: z.number().int(), chat: ChatSchema }).optional(),
      data: z.string().max(64).optional(),
    })
    .optional(),
});

export type Update = z.infer<typeof UpdateSchema>;

/** Bot commands and the keyword each stands for. */
const COMMANDS: Record<string, string> = {
  start: 'BANTUAN',
  bantuan: 'BANTUAN',
  help: 'BANTUAN',
  lapor: 'LAPOR',
  status: 'CEK',
  cek: 'CEK',
  rahasia: 'RAHASIA',
  anonim: 'ANONIM',
};

export function toInbound(update: Update, context: { bot: string; now: Date }): InboundMessage | Ignored {
  const ignored = (reason: string): Ignored => ({ ignored: true, reason });
  const pressed = update.callback_query;
  if (pressed) {
    const text = buttonText(pressed.data);
    if (!text) return ignored('unknown button');
    // A button lives in the chat of the message it is under: that chat is who pressed it.
    const chat = String(pressed.message?.chat.type === 'private' ? pressed.message.chat.id : pressed.from.id);
    return {
      channel: 'telegram',
      account: context.bot,
      externalId: `cb_${pressed.id}`,
      dedupKey: `tg_${update.update_id}`,
      sender: { address: `tg:${chat}` },
      text,
      attachments: [],
      receivedAt: context.now.toISOString(),
      replyContext: { chatId: chat, ...(pressed.message ? { messageId: String(pressed.message.message_id) } : {}), callbackId: pressed.id },
      ...(pressed.from.language_code?.startsWith('en') ? { lang: 'en' as const } : pressed.from.language_code?.startsWith('id') ? { lang: 'id' as const } : {}),
    };
  }
  const edited = update.edited_message;
  const message = update.message ?? edited;
  if (!message) return ignored('not a message');
  if (message.chat.type !== 'private') return ignored('group');
  if (!message.from || message.from.is_bot) return ignored('no sender');

  const chat = String(message.chat.id);
  const raw = message.text ?? message.caption ?? '';
  const location = message.location ? `\n[lokasi: ${message.location.latitude.toFixed(6)}, ${message.location.longitude.toFixed(6)}]` : '';
  // A photo, a document or a place sent without words is an addendum: it joins the report the
  // citizen wrote just before (or the one its reply names); its text says what it holds.
  const fileOnly = !raw.trim() && (message.photo?.length || message.document) ? (message.photo?.length ? '[foto]' : '[dokumen]') : '';
  const text = `${commandText(raw, context.bot)}${fileOnly}${location}`.trim();
  const addendum = !raw.trim() && Boolean(fileOnly || location);
  const ownId = `${chat}_${message.message_id}`;
  const name = [message.from.first_name, message.from.last_name].filter(Boolean).join(' ');
  const sentAt = message.edit_date ?? message.date;
  const receivedAt = sentAt && sentAt * 1000 <= context.now.getTime() ? new Date(sentAt * 1000) : context.now;
  const lang = message.from.language_code?.toLowerCase().slice(0, 2);
  return {
    channel: 'telegram',
    account: context.bot,
    // An edit is a message of its own, added to the thread of the one it edits.
    externalId: edited ? `${ownId}_e${message.edit_date ?? update.update_id}` : ownId,
    dedupKey: `tg_${update.update_id}`,
    sender: { address: `tg:${chat}`, ...(name ? { displayName: name } : {}) },
    text,
    attachments: [],
    receivedAt: receivedAt.toISOString(),
    replyContext: { chatId: chat, messageId: String(message.message_id) },
    ...(edited ? { thread: { ids: [ownId], ownerOnly: true } } : message.reply_to_message ? { thread: { ids: [`${chat}_${message.reply_to_message.message_id}`], ownerOnly: false } } : {}),
    ...(lang === 'id' || lang === 'en' ? { lang } : {}),
    ...(addendum && !edited ? { addendum: true } : {}),
  };
}

/** `/status@LaporBot 123` → `CEK 123`; text that is no command of ours stays as it is. */
export function commandText(text: string, bot: string): string {
  const match = /^\/([A-Za-z_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)\s*([\s\S]*)$/.exec(text.trim());
  if (!match) return text;
  const [, command = '', addressee, rest = ''] = match;
  if (addressee && addressee.toLowerCase() !== bot.toLowerCase()) return text;
  const keyword = COMMANDS[command.toLowerCase()];
  if (!keyword) return text;
  // `/start <payload>`: a deep link's payload is not the citizen's words.
  if (command.toLowerCase() === 'start') return keyword;
  return `${keyword} ${rest}`.trim();
}

/** The files a message carries: the largest size of a photo, a document. */
export function filesOf(update: Update): { fileId: string; name: string; size: number | undefined }[] {
  const message = update.message ?? update.edited_message;
  if (!message) return [];
  const files: { fileId: string; name: string; size: number | undefined }[] = [];
  const largest = [...(message.photo ?? [])].sort((a, b) => (b.file_size ?? b.width ?? 0) - (a.file_size ?? a.width ?? 0))[0];
  if (largest) files.push({ fileId: largest.file_id, name: `foto-${message.message_id}`, size: largest.file_size });
  if (message.document) files.push({ fileId: message.document.file_id, name: message.document.file_name ?? `dokumen-${message.message_id}`, size: message.document.file_size });
  return files;
}
