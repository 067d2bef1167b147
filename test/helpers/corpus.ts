import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The sample citizen messages of shared/corpus. The project's copy lives in test/fixtures/corpus so a
 * clone tests on its own; when the team's shared/ sits beside the checkout (as on our machines and
 * in CI), that fresher copy wins, and LAPOR_CORPUS_DIR can point anywhere else.
 */
export function corpusFile(name: string): string {
  const candidates = [
    process.env.LAPOR_CORPUS_DIR ? join(process.env.LAPOR_CORPUS_DIR, name) : undefined,
    fileURLToPath(new URL(`../../../shared/corpus/${name}`, import.meta.url)),
    fileURLToPath(new URL(`../fixtures/corpus/${name}`, import.meta.url)),
  ].filter((c): c is string => Boolean(c));
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`corpus file ${name} not found; tried ${candidates.join(', ')}`);
  return found;
}

export function readCorpusLines<T>(name: string): T[] {
  return readFileSync(corpusFile(name), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as T);
}
