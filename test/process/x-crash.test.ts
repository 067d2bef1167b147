import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeXApi } from '../../scripts/x/fake-api.ts';
import { createDatabase, eventually, testEnvVars } from '../helpers/env.ts';
import { killAllGateways, startGateway } from '../helpers/gateway-process.ts';
import { handles, xVars } from '../helpers/x.ts';

/**
 * The X poller in a real gateway process, killed (SIGKILL) after a page of mentions is in the
 * inbound queue and before its cursor moved, then restarted on the same database and Redis. The
 * restart continues the poll; every tweet is exactly one report with a reply in its thread, and a
 * further restart reads nothing again.
 */

let fake: FakeXApi;
let db: pg.Client;
let env: Record<string, string>;
const newUser = handles('korban');

beforeAll(async () => {
  fake = await FakeXApi.start();
  const databaseUrl = await createDatabase();
  env = testEnvVars({
    LAPOR_DATABASE_URL: databaseUrl,
    ...xVars(fake),
    LAPOR_X_POLL_MAX_RESULTS: '5',
    LAPOR_LOG_LEVEL: 'info',
    // A job the killed process had taken is taken up again within a couple of seconds of the restart.
    LAPOR_QUEUE_LOCK_MS: '2000',
  });
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
});
afterEach(async () => {
  await killAllGateways();
});
afterAll(async () => {
  await db?.end();
  await fake?.stop();
});

const reportCount = async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM reports`)).rows[0]!.n;
const cursor = async () => (await db.query<{ cursor: { sinceId?: string; poll?: { nextToken: string } } }>(`SELECT cursor FROM channel_cursors WHERE channel = 'x'`)).rows[0]?.cursor;

describe('the X poller killed mid-poll', () => {
  it('resumes the poll on restart: every tweet one report and one reply, nothing read twice afterwards', async () => {
    // A first poll ever reads one page only; the cursor it leaves is where the test begins.
    const first = fake.tweet({ from: newUser(), text: '@LAPOR1708 #lapor lampu taman kota mati' });
    let gateway = await startGateway(env);
    await eventually(async () => ((await cursor())?.sinceId === first.id ? true : undefined), 20_000, 'the first poll');
    await gateway.kill('SIGTERM');

    // Twelve tweets: three pages of five. Killed once the first page is stored.
    const tweets = Array.from({ length: 12 }, (_, i) => fake.tweet({ from: newUser(), text: `@LAPOR1708 #lapor jalan berlubang di gang ${i + 1} RW 03` }));
    gateway = await startGateway({ ...env, LAPOR_TEST_CRASH_AT: 'x-page-stored' }, { waitReady: false });
    expect((await gateway.exited).signal).toBe('SIGKILL');
    // The cursor did not move past the first tweet: nothing on the later pages can be skipped.
    expect((await cursor())?.sinceId).toBe(first.id);

    gateway = await startGateway(env);
    await eventually(async () => ((await reportCount()) === 13 ? true : undefined), 30_000, 'thirteen reports').catch(async (err: unknown) => {
      throw new Error(`${(err as Error).message}: ${await reportCount()} reports, cursor ${JSON.stringify(await cursor())}, stats ${JSON.stringify(fake.stats())}\n${gateway.output().split('\n').filter((l) => /"x"|warn|error/i.test(l)).slice(-20).join('\n')}`);
    });
    await eventually(async () => (tweets.every((t) => fake.posts({ inReplyTo: t.id }).length >= 1) ? true : undefined), 30_000, 'a reply to every tweet');
    await eventually(async () => ((await cursor())?.sinceId === tweets.at(-1)!.id ? true : undefined), 10_000, 'the cursor at the newest tweet');
    const replies = tweets.map((t) => fake.posts({ inReplyTo: t.id }).filter((p) => /diterima/.test(p.text)).length);
    // One reply each; two only where the killed process had posted a reply and not yet marked it
    // (its worker may have filed and answered some of the first page before the kill): X has no
    // idempotency key, so a reply is at least once, and only the first page was in flight.
    expect(replies.every((n) => n === 1 || n === 2)).toBe(true);
    expect(replies.filter((n) => n === 2).length).toBeLessThanOrEqual(5);
    await gateway.kill('SIGTERM');

    // Restarted once more, it reads only what is newer than the cursor: nothing is filed again.
    const mentionsBefore = fake.stats().requests.mentions.app;
    gateway = await startGateway(env);
    await eventually(async () => (fake.stats().requests.mentions.app > mentionsBefore + 2 ? true : undefined), 20_000, 'a few polls');
    expect(await reportCount()).toBe(13);
    expect(tweets.map((t) => fake.posts({ inReplyTo: t.id }).length)).toEqual(replies);
    const logs = gateway.output();
    for (const secret of ['jalan berlubang', 'korban']) expect(logs).not.toContain(secret);
  }, 120_000);
});
