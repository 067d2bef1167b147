import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeTelegramApi } from '../../../scripts/telegram/fake-api.ts';
import { STATUS_LABELS, type ReportStatus } from '../../../src/core/report.ts';
import { corpusFile, seedCorpusReports, type CorpusReport } from '../../helpers/corpus.ts';
import { eventually, type TestEnv } from '../../helpers/env.ts';
import { telegramGateway, tgContactHash } from '../../helpers/telegram.ts';

/**
 * The Telegram corpus end to end (issue #17): each captured Update is handed to the fake Bot API as
 * Telegram would deliver it (its own update, chat and message ids, to the corpus's bot @lapor1708_bot),
 * the gateway long-polls it, and each file's expected outcome is checked in the store and in what the
 * bot sent back. Files named by file_id are served by the fake with real bytes of their stated size.
 *
 * Two gateways, as the corpus's "Tracking IDs" rule asks: one sees the messages that file reports
 * (nothing seeded, so their dedup keys and message ids are free), the other the messages that refer to
 * reports.json's reports, seeded there as the filing left them — the report, the message that filed it
 * (its receipt, which an edit of that message finds) and the bot's messages naming it (which a reply or a
 * button under them finds). The bot being blocked is played on that second gateway, last, as the corpus
 * dates it. Malformed updates follow on the first, each logged and skipped or filed, never stopping the
 * poller. Finally no name, id or word of the corpus may be in either gateway's log.
 */

// ---- the corpus ----

interface Expectation {
  intent: string;
  privacy: 'public' | 'anonim' | 'rahasia';
  attachments: number;
  notes: string;
}
interface TgUser { id: number; is_bot?: boolean; first_name?: string; last_name?: string; username?: string; language_code?: string }
interface TgChat { id: number; type: string; title?: string; first_name?: string; last_name?: string; username?: string }
interface TgMessage {
  message_id: number;
  from?: TgUser;
  chat: TgChat;
  date: number;
  edit_date?: number;
  text?: string;
  caption?: string;
  photo?: { file_id: string; file_size: number; width: number }[];
  document?: { file_id: string; file_name?: string; mime_type?: string; file_size: number };
  location?: { latitude: number; longitude: number };
  reply_to_message?: TgMessage;
}
interface CorpusUpdate {
  update_id: number;
  message?: TgMessage;
  edited_message?: TgMessage;
  channel_post?: TgMessage;
  callback_query?: { id: string; from: TgUser; message?: TgMessage; data?: string };
  my_chat_member?: { chat: TgChat; from: TgUser; date: number; new_chat_member: { status: string } };
}
type TelegramReport = CorpusReport & { source_update_id?: number; filed_by?: string };

const BOT = { id: 7012345678, username: 'lapor1708_bot', first_name: 'LAPOR! 1708' };
const TOKEN = `${BOT.id}:corpus-fake-token`;

