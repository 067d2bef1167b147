import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';
import { account, call, type Account } from '../helpers/operators.ts';

/** Files citizens attach: uploaded first, claimed by one report, fetched by those who may see it. */

let env: TestEnv;
let admin: Account;
let polri: Account;
beforeAll(async () => {
  env = await createTestEnv();
  admin = await account(env, 'super_admin');
  polri = await account(env, 'agency_admin', { agency: 'polri' });
});
afterAll(async () => {
  await env?.close();
});

// The smallest real PNG (1×1, transparent) and the start of a PDF.
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082', 'hex');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n');

const upload = (data: Buffer, type: string, filename?: string) =>
  env.app.inject({ method: 'POST', url: '/api/v1/attachments', headers: { 'content-type': type, ...(filename ? { 'x-filename': filename } : {}) }, payload: data });
const file = (body: Record<string, unknown>, key?: string) =>
  env.app.inject({ method: 'POST', url: '/api/v1/reports', headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) }, payload: JSON.stringify(body) });

describe('attachments', () => {
  it('keeps a photo and a PDF with the report that names them, for those who may see the report', async () => {
    const photo = await upload(PNG, 'image/png', encodeURIComponent('../../etc/foto jalan <rusak>.exe.png'));
    expect(photo.statusCode, photo.body).toBe(201);
    expect(photo.json()).toMatchObject({ attachment: expect.stringMatching(/^att_/), filename: 'foto jalan rusak.exe.png', contentType: 'image/png', size: PNG.length });
    const doc = await upload(PDF, 'application/pdf');
    const report = await file({ text: 'Jalan amblas di Jl. Ahmad Yani 40, foto dan surat RT terlampir.', attachments: [photo.json().attachment, doc.json().attachment] }, 'att-key-1');
    expect(report.statusCode, report.body).toBe(201);
    const id = report.json().trackingId as string;
    // A retry of the same request is the same report, even though its files are claimed now.
    await eventually(async () => {
      const { rows } = await env.runtime.db.query('SELECT count(*)::int AS n FROM attachments a JOIN reports r ON r.seq = a.report_seq WHERE r.tracking_id = $1', [id]);
      return rows[0].n === 2 ? true : undefined;
    }, 10_000, 'both files claimed by the report');
    expect((await file({ text: 'Jalan amblas di Jl. Ahmad Yani 40, foto dan surat RT terlampir.', attachments: [photo.json().attachment, doc.json().attachment] }, 'att-key-1')).json().trackingId).toBe(id);

    const detail = (await call(env, 'GET', `/api/v1/admin/reports/${id}`, admin)).json();
    expect(detail.attachments).toEqual([
      { id: expect.any(String), filename: 'foto jalan rusak.exe.png', contentType: 'image/png', size: PNG.length },
      { id: expect.any(String), filename: 'lampiran.pdf', contentType: 'application/pdf', size: PDF.length },
    ]);
    const got = await call(env, 'GET', `/api/v1/admin/reports/${id}/attachments/${detail.attachments[0].id}`, admin);
    expect(got.statusCode).toBe(200);
    expect(got.headers['content-type']).toBe('image/png');
    expect(got.headers['content-disposition']).toMatch(/^attachment; filename="foto jalan rusak\.exe\.png"$/);
    expect(got.headers['x-content-type-options']).toBe('nosniff');
    expect(got.rawPayload.equals(PNG)).toBe(true);
    // Another agency learns nothing, not even that the file exists.
    expect((await call(env, 'GET', `/api/v1/admin/reports/${id}/attachments/${detail.attachments[0].id}`, polri)).statusCode).toBe(404);
    expect((await call(env, 'GET', `/api/v1/admin/reports/${id}/attachments/999999`, admin)).statusCode).toBe(404);
  });

  it('refuses what is not a photo or a PDF, whatever it claims, and what is too large', async () => {
    const exe = Buffer.concat([Buffer.from('MZ\x90\x00'), Buffer.alloc(100)]);
    expect((await upload(exe, 'image/png', 'foto.png')).statusCode).toBe(415);
    expect((await upload(PNG, 'image/jpeg')).statusCode).toBe(415); // a PNG declared as a JPEG
    expect((await upload(Buffer.from('<script>alert(1)</script>'), 'application/pdf')).statusCode).toBe(415);
    expect((await upload(exe, 'application/x-msdownload')).statusCode).toBe(415);
    expect((await upload(Buffer.alloc(0), 'image/png')).statusCode).toBe(400);
    const big = Buffer.concat([PNG, Buffer.alloc(20 * 1024 * 1024)]);
    const tooBig = await upload(big, 'image/png');
    expect(tooBig.statusCode).toBe(413);
    const { rows } = await env.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM attachments WHERE size > 1000000');
    expect(rows[0]!.n).toBe(0);
  });

  it('lets a file belong to one report only, and refuses unknown tokens before handing out an ID', async () => {
    const token = (await upload(PNG, 'image/png')).json().attachment as string;
    expect((await file({ text: 'Lampu PJU mati di Jl. Riau, gelap sekali.', attachments: [token] })).statusCode).toBe(201);
    await eventually(async () => {
      const { rows } = await env.runtime.db.query('SELECT report_seq FROM attachments WHERE token = $1', [token]);
      return rows[0]?.report_seq ? true : undefined;
    }, 10_000, 'the file claimed');
    const reused = await file({ text: 'Laporan lain yang mencoba memakai foto orang lain.', attachments: [token] }, 'att-key-2');
    expect(reused.statusCode).toBe(400);
    expect(reused.json().error).toBe('unknown_attachment');
    // The refusal left no key behind: the same request fixed is a new report, not a replay of nothing.
    const fixed = await file({ text: 'Laporan lain yang mencoba memakai foto orang lain.' }, 'att-key-2');
    expect(fixed.statusCode).toBe(201);
    expect(fixed.headers['idempotent-replayed']).toBeUndefined();
    expect((await file({ text: 'x x x x', attachments: ['att_' + 'a'.repeat(24)] })).json().error).toBe('unknown_attachment');
    const many = await Promise.all([1, 2, 3, 4].map(async () => (await upload(PNG, 'image/png')).json().attachment as string));
    expect((await file({ text: 'Empat foto sekaligus untuk satu laporan.', attachments: many })).json().error).toBe('too_many_attachments');
  });

  it('gives a file to one of two reports naming it at once, and refuses the other before it is acknowledged', async () => {
    const token = (await upload(PNG, 'image/png')).json().attachment as string;
    const [a, b] = await Promise.all([
      file({ text: 'Pohon tumbang menutup Jl. Cihampelas, foto terlampir.', attachments: [token] }),
      file({ text: 'Laporan lain yang menyebut foto yang sama pada saat yang sama.', attachments: [token] }),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([201, 400]);
    const winner = (a.statusCode === 201 ? a : b).json().trackingId as string;
    await eventually(async () => {
      const { rows } = await env.runtime.db.query('SELECT r.tracking_id FROM attachments a JOIN reports r ON r.seq = a.report_seq WHERE a.token = $1', [token]);
      return rows[0]?.tracking_id === winner ? true : undefined;
    }, 10_000, 'the file with the report that was acknowledged');
  });
});
