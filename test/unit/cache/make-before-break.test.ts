/**
 * Make before break over real gRPC with the raw ADS client: a removed Cluster (and its
 * ClusterLoadAssignment) stays in CDS until the RDS without it is ACKed or NACKed, a removed
 * RouteConfiguration until the LDS without it is; a stream that never answers holds them at most
 * the timeout, one that disconnects no longer counts; a newer snapshot meanwhile neither loses a
 * removal nor brings one back; additions go CDS -> EDS, then routes naming the new cluster in a
 * route no call matches, then the routes as set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot } from '../../../src/cache/snapshot.js';
import { MakeBeforeBreak } from '../../../src/cache/make-before-break.js';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import type { XdsResourceSet } from '../../../src/xds/resources.js';
import type { AdsStream } from '../../support/ads-client.js';
import { ackUntilUpToDate, eventually, startXds, type XdsHarness } from '../../support/xds-harness.js';
import { httpListener, resourceSet, routeConfig } from '../../support/xds-fixtures.js';

const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;

async function setup(t: { after(fn: () => unknown): void }, set: XdsResourceSet, timeoutMs = 10_000) {
  const h = await startXds({ set });
  const mbb = new MakeBeforeBreak({ cache: h.cache, progress: h.server.registry, timeoutMs });
  t.after(async () => {
    mbb.close();
    await h.close();
  });
  const publish = (s: XdsResourceSet) => mbb.set('default', buildSnapshot(s));
  return { h, mbb, publish };
}

/** An Envoy-like ADS stream: wildcard CDS and LDS, EDS for c0..c{n-1}, RDS 'routes'; ACKed up to date. */
async function envoyLike(h: XdsHarness, id: string, clusters: number): Promise<AdsStream> {
  const s = h.stream({ node: { id, cluster: 'web' } });
  s.subscribe(CDS);
  s.subscribe(
    EDS,
    Array.from({ length: clusters }, (_, i) => `c${i}`),
  );
  s.subscribe(LDS);
  s.subscribe(RDS, ['routes']);
  await ackUntilUpToDate(h, s, id, 4);
  return s;
}

const names = (h: XdsHarness, type: string) => h.cache.get('default')?.names(type as typeof CDS) ?? [];

interface RouteJson {
  readonly match?: { readonly prefix?: string; readonly runtime_fraction?: unknown };
  readonly route?: { readonly cluster?: string; readonly weighted_clusters?: { readonly clusters?: ReadonlyArray<{ readonly name?: string }> } };
}

/** The routes of the first RouteConfiguration of an RDS response: prefix (or the naming match) and clusters. */
function routesOf(r: { readonly resources: ReadonlyArray<{ readonly object?: unknown }> }): unknown[] {
  const rc = r.resources[0]?.object as { virtual_hosts?: Array<{ routes?: RouteJson[] }> } | undefined;
  return (rc?.virtual_hosts?.[0]?.routes ?? []).map((x) => ({
    ...(x.match?.runtime_fraction === undefined ? { prefix: x.match?.prefix } : { never: x.match.runtime_fraction }),
    clusters: x.route?.cluster !== undefined ? [x.route.cluster] : (x.route?.weighted_clusters?.clusters ?? []).map((c) => c.name),
  }));
}

/** The route make before break adds to name a new cluster before calls go to it: a 0% runtime fraction. */
const NAMING = (cluster: string) => ({
  never: { default_value: { numerator: 0, denominator: 'HUNDRED' }, runtime_key: 'consul_xds.make_before_break' },
  clusters: [cluster],
});

