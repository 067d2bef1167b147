/**
 * The fake Telegram Bot API from the command line (`npm run sim:telegram -- <command>`).
 *
 *   serve [--port 2781]
 *       Runs the fake Bot API on loopback for a gateway started with the variables it prints.
 *       (`npm start` with no bot token runs one itself, on the same port.)
 *   say --from @warga_kota [--wait 5] "lampu jalan mati di Jl. Melati"
 *       Writes to the bot as that citizen (commands too: "/status 1234567890", "/rahasia …") and
 *       prints what the bot answers in the chat.
 *   press --from @warga_kota <button data>
 *       Presses a button printed under the bot's last message (e.g. p:r:6906869983: keep it confidential).
 *   fault sendMessage|getUpdates 429|500|502 [--count 3]
 *       The next calls fail, to watch the gateway wait (retry_after) or back off.
 */
import { parseArgs } from 'node:util';
import { FakeTelegramApi, derivedUserId } from './telegram/fake-api.ts';
import { controlApi, printUsage, runMain, unknownCommand } from './sim-cli.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '2781' },
    from: { type: 'string' },
    wait: { type: 'string', default: '5' },
    count: { type: 'string', default: '3' },
    help: { type: 'boolean', short: 'h' },
  },
});
const [command = 'serve', ...words] = positionals;
const call = controlApi(values.port, `no fake Telegram API on port ${values.port}: start the gateway (npm start) or \`npm run sim:telegram -- serve\` first`);

interface Sent {
  index: number;
  message: { message_id: number; text?: string; reply_markup?: { inline_keyboard: { text: string; callback_data?: string }[][] } };
}

/** A bot message as the chat shows it: its text, then its buttons with what `press` takes. */
function show(sent: Sent): string {
  const buttons = sent.message.reply_markup?.inline_keyboard.flat().map((b) => `[${b.text}: ${b.callback_data ?? ''}]`).join(' ');
  return `${sent.message.text ?? ''}${buttons ? ` ${buttons}` : ''}`;
}

async function main(): Promise<number> {
  if (values.help) {
    return printUsage(import.meta.url);
  }
  if (command === 'serve') {
    const fake = await FakeTelegramApi.start({ port: Number(values.port), log: (line) => process.stdout.write(`telegram: ${line}\n`) });
    process.stdout.write(`fake Telegram Bot API on ${fake.url} (bot @${fake.bot.username}); a gateway reaches it with:\n  LAPOR_TELEGRAM_API_ROOT=${fake.url} LAPOR_TELEGRAM_TOKEN=${fake.token}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await fake.stop();
    return 0;
  }
  if (command === 'say' || command === 'press') {
    const username = values.from?.replace(/^@/, '');
    const text = words.join(' ');
    if (!username || !/^[A-Za-z0-9_]{5,32}$/.test(username) || !text) {
      process.stderr.write('usage: say --from @warga_kota "lampu jalan mati di Jl. Melati" (a username of 5 to 32 letters, digits or _), or press --from @warga_kota <button data>\n');
      return 64;
    }
    const chatId = derivedUserId(username);
    const before = (await call('GET', `/sent?chatId=${chatId}`)) as Sent[];
    const since = before.reduce((max, s) => Math.max(max, s.index + 1), 0);
    if (command === 'say') {
      await call('POST', '/say', { from: `@${username}`, text });
      process.stdout.write(`@${username} → bot: ${text}\n`);
    } else {
      const under = [...before].reverse().find((s) => s.message.reply_markup?.inline_keyboard.flat().some((b) => b.callback_data === text));
      if (!under) {
        process.stderr.write(`no button ${text} under the bot's messages to @${username}\n`);
        return 64;
      }
      await call('POST', '/press', { from: `@${username}`, messageId: under.message.message_id, data: text });
      process.stdout.write(`@${username} pressed ${text}\n`);
    }
    const seen = new Set<number>();
    const until = Date.now() + Number(values.wait) * 1000;
    while (Date.now() < until) {
      const sent = (await call('GET', `/sent?chatId=${chatId}&since=${since}`)) as Sent[];
      for (const s of sent) if (!seen.has(s.index) && seen.add(s.index)) process.stdout.write(`← ${show(s)}\n`);
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!seen.size) process.stdout.write('no answer yet (is the gateway running?)\n');
    return 0;
  }
  if (command === 'fault') {
    const [method, status] = words;
    if (!method || !status) {
      process.stderr.write('usage: fault sendMessage|getUpdates 429|500|502 [--count 3]\n');
      return 64;
    }
    await call('POST', '/fault', { method, status: Number(status), count: Number(values.count) });
    process.stdout.write(`the next ${values.count} calls to ${method} answer ${status}\n`);
    return 0;
  }
  return unknownCommand(command);
}

runMain(main);
