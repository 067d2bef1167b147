import { randomUUID } from 'node:crypto';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
// Types only: the page reads what the API answers, which is what these describe.
import type { AgencyStats } from '../../store/stats.ts';
import type { HttpDeps } from '../app.ts';
import { html, type Html } from './html.ts';
import { langOf, page, rememberLang, type Lang } from './layout.ts';

/**
 * The citizens' pages: the report form, the status page and the public statistics. Thin clients of
 * the public API: every rule (what a report must hold, what the public may see of it) lives in the
 * API, which these pages call in-process (`app.inject`), so a page can never say more than the API.
 */

const t = (lang: Lang, id: string, en: string) => (lang === 'id' ? id : en);

const COLOUR_MEANING = {
  merah: ['Merah: laporan belum ditangani oleh instansi.', 'Red: no agency is handling the report yet.'],
  kuning: ['Kuning: laporan sedang ditangani.', 'Yellow: the report is being handled.'],
  hijau: ['Hijau: laporan sudah selesai.', 'Green: the report is closed.'],
} as const;

const FIELD_OF: Record<string, string> = { '/text': 'text', '/reporter/name': 'name', '/reporter/phone': 'phone', '/reporter/email': 'email' };

interface FormValues {
  text?: string;
  name?: string;
  phone?: string;
  email?: string;
  privacy?: string;
  key?: string;
}

function nav(lang: Lang): Html {
  return html`<li><a href="/">${t(lang, 'Buat laporan', 'File a report')}</a></li>
<li><a href="/lapor">${t(lang, 'Cek status', 'Check status')}</a></li>
<li><a href="/statistik">${t(lang, 'Statistik', 'Statistics')}</a></li>`;
}

function reportForm(lang: Lang, values: FormValues, errors: Record<string, string>, maxMb: number): Html {
  const err = (field: string) => (errors[field] ? html`<p class="field-error" id="${field}-error">${errors[field]}</p>` : '');
  const described = (field: string, hint?: string) => {
    const ids = [hint, errors[field] ? `${field}-error` : undefined].filter(Boolean).join(' ');
    return ids ? html` aria-describedby="${ids}"` : '';
  };
  const privacy = values.privacy ?? 'biasa';
  const summary = Object.keys(errors).length
    ? html`<div class="error-summary" role="alert" tabindex="-1" id="error-summary">
  <h2>${t(lang, 'Ada yang perlu diperbaiki', 'There is a problem')}</h2>
  <ul>${Object.entries(errors).map(([field, message]) => html`<li><a href="#${field}">${message}</a></li>`)}</ul>
</div>`
    : '';
  return html`${summary}
<h1>${t(lang, 'Laporkan keluhan pelayanan publik', 'Report a problem with a public service')}</h1>
<p>${t(lang, 'Laporan Anda diteruskan ke instansi yang berwenang. Anda akan menerima nomor laporan untuk memantau tindak lanjutnya.', 'Your report goes to the agency responsible. You get a tracking number to follow it.')}</p>
<form method="post" action="/lapor" enctype="multipart/form-data" novalidate>
  <input type="hidden" name="key" value="${values.key ?? randomUUID()}">
  <input type="hidden" name="lang" value="${lang}">
  <label for="text">${t(lang, 'Apa yang terjadi, di mana, dan kapan?', 'What happened, where and when?')}</label>
  <p class="hint" id="text-hint">${t(lang, 'Contoh: Jalan berlubang di depan SDN 3 Sukamaju sejak dua bulan.', 'For example: a pothole in front of SDN 3 Sukamaju for two months.')}</p>
  ${err('text')}
  <textarea id="text" name="text" rows="6" maxlength="10000" required${described('text', 'text-hint')}>${values.text ?? ''}</textarea>

  <fieldset>
    <legend>${t(lang, 'Kerahasiaan', 'Privacy')}</legend>
    <div class="choice"><input type="radio" id="privacy-biasa" name="privacy" value="biasa" ${privacy === 'biasa' ? 'checked' : ''}>
      <label for="privacy-biasa">${t(lang, 'Biasa: laporan dan tanggapannya dapat dilihat publik, identitas Anda tidak.', 'Standard: the report and its answer are public; who you are is not.')}</label></div>
    <div class="choice"><input type="radio" id="privacy-anonim" name="privacy" value="anonim" ${privacy === 'anonim' ? 'checked' : ''}>
      <label for="privacy-anonim">${t(lang, 'Anonim: instansi yang menangani tidak melihat identitas Anda.', 'Anonymous: the agency handling it never sees who you are.')}</label></div>
    <div class="choice"><input type="radio" id="privacy-rahasia" name="privacy" value="rahasia" ${privacy === 'rahasia' ? 'checked' : ''}>
      <label for="privacy-rahasia">${t(lang, 'Rahasia: isi laporan tidak dipublikasikan; hanya statusnya.', 'Confidential: the report is never published; only its status is.')}</label></div>
  </fieldset>

  <label for="attachment">${t(lang, 'Lampiran (boleh dikosongkan)', 'Attachment (optional)')}</label>
  <p class="hint" id="attachment-hint">${t(lang, `Satu foto (JPEG, PNG, WebP) atau PDF, paling besar ${maxMb} MB.`, `One photo (JPEG, PNG, WebP) or PDF, at most ${maxMb} MB.`)}</p>
  ${err('attachment')}
  <input type="file" id="attachment" name="attachment" accept="image/jpeg,image/png,image/webp,application/pdf"${described('attachment', 'attachment-hint')}>

  <h2>${t(lang, 'Identitas (boleh dikosongkan)', 'Who you are (optional)')}</h2>
  <p class="hint">${t(lang, 'Nomor HP atau email membuat Anda dapat dihubungi bila instansi perlu keterangan tambahan.', 'A phone number or email lets the agency reach you if it needs more information.')}</p>
  <label for="name">${t(lang, 'Nama', 'Name')}</label>
  ${err('name')}
  <input type="text" id="name" name="name" autocomplete="name" maxlength="200" value="${values.name ?? ''}"${described('name')}>
  <label for="phone">${t(lang, 'Nomor HP', 'Mobile number')}</label>
  <p class="hint" id="phone-hint">${t(lang, 'Contoh: 0812 3456 7890', 'For example: 0812 3456 7890')}</p>
  ${err('phone')}
  <input type="tel" id="phone" name="phone" autocomplete="tel" inputmode="tel" maxlength="32" value="${values.phone ?? ''}"${described('phone', 'phone-hint')}>
  <label for="email">Email</label>
  ${err('email')}
  <input type="email" id="email" name="email" autocomplete="email" maxlength="254" value="${values.email ?? ''}"${described('email')}>
  <div><button type="submit" data-once>${t(lang, 'Kirim laporan', 'Send the report')}</button></div>
</form>`;
}

