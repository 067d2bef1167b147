import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { z } from 'zod';
import { closeServer, listenOnLoopback } from '../fake-server.ts';

/**
 * A local Telegram Bot API for the gateway's tests and local runs: `/bot<token>/<method>` with the
 * methods the Telegram adapter uses (getMe, getUpdates with long polling, webhooks, sendMessage with
 * inline keyboards, callback answers, edits, getFile and downloads), Telegram's error bodies and flood
 * control. A control API under /_fake/ (and the same methods on the class) plays the citizens: it
 * produces real Update objects and shows what the bot did.
 *
 * Error texts and edge rules were checked against the open-source server (tdlib/telegram-bot-api,
 * Client.cpp) and TDLib (MessageEntity.cpp); where the fake had to choose, the comment says "chosen".
 * Plain HTTP on loopback only: a developer tool. `log` gets methods and statuses, never a text.
 */

// ---- Telegram's objects ----

export interface TgUser { id: number; is_bot: boolean; first_name: string; last_name?: string; username?: string; language_code?: string }
export interface TgChat { id: number; type: 'private' | 'group' | 'supergroup' | 'channel'; title?: string; first_name?: string; last_name?: string; username?: string }
export interface MessageEntity { type: string; offset: number; length: number; url?: string }
export interface InlineButton { text: string; callback_data?: string; url?: string }
export interface InlineKeyboardMarkup { inline_keyboard: InlineButton[][] }
export interface TgFile { file_id: string; file_unique_id: string; file_size: number }
export interface TgMessage {
  message_id: number;
  from?: TgUser;
  chat: TgChat;
  date: number;
  edit_date?: number;
  text?: string;
  entities?: MessageEntity[];
  caption?: string;
  caption_entities?: MessageEntity[];
  photo?: Array<TgFile & { width: number; height: number }>;
  document?: TgFile & { file_name: string; mime_type: string };
  location?: { latitude: number; longitude: number };
  reply_to_message?: TgMessage;
  reply_markup?: InlineKeyboardMarkup;
}
export type Update = { update_id: number } & Record<string, unknown>;

// ---- control inputs (zod at the boundary) ----

const Username = z.string().regex(/^@?[A-Za-z0-9_]{5,32}$/);
const FromSchema = z.union([
  Username,
  z.strictObject({
    id: z.number().int().positive().max(2 ** 40).optional(),
    first_name: z.string().min(1).max(64),
    last_name: z.string().max(64).optional(),
    username: Username.optional(),
    language_code: z.string().max(10).optional(),
  }),
]);
const Bytes = z.union([z.custom<Buffer>((v) => Buffer.isBuffer(v)), z.base64().transform((s) => Buffer.from(s, 'base64'))]);
const MessageId = z.number().int().positive();
const SaySchema = z.strictObject({ from: FromSchema, text: z.string().min(1).max(4096), replyTo: MessageId.optional() });
const PhotoSchema = z.strictObject({ from: FromSchema, caption: z.string().max(1024).optional(), bytes: Bytes, fileName: z.string().optional() });
const DocumentSchema = PhotoSchema.extend({ fileName: z.string().min(1), mimeType: z.string().min(1) });
const LocationSchema = z.strictObject({ from: FromSchema, latitude: z.number().min(-90).max(90), longitude: z.number().min(-180).max(180) });
const EditSchema = z.strictObject({ from: FromSchema, messageId: MessageId, text: z.string().min(1).max(4096) });
/** `chatId` defaults to the presser's private chat. */
const PressSchema = z.strictObject({ from: FromSchema, messageId: MessageId, data: z.string(), chatId: z.number().int().optional() });
const GroupSchema = z.strictObject({ from: FromSchema, groupId: z.number().int().negative(), title: z.string().min(1), text: z.string().min(1) });
const FaultSchema = z.strictObject({
  method: z.string().min(1),
  status: z.union([z.literal(429), z.literal(500), z.literal(502)]),
  count: z.number().int().min(0).default(1),
  retryAfter: z.number().int().positive().optional(),
});
const UserIdSchema = z.strictObject({ userId: z.number().int().positive() });
const RawSchema = z.record(z.string(), z.unknown());
const FileSchema = z.strictObject({ fileId: z.string().min(1).max(200), bytes: Bytes, fileUniqueId: z.string().min(1).optional(), filePath: z.string().min(1).optional() });

// What raw() learns from an update: only parts in the Bot API's shape (anything else is delivered, not learnt).
const SeenUser = z.object({ id: z.number().int().positive(), is_bot: z.boolean(), first_name: z.string(), last_name: z.string().optional(), username: z.string().optional(), language_code: z.string().optional() });
const SeenChat = z.object({
  id: z.number().int(),
  type: z.enum(['private', 'group', 'supergroup', 'channel']),
  title: z.string().optional(),
  first_name: z.string().optional(),
  last_name: z.string().optional(),
  username: z.string().optional(),
});
const SeenMessage = z.object({ message_id: z.number().int().positive(), chat: SeenChat, from: SeenUser.optional(), reply_to_message: z.unknown().optional() });
const SeenPress = z.object({ id: z.string().min(1), from: SeenUser, message: z.unknown().optional() });
const SeenMember = z.object({ chat: SeenChat, from: SeenUser, new_chat_member: z.object({ user: z.object({ id: z.number().int() }), status: z.string() }) });

export type FromInput = z.input<typeof FromSchema>;
export type SayInput = z.input<typeof SaySchema>;
export type PhotoInput = z.input<typeof PhotoSchema>;
export type DocumentInput = z.input<typeof DocumentSchema>;
export type LocationInput = z.input<typeof LocationSchema>;
export type EditInput = z.input<typeof EditSchema>;
export type PressInput = z.input<typeof PressSchema>;
export type GroupInput = z.input<typeof GroupSchema>;
export type FaultInput = z.input<typeof FaultSchema>;
export type FileInput = z.input<typeof FileSchema>;

export interface FakeTelegramOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  token?: string;
  bot?: { id: number; username: string; first_name: string };
  /** Flood control on sendMessage; `false` turns it off. */
  flood?: boolean;
  perChatPerSecond?: number;
  globalPerSecond?: number;
  /** The N of "retry after N" for flood 429s (and injected ones without their own). */
  retryAfterSeconds?: number;
  /** Pause before a failed webhook delivery is tried again. */
  webhookRetryMs?: number;
  log?: (line: string) => void;
}

