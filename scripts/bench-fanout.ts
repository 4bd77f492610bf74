/**
 * Fan-out benchmark: how fast a config change reaches N connected xDS clients, and what each
 * connected client costs in server memory; our server next to a peer in the same run.
 *
 *   npm run build && node dist/scripts/bench-fanout.js --clients 1000 --changes 10 --clusters 100
 *
 * In: flags (below). Out: a table on stdout (delivery p50/p99/max over clients, median over
 * changes; time until every client ACKed; RSS per connected stream) and the ratio ours/peer;
 * progress on stderr; with --json FILE, every figure of every change.
 *
 * Every server runs as a child process driven over stdin (bench/server-process.ts): ours
 * (bench/our-server.ts: parseConfig -> translate -> buildSnapshot -> SnapshotCache, and
 * createXdsServer, as `serve` wires them), and the peer (go-control-plane's SotW snapshot cache,
 * or the "floor": a minimal encode-once ADS server), given the very bytes our snapshot holds.
 * Separate processes keep each server's RSS its own and the driver off its event loop. Each
 * server is measured against a fresh load-generator process (bench/load-generator.ts) holding
 * one HTTP/2 connection per client, all on 127.0.0.1, then stopped before the next one starts.
 * See docs/benchmarks.md ("Config fan-out to 1,000 xDS clients") for what is measured and why.
 */
import { execFileSync } from 'node:child_process';
import { statSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import os from 'node:os';
import { parseConfig } from '../src/config/parse.js';
import { staticEndpoints } from '../src/config/static-endpoints.js';
import { translate } from '../src/translate/index.js';
import { buildSnapshot, type Snapshot } from '../src/cache/snapshot.js';
import { TYPE_ORDER } from '../src/xds/resource-types.js';
import { benchConfigYaml } from './bench/config-gen.js';
import { runTarget, type Target } from './bench/measure.js';
import { ServerProcess, type ConfigSnapshot, type PeerSnapshot } from './bench/server-process.js';
import { profileTop } from './bench/profile-top.js';
import { median } from './bench/stats.js';
import type { RunSummary } from './bench/stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PEERS = ['none', 'go-control-plane', 'floor'] as const;
type PeerName = (typeof PEERS)[number];

const USAGE = `usage: node dist/scripts/bench-fanout.js [options]
  --clients N          simulated ADS clients, one HTTP/2 connection each (default 1000)
  --changes C          config changes to measure (default 10)
  --warmup W           changes run first and not counted (default 2)
  --clusters K         clusters in the config; each change alters all of them (default 100)
  --peer P             none | go-control-plane | floor (default go-control-plane)
  --settle-ms MS       quiet time between changes (default 500)
  --timeout-s S        hard limit for the whole run; exits 2 when reached (default 900)
  --json FILE          also write every figure as JSON
  --cpu-prof DIR       CPU-profile our server over the measured changes: DIR/consul-xds-fanout.cpuprofile
  --help`;

interface Options {
  readonly clients: number;
  readonly changes: number;
  readonly warmup: number;
  readonly clusters: number;
  readonly peer: PeerName;
  readonly settleMs: number;
  readonly timeoutS: number;
  readonly json?: string;
  readonly cpuProf?: string;
}

function positiveInt(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag}: expected a positive integer, got "${value}"`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string' },
      changes: { type: 'string' },
      warmup: { type: 'string' },
      clusters: { type: 'string' },
      peer: { type: 'string' },
      'settle-ms': { type: 'string' },
      'timeout-s': { type: 'string' },
      json: { type: 'string' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const peer = values.peer ?? 'go-control-plane';
  if (!(PEERS as readonly string[]).includes(peer)) throw new Error(`--peer: expected one of ${PEERS.join(', ')}, got "${peer}"`);
  return {
    clients: positiveInt('clients', values.clients, 1000),
    changes: positiveInt('changes', values.changes, 10),
    warmup: values.warmup === '0' ? 0 : positiveInt('warmup', values.warmup, 2),
    clusters: positiveInt('clusters', values.clusters, 100),
    peer: peer as PeerName,
    settleMs: positiveInt('settle-ms', values['settle-ms'], 500),
    timeoutS: positiveInt('timeout-s', values['timeout-s'], 900),
    ...(values.json !== undefined ? { json: values.json } : {}),
    ...(values['cpu-prof'] !== undefined ? { cpuProf: path.resolve(values['cpu-prof']) } : {}),
  };
}

const log = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`);
};

/**
 * Config texts 0 (initial) .. n and their snapshots, built here for the peers' payloads and the
 * versions the clients must end up with. Ours builds its own from the texts (same code, so the
 * same content-hash versions: the load generator checks it).
 */
