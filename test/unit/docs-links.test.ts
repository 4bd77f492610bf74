/**
 * The README and docs/ pages keep their links working. Every relative Markdown link in README.md
 * and docs/*.md must point to a file that exists in the repository, and a `#anchor` must name a
 * heading of its target page (GitHub's anchor rules: lower case, punctuation dropped, spaces to
 * hyphens, `-1`, `-2` for repeats). Each docs/ page must also say who it is for in its first
 * paragraph, an italic line starting with "For".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCS = join(ROOT, 'docs');

/** The lines of a Markdown file outside fenced code blocks (```), with their 1-based numbers. */
function proseLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let fenced = false;
  text.split('\n').forEach((t, i) => {
    if (/^\s*```/.test(t)) fenced = !fenced;
    else if (!fenced) out.push({ line: i + 1, text: t });
  });
  return out;
}

/** GitHub's heading anchors for one page, repeats numbered as GitHub numbers them. */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text: t } of proseLines(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(t);
    if (!m?.[1]) continue;
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Relative link targets of a page: `[text](target)` outside code blocks and inline code. */
function relativeLinks(text: string): Array<{ line: number; target: string }> {
  const links: Array<{ line: number; target: string }> = [];
  for (const { line, text: t } of proseLines(text)) {
    const prose = t.replace(/`[^`]*`/g, '``');
    for (const m of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      links.push({ line, target });
    }
  }
  return links;
}

const pages = [
  'README.md',
  ...readdirSync(DOCS)
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];

test('every relative link in README.md and docs/*.md points to an existing file and heading', () => {
  const problems: string[] = [];
  let checked = 0;
  for (const page of pages) {
    const path = join(ROOT, page);
    for (const { line, target } of relativeLinks(readFileSync(path, 'utf8'))) {
      checked++;
      const [file = '', anchor] = target.split('#', 2);
      const dest = file === '' ? path : resolve(dirname(path), decodeURIComponent(file));
      const where = `${page}:${line}: (${target})`;
      if (!dest.startsWith(ROOT)) {
        problems.push(`${where} leaves the repository`);
        continue;
      }
      if (!existsSync(dest)) {
        problems.push(`${where}: ${relative(ROOT, dest)} does not exist`);
        continue;
      }
      if (anchor === undefined) continue;
      if (statSync(dest).isDirectory() || !dest.endsWith('.md')) {
        problems.push(`${where}: an anchor on a file that is not a Markdown page`);
      } else if (!anchorsOf(readFileSync(dest, 'utf8')).has(anchor)) {
        problems.push(`${where}: no heading '#${anchor}' in ${relative(ROOT, dest)}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked > 50, `only ${checked} links found: is the link pattern still right?`);
});

test('every docs/ page says who it is for in its first lines', () => {
  const missing = pages
    .filter((p) => p.startsWith('docs'))
    .filter((p) => {
      const lines = readFileSync(join(ROOT, p), 'utf8').split('\n');
      const firstProse = lines.slice(1).find((l) => l.trim() !== '') ?? '';
      return !firstProse.startsWith('*For ');
    });
  assert.deepEqual(missing, []);
});

test('the anchor rules match GitHub on the headings these pages use', () => {
  const page = [
    '# Title',
    '## Worked example: a canary, from 10 % to 50 %',
    "### Unhealthy instances and Envoy's panic threshold",
    '## `listener.<name>`: listeners',
    '## Tests',
    '```',
    '# not a heading',
    '```',
    '## Tests',
  ].join('\n');
  assert.deepEqual(
    [...anchorsOf(page)],
    ['title', 'worked-example-a-canary-from-10--to-50-', 'unhealthy-instances-and-envoys-panic-threshold', 'listenername-listeners', 'tests', 'tests-1'],
  );
  assert.deepEqual(relativeLinks('see [a](a.md#x), `[b](nope.md)`, [c](https://x.test/) and [d](../d.md "t")\n```\n[e](e.md)\n```'), [
    { line: 1, target: 'a.md#x' },
    { line: 1, target: '../d.md' },
  ]);
});