test('a removed cluster stays in CDS until the routes without it are ACKed, then goes', async (t) => {
  const { h, mbb, publish } = await setup(t, resourceSet({ clusters: 2 }));
  const s = await envoyLike(h, 'envoy-1', 2);

  publish(resourceSet({ clusters: 1 })); // routes stop naming c1, c1 is removed
  const routes = await s.next();
  assert.equal(routes.typeUrl, RDS, 'the routes without c1 go first');
  assert.doesNotMatch(JSON.stringify(routes.resources[0]?.object), /"c1"/);
  assert.deepEqual(names(h, CDS), ['c0', 'c1'], 'c1 is still served');
  assert.deepEqual(names(h, EDS), ['c0', 'c1'], "so is c1's assignment");
  await s.expectSilence(200);
  const [pending] = mbb.pending();
  assert.equal(pending?.stage, 'break');
  assert.deepEqual(pending?.held, { CDS: ['c1'], EDS: ['c1'] });
  assert.deepEqual(
    pending?.waitingFor.map((w) => [w.nodeId, w.types]),
    [['envoy-1', ['RDS']]],
  );

  s.ack(routes);
  const clusters = await s.next();
  assert.equal(clusters.typeUrl, CDS);
  assert.deepEqual(clusters.names, ['c0'], 'c1 goes once the routes are ACKed');
  s.ack(clusters);
  assert.deepEqual(names(h, EDS), ['c0']);
  assert.deepEqual(mbb.pending(), []);
});

test('a NACK of the new routes releases the removal too', async (t) => {
  const { h, mbb, publish } = await setup(t, resourceSet({ clusters: 2 }));
  const s = await envoyLike(h, 'envoy-1', 2);
  publish(resourceSet({ clusters: 1 }));
  const routes = await s.next();
  assert.equal(routes.typeUrl, RDS);
  s.nack(routes, 'route rejected');
  const clusters = await s.next();
  assert.equal(clusters.typeUrl, CDS);
  assert.deepEqual(clusters.names, ['c0']);
  assert.deepEqual(mbb.pending(), []);
});

test('every stream of the group must answer; one that disconnects no longer counts', async (t) => {
  const { h, mbb, publish } = await setup(t, resourceSet({ clusters: 2 }));
  const a = await envoyLike(h, 'envoy-a', 2);
  const b = await envoyLike(h, 'envoy-b', 2);
  publish(resourceSet({ clusters: 1 }));
  const ra = await a.next();
  const rb = await b.next();
  assert.equal(ra.typeUrl, RDS);
  assert.equal(rb.typeUrl, RDS);
  a.ack(ra);
  await a.expectSilence(200);
  assert.deepEqual(
    mbb.pending()[0]?.waitingFor.map((w) => w.nodeId),
    ['envoy-b'],
  );
  b.cancel();
  const clusters = await a.next();
  assert.deepEqual(clusters.names, ['c0']);
});

test('a stream that never answers holds the removal only until the timeout', async (t) => {
  const { h, mbb, publish } = await setup(t, resourceSet({ clusters: 2 }), 300);
  const s = await envoyLike(h, 'envoy-1', 2);
  const t0 = Date.now();
  publish(resourceSet({ clusters: 1 }));
  assert.equal((await s.next()).typeUrl, RDS);
  // Not answered: RDS stays in flight, so nothing more is sent on this stream, but the cache moves on.
  await eventually(() => mbb.pending().length === 0, 3_000, 'the timeout');
  assert.ok(Date.now() - t0 >= 250, 'not before the timeout');
  assert.deepEqual(names(h, CDS), ['c0']);
});

test('with nothing connected, or routes nobody holds, removals go at once', async (t) => {
  const { h, mbb, publish } = await setup(t, resourceSet({ clusters: 2 }));
  publish(resourceSet({ clusters: 1 }));
  assert.deepEqual(names(h, CDS), ['c0']);
  assert.deepEqual(mbb.pending(), []);
});

