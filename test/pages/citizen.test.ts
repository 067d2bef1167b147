import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

/**
 * The citizen pages without a browser (their browser tests are in *.browser.test.ts): plain form
 * posts, as a phone without JavaScript sends them.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const post = (fields: Record<string, string>) =>
  env.app.inject({ method: 'POST', url: '/lapor', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form(fields) });
const KEY = '3b241101-e2bb-4255-8caf-4136c566a962';

describe('the report form', () => {
  it('files a report from a plain form post, once however often it is sent, and shows its number', async () => {
    const fields = { text: 'Jalan rusak di depan pasar Kosambi sejak sebulan, banyak pemotor jatuh.', privacy: 'anonim', phone: '0812-3456-7890', key: KEY, lang: 'id' };
    const first = await post(fields);
    expect(first.statusCode).toBe(303);
    const location = first.headers.location as string;
    expect(location).toMatch(/^\/lapor\/\d{10}\?baru=1$/);
    expect((await post(fields)).headers.location).toBe(location); // a double click or a reload
    const id = location.slice(7, 17);
    const row = await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ anonim: boolean; text: string }>('SELECT anonim, text FROM reports WHERE tracking_id = $1', [id]);
      return rows[0];
    }, 10_000, 'the report stored');
    expect(row).toEqual({ anonim: true, text: fields.text });
    const page = await env.app.inject({ method: 'GET', url: location });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain(`<p class="tracking">${id}</p>`);
    expect(page.body).toContain(`CEK ${id}`);
  });

  it('takes a photo with the report as a browser sends it (multipart), and refuses a file that is not one', async () => {
    const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082', 'hex');
    const multipart = (fields: Record<string, string>, file: { name: string; type: string; data: Buffer }) => {
      const boundary = '----lapor' + KEY.slice(0, 8);
      const parts: Buffer[] = Object.entries(fields).map(([k, v]) => Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
      parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="attachment"; filename="${file.name}"\r\ncontent-type: ${file.type}\r\n\r\n`), file.data, Buffer.from(`\r\n--${boundary}--\r\n`));
      return env.app.inject({ method: 'POST', url: '/lapor', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: Buffer.concat(parts) });
    };
    const ok = await multipart({ text: 'Saluran air tersumbat di Jl. Sukajadi 9, foto terlampir.', key: KEY.replace('3b', '6e'), lang: 'id' }, { name: 'selokan.png', type: 'image/png', data: PNG });
    expect(ok.statusCode, ok.body).toBe(303);
    const id = (ok.headers.location as string).slice(7, 17);
    const stored = await eventually(async () => {
      const { rows } = await env.runtime.db.query<{ filename: string }>('SELECT a.filename FROM attachments a JOIN reports r ON r.seq = a.report_seq WHERE r.tracking_id = $1', [id]);
      return rows[0];
    }, 10_000, 'the photo claimed by the report');
    expect(stored.filename).toBe('selokan.png');

    const exe = await multipart({ text: 'Ini bukan foto sungguhan, hanya berkas program.', key: KEY.replace('3b', '7f') }, { name: 'foto.jpg', type: 'image/jpeg', data: Buffer.from('MZ\x90\x00 program') });
    expect(exe.statusCode).toBe(400);
    expect(exe.body).toContain('<a href="#attachment">');
    const big = await multipart({ text: 'Foto yang terlalu besar untuk dikirim.', key: KEY.replace('3b', '8a') }, { name: 'besar.png', type: 'image/png', data: Buffer.concat([PNG, Buffer.alloc(20 * 1024 * 1024)]) });
    expect(big.statusCode).toBe(413);
    expect(big.body).toContain('Laporan terlalu besar');
  });

  it('shows what to fix, linked to the field, and files nothing', async () => {
    const { rows: before } = await env.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM reports');
    const res = await post({ text: '\u200b\u200b', phone: '08abc', email: 'bukan email', key: KEY.replace('3b', '4c') });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('class="error-summary"');
    for (const field of ['text', 'phone', 'email']) expect(res.body).toContain(`<a href="#${field}">`);
    expect(res.body).toContain('value="08abc"'); // what was typed stays
    await new Promise((r) => setTimeout(r, 300));
    const { rows: after } = await env.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM reports');
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  it('shows a citizen’s markup as text, never as markup', async () => {
    const res = await post({ text: 'Pelayanan buruk <script>alert(1)</script> <img src=x onerror=alert(2)> di kantor kelurahan', key: KEY.replace('3b', '5d') });
    const id = (res.headers.location as string).slice(7, 17);
    const page = await eventually(async () => {
      const p = await env.app.inject({ method: 'GET', url: `/lapor/${id}` });
      return p.body.includes('Isi laporan') ? p : undefined;
    }, 10_000, 'the status page with the text');
    expect(page.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.body).not.toContain('<script>alert(1)');
    expect(page.body).not.toContain('<img src=x');
  });

  it('answers a mistyped or unknown number with a hint, in English when asked', async () => {
    const mistyped = await env.app.inject({ method: 'GET', url: '/lapor/1234567890?lang=en' });
    expect([400, 404]).toContain(mistyped.statusCode);
    expect(mistyped.body).toMatch(/not a valid number, maybe a typo|There is no report/);
    expect(mistyped.headers['set-cookie']).toContain('lang=en');
    expect((await env.app.inject({ method: 'GET', url: '/lapor?id=12%2034' })).headers.location).toBe('/lapor/1234');
  });

  it('shows the statistics per agency with the open data link, and refuses a window that is not one', async () => {
    const res = await env.app.inject({ method: 'GET', url: '/statistik?from=2026-01-01&to=2026-12-31' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('href="/api/v1/stats.csv?from=2026-01-01&amp;to=2026-12-31"');
    expect(res.body).toMatch(/PT PLN \(Persero\)|Belum ada laporan/);
    const bad = await env.app.inject({ method: 'GET', url: '/statistik?from=2026-12-31&to=2026-01-01' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('role="alert"');
  });

  it('keeps the language switch on this site, and the pages out of other sites\u2019 frames', async () => {
    for (const url of ['/?lang=en/evil.example', '/?lang=en&x=//evil.example', '/lapor?id=&lang=en']) {
      const res = await env.app.inject({ method: 'GET', url });
      const link = /<a href="([^"]*)" hreflang=/.exec(res.body)?.[1] ?? '';
      expect(link, url).toMatch(/^\/(?!\/)/);
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    }
  });

  it('serves the stylesheet with a validator, and pages in Bahasa Indonesia by default', async () => {
    const css = await env.app.inject({ method: 'GET', url: '/assets/lapor.css' });
    expect(css.statusCode).toBe(200);
    expect((await env.app.inject({ method: 'GET', url: '/assets/lapor.css', headers: { 'if-none-match': css.headers.etag as string } })).statusCode).toBe(304);
    const home = await env.app.inject({ method: 'GET', url: '/' });
    expect(home.body).toContain('<html lang="id">');
    expect(home.body).toContain('Kirim laporan');
  });
});
