import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmscSimulator, type BindInfo, type SubmitRecord } from '../../../scripts/smsc/simulator.ts';
import { createTestEnv, eventually, type TestEnv } from '../../helpers/env.ts';

/**
 * The SMPP link's fault handling against the real simulator over TCP: a link that is alive but
 * useless — half-open, nacking everything, unbound by the SMSC, answering no submit_sm — is ended
 * and bound afresh, the link status shows it, and the citizen's reply still arrives exactly once.
 * Observations are the simulator's own (binds, closed sessions, submits and their statuses) and the
 * link state /metrics is built from. Small timings, one simulator and one gateway for this file.
 */

const ENQUIRE_LINK_MS = 400;
const REQUEST_TIMEOUT_MS = 600;
/** The client's watchdog looks every max(250, enquireLinkMs / 2) ms. */
const WATCHDOG_TICK_MS = 250;
const NACK_STORM_COUNT = 3;

let sim: SmscSimulator;
let env: TestEnv;
const binds: (BindInfo & { at: number })[] = [];
const closes = new Map<number, number>();
let numberCounter = Math.floor(Math.random() * 1e6);
const newNumber = () => `+62813${String(numberCounter++).padStart(7, '0')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  sim = await SmscSimulator.start({ systemId: 'lapor', password: 'secret', receiptDelayMs: 5 });
  sim.on('bind', (b) => binds.push({ ...b, at: Date.now() }));
  sim.on('close', ({ sessionId }) => closes.set(sessionId, Date.now()));
  env = await createTestEnv({
    channels: ['sms'],
    env: {
      LAPOR_SMPP_URLS: `smpp://lapor:secret@127.0.0.1:${sim.port}?id=sim&tps=1000&window=10`,
      // A backoff long enough for the link-state sampler below to see it (100–200 ms on the first try).
      LAPOR_SMPP_RECONNECT_MIN_MS: '200',
      LAPOR_SMPP_RECONNECT_MAX_MS: '400',
      LAPOR_SMPP_ENQUIRE_LINK_MS: String(ENQUIRE_LINK_MS),
      LAPOR_SMPP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      LAPOR_SMPP_NACK_STORM_COUNT: String(NACK_STORM_COUNT),
      LAPOR_SMPP_NACK_STORM_WINDOW_MS: '10000',
      LAPOR_SMPP_LEASE_MS: '2000',
      LAPOR_SMPP_RATE_LIMIT_PER_HOUR: '100000',
    },
  });
  await sim.waitForBind(10_000);
});
afterAll(async () => {
  await env?.close();
  await sim?.close();
});

/** The state /metrics and /readyz report for the bind (lapor_channel_link_up). */
const linkState = () => env.runtime.metrics.links.probe().find((p) => p.channel === 'sms' && p.status.link === 'sim')?.status.state ?? 'none';

/** Records every change of the link state until stopped. */
function watchLink() {
  const states: string[] = [linkState()];
  const sample = () => {
    const state = linkState();
    if (states.at(-1) !== state) states.push(state);
  };
  const timer = setInterval(sample, 5);
  return {
    states,
    stop: () => {
      clearInterval(timer);
      sample();
    },
  };
}

/** Bound, one session at the simulator, and that session is the gateway's latest bind. */
async function liveSession(): Promise<number> {
  await eventually(async () => (linkState() === 'bound' && sim.sessions === 1 ? true : undefined), 10_000, 'a bound link');
  const last = binds.at(-1);
  expect(last).toBeDefined();
  expect(closes.has(last!.sessionId)).toBe(false);
  return last!.sessionId;
}

async function rebound(previous: number, bindsBefore: number): Promise<number> {
  await eventually(async () => (closes.has(previous) ? true : undefined), 10_000, `session ${previous} closed`);
  await eventually(async () => (binds.length > bindsBefore && linkState() === 'bound' ? true : undefined), 10_000, 'a new bind');
  const current = binds.at(-1)!.sessionId;
  expect(current).not.toBe(previous);
  return current;
}

const acceptedTo = (number: string, since = 0) => sim.submits.filter((s) => s.to === number && s.status === 0 && s.index >= since);

/**
 * The citizen gets the help text (one reply, no report), and each of its parts was accepted exactly
 * once from submit `since` on; the gateway recorded exactly those submits as the reply's.
 */
