/**
 * Go peers of the benchmarks (scripts/bench-peers/<name>/, a main package): built into
 * .cache/bench-peers/<name> when missing or older than its sources, so a benchmark run needs Go
 * only on its first run after a change.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** The peer's binary, (re)built first when its main.go, go.mod or go.sum is newer. Throws when go build fails. */
export function goPeerBinary(root: string, name: string, log: (line: string) => void): string {
  const src = path.join(root, 'scripts', 'bench-peers', name);
  const bin = path.join(root, '.cache', 'bench-peers', name);
  const mtime = (p: string): number => {
    try {
      return statSync(p).mtimeMs;
    } catch {
      return -1;
    }
  };
  const newest = Math.max(...['main.go', 'go.mod', 'go.sum'].map((f) => mtime(path.join(src, f))));
  if (mtime(bin) < newest) {
    log(`building the ${name} peer (go build; the first build downloads modules)`);
    mkdirSync(path.dirname(bin), { recursive: true });
    try {
      execFileSync('go', ['build', '-o', bin, '.'], { cwd: src, stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
    } catch (err) {
      throw new Error(`cannot build the ${name} peer (${(err as Error).message})`);
    }
  }
  return bin;
}
