import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STEP_FROM } from '../../core/lifecycle.ts';
import { KINDS, STATUS_LABELS, WEIGHTS, type ReportStatus } from '../../core/report.ts';
import { STEP_ROLES, type Actor, type Role, type Step } from '../../core/roles.ts';
// Types only: the console reads what the API answers, which is what these describe.
import type { CaseDetail, CaseListItem } from '../../store/cases.ts';
import { actorOfToken } from '../../store/users.ts';
import type { HttpDeps } from '../app.ts';
import { html, type Html } from './html.ts';
import { langOf, page, rememberLang, type Lang } from './layout.ts';

/**
 * The operators' console at /admin: a thin client of the operator API. It logs in through
 * /api/v1/auth/login and keeps the token in an httpOnly, SameSite=Strict cookie; every screen and
 * every action is a call to /api/v1/admin with that token (in-process), so what a role may see and
 * do is decided by the API alone. Every form that changes something carries a CSRF token derived
 * from the session token, which a page of another site can neither read nor guess.
 *
 * Like the citizens' pages, it speaks Bahasa Indonesia by default and English on request: `?lang=`
 * on any console page switches, and the `lang` cookie remembers the choice for the next pages.
 */

export const SESSION_COOKIE = 'lapor_admin';
/** The login form's own cookie (see loginToken). */
export const LOGIN_COOKIE = 'lapor_login';
/** The console's language when a request names none (by `?lang=` or the `lang` cookie). */
const DEFAULT_LANG: Lang = 'id';

const t = (lang: Lang, id: string, en: string) => (lang === 'id' ? id : en);

const ROLE_LABELS: Record<Role, { id: string; en: string }> = {
  super_admin: { id: 'Super admin', en: 'Super admin' },
  agency_admin: { id: 'Admin instansi', en: 'Agency admin' },
  liaison: { id: 'Pejabat penghubung', en: 'Liaison officer' },
  operator: { id: 'Operator', en: 'Operator' },
};

const CLOCK_LABELS: Record<string, { id: string; en: string }> = {
  verification: { id: 'verifikasi', en: 'verification' },
  follow_up: { id: 'tindak lanjut', en: 'follow-up' },
  auto_close: { id: 'tutup otomatis', en: 'automatic closing' },
};

const clockLabel = (lang: Lang, clock: string) => CLOCK_LABELS[clock]?.[lang] ?? clock;
const statusLabel = (lang: Lang, status: string) => STATUS_LABELS[status as ReportStatus]?.[lang] ?? status;

/** The console's action routes, in the order a report moves, with the form each needs. */
const ACTIONS: { step: Step; route: string; label: { id: string; en: string }; danger?: boolean }[] = [
  { step: 'verify', route: 'verify', label: { id: 'Verifikasi', en: 'Verify' } },
  { step: 'dispose', route: 'dispose', label: { id: 'Disposisi ke instansi', en: 'Forward to an agency' } },
  { step: 'assign', route: 'dispose', label: { id: 'Tugaskan ke unit', en: 'Assign to a unit' } },
  { step: 'answer', route: 'answer', label: { id: 'Kirim tindak lanjut', en: 'Send the answer' } },
  { step: 'request_info', route: 'request-info', label: { id: 'Minta informasi ke pelapor', en: 'Ask the reporter for information' } },
  { step: 'return', route: 'return', label: { id: 'Kembalikan: bukan wewenang', en: 'Return: not our authority' } },
  { step: 'reweigh', route: 'weight', label: { id: 'Ubah bobot', en: 'Change the weight' } },
  { step: 'close', route: 'close', label: { id: 'Tutup laporan', en: 'Close the report' } },
  { step: 'reject', route: 'reject', label: { id: 'Tidak dapat diproses', en: 'Cannot be processed' }, danger: true },
  { step: 'archive', route: 'archive', label: { id: 'Arsipkan', en: 'Archive' }, danger: true },
];

/** The API's refusals, as an operator reads them. */
const ERROR_MESSAGES: Record<string, (lang: Lang, status?: string) => string> = {
  illegal_transition: (lang, status) =>
    status
      ? t(lang, `Aksi ini tidak dapat dilakukan pada laporan berstatus ${statusLabel('id', status)}.`, `This action cannot be taken on a report with the status “${statusLabel('en', status)}”.`)
      : t(lang, 'Aksi ini tidak dapat dilakukan pada laporan berstatus ini.', 'This action cannot be taken on a report with this status.'),
  forbidden: (lang) => t(lang, 'Peran Anda tidak berwenang melakukan aksi ini.', 'Your role may not take this action.'),
  not_found: (lang) => t(lang, 'Laporan tidak ditemukan, atau di luar wewenang Anda.', 'The report does not exist, or is outside your authority.'),
  unknown_agency: (lang) => t(lang, 'Instansi tidak dikenal.', 'Unknown agency.'),
  unknown_unit: (lang) => t(lang, 'Unit itu bukan bagian dari instansi ini.', 'That unit is not part of this agency.'),
  bad_request: (lang) => t(lang, 'Isian belum lengkap atau tidak sesuai.', 'Some fields are missing or not valid.'),
};

