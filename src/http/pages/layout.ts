import type { FastifyReply, FastifyRequest } from 'fastify';
import { html, raw, type Html } from './html.ts';

/**
 * The page around every citizen page and console screen: server-rendered HTML, one stylesheet, a
 * few lines of script at most, Bahasa Indonesia by default with an English switch. Pages work
 * without JavaScript (forms post and redirect).
 */

export type Lang = 'id' | 'en';

/** The language of a request: `?lang=` (remembered in a cookie), then the cookie, then the default. */
export function langOf(req: FastifyRequest, fallback: Lang): Lang {
  const query = (req.query as Record<string, unknown> | undefined)?.lang;
  if (query === 'id' || query === 'en') return query;
  const cookie = /(?:^|;\s*)lang=(id|en)\b/.exec(req.headers.cookie ?? '')?.[1];
  return cookie === 'en' || cookie === 'id' ? cookie : fallback;
}

/** Remembers a language chosen with `?lang=` for the next pages. */
export function rememberLang(req: FastifyRequest, reply: FastifyReply): void {
  const query = (req.query as Record<string, unknown> | undefined)?.lang;
  if (query === 'id' || query === 'en') reply.header('set-cookie', `lang=${query}; Path=/; Max-Age=31536000; SameSite=Lax`);
}

export interface PageOptions {
  lang: Lang;
  title: string;
  body: Html;
  /** The current path, for the language switch. */
  path: string;
  nav?: Html;
  wide?: boolean;
  /** Page-specific script (our own code only). */
  script?: string;
  /** Pages in one language only (the console) offer no language switch. */
  oneLanguage?: boolean;
}

export function page(o: PageOptions): string {
  const other: Lang = o.lang === 'id' ? 'en' : 'id';
  const switchTo = `${o.path}${o.path.includes('?') ? '&' : '?'}lang=${other}`;
  return `<!doctype html>\n${html`<html lang="${o.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · LAPOR!</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/lapor.css">
</head>
<body>
<a class="visually-hidden" href="#main">${o.lang === 'id' ? 'Langsung ke isi' : 'Skip to content'}</a>
<header class="site">
  <a class="brand" href="/">LAPOR!</a>
  <nav class="site" aria-label="${o.lang === 'id' ? 'Menu utama' : 'Main menu'}">
    <ul>
      ${o.nav ?? ''}
      ${o.oneLanguage ? '' : html`<li><a href="${switchTo}" hreflang="${other}" lang="${other}">${other === 'en' ? 'English' : 'Bahasa Indonesia'}</a></li>`}
    </ul>
  </nav>
</header>
<main id="main" class="${o.wide ? 'wide' : ''}">
${o.body}
</main>
<footer class="site">${o.lang === 'id' ? 'LAPOR! — Layanan Aspirasi dan Pengaduan Online Rakyat (SP4N)' : 'LAPOR! — the national public-service complaint line (SP4N)'}</footer>
${o.script ? raw(`<script>${o.script}</script>`) : ''}
</body>
</html>`}`;
}