/** A second click while the first submission is on its way does nothing (the Idempotency-Key covers the rest). */
const SUBMIT_ONCE = `document.addEventListener('submit',function(e){var b=e.target.querySelector('[data-once]');if(b){if(b.dataset.sent){e.preventDefault();}b.dataset.sent='1';b.setAttribute('aria-disabled','true');}});` +
  // After a refused submission, the error summary takes the focus, so a screen reader reads it first.
  `var s=document.getElementById('error-summary');if(s){s.focus();}`;

export function citizenPages(deps: HttpDeps) {
  const fallback = deps.config.lang;
  const maxBytes = deps.config.attachments.maxBytes;
  const maxMb = Math.round((maxBytes / (1024 * 1024)) * 10) / 10;

  return async (app: FastifyInstance) => {
    // The form is multipart (it may carry a file): parsed only here, with limits of its own.
    await app.register(multipart, { limits: { fileSize: maxBytes, files: 1, fields: 12, fieldSize: deps.config.http.bodyLimitBytes, parts: 13 } });

    // A form too large for the body limit (a pasted book, a 20 MB file) gets a page a citizen can
    // read, not the API's JSON; every other error goes on to the app's handler.
    app.setErrorHandler((err: { code?: string }, req, reply) => {
      if (!TOO_LARGE.has(err.code ?? '')) throw err;
      const lang = langOf(req, fallback);
      return send(
        req,
        reply,
        lang,
        t(lang, 'Laporan terlalu besar', 'The report is too large'),
        html`<div class="error-summary" role="alert" tabindex="-1" id="error-summary"><h1>${t(lang, 'Laporan terlalu besar', 'The report is too large')}</h1>
<p>${t(lang, `Laporan tidak diterima karena terlalu besar. Persingkat isinya (paling banyak 10.000 karakter) dan lampirkan paling banyak satu berkas ${maxMb} MB, lalu kirim lagi.`, `The report was not taken because it is too large. Shorten it (at most 10,000 characters), attach at most one file of ${maxMb} MB, and send it again.`)}</p>
<p><a href="/">${t(lang, 'Kembali ke formulir', 'Back to the form')}</a></p></div>`,
        413,
      );
    });

    const send = (req: FastifyRequest, reply: FastifyReply, lang: Lang, title: string, body: Html, status = 200, script?: string) => {
      rememberLang(req, reply);
      return reply
        .status(status)
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        // Not framed by other sites (a form in a frame can be overlaid and clicked through).
        .header('x-frame-options', 'SAMEORIGIN')
        .header('content-security-policy', "frame-ancestors 'self'")
        .send(page({ lang, title, body, path: pathWithoutLang(req.url), nav: nav(lang), ...(script ? { script } : {}) }));
    };

    app.get('/', async (req, reply) => {
      const lang = langOf(req, fallback);
      return send(req, reply, lang, t(lang, 'Buat laporan', 'File a report'), reportForm(lang, {}, {}, maxMb), 200, SUBMIT_ONCE);
    });

    app.post('/lapor', { config: { upload: true } }, async (req, reply) => {
      const { form, file } = await readForm(req);
      const lang: Lang = form.lang === 'en' ? 'en' : form.lang === 'id' ? 'id' : langOf(req, fallback);
      const values: FormValues = { text: form.text, name: form.name, phone: form.phone, email: form.email, privacy: form.privacy, key: form.key };
      const reporter = Object.fromEntries(
        (['name', 'phone', 'email'] as const).map((k) => [k, values[k]?.trim()]).filter(([, v]) => v),
      );
      const key = /^[0-9a-f-]{36}$/.test(values.key ?? '') ? values.key! : randomUUID();
      // The file goes first, through the same API a mobile app uses; the report then names it.
      let attachment: string | undefined;
      if (file) {
        const uploaded = await app.inject({ method: 'POST', url: '/api/v1/attachments', headers: { 'content-type': file.mimetype, 'x-filename': encodeURIComponent(file.filename) }, payload: file.data });
        if (uploaded.statusCode !== 201) {
          const errors = { attachment: t(lang, 'Lampiran harus foto (JPEG, PNG, WebP) atau PDF.', 'The attachment must be a photo (JPEG, PNG, WebP) or a PDF.') };
          return send(req, reply, lang, t(lang, 'Periksa laporan Anda', 'Check your report'), reportForm(lang, { ...values, key }, errors, maxMb), 400, SUBMIT_ONCE);
        }
        attachment = uploaded.json().attachment as string;
      }
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/reports',
        headers: { 'content-type': 'application/json', 'idempotency-key': `page-${key}` },
        payload: JSON.stringify({
          text: values.text ?? '',
          ...(Object.keys(reporter).length ? { reporter } : {}),
          anonim: values.privacy === 'anonim',
          rahasia: values.privacy === 'rahasia',
          lang,
          ...(attachment ? { attachments: [attachment] } : {}),
        }),
      });
      if (res.statusCode === 201) return reply.redirect(`/lapor/${res.json().trackingId}?baru=1`, 303);
      if (res.statusCode === 413) throw Object.assign(new Error('the report is over the API body limit'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
      if (res.statusCode === 400 || res.statusCode === 422) {
        const body = res.json() as { details?: { path: string; message: string }[]; hint?: string };
        const errors: Record<string, string> = {};
        for (const d of body.details ?? []) {
          const field = FIELD_OF[d.path] ?? (d.path.startsWith('/reporter') ? 'name' : 'text');
          errors[field] ??= fieldMessage(lang, field, body.hint);
        }
        if (!Object.keys(errors).length) errors.text = fieldMessage(lang, 'text');
        return send(req, reply, lang, t(lang, 'Periksa laporan Anda', 'Check your report'), reportForm(lang, { ...values, key }, errors, maxMb), 400, SUBMIT_ONCE);
      }
      return send(
        req,
        reply,
        lang,
        t(lang, 'Coba lagi sebentar', 'Try again shortly'),
        html`<h1>${t(lang, 'Laporan belum dapat diterima', 'The report could not be taken yet')}</h1>
<p>${t(lang, 'Sistem sedang sibuk. Kirim ulang formulir dalam beberapa detik; laporan Anda tidak akan tercatat dua kali.', 'The system is busy. Send the form again in a few seconds; your report will not be filed twice.')}</p>`,
        503,
      );
    });

    app.get('/lapor', async (req, reply) => {
      const lang = langOf(req, fallback);
      const id = String((req.query as Record<string, unknown>).id ?? '').replace(/\s+/g, '');
      if (id) return reply.redirect(`/lapor/${encodeURIComponent(id)}`, 303);
      return send(req, reply, lang, t(lang, 'Cek status laporan', 'Check a report'), lookupForm(lang));
    });

    app.get('/statistik', async (req, reply) => {
      const lang = langOf(req, fallback);
      const q = req.query as Record<string, string | undefined>;
      const today = jakartaToday();
      const from = q.from ?? shiftDays(today, -29);
      const to = q.to ?? today;
      const res = await app.inject({ method: 'GET', url: `/api/v1/stats?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}` });
      const body = res.json() as StatsBody & { message?: string };
      const error = res.statusCode === 200 ? undefined : t(lang, 'Periode tidak valid: pilih tanggal mulai dan akhir (paling lama satu tahun).', 'Not a valid period: choose a start and an end date (at most a year).');
      return send(req, reply, lang, t(lang, 'Statistik', 'Statistics'), statsPage(lang, from, to, res.statusCode === 200 ? body : undefined, error), res.statusCode === 200 ? 200 : 400);
    });

    app.get('/lapor/:trackingId', async (req, reply) => {
      const lang = langOf(req, fallback);
      const id = (req.params as { trackingId: string }).trackingId.replace(/\s+/g, '');
      const fresh = (req.query as Record<string, unknown>).baru === '1';
      const res = await app.inject({ method: 'GET', url: `/api/v1/reports/${encodeURIComponent(id)}?lang=${lang}` });
      if (res.statusCode !== 200) {
        const body = res.json() as { hint?: string; message?: string };
        const message =
          res.statusCode === 404
            ? t(lang, `Laporan ${id} tidak ditemukan. Periksa kembali nomornya.`, `There is no report ${id}. Check the number.`)
            : t(lang, `Nomor ${id} tidak valid, mungkin salah ketik. Periksa kembali 10 angka nomor laporan Anda.`, `${id} is not a valid number, maybe a typo. Check the 10 digits of your report number.`);
        return send(req, reply, lang, t(lang, 'Laporan tidak ditemukan', 'Report not found'), html`<div class="error-summary" role="alert"><p>${message}</p>${body.hint && lang === 'en' ? html`<p>${body.hint}</p>` : ''}</div>${lookupForm(lang, id)}`, res.statusCode === 404 ? 404 : 400);
      }
      return send(req, reply, lang, t(lang, `Laporan ${id}`, `Report ${id}`), statusPage(lang, res.json(), fresh));
    });
  };
}