const expectations = JSON.parse(readFileSync(corpusFile('telegram/expect.json'), 'utf8')) as Record<string, Expectation>;
const seeded = (JSON.parse(readFileSync(corpusFile('reports.json'), 'utf8')) as TelegramReport[]).filter((r) => r.channel === 'telegram');
const read = (file: string) => JSON.parse(readFileSync(corpusFile(`telegram/${file}`), 'utf8')) as CorpusUpdate;
const messageOf = (u: CorpusUpdate) => u.message ?? u.edited_message ?? u.channel_post;
const filing = (r: TelegramReport) => (r.filed_by ? messageOf(read(r.filed_by.replace(/^telegram\//, '')))! : undefined);

/** The report an update is about: one it names (in its words, or in the bot message it answers), or the one made by the message it edits. */
function referredReport(u: CorpusUpdate): TelegramReport | undefined {
  const edited = u.edited_message;
  const editOf = edited && seeded.find((r) => filing(r)?.chat.id === edited.chat.id && filing(r)?.message_id === edited.message_id);
  return editOf ?? seeded.find((r) => JSON.stringify(u).includes(r.tracking_id));
}

const cases = Object.entries(expectations)
  .map(([file, e]) => ({ file, ...e, update: read(file) }))
  .sort((a, b) => a.update.update_id - b.update.update_id);
const filedBy = new Set(seeded.map((r) => r.filed_by?.replace(/^telegram\//, '')));
/** Played after the reports exist: the updates about them, and the bot being blocked (dated after all the others in its chat). */
const later = (c: (typeof cases)[number]) => !filedBy.has(c.file) && (Boolean(referredReport(c.update)) || c.intent === 'unreachable');
const firstCases = cases.filter((c) => !later(c));
const laterCases = cases.filter(later);

/** Updates this file makes up (malformed ones, a second block state): numbered after the corpus's, in the order played. */
let nextUpdateId = Math.max(...cases.map((c) => c.update.update_id)) + 100;
let nextMessageId = 1_000;

/** The outcome intake records on a message's receipt, by the corpus's intent. */
const OUTCOMES: Record<string, string> = { new_report: 'new_report', status_query: 'status', follow_up: 'follow_up', satisfied: 'satisfied', dissatisfied: 'dissatisfied', set_privacy: 'set_privacy', help: 'help', empty: 'empty' };

/** Names, ids and words of the citizens (the corpus's and the made-up ones): none may reach a log line. */
const personal = new Set<string>();
function remember(u: CorpusUpdate): void {
  const users = [u.callback_query?.from, u.my_chat_member?.from];
  const chats = [u.my_chat_member?.chat];
  for (const m of [u.message, u.edited_message, u.channel_post, u.callback_query?.message]) {
    if (!m) continue;
    users.push(m.from?.id === BOT.id ? undefined : m.from);
    chats.push(m.chat);
    // The bot's own words are no citizen's; the citizen's are.
    if (m.from?.id !== BOT.id) for (const words of [m.text, m.caption]) if (words) personal.add(words);
    if (m.document?.file_name) personal.add(m.document.file_name);
    if (m.location) personal.add(m.location.latitude.toFixed(6)).add(m.location.longitude.toFixed(6));
  }
  for (const user of users) if (user) for (const v of [String(user.id), user.first_name, user.last_name, user.username]) if (v) personal.add(v);
  for (const chat of chats) if (chat) for (const v of [String(chat.id), chat.title, chat.first_name, chat.last_name, chat.username]) if (v) personal.add(v);
}
for (const c of cases) remember(c.update);

// ---- the gateways ----

interface Gateway { fake: FakeTelegramApi; env: TestEnv; close(): Promise<void> }
let first: Gateway;
let second: Gateway;

beforeAll(async () => {
  // The corpus's bot: its id in the token, as @BotFather's tokens begin.
  [first, second] = await Promise.all([telegramGateway({}, { token: TOKEN, bot: BOT }), telegramGateway({}, { token: TOKEN, bot: BOT })]);
  await seedCorpusReports(second.env, seeded);
  await seedThreads(second.env);
});
afterAll(async () => {
  await Promise.all([first?.close(), second?.close()]);
});

/**
 * What the filing of reports.json's reports left besides the report (seedCorpusReports puts in only
 * the report): the receipt and thread message of the message that filed it, and the bot's messages of
 * the corpus that name it, each under its Telegram id (`<chat>_<message>`), as the adapter records them.
 */
async function seedThreads(env: TestEnv): Promise<void> {
  const { db, keys } = env.runtime;
  const seqOf = async (trackingId: string) => (await db.query<{ seq: string }>('SELECT seq::text FROM reports WHERE tracking_id = $1', [trackingId])).rows[0]!.seq;
  for (const report of seeded) {
    const message = filing(report);
    if (!message || report.source_update_id === undefined) continue;
    const externalId = `${message.chat.id}_${message.message_id}`;
    const seq = await seqOf(report.tracking_id);
    await db.query(
      `INSERT INTO inbound_receipts (channel, external_id, dedup_key, outcome, received_at, report_seq) VALUES ('telegram', $1, $2, 'new_report', $3, $4)`,
      [externalId, `tg_${report.source_update_id}`, new Date(message.date * 1000), seq],
    );
    await db.query(`INSERT INTO messages (report_seq, direction, channel, account, external_id, sealed_text, status) VALUES ($1, 'in', 'telegram', $2, $3, $4, 'received')`, [
      seq,
      String(BOT.id),
      externalId,
      keys.seal('thread', report.summary),
    ]);
  }
  const botMessages = cases.flatMap(({ update }) => [update.message?.reply_to_message, update.callback_query?.message]).filter((m): m is TgMessage => m?.from?.id === BOT.id);
  for (const sent of botMessages) {
    const report = seeded.find((r) => sent.text?.includes(r.tracking_id));
    if (!report) continue;
    const transportId = `${sent.chat.id}_${sent.message_id}`;
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO messages (report_seq, direction, channel, notify_key, kind, sealed_text, status, transport_id, transport_ids)
       VALUES ($1, 'out', 'telegram', $2, 'received', $3, 'sent', $4, ARRAY[$4]) RETURNING id::text`,
      [await seqOf(report.tracking_id), `seed_${transportId}`, keys.seal('thread', sent.text), transportId],
    );
    await db.query(`INSERT INTO outbound_parts (channel, transport_id, message_id) VALUES ('telegram', $1, $2)`, [transportId, rows[0]!.id]);
  }
}

// ---- playing and reading ----

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0]);
const PDF = Buffer.from('%PDF-1.4\n');
/** A file of the size the update states, starting as its type does (what the attachment store reads). */
const bytesOf = (head: Buffer, size: number) => Buffer.concat([head, Buffer.alloc(Math.max(0, size - head.length), 0x20)]);

/** Hands one update to the fake, with the files it names, and waits until the gateway's poller has stored it and moved past it. */
async function play(gw: Gateway, u: CorpusUpdate): Promise<void> {
  const m = messageOf(u);
  // Sizes in order: photo-caption.json gives its 320 px and 1280 px sizes the same file_id, so that id serves the largest.
  for (const size of m?.photo ?? []) gw.fake.putFile({ fileId: size.file_id, bytes: bytesOf(JPEG, size.file_size) });
  if (m?.document) gw.fake.putFile({ fileId: m.document.file_id, bytes: bytesOf(m.document.mime_type === 'application/pdf' ? PDF : JPEG, m.document.file_size) });
  gw.fake.raw(u as unknown as Record<string, unknown>);
  await eventually(async () => ((await offset(gw)) > u.update_id ? true : undefined), 10_000, `update ${u.update_id} polled and stored`);
}

async function offset(gw: Gateway): Promise<number> {
  const { rows } = await gw.env.runtime.db.query<{ cursor: { offset?: number } }>(`SELECT cursor FROM channel_cursors WHERE channel = 'telegram'`);
  return rows[0]?.cursor.offset ?? 0;
}

async function receiptOf(gw: Gateway, updateId: number) {
  const { rows } = await gw.env.runtime.db.query<{ outcome: string; report_seq: string | null; external_id: string }>(
    `SELECT outcome, report_seq::text, external_id FROM inbound_receipts WHERE channel = 'telegram' AND dedup_key = $1`,
    [`tg_${updateId}`],
  );
  return rows[0];
}
const storedReceipt = (gw: Gateway, updateId: number) => eventually(async () => receiptOf(gw, updateId), 10_000, `the receipt of update ${updateId}`);

async function reportBySeq(gw: Gateway, seq: string) {
  const { rows } = await gw.env.runtime.db.query<{ tracking_id: string; status: ReportStatus; anonim: boolean; rahasia: boolean; text: string; contact_hash: string }>(
    'SELECT tracking_id, status, anonim, rahasia, text, contact_hash FROM reports WHERE seq = $1',
    [seq],
  );
  return rows[0]!;
}
const reportById = async (gw: Gateway, trackingId: string) => {
  const { rows } = await gw.env.runtime.db.query<{ seq: string }>('SELECT seq::text FROM reports WHERE tracking_id = $1', [trackingId]);
  return { seq: rows[0]!.seq, ...(await reportBySeq(gw, rows[0]!.seq)) };
};
const reportCount = async (gw: Gateway) => (await gw.env.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM reports')).rows[0]!.n;
const reportsOfChat = async (gw: Gateway, chatId: number) =>
  (await gw.env.runtime.db.query<{ tracking_id: string; text: string }>('SELECT tracking_id, text FROM reports WHERE contact_hash = $1 ORDER BY seq', [tgContactHash(gw.env, chatId)])).rows;
const attachmentsOf = async (gw: Gateway, seq: string) =>
  (await gw.env.runtime.db.query<{ content_type: string; size: number }>('SELECT content_type, size FROM attachments WHERE report_seq = $1 ORDER BY id', [seq])).rows;

/** The bot's answer in a chat, given as a reply to the message with that id, once it is sent. */
const replyTo = (gw: Gateway, chatId: number, messageId: number, what: string) =>
  eventually(async () => gw.fake.sent({ chatId }).find((s) => s.message.reply_to_message?.message_id === messageId), 10_000, what);

/** A reply the gateway queued for this update (its notify key) and what became of it. */
async function replyRow(gw: Gateway, updateId: number, kind: string) {
  const { rows } = await gw.env.runtime.db.query<{ status: string }>(`SELECT status FROM messages WHERE direction = 'out' AND notify_key = $1`, [`n_tg_${updateId}_${kind}`]);
  return rows[0];
}

/** One case of the corpus: its update played, its outcome checked. */
async function check(gw: Gateway, c: (typeof cases)[number]): Promise<void> {
  const { update: u, intent } = c;
  const m = messageOf(u);
  const chatId = m?.chat.id ?? u.callback_query?.message?.chat.id ?? u.my_chat_member!.chat.id;
  const privateChat = m?.from && m.chat.type !== 'private' ? m.from.id : undefined;
  const sentBefore = gw.fake.sent().length;
  const reportsBefore = await reportCount(gw);
  const referred = referredReport(u);
  const before = referred ? await attachmentsOf(gw, (await reportById(gw, referred.tracking_id)).seq) : [];
  await play(gw, u);

  if (intent === 'ignored') {
    // Logged, never a report, never answered; a group gets at most the hint to write privately.
    expect(await receiptOf(gw, u.update_id)).toBeUndefined();
    const toChat = gw.fake.sent({ chatId, since: sentBefore });
    expect(toChat.length).toBeLessThanOrEqual(m?.chat.type === 'supergroup' || m?.chat.type === 'group' ? 1 : 0);
    for (const s of toChat) expect(s.message.text).toMatch(/chat pribadi|private chat/);
    if (privateChat) expect(gw.fake.sent({ chatId: privateChat, since: sentBefore })).toEqual([]);
    expect(await reportCount(gw)).toBe(reportsBefore);
    return;
  }
  if (intent === 'unreachable') {
    expect(await receiptOf(gw, u.update_id)).toBeUndefined();
    expect(gw.fake.sent({ chatId, since: sentBefore })).toEqual([]);
    return;
  }

  // Once intake has nothing left, the update's receipt is there or never will be.
  await eventually(async () => intakeIdle(gw), 10_000, 'intake idle');
  const recorded = await receiptOf(gw, u.update_id);
  expect(recorded?.outcome).toBe(OUTCOMES[intent]);
  if (!recorded) return;
  const lang = (u.callback_query?.from ?? m?.from)?.language_code?.startsWith('en') ? 'en' : 'id';
  const answeredMessage = m?.message_id ?? u.callback_query!.message!.message_id;
  const reply = await replyTo(gw, chatId, answeredMessage, `the answer to ${c.file}`);

  if (intent === 'help') {
    expect(recorded.report_seq).toBeNull();
    expect(reply.message.text).toMatch(lang === 'en' ? /CEK <number>/ : /CEK <nomor>/);
    return;
  }
  const report = await reportBySeq(gw, recorded.report_seq!);
  expect(reply.message.text).toContain(report.tracking_id);
  expect(report.contact_hash).toBe(tgContactHash(gw.env, chatId));

  if (intent === 'new_report') {
    expect(seeded.map((r) => r.tracking_id)).not.toContain(report.tracking_id);
    expect({ anonim: report.anonim, rahasia: report.rahasia }).toEqual({ anonim: c.privacy === 'anonim', rahasia: c.privacy === 'rahasia' });
    // The citizen's words without the command.
    const words = (m!.text ?? m!.caption ?? '').replace(/^\/\w+\s*/, '');
    expect(report.text).toBe(words);
    const files = await attachmentsOf(gw, recorded.report_seq!);
    expect(files).toHaveLength(c.attachments);
    // Of a photo's sizes, the largest is kept.
    if (m!.photo) expect(files[0]).toEqual({ content_type: 'image/jpeg', size: Math.max(...m!.photo.map((p) => p.file_size)) });
    return;
  }

  expect(report.tracking_id).toBe(referred?.tracking_id);
  if (intent === 'status_query') {
    expect(reply.message.text).toContain(STATUS_LABELS[report.status][lang]);
    expect(await reportsOfChat(gw, chatId)).toEqual([{ tracking_id: report.tracking_id, text: referred!.summary }]);
    return;
  }
  if (intent === 'follow_up') {
    // In the report's thread, with what the message carried.
    const { rows } = await gw.env.runtime.db.query<{ sealed_text: string }>(`SELECT sealed_text FROM messages WHERE report_seq = $1 AND direction = 'in' AND external_id = $2`, [
      recorded.report_seq,
      recorded.external_id,
    ]);
    expect(rows).toHaveLength(1);
    const thread = gw.env.runtime.keys.open('thread', rows[0]!.sealed_text) as string;
    if (m!.location) expect(thread).toContain(`${m!.location.latitude.toFixed(6)}, ${m!.location.longitude.toFixed(6)}`);
    else expect(thread).toContain((m!.text ?? m!.caption ?? '').replace(report.tracking_id, '').trim());
    const after = await attachmentsOf(gw, recorded.report_seq!);
    expect(after.length - before.length).toBe(c.attachments);
    if (m!.document) expect(after.at(-1)).toEqual({ content_type: m!.document.mime_type, size: m!.document.file_size });
    expect(await reportsOfChat(gw, chatId)).toHaveLength(1);
    return;
  }
  if (intent === 'set_privacy') {
    const pressed = u.callback_query!;
    expect(gw.fake.callbackAnswers().filter((a) => a.callback_query_id === pressed.id)).toHaveLength(1);
    expect({ anonim: report.anonim, rahasia: report.rahasia }).toEqual({ anonim: c.privacy === 'anonim', rahasia: c.privacy === 'rahasia' });
    return;
  }
  throw new Error(`no check for intent ${intent}`);
}

/** A private text message from a corpus user (or a made-up one), numbered after the corpus. */
function text(from: TgUser, words: string, extra: Partial<TgMessage> = {}): CorpusUpdate {
  const { id, first_name, last_name, username } = from;
  return {
    update_id: nextUpdateId++,
    message: { message_id: nextMessageId++, from: { is_bot: false, ...from }, chat: { id, type: 'private', first_name, last_name, username }, date: Math.floor(Date.now() / 1000), text: words, ...extra },
  };
}
const madeUp = (u: CorpusUpdate) => {
  remember(u);
  return u;
};

// ---- the tests ----

describe('Telegram corpus: the messages that file reports (nothing seeded)', () => {
  it.each(firstCases)('$file: $intent', async (c) => {
    await check(first, c);
  });
});

describe('Telegram corpus: the messages about reports.json\'s reports (seeded), then the bot blocked', () => {
  for (const c of laterCases) {
    it(`${c.file}: ${c.intent}`, async () => {
      await check(second, c);
    });
  }

  const rina = () => read('document.json').message!.from!;
  const ahmad = () => read('photo-caption.json').message!.from!;
  const bayu = () => read('plain-text.json').message!.from!;

  it('a follow-up naming someone else\'s report is not added to it, and tells nothing of it', async () => {
    const document = read('document.json').message!;
    const owned = seeded.find((r) => document.caption!.startsWith(r.tracking_id))!;
    expect(owned.owner).toBe(`tg:${rina().id}`);
    const report = await reportById(second, owned.tracking_id);
    const u = madeUp(text(ahmad(), `${owned.tracking_id} ini tambahan dari orang lain`));
    await play(second, u);
    expect((await storedReceipt(second, u.update_id)).outcome).toBe('not_owner');
    const answer = await replyTo(second, ahmad().id, u.message!.message_id, 'the answer to the stranger');
    expect(answer.message.text).toMatch(/not found/); // Ahmad writes in English (language_code en)
    const { rows } = await second.env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE report_seq = $1 AND external_id = $2`, [report.seq, `${ahmad().id}_${u.message!.message_id}`]);
    expect(rows[0]!.n).toBe(0);
  });

  it('our own Rahasiakan button under that receipt makes the report confidential, answered once and confirmed', async () => {
    const pressed = read('callback-rahasia.json').callback_query!;
    // The corpus's own press (the earlier bot's button) was answered once: no endless spinner.
    expect(second.fake.callbackAnswers().filter((a) => a.callback_query_id === pressed.id)).toHaveLength(1);
    const report = seeded.find((r) => pressed.data!.endsWith(r.tracking_id))!;
    const u: CorpusUpdate = { update_id: nextUpdateId++, callback_query: { ...pressed, id: `${pressed.id}1`, data: `p:r:${report.tracking_id}` } };
    const sentBefore = second.fake.sent({ chatId: bayu().id }).length;
    await play(second, u);
    expect((await storedReceipt(second, u.update_id)).outcome).toBe('set_privacy');
    expect((await reportById(second, report.tracking_id)).rahasia).toBe(true);
    const confirmed = await eventually(async () => second.fake.sent({ chatId: bayu().id }).slice(sentBefore).find((s) => s.message.text?.includes(report.tracking_id)), 10_000, 'the confirmation');
    expect(confirmed.message.text).toMatch(/dirahasiakan/);
    expect(second.fake.callbackAnswers().filter((a) => a.callback_query_id === u.callback_query!.id)).toHaveLength(1);
  });

  it('unreachable, then reachable: while blocked a reply is recorded undeliverable and not sent; after unblocking it is sent', async () => {
    const blocked = read('my-chat-member-blocked.json').my_chat_member!;
    const wulan = blocked.from;
    const sentBefore = second.fake.sent({ chatId: wulan.id }).length;
    const whileBlocked = madeUp(text(wulan, '/bantuan'));
    await play(second, whileBlocked);
    expect((await storedReceipt(second, whileBlocked.update_id)).outcome).toBe('help');
    await eventually(async () => ((await replyRow(second, whileBlocked.update_id, 'help'))?.status === 'failed' ? true : undefined), 10_000, 'the help reply recorded undeliverable');
    expect(second.fake.sent({ chatId: wulan.id }).length).toBe(sentBefore);

    const unblocked = { ...blocked, date: blocked.date + 60, old_chat_member: blocked.new_chat_member, new_chat_member: { ...blocked.new_chat_member, status: 'member', until_date: undefined } };
    await play(second, { update_id: nextUpdateId++, my_chat_member: unblocked } as CorpusUpdate);
    const again = madeUp(text(wulan, '/bantuan'));
    await play(second, again);
    expect((await replyTo(second, wulan.id, again.message!.message_id, 'the help once unblocked')).message.text).toMatch(/CEK <nomor>/);
  });
});

/** Nothing left in the intake queue (jobs waiting or running). */
async function intakeIdle(gw: Gateway): Promise<true | undefined> {
  const counts = await gw.env.runtime.queues.inbound.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  return Object.values(counts).every((n) => n === 0) ? true : undefined;
}

describe('malformed updates through the poller: logged and skipped or filed, never a crash; the next one is filed', () => {
  let nextCitizen = 7_345_600_001;
  const citizen = (first_name: string) => ({ id: nextCitizen++, is_bot: false, first_name, language_code: 'id' });
  const logged = (gw: Gateway, updateId: number, msg: RegExp) =>
    eventually(async () => gw.env.logs.map((l) => JSON.parse(l) as { updateId?: number; msg?: string; reason?: string }).find((l) => l.updateId === updateId && msg.test(l.msg ?? '')), 5_000, `a log line for ${updateId}`);

  it('update types the gateway does not read (a reaction, a boost, a poll answer): logged, nothing filed or sent', async () => {
    const sentBefore = first.fake.sent().length;
    const user = { id: 7_345_612_111, is_bot: false, first_name: 'Sekar' };
    const chat = { id: user.id, type: 'private', first_name: 'Sekar' };
    const updates = [
      { update_id: nextUpdateId++, message_reaction: { chat, message_id: 1, user, date: 1741160000, old_reaction: [], new_reaction: [{ type: 'emoji', emoji: '👍' }] } },
      { update_id: nextUpdateId++, chat_boost: { chat: { id: -1001765432109, type: 'channel', title: 'Info Warga' }, boost: { boost_id: 'b1', add_date: 1741160000, expiration_date: 1743160000, source: { source: 'premium', user } } } },
      { update_id: nextUpdateId++, poll_answer: { poll_id: '5312', user, option_ids: [0] } },
    ];
    personal.add('Sekar').add(String(user.id));
    for (const u of updates) {
      await play(first, u as CorpusUpdate);
      expect((await logged(first, u.update_id, /not for us/)).reason).toBe('not a message');
      expect(await receiptOf(first, u.update_id)).toBeUndefined();
    }
    expect(first.fake.sent().length).toBe(sentBefore);
  });

  it('a private message without `from`: skipped as having no sender', async () => {
    const u = madeUp(text(citizen('Larasati'), 'pesan tanpa pengirim: jalan rusak di Gang Mawar'));
    delete u.message!.from;
    await play(first, u);
    expect((await logged(first, u.update_id, /not for us/)).reason).toBe('no sender');
    expect(await receiptOf(first, u.update_id)).toBeUndefined();
    expect(first.fake.sent({ chatId: u.message!.chat.id })).toEqual([]);
  });

  it('not the Bot API\'s shape (message_id a string, chat null): logged as such and skipped', async () => {
    const before = first.env.logs.filter((l) => l.includes('not the shape')).length;
    const u = { update_id: nextUpdateId++, message: { message_id: 'tiga', chat: null, text: 'halo' } };
    await play(first, u as unknown as CorpusUpdate);
    expect(first.env.logs.filter((l) => l.includes('not the shape')).length).toBe(before + 1);
    expect(await receiptOf(first, u.update_id)).toBeUndefined();
  });

  it('a photo with a caption over Telegram\'s 1,024 characters (Premium allows 4,096): filed with its photo', async () => {
    const user = citizen('Puspita');
    const caption = `Banjir rob di pesisir Muara Baru, ${'air laut naik ke rumah warga setiap sore, '.repeat(40)}mohon tanggul diperbaiki.`;
    expect(caption.length).toBeGreaterThan(1_024);
    const u = madeUp(text(user, '', { photo: [{ file_id: `AgACAgUAAxkBAAIcaption${nextUpdateId}`, file_size: 2_048, width: 320 }], caption }));
    delete u.message!.text;
    await play(first, u);
    const recorded = await storedReceipt(first, u.update_id);
    expect(recorded.outcome).toBe('new_report');
    expect((await reportBySeq(first, recorded.report_seq!)).text).toBe(caption);
    expect(await attachmentsOf(first, recorded.report_seq!)).toEqual([{ content_type: 'image/jpeg', size: 2_048 }]);
  });

  it('a caption over our own limit (64 Ki characters): refused with the reason in the log, nothing filed', async () => {
    const user = citizen('Anjani');
    const caption = `Sampah menumpuk di TPS Jl. Cempaka ${'x'.repeat(70_000)}`;
    const u = madeUp(text(user, '', { caption, document: { file_id: `BQACAgUAAxkBAAIbig${nextUpdateId}`, file_name: 'bukti-anjani.pdf', mime_type: 'application/pdf', file_size: 1_000 } }));
    delete u.message!.text;
    await play(first, u);
    const line = await logged(first, u.update_id, /refused/);
    expect(JSON.stringify(line)).toMatch(/at most 65536 characters/);
    expect(await receiptOf(first, u.update_id)).toBeUndefined();
    expect(await reportsOfChat(first, user.id)).toEqual([]);
  });

  it('lone surrogates in the words and the name: filed, each replaced by U+FFFD', async () => {
    const user = citizen('Sri\uDC00wahyuni');
    personal.add('wahyuni');
    const u = madeUp(text(user, 'pohon tumbang \uD83D di jalan \uDC00 Kartini, menutup separuh jalan'));
    await play(first, u);
    const recorded = await storedReceipt(first, u.update_id);
    expect(recorded.outcome).toBe('new_report');
    expect((await reportBySeq(first, recorded.report_seq!)).text).toBe('pohon tumbang \uFFFD di jalan \uFFFD Kartini, menutup separuh jalan');
  });

  it('after all of them the poller is still polling: the next message is filed and answered', async () => {
    const user = citizen('Kirana');
    const u = madeUp(text(user, 'lampu penerangan jalan di Jl. Flamboyan mati sudah dua minggu'));
    await play(first, u);
    const recorded = await storedReceipt(first, u.update_id);
    expect(recorded.outcome).toBe('new_report');
    const reply = await replyTo(first, user.id, u.message!.message_id, 'the receipt');
    expect(reply.message.text).toContain((await reportBySeq(first, recorded.report_seq!)).tracking_id);
    expect(first.env.runtime.adapters.get('telegram')!.links!()).toMatchObject([{ ok: true, state: 'polling' }]);
    expect(first.fake.stats().pendingUpdates).toBe(0);
  });
});

describe('logs', () => {
  it('hold no name, chat id, username, place or words of the corpus (nor of the made-up citizens)', () => {
    const logs = [...first.env.logs, ...second.env.logs].join('\n');
    expect(logs.length).toBeGreaterThan(0);
    expect(personal.size).toBeGreaterThan(20);
    // As a word: a short name may occur inside a random id by chance, a leaked one stands alone.
    const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    for (const secret of [...personal].filter((p) => p.length > 3)) {
      expect(new RegExp(`(?<![A-Za-z0-9])${escape(secret.slice(0, 500))}(?![A-Za-z0-9])`).test(logs), secret.slice(0, 80)).toBe(false);
    }
  });
});
