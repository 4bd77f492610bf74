/**
 * No import circles under src/: every relative `import` / `export ... from` (type-only ones too,
 * since they tie the files' designs together) is an edge, and a depth-first walk reports each
 * cycle it closes. Folders are meant to read one way (sources -> config -> translate -> cache ->
 * server; in the proxy config -> upstream -> router -> listener); a circle is where that breaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SPECIFIER = /^\s*(?:import|export)\b[^'";]*?from\s*['"](\.\.?\/[^'"]+)['"]/gm;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Import graph over repository-relative paths. */
export function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(dir)) {
    const edges: string[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      edges.push(path.relative(ROOT, path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
    }
    graph.set(path.relative(ROOT, file), edges);
  }
  return graph;
}

export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined && graph.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return found;
}

test('the checker finds a circle, type-only imports included', () => {
  const g = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', ['a.ts']],
  ]);
  assert.deepEqual(cycles(g), [['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  const m = [...`import type { X } from './x.js';\nexport { y } from '../y.js';\n`.matchAll(SPECIFIER)].map((x) => x[1]);
  assert.deepEqual(m, ['./x.js', '../y.js']);
});

test('src/ has no import circles', () => {
  const graph = importGraph(path.join(ROOT, 'src'));
  assert.ok(graph.size > 100, `read ${graph.size} files under src/`);
  assert.deepEqual(
    cycles(graph).map((c) => c.join(' -> ')),
    [],
  );
});