/**
 * This page's own path and query without `lang`, for the language switch: always a path of this
 * site (a request for `//elsewhere` must not make the switch a link to another site).
 */
function pathWithoutLang(requestUrl: string): string {
  const url = new URL(requestUrl, 'http://lapor.invalid');
  url.searchParams.delete('lang');
  return `/${url.pathname.replace(/^\/+/, '')}${url.search}`;
}

/** Errors meaning "too large": the urlencoded body limit, a multipart file over its limit. */
const TOO_LARGE = new Set(['LAPOR_FIELD_TOO_LARGE', 'FST_ERR_CTP_BODY_TOO_LARGE', 'FST_REQ_FILE_TOO_LARGE', 'FST_FILES_LIMIT', 'FST_PARTS_LIMIT', 'FST_FIELDS_LIMIT']);

interface UploadedFile {
  filename: string;
  mimetype: string;
  data: Buffer;
}

/** The form's fields and its file, from a multipart post (a browser) or an urlencoded one (a script, an old phone). */
async function readForm(req: FastifyRequest): Promise<{ form: Record<string, string | undefined>; file?: UploadedFile }> {
  if (!req.isMultipart()) return { form: (req.body ?? {}) as Record<string, string | undefined> };
  const form: Record<string, string | undefined> = {};
  let file: UploadedFile | undefined;
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      const data = await part.toBuffer();
      // A browser sends an empty file part when nothing was chosen.
      if (data.length) file = { filename: part.filename, mimetype: part.mimetype, data };
    } else if (part.valueTruncated) {
      // A field over its limit is cut by the parser; a cut complaint must not be filed as if whole.
      throw Object.assign(new Error('a form field is over its limit'), { code: 'LAPOR_FIELD_TOO_LARGE' });
    } else if (typeof part.value === 'string') {
      form[part.fieldname] = part.value;
    }
  }
  return file ? { form, file } : { form };
}

