import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InboundMessageSchema, type InboundMessageInput } from '../../src/core/inbound.ts';
import { NotifyJobSchema } from '../../src/queue/jobs.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';
import { account, call, type Account } from '../helpers/operators.ts';

/**
 * The reporter's side of the lifecycle (issue #13), by SMS into the intake worker while operators
 * act through the API: the verification clock from receipt, an answer to a request for
 * information, PUAS and TIDAK PUAS, and a follow-up that reopens a report that could not be processed.
 * No SMS adapter runs here: replies wait in notify-sms, where the test reads them.
 */

let env: TestEnv;
let admin: Account;
let pln: Account;
beforeAll(async () => {
  env = await createTestEnv();
  admin = await account(env, 'super_admin');
  pln = await account(env, 'agency_admin', { agency: 'pln' });
});
afterAll(async () => {
  await env?.close();
});

const newNumber = () => `+62813${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;

function sms(text: string, from: string): InboundMessageInput {
  const id = randomBytes(6).toString('hex');
  return { channel: 'sms', account: 'telkomsel', externalId: `m${id}`, dedupKey: `sms_${id}`, sender: { address: from }, text, receivedAt: new Date().toISOString(), replyContext: {} };
}

/** Delivers an SMS and waits for the reply the gateway queued to it; returns the reply's kind. */
async function send(text: string, from: string): Promise<string> {
  const input = sms(text, from);
  await env.runtime.queues.enqueueInbound(InboundMessageSchema.parse(input), 60_000);
  const queue = env.runtime.queues.notify.get('sms')!;
  return eventually(async () => {
    const jobs = await queue.getJobs(['waiting', 'delayed', 'prioritized', 'completed', 'active']);
    return jobs.filter((j) => j.name !== 'batch').map((j) => NotifyJobSchema.parse(j.data)).find((n) => n.notifyKey.startsWith(`n_${input.dedupKey}_`))?.kind;
  }, 10_000, `the reply to "${text}"`);
}

/** Files a report by SMS and waits until it is stored and verified automatically; returns its tracking ID. */
async function filedBySms(text: string, from: string): Promise<string> {
  const input = sms(text, from);
  await env.runtime.queues.enqueueInbound(InboundMessageSchema.parse(input), 60_000);
  return eventually(async () => {
    const { rows } = await env.runtime.db.query<{ id: string }>(
      `SELECT r.tracking_id AS id FROM inbound_receipts i JOIN reports r ON r.seq = i.report_seq WHERE i.external_id = $1 AND r.verification IS NOT NULL`,
      [input.externalId],
    );
    return rows[0]?.id;
  }, 10_000, `the SMS report "${text}"`);
}

/** A new report by SMS from a number of its own; returns its tracking ID and the number. */
async function smsReport(): Promise<{ id: string; from: string }> {
  const from = newNumber();
  return { id: await filedBySms(`Listrik padam sejak kemarin di Jl. Cempaka ${randomBytes(2).toString('hex')} Bandung, trafo meledak.`, from), from };
}

const step = (id: string, route: string, who: Account, body: unknown) => call(env, 'POST', `/api/v1/admin/reports/${id}/${route}`, who, body);
const detail = async (id: string) => (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json();
async function go(id: string, route: string, who: Account, body: unknown) {
  const res = await step(id, route, who, body);
  expect(res.statusCode, `${route}: ${res.body}`).toBe(200);
}

describe('the reporter in the lifecycle', () => {
  it('starts the verification clock at receipt, and the verification meets it on time', async () => {
    const { id } = await smsReport();
    const { calendar } = env.runtime.clocks;
    const view = await detail(id);
    expect(view.deadlines).toEqual([
      { clock: 'verification', dueAt: `${calendar.addWorkingDays(calendar.jakartaDate(new Date(view.receivedAt)), 3)}T23:59:59.999+07:00`, paused: false, breached: false, remainingWorkingDays: expect.any(Number) },
    ]);
    await go(id, 'verify', admin, { kind: 'pengaduan', weight: 'ringan' });
    const after = await detail(id);
    expect(after.deadlines).toEqual([]);
    expect(after.events.find((e: { type: string }) => e.type === 'verified').data).toMatchObject({ onTime: { verification: true }, workingDays: { verification: 0 } });
  });

  it('returns a report in tertunda to where it stood when its reporter answers, its clock running again', async () => {
    const { id, from } = await smsReport();
    await go(id, 'verify', admin, { kind: 'pengaduan', weight: 'sedang' });
    await go(id, 'dispose', admin, { agency: 'pln' });
    const dueBefore = (await detail(id)).deadlines[0].dueAt;
    await go(id, 'request-info', pln, { message: 'Berapa nomor ID pelanggan PLN Anda?' });
    expect((await detail(id)).status).toBe('tertunda');
    // Someone else cannot answer for the reporter.
    expect(await send(`BALAS ${id} ini bukan laporan saya`, newNumber())).toBe('unknown_id');
    expect((await detail(id)).status).toBe('tertunda');

    expect(await send(`BALAS ${id} ID pelanggan 5321 0987 654`, from)).toBe('follow_up_added');
    const view = await detail(id);
    expect(view.status).toBe('terdisposisi');
    // Paused and resumed on the same day: the due date is what it was.
    expect(view.deadlines).toEqual([expect.objectContaining({ clock: 'follow_up', paused: false, dueAt: dueBefore })]);
    expect(view.events.find((e: { type: string }) => e.type === 'info_provided')).toMatchObject({ actor: 'citizen', from: 'tertunda', to: 'terdisposisi' });
    expect(view.thread.filter((m: { direction: string }) => m.direction === 'in').map((m: { text: string }) => m.text)).toContain('ID pelanggan 5321 0987 654');
  });

  it('tells a reporter rating an unanswered report that there is nothing to rate yet, and closes an answered one on PUAS', async () => {
    const { id, from } = await smsReport();
    expect(await send(`PUAS ${id}`, from)).toBe('nothing_to_rate');
    await go(id, 'verify', admin, { kind: 'pengaduan', weight: 'sedang' });
    await go(id, 'dispose', admin, { agency: 'pln' });
    await go(id, 'answer', pln, { text: 'Trafo sudah diganti, listrik menyala sejak pukul 14.00.' });
    expect(await send(`PUAS ${id} terima kasih PLN`, from)).toBe('satisfaction_recorded');
    const view = await detail(id);
    expect(view).toMatchObject({ status: 'selesai', deadlines: [] });
    expect(view.events.filter((e: { type: string }) => e.type === 'closed')).toEqual([
      expect.objectContaining({ actor: 'citizen', from: 'sedang_diproses', to: 'selesai', data: { agency: 'pln', by: 'reporter', closeReason: 'puas' } }),
    ]);
  });

  it('stops the auto-close on TIDAK PUAS, reopens a closed report, but not one closed as debat kusir', async () => {
    const { id, from } = await smsReport();
    await go(id, 'verify', admin, { kind: 'pengaduan', weight: 'sedang' });
    await go(id, 'dispose', admin, { agency: 'pln' });
    await go(id, 'answer', pln, { text: 'Sudah kami cek, tidak ada gangguan di wilayah tersebut.' });
    expect((await detail(id)).deadlines.map((d: { clock: string }) => d.clock)).toEqual(['auto_close']);
    expect(await send(`TIDAK PUAS ${id} listrik masih padam sampai sekarang`, from)).toBe('satisfaction_recorded');
    expect(await detail(id)).toMatchObject({ status: 'sedang_diproses', deadlines: [] });

    await go(id, 'close', admin, { reason: 'selesai' });
    expect(await send(`TIDAK PUAS ${id} belum beres`, from)).toBe('satisfaction_recorded');
    expect((await detail(id)).status).toBe('sedang_diproses');

    await go(id, 'close', admin, { reason: 'debat_kusir', note: 'sudah dijawab tiga kali' });
    expect(await send(`TIDAK PUAS ${id} tetap tidak puas`, from)).toBe('satisfaction_recorded');
    expect((await detail(id)).status).toBe('selesai');
  });

  it('reopens a report that could not be processed when its reporter writes again, with a fresh verification clock', async () => {
    const { id, from } = await smsReport();
    await go(id, 'reject', admin, { reason: 'Lokasi tidak disebutkan.' });
    expect((await detail(id)).deadlines).toEqual([]);
    expect(await send(`${id} lokasinya di Jl. Cempaka 12 RT 03 RW 05 Kelurahan Sukaluyu`, from)).toBe('follow_up_added');
    const view = await detail(id);
    expect(view.status).toBe('belum_terverifikasi');
    expect(view.deadlines.map((d: { clock: string }) => d.clock)).toEqual(['verification']);
    expect(view.events.find((e: { type: string }) => e.type === 'reopened')).toMatchObject({ from: 'tidak_dapat_diproses', to: 'belum_terverifikasi' });
  });

  it('keeps an ANONIM sender’s number from the agency everywhere it looks', async () => {
    const from = newNumber();
    const id = await filedBySms('ANONIM pungutan liar di loket PLN Jl. Asia Afrika, petugas minta uang tambahan 50 ribu', from);
    await go(id, 'verify', admin, { kind: 'pengaduan', weight: 'berat' });
    await go(id, 'dispose', admin, { agency: 'pln' });
    expect(await send(`${id} kejadian kemarin pukul 10 pagi`, from)).toBe('follow_up_added');
    const digits = from.slice(3); // without +62: no form of the number may appear
    const seen = [
      await call(env, 'GET', `/api/v1/admin/reports/${id}`, pln),
      await call(env, 'GET', '/api/v1/admin/reports?limit=200', pln),
      await call(env, 'GET', `/api/v1/admin/reports?q=${id}`, pln),
      await call(env, 'GET', `/api/v1/admin/reports/${id}/reporter`, pln),
      await env.app.inject({ method: 'GET', url: `/api/v1/reports/${id}` }),
    ];
    expect(seen[3]!.statusCode).toBe(403);
    for (const res of seen) expect(res.body).not.toContain(digits);
    expect(seen[0]!.json()).toMatchObject({ anonim: true, channel: 'sms' });
    // The super admin may read it, and that read is on the record.
    expect((await call(env, 'GET', `/api/v1/admin/reports/${id}/reporter`, admin)).json()).toMatchObject({ channel: 'sms', address: from });
    expect(env.logs.join('\n')).not.toContain(digits);
  });

  it('stops the verification clock while the rules wait for the reporter, and runs it again when they answer', async () => {
    const from = newNumber();
    // Too short to act on: the rules ask the reporter for more (tertunda) before anyone verifies it.
    const id = await filedBySms('jalan rusak', from);
    const asked = await detail(id);
    expect(asked.status).toBe('tertunda');
    expect(asked.deadlines).toEqual([{ clock: 'verification', dueAt: null, paused: true, breached: false, remainingWorkingDays: 3 }]);
    expect(await send(`${id} di Jl. Kenanga 4 RT 02, lubang sedalam 30 cm sejak seminggu`, from)).toBe('follow_up_added');
    const back = await detail(id);
    expect(back.status).toBe('belum_terverifikasi');
    // Paused and answered on the same day: due as if it had never stopped.
    const { calendar } = env.runtime.clocks;
    expect(back.deadlines).toEqual([expect.objectContaining({ clock: 'verification', paused: false, dueAt: `${calendar.addWorkingDays(calendar.jakartaDate(new Date(back.receivedAt)), 3)}T23:59:59.999+07:00` })]);
  });
});
