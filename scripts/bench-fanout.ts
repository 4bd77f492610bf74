/**
 * Fan-out benchmark: how fast a config change reaches N connected xDS clients, what it costs the
 * server, and what each connected client costs in server memory; our server next to a peer in
 * the same run, over SotW and Delta xDS.
 *
 *   npm run build && npm run bench:fanout -- --workload fanout    # 1,000 clients, 100 clusters, operator edits
 *   npm run bench:fanout -- --workload churn                      # 1,000 clients, 1,000 clusters, one endpoint flips; SotW and Delta
 *   npm run bench:fanout -- --workload scale --clients 10000      # 1,000 then 10,000 clients, 100 clusters; growth
 *
 * In: flags (below). Out: a table on stdout (delivery p50/p99/max over clients, median over
 * changes; bytes each client received; server CPU per change; RSS per connected stream) and the
 * ratios ours/peer (scale: also 10,000/1,000); progress on stderr; with --json FILE, every figure
 * of every change.
 *
 * Every server runs as a child process driven over stdin (bench/server-process.ts): ours
 * (bench/our-server.ts: parseConfig -> translate -> buildSnapshot -> SnapshotCache, and
 * createXdsServer, as `serve` wires them), and the peer (go-control-plane's snapshot cache behind
 * its SotW and Delta servers, or the "floor": a minimal encode-once SotW ADS server), given the
 * very bytes our snapshot holds. Separate processes keep each server's RSS its own and the driver
 * off its event loop. Each server is measured against fresh load-generator processes
 * (bench/load-generator.ts) holding one HTTP/2 connection per client, all on 127.0.0.1, then
 * stopped before the next one starts. A server that answers a protocol with UNIMPLEMENTED is
 * reported as not supporting it ("ours delta: unsupported (UNIMPLEMENTED)"), and the run goes on.
 * See docs/benchmarks.md ("Config fan-out to 1,000 xDS clients", "Endpoint churn", "Scale point")
 * for what is measured and why.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import os from 'node:os';
import { parseConfig } from '../src/config/parse.js';
import { staticEndpoints } from '../src/config/static-endpoints.js';
import { translate } from '../src/translate/index.js';
import { buildSnapshot, type Snapshot } from '../src/cache/snapshot.js';
import { TYPE_ORDER } from '../src/xds/resource-types.js';
import { BENCH_CONFIG_MAX_BYTES, benchConfigYaml, type ChangeKind } from './bench/config-gen.js';
import { runTarget, type RunOptions, type SnapshotFacts, type Target } from './bench/measure.js';
import { ServerProcess, type ConfigSnapshot, type PeerSnapshot } from './bench/server-process.js';
import { profileTop } from './bench/profile-top.js';
import { median } from './bench/stats.js';
import { goPeerBinary } from './bench/go-peer.js';
import type { RunSummary } from './bench/stats.js';
import type { Protocol } from './bench/ipc.js';
import { UnsupportedProtocolError } from './bench/load-generator-handle.js';
import { COLUMNS, renderTable, type Column, type RatioRow, type Row } from './bench/table.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PEERS = ['none', 'go-control-plane', 'floor'] as const;
type PeerName = (typeof PEERS)[number];
const WORKLOADS = ['fanout', 'churn', 'scale'] as const;
type Workload = (typeof WORKLOADS)[number];
const PROTOCOLS = ['sotw', 'delta', 'both'] as const;

/** Each workload's defaults; flags override them. */
const DEFAULTS: Readonly<
  Record<
    Workload,
    { clients: number; clusters: number; changes: number; warmup: number; change: ChangeKind; protocol: (typeof PROTOCOLS)[number]; settleMs: number }
  >
> = {
  fanout: { clients: 1000, clusters: 100, changes: 10, warmup: 2, change: 'edit', protocol: 'sotw', settleMs: 500 },
  churn: { clients: 1000, clusters: 1000, changes: 10, warmup: 2, change: 'flip', protocol: 'both', settleMs: 500 },
  scale: { clients: 10000, clusters: 100, changes: 3, warmup: 1, change: 'edit', protocol: 'sotw', settleMs: 2000 },
};

/** Clients per load-generator process by default: one event loop digests a change for this many in time. */
const CLIENTS_PER_LOAD_PROCESS = 5000;