function buildSnapshots(clusters: number, n: number): { configs: string[]; snapshots: Snapshot[]; buildMs: number } {
  const configs: string[] = [];
  const snapshots: Snapshot[] = [];
  const times: number[] = [];
  for (let k = 0; k <= n; k++) {
    const started = performance.now();
    const text = benchConfigYaml(clusters, k);
    const config = parseConfig(text, `bench-config-${k}`);
    snapshots.push(buildSnapshot(translate(config, staticEndpoints(config))));
    times.push(performance.now() - started);
    configs.push(text);
  }
  return { configs, snapshots, buildMs: median(times) };
}

function versionsOf(s: Snapshot): Record<string, string> {
  return Object.fromEntries(TYPE_ORDER.map((t) => [t, s.version(t)]));
}

/** The bytes our snapshot holds, for a peer to serve the same configuration. */
function peerSnapshot(s: Snapshot): PeerSnapshot {
  return {
    versions: versionsOf(s),
    resources: Object.fromEntries(TYPE_ORDER.map((t) => [t, s.type(t).list.map((r) => Buffer.from(r.bytes).toString('base64'))])),
  };
}

type SnapshotPayload = PeerSnapshot | ConfigSnapshot;

/** A Target over a server process; snapshot i is handed over as `payloads[i]`. */
async function processTarget(
  name: string,
  command: string,
  args: readonly string[],
  payloads: readonly SnapshotPayload[],
  profileFile?: string,
): Promise<Target> {
  const { server, port } = await ServerProcess.start(name, command, args);
  const payload = (i: number): SnapshotPayload => {
    const p = payloads[i];
    if (!p) throw new Error(`no snapshot ${i}`);
    return p;
  };
  await server.prepare(payload(0));
  await server.publish();
  return {
    name,
    port,
    pid: server.pid,
    prepare: (i) => server.prepare(payload(i)),
    publish: () => server.publish(),
    gc: () => server.gc(),
    ...(profileFile !== undefined ? { profile: { start: () => server.profileStart(), stop: () => server.profileStop(profileFile) } } : {}),
    close: () => server.stop(),
  };
}

function ourTarget(configs: readonly string[], cpuProf: string | undefined): Promise<Target> {
  const script = path.join(ROOT, 'dist', 'scripts', 'bench', 'our-server.js');
  let profileFile: string | undefined;
  if (cpuProf !== undefined) {
    mkdirSync(cpuProf, { recursive: true });
    profileFile = path.join(cpuProf, 'consul-xds-fanout.cpuprofile');
  }
  return processTarget(
    'consul-xds',
    process.execPath,
    ['--expose-gc', script],
    configs.map((config) => ({ config })),
    profileFile,
  );
}

