import { findSourceMap } from 'node:module';

interface Frame {
  url: string;
  lineNumber: number;
  columnNumber: number;
}

/**
 * tsx hands V8 its TypeScript compiled to one line with a source map, so a profile's positions are
 * columns of that line. This puts the .ts file's own line and column in their place (through the
 * source maps this process loaded: call it in the profiled process), so the top lists and DevTools
 * point at the code as written. Frames without a source map (JavaScript in node_modules) are left as they are.
 */
export function toSourcePositions(profile: { nodes: { callFrame: Frame }[] }): void {
  for (const { callFrame: f } of profile.nodes) {
    if (!f.url.endsWith('.ts') || f.lineNumber < 0) continue;
    const entry = findSourceMap(f.url)?.findEntry(f.lineNumber, f.columnNumber);
    if (entry && 'originalLine' in entry) {
      f.lineNumber = entry.originalLine;
      f.columnNumber = entry.originalColumn;
    }
  }
}
