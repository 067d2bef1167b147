import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { weightedLength } from '../../../adapters/x/weighted.ts';
import type { FakeXApi } from '../../../scripts/x/fake-api.ts';
import { eventually, type TestEnv } from '../../helpers/env.ts';
import { account, call } from '../../helpers/operators.ts';
import { handles, xContactHash, xGateway } from '../../helpers/x.ts';

/**
 * X end to end over HTTP: a fake X API v2 (scripts/x/fake-api.ts) holds the citizens' tweets, the
 * gateway polls its mentions timeline with the bearer token, files reports in PostgreSQL and answers
 * in the thread with OAuth 1.0a-signed posts, which the fake verifies as X would.
 */

let fake: FakeXApi;
let env: TestEnv;
let close: () => Promise<void>;
const newUser = handles();

beforeAll(async () => {
  ({ fake, env, close } = await xGateway());
});
afterAll(async () => {
  await close?.();
});

async function reportsOf(userId: string) {
  const { rows } = await env.runtime.db.query<{ seq: string; tracking_id: string; text: string; rahasia: boolean; status: string }>(
    `SELECT seq::text, tracking_id, text, rahasia, status FROM reports WHERE contact_hash = $1 ORDER BY seq`,
    [xContactHash(env, userId)],
  );
  return rows;
}