/** A message the bot sent or edited, as it was after that call. */
export interface SentRecord {
  index: number;
  method: 'sendMessage' | 'editMessageText' | 'editMessageReplyMarkup';
  chatId: number;
  message: TgMessage;
  parseMode?: string;
}
export interface CallbackAnswer { callback_query_id: string; text?: string; show_alert: boolean }
export interface FakeTelegramStats {
  /** Bot API calls per method as the client spelled it, refused ones included. */
  calls: Record<string, number>;
  /** 429s served (flood control and injected) and injected 500/502s. */
  tooManyRequests: number;
  serverErrors: number;
  webhook: { delivered: number; failed: number };
  pendingUpdates: number;
}

// ---- Telegram's answers ----

class ApiError extends Error {
  constructor(readonly code: number, readonly description: string, readonly retryAfter?: number) {
    super(description);
  }
}
const bad = (why: string) => new ApiError(400, `Bad Request: ${why}`);
const tooMany = (seconds: number) => new ApiError(429, `Too Many Requests: retry after ${seconds}`, seconds);
const NOT_MODIFIED = bad(
  'message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
);
// A 502 comes from Telegram's nginx, not from the Bot API: HTML, not JSON.
const BAD_GATEWAY_HTML = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n';

interface Reply { status: number; body: unknown; contentType?: string }
const ok = (result: unknown, description?: string): Reply => ({ status: 200, body: { ok: true, result, ...(description ? { description } : {}) } });
const failure = (e: ApiError): Reply => ({
  status: e.code,
  body: { ok: false, error_code: e.code, description: e.description, ...(e.retryAfter ? { parameters: { retry_after: e.retryAfter } } : {}) },
});

