/**
 * Where a V8 CPU profile (.cpuprofile) spends its time: the top functions by self time and by
 * inclusive time (a function's own time plus its callees', each sample counted once per function
 * even under recursion). In: a profile file, optionally a function name whose samples (it and
 * everything it calls) are left out. Out: text lines.
 *
 *   node dist/scripts/bench/profile-top.js /tmp/prof/consul-xds-fanout.cpuprofile [N] [EXCLUDE]
 *
 * The benchmark prints it after a --cpu-prof run.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A node of V8's .cpuprofile (what `node --cpu-prof` writes). */
export interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Reads a .cpuprofile file. */
export function readProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}

function label(n: ProfileNode): string {
  const url = n.callFrame.url
    .replace(/^.*node_modules\//, '')
    .replace(/^.*\/dist\//, '')
    .replace(/^file:\/\//, '');
  const name = n.callFrame.functionName || '(anonymous)';
  return url ? `${name} ${url}:${n.callFrame.lineNumber + 1}` : name;
}

export function profileTop(file: string, count = 25, exclude?: string): string {
  const profile = readProfile(file);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);

  const excluded = new Map<number, boolean>();
  const isExcluded = (id: number): boolean => {
    let hit = excluded.get(id);
    if (hit === undefined) {
      const parent = parentOf.get(id);
      hit = byId.get(id)?.callFrame.functionName === exclude || (parent !== undefined && isExcluded(parent));
      excluded.set(id, hit);
    }
    return hit;
  };

  const selfById = new Map<number, number>();
  let totalUs = 0;
  let excludedUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    if (exclude !== undefined && isExcluded(id)) {
      excludedUs += dt;
      return;
    }
    selfById.set(id, (selfById.get(id) ?? 0) + dt);
    totalUs += dt;
  });

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfById) {
    const node = byId.get(id);
    if (!node) continue;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parentOf.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const key = label(n);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const busyUs = totalUs - (self.get('(idle)') ?? 0);
  const top = (m: Map<string, number>): string[] =>
    [...m]
      .filter(([k]) => k !== '(idle)' && k !== '(root)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busyUs).toFixed(1).padStart(5)}%  ${k}`);
  return [
    `${path.basename(file)}: ${(totalUs / 1000).toFixed(0)} ms sampled, ${(busyUs / 1000).toFixed(0)} ms busy (percentages are of busy)` +
      (exclude !== undefined ? `; ${(excludedUs / 1000).toFixed(0)} ms under ${exclude}() left out` : ''),
    '-- self time',
    ...top(self),
    '-- inclusive time',
    ...top(inclusive),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/scripts/bench/profile-top.js FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  process.stdout.write(`${profileTop(file, Number(process.argv[3] ?? 25), process.argv[4])}\n`);
}
