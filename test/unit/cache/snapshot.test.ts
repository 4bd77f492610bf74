/**
 * buildSnapshot: encode-once Any bytes, content-hash versions, the empty-Any trap, the
 * consistency check and immutability.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot } from '../../../src/cache/snapshot.js';
import { messageType } from '../../../src/envoy/protos.js';
import { SnapshotError } from '../../../src/errors.js';
import { TypeUrl, TYPE_ORDER } from '../../../src/xds/resource-types.js';
import type { XdsResourceSet } from '../../../src/xds/resources.js';
import { cla, edsCluster, HCM_TYPE, httpListener, resourceSet, routeConfig, TCP_PROXY_TYPE } from '../../support/xds-fixtures.js';

function throwsSnapshotError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SnapshotError, `expected SnapshotError, got ${String(err)}`);
    assert.equal(err.code, 'CXDS_SNAPSHOT_INCONSISTENT');
    for (const f of fragments) assert.ok(err.message.includes(f), `message lacks ${JSON.stringify(f)}: ${err.message}`);
    return true;
  });
}

test('each resource is encoded once as an Any with the exact type URL', () => {
  const s = buildSnapshot(resourceSet());
  const anyType = messageType('google.protobuf.Any');
  for (const t of TYPE_ORDER) {
    const ts = s.type(t);
    assert.ok(ts.list.length > 0);
    for (const r of ts.list) {
      const any = anyType.decode(r.bytes) as unknown as { type_url: string; value: Uint8Array };
      assert.equal(any.type_url, t);
      const decoded = messageType(t.slice(t.lastIndexOf('/') + 1)).decode(any.value) as unknown as Record<string, unknown>;
      assert.equal(decoded[t === TypeUrl.ClusterLoadAssignment ? 'cluster_name' : 'name'], r.name);
      assert.match(r.version, /^[0-9a-f]{16}$/);
      assert.equal(ts.resources.get(r.name), r);
    }
  }
  assert.deepEqual(s.names(TypeUrl.Cluster), ['c0', 'c1']);
  // The nested HCM Any is shown expanded, with its '@type', for config_dump.
  const hcm = (s.type(TypeUrl.Listener).list[0]!.object.filter_chains as Array<{ filters: Array<{ typed_config: Record<string, unknown> }> }>)[0]?.filters[0]
    ?.typed_config;
  assert.equal(hcm?.['@type'], HCM_TYPE);
  assert.equal(hcm?.stat_prefix, 'http');
});

test('versions are content hashes: identical input, identical versions; input order does not matter', () => {
  const a = buildSnapshot(resourceSet({ clusters: 5 }));
  const set = resourceSet({ clusters: 5 });
  const b = buildSnapshot({ ...set, clusters: [...set.clusters].reverse(), endpoints: [...set.endpoints].reverse() });
  assert.deepEqual(a.versions(), b.versions());
  assert.equal(a.version(), b.version());
  assert.deepEqual(b.names(TypeUrl.Cluster), ['c0', 'c1', 'c2', 'c3', 'c4']);
  for (const t of TYPE_ORDER) {
    for (const r of a.type(t).list) assert.equal(b.type(t).resources.get(r.name)?.version, r.version);
  }
});

test('an unchanged type keeps its version; a changed resource changes only its own version', () => {
  const a = buildSnapshot(resourceSet({ clusters: 3 }));
  const set = resourceSet({ clusters: 3 });
  const b = buildSnapshot({ ...set, endpoints: set.endpoints.map((e, i) => (i === 1 ? cla('c1', [['127.0.0.2', 9000]]) : e)) });
  assert.equal(b.version(TypeUrl.Cluster), a.version(TypeUrl.Cluster));
  assert.equal(b.version(TypeUrl.Listener), a.version(TypeUrl.Listener));
  assert.equal(b.version(TypeUrl.RouteConfiguration), a.version(TypeUrl.RouteConfiguration));
  assert.notEqual(b.version(TypeUrl.ClusterLoadAssignment), a.version(TypeUrl.ClusterLoadAssignment));
  assert.notEqual(b.version(), a.version());
  const ea = a.type(TypeUrl.ClusterLoadAssignment).resources;
  const eb = b.type(TypeUrl.ClusterLoadAssignment).resources;
  assert.equal(eb.get('c0')?.version, ea.get('c0')?.version);
  assert.equal(eb.get('c2')?.version, ea.get('c2')?.version);
  assert.notEqual(eb.get('c1')?.version, ea.get('c1')?.version);
});

test('a nested Any with an unknown @type is refused, naming resource and field', () => {
  const set = resourceSet();
  const bad = httpListener('http', 10000, 'routes') as { filter_chains: Array<{ filters: Array<{ typed_config: Record<string, unknown> }> }> };
  const filter = bad.filter_chains[0]?.filters[0];
  assert.ok(filter);
  filter.typed_config = {
    ...filter.typed_config,
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManagr',
  };
  throwsSnapshotError(
    () => buildSnapshot({ ...set, listeners: [bad] }),
    "listener 'http'",
    'filter_chains[0].filters[0].typed_config',
    'HttpConnectionManagr',
    'empty Any',
  );
});

test('an unknown @type deeper inside a packed Any is found too', () => {
  const set = resourceSet();
  const l = httpListener('http', 10000, 'routes') as {
    filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: Array<{ typed_config: Record<string, unknown> }> } }> }>;
  };
  const router = l.filter_chains[0]?.filters[0]?.typed_config.http_filters[0];
  assert.ok(router);
  router.typed_config = { '@type': 'type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope' };
  throwsSnapshotError(() => buildSnapshot({ ...set, listeners: [l] }), "listener 'http'", 'typed_config.http_filters[0].typed_config', 'nope.v3.Nope');
});

test('an Any without @type is refused', () => {
  const set = resourceSet();
  const l = { name: 'raw', filter_chains: [{ filters: [{ name: 'x', typed_config: { stat_prefix: 'x' } }] }] };
  throwsSnapshotError(() => buildSnapshot({ ...set, listeners: [...set.listeners, l] }), "listener 'raw'", 'empty google.protobuf.Any');
});

test('consistency: every missing reference is named with who references it', () => {
  const base = resourceSet();
  throwsSnapshotError(
    () =>
      buildSnapshot({
        ...base,
        routes: [
          routeConfig('routes', [
            {
              prefix: '/a',
              weighted: [
                ['c0', 50],
                ['ghost', 50],
              ],
            },
            { prefix: '/', cluster: 'c1', mirror: 'shadow' },
          ]),
        ],
      }),
    "route configuration 'routes' virtual_hosts[0].routes[0].route.weighted_clusters.clusters[1].name references cluster 'ghost'",
    "virtual_hosts[0].routes[1].route.request_mirror_policies[0].cluster references cluster 'shadow'",
  );
  throwsSnapshotError(
    () => buildSnapshot({ ...base, routes: [routeConfig('routes', [{ prefix: '/', cluster: 'nowhere' }])] }),
    "route.cluster references cluster 'nowhere', which is not in CDS",
  );
  throwsSnapshotError(
    () => buildSnapshot({ ...base, listeners: [httpListener('http', 10000, 'other-routes')] }),
    "listener 'http' filter_chains[0].filters[0].typed_config.rds.route_config_name references route configuration 'other-routes', which is not in RDS",
  );
  throwsSnapshotError(
    () => buildSnapshot({ ...base, endpoints: base.endpoints.slice(0, 1) }),
    "cluster 'c1' (type EDS) needs cluster load assignment 'c1', which is not in EDS",
  );
  throwsSnapshotError(
    () => buildSnapshot({ ...base, clusters: [edsCluster('c0'), edsCluster('c1', { serviceName: 'svc-1' })] }),
    "cluster 'c1' (type EDS) needs cluster load assignment 'svc-1'",
  );
  const tcp = {
    name: 'mongo',
    filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'mongo', cluster: 'mongo-db' } }] }],
  };
  throwsSnapshotError(
    () => buildSnapshot({ ...base, listeners: [...base.listeners, tcp] }),
    "listener 'mongo' filter_chains[0].filters[0].typed_config.cluster references cluster 'mongo-db'",
  );
});

test('a consistent snapshot records what each Cluster and Listener warms', () => {
  const set: XdsResourceSet = {
    clusters: [edsCluster('web', { serviceName: 'web-svc' }), { name: 'static', type: 'STATIC', connect_timeout: { seconds: 1 } }],
    endpoints: [cla('web-svc')],
    listeners: [httpListener('http', 10000, 'routes')],
    routes: [routeConfig('routes', [{ prefix: '/', cluster: 'web', mirror: 'static' }])],
  };
  const s = buildSnapshot(set);
  assert.deepEqual(s.type(TypeUrl.Cluster).resources.get('web')?.warms, ['web-svc']);
  assert.deepEqual(s.type(TypeUrl.Cluster).resources.get('static')?.warms, []);
  assert.deepEqual(s.type(TypeUrl.Listener).resources.get('http')?.warms, ['routes']);
});

test('duplicate and empty names are refused', () => {
  const base = resourceSet();
  throwsSnapshotError(() => buildSnapshot({ ...base, clusters: [...base.clusters, edsCluster('c0')] }), "cluster 'c0' is defined twice");
  throwsSnapshotError(
    () => buildSnapshot({ ...base, endpoints: [...base.endpoints, { endpoints: [] }] }),
    "cluster load assignment #2: 'cluster_name' must be a non-empty string",
  );
});

test('a snapshot is immutable', () => {
  const s = buildSnapshot(resourceSet());
  assert.ok(Object.isFrozen(s));
  const ts = s.type(TypeUrl.Cluster);
  assert.ok(Object.isFrozen(ts));
  assert.ok(Object.isFrozen(ts.list));
  assert.throws(() => (ts.resources as Map<string, unknown>).set('x', {}), TypeError);
  assert.throws(() => (ts.resources as Map<string, unknown>).delete('c0'), TypeError);
  const r = ts.list[0];
  assert.ok(r && Object.isFrozen(r) && Object.isFrozen(r.object));
  assert.ok(Object.isFrozen(r.object.eds_cluster_config));
  assert.throws(() => {
    (r.object as Record<string, unknown>).name = 'changed';
  }, TypeError);
});

test('toJSON lists every type with versions and plain resources', () => {
  const s = buildSnapshot(resourceSet());
  const json = JSON.parse(JSON.stringify(s)) as {
    version: string;
    types: Record<string, { type_url: string; version: string; resources: Array<{ name: string; version: string; resource: Record<string, unknown> }> }>;
  };
  assert.equal(json.version, s.version());
  assert.deepEqual(Object.keys(json.types), ['CDS', 'EDS', 'LDS', 'RDS']);
  assert.equal(json.types.CDS?.type_url, TypeUrl.Cluster);
  assert.equal(json.types.CDS?.version, s.version(TypeUrl.Cluster));
  assert.deepEqual(
    json.types.CDS?.resources.map((r) => r.name),
    ['c0', 'c1'],
  );
  assert.equal(json.types.CDS?.resources[0]?.resource.type, 'EDS');
  assert.deepEqual(json.types.RDS?.resources[0]?.resource.name, 'routes');
});

test('an empty resource set is a valid snapshot with stable versions', () => {
  const empty = { clusters: [], endpoints: [], listeners: [], routes: [] };
  const a = buildSnapshot(empty);
  assert.deepEqual(a.versions(), buildSnapshot(empty).versions());
  assert.deepEqual(a.names(TypeUrl.Listener), []);
});
