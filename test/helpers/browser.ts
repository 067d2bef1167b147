import { mkdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import type { TestEnv } from './env.ts';

/**
 * Pages in a real browser: Debian's chromium (/usr/bin/chromium, installed by scripts/ensure-browser.sh,
 * never a browser downloaded by Playwright) driven by playwright-core, headless, against a gateway of
 * the test harness served over real HTTP on loopback.
 *
 * Browser code runs as strings or untyped callbacks: the project's type-check has no DOM library.
 */

export const CHROMIUM = '/usr/bin/chromium';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCREENSHOT_DIR = `${ROOT}test-artifacts/screenshots`;

/** One browser per test file: starting chromium costs a few hundred milliseconds, a context almost nothing. */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright adds --headless and a fresh --user-data-dir of its own (a temporary folder it removes).
    // The rest keeps chromium off the network: this machine's closed network refuses its background
    // connections (updates, sync, safe browsing), which otherwise slow every start.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Serves the test gateway over real HTTP on a free loopback port; `env.close()` (app.close) closes it. */
export async function serveApp(env: TestEnv): Promise<string> {
  const address = await env.app.listen({ host: '127.0.0.1', port: 0 });
  return address.replace(/\/$/, '');
}

/** What went wrong in a page while a test drove it. */
export interface PageProblems {
  /** `console.error` calls and the errors chromium logs itself (a resource that failed to load, a CSP refusal). */
  consoleErrors: string[];
  /** Uncaught exceptions in the page's scripts. */
  pageErrors: string[];
  /** alert/confirm/prompt/beforeunload dialogs: our pages open none, so one is a script that should never have run. */
  dialogs: string[];
}

const problemsOf = new WeakMap<Page, PageProblems>();

export interface NewPageOptions {
  /** 360 × 740 by default: a small Android phone, the narrowest screen the citizen pages are made for. */
  width?: number;
  height?: number;
  /** The browser's language (`Accept-Language`, `navigator.language`); Indonesian by default. */
  lang?: 'id' | 'en';
}

/** A page in a context of its own, so cookies (language, an operator's session) never leak between pages. */
export async function newPage(browser: Browser, { width = 360, height = 740, lang = 'id' }: NewPageOptions = {}): Promise<Page> {
  const context = await browser.newContext({
    viewport: { width, height },
    locale: lang === 'en' ? 'en-GB' : 'id-ID',
    timezoneId: 'Asia/Jakarta',
  });
  const page = await context.newPage();
  const problems: PageProblems = { consoleErrors: [], pageErrors: [], dialogs: [] };
  problemsOf.set(page, problems);
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.consoleErrors.push(`${msg.text()} (${msg.location().url || page.url()})`);
  });
  page.on('pageerror', (err) => problems.pageErrors.push(err.stack ?? err.message));
  page.on('dialog', (dialog) => {
    problems.dialogs.push(`${dialog.type()}: ${dialog.message()} (${page.url()})`);
    // Dismissed so the page goes on; expectNoProblems() fails the test.
    dialog.dismiss().catch(() => {});
  });
  return page;
}

export function pageProblems(page: Page): PageProblems {
  const problems = problemsOf.get(page);
  if (!problems) throw new Error('pageProblems: the page was not made by newPage()');
  return problems;
}

/**
 * Chromium asks for /favicon.ico on its own, once per browser (whichever page comes first), and logs
 * the gateway's 404 as a console error: not a fault of the page under test, so not counted. (Once the
 * pages name an icon, `<link rel="icon" …>`, this can go.)
 */
const FAVICON_404 = /status of 404 .*\/favicon\.ico\)$/;

/**
 * Fails unless the page opened no dialog, threw nothing and logged no error. `allowConsole` lists the
 * console errors a test expects (chromium logs a page answered 400 as "Failed to load resource … 400").
 */
export function expectNoProblems(page: Page, { allowConsole = [] }: { allowConsole?: RegExp[] } = {}): void {
  const { consoleErrors, pageErrors, dialogs } = pageProblems(page);
  const allowed = [FAVICON_404, ...allowConsole];
  expect(dialogs, 'dialogs opened by the page').toEqual([]);
  expect(pageErrors, 'uncaught errors in the page').toEqual([]);
  expect(consoleErrors.filter((e) => !allowed.some((re) => re.test(e))), 'console errors').toEqual([]);
}

/** Closes the page's context (each page has its own). */
export async function closePage(page: Page): Promise<void> {
  await page.context().close();
}

/**
 * A full-page PNG in test-artifacts/screenshots/<test file>-<name>.png (gitignored; CI keeps the
 * folder as an artifact). Returns the path.
 */
export async function screenshot(page: Page, name: string): Promise<string> {
  const testPath = expect.getState().testPath;
  const file = testPath ? basename(testPath).replace(/\.test\.ts$/, '') : 'page';
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = `${SCREENSHOT_DIR}/${file}-${name.replace(/[^\w.-]+/g, '-')}.png`;
  await page.screenshot({ path, fullPage: true });
  return path;
}

export interface A11yViolation {
  id: string;
  impact: string;
  help: string;
  /** One CSS selector per offending element. */
  targets: string[];
}