function fieldMessage(lang: Lang, field: string, hint?: string): string {
  switch (field) {
    case 'text':
      return t(lang, 'Tulis apa yang terjadi, di mana, dan kapan (paling banyak 10.000 karakter).', 'Write what happened, where and when (at most 10,000 characters).');
    case 'phone':
      return t(lang, 'Nomor HP tidak valid. Tulis seperti 0812 3456 7890 atau +62 812 3456 7890.', hint ?? 'The mobile number is not valid. Write it like 0812 3456 7890 or +62 812 3456 7890.');
    case 'email':
      return t(lang, 'Alamat email tidak valid, contoh: nama@contoh.id.', 'The email address is not valid, for example: name@example.id.');
    default:
      return t(lang, 'Nama paling banyak 200 karakter.', 'The name takes at most 200 characters.');
  }
}

function lookupForm(lang: Lang, value = ''): Html {
  return html`<h1>${t(lang, 'Cek status laporan', 'Check a report')}</h1>
<form method="get" action="/lapor">
  <label for="id">${t(lang, 'Nomor laporan (10 angka)', 'Report number (10 digits)')}</label>
  <input type="text" id="id" name="id" inputmode="numeric" autocomplete="off" maxlength="20" value="${value}">
  <div><button type="submit">${t(lang, 'Cek', 'Check')}</button></div>
</form>
<p class="hint">${t(lang, 'Lewat SMS: kirim CEK <nomor> ke 1708.', 'By SMS: send CEK <number> to 1708.')}</p>`;
}

