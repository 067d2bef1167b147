import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STEP_FROM } from '../../core/lifecycle.ts';
import { KINDS, STATUS_LABELS, WEIGHTS, type ReportStatus } from '../../core/report.ts';
import { STEP_ROLES, type Actor, type Role, type Step } from '../../core/roles.ts';
// Types only: the console reads what the API answers, which is what these describe.
import type { CaseDetail, CaseListItem } from '../../store/cases.ts';
import { actorOfToken } from '../../store/users.ts';
import type { HttpDeps } from '../app.ts';
import { html, type Html } from './html.ts';
import { page, type Lang } from './layout.ts';

/**
 * The operators' console at /admin: a thin client of the operator API. It logs in through
 * /api/v1/auth/login and keeps the token in an httpOnly, SameSite=Strict cookie; every screen and
 * every action is a call to /api/v1/admin with that token (in-process), so what a role may see and
 * do is decided by the API alone. Every form that changes something carries a CSRF token derived
 * from the session token, which a page of another site can neither read nor guess.
 */

export const SESSION_COOKIE = 'lapor_admin';
const LANG: Lang = 'id';

const ROLE_LABELS: Record<Role, string> = {
  super_admin: 'Super admin',
  agency_admin: 'Admin instansi',
  liaison: 'Pejabat penghubung',
  operator: 'Operator',
};

const CLOCK_LABELS: Record<string, string> = { verification: 'verifikasi', follow_up: 'tindak lanjut', auto_close: 'tutup otomatis' };

/** The console's action routes, in the order a report moves, with the form each needs. */
const ACTIONS: { step: Step; route: string; label: string; danger?: boolean }[] = [
  { step: 'verify', route: 'verify', label: 'Verifikasi' },
  { step: 'dispose', route: 'dispose', label: 'Disposisi ke instansi' },
  { step: 'assign', route: 'dispose', label: 'Tugaskan ke unit' },
  { step: 'answer', route: 'answer', label: 'Kirim tindak lanjut' },
  { step: 'request_info', route: 'request-info', label: 'Minta informasi ke pelapor' },
  { step: 'return', route: 'return', label: 'Kembalikan: bukan wewenang' },
  { step: 'reweigh', route: 'weight', label: 'Ubah bobot' },
  { step: 'close', route: 'close', label: 'Tutup laporan' },
  { step: 'reject', route: 'reject', label: 'Tidak dapat diproses', danger: true },
  { step: 'archive', route: 'archive', label: 'Arsipkan', danger: true },
];

/** The API's refusals, as an operator reads them. */
const ERROR_MESSAGES: Record<string, (status?: string) => string> = {
  illegal_transition: (status) => `Aksi ini tidak dapat dilakukan pada laporan berstatus ${status ? (STATUS_LABELS[status as ReportStatus]?.id ?? status) : 'ini'}.`,
  forbidden: () => 'Peran Anda tidak berwenang melakukan aksi ini.',
  not_found: () => 'Laporan tidak ditemukan, atau di luar wewenang Anda.',
  unknown_agency: () => 'Instansi tidak dikenal.',
  unknown_unit: () => 'Unit itu bukan bagian dari instansi ini.',
  bad_request: () => 'Isian belum lengkap atau tidak sesuai.',
};

export function csrfOf(token: string): string {
  return createHash('sha256').update(`csrf:${token}`).digest('base64url').slice(0, 32);
}

