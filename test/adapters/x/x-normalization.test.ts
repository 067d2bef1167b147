import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { V1TweetSchema, TweetSchema, UserSchema, cleanText, fromV1, toInbound, type XUser } from '../../../adapters/x/inbound.ts';
import { InboundMessageSchema } from '../../../src/core/inbound.ts';
import { parseCitizenMessage } from '../../../src/core/keywords.ts';
import { corpusFile } from '../../helpers/corpus.ts';

/**
 * The X normalizer is pure: every tweet of the corpus in, the message (or the reason it is none)
 * out, checked against the corpus's expectations and the keyword parser that intake runs next.
 */

const ACCOUNT = { accountId: '1296401852', account: 'LAPOR1708', hashtag: 'lapor' };
const NOW = new Date('2026-12-06T00:00:00Z');

type Expect = Record<string, { notes: string; tweets: Record<string, { intent: string; privacy: string }> }>;
const expectations = JSON.parse(readFileSync(corpusFile('twitter/expect.json'), 'utf8')) as Expect;

function page(file: string) {
  const body = JSON.parse(readFileSync(corpusFile(`twitter/${file}`), 'utf8')) as { data?: unknown[]; includes?: { users?: unknown[] } };
  const users = new Map<string, XUser>((body.includes?.users ?? []).map((u) => UserSchema.parse(u)).map((u) => [u.id, u]));
  return { tweets: (body.data ?? []).map((t) => TweetSchema.parse(t)), users };
}

const cases = Object.entries(expectations).flatMap(([file, { tweets }]) => Object.entries(tweets).map(([id, e]) => ({ file, id, ...e })));