const USAGE = `usage: node dist/scripts/bench-fanout.js [options]   (or: npm run bench:fanout -- [options])
  --workload W         fanout | churn | scale (default fanout); see docs/benchmarks.md
                         fanout: 1000 clients, 100 clusters, each change edits every Cluster and the routes
                         churn:  1000 clients, 1000 clusters, each change flips one endpoint's health; SotW and Delta
                         scale:  --base-clients then --clients (10000) clients, 100 clusters, 3 changes; growth
  --clients N          simulated ADS clients, one HTTP/2 connection each (workload default)
  --base-clients B     scale: the client count the growth is measured from (default 1000)
  --changes C          config changes to measure (workload default)
  --warmup W           changes run first and not counted (workload default)
  --clusters K         clusters in the config (workload default)
  --change KIND        edit (every Cluster and the routes) | flip (one endpoint's health) (workload default)
  --protocol P         sotw | delta | both (workload default: churn both, others sotw)
  --peer P             none | go-control-plane | floor (default go-control-plane; floor speaks SotW only)
  --load-procs L       load-generator processes (default: one per ${CLIENTS_PER_LOAD_PROCESS} clients)
  --settle-ms MS       quiet time between changes (workload default: 500, scale 2000)
  --timeout-s S        hard limit for the whole run; exits 2 when reached (default 900, scale 2400)
  --json FILE          also write every figure as JSON
  --cpu-prof DIR       CPU-profile our server over the measured changes: DIR/consul-xds-fanout.cpuprofile
  --help`;

