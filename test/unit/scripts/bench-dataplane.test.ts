/**
 * The data-plane benchmark's pure parts: the config it feeds both data planes is valid and routes
 * each protocol to its own cluster; the table's medians, added latency and ratios; the profile
 * window cut; the grouping of profile self time (native frames count towards their JS caller);
 * the load generator's fixed rate (--rps).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../../src/config/parse.js';
import { staticEndpoints } from '../../../src/config/static-endpoints.js';
import { translate } from '../../../src/translate/index.js';
import { benchDataplaneYaml, GRPC_CLUSTER, H1_CLUSTER } from '../../../scripts/bench-dataplane/config.js';
import { ECHO_PATH, ROOT } from '../../../scripts/bench-dataplane/echo.js';
import { ghzArgs, H1_PATH, type LoadResult } from '../../../scripts/bench-dataplane/load.js';
import { ratio, summarize, type Cell } from '../../../scripts/bench-dataplane/table.js';
import { cutProfile } from '../../../scripts/bench-dataplane/profile-window.js';
import { profileGroups } from '../../../scripts/bench-dataplane/profile-groups.js';

test('the benchmark config routes gRPC to an HTTP/2 cluster and /h1 to an HTTP/1.1 cluster, 3 endpoints each', () => {
  const yaml = benchDataplaneYaml({ listener: 10000, h1Upstreams: [1001, 1002, 1003], grpcUpstreams: [2001, 2002, 2003] });
  const config = parseConfig(yaml, 'bench');
  const set = translate(config, staticEndpoints(config));
  const clusters = new Map(set.clusters.map((c) => [c.name as string, c]));
  assert.ok(clusters.get(GRPC_CLUSTER)?.typed_extension_protocol_options, 'gRPC cluster speaks HTTP/2');
  assert.equal(clusters.get(H1_CLUSTER)?.typed_extension_protocol_options, undefined);
  const routes = (set.routes[0]!.virtual_hosts as Array<{ routes: Array<{ match: { prefix: string }; route: { cluster: string } }> }>)[0]?.routes ?? [];
  const clusterFor = (p: string): string | undefined => routes.find((r) => p.startsWith(r.match.prefix))?.route.cluster;
  assert.equal(clusterFor(ECHO_PATH), GRPC_CLUSTER);
  assert.equal(clusterFor(H1_PATH), H1_CLUSTER);
  const ports = (name: string): number[] =>
    set.endpoints
      .filter((e) => e.cluster_name === name)
      .flatMap((e) =>
        (e.endpoints as Array<{ lb_endpoints: Array<{ endpoint: { address: { socket_address: { port_value: number } } } }> }>).flatMap((l) =>
          l.lb_endpoints.map((x) => x.endpoint.address.socket_address.port_value),
        ),
      );
  assert.deepEqual(ports(H1_CLUSTER).sort(), [1001, 1002, 1003]);
  assert.deepEqual(ports(GRPC_CLUSTER).sort(), [2001, 2002, 2003]);
});

function cell(round: number, target: Cell['target'], rps: number, p50Us: number, p99Us: number, cpu?: number): Cell {
  const load: LoadResult = { requests: rps * 10, rps, p50Us, p99Us, errors: 0 };
  return { round, target, protocol: 'http1', concurrency: 16, load, dpCpuUs: cpu, upstreamCpuUs: 10 };
}

test('rows hold medians over rounds; added latency is over direct; ratios are ours/Envoy', () => {
  const rows = summarize([
    cell(1, 'direct', 1000, 100, 1000),
    cell(2, 'direct', 3000, 300, 1200),
    cell(3, 'direct', 2000, 200, 5000),
    cell(1, 'envoy', 900, 400, 2000, 50),
    cell(2, 'envoy', 800, 500, 3000, 60),
    cell(3, 'envoy', 700, 600, 4000, 70),
    cell(1, 'consul-xds', 400, 1200, 1500, 100),
    cell(2, 'consul-xds', 500, 1000, 1600, 140),
    cell(3, 'consul-xds', 600, 1100, 1700, 120),
  ]);
  const ours = rows.find((r) => r.target === 'consul-xds');
  assert.equal(ours?.rps, 500);
  assert.equal(ours?.addedP50Us, 1100 - 200);
  const q = ratio(rows, 'http1', 16);
  assert.equal(q?.rps, 500 / 800);
  assert.equal(q?.addedP50, 900 / 300);
  assert.equal(q?.cpu, 120 / 60);
  // p99 medians: direct 1200, ours 1600 (+400), Envoy 3000 (+1800).
  assert.equal(q?.addedP99, 400 / 1800);
});

test('an added latency at or below zero gets no ratio', () => {
  const rows = summarize([cell(1, 'direct', 1000, 100, 5000), cell(1, 'envoy', 900, 200, 4000, 50), cell(1, 'consul-xds', 800, 300, 6000, 60)]);
  const q = ratio(rows, 'http1', 16);
  assert.ok(Number.isNaN(q?.addedP99 ?? 0));
  assert.equal(q?.addedP50, 200 / 100);
});

function writeProfile(dir: string, profile: unknown): string {
  const file = path.join(dir, `p-${Math.random().toString(36).slice(2)}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  return file;
}

const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({
  id,
  callFrame: { functionName, url, lineNumber: 0, columnNumber: 0, scriptId: '0' },
  children,
});

test('cutProfile keeps only the samples inside the window', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-dp-'));
  const file = writeProfile(dir, {
    nodes: [frame(1, '(root)', '', [2]), frame(2, 'work', 'node:net')],
    startTime: 1000,
    endTime: 1500,
    samples: [2, 2, 2, 2, 2],
    timeDeltas: [100, 100, 100, 100, 100], // at 1100 .. 1500
  });
  const cut = JSON.parse(readFileSync(cutProfile(file, 1150, 1450), 'utf8')) as { samples: number[]; timeDeltas: number[]; startTime: number };
  assert.equal(cut.samples.length, 3); // 1200, 1300, 1400
  assert.deepEqual(cut.timeDeltas, [50, 100, 100]);
  assert.throws(() => cutProfile(file, 2000, 3000), /no samples/);
});

test('profile groups: native frames count towards their JS caller; writes and idle are set apart', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-dp-'));
  const routerUrl = 'file:///x/dist/src/proxy/router/route-table.js';
  const file = writeProfile(dir, {
    nodes: [
      frame(1, '(root)', '', [2, 3, 5, 6]),
      frame(2, 'match', routerUrl, [4]),
      frame(3, '(idle)', ''),
      frame(4, 'RegExpExec', ''), // native under our router
      frame(5, 'writev', ''),
      frame(6, '(garbage collector)', ''),
    ],
    startTime: 0,
    endTime: 100,
    samples: [2, 4, 4, 3, 5, 6],
    timeDeltas: [1000, 1000, 1000, 5000, 2000, 1000],
  });
  const { busyMs, writesMs, groups } = profileGroups(file);
  assert.equal(busyMs, 6); // idle left out
  assert.equal(writesMs, 2);
  const routing = groups.find((g) => g.group.startsWith('ours: routing'));
  assert.equal(routing?.ms, 3);
  assert.equal(groups.find((g) => g.group === 'GC')?.ms, 1);
});

test('--rps holds ghz to a fixed rate; without it ghz runs a closed loop', () => {
  const spec = { protocol: 'grpc', port: 10000, concurrency: 16, durationS: 8 } as const;
  const rpsOf = (args: string[]): string | undefined => {
    const i = args.indexOf('--rps');
    return i < 0 ? undefined : args[i + 1];
  };
  assert.equal(rpsOf(ghzArgs({ ...spec, rps: 800 })), '800');
  assert.equal(rpsOf(ghzArgs(spec)), undefined);
});

test('--rps with the HTTP/1.1 protocol is refused before anything starts (wrk has no fixed rate)', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'scripts', 'bench-dataplane.js'), '--rps', '800'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--rps: wrk has no fixed rate; add --protocols grpc/);
  assert.doesNotMatch(r.stderr, /\[bench-dataplane\]/, 'no tool was installed and no process started');
});