describe('corpus tweets', () => {
  it.each(cases)('$file $id → $intent', ({ file, id, intent, privacy }) => {
    const { tweets, users } = page(file);
    const tweet = tweets.find((t) => t.id === id)!;
    const message = toInbound(tweet, { ...ACCOUNT, users, now: NOW });
    if (intent === 'ignored') {
      expect(message).toMatchObject({ ignored: true });
      return;
    }
    if ('ignored' in message) throw new Error(`ignored: ${message.reason}`);
    // What the gateway stores: valid for the inbound boundary, keyed by the tweet id.
    const parsed = InboundMessageSchema.parse(message);
    expect(parsed.dedupKey).toBe(`x_${id}`);
    expect(parsed.sender?.address).toBe(`x:${tweet.author_id}`);
    expect(parsed.replyContext.tweetId).toBe(id);
    expect(parsed.text).not.toMatch(/@LAPOR1708|#lapor\b/i);
    const command = parseCitizenMessage(parsed.text);
    // A follow-up without its tracking ID is placed by its thread (intake), not by its words.
    if (intent === 'follow_up' && command.type === 'new_report') {
      expect(parsed.thread).toMatchObject({ ownerOnly: true });
      expect(parsed.thread?.ids).toContain(tweet.conversation_id);
      return;
    }
    expect(command.type).toBe(intent);
    if (command.type === 'new_report') expect(command.privacy).toBe(privacy);
  });

  it('decodes what X escapes, and drops the links X adds for a quoted post', () => {
    const { tweets, users } = page('mentions-page-1.json');
    const message = toInbound(tweets.find((t) => t.id === '1897920401373384704')!, { ...ACCOUNT, users, now: NOW });
    expect(message).toMatchObject({ text: expect.stringContaining('loket manual cuma 1 & antre') });
    const quote = page('mentions-quote.json');
    const quoted = toInbound(quote.tweets[0]!, { ...ACCOUNT, users: quote.users, now: NOW });
    expect(quoted).toMatchObject({ text: 'Sama persis di Kel. Margasari, lampu jalan mati 2 minggu, tiang PJU-nya juga miring mau roboh.' });
    // The reporter is the quoting author, named by handle only.
    expect(quoted).toMatchObject({ sender: { address: 'x:' + quote.tweets[0]!.author_id } });
  });

  it('tolerates a page without includes: no display name, the same message otherwise', () => {
    const { tweets } = page('mentions-new-reports.json');
    const message = toInbound(tweets.find((t) => t.id === '1896368517281992704')!, { ...ACCOUNT, users: new Map(), now: NOW });
    expect(message).toMatchObject({ dedupKey: 'x_1896368517281992704', sender: { address: 'x:1402817735902216193' } });
    expect('ignored' in message ? undefined : message.sender?.displayName).toBeUndefined();
  });
});

describe('what becomes what', () => {
  const base = {
    id: '1900000000000000001',
    author_id: '42',
    text: '@LAPOR1708 #lapor jalan berlubang',
    entities: { mentions: [{ username: 'LAPOR1708', id: '1296401852' }], hashtags: [{ tag: 'lapor' }] },
  };
  const run = (tweet: object) => toInbound(TweetSchema.parse(tweet), { ...ACCOUNT, users: new Map(), now: NOW });

  it('needs the hashtag as a hashtag entity: #laporan and #lapor in a URL are not it', () => {
    expect(run({ ...base, text: '@LAPOR1708 #laporan jalan', entities: { ...base.entities, hashtags: [{ tag: 'laporan' }] } })).toMatchObject({ ignored: true, reason: 'no hashtag' });
    expect(run({ ...base, text: '@LAPOR1708 lihat https://contoh.id/a#lapor', entities: { mentions: base.entities.mentions } })).toMatchObject({ ignored: true });
    expect(run({ ...base, entities: { ...base.entities, hashtags: [{ tag: 'LAPOR' }] } })).toMatchObject({ dedupKey: `x_${base.id}` });
  });

  it('ignores our own posts, retweets and tweets that do not mention the account', () => {
    expect(run({ ...base, author_id: '1296401852' })).toMatchObject({ ignored: true, reason: 'our own post' });
    expect(run({ ...base, referenced_tweets: [{ type: 'retweeted', id: '1' }] })).toMatchObject({ ignored: true, reason: 'retweet' });
    expect(run({ ...base, entities: { hashtags: [{ tag: 'lapor' }] } })).toMatchObject({ ignored: true, reason: 'not a mention of the account' });
  });

  it('keys an edit by the first version, so an edit of a filed tweet is the same message', () => {
    const edit = run({ ...base, id: '1900000000000000009', text: '@LAPOR1708 #lapor jalan berlubang besar', edit_history_tweet_ids: [base.id, '1900000000000000009'] });
    expect(edit).toMatchObject({ dedupKey: `x_${base.id}`, externalId: base.id, replyContext: { tweetId: '1900000000000000009' } });
  });

  it('keeps the whole text of a long post', () => {
    const long = `${'jalan rusak parah '.repeat(40)}mohon diperbaiki`;
    const message = run({ ...base, text: `@LAPOR1708 #lapor ${long.slice(0, 200)}`, note_tweet: { text: `@LAPOR1708 #lapor ${long}`, entities: base.entities } });
    expect(message).toMatchObject({ text: long });
  });

  it('cleans the handle and hashtag wherever they are, and nothing that merely looks like them', () => {
    const clean = (t: string) => cleanText(t, { account: 'LAPOR1708', hashtag: 'lapor' });
    expect(clean('Min @LAPOR1708 jalan longsor. #Lapor #JalanRusak')).toBe('Min jalan longsor. #JalanRusak');
    expect(clean('@LAPOR1708 @dinas_pu pagi min #lapor bansos')).toBe('pagi min bansos');
    expect(clean('email saya a@LAPOR1708x.id #laporan')).toBe('email saya a@LAPOR1708x.id #laporan');
    expect(clean('harga &lt;10rb &amp; &gt;5rb')).toBe('harga <10rb & >5rb');
  });
});

describe('webhook tweets (v1.1)', () => {
  it('become the same message as the timeline gives', () => {
    const v1 = V1TweetSchema.parse({
      id_str: '1900000000000000001',
      created_at: 'Sun Dec 06 10:00:00 +0000 2026',
      text: '@LAPOR1708 #lapor jalan berlubang',
      user: { id_str: '42', screen_name: 'warga', name: 'Warga' },
      entities: { hashtags: [{ text: 'lapor', indices: [11, 17] }], user_mentions: [{ screen_name: 'LAPOR1708', id_str: '1296401852', indices: [0, 10] }], urls: [] },
      in_reply_to_status_id_str: null,
      some_field_x_added_later: true,
    });
    const { tweet, user } = fromV1(v1);
    const message = toInbound(tweet, { ...ACCOUNT, users: new Map([[user!.id, user!]]), now: NOW });
    expect(message).toMatchObject({ dedupKey: 'x_1900000000000000001', text: 'jalan berlubang', sender: { address: 'x:42', displayName: '@warga' } });
  });

  it('read the full text of an extended tweet', () => {
    const { tweet } = fromV1(V1TweetSchema.parse({ id_str: '5', text: '@LAPOR1708 #lapor awal…', truncated: true, extended_tweet: { full_text: '@LAPOR1708 #lapor awal dan akhir', entities: { hashtags: [{ text: 'lapor' }], user_mentions: [{ screen_name: 'LAPOR1708' }] } }, user: { id_str: '7', screen_name: 'w' } }));
    expect(toInbound(tweet, { ...ACCOUNT, users: new Map(), now: NOW })).toMatchObject({ text: 'awal dan akhir' });
  });
});