interface Options {
  readonly workload: Workload;
  readonly clients: number;
  /** scale: the smaller client count run first. */
  readonly baseClients: number;
  readonly changes: number;
  readonly warmup: number;
  readonly clusters: number;
  readonly change: ChangeKind;
  readonly protocols: readonly Protocol[];
  readonly peer: PeerName;
  readonly loadProcs?: number;
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

function oneOf<T extends string>(flag: string, allowed: readonly T[], value: string | undefined, fallback: T): T {
  const v = value ?? fallback;
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${flag}: expected one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      workload: { type: 'string' },
      clients: { type: 'string' },
      'base-clients': { type: 'string' },
      changes: { type: 'string' },
      warmup: { type: 'string' },
      clusters: { type: 'string' },
      change: { type: 'string' },
      protocol: { type: 'string' },
      peer: { type: 'string' },
      'load-procs': { type: 'string' },
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
  const workload = oneOf('workload', WORKLOADS, values.workload, 'fanout');
  const d = DEFAULTS[workload];
  const protocol = oneOf('protocol', PROTOCOLS, values.protocol, d.protocol);
  const clients = positiveInt('clients', values.clients, d.clients);
  const baseClients = positiveInt('base-clients', values['base-clients'], 1000);
  if (workload === 'scale' && baseClients >= clients) throw new Error(`--base-clients (${baseClients}) must be below --clients (${clients})`);
  return {
    workload,
    clients,
    baseClients,
    changes: positiveInt('changes', values.changes, d.changes),
    warmup: values.warmup === '0' ? 0 : positiveInt('warmup', values.warmup, d.warmup),
    clusters: positiveInt('clusters', values.clusters, d.clusters),
    change: oneOf('change', ['edit', 'flip'] as const, values.change, d.change),
    protocols: protocol === 'both' ? ['sotw', 'delta'] : [protocol],
    peer: oneOf('peer', PEERS, values.peer, 'go-control-plane'),
    ...(values['load-procs'] !== undefined ? { loadProcs: positiveInt('load-procs', values['load-procs'], 1) } : {}),
    settleMs: positiveInt('settle-ms', values['settle-ms'], d.settleMs),
    timeoutS: positiveInt('timeout-s', values['timeout-s'], workload === 'scale' ? 2400 : 900),
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
function buildSnapshots(clusters: number, n: number, kind: ChangeKind): { configs: string[]; snapshots: Snapshot[]; buildMs: number } {
  const configs: string[] = [];
  const snapshots: Snapshot[] = [];
  const times: number[] = [];
  for (let k = 0; k <= n; k++) {
    const started = performance.now();
    const text = benchConfigYaml(clusters, k, kind);
    const config = parseConfig(text, `bench-config-${k}`, { maxBytes: BENCH_CONFIG_MAX_BYTES });
    snapshots.push(buildSnapshot(translate(config, staticEndpoints(config))));
    times.push(performance.now() - started);
    configs.push(text);
  }
  return { configs, snapshots, buildMs: median(times) };
}

function versionsOf(s: Snapshot): Record<string, string> {
  return Object.fromEntries(TYPE_ORDER.map((t) => [t, s.version(t)]));
}

/** What the clients must end up holding: per type, its version and each resource's version. */
function factsOf(s: Snapshot): SnapshotFacts {
  return Object.fromEntries(
    TYPE_ORDER.map((t) => {
      const type = s.type(t);
      return [t, { version: type.version, resources: new Map(type.list.map((r) => [r.name, r.version])) }];
    }),
  );
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
function goControlPlaneBinary(): string {
  try {
    return goPeerBinary(ROOT, 'go-control-plane', log);
  } catch (err) {
    throw new Error(`${(err as Error).message}; run with --peer floor or --peer none`);
  }
}

function peerTarget(peer: Exclude<PeerName, 'none'>, snapshots: readonly Snapshot[]): Promise<Target> {
  const payloads = snapshots.map(peerSnapshot);
  return peer === 'go-control-plane'
    ? processTarget(peer, goControlPlaneBinary(), [], payloads)
    : processTarget(peer, process.execPath, ['--expose-gc', path.join(ROOT, 'dist', 'scripts', 'bench-peers', 'floor-server.js')], payloads);
}

/** A server run with the label the tables give it. */
interface Labeled {
  readonly who: 'ours' | 'peer';
  readonly run: RunSummary;
}

const label = (r: RunSummary, protocols: readonly Protocol[]): string =>
  protocols.length > 1 || r.protocol !== 'sotw' ? `${r.server} ${r.protocol}` : r.server;

function fanoutTable(runs: readonly Labeled[], opts: Options): string {
  const columns: Column[] = [
    COLUMNS.clients,
    COLUMNS.changes,
    COLUMNS.p50,
    COLUMNS.p99,
    COLUMNS.max,
    COLUMNS.allAcked,
    COLUMNS.cdsP99,
    COLUMNS.responses,
    COLUMNS.cpu,
    COLUMNS.rss,
    COLUMNS.connectAll,
    COLUMNS.bytes,
  ];
  const rows: Row[] = runs.map((r) => ({ label: label(r.run, opts.protocols), run: r.run }));
  return [
    renderTable('server', columns, rows, pairRatios(runs, opts.protocols)),
    '',
    `${opts.clients} clients (one HTTP/2 connection each), ${opts.clusters} clusters; each change alters every Cluster and the RouteConfiguration.`,
    'Delivery: publish -> the client holds every changed type; p50/p99/max over clients, median over changes.',
    'Reference floor on these machines (docs/benchmarks.md, 1,000 clients, CDS only): p50 60-140 ms, p99 115-195 ms, 40 KB/stream;',
    'budget for ours (1.5x): p50 <= 210 ms, p99 <= 293 ms, RSS <= 60 KB/stream.',
    'resp/change: responses all clients received per change (ours re-sends each ClusterLoadAssignment after its Cluster, for warming).',
    'CPU ms/change: server process CPU (user + system) per change, ACKs included; steadier than latency on a busy machine.',
    'bytes/client: encoded responses each client received per change (gRPC messages, without HTTP/2 framing).',
  ].join('\n');
}

/** ours/peer for each protocol both ran. */
function pairRatios(runs: readonly Labeled[], protocols: readonly Protocol[]): RatioRow[] {
  const out: RatioRow[] = [];
  for (const protocol of protocols) {
    const ours = runs.find((r) => r.who === 'ours' && r.run.protocol === protocol)?.run;
    const peer = runs.find((r) => r.who === 'peer' && r.run.protocol === protocol)?.run;
    if (ours && peer) out.push({ label: `ratio ours/${label(peer, protocols)}`, a: ours, b: peer });
  }
  return out;
}

function churnTable(runs: readonly Labeled[], opts: Options): string {
  const columns: Column[] = [COLUMNS.bytes, COLUMNS.responses, COLUMNS.p50, COLUMNS.p99, COLUMNS.max, COLUMNS.cpu, COLUMNS.rss, COLUMNS.connectAll];
  const rows: Row[] = runs.map((r) => ({ label: label(r.run, opts.protocols), run: r.run }));
  const ratios = pairRatios(runs, opts.protocols);
  const oursSotw = runs.find((r) => r.who === 'ours' && r.run.protocol === 'sotw')?.run;
  const oursDelta = runs.find((r) => r.who === 'ours' && r.run.protocol === 'delta')?.run;
  if (oursSotw && oursDelta) ratios.push({ label: 'ratio ours delta/sotw', a: oursDelta, b: oursSotw });
  return [
    renderTable('server', columns, rows, ratios),
    '',
    `${opts.clients} clients (one HTTP/2 connection each), ${opts.clusters} clusters; each change flips one endpoint's health: one ClusterLoadAssignment changes.`,
    'bytes/client: encoded responses each client received per change (gRPC messages, without HTTP/2 framing).',
    'Delivery: publish -> the client holds the changed ClusterLoadAssignment (SotW: the new EDS version_info; Delta: the resource); median over changes.',
    'CPU ms/change: server process CPU (user + system) per change, ACKs included. RSS/stream: server RSS with the clients connected, minus without.',
  ].join('\n');
}

function scaleTable(runs: readonly Labeled[], opts: Options): string {
  const columns: Column[] = [COLUMNS.clients, COLUMNS.p50, COLUMNS.p99, COLUMNS.max, COLUMNS.cpu, COLUMNS.rss, COLUMNS.connectAll, COLUMNS.bytes];
  const rows: Row[] = runs.map((r) => ({ label: label(r.run, opts.protocols), run: r.run }));
  const ratios: RatioRow[] = [];
  for (const n of [opts.baseClients, opts.clients]) {
    ratios.push(
      ...pairRatios(
        runs.filter((r) => r.run.clients === n),
        opts.protocols,
      ).map((r) => ({ ...r, label: `${r.label} @${n}` })),
    );
  }
  for (const who of ['ours', 'peer'] as const) {
    for (const protocol of opts.protocols) {
      const at = (n: number): RunSummary | undefined => runs.find((r) => r.who === who && r.run.protocol === protocol && r.run.clients === n)?.run;
      const big = at(opts.clients);
      const small = at(opts.baseClients);
      if (big && small) ratios.push({ label: `growth ${label(big, opts.protocols)} ${opts.clients}/${opts.baseClients}`, a: big, b: small });
    }
  }
  return [
    renderTable('server', columns, rows, ratios),
    '',
    `${opts.baseClients} then ${opts.clients} clients (one HTTP/2 connection each), ${opts.clusters} clusters, ${opts.change === 'edit' ? 'each change alters every Cluster and the RouteConfiguration' : "each change flips one endpoint's health"}.`,
    `growth: the figure at ${opts.clients} clients over the one at ${opts.baseClients} (${opts.clients / opts.baseClients}x the clients; 1.00x for RSS/stream means memory grows linearly).`,
  ].join('\n');
}

/**
 * How long a change may take to reach every client before those missing are reported. Generous:
 * a SotW peer pushing 1,000 ClusterLoadAssignments to each of 1,000 clients on a busy machine
 * took over 20 s.
 */
function changeTimeoutMs(clients: number): number {
  return Math.max(60_000, clients * 6);
}

/** Every fd a process holds for its clients' connections (server: one each; load generators: their share). */
function checkFdLimit(clients: number): void {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const soft = Number(/^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1] ?? 'NaN');
  const need = clients + 512;
  if (soft < need) {
    throw new Error(
      `${clients} clients need about ${need} open files per process, and the limit is ${soft}: run through \`npm run bench:fanout -- ...\` (it raises the limit to the hard one, \`ulimit -Hn\`), or \`ulimit -n ${need}\` first`,
    );
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const counts = opts.workload === 'scale' ? [opts.baseClients, opts.clients] : [opts.clients];
  checkFdLimit(Math.max(...counts));
  // Hard limit: children watch their stdin / IPC channel and exit when this process does.
  const deadline = setTimeout(() => {
    log(`hard timeout of ${opts.timeoutS} s reached; aborting`);
    process.exit(2);
  }, opts.timeoutS * 1000);

  const baseNs = process.hrtime.bigint();
  const loadBefore = os.loadavg()[0] ?? NaN;
  log(`building ${1 + opts.warmup + opts.changes} snapshots of ${opts.clusters} clusters (${opts.change} changes)`);
  const { configs, snapshots, buildMs } = buildSnapshots(opts.clusters, opts.warmup + opts.changes, opts.change);
  log(`snapshot build (parse + translate + encode once): median ${buildMs.toFixed(1)} ms`);
  const facts = snapshots.map(factsOf);

  const runs: Labeled[] = [];
  const notes: string[] = [];
  let cpuProf = opts.cpuProf;
  const measure = async (who: Labeled['who'], name: string, target: () => Promise<Target>, run: RunOptions): Promise<void> => {
    try {
      runs.push({ who, run: await runTarget(await target(), run) });
    } catch (err) {
      if (!(err instanceof UnsupportedProtocolError)) throw err;
      const note = `${who === 'ours' ? 'ours' : name} ${run.protocol}: unsupported (${err.status})`;
      log(`${note}: ${err.message}`);
      notes.push(note);
    }
  };
  for (const clients of counts) {
    for (const protocol of opts.protocols) {
      const run: RunOptions = {
        baseNs,
        protocol,
        clients,
        loadProcesses: opts.loadProcs ?? Math.ceil(clients / CLIENTS_PER_LOAD_PROCESS),
        snapshots: facts,
        warmup: opts.warmup,
        connectConcurrency: 100,
        settleMs: opts.settleMs,
        changeTimeoutMs: changeTimeoutMs(clients),
        readyTimeoutMs: Math.max(120_000, clients * 30),
        log,
      };
      // Only the first run of ours is profiled: one profile file.
      const prof = cpuProf;
      cpuProf = undefined;
      await measure('ours', 'consul-xds', () => ourTarget(configs, prof), run);
      const peer = opts.peer;
      if (peer !== 'none') await measure('peer', peer, () => peerTarget(peer, snapshots), run);
    }
  }

  const missed = runs.flatMap((r) =>
    r.run.perChange.filter((c) => c.missing > 0).map((c) => `${r.run.server} ${r.run.protocol} change ${c.change}: ${c.missing} clients`),
  );
  const loadAfter = os.loadavg()[0] ?? NaN;
  process.stdout.write(
    `\nworkload ${opts.workload}; node ${process.version}, ${os.cpus().length} CPUs, load average ${loadBefore.toFixed(2)} before / ${loadAfter.toFixed(2)} after; ` +
      `${counts.join(' and ')} clients, ${opts.changes} changes (+${opts.warmup} warm-up), ${opts.clusters} clusters; ` +
      `snapshot build ${buildMs.toFixed(1)} ms (not in the timings)\n\n`,
  );
  const table = opts.workload === 'churn' ? churnTable : opts.workload === 'scale' ? scaleTable : fanoutTable;
  process.stdout.write(`${table(runs, opts)}\n`);
  for (const note of notes) process.stdout.write(`${note}\n`);
  const ours = runs.find((r) => r.who === 'ours')?.run;
  if (ours?.publishBlockMs !== undefined)
    process.stdout.write(`consul-xds: cache.set() held the event loop ${ours.publishBlockMs.toFixed(1)} ms per change (median).\n`);
  if (missed.length > 0) process.stdout.write(`NOT DELIVERED within ${changeTimeoutMs(Math.max(...counts)) / 1000} s: ${missed.join('; ')}\n`);
  if (opts.cpuProf !== undefined) process.stdout.write(`\n${profileTop(path.join(opts.cpuProf, 'consul-xds-fanout.cpuprofile'), 30, 'prepareSnapshot')}\n`);
  if (opts.json) {
    const json = {
      options: opts,
      node: process.version,
      loadavg: [loadBefore, loadAfter],
      buildMs,
      notes,
      results: runs.map((r) => ({ who: r.who, ...r.run })),
    };
    writeFileSync(opts.json, `${JSON.stringify(json, null, 2)}\n`);
  }
  clearTimeout(deadline);
  process.exitCode = missed.length > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-fanout: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