async function helpDeliveredOnce(from: string, since = 0): Promise<SubmitRecord[]> {
  const total = (subs: SubmitRecord[]) => subs[0]?.concat?.total ?? 1;
  const seqs = (subs: SubmitRecord[]) => subs.map((s) => s.concat?.seq ?? 1).sort((a, b) => a - b);
  await eventually(
    async () => {
      const accepted = acceptedTo(from, since);
      return accepted.length && new Set(seqs(accepted)).size === total(accepted) ? true : undefined;
    },
    10_000,
    `every part of the help reply to ${from}`,
  );
  // Long enough for a second, duplicate send to show up if the gateway were to make one.
  await sleep(600);
  const accepted = acceptedTo(from, since);
  expect(seqs(accepted)).toEqual(Array.from({ length: total(accepted) }, (_, i) => i + 1));
  const text = [...accepted].sort((a, b) => (a.concat?.seq ?? 1) - (b.concat?.seq ?? 1)).map((s) => s.text).join('');
  expect(text).toContain('CEK');
  const { rows } = await env.runtime.db.query<{ status: string; transport_ids: string[] }>(
    `SELECT status, transport_ids FROM messages WHERE direction = 'out' AND transport_ids @> ARRAY[$1::text]`,
    [accepted[0]!.messageId],
  );
  expect(rows).toHaveLength(1);
  expect(['sent', 'delivered']).toContain(rows[0]!.status);
  expect([...rows[0]!.transport_ids].sort()).toEqual(accepted.map((s) => s.messageId!).sort());
  return accepted;
}

describe('a half-open link', () => {
  it('is noticed by the enquire_link watchdog, ended and bound afresh; the link shows down then up', async () => {
    const before = await liveSession();
    const bindsBefore = binds.length;
    const watch = watchLink();
    const silencedAt = Date.now();
    expect(sim.silence(true)).toBe(1);
    try {
      const after = await rebound(before, bindsBefore);
      const noticedMs = closes.get(before)! - silencedAt;
      // At worst: quiet for enquireLinkMs, one watchdog tick, then the enquire_link's timeout.
      expect(noticedMs).toBeLessThan(ENQUIRE_LINK_MS + WATCHDOG_TICK_MS + REQUEST_TIMEOUT_MS + 750);
      expect(env.logs.some((l) => l.includes('smpp enquire_link unanswered'))).toBe(true);
      watch.stop();
      expect(watch.states[0]).toBe('bound');
      expect(watch.states).toContain('backoff');
      expect(watch.states.at(-1)).toBe('bound');
      const metrics = await env.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/lapor_channel_link_up\{channel="sms",link="sim",state="bound"\} 1/);

      // The new session carries traffic.
      const from = newNumber();
      await sim.sendMo({ from, text: 'BANTUAN' });
      const [reply] = await helpDeliveredOnce(from);
      expect(reply!.sessionId).toBe(after);
    } finally {
      watch.stop();
      sim.silence(false);
    }
  });
});

describe('a generic_nack storm', () => {
  it('ends the bind, binds again with backoff, and the reply is still delivered exactly once', async () => {
    const before = await liveSession();
    const bindsBefore = binds.length;
    const watch = watchLink();
    const from = newNumber();
    // Every submit of the reply is nacked until the storm threshold is reached; the default status
    // (ESME_RINVCMDID) must not make the send a permanent failure.
    sim.nackNext(NACK_STORM_COUNT);
    try {
      await sim.sendMo({ from, text: 'BANTUAN' });
      const after = await rebound(before, bindsBefore);
      const accepted = await helpDeliveredOnce(from);
      watch.stop();
      const nacked = sim.submits.filter((s) => s.to === from && s.nacked);
      expect(nacked).toHaveLength(NACK_STORM_COUNT);
      expect(new Set(nacked.map((s) => s.sessionId))).toEqual(new Set([before]));
      expect(accepted.every((s) => s.sessionId === after)).toBe(true);
      expect(env.logs.some((l) => l.includes('smpp generic_nack storm; rebinding'))).toBe(true);
      expect(watch.states).toContain('backoff');
      expect(watch.states.at(-1)).toBe('bound');
    } finally {
      watch.stop();
      sim.nackNext(0);
    }
  });
});