let axeSource: string | undefined;

/**
 * Runs axe-core (WCAG 2.0/2.1/2.2 A and AA rules, and axe's best practices) on the page as it is now
 * and returns the violations of impact serious or critical: missing labels, contrast, names of
 * buttons and links, landmarks, duplicate ids… An empty array is a pass.
 */
export async function checkA11y(page: Page): Promise<A11yViolation[]> {
  axeSource ??= readFileSync(`${ROOT}node_modules/axe-core/axe.min.js`, 'utf8');
  // Evaluated through the DevTools protocol rather than added as a <script>: a page's own
  // Content-Security-Policy (the console's is default-src 'self') blocks an inline script tag but not
  // this, and the page's CSP stays in force for everything else the test does.
  if (!(await page.evaluate('typeof window.axe === "object"'))) await page.evaluate(`${axeSource}\n;void 0`);
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')),
  })))`)) as A11yViolation[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export interface Transfer {
  /** Bytes received for the page and everything it loaded: response headers and (encoded) bodies. */
  bytes: number;
  resources: { url: string; status: number; bytes: number }[];
}

/**
 * What a first visit to `url` transfers: navigates `page` (a fresh one from newPage(), whose context
 * has an empty cache) with the browser cache disabled, and adds up, for every response of the page
 * and its resources, chromium's own count of the bytes that came over the wire
 * (`Network.loadingFinished.encodedDataLength`: status line, headers and the body as encoded,
 * i.e. compressed when it is), the figure DevTools shows as "transferred". Playwright's
 * `request.sizes()` is derived from the same events, but one request at a time, each awaited after
 * it finished, and without the redirects; the CDP event is the network stack's own total. (Checked:
 * the stylesheet counts its 4,063-byte body plus 310 bytes of status line and headers.)
 */
export async function transferredBytes(page: Page, url: string): Promise<Transfer> {
  const cdp = await page.context().newCDPSession(page);
  const requests = new Map<string, { url: string; status: number; bytes?: number }>();
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  cdp.on('Network.requestWillBeSent', (e) => {
    // A redirect reuses the request id: the redirect response was received and counts too.
    const prior = requests.get(e.requestId);
    if (prior && e.redirectResponse) {
      requests.set(`${e.requestId}:${e.redirectResponse.url}`, { url: e.redirectResponse.url, status: e.redirectResponse.status, bytes: e.redirectResponse.encodedDataLength });
    }
    requests.set(e.requestId, { url: e.request.url, status: 0 });
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = requests.get(e.requestId);
    if (r) r.status = e.response.status;
  });
  cdp.on('Network.loadingFinished', (e) => {
    const r = requests.get(e.requestId);
    if (r) r.bytes = e.encodedDataLength;
  });
  cdp.on('Network.loadingFailed', (e) => {
    const r = requests.get(e.requestId);
    if (r) r.bytes = 0;
  });
  try {
    await page.goto(url, { waitUntil: 'load' });
    // Everything the page started (a late image, the favicon) must have finished before we count.
    const deadline = Date.now() + 5_000;
    for (let quiet = 0; quiet < 3 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 50));
      quiet = [...requests.values()].every((r) => r.bytes !== undefined) ? quiet + 1 : 0;
    }
    const resources = [...requests.values()].map((r) => ({ url: r.url, status: r.status, bytes: r.bytes ?? 0 }));
    return { bytes: resources.reduce((sum, r) => sum + r.bytes, 0), resources };
  } finally {
    await cdp.detach().catch(() => {});
  }
}

/** True when the page fits the viewport's width (360 px by default): nothing to scroll sideways. */
export async function noHorizontalScroll(page: Page): Promise<boolean> {
  return (await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')) as boolean;
}

/** The form controls a screen reader announces, with their accessible names (chromium's accessibility tree). */
export async function formControls(page: Page): Promise<{ role: string; name: string }[]> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { nodes } = await cdp.send('Accessibility.getFullAXTree');
    const roles = new Set(['textbox', 'searchbox', 'combobox', 'listbox', 'radio', 'checkbox', 'button', 'spinbutton', 'slider', 'switch']);
    return nodes
      .filter((n) => !n.ignored && roles.has(String(n.role?.value)))
      .map((n) => ({ role: String(n.role?.value), name: String(n.name?.value ?? '') }));
  } finally {
    await cdp.detach().catch(() => {});
  }
}

/** The focused element, as `tag#id` (or `tag.class`, or its text), and whether it shows a focus indicator. */
export async function focused(page: Page): Promise<{ element: string; visibleFocus: boolean }> {
  return (await page.evaluate(`(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return { element: 'body', visibleFocus: false };
    const tag = el.tagName.toLowerCase();
    const element = el.id ? tag + '#' + el.id : el.className ? tag + '.' + String(el.className).split(' ')[0] : tag + ':' + (el.textContent || '').trim().slice(0, 30);
    const s = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 1;
    const shadow = s.boxShadow && s.boxShadow !== 'none';
    return { element, visibleFocus: (outline || !!shadow) && rect.width > 2 && rect.height > 2 };
  })()`)) as { element: string; visibleFocus: boolean };
}
