/**
 * The README's configuration table, generated from the schema so the two cannot drift apart:
 * `npm run config:table` rewrites it, and test/config.test.ts fails when the README is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { configFields } from '../config/load.ts';

const START = '<!-- config-table:start -->';
const END = '<!-- config-table:end -->';

export function configTable(): string {
  const rows = configFields().map((f) => {
    const value = f.defaultValue === undefined ? '—' : `\`${JSON.stringify(f.defaultValue).replace(/^"|"$/g, '')}\``;
    return `| \`${f.env}\` | ${value} | ${f.description.replace(/\|/g, '\\|')} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

export function withConfigTable(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${START} … ${END} block`);
  return `${readme.slice(0, start + START.length)}\n${configTable()}\n${readme.slice(end)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = new URL('../README.md', import.meta.url);
  writeFileSync(file, withConfigTable(readFileSync(file, 'utf8')));
}
