import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDammValid } from '../../src/core/tracking-id.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

async function fileReport(body: unknown, headers: Record<string, string> = {}) {
  return env.app.inject({ method: 'POST', url: '/api/v1/reports', payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
}

async function persisted(trackingId: string) {
  return eventually(async () => {
    const res = await env.app.inject({ method: 'GET', url: `/api/v1/reports/${trackingId}` });
    const body = res.json();
    return res.statusCode === 200 && !body.pending ? body : undefined;
  }, 10_000, `report ${trackingId}`);
}

describe('POST then GET a report', () => {
  it('returns a valid tracking ID at once and shows the report once the pipeline stored it', async () => {
    const res = await fileReport({ text: 'Jalan rusak parah di depan SDN 3 Sukamaju, sudah dua bulan berlubang.' });
    expect(res.statusCode).toBe(201);
    const created = res.json();
    expect(created.trackingId).toMatch(/^[1-9][0-9]{9}$/);
    expect(isDammValid(created.trackingId)).toBe(true);
    expect(created).toMatchObject({ status: 'belum_terverifikasi', colour: 'merah' });

    const view = await persisted(created.trackingId);
    expect(view).toMatchObject({ trackingId: created.trackingId, status: 'belum_terverifikasi', colour: 'merah' });
    expect(view.text).toContain('SDN 3 Sukamaju');
    expect(view.timeline[0]).toMatchObject({ event: 'received', status: 'belum_terverifikasi' });
    // The web channel keeps its notifications for the status view.
    await eventually(async () => {
      const again = await env.app.inject({ method: 'GET', url: `/api/v1/reports/${created.trackingId}` });
      return again.json().notifications.some((n: { kind: string }) => n.kind === 'received') ? true : undefined;
    });
  });
});

describe('language', () => {
  it('answers in English when the form asks for it, and shows the notification text', async () => {
    const res = await fileReport({ text: 'The street light on Jalan Melati has been broken for two weeks.', lang: 'en' });
    expect(res.statusCode).toBe(201);
    expect(res.json().statusLabel).toBe('not yet verified');
    const { trackingId } = res.json();
    const notification = await eventually(async () => {
      const view = (await env.app.inject({ method: 'GET', url: `/api/v1/reports/${trackingId}?lang=en` })).json();
      return view.notifications?.find((n: { kind: string }) => n.kind === 'received');
    });
    expect(notification.text).toContain(`Your report was received with number ${trackingId}`);
  });

  it('answers in Bahasa Indonesia by default', async () => {
    const { trackingId } = (await fileReport({ text: 'Lampu jalan di Jalan Melati mati sudah dua minggu, gelap sekali.' })).json();
    const notification = await eventually(async () => {
      const view = (await env.app.inject({ method: 'GET', url: `/api/v1/reports/${trackingId}` })).json();
      return view.notifications?.find((n: { kind: string }) => n.kind === 'received');
    });
    expect(notification.text).toContain(`Laporan Anda telah diterima dengan nomor ${trackingId}`);
  });
});
