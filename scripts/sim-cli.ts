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
