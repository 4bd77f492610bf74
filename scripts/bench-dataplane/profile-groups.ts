/**
 * Where our proxy's CPU goes, by part: a V8 CPU profile's self time summed into groups (node's
 * HTTP/1 parser and server, node's HTTP/2, net and streams, our router filter, routing, load
 * balancing, upstream pool, stats, request ids, timers, GC, ...). In: a .cpuprofile file. Out:
 * text lines: per group its share of the busy time and its top functions.
 *
 *   node dist/scripts/bench-dataplane/profile-groups.js FILE.cpuprofile
 *
 * A native frame (no script URL: a C++ binding such as the llhttp parser's execute() or a
 * socket's writev()) counts towards the group of the nearest JavaScript frame that called it,
 * so "node http/1 parser" includes llhttp's own work.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readProfile, type ProfileNode } from '../bench/profile-top.js';

/**
 * Socket writes: the write syscalls themselves, and on a busy 2-core box also the time the proxy
 * sat preempted inside them (a loopback write wakes the reader, which may take the core). V8
 * samples wall time, so this group overstates CPU; the summary also gives shares without it.
 */
const WRITES = 'socket writes (syscalls; wall time, incl. preemption)';

/** First matching rule names the group; matched against `url` (node:..., file path) or function name. */
const RULES: ReadonlyArray<readonly [group: string, test: (url: string, fn: string) => boolean]> = [
  ['GC', (_u, f) => f === '(garbage collector)'],
  [WRITES, (u, f) => u === '' && /^(writev|writeBuffer|write(Latin1|Utf8|Ascii|Ucs2)String)$/.test(f)],
  ['(program): native outside JS (libuv reads, V8; nghttp2 where node:http2 runs)', (u, f) => u === '' && f === '(program)'],
  ['ours: routing (route table, matchers)', (u) => /\/proxy\/(router\/route-(table|store)|config\/(route-resource|string-matcher))\.js/.test(u)],
  [
    'ours: load balancing (lb, hosts, priority set)',
    (u) => /\/proxy\/(upstream\/lb\/[a-z-]+|upstream\/(edf-scheduler|priority-set|host|cluster|cluster-manager|outlier-detection)|common\/hash)\.js/.test(u),
  ],
  ['ours: HTTP/2 codec (frames, HPACK, connections, streams)', (u) => /\/proxy\/codec\//.test(u)],
  ['ours: upstream pool (http1/http2)', (u) => /\/proxy\/upstream\/(http1-|http2-)?conn-pool\.js/.test(u)],
  ['ours: stats', (u) => /\/proxy\/stats\.js/.test(u)],
  [
    'ours: router filter (router, downstream, listener)',
    (u) => /\/proxy\/(router\/[a-z-]+|http\/[a-z-]+|listener\/(http-connection-manager|listener-manager)|config\/retry-policy)\.js/.test(u),
  ],
  ['ours: other', (u) => /\/proxy\//.test(u) || /\/dist\/src\//.test(u)],
  ['request id (randomUUID)', (u, f) => /node:internal\/crypto\/random/.test(u) || f === 'randomUUID' || f === 'secureBuffer'],
  ['node http/1: parser + IncomingMessage', (u, f) => /node:_http_(common|incoming)/.test(u) || f.startsWith('parserOn')],
  ['node http/1 client: ClientRequest + Agent (upstream side)', (u) => /node:_http_(client|agent)/.test(u)],
  ['node http/1 server: ServerResponse (downstream side)', (u) => /node:_http_server/.test(u)],
  ['node http/1: OutgoingMessage (head + body writes, both sides)', (u) => /node:_http_outgoing/.test(u)],
  ['node AsyncResource.bind in http2 request() (DEP0172 wrappers)', (u, f) => u === 'node:async_hooks' || (u === 'node:internal/util' && f === 'deprecate')],
  ['node http/2 (core + compat)', (u) => /node:internal\/http2\//.test(u) || u === 'node:http2'],
  ['node net + streams', (u) => /node:(net|stream|internal\/stream_base_commons|internal\/streams\/|internal\/net)/.test(u)],
  ['node timers', (u) => /node:(timers|internal\/timers)/.test(u)],
  ['node events + nextTick + promises', (u) => /node:(events|internal\/process\/task_queues|internal\/async_hooks|internal\/event_target)/.test(u)],
  ['node other', (u) => u.startsWith('node:')],
  ['dependencies (node_modules)', (u) => u.includes('/node_modules/')],
];

const IGNORED = new Set(['(idle)', '(root)']);

function label(n: ProfileNode): string {
  const url = n.callFrame.url.replace(/^.*\/dist\//, '').replace(/^file:\/\//, '');
  const name = n.callFrame.functionName || '(anonymous)';
  return url ? `${name} ${url}:${n.callFrame.lineNumber + 1}` : name;
}

export interface GroupShare {
  readonly group: string;
  readonly ms: number;
  readonly percent: number;
  readonly top: ReadonlyArray<{ readonly fn: string; readonly ms: number }>;
}

export function profileGroups(file: string): { busyMs: number; writesMs: number; groups: GroupShare[] } {
  const profile = readProfile(file);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);

  const own = (n: ProfileNode): string | undefined => {
    const { url, functionName } = n.callFrame;
    for (const [group, test] of RULES) if (test(url, functionName)) return group;
    return undefined;
  };
  const groupCache = new Map<number, string>();
  const groupOf = (id: number): string => {
    const cached = groupCache.get(id);
    if (cached !== undefined) return cached;
    const n = byId.get(id);
    let g = n ? own(n) : undefined;
    if (g === undefined) {
      const parent = parentOf.get(id);
      g = parent !== undefined && n?.callFrame.url === '' ? groupOf(parent) : 'other';
    }
    groupCache.set(id, g);
    return g;
  };

  const selfById = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfById.set(id, (selfById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  let busyUs = 0;
  const totals = new Map<string, number>();
  const fns = new Map<string, Map<string, number>>();
  for (const [id, us] of selfById) {
    const n = byId.get(id);
    if (!n || IGNORED.has(n.callFrame.functionName)) continue;
    busyUs += us;
    const g = groupOf(id);
    totals.set(g, (totals.get(g) ?? 0) + us);
    const perFn = fns.get(g) ?? new Map<string, number>();
    perFn.set(label(n), (perFn.get(label(n)) ?? 0) + us);
    fns.set(g, perFn);
  }
  const groups = [...totals]
    .sort((a, b) => b[1] - a[1])
    .map(([group, us]) => ({
      group,
      ms: us / 1000,
      percent: (100 * us) / busyUs,
      top: [...(fns.get(group) ?? [])]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([fn, fus]) => ({ fn, ms: fus / 1000 })),
    }));
  return { busyMs: busyUs / 1000, writesMs: (totals.get(WRITES) ?? 0) / 1000, groups };
}

export function formatGroups(file: string): string {
  const { busyMs, writesMs, groups } = profileGroups(file);
  const rest = busyMs - writesMs;
  const lines = [
    `${path.basename(file)}: ${busyMs.toFixed(0)} ms busy, self time by group (native calls count towards their JS caller);`,
    `  % of busy, then % of busy without socket writes (${rest.toFixed(0)} ms: the CPU our process spends outside write syscalls)`,
  ];
  for (const g of groups) {
    const other = g.group === WRITES ? '     ' : `${((100 * g.ms) / rest).toFixed(1).padStart(5)}`;
    lines.push(`${g.percent.toFixed(1).padStart(5)}%  ${other}%  ${g.ms.toFixed(0).padStart(6)} ms  ${g.group}`);
    for (const f of g.top) lines.push(`${''.padStart(24)}${f.ms.toFixed(0).padStart(6)} ms  ${f.fn}`);
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/scripts/bench-dataplane/profile-groups.js FILE.cpuprofile\n');
    process.exit(2);
  }
  process.stdout.write(`${formatGroups(file)}\n`);
}