/** go-control-plane peer binary, (re)built into .cache/ when its sources are newer. */
function goPeerBinary(): string {
  const src = path.join(ROOT, 'scripts', 'bench-peers', 'go-control-plane');
  const bin = path.join(ROOT, '.cache', 'bench-peers', 'go-control-plane');
  const mtime = (p: string): number => {
    try {
      return statSync(p).mtimeMs;
    } catch {
      return -1;
    }
  };
  const newest = Math.max(...['main.go', 'go.mod', 'go.sum'].map((f) => mtime(path.join(src, f))));
  if (mtime(bin) < newest) {
    log('building the go-control-plane peer (go build; the first build downloads modules)');
    mkdirSync(path.dirname(bin), { recursive: true });
    try {
      execFileSync('go', ['build', '-o', bin, '.'], { cwd: src, stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
    } catch (err) {
      throw new Error(`cannot build the go-control-plane peer (${(err as Error).message}); run with --peer floor or --peer none`);
    }
  }
  return bin;
}

function peerTarget(peer: Exclude<PeerName, 'none'>, snapshots: readonly Snapshot[]): Promise<Target> {
  const payloads = snapshots.map(peerSnapshot);
  return peer === 'go-control-plane'
    ? processTarget(peer, goPeerBinary(), [], payloads)
    : processTarget(peer, process.execPath, ['--expose-gc', path.join(ROOT, 'dist', 'scripts', 'bench-peers', 'floor-server.js')], payloads);
}

function fmt(n: number | undefined, digits = 0): string {
  return n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

function table(rows: readonly RunSummary[], opts: Options): string {
  const header = [
    'server',
    'clients',
    'changes',
    'p50 ms',
    'p99 ms',
    'max ms',
    'all-ACKed ms',
    'CDS p99 ms',
    'resp/change',
    'CPU ms/change',
    'RSS/stream KB',
    'connect-all ms',
  ];
  const body = rows.map((r) => [
    r.server,
    String(r.clients),
    String(r.changes),
    fmt(r.p50, 1),
    fmt(r.p99, 1),
    fmt(r.max, 1),
    fmt(r.allAcked, 1),
    fmt(r.cdsP99, 1),
    fmt(r.responsesPerChange),
    fmt(r.serverCpuMs),
    fmt(r.rssPerStreamKb, 1),
    fmt(r.connectAllMs),
  ]);
  const ours = rows[0];
  const peer = rows[1];
  if (ours && peer) {
    const ratio = (a: number, b: number): string => (b > 0 && !Number.isNaN(a) ? `${(a / b).toFixed(2)}x` : '-');
    body.push([
      `ratio ours/${peer.server}`,
      '',
      '',
      ratio(ours.p50, peer.p50),
      ratio(ours.p99, peer.p99),
      ratio(ours.max, peer.max),
      ratio(ours.allAcked, peer.allAcked),
      ratio(ours.cdsP99, peer.cdsP99),
      ratio(ours.responsesPerChange, peer.responsesPerChange),
      ratio(ours.serverCpuMs, peer.serverCpuMs),
      ratio(ours.rssPerStreamKb, peer.rssPerStreamKb),
      ratio(ours.connectAllMs, peer.connectAllMs),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  out.push(
    '',
    `${opts.clients} clients (one HTTP/2 connection each), ${opts.clusters} clusters; each change alters every Cluster and the RouteConfiguration.`,
    'Delivery: publish -> the client holds every changed type; p50/p99/max over clients, median over changes.',
    'Reference floor on these machines (docs/benchmarks.md, 1,000 clients, CDS only): p50 60-140 ms, p99 115-195 ms, 40 KB/stream;',
    'budget for ours (1.5x): p50 <= 210 ms, p99 <= 293 ms, RSS <= 60 KB/stream.',
    'resp/change: responses all clients received per change (ours re-sends each ClusterLoadAssignment after its Cluster, for warming).',
    'CPU ms/change: server process CPU (user + system) per change, ACKs included; steadier than latency on a busy machine.',
  );
  return out.join('\n');
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  // Hard limit: children watch their stdin / IPC channel and exit when this process does.
  const deadline = setTimeout(() => {
    log(`hard timeout of ${opts.timeoutS} s reached; aborting`);
    process.exit(2);
  }, opts.timeoutS * 1000);

  const baseNs = process.hrtime.bigint();
  const loadBefore = os.loadavg()[0] ?? NaN;
  log(`building ${1 + opts.warmup + opts.changes} snapshots of ${opts.clusters} clusters`);
  const { configs, snapshots, buildMs } = buildSnapshots(opts.clusters, opts.warmup + opts.changes);
  log(`snapshot build (parse + translate + encode once): median ${buildMs.toFixed(1)} ms`);
  const versions = snapshots.map(versionsOf);
  const run = {
    baseNs,
    clients: opts.clients,
    versions,
    warmup: opts.warmup,
    connectConcurrency: 100,
    settleMs: opts.settleMs,
    changeTimeoutMs: 30_000,
    log,
  };

  const results: RunSummary[] = [];
  results.push(await runTarget(await ourTarget(configs, opts.cpuProf), run));
  if (opts.peer !== 'none') results.push(await runTarget(await peerTarget(opts.peer, snapshots), run));

  const missed = results.flatMap((r) => r.perChange.filter((c) => c.missing > 0).map((c) => `${r.server} change ${c.change}: ${c.missing} clients`));
  const loadAfter = os.loadavg()[0] ?? NaN;
  process.stdout.write(
    `\nnode ${process.version}, ${os.cpus().length} CPUs, load average ${loadBefore.toFixed(2)} before / ${loadAfter.toFixed(2)} after; ` +
      `${opts.clients} clients, ${opts.changes} changes (+${opts.warmup} warm-up), ${opts.clusters} clusters; ` +
      `snapshot build ${buildMs.toFixed(1)} ms (not in the timings)\n\n`,
  );
  process.stdout.write(`${table(results, opts)}\n`);
  const ours = results[0];
  if (ours?.publishBlockMs !== undefined)
    process.stdout.write(`consul-xds: cache.set() held the event loop ${ours.publishBlockMs.toFixed(1)} ms per change (median).\n`);
  if (missed.length > 0) process.stdout.write(`NOT DELIVERED within 30 s: ${missed.join('; ')}\n`);
  if (opts.cpuProf !== undefined) process.stdout.write(`\n${profileTop(path.join(opts.cpuProf, 'consul-xds-fanout.cpuprofile'), 30, 'prepareSnapshot')}\n`);
  if (opts.json) {
    const json = { options: opts, node: process.version, loadavg: [loadBefore, loadAfter], buildMs, results };
    writeFileSync(opts.json, `${JSON.stringify(json, null, 2)}\n`);
  }
  clearTimeout(deadline);
  process.exitCode = missed.length > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-fanout: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