describe('an unbind from the SMSC', () => {
  it('is answered with unbind_resp, and the gateway binds again', async () => {
    const before = await liveSession();
    const bindsBefore = binds.length;
    const watch = watchLink();
    try {
      const response = await sim.sendPdu('unbind', {}, 2_000);
      expect(response?.command).toBe('unbind_resp');
      expect(response?.command_status).toBe(0);
      const after = await rebound(before, bindsBefore);
      watch.stop();
      expect(watch.states).toContain('backoff');
      expect(watch.states.at(-1)).toBe('bound');
      expect(env.logs.some((l) => l.includes('smsc unbound us'))).toBe(true);

      const from = newNumber();
      await sim.sendMo({ from, text: 'BANTUAN' });
      const [reply] = await helpDeliveredOnce(from);
      expect(reply!.sessionId).toBe(after);
    } finally {
      watch.stop();
    }
  });
});

describe('backoff', () => {
  it('binds ever further apart when the SMSC unbinds right after every bind', async () => {
    await liveSession();
    const logStart = env.logs.length;
    let unbinds = 3;
    const unbindSoon = () => {
      if (unbinds-- <= 0) return;
      setTimeout(() => void sim.sendPdu('unbind', {}, 2_000).catch(() => undefined), 20);
    };
    sim.on('bind', unbindSoon);
    try {
      unbindSoon();
      const ended = () =>
        env.logs
          .slice(logStart)
          .map((l) => JSON.parse(l) as { msg?: string; reason?: string; retryInMs?: number })
          .filter((l) => l.msg === 'smpp session ended' && l.reason === 'smsc unbound us');
      const delays = await eventually(async () => (ended().length >= 3 ? ended().map((l) => l.retryInMs!) : undefined), 10_000, 'three unbinds');
      await liveSession();
      // The first session had lasted: the first delay is reconnectMinMs with jitter (100–200 ms). The
      // next sessions lasted 20 ms: the delay doubles (base 400 ms, the maximum, so 200–400 ms each)
      // instead of starting over at every successful bind.
      expect(delays[0]).toBeLessThanOrEqual(200);
      expect(delays[1]! + delays[2]!).toBeGreaterThan(400);
    } finally {
      sim.off('bind', unbindSoon);
    }
  });
});

describe('an SMSC that stops answering submit_sm', () => {
  it('gets a new bind once a submit times out with none answered, and the reply is delivered once it answers again', async () => {
    const before = await liveSession();
    const bindsBefore = binds.length;
    const from = newNumber();
    // Released the moment the gateway gives up on the stalled session: from then on the SMSC answers.
    let releasedAt = -1;
    const release = ({ sessionId }: { sessionId: number }) => {
      if (sessionId !== before || releasedAt >= 0) return;
      releasedAt = sim.submits.length;
      sim.holdResponses(false);
    };
    sim.on('close', release);
    sim.holdResponses(true);
    try {
      await sim.sendMo({ from, text: 'BANTUAN' });
      const held = await eventually(async () => sim.submits.find((s) => s.to === from), 10_000, 'the held submit');
      expect(held.sessionId).toBe(before);
      // enquire_link is still answered while submits are held, so this is the submit timeout's doing.
      const after = await rebound(before, bindsBefore);
      expect(closes.get(before)! - held.receivedAt).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
      expect(closes.get(before)! - held.receivedAt).toBeLessThan(REQUEST_TIMEOUT_MS + 1_000);
      expect(env.logs.some((l) => l.includes('smpp submit_sm unanswered; rebinding'))).toBe(true);
      expect(releasedAt).toBeGreaterThan(held.index);

      const accepted = await helpDeliveredOnce(from, releasedAt);
      expect(accepted.every((s) => s.sessionId === after)).toBe(true);
      // What the stalled session took was never answered; the simulator counts it as sent (a real SMSC
      // may or may not have delivered it: SMPP has no way to tell, so this is at-least-once).
      expect(sim.submits.filter((s) => s.to === from && s.index < releasedAt).every((s) => s.sessionId === before)).toBe(true);
    } finally {
      sim.off('close', release);
      sim.holdResponses(false);
    }
  });
});

describe('privacy', () => {
  it('never logs a citizen’s number or the password', () => {
    const all = env.logs.join('\n');
    expect(all).not.toMatch(/62813\d{7}/);
    expect(all).not.toContain('secret');
  });
});
