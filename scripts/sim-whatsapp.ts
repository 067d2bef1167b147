/**
 * The fake WhatsApp Cloud API from the command line (`npm run sim:whatsapp -- <command>`), against
 * the one `npm start` runs when no WhatsApp token is set (it delivers to the gateway's webhook).
 *
 *   say --from 6281234567890 [--name "Siti"] [--wait 5] "lampu jalan mati di Jl. Melati"
 *       Writes to the LAPOR! number as that citizen and prints what the gateway answers (text,
 *       reply buttons, or the template outside the 24-hour window).
 *   press --from 6281234567890 <button id>
 *       Presses one of the buttons printed with an answer (e.g. p:r:6906869983 to keep it confidential).
 *   later --hours 25
 *       Moves the fake's clock on, so the next answer falls outside the 24-hour window (Meta takes free
 *       text, then fails it with 131047: it is printed [failed 131047], then again as the template).
 */
import { parseArgs } from 'node:util';
import { controlApi, printUsage, runMain, unknownCommand } from './sim-cli.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '2782' },
    from: { type: 'string' },
    name: { type: 'string' },
    wait: { type: 'string', default: '5' },
    hours: { type: 'string', default: '25' },
    help: { type: 'boolean', short: 'h' },
  },
});
const [command, ...words] = positionals;
const call = controlApi(values.port, `no fake WhatsApp API on port ${values.port}: start the gateway (npm start) first`);

interface Sent {
  index: number;
  wamid: string;
  type: string;
  text?: string;
  template?: { name: string; components?: { parameters?: { text?: string }[] }[] };
  interactive?: { body?: { text?: string }; action?: { buttons?: { reply: { id: string; title: string } }[] } };
  /** Meta took it, then reported it failed (131047: outside the window; the gateway re-sends it as the template). */
  failedCode?: number;
}

function show(sent: Sent): string {
  const failed = sent.failedCode ? ` [failed ${sent.failedCode}]` : '';
  if (sent.type === 'template') return `[template ${sent.template?.name}] ${sent.template?.components?.[0]?.parameters?.[0]?.text ?? ''}`;
  if (sent.type === 'interactive') {
    const buttons = sent.interactive?.action?.buttons?.map((b) => `[${b.reply.title}: ${b.reply.id}]`).join(' ') ?? '';
    return `${sent.interactive?.body?.text ?? ''} ${buttons}${failed}`;
  }
  return `${sent.text ?? ''}${failed}`;
}

/** Prints what the gateway sends to `to` from now on, for `--wait` seconds. */
async function follow(to: string, since: number): Promise<void> {
  const seen = new Set<number>();
  const until = Date.now() + Number(values.wait) * 1000;
  while (Date.now() < until) {
    for (const sent of (await call('GET', `/sent?to=${to}`)) as Sent[]) {
      if (sent.index < since || seen.has(sent.index)) continue;
      seen.add(sent.index);
      process.stdout.write(`← ${show(sent)}\n`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!seen.size) process.stdout.write('no answer yet (is the gateway running?)\n');
}

async function main(): Promise<number> {
  const from = values.from?.replace(/^\+/, '');
  if (values.help || !command) {
    return printUsage(import.meta.url);
    return values.help ? 0 : 64;
  }
  if (command === 'later') {
    await call('POST', '/advance-time', { ms: Number(values.hours) * 3_600_000 });
    process.stdout.write(`the fake's clock moved on ${values.hours} hours\n`);
    return 0;
  }
  if (!from || !/^[0-9]{5,20}$/.test(from)) {
    process.stderr.write('--from: a WhatsApp number in international form, e.g. 6281234567890\n');
    return 64;
  }
  const since = ((await call('GET', `/sent?to=${from}`)) as Sent[]).reduce((max, s) => Math.max(max, s.index + 1), 0);
  if (command === 'say') {
    const text = words.join(' ');
    if (!text) return 64;
    await call('POST', '/text', { from, text, ...(values.name ? { name: values.name } : {}) });
  } else if (command === 'press') {
    const [id] = words;
    const last = ((await call('GET', `/sent?to=${from}`)) as Sent[]).at(-1);
    if (!id || !last) {
      process.stderr.write('usage: press --from 6281234567890 <button id printed with an answer>\n');
      return 64;
    }
    await call('POST', '/button-reply', { from, replyTo: last.wamid, id, title: id });
  } else {
    return unknownCommand(command);
  }
  await follow(from, since);
  return 0;
}

runMain(main);