/** What an operator reads for an API refusal: ours for the codes we know, else the API's own message. */
function refusal(lang: Lang, body: { error?: unknown; status?: unknown; message?: unknown }, fallback: string): string {
  const said = ERROR_MESSAGES[String(body.error ?? '')];
  if (said) return said(lang, typeof body.status === 'string' ? body.status : undefined);
  return typeof body.message === 'string' && body.message ? body.message : fallback;
}

export function csrfOf(token: string): string {
  return createHash('sha256').update(`csrf:${token}`).digest('base64url').slice(0, 32);
}

function sessionToken(req: FastifyRequest): string | undefined {
  const match = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([A-Za-z0-9_-]{20,200})`).exec(req.headers.cookie ?? '');
  return match?.[1];
}

function cookie(req: FastifyRequest, value: string, maxAgeSeconds: number, publicUrl: string): string {
  // Secure when the request came over TLS, or when the site is public over https (behind a proxy
  // that terminates TLS, with LAPOR_HTTP_TRUST_PROXY off, the request itself looks like http).
  const secure = req.protocol === 'https' || publicUrl.startsWith('https:') ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

/**
 * Where the language switch of a page leads: the page itself without its `lang`, so the switch works
 * on every screen (its other parameters kept); after a posted form, the page that form is on, since
 * a link can only GET.
 */
function switchPath(req: FastifyRequest): string {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  if (req.method === 'POST') {
    if (path === '/admin/login') {
      const next = safeNext((req.body as Record<string, unknown> | undefined)?.next);
      return next === '/admin' ? path : `${path}?next=${encodeURIComponent(next)}`;
    }
    if (path === '/admin/logout') return '/admin';
    if (path === '/admin/operasi/replay') return '/admin/operasi';
    return path.replace(/\/(identitas|aksi\/[^/]*)$/, '');
  }
  if (q < 0) return path;
  const params = new URLSearchParams(req.url.slice(q + 1));
  params.delete('lang');
  const rest = params.toString();
  return rest ? `${path}?${rest}` : path;
}

interface Session {
  token: string;
  actor: Actor;
  csrf: string;
  /** The language of the request: every screen is rendered in it. */
  lang: Lang;
}

export function consolePages(deps: HttpDeps) {
  return async (app: FastifyInstance) => {
    // `?lang=` on any console request (a page, or one that redirects) is remembered for the next ones.
    app.addHook('onRequest', async (req, reply) => {
      rememberLang(req, reply);
    });

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

    /** Agencies' and units' names by slug, from the public list, for screens that list reports. */
    const bodyNames = async (): Promise<Map<string, string>> => {
      const { agencies } = (await api(undefined, 'GET', '/api/v1/agencies')).json() as { agencies: { slug: string; name: string; units: { slug: string; name: string }[] }[] };
      return new Map(agencies.flatMap((a) => [[a.slug, a.name] as const, ...a.units.map((u) => [u.slug, u.name] as const)]));
    };

    const render = (req: FastifyRequest, reply: FastifyReply, lang: Lang, title: string, body: Html, session?: Session, status = 200) =>
      reply
        .status(status)
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('x-frame-options', 'DENY')
        .header('content-security-policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
        .send(page({ lang, title, body, path: switchPath(req), wide: true, ...(session ? { nav: nav(session) } : {}) }));

    /** The session of a request, or a redirect to the login page. */
    const requireSession = async (req: FastifyRequest, reply: FastifyReply): Promise<Session | undefined> => {
      const token = sessionToken(req);
      const actor = token ? await actorOfToken(deps.db, token) : undefined;
      if (!token || !actor) {
        await reply.redirect(`/admin/login?next=${encodeURIComponent(req.url)}`, 303);
        return undefined;
      }
      const session: Session = { token, actor, csrf: csrfOf(token), lang: langOf(req, DEFAULT_LANG) };
      if (req.method === 'POST') {
        const sent = String((req.body as Record<string, unknown> | undefined)?._csrf ?? '');
        if (sent.length !== session.csrf.length || !timingSafeEqual(Buffer.from(sent), Buffer.from(session.csrf))) {
          const lang = session.lang;
          const title = t(lang, 'Permintaan ditolak', 'Request refused');
          await render(
            req,
            reply,
            lang,
            title,
            html`<h1>${title}</h1><p>${t(lang, 'Formulir ini kedaluwarsa atau tidak berasal dari konsol. Muat ulang halaman, lalu coba lagi.', 'This form has expired or did not come from the console. Reload the page and try again.')}</p>`,
            session,
            403,
          );
          return undefined;
        }
      }
      return session;
    };

    /**
     * The login form carries a token that must match a SameSite=Strict cookie set with the form: a
     * page of another site cannot post it, so nobody can log a victim into an account of theirs.
     */
    const loginToken = (req: FastifyRequest, reply: FastifyReply): string => {
      const token = randomBytes(18).toString('base64url');
      const secure = req.protocol === 'https' || deps.config.publicUrl.startsWith('https:') ? '; Secure' : '';
      reply.header('set-cookie', `${LOGIN_COOKIE}=${token}; Path=/admin/login; HttpOnly; SameSite=Strict; Max-Age=3600${secure}`);
      return token;
    };

    app.get('/admin/login', async (req, reply) => {
      const lang = langOf(req, DEFAULT_LANG);
      const next = safeNext((req.query as Record<string, unknown>).next);
      return render(req, reply, lang, t(lang, 'Masuk', 'Log in'), loginForm(lang, next, loginToken(req, reply)));
    });

    app.post('/admin/login', async (req, reply) => {
      const form = (req.body ?? {}) as Record<string, string | undefined>;
      // The language the form was shown in (carried by the form), else the request's.
      const lang: Lang = form.lang === 'en' || form.lang === 'id' ? form.lang : langOf(req, DEFAULT_LANG);
      const next = safeNext(form.next);
      const expected = new RegExp(`(?:^|;\\s*)${LOGIN_COOKIE}=([A-Za-z0-9_-]{24})`).exec(req.headers.cookie ?? '')?.[1];
      const sent = form._login ?? '';
      if (!expected || sent.length !== expected.length || !timingSafeEqual(Buffer.from(sent), Buffer.from(expected))) {
        const message = t(lang, 'Formulir masuk kedaluwarsa. Coba lagi.', 'The login form has expired. Try again.');
        return render(req, reply, lang, t(lang, 'Masuk', 'Log in'), loginForm(lang, next, loginToken(req, reply), form.email ?? '', message), undefined, 403);
      }
      const res = await api(undefined, 'POST', '/api/v1/auth/login', { email: form.email ?? '', password: form.password ?? '' }, req.ip);
      if (res.status === 200) {
        const { token, expiresAt } = res.json() as { token: string; expiresAt: string };
        reply.header('set-cookie', cookie(req, token, Math.floor((Date.parse(expiresAt) - Date.now()) / 1000), deps.config.publicUrl));
        return reply.redirect(next, 303);
      }
      const minutes = Math.ceil(Number(res.headers['retry-after'] ?? 60) / 60);
      const message =
        res.status === 429
          ? t(lang, `Terlalu banyak percobaan gagal. Coba lagi setelah ${minutes} menit.`, `Too many failed attempts. Try again in ${minutes} ${minutes === 1 ? 'minute' : 'minutes'}.`)
          : t(lang, 'Email atau kata sandi salah.', 'Wrong email or password.');
      return render(req, reply, lang, t(lang, 'Masuk', 'Log in'), loginForm(lang, next, loginToken(req, reply), form.email ?? '', message), undefined, res.status === 429 ? 429 : 401);
    });

    app.post('/admin/logout', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      await api(session, 'POST', '/api/v1/auth/logout');
      reply.header('set-cookie', cookie(req, '', 0, deps.config.publicUrl));
      return reply.redirect('/admin/login', 303);
    });

    // ---- first screen: deadline risk ----
    app.get('/admin', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      if (session.actor.role === 'operator') return reply.redirect('/admin/operasi', 303);
      const { deadlines } = (await api(session, 'GET', '/api/v1/admin/deadlines?withinHours=24')).json() as { deadlines: RiskRow[] };
      return render(req, reply, session.lang, t(session.lang, 'Risiko tenggat', 'Deadline risk'), riskScreen(session.lang, deadlines, await bodyNames()), session);
    });

    // ---- inbox per role ----
    app.get('/admin/kotak-masuk', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      if (session.actor.role === 'operator') return reply.redirect('/admin/operasi', 303);
      const lang = session.lang;
      const q = req.query as Record<string, string | undefined>;
      const id = (q.id ?? '').replace(/\s+/g, '');
      if (/^\d{6,10}$/.test(id)) return reply.redirect(`/admin/laporan/${id}`, 303);
      const boxes = q.status ? [{ title: statusLabel(lang, q.status), query: `status=${encodeURIComponent(q.status)}` }] : inboxesOf(lang, session.actor.role);
      const lists = await Promise.all(
        boxes.map(async (box) => ({ ...box, result: (await api(session, 'GET', `/api/v1/admin/reports?limit=100&${box.query}`)).json() as CaseList })),
      );
      return render(req, reply, lang, t(lang, 'Kotak masuk', 'Inbox'), inboxScreen(lang, lists, q.status, await bodyNames()), session);
    });

    // ---- one report ----
    const showReport = async (req: FastifyRequest, reply: FastifyReply, session: Session, extra: { error?: string; ok?: string; identity?: Record<string, unknown> } = {}) => {
      const lang = session.lang;
      const id = (req.params as { trackingId: string }).trackingId;
      const res = await api(session, 'GET', `/api/v1/admin/reports/${encodeURIComponent(id)}`);
      if (res.status !== 200) {
        return render(
          req,
          reply,
          lang,
          t(lang, 'Laporan tidak ditemukan', 'Report not found'),
          html`<h1>${t(lang, 'Laporan', 'Report')} ${id}</h1><p>${res.status === 400 ? t(lang, 'Nomor laporan tidak valid.', 'That is not a valid report number.') : refusal(lang, res.json(), t(lang, 'Tidak ditemukan.', 'Not found.'))}</p><p><a href="/admin/kotak-masuk">${t(lang, 'Kembali ke kotak masuk', 'Back to the inbox')}</a></p>`,
          session,
          res.status,
        );
      }
      const agencies = (await api(session, 'GET', '/api/v1/agencies')).json() as { agencies: { slug: string; name: string; units: { slug: string; name: string }[] }[] };
      return render(req, reply, lang, t(lang, `Laporan ${id}`, `Report ${id}`), reportScreen(session, res.json() as unknown as CaseDetail, agencies.agencies, extra), session, extra.error ? 400 : 200);
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
      const lang = session.lang;
      const { trackingId, id } = req.params as { trackingId: string; id: string };
      const res = await app.inject({
        method: 'GET',
        url: `/api/v1/admin/reports/${encodeURIComponent(trackingId)}/attachments/${encodeURIComponent(id)}`,
        headers: { authorization: `Bearer ${session.token}` },
      });
      if (res.statusCode !== 200) {
        const title = t(lang, 'Lampiran tidak ditemukan', 'Attachment not found');
        return render(req, reply, lang, title, html`<h1>${title}</h1><p><a href="/admin/laporan/${trackingId}">${t(lang, 'Kembali', 'Back')}</a></p>`, session, res.statusCode);
      }
      for (const header of ['content-type', 'content-disposition', 'x-content-type-options', 'cache-control'] as const) reply.header(header, res.headers[header]);
      return reply.send(res.rawPayload);
    });

    app.post('/admin/laporan/:trackingId/identitas', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      const id = (req.params as { trackingId: string }).trackingId;
      const res = await api(session, 'GET', `/api/v1/admin/reports/${encodeURIComponent(id)}/reporter`);
      if (res.status !== 200) return showReport(req, reply, session, { error: refusal(session.lang, res.json(), t(session.lang, 'Identitas tidak dapat ditampilkan.', 'The identity cannot be shown.')) });
      return showReport(req, reply, session, { identity: res.json() });
    });

    app.post('/admin/laporan/:trackingId/aksi/:route', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      const { trackingId, route } = req.params as { trackingId: string; route: string };
      if (!ACTIONS.some((a) => a.route === route)) return showReport(req, reply, session, { error: t(session.lang, 'Aksi tidak dikenal.', 'Unknown action.') });
      const { _csrf: _ignored, ...fields } = (req.body ?? {}) as Record<string, string>;
      const body = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== '').map(([k, v]) => [k, k === 'anonim' || k === 'rahasia' ? v === 'ya' : v]));
      const res = await api(session, 'POST', `/api/v1/admin/reports/${encodeURIComponent(trackingId)}/${route}`, body);
      if (res.status === 200) return reply.redirect(`/admin/laporan/${encodeURIComponent(trackingId)}?ok=${encodeURIComponent(route)}`, 303);
      const error = res.json() as { error?: string; status?: string; message?: string; details?: { path: string; message: string }[] };
      const said = ERROR_MESSAGES[error.error ?? ''];
      const message = said ? said(session.lang, error.status) : error.message;
      return showReport(req, reply, session, { error: [message, ...(error.details ?? []).map((d) => `${d.path}: ${d.message}`)].filter(Boolean).join(' — ') });
    });

    // ---- the operator on duty ----
    app.get('/admin/operasi', async (req, reply) => {
      const session = await requireSession(req, reply);
      if (!session) return reply;
      const lang = session.lang;
      const [queues, channels, dead] = await Promise.all([
        api(session, 'GET', '/api/v1/admin/queues'),
        api(session, 'GET', '/api/v1/admin/channels'),
        api(session, 'GET', '/api/v1/admin/dead-letters'),
      ]);
      if (queues.status !== 200) {
        return render(
          req,
          reply,
          lang,
          t(lang, 'Tidak berwenang', 'Not allowed'),
          html`<h1>${t(lang, 'Operasi', 'Operations')}</h1><p>${t(lang, 'Halaman ini untuk operator dan super admin.', 'This page is for operators and super admins.')}</p>`,
          session,
          403,
        );
      }
      return render(
        req,
        reply,
        lang,
        t(lang, 'Operasi', 'Operations'),
        opsScreen(session, queues.json() as { queues: QueueRow[] }, channels.json() as { links: LinkRow[] }, dead.json() as { deadLetters: DeadRow[] }, (req.query as Record<string, string | undefined>).ok),
        session,
      );
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
  const { lang } = session;
  const role = session.actor.role;
  return html`${role !== 'operator' ? html`<li><a href="/admin">${t(lang, 'Risiko tenggat', 'Deadline risk')}</a></li><li><a href="/admin/kotak-masuk">${t(lang, 'Kotak masuk', 'Inbox')}</a></li>` : ''}
${role === 'operator' || role === 'super_admin' ? html`<li><a href="/admin/operasi">${t(lang, 'Operasi', 'Operations')}</a></li><li><a href="/admin/queues/">${t(lang, 'Antrean', 'Queues')}</a></li>` : ''}
<li><form method="post" action="/admin/logout" class="inline">${csrfField(session)}<button type="submit" class="secondary small">${t(lang, 'Keluar', 'Log out')} (${ROLE_LABELS[role][lang]})</button></form></li>`;
}

function loginForm(lang: Lang, next: string, token: string, email = '', error?: string): Html {
  return html`<h1>${t(lang, 'Masuk ke konsol LAPOR!', 'Log in to the LAPOR! console')}</h1>
${error ? html`<div class="error-summary" role="alert"><p>${error}</p></div>` : ''}
<form method="post" action="/admin/login">
  <input type="hidden" name="next" value="${next}">
  <input type="hidden" name="lang" value="${lang}">
  <input type="hidden" name="_login" value="${token}">
  <label for="email">Email</label>
  <input type="email" id="email" name="email" autocomplete="username" required value="${email}">
  <label for="password">${t(lang, 'Kata sandi', 'Password')}</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required>
  <div><button type="submit">${t(lang, 'Masuk', 'Log in')}</button></div>
</form>
<p class="hint">${t(lang, 'Belum punya akun? Super admin membuatnya dengan', 'No account yet? A super admin creates one with')} <code>lapor user add</code>.</p>`;
}

interface RiskRow {
  trackingId: string;
  clock: string;
  agency: string | null;
  status: ReportStatus;
  dueAt: string;
  breached: boolean;
}

function when(lang: Lang, iso: string): string {
  return new Date(iso).toLocaleString(lang === 'id' ? 'id-ID' : 'en-GB', { timeZone: 'Asia/Jakarta', dateStyle: 'medium', timeStyle: 'short' });
}

function riskScreen(lang: Lang, rows: RiskRow[], names: ReadonlyMap<string, string>): Html {
  const table = (title: string, items: RiskRow[]) => html`<h2>${title} (${items.length})</h2>
${
  items.length
    ? html`<div class="scroll"><table><thead><tr><th scope="col">${t(lang, 'Laporan', 'Report')}</th><th scope="col">${t(lang, 'Instansi', 'Agency')}</th><th scope="col">${t(lang, 'Tenggat', 'Deadline')}</th><th scope="col">${t(lang, 'Jatuh tempo', 'Due')}</th><th scope="col">Status</th></tr></thead><tbody>
${items.map((r) => html`<tr><td><a href="/admin/laporan/${r.trackingId}">${r.trackingId}</a></td><td>${r.agency ? (names.get(r.agency) ?? r.agency) : t(lang, 'pusat', 'central')}</td><td>${clockLabel(lang, r.clock)}</td><td><time datetime="${r.dueAt}">${when(lang, r.dueAt)}</time></td><td>${statusLabel(lang, r.status)}</td></tr>`)}
</tbody></table></div>`
    : html`<p class="muted">${t(lang, 'Tidak ada.', 'None.')}</p>`
}`;
  return html`<h1>${t(lang, 'Risiko tenggat', 'Deadline risk')}</h1>
<p>${t(lang, 'Tenggat dihitung dalam hari kerja (WIB), di luar Sabtu, Minggu, libur nasional dan cuti bersama.', 'Deadlines are counted in working days (Jakarta time, WIB), leaving out Saturdays, Sundays, national holidays and collective leave days (cuti bersama).')}</p>
${table(t(lang, 'Sudah lewat tenggat', 'Past the deadline'), rows.filter((r) => r.breached))}
${table(t(lang, 'Jatuh tempo dalam 24 jam', 'Due within 24 hours'), rows.filter((r) => !r.breached))}`;
}

type CaseItem = CaseListItem;

function inboxesOf(lang: Lang, role: Role): { title: string; query: string; filter?: (i: CaseItem) => boolean }[] {
  switch (role) {
    case 'super_admin':
      return [
        { title: t(lang, 'Perlu diverifikasi', 'To verify'), query: 'status=belum_terverifikasi' },
        { title: t(lang, 'Perlu didisposisi', 'To forward to an agency'), query: 'status=terverifikasi' },
        { title: t(lang, 'Dikembalikan: bukan wewenang', 'Returned: not the agency’s authority'), query: 'status=bukan_wewenang' },
      ];
    case 'agency_admin':
      return [
        { title: t(lang, 'Perlu ditugaskan ke unit', 'To assign to a unit'), query: 'status=terdisposisi' },
        { title: t(lang, 'Sedang diproses', 'In progress'), query: 'status=sedang_diproses' },
      ];
    default:
      return [
        { title: t(lang, 'Perlu ditindaklanjuti', 'To answer'), query: 'status=terdisposisi' },
        { title: t(lang, 'Sudah ditanggapi', 'Answered'), query: 'status=sedang_diproses' },
      ];
  }
}

/** One list of the inbox as the API answers it: its items, or why not. */
type CaseList = { items?: CaseItem[]; error?: string; message?: string };

function inboxScreen(lang: Lang, lists: { title: string; result: CaseList }[], status: string | undefined, names: ReadonlyMap<string, string>): Html {
  return html`<h1>${t(lang, 'Kotak masuk', 'Inbox')}</h1>
<form method="get" action="/admin/kotak-masuk">
  <label for="id">${t(lang, 'Cari nomor laporan', 'Find a report by its number')}</label>
  <input type="search" id="id" name="id" inputmode="numeric" autocomplete="off">
  <label for="status">${t(lang, 'atau tampilkan status', 'or show a status')}</label>
  <select id="status" name="status">
    <option value="">${t(lang, 'kotak masuk saya', 'my inbox')}</option>
    ${Object.entries(STATUS_LABELS).map(([value, label]) => html`<option value="${value}" ${value === status ? 'selected' : ''}>${label[lang]}</option>`)}
  </select>
  <div><button type="submit">${t(lang, 'Tampilkan', 'Show')}</button></div>
</form>
${lists.map(
  (list) => html`<h2>${list.title} (${list.result.items?.length ?? 0})</h2>
${
  list.result.items?.length
    ? html`<div class="scroll"><table><thead><tr><th scope="col">${t(lang, 'Laporan', 'Report')}</th><th scope="col">${t(lang, 'Diterima', 'Received')}</th><th scope="col">${t(lang, 'Kanal', 'Channel')}</th><th scope="col">${t(lang, 'Jenis / bobot', 'Kind / weight')}</th><th scope="col">${t(lang, 'Instansi / unit', 'Agency / unit')}</th><th scope="col">Status</th></tr></thead><tbody>
${list.result.items.map(
  (i) => html`<tr><td><a href="/admin/laporan/${i.trackingId}">${i.trackingId}</a>${i.rahasia ? html` <span class="muted">(${t(lang, 'rahasia', 'confidential')})</span>` : ''}${i.anonim ? html` <span class="muted">(${t(lang, 'anonim', 'anonymous')})</span>` : ''}</td>
<td><time datetime="${i.receivedAt}">${when(lang, i.receivedAt)}</time></td><td>${i.channel}</td><td>${i.kind}${i.weight ? ` / ${i.weight}` : ''}</td><td>${i.agency ? (names.get(i.agency) ?? i.agency) : '-'}${i.unit ? ` / ${names.get(i.unit) ?? i.unit}` : ''}</td>
<td><span class="badge ${i.colour}">${STATUS_LABELS[i.status][lang]}</span></td></tr>`,
)}
</tbody></table></div>`
    : html`<p class="muted">${refusal(lang, list.result, t(lang, 'Kosong.', 'Empty.'))}</p>`
}`,
)}`;
}

function reportScreen(
  session: Session,
  r: CaseDetail,
  agencies: { slug: string; name: string; units: { slug: string; name: string }[] }[],
  extra: { error?: string; ok?: string; identity?: Record<string, unknown> },
): Html {
  const { lang } = session;
  const role = session.actor.role;
  const possible = ACTIONS.filter((a) => (STEP_ROLES[a.step] as readonly Role[]).includes(role) && (STEP_FROM[a.step].includes(r.status) || (a.step === 'reject' && r.status === 'tertunda')));
  const ownUnits = agencies.find((a) => a.slug === session.actor.agencySlug)?.units ?? [];
  const optionalNote = t(lang, 'Catatan (opsional)', 'Note (optional)');
  const field = (step: Step): Html => {
    switch (step) {
      case 'verify':
        return html`<label for="kind">${t(lang, 'Jenis', 'Kind')}</label><select id="kind" name="kind">${KINDS.map((k) => html`<option value="${k}" ${r.suggestions?.kind === k ? 'selected' : ''}>${k}</option>`)}</select>
<label for="weight">${t(lang, 'Bobot', 'Weight')}</label><select id="weight" name="weight">${WEIGHTS.map((w) => html`<option value="${w}" ${r.suggestions?.weight === w ? 'selected' : ''}>${w}</option>`)}</select>
<label for="v-privacy">${t(lang, 'Kerahasiaan', 'Privacy')}</label><select id="v-privacy" name="rahasia"><option value="">${r.rahasia ? t(lang, 'rahasia', 'confidential') : t(lang, 'biasa', 'standard')} (${t(lang, 'tetap', 'unchanged')})</option><option value="ya">${t(lang, 'rahasia', 'confidential')}</option></select>
<label for="v-note">${optionalNote}</label><input type="text" id="v-note" name="note">`;
      case 'reweigh':
        return html`<label for="w-weight">${t(lang, 'Bobot baru', 'New weight')}</label><select id="w-weight" name="weight">${WEIGHTS.map((w) => html`<option value="${w}" ${r.weight === w ? 'selected' : ''}>${w}</option>`)}</select>
<label for="w-note">${t(lang, 'Alasan (opsional)', 'Reason (optional)')}</label><input type="text" id="w-note" name="note">`;
      case 'dispose':
        return html`<label for="agency">${t(lang, 'Instansi', 'Agency')}</label><select id="agency" name="agency">${agencies.map((a) => html`<option value="${a.slug}" ${r.suggestions?.agency === a.slug ? 'selected' : ''}>${a.name}</option>`)}</select>
<label for="d-note">${optionalNote}</label><input type="text" id="d-note" name="note">`;
      case 'assign':
        return html`<label for="unit">Unit</label><select id="unit" name="unit">${ownUnits.map((u) => html`<option value="${u.slug}" ${r.unit === u.slug ? 'selected' : ''}>${u.name}</option>`)}</select>`;
      case 'answer':
        return html`<label for="answer">${t(lang, 'Tanggapan untuk pelapor', 'Answer to the reporter')}</label><textarea id="answer" name="text" required maxlength="10000"></textarea>`;
      case 'request_info':
        return html`<label for="message">${t(lang, 'Pertanyaan untuk pelapor', 'Question for the reporter')}</label><textarea id="message" name="message" required maxlength="1000"></textarea>`;
      case 'close':
        return html`<label for="close-reason">${t(lang, 'Alasan', 'Reason')}</label><select id="close-reason" name="reason"><option value="selesai">${t(lang, 'selesai', 'resolved')}</option><option value="puas">${t(lang, 'pelapor puas', 'the reporter is satisfied')}</option><option value="debat_kusir">${t(lang, 'debat kusir', 'endless argument')}</option></select>
<label for="c-note">${optionalNote}</label><input type="text" id="c-note" name="note">`;
      default:
        return html`<label for="${step}-reason">${t(lang, 'Alasan', 'Reason')}</label><input type="text" id="${step}-reason" name="reason" required maxlength="2000">`;
    }
  };
  const sender = (m: CaseDetail['thread'][number]): string =>
    m.direction === 'in'
      ? t(lang, 'Pelapor', 'Reporter')
      : m.kind === 'answer'
        ? t(lang, 'Tanggapan', 'Answer')
        : m.kind === 'question'
          ? t(lang, 'Pertanyaan', 'Question')
          : `${t(lang, 'Pemberitahuan', 'Notice')} (${m.kind ?? '-'})`;
  return html`<p><a href="/admin/kotak-masuk">← ${t(lang, 'Kotak masuk', 'Inbox')}</a></p>
${extra.ok ? html`<div class="notice" role="status"><p>${t(lang, 'Tersimpan.', 'Saved.')}</p></div>` : ''}
${extra.error ? html`<div class="error-summary" role="alert"><p>${extra.error}</p></div>` : ''}
<h1>${t(lang, 'Laporan', 'Report')} ${r.trackingId} <span class="badge ${r.colour}">${STATUS_LABELS[r.status][lang]}</span></h1>
<p>${r.kind}${r.weight ? ` · ${t(lang, 'bobot', 'weight')} ${r.weight}` : ''} · ${t(lang, 'kanal', 'channel')} ${r.channel} · ${t(lang, 'diterima', 'received')} <time datetime="${r.receivedAt}">${when(lang, r.receivedAt)}</time>${r.anonim ? ` · ${t(lang, 'anonim', 'anonymous')}` : ''}${r.rahasia ? ` · ${t(lang, 'rahasia', 'confidential')}` : ''}</p>
<p>${t(lang, 'Instansi', 'Agency')}: ${r.agencyName ?? '-'}${r.unitName ? ` · unit: ${r.unitName}` : ''}</p>
<h2>${t(lang, 'Isi laporan', 'The report')}</h2>
<blockquote>${r.text}</blockquote>
${r.suggestions ? html`<p class="muted">${t(lang, 'Saran aturan', 'Suggested by the rules')}: ${[r.suggestions.kind, r.suggestions.weight, r.suggestions.agency].filter(Boolean).join(' · ')}</p>` : ''}
${
  r.attachments.length
    ? html`<h2>${t(lang, 'Lampiran', 'Attachments')}</h2><ul>${r.attachments.map((a) => html`<li><a href="/admin/laporan/${r.trackingId}/lampiran/${a.id}" download>${a.filename}</a> <span class="muted">(${a.contentType}, ${Math.ceil(a.size / 1024)} KB)</span></li>`)}</ul>`
    : ''
}
<h2>${t(lang, 'Tenggat', 'Deadlines')}</h2>
${
  r.deadlines.length
    ? html`<ul>${r.deadlines.map((d) => html`<li>${clockLabel(lang, d.clock)}: ${d.paused ? t(lang, 'dihentikan sementara (menunggu pelapor)', 'paused (waiting for the reporter)') : html`<time datetime="${d.dueAt ?? ''}">${d.dueAt ? when(lang, d.dueAt) : ''}</time>`}${d.breached ? html` — <strong>${t(lang, 'lewat tenggat', 'past the deadline')}</strong>` : ` — ${t(lang, `sisa ${d.remainingWorkingDays} hari kerja`, `${d.remainingWorkingDays} working ${d.remainingWorkingDays === 1 ? 'day' : 'days'} left`)}`}</li>`)}</ul>`
    : html`<p class="muted">${t(lang, 'Tidak ada tenggat berjalan.', 'No deadline is running.')}</p>`
}
<h2>${t(lang, 'Identitas pelapor', 'The reporter’s identity')}</h2>
${
  extra.identity
    ? html`<dl class="notice"><dt>${t(lang, 'Nama', 'Name')}</dt><dd>${String(extra.identity.name ?? '-')}</dd><dt>${t(lang, 'HP', 'Mobile')}</dt><dd>${String(extra.identity.phone ?? '-')}</dd><dt>Email</dt><dd>${String(extra.identity.email ?? '-')}</dd><dt>${t(lang, 'Alamat kanal', 'Channel address')}</dt><dd>${String(extra.identity.address ?? '-')}</dd></dl><p class="muted">${t(lang, 'Pembacaan ini tercatat atas nama Anda.', 'This reading is recorded in your name.')}</p>`
    : role === 'super_admin' || (!r.anonim && role !== 'operator')
      ? html`<form method="post" action="/admin/laporan/${r.trackingId}/identitas">${csrfField(session)}<button type="submit" class="secondary">${t(lang, 'Tampilkan identitas (tercatat)', 'Show identity (recorded)')}</button></form>`
      : html`<p class="muted">${t(lang, 'Pelapor meminta identitasnya dirahasiakan.', 'The reporter asked to stay anonymous.')}</p>`
}
<h2>${t(lang, 'Percakapan', 'Conversation')}</h2>
<ol class="timeline">${r.thread.map((m) => html`<li><strong>${sender(m)}</strong> · ${m.channel} · ${m.status} · <time datetime="${m.at}">${when(lang, m.at)}</time><div class="text">${m.text}</div></li>`)}</ol>
<h2>${t(lang, 'Aksi', 'Actions')}</h2>
<div class="actions">${
  possible.length
    ? possible.map(
        (a) => html`<form method="post" action="/admin/laporan/${r.trackingId}/aksi/${a.route}">${csrfField(session)}<h3>${a.label[lang]}</h3>${field(a.step)}<div><button type="submit" class="${a.danger ? 'warning' : ''}">${a.label[lang]}</button></div></form>`,
      )
    : html`<p class="muted">${t(lang, 'Tidak ada aksi untuk peran Anda pada status ini.', 'Your role has no action on a report with this status.')}</p>`
}</div>
<h2>${t(lang, 'Riwayat', 'History')}</h2>
<ol class="timeline">${r.events.map((e) => html`<li><time datetime="${e.at}">${when(lang, e.at)}</time> · ${e.type}${e.from || e.to ? ` (${e.from ?? '-'} → ${e.to ?? '-'})` : ''} · ${e.actor}${e.reason ? html`<div class="text">${e.reason}</div>` : ''}</li>`)}</ol>`;
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
  const { lang } = session;
  const queue = t(lang, 'Antrean', 'Queue');
  return html`<h1>${t(lang, 'Operasi', 'Operations')}</h1>
${ok ? html`<div class="notice" role="status"><p>${ok === 'replayed' ? t(lang, 'Dikirim ulang ke antreannya.', 'Sent back to its queue.') : t(lang, 'Tidak ada yang dikirim ulang.', 'Nothing was replayed.')}</p></div>` : ''}
<h2>${t(lang, 'Kanal', 'Channels')}</h2>
${
  channels.links.length
    ? html`<table><thead><tr><th scope="col">${t(lang, 'Kanal', 'Channel')}</th><th scope="col">${t(lang, 'Tautan', 'Link')}</th><th scope="col">${t(lang, 'Keadaan', 'State')}</th></tr></thead><tbody>${channels.links.map((l) => html`<tr><td>${l.channel}</td><td>${l.link}</td><td>${l.ok ? t(lang, 'baik', 'good') : html`<strong>${l.state}</strong>`} (${l.state})</td></tr>`)}</tbody></table>`
    : html`<p class="muted">${t(lang, 'Proses ini tidak memegang tautan kanal.', 'This process holds no channel links.')}</p>`
}
<h2>${t(lang, 'Antrean', 'Queues')}</h2>
<div class="scroll"><table><thead><tr><th scope="col">${queue}</th><th scope="col" class="num">${t(lang, 'Menunggu', 'Waiting')}</th><th scope="col" class="num">${t(lang, 'Aktif', 'Active')}</th><th scope="col" class="num">${t(lang, 'Terjadwal', 'Delayed')}</th><th scope="col" class="num">${t(lang, 'Gagal', 'Failed')}</th></tr></thead><tbody>
${queues.queues.map((q) => html`<tr><td>${q.name}</td><td class="num">${q.waiting}</td><td class="num">${q.active}</td><td class="num">${q.delayed}</td><td class="num">${q.failed}</td></tr>`)}
</tbody></table></div>
<p><a href="/admin/queues/">${t(lang, 'Dasbor antrean (bull-board)', 'Queue dashboard (bull-board)')}</a></p>
<h2>${t(lang, 'Surat mati (dead letters)', 'Dead letters')}</h2>
${
  dead.deadLetters.length
    ? html`<div class="scroll"><table><thead><tr><th scope="col">${queue}</th><th scope="col">Job</th><th scope="col">${t(lang, 'Gagal', 'Failed')}</th><th scope="col" class="num">${t(lang, 'Percobaan', 'Attempts')}</th><th scope="col">${t(lang, 'Sebab', 'Reason')}</th><th scope="col">${t(lang, 'Aksi', 'Action')}</th></tr></thead><tbody>
${dead.deadLetters.map((d) => html`<tr><td>${d.queue}</td><td>${d.id}</td><td>${d.failedAt}</td><td class="num">${d.attempts}</td><td class="text">${d.reason}</td><td><form method="post" action="/admin/operasi/replay">${csrfField(session)}<input type="hidden" name="queue" value="${d.queue}"><input type="hidden" name="jobId" value="${d.id}"><button type="submit" class="secondary small">${t(lang, 'Kirim ulang', 'Replay')}</button></form></td></tr>`)}
</tbody></table></div>`
    : html`<p class="muted">${t(lang, 'Tidak ada.', 'None.')}</p>`
}`;
}