interface PublicReport {
  trackingId: string;
  statusLabel: string;
  colour: 'merah' | 'kuning' | 'hijau';
  rahasia?: boolean;
  pending?: boolean;
  text?: string;
  agency?: { name: string | null } | null;
  timeline: { at: string; event: string; statusLabel?: string }[];
  notifications: { at: string; kind: string | null; text?: string }[];
}

function when(lang: Lang, iso: string): string {
  return new Date(iso).toLocaleString(lang === 'id' ? 'id-ID' : 'en-GB', { timeZone: 'Asia/Jakarta', dateStyle: 'medium', timeStyle: 'short' });
}

function statusPage(lang: Lang, r: PublicReport, fresh: boolean): Html {
  const [meaningId, meaningEn] = COLOUR_MEANING[r.colour];
  const answers = r.notifications.filter((n) => n.kind === 'answer' && n.text);
  return html`${
    fresh
      ? html`<div class="notice" role="status"><p>${t(lang, 'Laporan Anda sudah diterima. Simpan nomor ini:', 'Your report was received. Keep this number:')}</p>
<p class="tracking">${r.trackingId}</p>
<p>${t(lang, `Cek statusnya di halaman ini atau kirim SMS CEK ${r.trackingId} ke 1708.`, `Check it on this page or send CEK ${r.trackingId} by SMS to 1708.`)}</p></div>`
      : ''
  }
<h1>${t(lang, 'Laporan', 'Report')} ${r.trackingId}</h1>
<p><span class="badge ${r.colour}">${r.statusLabel}</span></p>
<p>${lang === 'id' ? meaningId : meaningEn}</p>
${r.agency?.name ? html`<p>${t(lang, 'Ditangani oleh', 'Handled by')}: <strong>${r.agency.name}</strong></p>` : ''}
${r.rahasia ? html`<p class="muted">${t(lang, 'Laporan ini rahasia: isinya tidak ditampilkan.', 'This report is confidential: its content is not shown.')}</p>` : ''}
${r.text ? html`<h2>${t(lang, 'Isi laporan', 'The report')}</h2><blockquote>${r.text}</blockquote>` : ''}
${answers.length ? html`<h2>${t(lang, 'Tanggapan instansi', 'The agency’s answer')}</h2>${answers.map((a) => html`<blockquote>${a.text}</blockquote><p class="muted">${when(lang, a.at)}</p>`)}` : ''}
<h2>${t(lang, 'Riwayat', 'History')}</h2>
<ol class="timeline">${r.timeline.map((e) => html`<li><time datetime="${e.at}">${when(lang, e.at)}</time>: ${e.statusLabel ?? e.event}</li>`)}</ol>
${r.pending ? html`<p class="muted">${t(lang, 'Laporan sedang dicatat; muat ulang halaman ini sebentar lagi.', 'The report is being recorded; reload this page in a moment.')}</p>` : ''}`;
}

