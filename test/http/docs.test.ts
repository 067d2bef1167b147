import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';

/**
 * The API documentation page and its assets. They come from @fastify/swagger-ui through
 * @fastify/static, which package.json pins to 9.3 (Node 20) below the 10.x swagger-ui asks for:
 * this proves the pair still serves the page, its script and its stylesheet.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

describe('/docs', () => {
  it('serves the page and the static files it loads', async () => {
    const page = await env.app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const assets = [...page.body.matchAll(/(?:src|href)="(\/docs\/static\/[^"?]+\.(?:js|css|png))"/g)].map((m) => m[1]!);
    expect(assets).toEqual(expect.arrayContaining(['/docs/static/swagger-ui.css', '/docs/static/swagger-ui-bundle.js']));
    for (const asset of assets) {
      const res = await env.app.inject({ method: 'GET', url: asset });
      expect({ asset, status: res.statusCode }).toEqual({ asset, status: 200 });
      expect(res.body.length).toBeGreaterThan(100);
    }
  });
});