function sessionToken(req: FastifyRequest): string | undefined {
  const match = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([A-Za-z0-9_-]{20,200})`).exec(req.headers.cookie ?? '');
  return match?.[1];
}

function cookie(req: FastifyRequest, value: string, maxAgeSeconds: number): string {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

interface Session {
  token: string;
  actor: Actor;
  csrf: string;
}

export function consolePages(deps: HttpDeps) {
  return async (app: FastifyInstance) => {
    const api = async (session: Session | undefined, method: 'GET' | 'POST', url: string, body?: unknown, remoteAddress?: string) => {
      const res = await app.inject({
        method,
        url,
        headers: { ...(session ? { authorization: `Bearer ${session.token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
        ...(remoteAddress ? { remoteAddress } : {}),
      });
      return { status: res.statusCode, json: () => res.json() as Record<string, unknown>, headers: res.headers };
    };

    const render = (reply: FastifyReply, title: string, body: Html, session?: Session, status = 200) =>
      reply
        .status(status)
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('x-frame-options', 'DENY')
        .header('content-security-policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
        .send(page({ lang: LANG, title, body, path: '/admin', wide: true, oneLanguage: true, ...(session ? { nav: nav(session) } : {}) }));

    /** The session of a request, or a redirect to the login page. */
    const requireSession = async (req: FastifyRequest, reply: FastifyReply): Promise<Session | undefined> => {
      const token = sessionToken(req);
      const actor = token ? await actorOfToken(deps.db, token) : undefined;
      if (!token || !actor) {
        await reply.redirect(`/admin/login?next=${encodeURIComponent(req.url)}`, 303);
        return undefined;
      }
      const session = { token, actor, csrf: csrfOf(token) };
      if (req.method === 'POST') {
        const sent = String((req.body as Record<string, unknown> | undefined)?._csrf ?? '');
        if (sent.length !== session.csrf.length || !timingSafeEqual(Buffer.from(sent), Buffer.from(session.csrf))) {
          await render(reply, 'Permintaan ditolak', html`<h1>Permintaan ditolak</h1><p>Formulir ini kedaluwarsa atau tidak berasal dari konsol. Muat ulang halaman, lalu coba lagi.</p>`, session, 403);
          return undefined;
        }
      }
      return session;
    };

    app.get('/admin/login', async (req, reply) => {
      const next = safeNext((req.query as Record<string, unknown>).next);
      return render(reply, 'Masuk', loginForm(next));
    });

    app.post('/admin/login', async (req, reply) => {
      const form = (req.body ?? {}) as Record<string, string | undefined>;
      const next = safeNext(form.next);
      const res = await api(undefined, 'POST', '/api/v1/auth/login', { email: form.email ?? '', password: form.password ?? '' }, req.ip);
      if (res.status === 200) {
        const { token, expiresAt } = res.json() as { token: string; expiresAt: string };
        reply.header('set-cookie', cookie(req, token, Math.floor((Date.parse(expiresAt) - Date.now()) / 1000)));
        return reply.redirect(next, 303);
      }
      const message =
        res.status === 429
          ? `Terlalu banyak percobaan gagal. Coba lagi setelah ${Math.ceil(Number(res.headers['retry-after'] ?? 60) / 60)} menit.`
          : 'Email atau kata sandi salah.';
      return render(reply, 'Masuk', loginForm(next, form.email ?? '', message), undefined, res.status === 429 ? 429 : 401);
    });

    app.post('/admin/logout', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      await api(session, 'POST', '/api/v1/auth/logout');
      reply.header('set-cookie', cookie(req, '', 0));
      return reply.redirect('/admin/login', 303);
    });

    // ---- first screen: deadline risk ----
    app.get('/admin', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      if (session.actor.role === 'operator') return reply.redirect('/admin/operasi', 303);
      const { deadlines } = (await api(session, 'GET', '/api/v1/admin/deadlines?withinHours=24')).json() as { deadlines: RiskRow[] };
      return render(reply, 'Risiko tenggat', riskScreen(deadlines), session);
    });

    // ---- inbox per role ----
    app.get('/admin/kotak-masuk', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      if (session.actor.role === 'operator') return reply.redirect('/admin/operasi', 303);
      const q = req.query as Record<string, string | undefined>;
      const id = (q.id ?? '').replace(/\s+/g, '');
      if (/^\d{6,10}$/.test(id)) return reply.redirect(`/admin/laporan/${id}`, 303);
      const boxes = q.status ? [{ title: STATUS_LABELS[q.status as ReportStatus]?.id ?? q.status, query: `status=${encodeURIComponent(q.status)}` }] : inboxesOf(session.actor.role);
      const lists = await Promise.all(
        boxes.map(async (box) => ({ ...box, result: (await api(session, 'GET', `/api/v1/admin/reports?limit=100&${box.query}`)).json() as { items?: CaseItem[]; message?: string } })),
      );
      return render(reply, 'Kotak masuk', inboxScreen(lists, q.status), session);
    });

    // ---- one report ----
    const showReport = async (req: FastifyRequest, reply: FastifyReply, session: Session, extra: { error?: string; ok?: string; identity?: Record<string, unknown> } = {}) => {
      const id = (req.params as { trackingId: string }).trackingId;
      const res = await api(session, 'GET', `/api/v1/admin/reports/${encodeURIComponent(id)}`);
      if (res.status !== 200) {
        return render(reply, 'Laporan tidak ditemukan', html`<h1>Laporan ${id}</h1><p>${String(res.json().message ?? 'Tidak ditemukan.')}</p><p><a href="/admin/kotak-masuk">Kembali ke kotak masuk</a></p>`, session, res.status);
      }
      const agencies = (await api(session, 'GET', '/api/v1/agencies')).json() as { agencies: { slug: string; name: string; units: { slug: string; name: string }[] }[] };
      return render(reply, `Laporan ${id}`, reportScreen(session, res.json() as unknown as CaseDetail, agencies.agencies, extra), session, extra.error ? 400 : 200);
    };

    app.get('/admin/laporan/:trackingId', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      const ok = (req.query as Record<string, string | undefined>).ok;
      return showReport(req, reply, session, ok ? { ok } : {});
    });

    app.get('/admin/laporan/:trackingId/lampiran/:id', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      const { trackingId, id } = req.params as { trackingId: string; id: string };
      const res = await app.inject({
        method: 'GET',
        url: `/api/v1/admin/reports/${encodeURIComponent(trackingId)}/attachments/${encodeURIComponent(id)}`,
        headers: { authorization: `Bearer ${session.token}` },
      });
      if (res.statusCode !== 200) return render(reply, 'Lampiran tidak ditemukan', html`<h1>Lampiran tidak ditemukan</h1><p><a href="/admin/laporan/${trackingId}">Kembali</a></p>`, session, res.statusCode);
      for (const header of ['content-type', 'content-disposition', 'x-content-type-options', 'cache-control'] as const) reply.header(header, res.headers[header]);
      return reply.send(res.rawPayload);
    });

    app.post('/admin/laporan/:trackingId/identitas', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      const id = (req.params as { trackingId: string }).trackingId;
      const res = await api(session, 'GET', `/api/v1/admin/reports/${encodeURIComponent(id)}/reporter`);
      if (res.status !== 200) return showReport(req, reply, session, { error: String(res.json().message ?? 'Identitas tidak dapat ditampilkan.') });
      return showReport(req, reply, session, { identity: res.json() });
    });

    app.post('/admin/laporan/:trackingId/aksi/:route', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      const { trackingId, route } = req.params as { trackingId: string; route: string };
      if (!ACTIONS.some((a) => a.route === route)) return showReport(req, reply, session, { error: 'Aksi tidak dikenal.' });
      const { _csrf: _ignored, ...fields } = (req.body ?? {}) as Record<string, string>;
      const body = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== '').map(([k, v]) => [k, k === 'anonim' || k === 'rahasia' ? v === 'ya' : v]));
      const res = await api(session, 'POST', `/api/v1/admin/reports/${encodeURIComponent(trackingId)}/${route}`, body);
      if (res.status === 200) return reply.redirect(`/admin/laporan/${encodeURIComponent(trackingId)}?ok=${encodeURIComponent(route)}`, 303);
      const error = res.json() as { error?: string; status?: string; message?: string; details?: { path: string; message: string }[] };
      const said = ERROR_MESSAGES[error.error ?? ''];
      const message = said ? said(error.status) : error.message;
      return showReport(req, reply, session, { error: [message, ...(error.details ?? []).map((d) => `${d.path}: ${d.message}`)].filter(Boolean).join(' — ') });
    });

    // ---- the operator on duty ----
    app.get('/admin/operasi', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      const [queues, channels, dead] = await Promise.all([
        api(session, 'GET', '/api/v1/admin/queues'),
        api(session, 'GET', '/api/v1/admin/channels'),
        api(session, 'GET', '/api/v1/admin/dead-letters'),
      ]);
      if (queues.status !== 200) return render(reply, 'Tidak berwenang', html`<h1>Operasi</h1><p>Halaman ini untuk operator dan super admin.</p>`, session, 403);
      return render(reply, 'Operasi', opsScreen(session, queues.json() as { queues: QueueRow[] }, channels.json() as { links: LinkRow[] }, dead.json() as { deadLetters: DeadRow[] }, (req.query as Record<string, string | undefined>).ok), session);
    });

    app.post('/admin/operasi/replay', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      const { queue = '', jobId = '' } = (req.body ?? {}) as Record<string, string>;
      const res = await api(session, 'POST', `/api/v1/admin/dead-letters/${encodeURIComponent(queue)}/${encodeURIComponent(jobId)}/replay`);
      return reply.redirect(`/admin/operasi?ok=${res.status === 200 ? 'replayed' : 'not_replayed'}`, 303);
    });
  };
}

