/**
 * Comments keep pointing at files that exist. Every file path named in a comment of src/, test/ or
 * scripts/ (`translate/endpoints.ts`, `docs/consul.md`, `scripts/install-envoy.sh`, a bare
 * `snapshot.ts`) must name a file or folder of the repository, so a move or a rename that forgets a
 * comment fails here instead of sending the next reader to nothing. A path is looked up from the
 * repository root, from the commenting file's folder and each folder above it (a file in
 * src/proxy/http/ may name a path from src/proxy/), and from src/, test/, scripts/ and docs/; a bare
 * file name anywhere in the repository; `dist/...js` as its `.ts` source. Paths outside the
 * repository (Envoy's `envoy/.../*.proto`, protobufjs' own files) are listed in EXTERNAL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SKIP = new Set(['node_modules', 'dist', '.cache', '.git']);
const FILE_EXT = /\.(?:ts|md|sh|ya?ml|json|proto|lua|go)$/;
// A path-like token: optional ./ or ../, then name(/name)*; a `*` in a later part is a wildcard.
const TOKEN = /(?<![\w@:/.$<*-])(?:\.{1,2}\/)*[\w-][\w.-]*(?:\/[\w.*-]+)*\/?/g;
/** Files named in comments that live outside this repository. */
const EXTERNAL = /^(?:envoy\/|google\/protobuf\/|xds\/|udpa\/|validate\/)|^(?:accesslog|als|struct|descriptor)\.proto$|^\.proto$/;

function walk(dir: string, out: string[]): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else out.push(relative(ROOT, path));
  }
  return out;
}

const all = walk(ROOT, []);
const basenames = new Set(all.map((p) => p.slice(p.lastIndexOf('/') + 1)));
const sources = all.filter((p) => /^(?:src|test|scripts)\//.test(p) && /\.(?:ts|sh)$/.test(p));
const topFolders = new Set(all.filter((p) => p.includes('/')).map((p) => p.slice(0, p.indexOf('/'))));

/** The comment text of a line: a whole-line comment, or what follows ` // ` (never inside a string we cannot tell apart; good enough for this code base). */
function commentOf(line: string): string | undefined {
  if (/^\s*(?:\/\/|\*|\/\*|#)/.test(line)) return line;
  const at = line.indexOf(' // ');
  return at < 0 ? undefined : line.slice(at + 4);
}

function resolves(ref: string, from: string): boolean {
  let path = ref.replace(/\/$/, '');
  if (path.startsWith('dist/')) path = path.slice(5).replace(/\.js$/, '.ts');
  if (path.includes('*')) {
    const glob = new RegExp(`^(?:.*/)?${path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    return all.some((p) => glob.test(p));
  }
  if (!path.includes('/')) return basenames.has(path) || existsSync(join(ROOT, path)) || existsSync(join(ROOT, dirname(from), path));
  const bases = [ROOT, join(ROOT, 'src'), join(ROOT, 'test'), join(ROOT, 'scripts'), join(ROOT, 'docs')];
  for (let dir = dirname(from); dir !== '.'; dir = dirname(dir)) bases.push(join(ROOT, dir));
  return bases.some((base) => existsSync(normalize(join(base, path))));
}

test('every file path named in a comment under src/, test/ and scripts/ exists', () => {
  const missing: string[] = [];
  for (const file of sources) {
    readFileSync(join(ROOT, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const comment = commentOf(line);
        if (comment === undefined) return;
        for (const [raw] of comment.matchAll(TOKEN)) {
          const ref = raw.replace(/[.,;:]+$/, '');
          const first = ref.replace(/^(?:\.{1,2}\/)+/, '').split('/')[0] ?? '';
          const isFile = FILE_EXT.test(ref) && ref.length > 4;
          const isFolderPath = ref.includes('/') && (topFolders.has(first) || first === 'dist');
          if ((!isFile && !isFolderPath) || ref.includes('...')) continue;
          if (EXTERNAL.test(ref) || ref === '.cache/' || ref.startsWith('.cache/')) continue;
          if (!resolves(ref, file)) missing.push(`${file}:${i + 1}: ${ref}`);
        }
      });
  }
  assert.deepEqual(missing, [], `comments name files that do not exist:\n${missing.join('\n')}`);
});