class ControlError extends Error {
  constructor(readonly status: number, readonly details: string[]) {
    super(details.join('; '));
  }
}
const parse = <S extends z.ZodType>(schema: S, value: unknown): z.infer<S> => {
  const result = schema.safeParse(value);
  if (!result.success) throw new ControlError(400, result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`));
  return result.data;
};

// ---- text: HTML parse mode and bot commands, as TDLib does them ----

const HTML_TAGS = new Set('a b strong i em u ins s strike del tg-spoiler span pre code blockquote tg-emoji tg-time'.split(' '));
const CHAR_REF = /^&(?:#x([0-9a-fA-F]{1,7})|#([0-9]{1,7})|(lt|gt|amp|quot)(?![A-Za-z]));?/;
const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' };

/**
 * TDLib's parse_html reduced to what a sender can get wrong: the plain text Telegram shows, or TDLib's
 * error (with its byte offsets). The formatting entities are not kept (chosen).
 */
export function htmlText(html: string): string {
  const at = (i: number) => Buffer.byteLength(html.slice(0, i));
  const fail = (why: string): never => {
    throw bad(`can't parse entities: ${why}`);
  };
  const open: string[] = [];
  let text = '';
  for (let i = 0; i < html.length; ) {
    const rest = html.slice(i);
    const ref = rest[0] === '&' ? CHAR_REF.exec(rest) : null;
    const code = ref && !ref[3] ? parseInt(ref[1] ?? ref[2] ?? '0', ref[1] ? 16 : 10) : 0;
    if (ref && (ref[3] || (code > 0 && code < 0x10ffff))) {
      text += ref[3] ? NAMED[ref[3]] : String.fromCodePoint(code); // anything else after '&' stays as typed
      i += ref[0].length;
    } else if (rest[0] !== '<') {
      text += rest[0];
      i++;
    } else if (rest[1] !== '/') {
      const name = /^<([^\s>]*)/.exec(rest)?.[1] ?? '';
      if (i + 1 + name.length >= html.length) fail(`Unclosed start tag at byte offset ${at(i)}`);
      const tag = name.toLowerCase();
      if (!HTML_TAGS.has(tag)) fail(`Unsupported start tag "${tag}" at byte offset ${at(i)}`);
      const whole = /^<[^\s>]*((?:[^>"']|"[^"]*"|'[^']*')*)>/.exec(rest);
      if (!whole) return fail(`Unclosed start tag "${tag}" at byte offset ${at(i)}`);
      if (tag === 'span' && !/class\s*=\s*["']?tg-spoiler\b/i.test(whole[1] ?? '')) fail(`Tag "span" must have class "tg-spoiler" at byte offset ${at(i)}`);
      open.push(tag);
      i += whole[0].length;
    } else {
      const end = /^<\/([^\s>]*)\s*(>)?/.exec(rest);
      const top = open.pop();
      if (!top) return fail(`Unexpected end tag at byte offset ${at(i)}`);
      if (!end?.[2]) return fail(`Unclosed end tag at byte offset ${at(i)}`);
      const name = (end[1] ?? '').toLowerCase();
      if (name && name !== top) fail(`Unmatched end tag at byte offset ${at(i)}, expected "</${top}>", found "</${name}>"`);
      i += end[0].length;
    }
  }
  if (open.length) fail(`Can't find end tag corresponding to start tag "${open.at(-1)}"`);
  return text;
}

// TDLib's match_bot_commands: "/cmd" or "/cmd@bot" not glued to a word character, '/', '<' or '>'.
const BOT_COMMAND = /(?<![\p{L}\p{N}_/<>])\/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\p{L}\p{N}_/<>@])/gu;
export function botCommandEntities(text: string): MessageEntity[] {
  return [...text.matchAll(BOT_COMMAND)].map((m) => ({ type: 'bot_command', offset: m.index, length: m[0].length }));
}
const commanded = (text: string) => {
  const entities = botCommandEntities(text);
  return compact({ text, entities: entities.length ? entities : undefined });
};
const captioned = (caption?: string) => {
  const entities = botCommandEntities(caption ?? '');
  return compact({ caption, caption_entities: entities.length ? entities : undefined });
};

// ---- the server ----

// Telegram's default allowed_updates: every type but these three.
const NOT_BY_DEFAULT = new Set(['chat_member', 'message_reaction', 'message_reaction_count']);
const LONG_POLL_MAX_S = 50; // the server's LONG_POLL_MAX_TIMEOUT
const MAX_DOWNLOAD = 20 * 1024 * 1024; // getFile serves files up to 20 MB
const METHODS = [
  'getMe', 'getUpdates', 'setWebhook', 'deleteWebhook', 'getWebhookInfo', 'sendMessage', 'answerCallbackQuery',
  'editMessageText', 'editMessageReplyMarkup', 'getFile',
] as const;
type Method = (typeof METHODS)[number];
// Telegram's method names are case-insensitive.
const BY_LOWER = new Map<string, Method>(METHODS.map((m) => [m.toLowerCase(), m]));
type Params = Record<string, string>;

interface Poll { offset: number; limit: number; resolve: (reply: Reply) => void; timer: NodeJS.Timeout }
interface Webhook { url: string; secret: string; lastErrorDate?: number; lastErrorMessage?: string }
interface StoredFile extends TgFile { file_path: string; bytes: Buffer }

const now = () => Math.floor(Date.now() / 1000);
const clone = <T>(value: T): T => structuredClone(value);
/** The id a user named only by username (or first name) gets: the same each time, below 2^40. */
export function derivedUserId(name: string): number {
  return 1_000_000_000 + (parseInt(createHash('sha256').update(name.toLowerCase()).digest('hex').slice(0, 12), 16) % 7_000_000_000);
}

export class FakeTelegramApi {
  readonly token: string;
  readonly bot: TgUser;
  private readonly flood: boolean;
  private readonly perChat: number;
  private readonly global: number;
  private readonly retryAfter: number;
  private readonly webhookRetryMs: number;
  private readonly logLine: (line: string) => void;

  private lastUpdateId = 100_000_000 + randomInt(900_000_000);
  private queue: Update[] = [];
  private allowed: Set<string> | null = null; // null = Telegram's default
  private poll: Poll | null = null;
  private webhook: Webhook | null = null;
  private pumping: Promise<void> | null = null;
  private wakeRetry: (() => void) | null = null;
  private readonly inFlight = new AbortController();
  private stopped = false;

  private users = new Map<number, TgUser>();
  private usernames = new Map<string, number>();
  private chats = new Map<number, TgChat>();
  private messages = new Map<number, Map<number, TgMessage>>();
  private blocked = new Set<number>();
  private callbacks = new Map<string, boolean>(); // id → answered
  private files = new Map<string, StoredFile>();
  private sentLog: SentRecord[] = [];
  private answers: CallbackAnswer[] = [];
  private faults = new Map<string, { status: 429 | 500 | 502; remaining: number; retryAfter?: number }>();
  private sends: number[] = [];
  private chatSends = new Map<number, number[]>();
  private penalties = new Map<number | 'all', number>();
  private counters = { calls: {} as Record<string, number>, tooManyRequests: 0, serverErrors: 0, webhook: { delivered: 0, failed: 0 } };
  private seq = 0;

  private constructor(private readonly server: Server, readonly port: number, options: FakeTelegramOptions) {
    this.token = options.token ?? '123456:fake-token';
    const bot = options.bot ?? { id: 7000000001, username: 'LaporBot', first_name: 'LAPOR!' };
    this.bot = { id: bot.id, is_bot: true, first_name: bot.first_name, username: bot.username };
    this.flood = options.flood ?? true;
    this.perChat = options.perChatPerSecond ?? 1;
    this.global = options.globalPerSecond ?? 30;
    this.retryAfter = options.retryAfterSeconds ?? 1;
    this.webhookRetryMs = options.webhookRetryMs ?? 1000;
    this.logLine = options.log ?? (() => undefined);
  }

  static async start(options: FakeTelegramOptions = {}): Promise<FakeTelegramApi> {
    const { server, port } = await listenOnLoopback(options.port);
    const fake = new FakeTelegramApi(server, port, options);
    server.on('request', (req, res) => void fake.handle(req, res).catch(() => res.destroy()));
    server.on('error', (error: Error) => fake.logLine(`server error: ${error.message}`));
    fake.logLine(`fake Telegram Bot API on 127.0.0.1:${port}`);
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What a client sets as its API root: `${apiRoot}/bot<token>/<method>`. */
  get apiUrl(): string {
    return `${this.url}/bot${this.token}`;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.inFlight.abort();
    this.wakeRetry?.();
    this.finishPoll(ok([]));
    await this.pumping;
    await closeServer(this.server);
  }

  /** Forgets the world, the queue, the webhook and the counters; update ids keep growing, as Telegram's. */
  reset(): void {
    if (this.poll) this.finishPoll(ok([]));
    this.queue = [];
    this.allowed = null;
    this.setHook(null);
    for (const map of [this.users, this.usernames, this.chats, this.messages, this.callbacks, this.files, this.faults, this.chatSends, this.penalties]) map.clear();
    this.blocked.clear();
    this.sentLog = [];
    this.answers = [];
    this.sends = [];
    this.counters = { calls: {}, tooManyRequests: 0, serverErrors: 0, webhook: { delivered: 0, failed: 0 } };
  }

  // ---- the citizens (control) ----

  /** A private message to the bot; commands get their bot_command entities. */
  say(input: SayInput): Update {
    const { from, text, replyTo } = parse(SaySchema, input);
    const user = this.user(from, true);
    return this.incoming(this.chat(user), user, commanded(text), replyTo);
  }

  sendPhoto(input: PhotoInput): Update {
    const { from, caption, bytes, fileName } = parse(PhotoSchema, input);
    const user = this.user(from, true);
    // Chosen: three sizes, as Telegram makes, all served with the uploaded bytes (the fake does not resize).
    const ext = /\.(\w+)$/.exec(fileName ?? '')?.[1] ?? 'jpg';
    const photo = [90, 320, 1280].map((w) => ({ ...this.store(bytes, `photos/file_${this.files.size}.${ext}`, 'AgACAgUAAxkBAAI'), width: w, height: Math.round((w * 3) / 4) }));
    return this.incoming(this.chat(user), user, { photo, ...captioned(caption) });
  }

  sendDocument(input: DocumentInput): Update {
    const { from, caption, bytes, fileName, mimeType } = parse(DocumentSchema, input);
    const user = this.user(from, true);
    const ext = /\.(\w+)$/.exec(fileName)?.[1] ?? 'bin';
    const document = { file_name: fileName, mime_type: mimeType, ...this.store(bytes, `documents/file_${this.files.size}.${ext}`, 'BQACAgUAAxkBAAI') };
    return this.incoming(this.chat(user), user, { document, ...captioned(caption) });
  }

  sendLocation(input: LocationInput): Update {
    const { from, latitude, longitude } = parse(LocationSchema, input);
    const user = this.user(from, true);
    return this.incoming(this.chat(user), user, { location: { latitude, longitude } });
  }

  /** The user edits one of their messages: an edited_message update with the same message_id. */
  edit(input: EditInput): Update {
    const { from, messageId, text } = parse(EditSchema, input);
    const user = this.user(from, true);
    const message = this.messages.get(user.id)?.get(messageId);
    if (!message || message.from?.id !== user.id) throw new ControlError(404, [`no message ${messageId} of user ${user.id}`]);
    const edited: TgMessage = compact({ ...message, entities: undefined, edit_date: now() });
    Object.assign(edited, commanded(text));
    this.messages.get(user.id)?.set(messageId, edited);
    return this.enqueue('edited_message', edited);
  }

  /** A button press. Telegram does not check `data` against the keyboard, so neither does the fake. */
  press(input: PressInput): Update {
    const { from, messageId, data, chatId } = parse(PressSchema, input);
    const user = this.user(from, true);
    const message = this.messages.get(chatId ?? user.id)?.get(messageId);
    if (!message || message.from?.id !== this.bot.id) throw new ControlError(404, [`no bot message ${messageId} in chat ${chatId ?? user.id}`]);
    const id = (BigInt(user.id) * 4096n + BigInt(++this.seq)).toString();
    this.callbacks.set(id, false);
    // chat_instance: an opaque number per chat, the same for every press there.
    const chatInstance = `-${derivedUserId(`chat:${message.chat.id}`)}${message.chat.id < 0 ? 1 : 0}`;
    return this.enqueue('callback_query', { id, from: user, message, chat_instance: chatInstance, data });
  }

  /** A message in a group the bot is in (chat.type 'group'). */
  inGroup(input: GroupInput): Update {
    const { from, groupId, title, text } = parse(GroupSchema, input);
    const user = this.user(from, false);
    const chat: TgChat = { id: groupId, type: 'group', title };
    this.chats.set(groupId, chat);
    return this.incoming(chat, user, commanded(text));
  }

  /** The user blocks the bot: a my_chat_member update, and sendMessage to them fails with 403. */
  block(userId: number): Update {
    return this.membership(parse(UserIdSchema, { userId }).userId, 'kicked');
  }

  unblock(userId: number): Update {
    return this.membership(parse(UserIdSchema, { userId }).userId, 'member');
  }

  /**
   * Any object as an update; it keeps its own numeric update_id, else gets the next one. allowed_updates does not apply.
   * What it shows is learnt as Telegram would know it, so a captured update plays like one the fake made: the
   * users and chats of its messages (the bot can answer there), the messages themselves (replies and edits find
   * them; the chat's next ids follow them), a button press (it can be answered once) and the bot blocked or
   * unblocked in a private chat. A part not in the Bot API's shape is delivered as given and not learnt.
   */
  raw(update: Record<string, unknown>): Update {
    const value = parse(RawSchema, update);
    const id = typeof value.update_id === 'number' ? value.update_id : ++this.lastUpdateId;
    this.lastUpdateId = Math.max(this.lastUpdateId, id);
    const stored = { ...value, update_id: id };
    this.learn(stored);
    this.queue.push(stored);
    this.wake();
    return clone(stored);
  }

  /**
   * A file served under a given file_id (getFile, then /file/bot<token>/<path>), for updates made elsewhere
   * (raw()) that name files by id. The same id again replaces the bytes.
   */
  putFile(input: FileInput): TgFile & { file_path: string } {
    const { fileId, bytes, fileUniqueId, filePath } = parse(FileSchema, input);
    const known = this.files.get(fileId);
    const file: StoredFile = {
      file_id: fileId,
      file_unique_id: fileUniqueId ?? known?.file_unique_id ?? `AQAD${randomBytes(9).toString('base64url')}`,
      file_size: bytes.length,
      file_path: filePath ?? known?.file_path ?? `files/file_${this.files.size}`,
      bytes,
    };
    this.files.set(fileId, file);
    return { file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.file_size, file_path: file.file_path };
  }

  /** The next `count` calls of `method` fail with `status`. */
  fault(input: FaultInput): void {
    const { method, status, count, retryAfter } = parse(FaultSchema, input);
    this.faults.set(method.toLowerCase(), { status, remaining: count, retryAfter });
  }

  // ---- what the bot did ----

  sent(filter: { chatId?: number; since?: number } = {}): SentRecord[] {
    return this.sentLog.filter((r) => r.index >= (filter.since ?? 0) && (filter.chatId === undefined || r.chatId === filter.chatId)).map(clone);
  }

  callbackAnswers(): CallbackAnswer[] {
    return this.answers.map(clone);
  }

  stats(): FakeTelegramStats {
    return { ...clone(this.counters), pendingUpdates: this.queue.length };
  }

  // ---- building the world ----

  /** '@name' is that user (created the first time); an object creates or updates the user. */
  private user(from: FromInput, privateChat: boolean): TgUser {
    let user: TgUser;
    if (typeof from === 'string') {
      const username = from.replace(/^@/, '');
      const known = this.users.get(this.usernames.get(username.toLowerCase()) ?? 0);
      user = known ?? { id: derivedUserId(username), is_bot: false, first_name: username, username };
    } else {
      const username = from.username?.replace(/^@/, '');
      const id = from.id ?? this.usernames.get(username?.toLowerCase() ?? '') ?? derivedUserId(username ?? from.first_name);
      const { first_name, last_name, language_code } = from;
      user = compact({ id, is_bot: false, first_name, last_name, username, language_code });
    }
    this.users.set(user.id, user);
    if (user.username) this.usernames.set(user.username.toLowerCase(), user.id);
    // A private chat exists once the user writes to the bot; before that the bot cannot write first.
    const { id, first_name, last_name, username } = user;
    if (privateChat) this.chats.set(id, compact({ id, type: 'private' as const, first_name, last_name, username }));
    return user;
  }

  private chat(user: TgUser): TgChat {
    const chat = this.chats.get(user.id);
    if (!chat) throw new ControlError(500, [`no private chat for ${user.id}`]);
    return chat;
  }

  /** Message ids count per chat, shared by both sides (as in private chats and basic groups); after learnt ones, past the highest. */
  private addMessage(chat: TgChat, content: Omit<TgMessage, 'message_id' | 'chat' | 'date'>): TgMessage {
    const inChat = this.messages.get(chat.id) ?? new Map<number, TgMessage>();
    this.messages.set(chat.id, inChat);
    const message: TgMessage = { message_id: Math.max(0, ...inChat.keys()) + 1, ...content, chat, date: now() };
    inChat.set(message.message_id, message);
    return message;
  }

  private replied(chatId: number, id: number | undefined): TgMessage | undefined {
    const message = id === undefined ? undefined : this.messages.get(chatId)?.get(id);
    if (!message) return undefined;
    // "will not contain further reply_to_message fields even if it itself is a reply" (Message reference)
    return compact({ ...message, reply_to_message: undefined });
  }

  private incoming(chat: TgChat, user: TgUser, content: Partial<TgMessage>, replyTo?: number): Update {
    const reply = this.replied(chat.id, replyTo);
    if (replyTo !== undefined && !reply) throw new ControlError(404, [`no message ${replyTo} in chat ${chat.id}`]);
    return this.enqueue('message', this.addMessage(chat, { from: user, ...content, ...(reply ? { reply_to_message: reply } : {}) }));
  }

  private membership(userId: number, status: 'kicked' | 'member'): Update {
    const user = this.users.get(userId);
    const chat = this.chats.get(userId);
    if (!user || !chat) throw new ControlError(404, [`unknown user ${userId}`]);
    if (status === 'kicked') this.blocked.add(userId);
    else this.blocked.delete(userId);
    const member = (s: string) => ({ user: this.bot, status: s, ...(s === 'kicked' ? { until_date: 0 } : {}) });
    const old = status === 'kicked' ? 'member' : 'kicked';
    return this.enqueue('my_chat_member', { chat, from: user, date: now(), old_chat_member: member(old), new_chat_member: member(status) });
  }

  /** raw()'s learning (see there). */
  private learn(update: Update): void {
    for (const type of ['message', 'edited_message', 'channel_post', 'edited_channel_post']) this.learnMessage(update[type]);
    const press = SeenPress.safeParse(update.callback_query);
    if (press.success) {
      this.learnUser(press.data.from);
      this.learnMessage(press.data.message);
      if (!this.callbacks.has(press.data.id)) this.callbacks.set(press.data.id, false);
    }
    const member = SeenMember.safeParse(update.my_chat_member);
    if (member.success) {
      const { chat, from, new_chat_member: bot } = member.data;
      this.learnUser(from);
      this.chats.set(chat.id, compact({ ...chat }));
      if (chat.type === 'private' && bot.user.id === this.bot.id) {
        if (bot.status === 'kicked') this.blocked.add(chat.id);
        else this.blocked.delete(chat.id);
      }
    }
  }

  private learnMessage(value: unknown): void {
    const seen = SeenMessage.safeParse(value);
    if (!seen.success) return;
    const { chat, from, message_id: id, reply_to_message: reply } = seen.data;
    if (from) this.learnUser(from);
    this.chats.set(chat.id, compact({ ...chat }));
    this.learnMessage(reply);
    const inChat = this.messages.get(chat.id) ?? new Map<number, TgMessage>();
    this.messages.set(chat.id, inChat);
    inChat.set(id, clone(value as TgMessage));
  }

  private learnUser(user: z.infer<typeof SeenUser>): void {
    if (user.id === this.bot.id) return;
    this.users.set(user.id, compact({ ...user }));
    if (user.username) this.usernames.set(user.username.toLowerCase(), user.id);
  }

  private store(bytes: Buffer, filePath: string, prefix: string): TgFile {
    const file: StoredFile = {
      file_id: prefix + randomBytes(42).toString('base64url'),
      file_unique_id: `AQAD${randomBytes(9).toString('base64url')}`,
      file_size: bytes.length,
      file_path: filePath,
      bytes,
    };
    this.files.set(file.file_id, file);
    return { file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.file_size };
  }

  // ---- the update queue: long polling and webhook ----

  private enqueue(type: string, payload: unknown): Update {
    const update: Update = { update_id: ++this.lastUpdateId, [type]: clone(payload) };
    // Filtered when created, as the server does ("doesn't affect updates created before the call").
    if (this.allowed ? this.allowed.has(type) : !NOT_BY_DEFAULT.has(type)) {
      this.queue.push(update);
      this.wake();
    }
    return clone(update);
  }

  private wake(): void {
    // The server answers a waiting long poll 1 ms after an update, so a burst goes out together.
    const poll = this.poll;
    if (poll) {
      setTimeout(() => {
        const updates = this.poll === poll ? this.take(poll.offset, poll.limit) : [];
        if (updates.length) this.finishPoll(ok(updates));
      }, 1);
    }
    this.kick();
  }

  /** Forgets confirmed updates and returns the first `limit` of the rest (getUpdates' offset rules). */
  private take(offset: number, limit: number): Update[] {
    if (offset < 0) this.queue = this.queue.slice(offset);
    else if (offset > 0) this.queue = this.queue.filter((u) => u.update_id >= offset);
    return this.queue.slice(0, limit).map(clone);
  }

  private finishPoll(reply: Reply): void {
    const poll = this.poll;
    if (!poll) return;
    this.poll = null;
    clearTimeout(poll.timer);
    poll.resolve(reply);
  }

  private setHook(hook: Webhook | null): void {
    this.webhook = hook;
    this.wakeRetry?.();
    this.kick();
  }

  private kick(): void {
    if (this.stopped || this.pumping || !this.webhook || !this.queue.length) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      this.kick();
    });
  }

  /** Delivers the queue in order, one update at a time; a failed one is retried until it gets a 2xx. */
  private async pump(): Promise<void> {
    for (let hook = this.webhook, update = this.queue[0]; !this.stopped && hook && update; hook = this.webhook, update = this.queue[0]) {
      const error = await this.deliver(hook, update);
      if (error === null) {
        this.queue = this.queue.filter((u) => u !== update);
        this.counters.webhook.delivered++;
        continue;
      }
      this.counters.webhook.failed++;
      Object.assign(hook, { lastErrorDate: now(), lastErrorMessage: error });
      this.logLine(`webhook delivery of ${update.update_id} failed: ${error}`);
      if (this.stopped || hook !== this.webhook) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.webhookRetryMs);
        this.wakeRetry = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeRetry = null;
    }
  }

  /** null when answered 2xx, else the error as getWebhookInfo's last_error_message words it. */
  private async deliver(hook: Webhook, update: Update): Promise<string | null> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (hook.secret) headers['x-telegram-bot-api-secret-token'] = hook.secret;
    try {
      const signal = AbortSignal.any([this.inFlight.signal, AbortSignal.timeout(10_000)]);
      const res = await fetch(hook.url, { method: 'POST', headers, body: JSON.stringify(update), signal });
      await res.arrayBuffer();
      // Chosen: a method call in the answer (a "webhook reply") is not run.
      return res.status >= 200 && res.status <= 299 ? null : `Wrong response from the webhook: ${res.status} ${res.statusText}`;
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'ECONNREFUSED') return 'Connection refused';
      return (error as Error).name === 'TimeoutError' ? 'Read timeout expired' : (cause?.message ?? (error as Error).message);
    }
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    let reply: Reply;
    const file = /^\/file\/bot([^/]*)\/(.+)$/.exec(url.pathname);
    const api = /^\/bot([^/]*)\/([^/]*)$/.exec(url.pathname);
    if (url.pathname.startsWith('/_fake/')) reply = this.control(req.method ?? 'GET', url, body);
    else if (file) reply = this.download(file[1] ?? '', decodeURIComponent(file[2] ?? ''));
    else if (api) reply = await this.api(api[1] ?? '', api[2] ?? '', req, url, body, res);
    else reply = failure(new ApiError(404, 'Not Found'));
    this.logLine(`${req.method} ${api ? api[2] : url.pathname} → ${reply.status}`);
    if (res.headersSent || res.destroyed) return;
    const payload = Buffer.isBuffer(reply.body) || typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  }

  private download(token: string, path: string): Reply {
    if (token !== this.token) return failure(new ApiError(401, 'Unauthorized'));
    const file = [...this.files.values()].find((f) => f.file_path === path);
    return file ? { status: 200, body: file.bytes, contentType: 'application/octet-stream' } : failure(new ApiError(404, 'Not Found'));
  }

  private async api(token: string, name: string, req: IncomingMessage, url: URL, body: Buffer, res: ServerResponse): Promise<Reply> {
    // The server's token check: a malformed token is refused before it is looked up.
    if (!/^[1-9][0-9]*:[^/]+$/.test(token)) return failure(new ApiError(401, 'Unauthorized: invalid token specified'));
    if (token !== this.token) return failure(new ApiError(401, 'Unauthorized'));
    const method = BY_LOWER.get(name.toLowerCase());
    this.counters.calls[name] = (this.counters.calls[name] ?? 0) + 1;
    if (!method) return failure(new ApiError(404, 'Not Found'));
    let params: Params;
    try {
      params = { ...Object.fromEntries(url.searchParams), ...(await bodyParams(req.headers['content-type'] ?? '', body)) };
    } catch (error) {
      if (error instanceof ApiError) return failure(error);
      throw error;
    }
    const fault = this.faults.get(method.toLowerCase());
    if (fault && fault.remaining > 0) {
      fault.remaining--;
      if (fault.status === 429) {
        this.counters.tooManyRequests++;
        return failure(tooMany(fault.retryAfter ?? this.retryAfter));
      }
      this.counters.serverErrors++;
      return fault.status === 502
        ? { status: 502, body: BAD_GATEWAY_HTML, contentType: 'text/html' }
        : failure(new ApiError(500, 'Internal Server Error'));
    }
    const reply = this.call(method, params);
    // A held long poll (set up synchronously by the call) ends quietly when its client goes away.
    const held = reply instanceof Promise ? this.poll : null;
    if (held) res.on('close', () => this.poll === held && this.finishPoll(ok([])));
    return reply;
  }

  private call(method: Method, p: Params): Reply | Promise<Reply> {
    const me = { can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false, can_connect_to_business: false, has_main_web_app: false };
    const handlers: Record<Method, () => Reply | Promise<Reply>> = {
      getMe: () => ok({ ...this.bot, ...me }),
      getUpdates: () => this.getUpdates(p),
      setWebhook: () => this.setWebhook(p),
      deleteWebhook: () => this.setWebhook({ drop_pending_updates: p.drop_pending_updates ?? '' }),
      getWebhookInfo: () => this.webhookInfo(),
      sendMessage: () => ok(this.sendMessage(p)),
      answerCallbackQuery: () => ok(this.answerCallbackQuery(p)),
      editMessageText: () => ok(this.editMessage('editMessageText', p)),
      editMessageReplyMarkup: () => ok(this.editMessage('editMessageReplyMarkup', p)),
      getFile: () => ok(this.getFile(p)),
    };
    try {
      return handlers[method]();
    } catch (error) {
      if (error instanceof ApiError) {
        if (error.code === 429) this.counters.tooManyRequests++;
        return failure(error);
      }
      throw error;
    }
  }

  private getUpdates(p: Params): Reply | Promise<Reply> {
    if (this.webhook) throw new ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
    const offset = int(p.offset, 0);
    const limit = Math.min(100, Math.max(1, int(p.limit, 100))); // the server clamps, it does not refuse
    const timeout = Math.min(LONG_POLL_MAX_S, Math.max(0, int(p.timeout, 0)));
    const allowed = json(p.allowed_updates);
    if (Array.isArray(allowed)) this.allowed = allowed.length ? new Set(allowed.map(String)) : null;
    const updates = this.take(offset, limit);
    if (updates.length || timeout === 0) return ok(updates);
    // Only one long poll at a time: the new one ends the one already waiting (the server does it immediately,
    // then at most once per 3 s; the fake always immediately, chosen).
    this.finishPoll(failure(new ApiError(409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running')));
    return new Promise<Reply>((resolve) => {
      const timer = setTimeout(() => this.finishPoll(ok([])), timeout * 1000);
      this.poll = { offset, limit, resolve, timer };
    });
  }

  private setWebhook(p: Params): Reply {
    const url = p.url ?? '';
    const secret = url ? (p.secret_token ?? '') : '';
    if (url) {
      // Chosen: http and any port are accepted (Telegram wants https on 443, 80, 88 or 8443) so a local receiver works.
      if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw bad('invalid webhook URL specified');
      if (secret.length > 256) throw bad('secret token is too long');
      if (!/^[A-Za-z0-9_-]*$/.test(secret)) throw bad('secret token contains unallowed characters');
    }
    const allowed = json(p.allowed_updates);
    if (url && Array.isArray(allowed)) this.allowed = allowed.length ? new Set(allowed.map(String)) : null;
    if (bool(p.drop_pending_updates)) this.queue = [];
    const unchanged = (this.webhook?.url ?? '') === url && (this.webhook?.secret ?? '') === secret && !bool(p.drop_pending_updates);
    if (url && this.poll) this.finishPoll(failure(new ApiError(409, 'Conflict: terminated by setWebhook request')));
    if (!unchanged) this.setHook(url ? { url, secret } : null);
    const description = url ? (unchanged ? 'Webhook is already set' : 'Webhook was set') : unchanged ? 'Webhook is already deleted' : 'Webhook was deleted';
    return ok(true, description);
  }

  private webhookInfo(): Reply {
    const hook = this.webhook;
    return ok({
      url: hook?.url ?? '',
      has_custom_certificate: false,
      pending_update_count: this.queue.length,
      ...(hook?.lastErrorDate ? { last_error_date: hook.lastErrorDate, last_error_message: hook.lastErrorMessage } : {}),
      ...(hook ? { max_connections: 40, ip_address: '127.0.0.1' } : {}),
      ...(this.allowed ? { allowed_updates: [...this.allowed] } : {}),
    });
  }

  /** The text as Telegram would store it: HTML parsed (and checked); Markdown kept as typed (chosen). */
  private formatted(p: Params): { text: string; entities?: MessageEntity[] } {
    const raw = p.text ?? '';
    if (!raw) throw bad('message text is empty');
    const mode = (p.parse_mode ?? '').toLowerCase();
    if (mode && !['html', 'markdown', 'markdownv2', 'none'].includes(mode)) throw bad('unsupported parse_mode');
    const text = mode === 'html' ? htmlText(raw) : raw;
    if (!text.trim()) throw bad('text must be non-empty');
    const entities = mode ? undefined : json(p.entities); // entities given by the client are kept as sent
    return { text, ...(Array.isArray(entities) && entities.length ? { entities: entities as MessageEntity[] } : {}) };
  }

  private keyboard(p: Params): InlineKeyboardMarkup | undefined {
    if (!p.reply_markup) return undefined;
    const markup = json(p.reply_markup);
    if (markup === undefined) throw bad("can't parse reply keyboard markup JSON object");
    if (!markup || typeof markup !== 'object' || Array.isArray(markup)) throw bad('object expected as reply markup');
    const rows = (markup as { inline_keyboard?: unknown }).inline_keyboard;
    if (rows === undefined) return undefined; // reply keyboards and keyboard removal: accepted, not kept (chosen)
    if (!Array.isArray(rows) || !rows.every(Array.isArray)) throw bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays');
    const button = (b: unknown): InlineButton => {
      const why = (s: string) => bad(`can't parse inline keyboard button: ${s}`);
      if (!b || typeof b !== 'object') throw why('InlineKeyboardButton must be an Object');
      const { text, callback_data: data, url } = b as Record<string, unknown>;
      if (typeof text !== 'string') throw why('Can\'t find field "text"');
      if (typeof url === 'string' && url) return { text, url };
      if (typeof data !== 'string' || !data) throw why('Text buttons are unallowed in the inline keyboard');
      return { text, callback_data: data };
    };
    return { inline_keyboard: (rows as unknown[][]).map((row) => row.map(button)) };
  }

  private sendMessage(p: Params): TgMessage {
    const content = this.formatted(p);
    const markup = this.keyboard(p);
    if (!p.chat_id) throw bad('chat_id is empty');
    const chatId = int(p.chat_id, 0);
    const chat = this.chats.get(chatId);
    if (!chat) throw this.users.has(chatId) ? new ApiError(403, "Forbidden: bot can't initiate conversation with a user") : bad('chat not found');
    const replyParameters = json(p.reply_parameters) as { message_id?: number; allow_sending_without_reply?: boolean } | undefined;
    const replyTo = replyParameters?.message_id ?? (p.reply_to_message_id ? int(p.reply_to_message_id, 0) : undefined);
    const reply = this.replied(chatId, replyTo);
    if (replyTo !== undefined && !reply && !(replyParameters?.allow_sending_without_reply ?? bool(p.allow_sending_without_reply))) {
      throw bad('message to be replied not found');
    }
    // TDLib counts the limit in code points after entity parsing.
    if ([...content.text].length > 4096) throw bad('message is too long');
    if (markup?.inline_keyboard.some((row) => row.some((b) => Buffer.byteLength(b.callback_data ?? '') > 64))) throw bad('BUTTON_DATA_INVALID');
    if (chat.type === 'private' && this.blocked.has(chatId)) throw new ApiError(403, 'Forbidden: bot was blocked by the user');
    this.checkFlood(chatId);
    const message = this.addMessage(chat, { from: this.bot, ...content, ...(reply ? { reply_to_message: reply } : {}), ...(markup ? { reply_markup: markup } : {}) });
    this.record('sendMessage', message, p.parse_mode);
    return clone(message);
  }

  /** Sliding one-second windows per chat and overall; once refused, a chat stays refused for retry_after. */
  private checkFlood(chatId: number): void {
    if (!this.flood) return;
    const at = Date.now();
    const until = Math.max(this.penalties.get(chatId) ?? 0, this.penalties.get('all') ?? 0);
    if (at < until) throw tooMany(Math.ceil((until - at) / 1000));
    this.sends = this.sends.filter((t) => at - t < 1000);
    const inChat = (this.chatSends.get(chatId) ?? []).filter((t) => at - t < 1000);
    const scope = this.sends.length >= this.global ? 'all' : inChat.length >= this.perChat ? chatId : null;
    if (scope !== null) {
      this.penalties.set(scope, at + this.retryAfter * 1000);
      throw tooMany(this.retryAfter);
    }
    this.sends.push(at);
    this.chatSends.set(chatId, [...inChat, at]);
  }

  private record(method: SentRecord['method'], message: TgMessage, parseMode?: string): void {
    this.sentLog.push({ index: this.sentLog.length, method, chatId: message.chat.id, message: clone(message), ...(parseMode ? { parseMode } : {}) });
  }

  private answerCallbackQuery(p: Params): true {
    const id = p.callback_query_id ?? '';
    // Answered twice, or never issued: the same error (QUERY_ID_INVALID).
    if (this.callbacks.get(id) !== false) throw bad('query is too old and response timeout expired or query ID is invalid');
    this.callbacks.set(id, true);
    this.answers.push({ callback_query_id: id, ...(p.text ? { text: p.text } : {}), show_alert: bool(p.show_alert) });
    return true;
  }

  private editMessage(method: 'editMessageText' | 'editMessageReplyMarkup', p: Params): TgMessage {
    const content = method === 'editMessageText' ? this.formatted(p) : undefined;
    const markup = this.keyboard(p);
    if (!p.chat_id) throw bad(p.inline_message_id ? 'inline messages are not supported by the fake' : 'chat_id is empty');
    const chatId = int(p.chat_id, 0);
    if (!this.chats.has(chatId)) throw bad('chat not found');
    const message = this.messages.get(chatId)?.get(int(p.message_id, 0));
    if (!message) throw bad('message to edit not found');
    if (message.from?.id !== this.bot.id) throw bad("message can't be edited");
    // Without reply_markup an edit removes the inline keyboard (both methods, as Telegram does).
    const edited: TgMessage = compact({ ...message, reply_markup: markup, ...(content ? { text: content.text, entities: content.entities } : {}) });
    const same = (a: TgMessage) => JSON.stringify([a.text, a.entities ?? [], a.reply_markup ?? null]);
    if (same(edited) === same(message)) throw NOT_MODIFIED;
    edited.edit_date = now();
    this.messages.get(chatId)?.set(message.message_id, edited);
    this.record(method, edited, p.parse_mode);
    return clone(edited);
  }

  private getFile(p: Params): TgFile & { file_path: string } {
    if (!p.file_id) throw bad('file_id not specified');
    const file = this.files.get(p.file_id);
    if (!file) throw bad('invalid file_id');
    if (file.file_size > MAX_DOWNLOAD) throw bad('file is too big');
    return { file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.file_size, file_path: file.file_path };
  }

  // ---- control API ----

  private control(method: string, url: URL, raw: Buffer): Reply {
    const route = `${method} ${url.pathname.slice('/_fake'.length)}`;
    const q = url.searchParams;
    try {
      // The methods validate their input with zod; the casts only name what they expect.
      const body: unknown = raw.length ? JSON.parse(raw.toString('utf8')) : {};
      const routes: Record<string, () => unknown> = {
        'POST /say': () => this.say(body as SayInput),
        'POST /photo': () => this.sendPhoto(body as PhotoInput),
        'POST /document': () => this.sendDocument(body as DocumentInput),
        'POST /location': () => this.sendLocation(body as LocationInput),
        'POST /edit': () => this.edit(body as EditInput),
        'POST /press': () => this.press(body as PressInput),
        'POST /group': () => this.inGroup(body as GroupInput),
        'POST /block': () => this.block(parse(UserIdSchema, body).userId),
        'POST /unblock': () => this.unblock(parse(UserIdSchema, body).userId),
        'POST /raw': () => this.raw(body as Record<string, unknown>),
        'POST /file': () => this.putFile(body as FileInput),
        'POST /fault': () => this.fault(body as FaultInput),
        'POST /reset': () => this.reset(),
        'GET /sent': () => this.sent({ chatId: q.has('chatId') ? Number(q.get('chatId')) : undefined, since: Number(q.get('since')) || 0 }),
        'GET /callback-answers': () => this.callbackAnswers(),
        'GET /stats': () => this.stats(),
      };
      const run = routes[route];
      return run ? { status: 200, body: { ok: true, result: run() ?? true } } : { status: 404, body: { ok: false, error: ['no such control route'] } };
    } catch (error) {
      if (error instanceof ControlError) return { status: error.status, body: { ok: false, error: error.details } };
      if (error instanceof SyntaxError) return { status: 400, body: { ok: false, error: ['body is not JSON'] } };
      throw error;
    }
  }
}

// ---- request parameters, as the Bot API reads them: query string, JSON, urlencoded or multipart form ----

/** Top-level JSON fields become string parameters; objects and arrays stay JSON text (as in a form). */
function toParams(value: Record<string, unknown>): Params {
  const params: Params = {};
  for (const [key, v] of Object.entries(value)) if (v !== null && v !== undefined) params[key] = typeof v === 'string' ? v : JSON.stringify(v);
  return params;
}

async function bodyParams(contentType: string, body: Buffer): Promise<Params> {
  if (!body.length) return {};
  if (/application\/json/i.test(contentType)) {
    const value = json(body.toString('utf8'));
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad('JSON object expected');
    return toParams(value as Record<string, unknown>);
  }
  if (!/multipart\/form-data|application\/x-www-form-urlencoded/i.test(contentType)) return {};
  const request = new Request('http://local/', { method: 'POST', headers: { 'content-type': contentType }, body });
  const form = await request.formData().catch(() => {
    throw bad("can't parse form data headers"); // chosen among the server's multipart errors
  });
  const params: Params = {};
  for (const [key, value] of form) if (typeof value === 'string') params[key] = value;
  return params;
}

const int = (value: string | undefined, fallback: number): number => {
  const n = Number(value);
  return value === undefined || value === '' || !Number.isFinite(n) ? fallback : Math.trunc(n);
};
const bool = (value: string | undefined): boolean => /^(true|1)$/i.test(value ?? '');
/** A JSON-serialized parameter; undefined when absent or not JSON. */
function json(value: string | undefined): unknown {
  try {
    return value ? JSON.parse(value) : undefined;
  } catch {
    return undefined;
  }
}

/** Telegram omits absent fields; so does the fake. */
function compact<T extends object>(value: T): T {
  for (const key of Object.keys(value) as Array<keyof T>) if (value[key] === undefined || value[key] === '') delete value[key];
  return value;
}