/** Only a path of the console may follow a login: never another site. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/admin(\/[A-Za-z0-9/_?=&%.-]*)?$/.test(next) && !next.startsWith('/admin/login') ? next : '/admin';
}

function csrfField(session: Session): Html {
  return html`<input type="hidden" name="_csrf" value="${session.csrf}">`;
}

function nav(session: Session): Html {
  const role = session.actor.role;
  return html`${role !== 'operator' ? html`<li><a href="/admin">Risiko tenggat</a></li><li><a href="/admin/kotak-masuk">Kotak masuk</a></li>` : ''}
${role === 'operator' || role === 'super_admin' ? html`<li><a href="/admin/operasi">Operasi</a></li><li><a href="/admin/queues/">Antrean</a></li>` : ''}
<li><form method="post" action="/admin/logout" class="inline">${csrfField(session)}<button type="submit" class="secondary small">Keluar (${ROLE_LABELS[role]})</button></form></li>`;
}

function loginForm(next: string, email = '', error?: string): Html {
  return html`<h1>Masuk ke konsol LAPOR!</h1>
${error ? html`<div class="error-summary" role="alert"><p>${error}</p></div>` : ''}
<form method="post" action="/admin/login">
  <input type="hidden" name="next" value="${next}">
  <label for="email">Email</label>
  <input type="email" id="email" name="email" autocomplete="username" required value="${email}">
  <label for="password">Kata sandi</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required>
  <div><button type="submit">Masuk</button></div>
</form>
<p class="hint">Belum punya akun? Super admin membuatnya dengan <code>lapor user add</code>.</p>`;
}

interface RiskRow {
  trackingId: string;
  clock: string;
  agency: string | null;
  status: ReportStatus;
  dueAt: string;
  breached: boolean;
}

function when(iso: string): string {
  return new Date(iso).toLocaleString('id-ID', { timeZone: 'Asia/Jakarta', dateStyle: 'medium', timeStyle: 'short' });
}

function riskScreen(rows: RiskRow[]): Html {
  const table = (title: string, items: RiskRow[]) => html`<h2>${title} (${items.length})</h2>
${
  items.length
    ? html`<div class="scroll"><table><thead><tr><th scope="col">Laporan</th><th scope="col">Instansi</th><th scope="col">Tenggat</th><th scope="col">Jatuh tempo</th><th scope="col">Status</th></tr></thead><tbody>
${items.map((r) => html`<tr><td><a href="/admin/laporan/${r.trackingId}">${r.trackingId}</a></td><td>${r.agency ?? 'pusat'}</td><td>${CLOCK_LABELS[r.clock] ?? r.clock}</td><td><time datetime="${r.dueAt}">${when(r.dueAt)}</time></td><td>${STATUS_LABELS[r.status]?.id ?? r.status}</td></tr>`)}
</tbody></table></div>`
    : html`<p class="muted">Tidak ada.</p>`
}`;
  return html`<h1>Risiko tenggat</h1>
<p>Tenggat dihitung dalam hari kerja (WIB), di luar Sabtu, Minggu, libur nasional dan cuti bersama.</p>
${table('Sudah lewat tenggat', rows.filter((r) => r.breached))}
${table('Jatuh tempo dalam 24 jam', rows.filter((r) => !r.breached))}`;
}

type CaseItem = CaseListItem;

function inboxesOf(role: Role): { title: string; query: string; filter?: (i: CaseItem) => boolean }[] {
  switch (role) {
    case 'super_admin':
      return [
        { title: 'Perlu diverifikasi', query: 'status=belum_terverifikasi' },
        { title: 'Perlu didisposisi', query: 'status=terverifikasi' },
        { title: 'Dikembalikan: bukan wewenang', query: 'status=bukan_wewenang' },
      ];
    case 'agency_admin':
      return [
        { title: 'Perlu ditugaskan ke unit', query: 'status=terdisposisi' },
        { title: 'Sedang diproses', query: 'status=sedang_diproses' },
      ];
    default:
      return [
        { title: 'Perlu ditindaklanjuti', query: 'status=terdisposisi' },
        { title: 'Sudah ditanggapi', query: 'status=sedang_diproses' },
      ];
  }
}

function inboxScreen(lists: { title: string; result: { items?: CaseItem[]; message?: string } }[], status?: string): Html {
  return html`<h1>Kotak masuk</h1>
<form method="get" action="/admin/kotak-masuk">
  <label for="id">Cari nomor laporan</label>
  <input type="search" id="id" name="id" inputmode="numeric" autocomplete="off">
  <label for="status">atau tampilkan status</label>
  <select id="status" name="status">
    <option value="">kotak masuk saya</option>
    ${Object.entries(STATUS_LABELS).map(([value, label]) => html`<option value="${value}" ${value === status ? 'selected' : ''}>${label.id}</option>`)}
  </select>
  <div><button type="submit">Tampilkan</button></div>
</form>
${lists.map(
  (list) => html`<h2>${list.title} (${list.result.items?.length ?? 0})</h2>
${
  list.result.items?.length
    ? html`<div class="scroll"><table><thead><tr><th scope="col">Laporan</th><th scope="col">Diterima</th><th scope="col">Kanal</th><th scope="col">Jenis / bobot</th><th scope="col">Instansi / unit</th><th scope="col">Status</th></tr></thead><tbody>
${list.result.items.map(
  (i) => html`<tr><td><a href="/admin/laporan/${i.trackingId}">${i.trackingId}</a>${i.rahasia ? html` <span class="muted">(rahasia)</span>` : ''}${i.anonim ? html` <span class="muted">(anonim)</span>` : ''}</td>
<td><time datetime="${i.receivedAt}">${when(i.receivedAt)}</time></td><td>${i.channel}</td><td>${i.kind}${i.weight ? ` / ${i.weight}` : ''}</td><td>${i.agency ?? '-'}${i.unit ? ` / ${i.unit}` : ''}</td>
<td><span class="badge ${i.colour}">${STATUS_LABELS[i.status].id}</span></td></tr>`,
)}
</tbody></table></div>`
    : html`<p class="muted">${list.result.message ?? 'Kosong.'}</p>`
}`,
)}`;
}

function reportScreen(
  session: Session,
  r: CaseDetail,
  agencies: { slug: string; name: string; units: { slug: string; name: string }[] }[],
  extra: { error?: string; ok?: string; identity?: Record<string, unknown> },
): Html {
  const role = session.actor.role;
  const possible = ACTIONS.filter((a) => (STEP_ROLES[a.step] as readonly Role[]).includes(role) && (STEP_FROM[a.step].includes(r.status) || (a.step === 'reject' && r.status === 'tertunda')));
  const ownUnits = agencies.find((a) => a.slug === session.actor.agencySlug)?.units ?? [];
  const field = (step: Step): Html => {
    switch (step) {
      case 'verify':
        return html`<label for="kind">Jenis</label><select id="kind" name="kind">${KINDS.map((k) => html`<option value="${k}" ${r.suggestions?.kind === k ? 'selected' : ''}>${k}</option>`)}</select>
<label for="weight">Bobot</label><select id="weight" name="weight">${WEIGHTS.map((w) => html`<option value="${w}" ${r.suggestions?.weight === w ? 'selected' : ''}>${w}</option>`)}</select>
<label for="v-privacy">Kerahasiaan</label><select id="v-privacy" name="rahasia"><option value="">${r.rahasia ? 'rahasia' : 'biasa'} (tetap)</option><option value="ya">rahasia</option></select>
<label for="v-note">Catatan (opsional)</label><input type="text" id="v-note" name="note">`;
      case 'reweigh':
        return html`<label for="w-weight">Bobot baru</label><select id="w-weight" name="weight">${WEIGHTS.map((w) => html`<option value="${w}" ${r.weight === w ? 'selected' : ''}>${w}</option>`)}</select>
<label for="w-note">Alasan (opsional)</label><input type="text" id="w-note" name="note">`;
      case 'dispose':
        return html`<label for="agency">Instansi</label><select id="agency" name="agency">${agencies.map((a) => html`<option value="${a.slug}" ${r.suggestions?.agency === a.slug ? 'selected' : ''}>${a.name}</option>`)}</select>
<label for="d-note">Catatan (opsional)</label><input type="text" id="d-note" name="note">`;
      case 'assign':
        return html`<label for="unit">Unit</label><select id="unit" name="unit">${ownUnits.map((u) => html`<option value="${u.slug}" ${r.unit === u.slug ? 'selected' : ''}>${u.name}</option>`)}</select>`;
      case 'answer':
        return html`<label for="answer">Tanggapan untuk pelapor</label><textarea id="answer" name="text" required maxlength="10000"></textarea>`;
      case 'request_info':
        return html`<label for="message">Pertanyaan untuk pelapor</label><textarea id="message" name="message" required maxlength="1000"></textarea>`;
      case 'close':
        return html`<label for="close-reason">Alasan</label><select id="close-reason" name="reason"><option value="selesai">selesai</option><option value="puas">pelapor puas</option><option value="debat_kusir">debat kusir</option></select>
<label for="c-note">Catatan (opsional)</label><input type="text" id="c-note" name="note">`;
      default:
        return html`<label for="${step}-reason">Alasan</label><input type="text" id="${step}-reason" name="reason" required maxlength="2000">`;
    }
  };
  return html`<p><a href="/admin/kotak-masuk">← Kotak masuk</a></p>
${extra.ok ? html`<div class="notice" role="status"><p>Tersimpan.</p></div>` : ''}
${extra.error ? html`<div class="error-summary" role="alert"><p>${extra.error}</p></div>` : ''}
<h1>Laporan ${r.trackingId} <span class="badge ${r.colour}">${STATUS_LABELS[r.status].id}</span></h1>
<p>${r.kind}${r.weight ? ` · bobot ${r.weight}` : ''} · kanal ${r.channel} · diterima <time datetime="${r.receivedAt}">${when(r.receivedAt)}</time>${r.anonim ? ' · anonim' : ''}${r.rahasia ? ' · rahasia' : ''}</p>
<p>Instansi: ${r.agencyName ?? '-'}${r.unitName ? ` · unit: ${r.unitName}` : ''}</p>
<h2>Isi laporan</h2>
<blockquote>${r.text}</blockquote>
${r.suggestions ? html`<p class="muted">Saran aturan: ${[r.suggestions.kind, r.suggestions.weight, r.suggestions.agency].filter(Boolean).join(' · ')}</p>` : ''}
${
  r.attachments.length
    ? html`<h2>Lampiran</h2><ul>${r.attachments.map((a) => html`<li><a href="/admin/laporan/${r.trackingId}/lampiran/${a.id}" download>${a.filename}</a> <span class="muted">(${a.contentType}, ${Math.ceil(a.size / 1024)} KB)</span></li>`)}</ul>`
    : ''
}
<h2>Tenggat</h2>
${
  r.deadlines.length
    ? html`<ul>${r.deadlines.map((d) => html`<li>${CLOCK_LABELS[d.clock] ?? d.clock}: ${d.paused ? 'dihentikan sementara (menunggu pelapor)' : html`<time datetime="${d.dueAt ?? ''}">${d.dueAt ? when(d.dueAt) : ''}</time>`}${d.breached ? html` — <strong>lewat tenggat</strong>` : ` — sisa ${d.remainingWorkingDays} hari kerja`}</li>`)}</ul>`
    : html`<p class="muted">Tidak ada tenggat berjalan.</p>`
}
<h2>Identitas pelapor</h2>
${
  extra.identity
    ? html`<dl class="notice"><dt>Nama</dt><dd>${String(extra.identity.name ?? '-')}</dd><dt>HP</dt><dd>${String(extra.identity.phone ?? '-')}</dd><dt>Email</dt><dd>${String(extra.identity.email ?? '-')}</dd><dt>Alamat kanal</dt><dd>${String(extra.identity.address ?? '-')}</dd></dl><p class="muted">Pembacaan ini tercatat atas nama Anda.</p>`
    : role === 'super_admin' || (!r.anonim && role !== 'operator')
      ? html`<form method="post" action="/admin/laporan/${r.trackingId}/identitas">${csrfField(session)}<button type="submit" class="secondary">Tampilkan identitas (tercatat)</button></form>`
      : html`<p class="muted">Pelapor meminta identitasnya dirahasiakan.</p>`
}
<h2>Percakapan</h2>
<ol class="timeline">${r.thread.map((m) => html`<li><strong>${m.direction === 'in' ? 'Pelapor' : m.kind === 'answer' ? 'Tanggapan' : m.kind === 'question' ? 'Pertanyaan' : `Pemberitahuan (${m.kind ?? '-'})`}</strong> · ${m.channel} · ${m.status} · <time datetime="${m.at}">${when(m.at)}</time><div class="text">${m.text}</div></li>`)}</ol>
<h2>Aksi</h2>
<div class="actions">${
  possible.length
    ? possible.map(
        (a) => html`<form method="post" action="/admin/laporan/${r.trackingId}/aksi/${a.route}">${csrfField(session)}<h3>${a.label}</h3>${field(a.step)}<div><button type="submit" class="${a.danger ? 'warning' : ''}">${a.label}</button></div></form>`,
      )
    : html`<p class="muted">Tidak ada aksi untuk peran Anda pada status ini.</p>`
}</div>
<h2>Riwayat</h2>
<ol class="timeline">${r.events.map((e) => html`<li><time datetime="${e.at}">${when(e.at)}</time> · ${e.type}${e.from || e.to ? ` (${e.from ?? '-'} → ${e.to ?? '-'})` : ''} · ${e.actor}${e.reason ? html`<div class="text">${e.reason}</div>` : ''}</li>`)}</ol>`;
}

interface QueueRow {
  name: string;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}
interface LinkRow {
  channel: string;
  link: string;
  state: string;
  ok: boolean;
}
interface DeadRow {
  queue: string;
  id: string;
  failedAt: string;
  attempts: number;
  reason: string;
}

function opsScreen(session: Session, queues: { queues: QueueRow[] }, channels: { links: LinkRow[] }, dead: { deadLetters: DeadRow[] }, ok?: string): Html {
  return html`<h1>Operasi</h1>
${ok ? html`<div class="notice" role="status"><p>${ok === 'replayed' ? 'Dikirim ulang ke antreannya.' : 'Tidak ada yang dikirim ulang.'}</p></div>` : ''}
<h2>Kanal</h2>
${
  channels.links.length
    ? html`<table><thead><tr><th scope="col">Kanal</th><th scope="col">Tautan</th><th scope="col">Keadaan</th></tr></thead><tbody>${channels.links.map((l) => html`<tr><td>${l.channel}</td><td>${l.link}</td><td>${l.ok ? 'baik' : html`<strong>${l.state}</strong>`} (${l.state})</td></tr>`)}</tbody></table>`
    : html`<p class="muted">Proses ini tidak memegang tautan kanal.</p>`
}
<h2>Antrean</h2>
<div class="scroll"><table><thead><tr><th scope="col">Antrean</th><th scope="col" class="num">Menunggu</th><th scope="col" class="num">Aktif</th><th scope="col" class="num">Terjadwal</th><th scope="col" class="num">Gagal</th></tr></thead><tbody>
${queues.queues.map((q) => html`<tr><td>${q.name}</td><td class="num">${q.waiting}</td><td class="num">${q.active}</td><td class="num">${q.delayed}</td><td class="num">${q.failed}</td></tr>`)}
</tbody></table></div>
<p><a href="/admin/queues/">Dasbor antrean (bull-board)</a></p>
<h2>Surat mati (dead letters)</h2>
${
  dead.deadLetters.length
    ? html`<div class="scroll"><table><thead><tr><th scope="col">Antrean</th><th scope="col">Job</th><th scope="col">Gagal</th><th scope="col" class="num">Percobaan</th><th scope="col">Sebab</th><th scope="col">Aksi</th></tr></thead><tbody>
${dead.deadLetters.map((d) => html`<tr><td>${d.queue}</td><td>${d.id}</td><td>${d.failedAt}</td><td class="num">${d.attempts}</td><td class="text">${d.reason}</td><td><form method="post" action="/admin/operasi/replay">${csrfField(session)}<input type="hidden" name="queue" value="${d.queue}"><input type="hidden" name="jobId" value="${d.id}"><button type="submit" class="secondary small">Kirim ulang</button></form></td></tr>`)}
</tbody></table></div>`
    : html`<p class="muted">Tidak ada.</p>`
}`;
}
