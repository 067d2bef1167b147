import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeTelegramApi } from '../../../scripts/telegram/fake-api.ts';
import { eventually, type TestEnv } from '../../helpers/env.ts';
import { account, call } from '../../helpers/operators.ts';
import { telegramGateway, tgContactHash, tgUsers } from '../../helpers/telegram.ts';

/**
 * Telegram end to end over HTTP: a fake Bot API (scripts/telegram/fake-api.ts) holds what citizens
 * write to the bot; the gateway long-polls getUpdates, files reports in PostgreSQL and answers with
 * sendMessage in the chat.
 */

let fake: FakeTelegramApi;
let env: TestEnv;
let close: () => Promise<void>;
const newUser = tgUsers();

beforeAll(async () => {
  ({ fake, env, close } = await telegramGateway());
});
afterAll(async () => {
  await close?.();
});

async function reportsOf(chatId: number) {
  const { rows } = await env.runtime.db.query<{ seq: string; tracking_id: string; text: string; rahasia: boolean }>(
    `SELECT seq::text, tracking_id, text, rahasia FROM reports WHERE contact_hash = $1 ORDER BY seq`,
    [tgContactHash(env, chatId)],
  );
  return rows;
}

async function oneReportOf(chatId: number) {
  const rows = await eventually(async () => {
    const found = await reportsOf(chatId);
    return found.length ? found : undefined;
  }, 10_000, `a report of chat ${chatId}`);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

const answer = (chatId: number, matching: RegExp) =>
  eventually(async () => fake.sent({ chatId }).find((s) => matching.test(s.message.text ?? '')), 10_000, `a message to ${chatId} matching ${matching}`);

describe('a citizen writes to the bot', () => {
  it('plain text files one report, answered in the chat with its tracking ID; /status tells its state', async () => {
    const user = newUser();
    fake.say({ from: user, text: 'lampu jalan mati di Jl. Melati sejak seminggu' });
    const report = await oneReportOf(user.id);
    expect(report.text).toBe('lampu jalan mati di Jl. Melati sejak seminggu');
    expect((await answer(user.id, /diterima/)).message.text).toContain(report.tracking_id);
    fake.say({ from: user, text: `/status ${report.tracking_id}` });
    expect((await answer(user.id, /Status laporan/)).message.text).toContain(report.tracking_id);
  });

  it('/lapor and /rahasia file reports; /start and /bantuan explain', async () => {
    const user = newUser();
    fake.say({ from: user, text: '/rahasia kepala desa minta jatah BLT' });
    const report = await oneReportOf(user.id);
    expect(report).toMatchObject({ rahasia: true, text: 'kepala desa minta jatah BLT' });
    const other = newUser();
    fake.say({ from: other, text: '/start' });
    await answer(other.id, /RAHASIA/);
    expect(await reportsOf(other.id)).toHaveLength(0);
  });

  it('an edit and a reply to the bot add to the report; nothing is filed twice across restarts of the poller', async () => {
    const user = newUser();
    const first = fake.say({ from: user, text: 'got mampet di gang Kenari' });
    const report = await oneReportOf(user.id);
    const receipt = await answer(user.id, /diterima/);
    const messageId = (first.message as { message_id: number }).message_id;
    fake.edit({ from: user, messageId, text: 'got mampet di gang Kenari, air meluap ke rumah' });
    fake.say({ from: user, text: 'sudah tiga hari begini', replyTo: receipt.message.message_id });
    await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE report_seq = $1 AND direction = 'in'`, [report.seq]);
      return rows[0]!.n === 3 ? true : undefined;
    }, 10_000, 'the edit and the reply in the thread');
    expect(await reportsOf(user.id)).toHaveLength(1);

    // The offset in PostgreSQL: a poller started again reads nothing it has stored.
    const adapter = env.runtime.adapters.get('telegram')!;
    await adapter.stop!();
    await adapter.start!();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await reportsOf(user.id)).toHaveLength(1);
    expect(fake.sent({ chatId: user.id }).filter((s) => /diterima dengan nomor/.test(s.message.text ?? ''))).toHaveLength(1);
  });

  it('files nothing from a group, and logs no name or words', async () => {
    const user = { ...newUser(), first_name: 'Sulastri' };
    fake.inGroup({ from: user, groupId: -100123, title: 'Warga RW 05', text: 'jalan rusak parah di RW 05' });
    fake.say({ from: user, text: 'trotoar ambles di depan pasar Kosambi' });
    await oneReportOf(user.id);
    const logs = env.logs.join('\n');
    for (const secret of ['Sulastri', 'trotoar ambles', 'jalan rusak parah']) expect(logs).not.toContain(secret);
  });
});

describe('files', () => {
  const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(3_000, 9)]);
  const PDF = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(2_000, 32)]);
  const EXE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(2_000, 1)]);
  const attachmentsOf = async (seq: string) =>
    (await env.runtime.db.query<{ content_type: string; size: number }>('SELECT content_type, size FROM attachments WHERE report_seq = $1 ORDER BY id', [seq])).rows;

  it('a photo with a caption is a report with its photo; a PDF in reply adds to it; an executable named .jpg is left out', async () => {
    const user = newUser();
    fake.sendPhoto({ from: user, caption: 'sampah menumpuk di pinggir kali Cikapundung', bytes: JPEG, fileName: 'kali.jpg' });
    const report = await oneReportOf(user.id);
    expect(report.text).toBe('sampah menumpuk di pinggir kali Cikapundung');
    const receipt = await answer(user.id, /diterima dengan nomor/);
    expect(await attachmentsOf(report.seq)).toEqual([{ content_type: 'image/jpeg', size: JPEG.length }]);

    fake.sendDocument({ from: user, caption: `${report.tracking_id} surat keterangan RT`, bytes: PDF, fileName: 'surat.pdf', mimeType: 'application/pdf' });
    await answer(user.id, /Tambahan informasi/);
    fake.sendDocument({ from: user, caption: `${report.tracking_id} foto lagi`, bytes: EXE, fileName: 'foto.jpg', mimeType: 'image/jpeg' });
    await eventually(async () => (fake.sent({ chatId: user.id }).filter((s) => /Tambahan informasi/.test(s.message.text ?? '')).length === 2 ? true : undefined));
    expect(await attachmentsOf(report.seq)).toEqual([
      { content_type: 'image/jpeg', size: JPEG.length },
      { content_type: 'application/pdf', size: PDF.length },
    ]);
    expect(receipt).toBeDefined();
  });

  it('a photo and a place sent without words just after a report join it; a photo alone is a report that asks for words', async () => {
    const user = newUser();
    fake.say({ from: user, text: 'tiang listrik miring hampir roboh di Jl. Dago atas' });
    const report = await oneReportOf(user.id);
    await answer(user.id, /diterima dengan nomor/);
    fake.sendPhoto({ from: user, bytes: JPEG, fileName: 'tiang.jpg' });
    fake.sendLocation({ from: user, latitude: -6.870123, longitude: 107.61845 });
    await eventually(async () => (fake.sent({ chatId: user.id }).filter((s) => /Tambahan informasi/.test(s.message.text ?? '')).length === 2 ? true : undefined), 10_000, 'both added');
    expect(await reportsOf(user.id)).toHaveLength(1);
    expect(await attachmentsOf(report.seq)).toEqual([{ content_type: 'image/jpeg', size: JPEG.length }]);

    const other = newUser();
    fake.sendPhoto({ from: other, bytes: JPEG, fileName: 'lubang.jpg' });
    const alone = await oneReportOf(other.id);
    expect(alone.text).toBe('[foto]');
    expect(await attachmentsOf(alone.seq)).toEqual([{ content_type: 'image/jpeg', size: JPEG.length }]);
    // Too short to act on: the citizen is asked what, where and when (not told the message was empty).
    await answer(other.id, /terlalu singkat/);
    expect(fake.sent({ chatId: other.id }).some((s) => /kosong/.test(s.message.text ?? ''))).toBe(false);
    // The words that follow are that report's text, not a report of their own; it is back in line
    // for verification.
    fake.say({ from: other, text: 'lubang besar di Jl. Cikutra depan SD, sudah dua motor jatuh' });
    await answer(other.id, /Tambahan informasi/);
    const completed = await reportsOf(other.id);
    expect(completed).toHaveLength(1);
    expect(completed[0]!.text).toBe('lubang besar di Jl. Cikutra depan SD, sudah dua motor jatuh\n[foto]');
    const { rows } = await env.runtime.db.query<{ status: string }>('SELECT status FROM reports WHERE seq = $1', [alone.seq]);
    expect(rows[0]!.status).toBe('belum_terverifikasi');
  });
});

describe('buttons', () => {
  it('under the receipt: Rahasiakan makes the report confidential, answered once and confirmed in the chat', async () => {
    const user = newUser();
    fake.say({ from: user, text: 'oknum petugas parkir minta uang lebih di pasar baru' });
    const report = await oneReportOf(user.id);
    const receipt = await answer(user.id, /diterima dengan nomor/);
    const buttons = receipt.message.reply_markup?.inline_keyboard.flat() ?? [];
    const rahasia = buttons.find((b) => b.text === 'Rahasiakan');
    expect(rahasia?.callback_data).toBe(`p:r:${report.tracking_id}`);
    const press = fake.press({ from: user, messageId: receipt.message.message_id, data: rahasia!.callback_data! });
    await answer(user.id, /dirahasiakan/);
    expect((await reportsOf(user.id))[0]!.rahasia).toBe(true);
    const callbackId = (press.callback_query as { id: string }).id;
    expect(fake.callbackAnswers().filter((a) => a.callback_query_id === callbackId)).toHaveLength(1);
  });

  it('a button naming someone else\'s report changes nothing and tells nothing', async () => {
    const owner = newUser();
    fake.say({ from: owner, text: 'jembatan gantung di Desa Cikoneng putus' });
    const report = await oneReportOf(owner.id);
    const stranger = newUser();
    fake.say({ from: stranger, text: '/bantuan' });
    const help = await answer(stranger.id, /RAHASIA/);
    fake.press({ from: stranger, messageId: help.message.message_id, data: `p:r:${report.tracking_id}` });
    const reply = await answer(stranger.id, /tidak ditemukan/);
    expect(reply.message.text).not.toContain('Cikoneng');
    expect((await reportsOf(owner.id))[0]!.rahasia).toBe(false);
  });

  it('a button that is not ours is confirmed and ignored', async () => {
    const user = newUser();
    fake.say({ from: user, text: '/start' });
    const help = await answer(user.id, /RAHASIA/);
    const press = fake.press({ from: user, messageId: help.message.message_id, data: 'hapus-semua' });
    const callbackId = (press.callback_query as { id: string }).id;
    await eventually(async () => fake.callbackAnswers().find((a) => a.callback_query_id === callbackId));
    expect(fake.sent({ chatId: user.id })).toHaveLength(1);
  });
});

describe('a citizen who blocks the bot', () => {
  it('is not written to while blocked (the reply recorded undeliverable), and is again once unblocked', async () => {
    const user = newUser();
    fake.say({ from: user, text: 'pipa PDAM bocor di Jl. Sawo' });
    const report = await oneReportOf(user.id);
    await answer(user.id, /diterima dengan nomor/);
    fake.block(user.id);
    const callsBefore = () => fake.stats().calls.sendMessage ?? 0;
    await new Promise((r) => setTimeout(r, 300));
    const before = callsBefore();
    fake.say({ from: user, text: `/status ${report.tracking_id}` });
    await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ status: string }>(`SELECT status FROM messages WHERE report_seq = $1 AND direction = 'out' AND kind = 'status'`, [report.seq]);
      return rows[0]?.status === 'failed' ? true : undefined;
    }, 10_000, 'the status reply recorded undeliverable');
    expect(callsBefore()).toBe(before);

    fake.unblock(user.id);
    await new Promise((r) => setTimeout(r, 300));
    fake.say({ from: user, text: `/status ${report.tracking_id}` });
    await answer(user.id, /Status laporan/);
  });
});

describe('in a group', () => {
  it('files nothing, and a command to the bot is answered once with where to write', async () => {
    const user = newUser();
    const groupId = -100_000_000 - Math.floor(Math.random() * 1e6);
    fake.inGroup({ from: user, groupId, title: 'Warga RW 07', text: '/lapor jalan rusak di RW 07' });
    fake.inGroup({ from: user, groupId, title: 'Warga RW 07', text: '/lapor lampu mati' });
    fake.inGroup({ from: user, groupId, title: 'Warga RW 07', text: 'ada yang tahu cara lapor?' });
    const hint = await eventually(async () => fake.sent({ chatId: groupId })[0], 10_000, 'the hint in the group');
    expect(hint.message.text).toMatch(/chat pribadi/);
    await new Promise((r) => setTimeout(r, 500));
    expect(fake.sent({ chatId: groupId })).toHaveLength(1);
    expect(await reportsOf(user.id)).toHaveLength(0);
  });
});

describe('an operator works the report', () => {
  it('the answer reaches the chat with PUAS / TIDAK PUAS buttons; PUAS closes the report', async () => {
    const user = newUser();
    fake.say({ from: user, text: 'listrik padam tiap malam di Desa Cibiru' });
    const report = await oneReportOf(user.id);
    const admin = await account(env, 'super_admin');
    const pln = await account(env, 'agency_admin', { agency: 'pln' });
    const liaison = await account(env, 'liaison', { unit: 'pln-uid-jabar' });
    const step = async (who: typeof admin, action: string, body: unknown) => {
      const res = await call(env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/${action}`, who, body);
      expect(res.statusCode, res.body).toBe(200);
    };
    await step(admin, 'verify', { kind: 'pengaduan', weight: 'sedang' });
    await step(admin, 'dispose', { agency: 'pln' });
    await step(pln, 'dispose', { unit: 'pln-uid-jabar' });
    await step(liaison, 'answer', { text: 'Trafo sudah diganti, listrik menyala kembali.' });
    const answered = await answer(user.id, /menanggapi/);
    expect(answered.message.text).toContain('Trafo sudah diganti');
    const puas = answered.message.reply_markup?.inline_keyboard.flat().find((b) => b.text === 'PUAS');
    expect(puas?.callback_data).toBe(`s:y:${report.tracking_id}`);
    fake.press({ from: user, messageId: answered.message.message_id, data: puas!.callback_data! });
    await answer(user.id, /penilaian Anda/);
    await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ status: string }>('SELECT status FROM reports WHERE seq = $1', [report.seq]);
      return rows[0]!.status === 'selesai' ? true : undefined;
    }, 10_000, 'the report closed by PUAS');
  });
});
