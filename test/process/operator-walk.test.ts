import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase, eventually, testEnvVars } from '../helpers/env.ts';
import { killAllGateways, runCli, startGateway } from '../helpers/gateway-process.ts';

/**
 * Issue #13's end-to-end walk, over real HTTP and SMPP with the gateway as a process: a citizen
 * texts the SMSC simulator; the first super admin is created with the CLI beside the running
 * gateway; the super admin verifies and forwards, the agency admin assigns a unit, the liaison
 * answers, the citizen gets each SMS; ten working days later (`lapor deadlines sweep --at`) the
 * report closes and the citizen is told.
 */

afterAll(async () => {
  await killAllGateways();
});

async function cli(args: string[], env: Record<string, string>, input?: string): Promise<string> {
  const run = runCli(args, env, input);
  const exit = await run.exited;
  expect(exit, run.output()).toEqual({ code: 0, signal: null });
  return run.output();
}

describe('a report walked to selesai by the people who run LAPOR!', () => {
  it('from an SMS to an automatic close, every step told to the citizen by SMS', { timeout: 120_000 }, async () => {
    const env = { ...testEnvVars({ LAPOR_DATABASE_URL: await createDatabase() }), LAPOR_LOG_LEVEL: 'info' };
    const gateway = await startGateway(env);
    const line = await eventually(async () => gateway.stdout.join('').split('\n').find((l) => l.includes('started the SMSC simulator')));
    const control = (JSON.parse(line) as { control: string }).control;
    const api = gateway.url;
    const from = '+6281398765432';

    const texts = async () => ((await (await fetch(`${control}/replies?to=${encodeURIComponent(from)}`)).json()) as { replies: { text: string }[] }).replies.map((r) => r.text);
    const smsMatching = (pattern: RegExp) => eventually(async () => (await texts()).find((t) => pattern.test(t)), 15_000, `an SMS matching ${pattern}`);
    const post = async (path: string, token: string | undefined, body: unknown) => {
      const res = await fetch(`${api}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as Record<string, unknown>;
      expect(res.status, `${path}: ${JSON.stringify(json)}`).toBe(200);
      return json;
    };
    const login = async (email: string, password: string) => (await post('/api/v1/auth/login', undefined, { email, password })).token as string;

    // The citizen.
    const mo = await fetch(`${control}/mo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from, text: 'LAPOR listrik padam 3 hari di Jl. Dago 12 Bandung, trafo rusak' }) });
    expect(mo.status).toBe(200);
    const trackingId = /nomor (\d{10})/.exec(await smsMatching(/diterima dengan nomor/))![1]!;

    // The people, created with the CLI beside the running gateway.
    const password = 'kata-sandi-yang-panjang-1';
    expect(await cli(['user', 'add', '--email', 'verifikator@lapor.go.id', '--role', 'super_admin', '--password-stdin'], env, `${password}\n`)).toContain('added verifikator@lapor.go.id');
    await cli(['user', 'add', '--email', 'admin@pln.co.id', '--role', 'agency_admin', '--agency', 'pln', '--password-stdin'], env, `${password}\n`);
    await cli(['user', 'add', '--email', 'penghubung@pln.co.id', '--role', 'liaison', '--unit', 'pln-uid-jabar', '--password-stdin'], env, `${password}\n`);
    const admin = await login('verifikator@lapor.go.id', password);
    const pln = await login('admin@pln.co.id', password);
    const liaison = await login('penghubung@pln.co.id', password);

    const report = `/api/v1/admin/reports/${trackingId}`;
    await post(`${report}/verify`, admin, { kind: 'pengaduan', weight: 'sedang' });
    await post(`${report}/dispose`, admin, { agency: 'pln' });
    expect(await smsMatching(/diteruskan ke PT PLN/)).toContain(trackingId);
    await post(`${report}/dispose`, pln, { unit: 'pln-uid-jabar' });
    await post(`${report}/answer`, liaison, { text: 'Trafo di Jl. Dago sudah diganti pada 5 Desember; listrik menyala kembali.' });
    expect(await smsMatching(/menanggapi laporan/)).toContain('Trafo di Jl. Dago sudah diganti');
    expect(gateway.output()).toContain('"msg":"lapor gateway running"');

    // Ten working days without a word from the citizen.
    const detail = (await (await fetch(`${api}${report}`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { deadlines: { clock: string; dueAt: string }[] };
    const autoClose = detail.deadlines.find((d) => d.clock === 'auto_close')!;
    const at = new Date(new Date(autoClose.dueAt).getTime() + 60_000).toISOString();
    expect(await cli(['deadlines', 'sweep', '--at', at], env)).toMatch(/1 report\(s\) closed automatically/);
    expect(await smsMatching(/telah selesai/)).toContain(trackingId);
    const closed = (await (await fetch(`${api}/api/v1/reports/${trackingId}`)).json()) as { status: string; colour: string };
    expect(closed).toMatchObject({ status: 'selesai', colour: 'hijau' });
    // A second sweep finds nothing more to do, and the citizen is told once.
    expect(await cli(['deadlines', 'sweep', '--at', at], env)).toMatch(/0 report\(s\) closed automatically/);
    await new Promise((r) => setTimeout(r, 500));
    expect((await texts()).filter((t) => /telah selesai/.test(t))).toHaveLength(1);

    // The statistics count it: forwarded to PLN and answered today, closed automatically on the sweep's date.
    const jakarta = (iso: string) => new Date(Date.parse(iso) + 7 * 3_600_000).toISOString().slice(0, 10);
    const stats = (await (await fetch(`${api}/api/v1/stats?from=${jakarta(new Date().toISOString())}&to=${jakarta(at)}`)).json()) as { agencies: Record<string, unknown>[] };
    expect(stats.agencies.find((a) => a.agency === 'pln')).toMatchObject({ received: 1, forwarded: 1, answered: 1, answeredOnTime: 1, closedAutomatically: 1, byColour: { merah: 0, kuning: 0, hijau: 1 } });

    expect(await gateway.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});
