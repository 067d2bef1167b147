import type { Runtime } from '../runtime.ts';
import { buildApp } from './app.ts';

export async function startHttp(runtime: Runtime): Promise<{ url: string; close(): Promise<void> }> {
  const app = await buildApp(runtime);
  const url = await app.listen({ host: runtime.config.host, port: runtime.config.port });
  runtime.log.info({ url, console: `${url}/admin`, docs: `${url}/docs` }, 'http listening');
  return { url, close: () => app.close() };
}
