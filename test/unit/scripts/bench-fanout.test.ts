/**
 * The fan-out benchmark's pure parts: the churn config flips exactly one endpoint per change (one
 * ClusterLoadAssignment, nothing else), what a change is expected to deliver per protocol, the
 * Delta wire encoding the load clients speak (checked against protobufjs and Envoy's protos), the
 * merging of several load-generator processes' reports, and the ratio rows of the tables.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { staticEndpoints } from '../../../src/config/static-endpoints.js';
import { translate } from '../../../src/translate/index.js';
import { buildSnapshot, type Snapshot } from '../../../src/cache/snapshot.js';
import { messageType, TO_OBJECT } from '../../../src/envoy/protos.js';
import { TYPE_ORDER, TypeUrl } from '../../../src/xds/resource-types.js';
import { benchConfigYaml, type ChangeKind } from '../../../scripts/bench/config-gen.js';
import { expectationOf, type SnapshotFacts } from '../../../scripts/bench/measure.js';
import {
  decodeDeltaResponseHead,
  deltaResourceAny,
  deltaResourceName,
  encodeDeltaRequest,
  encodeResourceNames,
  resourceName,
} from '../../../scripts/bench/wire.js';
import { mergeChange, mergeReady } from '../../../scripts/bench/load-generator-handle.js';
import { COLUMNS, ratio, renderTable } from '../../../scripts/bench/table.js';
import type { ChangeMessage, ReadyMessage } from '../../../scripts/bench/ipc.js';
import type { RunSummary } from '../../../scripts/bench/stats.js';

function snapshotOf(clusters: number, change: number, kind: ChangeKind): Snapshot {
  const config = parseConfig(benchConfigYaml(clusters, change, kind), `bench-${change}`);
  return buildSnapshot(translate(config, staticEndpoints(config)));
}

function factsOf(s: Snapshot): SnapshotFacts {
  return Object.fromEntries(TYPE_ORDER.map((t) => [t, { version: s.version(t), resources: new Map(s.type(t).list.map((r) => [r.name, r.version])) }]));
}

test('a churn change flips one endpoint: one ClusterLoadAssignment changes, every other resource and type keeps its version', () => {
  const snapshots = Array.from({ length: 6 }, (_, k) => snapshotOf(40, k, 'flip'));
  const seen = new Set<string>();
  for (let k = 1; k < snapshots.length; k++) {
    const expect = expectationOf(factsOf(snapshots[k - 1] as Snapshot), factsOf(snapshots[k] as Snapshot));
    assert.deepEqual(Object.keys(expect), [TypeUrl.ClusterLoadAssignment], `change ${k}`);
    const eds = expect[TypeUrl.ClusterLoadAssignment];
    assert.equal(eds?.names.length, 1, `change ${k}: ${eds?.names.join(', ')}`);
    assert.equal(eds?.version, (snapshots[k] as Snapshot).version(TypeUrl.ClusterLoadAssignment));
    seen.add(eds?.names[0] ?? '');
  }
  assert.equal(seen.size, 5, 'each change flips an endpoint of another cluster');
  // The flipped endpoint is reported unhealthy, as Consul health would make it.
  const cla = (snapshots[1] as Snapshot).type(TypeUrl.ClusterLoadAssignment).resources.get([...seen][0] ?? '');
  assert.match(JSON.stringify(cla?.object), /"health_status":"UNHEALTHY"/);
});

test('an edit change expects every Cluster and the RouteConfiguration, by version (SotW) and by name (Delta)', () => {
  const before = factsOf(snapshotOf(10, 1, 'edit'));
  const after = factsOf(snapshotOf(10, 2, 'edit'));
  const expect = expectationOf(before, after);
  assert.deepEqual(Object.keys(expect).sort(), [TypeUrl.Cluster, TypeUrl.RouteConfiguration].sort());
  assert.equal(expect[TypeUrl.Cluster]?.names.length, 10);
  assert.equal(expect[TypeUrl.Cluster]?.version, after[TypeUrl.Cluster]?.version);
  assert.equal(expect[TypeUrl.RouteConfiguration]?.names.length, 1);
});

test('DeltaDiscoveryRequests the clients send decode as Envoy protos say: node once, subscribe and unsubscribe names, the nonce', () => {
  const Request = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const plain = { ...TO_OBJECT, arrays: false }; // empty repeated fields left out
  const first = Request.toObject(
    Request.decode(
      encodeDeltaRequest({
        typeUrl: TypeUrl.Cluster,
        responseNonce: '',
        subscribe: Buffer.alloc(0),
        unsubscribe: Buffer.alloc(0),
        node: { id: 'bench-client-7', cluster: 'bench' },
      }),
    ),
    plain,
  );
  assert.deepEqual(first, { node: { id: 'bench-client-7', cluster: 'bench' }, type_url: TypeUrl.Cluster });
  const change = Request.toObject(
    Request.decode(
      encodeDeltaRequest({
        typeUrl: TypeUrl.ClusterLoadAssignment,
        responseNonce: 'n-3',
        subscribe: encodeResourceNames(['a', 'b'], 3),
        unsubscribe: encodeResourceNames(['c'], 4),
      }),
    ),
    plain,
  );
  assert.deepEqual(change, {
    type_url: TypeUrl.ClusterLoadAssignment,
    resource_names_subscribe: ['a', 'b'],
    resource_names_unsubscribe: ['c'],
    response_nonce: 'n-3',
  });
});

test('a DeltaDiscoveryResponse yields its type, nonce, resources by name (with their Any) and removed names', () => {
  const snapshot = snapshotOf(3, 0, 'flip');
  const clas = snapshot.type(TypeUrl.ClusterLoadAssignment).list;
  const Response = messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const Any = messageType('google.protobuf.Any');
  const bytes = Response.encode(
    Response.fromObject({
      system_version_info: 'v',
      type_url: TypeUrl.ClusterLoadAssignment,
      nonce: 'n-1',
      resources: clas.map((r) => ({ name: r.name, version: r.version, resource: Any.decode(r.bytes) })),
      removed_resources: ['gone-1', 'gone-2'],
    }),
  ).finish();
  const head = decodeDeltaResponseHead(bytes);
  assert.equal(head.typeUrl, TypeUrl.ClusterLoadAssignment);
  assert.equal(head.nonce, 'n-1');
  assert.deepEqual(head.removed, ['gone-1', 'gone-2']);
  assert.deepEqual(
    head.resources.map((r) => deltaResourceName(r)),
    clas.map((r) => r.name),
  );
  assert.deepEqual(Buffer.from(deltaResourceAny(head.resources[0] as Uint8Array)), Buffer.from(clas[0]?.bytes ?? []));
  assert.equal(resourceName(deltaResourceAny(head.resources[1] as Uint8Array)), clas[1]?.name);
});

test('reports of several load-generator processes merge into one, clients in process order', () => {
  const ready = (versions: Record<string, string>, counts: Record<string, number>, readyAtMs: number): ReadyMessage => ({
    kind: 'ready',
    clients: 2,
    readyAtMs,
    versions,
    counts,
  });
  const merged = mergeReady([ready({ c: 'v1', e: 'v2' }, { c: 3, e: 3 }, 10), ready({ c: 'v1', e: 'v9' }, { c: 3, e: 2 }, 12)]);
  assert.deepEqual(merged, { kind: 'ready', clients: 4, readyAtMs: 12, versions: { c: 'v1', e: 'mixed' }, counts: { c: 3, e: -1 } });

  const change = (received: Array<number | null>, missing: number): ChangeMessage => ({
    kind: 'change',
    change: 4,
    received: { e: received },
    acked: received,
    missing,
    responses: 2,
    cpuMs: 5,
  });
  assert.deepEqual(mergeChange([change([1, 2], 0), change([3, null], 1)]), {
    kind: 'change',
    change: 4,
    received: { e: [1, 2, 3, null] },
    acked: [1, 2, 3, null],
    missing: 1,
    responses: 4,
    cpuMs: 10,
  });
});

test('tables divide the ratio columns only, and print "-" where a ratio has no meaning', () => {
  const run = (server: string, p99: number, clients: number): RunSummary =>
    ({ server, protocol: 'delta', clients, p99, bytesPerClient: 0 }) as unknown as RunSummary;
  const out = renderTable(
    'server',
    [COLUMNS.clients, COLUMNS.p99, COLUMNS.bytes],
    [
      { label: 'ours', run: run('ours', 30, 1000) },
      { label: 'peer', run: run('peer', 120, 1000) },
    ],
    [{ label: 'ratio ours/peer', a: run('ours', 30, 1000), b: run('peer', 120, 1000) }],
  );
  const ratioLine = out.split('\n').find((l) => l.startsWith('ratio'));
  assert.deepEqual(ratioLine?.split(/\s{2,}/), ['ratio ours/peer', '0.25x', '-']);
  assert.match(out, /^ours\s+1000\s+30\.0\s+0$/m);
  assert.equal(ratio(316, 219770), '0.0014x', 'small ratios keep two significant digits');
  assert.equal(ratio(1, 0), '-');
});