type StatsRow = AgencyStats;
interface StatsBody {
  from: string;
  to: string;
  agencies: StatsRow[];
}

function jakartaToday(): string {
  return new Date(Date.now() + 7 * 3_600_000).toISOString().slice(0, 10);
}

function shiftDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/** Per agency, the API's figures as a table, the reports received as bars, and the open-data CSV. */
function statsPage(lang: Lang, from: string, to: string, stats: StatsBody | undefined, error?: string): Html {
  const rows = (stats?.agencies ?? []).filter((r) => r.received || r.answered || r.byColour.merah + r.byColour.kuning + r.byColour.hijau);
  const most = Math.max(1, ...rows.map((r) => r.received));
  const percent = (part: number, whole: number) => (whole ? `${Math.round((part / whole) * 100)}%` : '-');
  return html`<h1>${t(lang, 'Statistik pengaduan per instansi', 'Complaints per agency')}</h1>
${error ? html`<div class="error-summary" role="alert"><p>${error}</p></div>` : ''}
<form method="get" action="/statistik">
  <label for="from">${t(lang, 'Dari tanggal', 'From')}</label><input type="date" id="from" name="from" value="${from}">
  <label for="to">${t(lang, 'Sampai tanggal', 'To')}</label><input type="date" id="to" name="to" value="${to}">
  <div><button type="submit">${t(lang, 'Tampilkan', 'Show')}</button></div>
</form>
${
  stats
    ? html`<p><a href="/api/v1/stats.csv?from=${from}&amp;to=${to}" download>${t(lang, 'Unduh data terbuka (CSV)', 'Download the open data (CSV)')}</a></p>
${
  rows.length
    ? html`<h2>${t(lang, 'Laporan diterima', 'Reports received')}</h2>
<ul class="chart">${rows.map((r) => html`<li><span class="bar" style="width:${Math.max(2, Math.round((r.received / most) * 100))}%"></span> ${r.name}: ${r.received}</li>`)}</ul>
<div class="scroll"><table>
<caption class="visually-hidden">${t(lang, `Statistik ${from} sampai ${to}`, `Statistics from ${from} to ${to}`)}</caption>
<thead><tr><th scope="col">${t(lang, 'Instansi', 'Agency')}</th><th scope="col" class="num">${t(lang, 'Diterima', 'Received')}</th><th scope="col" class="num">${t(lang, 'Ditindaklanjuti', 'Answered')}</th><th scope="col" class="num">${t(lang, 'Tepat waktu', 'On time')}</th><th scope="col" class="num">${t(lang, 'Median hari kerja', 'Median working days')}</th><th scope="col" class="num">${t(lang, 'Dikembalikan', 'Returned')}</th><th scope="col" class="num">${t(lang, 'Selesai', 'Closed')}</th><th scope="col" class="num">${t(lang, 'Merah / kuning / hijau', 'Red / yellow / green')}</th></tr></thead>
<tbody>${rows.map(
        (r) => html`<tr><th scope="row">${r.name}</th><td class="num">${r.received}</td><td class="num">${r.answered}</td><td class="num">${percent(r.answeredOnTime, r.answered)}</td><td class="num">${r.medianWorkingDaysToAnswer ?? '-'}</td><td class="num">${r.returned}</td><td class="num">${r.closedByReporter + r.closedByAdmin + r.closedAutomatically}</td><td class="num">${r.byColour.merah} / ${r.byColour.kuning} / ${r.byColour.hijau}</td></tr>`,
      )}</tbody></table></div>`
    : html`<p class="muted">${t(lang, 'Belum ada laporan pada periode ini.', 'No reports in this period.')}</p>`
}`
    : ''
}`;
}
