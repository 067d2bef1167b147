import { readFileSync } from 'node:fs';

/**
 * What every `npm run sim:*` command shares: its --help is the comment at the top of its file, and
 * it ends with its exit code, or with the error's message alone (no stack: these are for people at
 * a terminal).
 */

/** Prints the leading comment of the script at `url` (pass `import.meta.url`). */
export function printUsage(url: string): number {
  process.stdout.write(`${readFileSync(new URL(url), 'utf8').split('*/')[0]}*/\n`);
  return 0;
}

export function unknownCommand(command: string | undefined): number {
  process.stderr.write(`unknown command ${command}; see --help\n`);
  return 64;
}

export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}

/**
 * A caller of a running fake's control API (`/_fake/…`, answering `{ ok, result | error }`);
 * `missing` is the sentence for when nothing listens there.
 */
export function controlApi(port: string, missing: string) {
  const base = `http://127.0.0.1:${port}/_fake`;
  return async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
    } catch {
      throw new Error(missing);
    }
    const json = (await res.json()) as { ok: boolean; result?: unknown; error?: unknown };
    if (!json.ok) throw new Error(`${path}: ${JSON.stringify(json.error)}`);
    return json.result;
  };
}
