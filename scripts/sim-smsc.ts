/**
 * The SMSC simulator from the command line (`npm run sim:smsc -- <command>`).
 *
 *   serve [--port 2775] [--control 2776] [--system-id lapor] [--password lapor]
 *       Runs an SMSC on loopback for a gateway started with
 *       LAPOR_SMPP_URLS=smpp://lapor:lapor@127.0.0.1:2775. (`npm start` with no SMSC configured runs
 *       one itself, on the same ports.)
 *   send --from +6281234567890 [--ucs2] [--split udh8|udh16|sar|payload] [--wait 5] "LAPOR jalan rusak"
 *       Texts the gateway through a running simulator and prints the replies to that number.
 *   flood --count 1000 [--rate 200] [--mix 8:1:1]
 *       Sends load (single : multipart : UCS-2) and prints throughput and ack latency.
 *   fault drop|unbind|throttle|nack|silence|hold|heal [--count 5]
 *       Breaks the link the way real SMSCs do, to watch the gateway rebind and retry (its log,
 *       /readyz and /metrics); `heal` answers normally again.
 */
import { parseArgs } from 'node:util';
import { startControl } from './smsc/control.ts';
import { SmscSimulator } from './smsc/simulator.ts';
import { printUsage, runMain, unknownCommand } from './sim-cli.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '2775' },
    control: { type: 'string' },
    'system-id': { type: 'string', default: 'lapor' },
    password: { type: 'string', default: 'lapor' },
    from: { type: 'string' },
    ucs2: { type: 'boolean', default: false },
    split: { type: 'string' },
    wait: { type: 'string', default: '5' },
    count: { type: 'string' },
    rate: { type: 'string' },
    mix: { type: 'string', default: '1:0:0' },
    help: { type: 'boolean', short: 'h' },
  },
});
const [command = 'serve', ...words] = positionals;
const controlPort = Number(values.control ?? Number(values.port) + 1);
const control = `http://127.0.0.1:${controlPort}`;

async function post(path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${control}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json: unknown = await res.json();
  if (!res.ok) throw new Error(`${path}: ${JSON.stringify(json)}`);
  return json;
}

async function main(): Promise<number> {
  if (values.help) {
    return printUsage(import.meta.url);
  }
  if (command === 'serve') {
    const sim = await SmscSimulator.start({
      port: Number(values.port),
      systemId: values['system-id'],
      password: values.password,
      log: (line) => process.stdout.write(`smsc: ${line}\n`),
    });
    const ctl = await startControl(sim, controlPort);
    sim.on('reply', (reply) => process.stdout.write(`→ ${reply.to}: ${reply.text}\n`));
    process.stdout.write(`SMSC simulator on 127.0.0.1:${sim.port}, control on ${control}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await ctl.close();
    await sim.close();
    return 0;
  }
  if (command === 'send') {
    const text = words.join(' ');
    if (!values.from || !text) {
      process.stderr.write('usage: send --from +6281234567890 "LAPOR jalan rusak di depan SDN 3"\n');
      return 64;
    }
    const before = (await (await fetch(`${control}/replies`)).json()) as { replies: { index: number }[] };
    // `since` is a position among the simulator's submits: start after the last reply seen so far.
    const since = before.replies.reduce((max, r) => Math.max(max, r.index + 1), 0);
    const result = await post('/mo', { from: values.from, text, encoding: values.ucs2 ? 'ucs2' : 'auto', ...(values.split ? { split: values.split } : {}) });
    process.stdout.write(`sent: ${JSON.stringify(result)}\n`);
    const to = values.from.startsWith('+') ? values.from : `+${values.from}`;
    const seen = new Set<number>();
    const until = Date.now() + Number(values.wait) * 1000;
    while (Date.now() < until) {
      const { replies } = (await (await fetch(`${control}/replies?to=${encodeURIComponent(to)}&since=${since}`)).json()) as {
        replies: { index: number; text: string }[];
      };
      for (const reply of replies) {
        if (seen.has(reply.index)) continue;
        seen.add(reply.index);
        process.stdout.write(`← ${reply.text}\n`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!seen.size) process.stdout.write('no reply yet (is the gateway running and bound?)\n');
    return 0;
  }
  if (command === 'flood') {
    const [single = 1, multipart = 0, ucs2 = 0] = (values.mix ?? '1:0:0').split(':').map(Number);
    const result = await post('/flood', { count: Number(values.count ?? 1000), ...(values.rate ? { rate: Number(values.rate) } : {}), mix: { single, multipart, ucs2 } });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  if (command === 'fault') {
    const [kind] = words;
    if (!kind) {
      process.stderr.write('usage: fault drop|unbind|throttle|nack|silence|hold|heal [--count 5]\n');
      return 64;
    }
    process.stdout.write(`${JSON.stringify(await post('/fault', { kind, ...(values.count ? { count: Number(values.count) } : {}) }))}\n`);
    return 0;
  }
  return unknownCommand(command);
}

runMain(main);