test('a newer snapshot while waiting: no removal lost, none brought back, a re-added cluster is its own', async (t) => {
  const { h, mbb, publish } = await setup(t, resourceSet({ clusters: 2 }));
  const s = await envoyLike(h, 'envoy-1', 2);
  publish(resourceSet({ clusters: 1 })); // c1 held
  const r2 = await s.next();
  assert.equal(r2.typeUrl, RDS);
  // Before the ACK, a newer config that changes the route again and still lacks c1.
  publish({ ...resourceSet({ clusters: 1 }), routes: [routeConfig('routes', [{ prefix: '/v2', cluster: 'c0' }])] });
  assert.deepEqual(mbb.pending()[0]?.held, { CDS: ['c1'], EDS: ['c1'] }, 'c1 is still held');
  s.ack(r2);
  const r3 = await s.next();
  assert.equal(r3.typeUrl, RDS, 'the newer routes, still before the removal');
  assert.match(JSON.stringify(r3.resources[0]?.object), /\/v2/);
  s.ack(r3);
  const r4 = await s.next();
  assert.equal(r4.typeUrl, CDS);
  assert.deepEqual(r4.names, ['c0']);
  s.ack(r4);
  await s.expectSilence(200);
  assert.deepEqual(names(h, CDS), ['c0'], 'not brought back');

  // c1 back (weight N again): make first, the cluster and its assignment go out, the routes
  // naming it only once both are ACKed: first a route no call matches, then the routes as set.
  publish(resourceSet({ clusters: 2 }));
  assert.equal(mbb.pending()[0]?.stage, 'make');
  const cds = await s.next();
  const eds = await s.next();
  assert.deepEqual([cds.typeUrl, cds.names], [CDS, ['c0', 'c1']]);
  assert.deepEqual([eds.typeUrl, eds.names], [EDS, ['c1']], 'the new cluster warms');
  await s.expectSilence(200);
  s.ack(cds);
  await s.expectSilence(200);
  s.ack(eds);
  const naming = await s.next();
  assert.equal(naming.typeUrl, RDS);
  assert.deepEqual(routesOf(naming), [{ prefix: '/v2', clusters: ['c0'] }, NAMING('c1')], 'c1 named by a route no call takes');
  assert.equal(mbb.pending()[0]?.stage, 'make');
  await s.expectSilence(200);
  s.ack(naming);
  const rds = await s.next();
  assert.equal(rds.typeUrl, RDS);
  assert.match(JSON.stringify(rds.resources[0]?.object), /"c1"/);
  assert.deepEqual(routesOf(rds), [
    { prefix: '/api', clusters: ['c0', 'c1'] },
    { prefix: '/', clusters: ['c0'] },
  ]);
  assert.deepEqual(mbb.pending(), []);
});

test('a re-added cluster while its removal is held is served as the new snapshot has it', async (t) => {
  const { h, mbb, publish } = await setup(t, resourceSet({ clusters: 2 }));
  const s = await envoyLike(h, 'envoy-1', 2);
  publish(resourceSet({ clusters: 1 }));
  assert.equal((await s.next()).typeUrl, RDS);
  publish(resourceSet({ clusters: 2, connectTimeoutS: 3 })); // c1 back, changed
  // c1 is in CDS (held) but no route named it: the routes name it first where no call goes.
  assert.deepEqual(
    mbb.pending().map((p) => [p.stage, p.held]),
    [['make', {}]],
    'nothing is held any more',
  );
  assert.deepEqual(h.cache.get('default')?.type(CDS).resources.get('c1')?.object.connect_timeout, { seconds: 3 });
});

test('a removed route configuration stays until the listeners without it are ACKed', async (t) => {
  const two: XdsResourceSet = {
    ...resourceSet({ clusters: 1 }),
    listeners: [httpListener('http', 10000, 'routes'), httpListener('admin', 10001, 'admin-routes')],
    routes: [routeConfig('routes', [{ prefix: '/', cluster: 'c0' }]), routeConfig('admin-routes', [{ prefix: '/', cluster: 'c0' }])],
  };
  const { h, mbb, publish } = await setup(t, two);
  const s = h.stream({ node: { id: 'envoy-1' } });
  s.subscribe(CDS);
  s.subscribe(EDS, ['c0']);
  s.subscribe(LDS);
  s.subscribe(RDS, ['admin-routes', 'routes']);
  await ackUntilUpToDate(h, s, 'envoy-1', 4);

  publish(resourceSet({ clusters: 1 })); // listener 'admin' and its routes go
  const listeners = await s.next();
  assert.equal(listeners.typeUrl, LDS);
  assert.deepEqual(listeners.names, ['http']);
  assert.deepEqual(names(h, RDS), ['admin-routes', 'routes'], 'admin-routes held while LDS is unanswered');
  assert.deepEqual(mbb.pending()[0]?.held, { RDS: ['admin-routes'] });
  s.ack(listeners);
  await eventually(() => mbb.pending().length === 0, 2_000, 'the release');
  assert.deepEqual(names(h, RDS), ['routes']);
});
