/**
 * The fake X API from the command line (`npm run sim:x -- <command>`).
 *
 *   serve [--port 2780]
 *       Runs the fake X API v2 on loopback for a gateway started with the variables it prints.
 *       (`npm start` with no X credentials runs one itself, on the same port.)
 *   tweet --from @warga [--reply-to <tweet id>] [--wait 10] "@LAPOR1708 #lapor lampu jalan mati di Jl. Melati"
 *       Tweets as that citizen and prints what the gateway answers: replies in the thread and direct
 *       messages. Reply in the thread with --reply-to (e.g. `CEK <tracking ID>`, or more details).
 *   dms --from @warga closed|open
 *       Closes or opens that citizen's direct messages (to watch the gateway's public notice).
 *   fault mentions|tweets|dm 429|500|503 [--count 3]
 *       The next calls to that endpoint fail, to watch the gateway wait for the rate-limit reset or
 *       back off (its log, /readyz and /metrics).
 */
import { parseArgs } from 'node:util';
import { FakeXApi, derivedUserId } from './x/fake-api.ts';
import { printUsage, runMain, unknownCommand } from './sim-cli.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '2780' },
    from: { type: 'string' },
    'reply-to': { type: 'string' },
    wait: { type: 'string', default: '10' },
    count: { type: 'string', default: '3' },
    help: { type: 'boolean', short: 'h' },
  },
});
const [command = 'serve', ...words] = positionals;
const base = `http://127.0.0.1:${values.port}/_fake`;

async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  } catch {
    throw new Error(`no fake X API on port ${values.port}: start the gateway (npm start) or \`npm run sim:x -- serve\` first`);
  }
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${path}: ${JSON.stringify(json)}`);
  return json;
}

/** A citizen's handle: `@warga` or `warga`. */
function handle(from: string | undefined): string | undefined {
  const name = from?.replace(/^@/, '');
  return name && /^[A-Za-z0-9_]{1,15}$/.test(name) ? name : undefined;
}

async function main(): Promise<number> {
  if (values.help) {
    return printUsage(import.meta.url);
  }
  if (command === 'serve') {
    const fake = await FakeXApi.start({ port: Number(values.port), log: (line) => process.stdout.write(`x: ${line}\n`) });
    const c = fake.credentials;
    process.stdout.write(
      [
        `fake X API on ${fake.url} (account @${fake.account.username}); a gateway reaches it with:`,
        `  LAPOR_X_API_BASE=${fake.url} LAPOR_X_BEARER_TOKEN=${c.bearerToken} LAPOR_X_APP_KEY=${c.consumerKey} LAPOR_X_APP_SECRET=${c.consumerSecret} LAPOR_X_ACCESS_TOKEN=${c.accessToken} LAPOR_X_ACCESS_SECRET=${c.accessSecret}`,
        '',
      ].join('\n'),
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await fake.stop();
    return 0;
  }
  if (command === 'tweet') {
    const from = handle(values.from);
    const text = words.join(' ');
    if (!from || !text) {
      process.stderr.write('usage: tweet --from @warga [--reply-to ID] "@LAPOR1708 #lapor lampu jalan mati di Jl. Melati"\n');
      return 64;
    }
    const { data } = (await call('POST', '/tweets', { from, text, ...(values['reply-to'] ? { inReplyTo: values['reply-to'] } : {}) })) as { data: { id: string; author_id: string } };
    process.stdout.write(`tweeted ${data.id} as @${from}\n`);
    const seen = new Set<string>();
    const until = Date.now() + Number(values.wait) * 1000;
    while (Date.now() < until) {
      const { posts } = (await call('GET', `/posts?inReplyTo=${data.id}`)) as { posts: { id: string; text: string }[] };
      const { dms } = (await call('GET', `/dms?to=${data.author_id}`)) as { dms: { dm_event_id: string; text: string; created_at: string }[] };
      for (const post of posts) if (!seen.has(post.id) && seen.add(post.id)) process.stdout.write(`← reply ${post.id}: ${post.text}\n`);
      for (const dm of dms) {
        if (Date.parse(dm.created_at) < until - Number(values.wait) * 1000 - 1_000 || seen.has(dm.dm_event_id)) continue;
        seen.add(dm.dm_event_id);
        process.stdout.write(`← direct message: ${dm.text}\n`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!seen.size) process.stdout.write('no answer yet (is the gateway running? it polls every LAPOR_X_POLL_INTERVAL_MS)\n');
    return 0;
  }
  if (command === 'dms') {
    const from = handle(values.from);
    const [state] = words;
    if (!from || (state !== 'closed' && state !== 'open')) {
      process.stderr.write('usage: dms --from @warga closed|open\n');
      return 64;
    }
    await call('POST', `/users/${derivedUserId(from)}`, { acceptsDms: state === 'open', username: from });
    process.stdout.write(`direct messages of @${from} are ${state}\n`);
    return 0;
  }
  if (command === 'fault') {
    const [endpoint, status] = words;
    if (!endpoint || !status) {
      process.stderr.write('usage: fault mentions|tweets|dm 429|500|503 [--count 3]\n');
      return 64;
    }
    await call('POST', '/fault', { endpoint, status: Number(status), count: Number(values.count) });
    process.stdout.write(`the next ${values.count} calls to ${endpoint} answer ${status}\n`);
    return 0;
  }
  return unknownCommand(command);
}

runMain(main);
