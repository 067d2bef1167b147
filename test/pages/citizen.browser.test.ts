import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  checkA11y,
  closePage,
  expectNoProblems,
  focused,
  formControls,
  launchBrowser,
  newPage,
  noHorizontalScroll,
  pageProblems,
  screenshot,
  serveApp,
  transferredBytes,
} from '../helpers/browser.ts';
import { createTestEnv, eventually, type TestEnv } from '../helpers/env.ts';

/**
 * The citizen pages in a real browser (Debian's chromium, headless, 360 px wide): what they weigh on
 * a first visit, what axe-core finds, whether they fit a small phone, and a citizen who files a
 * report by keyboard alone. Without a browser, the same pages are tested in citizen.test.ts.
 * Screenshots of every step land in test-artifacts/screenshots/.
 */

const LIMIT = 100 * 1024; // bytes transferred on a first load, everything included
const TIMEOUT = 60_000;
const clean = (page: Page, allow: RegExp[] = []) => expectNoProblems(page, { allowConsole: allow });

let env: TestEnv;
let browser: Browser;
let base: string;
let pages: Page[] = [];

beforeAll(async () => {
  [env, browser] = await Promise.all([createTestEnv(), launchBrowser()]);
  base = await serveApp(env);
});
afterAll(async () => {
  await browser?.close();
  await env?.close();
});
afterEach(async () => {
  await Promise.all(pages.map(closePage));
  pages = [];
});

async function open(options?: Parameters<typeof newPage>[1]): Promise<Page> {
  const page = await newPage(browser, options);
  pages.push(page);
  return page;
}

/** A first visit from an empty cache: weight, axe, width; returns the page, still on `path`. */
async function firstVisit(path: string, name: string): Promise<Page> {
  const page = await open();
  const { bytes, resources } = await transferredBytes(page, `${base}${path}`);
  console.log(`${path}: ${bytes} bytes on first load (${resources.map((r) => `${new URL(r.url).pathname} ${r.status} ${r.bytes}`).join(', ')})`);
  expect(bytes, `${path} transfers under 100 KB`).toBeLessThan(LIMIT);
  expect(resources.every((r) => (r.status > 0 && r.status < 400) || new URL(r.url).pathname === '/favicon.ico'), JSON.stringify(resources)).toBe(true);
  await screenshot(page, name);
  expect(await checkA11y(page), `axe on ${path}`).toEqual([]);
  expect(await noHorizontalScroll(page), `${path} fits 360 px`).toBe(true);
  return page;
}