async function oneReportOf(userId: string) {
  const rows = await eventually(async () => {
    const found = await reportsOf(userId);
    return found.length ? found : undefined;
  }, 10_000, `a report of ${userId}`);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

async function replyIn(tweetId: string, matching: RegExp) {
  return eventually(async () => fake.posts({ inReplyTo: tweetId }).find((p) => matching.test(p.text)), 10_000, `a reply to ${tweetId} matching ${matching}`);
}

describe('a citizen tweets @LAPOR1708 #lapor', () => {
  it('files one report and answers in the thread with its tracking ID', async () => {
    const user = newUser();
    const tweet = fake.tweet({ from: user, text: '@LAPOR1708 #lapor lampu jalan mati di Jl. Melati' });
    const report = await oneReportOf(user.id);
    expect(report.text).toBe('lampu jalan mati di Jl. Melati');
    const reply = await replyIn(tweet.id, /diterima/);
    expect(reply.text).toContain(report.tracking_id);
    expect(weightedLength(reply.text)).toBeLessThanOrEqual(280);
    // The reply says nothing of the citizen but their number to keep.
    expect(reply.text).not.toContain(user.username);
  });

  it('answers CEK in the thread to the report\'s author, and tells a stranger nothing', async () => {
    const owner = newUser();
    const tweet = fake.tweet({ from: owner, text: '@LAPOR1708 #lapor saluran air tersumbat di Jalan Mawar' });
    const report = await oneReportOf(owner.id);
    const ours = await replyIn(tweet.id, /diterima/);

    const asked = fake.tweet({ from: owner, text: `@LAPOR1708 CEK ${report.tracking_id}`, inReplyTo: ours.id });
    const status = await replyIn(asked.id, /Status laporan/);
    expect(status.text).toContain(report.tracking_id);
    // Asked again: X refuses a post identical to a recent one, so the answer says when it was given.
    const again = fake.tweet({ from: owner, text: `@LAPOR1708 CEK ${report.tracking_id}`, inReplyTo: status.id });
    const second = await replyIn(again.id, /Status laporan/);
    expect(second.text).toMatch(/\(\d\d\.\d\d\.\d\d WIB\)$/);

    const stranger = newUser();
    const nosy = fake.tweet({ from: stranger, text: `@LAPOR1708 #lapor CEK ${report.tracking_id}` });
    const answer = await replyIn(nosy.id, /.*/);
    expect(answer.text).not.toMatch(/Status laporan/);
    expect(answer.text).not.toContain('Mawar');
    expect(await reportsOf(stranger.id)).toHaveLength(0);
  });

  it('adds a reply in the report\'s thread to the report, only from its author', async () => {
    const owner = newUser();
    const tweet = fake.tweet({ from: owner, text: '@LAPOR1708 #lapor tiang listrik miring di depan pasar' });
    const report = await oneReportOf(owner.id);
    const ours = await replyIn(tweet.id, /diterima/);
    const more = fake.tweet({ from: owner, text: '@LAPOR1708 tiangnya juga ada yg retak', inReplyTo: ours.id });
    await replyIn(more.id, /Tambahan informasi/);
    const stranger = newUser();
    fake.tweet({ from: stranger, text: '@LAPOR1708 wah parah ini', inReplyTo: ours.id });
    const { rows } = await eventually(async () => {
      const result = await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE report_seq = $1 AND direction = 'in'`, [report.seq]);
      return result.rows[0]!.n === 2 ? result : undefined;
    }, 10_000, 'the follow-up in the thread');
    expect(rows[0]!.n).toBe(2);
    // The stranger's chatter files nothing, and is not answered.
    await new Promise((r) => setTimeout(r, 500));
    expect(await reportsOf(stranger.id)).toHaveLength(0);
    expect(fake.posts().filter((p) => p.in_reply_to_tweet_id && fake.tweetById(p.in_reply_to_tweet_id)?.author_id === stranger.id)).toHaveLength(0);
  });

  it('keeps a rahasia report out of public: a neutral notice in the thread, the detail by direct message', async () => {
    const user = newUser();
    const tweet = fake.tweet({ from: user, text: '@LAPOR1708 #lapor RAHASIA kepala desa Mekarsari minta jatah 10% dari BLT warga' });
    const report = await oneReportOf(user.id);
    expect(report.rahasia).toBe(true);
    const notice = await replyIn(tweet.id, /pesan langsung/);
    expect(notice.text).not.toMatch(/Mekarsari|BLT|kepala desa/);
    const dm = await eventually(async () => fake.dms({ to: user.id })[0], 10_000, 'the direct message');
    expect(dm.text).toContain(report.tracking_id);
  });

  it('says in public only how to open direct messages when they are closed', async () => {
    const user = newUser();
    fake.setUser(user.id, { acceptsDms: false, username: user.username });
    const tweet = fake.tweet({ from: user, text: '@LAPOR1708 #lapor ANONIM pungli di loket samsat' });
    await oneReportOf(user.id);
    const notice = await replyIn(tweet.id, /pesan langsung/);
    expect(notice.text).toMatch(/Izinkan pesan langsung/);
    expect(notice.text).not.toMatch(/pungli|samsat/);
    expect(fake.dms({ to: user.id })).toHaveLength(0);
  });

  it('files nothing for a retweet, a mention without the hashtag or #laporan', async () => {
    const user = newUser();
    const original = fake.tweet({ from: user, text: '@LAPOR1708 #lapor trotoar rusak di Jl. Kenanga' });
    await oneReportOf(user.id);
    const other = newUser();
    fake.tweet({ from: other, retweetOf: original.id });
    fake.tweet({ from: other, text: '@LAPOR1708 antrean lama sekali' });
    fake.tweet({ from: other, text: '@LAPOR1708 #laporan antrean lama sekali' });
    await new Promise((r) => setTimeout(r, 800));
    expect(await reportsOf(other.id)).toHaveLength(0);
    expect(await reportsOf(user.id)).toHaveLength(1);
  });
});

describe('an operator works the report', () => {
  /** Verified, forwarded to PLN, given to a unit, answered: what the operator workflow does. */
  async function answer(trackingId: string, text: string) {
    const admin = await account(env, 'super_admin');
    const pln = await account(env, 'agency_admin', { agency: 'pln' });
    const liaison = await account(env, 'liaison', { unit: 'pln-uid-jabar' });
    const step = async (who: typeof admin, action: string, body: unknown) => {
      const res = await call(env, 'POST', `/api/v1/admin/reports/${trackingId}/${action}`, who, body);
      expect(res.statusCode, res.body).toBe(200);
    };
    await step(admin, 'verify', { kind: 'pengaduan', weight: 'sedang' });
    await step(admin, 'dispose', { agency: 'pln' });
    await step(pln, 'dispose', { unit: 'pln-uid-jabar' });
    await step(liaison, 'answer', { text });
  }

  it('the answer reaches the citizen in the thread, fitted to 280 with the tracking ID kept', async () => {
    const user = newUser();
    const tweet = fake.tweet({ from: user, text: '@LAPOR1708 #lapor listrik padam tiap malam di Desa Cibiru' });
    const report = await oneReportOf(user.id);
    await replyIn(tweet.id, /diterima/);
    await answer(report.tracking_id, `Gangguan trafo sudah diperbaiki oleh tim UID Jawa Barat. ${'Terima kasih atas kesabaran Bapak/Ibu. '.repeat(4)}`);
    const forwarded = await replyIn(tweet.id, /diteruskan/);
    expect(forwarded.text).toContain('PLN');
    const answered = await replyIn(tweet.id, /menanggapi/);
    expect(answered.text).toContain(report.tracking_id);
    expect(answered.text).toContain('Gangguan trafo');
    expect(weightedLength(answered.text)).toBeLessThanOrEqual(280);
  });

  it('a rahasia report\'s answer goes by direct message only: nothing more in public', async () => {
    const user = newUser();
    const tweet = fake.tweet({ from: user, text: '@LAPOR1708 #lapor RAHASIA petugas meteran minta uang damai di Desa Cibiru' });
    const report = await oneReportOf(user.id);
    await replyIn(tweet.id, /pesan langsung/);
    await answer(report.tracking_id, 'Petugas yang bersangkutan sudah diperiksa oleh unit kepatuhan.');
    const dm = await eventually(async () => fake.dms({ to: user.id }).find((d) => /menanggapi/.test(d.text)), 10_000, 'the answer by direct message');
    expect(dm.text).toContain('diperiksa');
    // The receipt's neutral notice is all the thread ever shows.
    const inPublic = fake.posts({ inReplyTo: tweet.id });
    expect(inPublic).toHaveLength(1);
    expect(inPublic[0]!.text).not.toMatch(/meteran|uang damai|PLN|diperiksa/);
  });
});

describe('privacy', () => {
  it('an anonim tweet\'s author is hidden from the agency; the logs hold no handle, name or words', async () => {
    const user = { ...newUser(), name: 'Siti Rahmawati' };
    const tweet = fake.tweet({ from: user, text: '@LAPOR1708 #lapor ANONIM kabel listrik menjuntai di atas sekolah Desa Cibiru' });
    const report = await oneReportOf(user.id);
    await replyIn(tweet.id, /pesan langsung/);
    const admin = await account(env, 'super_admin');
    expect((await call(env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/verify`, admin, { kind: 'pengaduan', weight: 'sedang' })).statusCode).toBe(200);
    expect((await call(env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/dispose`, admin, { agency: 'pln' })).statusCode).toBe(200);
    const pln = await account(env, 'agency_admin', { agency: 'pln' });
    const seen = await call(env, 'GET', `/api/v1/admin/reports/${report.tracking_id}`, pln);
    expect(seen.statusCode).toBe(200);
    expect(seen.body).not.toContain(user.username);
    expect(seen.body).not.toContain(user.id);
    expect((await call(env, 'GET', `/api/v1/admin/reports/${report.tracking_id}/reporter`, pln)).statusCode).toBe(403);

    const logs = env.logs.join('\n');
    for (const secret of [user.username, user.name, user.id, 'kabel listrik menjuntai']) expect(logs).not.toContain(secret);
  });

  it('a public report\'s author is known to the admin by handle, as the reporter', async () => {
    const user = newUser();
    fake.tweet({ from: user, text: '@LAPOR1708 #lapor got mampet di Jl. Anggrek' });
    const report = await oneReportOf(user.id);
    const admin = await account(env, 'super_admin');
    const reporter = await call(env, 'GET', `/api/v1/admin/reports/${report.tracking_id}/reporter`, admin);
    expect(reporter.json()).toMatchObject({ channel: 'x', name: `@${user.username}`, address: `x:${user.id}` });
  });
});

describe('photos', () => {
  let files: Server;
  let base: string;
  const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2_000, 7)]);
  const EXE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(2_000, 1)]);
  beforeAll(async () => {
    // pbs.twimg.com, as far as the gateway can tell.
    files = createServer((req, res) => {
      const body = req.url === '/tiang.jpg' ? JPEG : req.url === '/foto.jpg' ? EXE : undefined;
      res.writeHead(body ? 200 : 404, { 'content-type': 'image/jpeg' }).end(body);
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => files.close(() => resolve())));

  const attachmentsOf = async (seq: string) =>
    (await env.runtime.db.query<{ content_type: string; size: number }>('SELECT content_type, size FROM attachments WHERE report_seq = $1', [seq])).rows;

  it('a photo in a report\'s thread is kept with the report; an executable named .jpg and a missing file are left out', async () => {
    const owner = newUser();
    const tweet = fake.tweet({ from: owner, text: '@LAPOR1708 #lapor tiang listrik patah di Jl. Dahlia', media: [{ type: 'photo', url: `${base}/foto.jpg` }] });
    const report = await oneReportOf(owner.id);
    const ours = await replyIn(tweet.id, /diterima/);
    expect(await attachmentsOf(report.seq)).toEqual([]);
    const photo = fake.tweet({ from: owner, text: '@LAPOR1708 ini fotonya min', inReplyTo: ours.id, media: [{ type: 'photo', url: `${base}/tiang.jpg` }, { type: 'photo', url: `${base}/hilang.jpg` }] });
    await replyIn(photo.id, /Tambahan informasi/);
    expect(await attachmentsOf(report.seq)).toEqual([{ content_type: 'image/jpeg', size: JPEG.length }]);
    // The link X adds for the photo is not the citizen's words.
    const { rows } = await env.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE report_seq = $1 AND direction = 'in'`, [report.seq]);
    expect(rows[0]!.n).toBe(2);
  });
});