describe('citizen pages in a browser', { timeout: TIMEOUT }, () => {
  it('the checks catch what they look for (a page made to fail them)', async () => {
    const page = await open();
    await page.setContent(`<!doctype html><html lang="id"><title>x</title><main>
      <p style="color:#bbb;background:#fff">pucat</p><input type="text"><div style="width:600px">lebar</div></main>`);
    const found = await checkA11y(page);
    expect(found.map((v) => v.id)).toEqual(expect.arrayContaining(['color-contrast', 'label']));
    expect(found.find((v) => v.id === 'label')).toMatchObject({ impact: 'critical', targets: ['input'] });
    expect(await noHorizontalScroll(page)).toBe(false);
    expect((await formControls(page)).filter((c) => !c.name)).toEqual([{ role: 'textbox', name: '' }]);
  });

  it('the report form (/) is light, accessible, fits a small phone, and every control has a name', async () => {
    const page = await firstVisit('/', 'home');
    expect(await page.getAttribute('html', 'lang')).toBe('id');
    const controls = await formControls(page);
    expect(controls.filter((c) => c.role === 'textbox').length).toBeGreaterThanOrEqual(4); // text, name, phone, email
    expect(controls.filter((c) => c.role === 'radio')).toHaveLength(3);
    expect(controls.filter((c) => !c.name.trim()), 'controls without an accessible name').toEqual([]);
    clean(page);
  });

  it('the lookup page (/lapor) is light, accessible and fits a small phone', async () => {
    const page = await firstVisit('/lapor', 'lookup');
    const controls = await formControls(page);
    expect(controls.map((c) => c.role)).toEqual(expect.arrayContaining(['textbox', 'button']));
    expect(controls.filter((c) => !c.name.trim()), 'controls without an accessible name').toEqual([]);
    clean(page);
  });

  it('the statistics (/statistik) are light, accessible, fit a small phone, and link the open data', async () => {
    const page = await firstVisit('/statistik', 'statistics');
    expect(await page.locator('a[href^="/api/v1/stats.csv"]').count()).toBe(1);
    expect((await formControls(page)).filter((c) => !c.name.trim()), 'controls without an accessible name').toEqual([]);
    clean(page);
  });

  it('a citizen files a report by keyboard alone and lands on its number', async () => {
    const page = await open();
    await page.goto(`${base}/`);
    await screenshot(page, 'keyboard-1-form');

    // Tab to the textarea: past the skip link, the brand and the menu.
    const stops: { element: string; visibleFocus: boolean }[] = [];
    const tabTo = async (element: string, max = 20) => {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press('Tab');
        const now = await focused(page);
        stops.push(now);
        if (now.element === element) return now;
      }
      throw new Error(`${element} never got the focus; tab stops: ${stops.map((s) => s.element).join(' → ')}`);
    };
    expect((await tabTo('textarea#text')).visibleFocus).toBe(true);
    await page.keyboard.type('Lampu jalan di Jl. Merdeka 12 mati sejak seminggu, gelap dan rawan.');
    await screenshot(page, 'keyboard-2-text');

    // The radios are one tab stop; the arrow keys move the choice.
    expect(await tabTo('input#privacy-biasa', 1)).toEqual({ element: 'input#privacy-biasa', visibleFocus: true });
    await page.keyboard.press('ArrowDown');
    expect((await focused(page)).element).toBe('input#privacy-anonim');
    expect(await page.isChecked('#privacy-anonim')).toBe(true);
    await screenshot(page, 'keyboard-3-privacy');

    const button = await tabTo('button:Kirim laporan');
    expect(button.visibleFocus).toBe(true);
    await screenshot(page, 'keyboard-4-submit');
    await Promise.all([page.waitForURL(/\/lapor\/\d{10}\?baru=1$/), page.keyboard.press('Enter')]);
    const id = /\/lapor\/(\d{10})/.exec(page.url())![1]!;
    await expect.poll(() => page.textContent('.tracking')).toBe(id);
    await screenshot(page, 'keyboard-5-status');
    expect(await checkA11y(page), 'axe on the status page').toEqual([]);
    expect(await noHorizontalScroll(page)).toBe(true);
    clean(page);
    console.log(`tab stops: ${stops.map((s) => `${s.element}${s.visibleFocus ? '' : ' (no visible focus)'}`).join(' → ')}`);

    // The page the citizen lands on, first visit from another phone.
    const other = await open();
    const { bytes } = await transferredBytes(other, `${base}/lapor/${id}?baru=1`);
    console.log(`/lapor/${id}?baru=1: ${bytes} bytes on first load`);
    expect(bytes).toBeLessThan(LIMIT);
    expect(await other.textContent('.tracking')).toBe(id);
    expect(await checkA11y(other)).toEqual([]);
    clean(other);
  });

  it('every tab stop of the form shows where the focus is', async () => {
    const page = await open();
    await page.goto(`${base}/`);
    const stops: { element: string; visibleFocus: boolean }[] = [];
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      const now = await focused(page);
      if (now.element.startsWith('button')) break;
      stops.push(now);
    }
    expect(stops.length).toBeGreaterThan(5);
    expect(stops.filter((s) => !s.visibleFocus).map((s) => s.element), 'focused but not visibly').toEqual([]);
  });

  it('shows a citizen’s markup as text on the status page, and no script of it ever runs', async () => {
    const page = await open();
    await page.goto(`${base}/`);
    const text = 'Pelayanan buruk <script>alert(1)</script> <img src=x onerror=alert(2)> di kantor kelurahan Sukamaju';
    await page.fill('#text', text);
    await Promise.all([page.waitForURL(/\/lapor\/\d{10}\?baru=1$/), page.click('button[type=submit]')]);
    // The text appears once intake has stored the report.
    await eventually(async () => ((await page.locator('blockquote').count()) ? true : (await page.reload(), undefined)), 10_000, 'the text on the status page');
    expect(await page.textContent('blockquote')).toBe(text);
    expect(await page.locator('main script, main img').count()).toBe(0);
    await page.waitForTimeout(200); // an onerror would have fired by now
    await screenshot(page, 'markup-as-text');
    expect(await checkA11y(page)).toEqual([]);
    expect(await noHorizontalScroll(page)).toBe(true);
    clean(page);

    // The watch is live: a script that does run is caught (here our own, in a page of its own).
    const probe = await open();
    await probe.goto(`${base}/lapor`);
    await probe.evaluate('alert("probe")');
    expect(pageProblems(probe).dialogs).toEqual([`alert: probe (${base}/lapor)`]);
  });

  it('refuses a 20 MB file and a program dressed as a photo, filing nothing, and takes a real photo', async () => {
    const reports = async () => (await env.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM reports')).rows[0]!.n;
    const before = await reports();
    const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082', 'hex');
    const page = await open();
    const attempt = async (file: { name: string; mimeType: string; buffer: Buffer }) => {
      await page.goto(`${base}/`);
      await page.fill('#text', 'Trotoar rusak di depan Stasiun Bandung, ubin lepas dan berlubang.');
      await page.setInputFiles('#attachment', file);
      const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('button[type=submit]')]);
      await page.waitForLoadState();
      return response.status();
    };
    expect(await attempt({ name: 'besar.png', mimeType: 'image/png', buffer: Buffer.concat([PNG, Buffer.alloc(20 * 1024 * 1024)]) })).toBe(413);
    expect(await page.locator('h1').textContent()).toBe('Laporan terlalu besar');
    await screenshot(page, 'file-too-large');
    expect(await attempt({ name: 'foto.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('MZ\x90\x00 bukan foto') })).toBe(400);
    expect(await page.locator('#attachment-error').textContent()).toContain('foto (JPEG, PNG, WebP) atau PDF');
    expect(await reports()).toBe(before);
    expect(await attempt({ name: 'trotoar.png', mimeType: 'image/png', buffer: PNG })).toBe(303);
    expect(page.url()).toMatch(/\/lapor\/\d{10}\?baru=1$/);
    clean(page, [/status of 413 .*\/lapor\)$/, /status of 400 .*\/lapor\)$/]);
  });

  it('refuses a text far over the limit, and files nothing', async () => {
    const reports = async () => (await env.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM reports')).rows[0]!.n;
    const before = await reports();
    const page = await open();
    await page.goto(`${base}/`);
    // A citizen pasting a whole document: the text box keeps its first 10,000 characters (the API's limit).
    await page.focus('#text');
    await page.keyboard.insertText('Dokumen panjang. '.repeat(2_000));
    expect(await page.locator('#text').evaluate((el: { value: string }) => el.value.length)).toBe(10_000);
    // A form altered in the browser (maxlength removed): 1 MB, 16 times the body limit, is refused.
    // (20 MB behaves the same but keeps chromium busy ~13 s encoding the form before it sends it.)
    await page.locator('#text').evaluate((el: { value: string; removeAttribute(name: string): void }) => {
      el.removeAttribute('maxlength');
      el.value = '<script>alert(3)</script>'.repeat(42_000);
    });
    const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('button[type=submit]')]);
    expect(response.status()).toBe(413);
    await page.waitForLoadState();
    await screenshot(page, 'too-large');
    expect(await page.locator('h1').textContent()).toBe('Laporan terlalu besar');
    await page.waitForTimeout(300);
    expect(await reports()).toBe(before);
    clean(page, [/status of 413 .*\/lapor\)$/]);
  });

  it('an empty report shows the error summary, whose link takes the focus to the text box', async () => {
    const page = await open();
    await page.goto(`${base}/`);
    const response = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('button[type=submit]')]).then(([r]) => r);
    expect(response.status()).toBe(400);
    const summary = page.getByRole('alert');
    await expect.poll(() => summary.count()).toBe(1);
    expect(await summary.locator('a[href="#text"]').count()).toBe(1);
    await screenshot(page, 'empty-error-summary');
    expect(await checkA11y(page), 'axe on the form with errors').toEqual([]);
    expect(await noHorizontalScroll(page)).toBe(true);
    await summary.locator('a[href="#text"]').focus();
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await focused(page)).element).toBe('textarea#text');
    await screenshot(page, 'empty-focus-on-text');
    // The textarea tells a screen reader what is wrong with it.
    expect(await page.getAttribute('#text', 'aria-describedby')).toContain('text-error');
    clean(page, [/status of 400 .*\/lapor\)$/]);
  });

  it('the English switch shows English, and the choice stays for the next page', async () => {
    const page = await open();
    await page.goto(`${base}/`);
    await Promise.all([page.waitForURL(/lang=en/), page.getByRole('link', { name: 'English' }).click()]);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.textContent('h1')).toBe('Report a problem with a public service');
    expect(await page.getByRole('button', { name: 'Send the report' }).count()).toBe(1);
    await screenshot(page, 'english-home');
    expect(await checkA11y(page)).toEqual([]);
    await page.getByRole('link', { name: 'Check status' }).click();
    await page.waitForURL(/\/lapor$/);
    expect(await page.textContent('h1')).toBe('Check a report');
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await screenshot(page, 'english-lookup');
    clean(page);
  });
});
