/**
 * SotW protocol over real gRPC (loopback): ACK, NACK (recorded, not re-sent, later version sent),
 * stale nonces, subscription changes, resubscribe, named RDS/EDS answered even when empty,
 * warming (CLA re-sent after a Cluster change), CDS -> EDS -> LDS -> RDS order (one change's
 * responses written back to back, no ACK awaited in between; a type blocked on its ACK holds back
 * later ones), EDS subscriptions that follow a CDS update, wildcard and named full-state
 * subscriptions, per-type services; the fallback write path through grpc-js.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import type { XdsResourceSet } from '../../../src/xds/resources.js';
import { TYPE_METHOD } from '../../support/ads-client.js';
import { ackUntilUpToDate, eventually, startXds } from '../../support/xds-harness.js';
import { cla, edsCluster, httpListener, resourceSet, routeConfig } from '../../support/xds-fixtures.js';

const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;

test('wildcard CDS gets the full set; an ACK is recorded and gets no reply', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(CDS);
  const r = await s.next();
  assert.equal(r.typeUrl, CDS);
  assert.deepEqual(r.names, ['c0', 'c1', 'c2']);
  assert.equal(r.versionInfo, h.cache.get('default')?.version(CDS));
  assert.notEqual(r.nonce, '');
  s.ack(r);
  await s.expectSilence();
  const st = h.server.registry.list()[0]?.types[0];
  assert.equal(st?.ackedVersion, r.versionInfo);
  assert.equal(st?.wildcard, true);
  assert.equal(st?.pendingNonce, undefined);

  // Full set every time: adding a cluster re-sends all of them; removing one leaves it out.
  h.publish(resourceSet({ clusters: 4 }));
  const r2 = await s.next();
  assert.deepEqual(r2.names, ['c0', 'c1', 'c2', 'c3']);
  assert.notEqual(r2.nonce, r.nonce);
  s.ack(r2);
  h.publish(resourceSet({ clusters: 2 }));
  const r3 = await s.next();
  assert.deepEqual(r3.names, ['c0', 'c1']);
});

test("'*' is a wildcard too, and an unchanged type is never pushed", async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(LDS, ['*']);
  const r = await s.next();
  assert.deepEqual(r.names, ['http']);
  s.ack(r);
  h.publish(resourceSet({ basePort: 9100 })); // only endpoints change
  await s.expectSilence();
});

test('NACK: recorded and logged once, the rejected version is not re-sent, a later version is', async (t) => {
  const lines: string[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  const h = await startXds({ set: resourceSet(), logger });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(CDS);
  const good = await s.next();
  s.ack(good);

  h.publish(resourceSet({ connectTimeoutS: 5 }));
  const bad = await s.next();
  assert.notEqual(bad.versionInfo, good.versionInfo);
  s.nack(bad, 'cluster c0: bad connect_timeout');
  await s.expectSilence(250); // not re-sent, no loop
  // The client retries the same NACK (grpc clients repeat error_detail): still no reply, logged once.
  s.nack(bad, 'cluster c0: bad connect_timeout');
  await s.expectSilence();

  const status = h.server.registry.nodeStatus('node-1');
  assert.ok(status);
  assert.equal(status.nacked, true);
  assert.equal(status.upToDate, false);
  const cds = status.types.CDS;
  assert.equal(cds?.lastResponseNacked, true);
  assert.equal(cds?.ackedVersion, good.versionInfo);
  assert.equal(cds?.sentVersion, bad.versionInfo);
  assert.equal(cds?.lastNack?.version, bad.versionInfo);
  assert.equal(cds?.lastNack?.message, 'cluster c0: bad connect_timeout');
  assert.equal(cds?.lastNack?.code, 13);
  assert.ok(cds?.lastNack && Date.parse(cds.lastNack.at) > Date.now() - 10_000);
  await eventually(() => lines.length > 0, 1_000, 'NACK log line');
  const nackLines = lines.filter((l) => l.includes('NACK'));
  assert.equal(nackLines.length, 1, lines.join('\n'));
  assert.match(nackLines[0] ?? '', /bad connect_timeout/);
  assert.match(nackLines[0] ?? '', /"node":"node-1"/);

  // Republishing the rejected content sends nothing either.
  h.publish(resourceSet({ connectTimeoutS: 5 }));
  await s.expectSilence();

  // A newer version goes out, and its ACK clears the NACK state.
  h.publish(resourceSet({ connectTimeoutS: 2 }));
  const fixed = await s.next();
  assert.notEqual(fixed.versionInfo, bad.versionInfo);
  assert.notEqual(fixed.versionInfo, good.versionInfo);
  s.ack(fixed);
  await eventually(() => h.server.registry.nodeStatus('node-1')?.nacked === false, 1_000, 'NACK cleared');
  assert.equal(h.server.registry.nodeStatus('node-1')?.upToDate, true);
  assert.equal(h.server.registry.nodeStatus('node-1')?.types.CDS?.lastNack?.version, bad.versionInfo);
});

test('NACKed EDS: rejected CLAs are not re-sent, but newly subscribed names are answered', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(EDS, ['c0', 'c1']);
  const first = await s.next();
  assert.deepEqual(first.names, ['c0', 'c1']);
  s.ack(first);
  h.publish(resourceSet({ clusters: 3, basePort: 9200 }));
  const bad = await s.next();
  assert.deepEqual(bad.names, ['c0', 'c1']);
  s.nack(bad, 'c0: bad endpoint');
  await s.expectSilence();
  // Same nonce, a new name: only the new name is sent (at the current version).
  s.nack(bad, 'c0: bad endpoint', ['c0', 'c1', 'c2']);
  const added = await s.next();
  assert.deepEqual(added.names, ['c2']);
  s.ack(added);
  await s.expectSilence();
});

test('stale nonces are ignored (ACK, NACK and subscription changes alike); the latest nonce may change names', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(EDS, ['c0']);
  const r1 = await s.next();
  s.ack(r1);
  h.publish(resourceSet({ clusters: 3, basePort: 9300 }));
  const r2 = await s.next();
  assert.deepEqual(r2.names, ['c0']);

  s.send({ typeUrl: EDS, resourceNames: ['c0', 'c1'], versionInfo: r1.versionInfo, responseNonce: r1.nonce });
  s.send({ typeUrl: EDS, resourceNames: ['c0'], versionInfo: r1.versionInfo, responseNonce: r1.nonce, errorDetail: { code: 13, message: 'stale' } });
  await s.expectSilence();
  const st = h.server.registry.nodeStatus('node-1')?.types.EDS;
  assert.equal(st?.pendingNonce, r2.nonce);
  assert.equal(st?.lastNack, undefined);
  assert.deepEqual(st?.names, ['c0']);
  assert.ok(h.server.stats.stale >= 2);

  // With the latest nonce: ACK of r2 and a new subscription in the same request.
  s.ack(r2, ['c0', 'c1']);
  const r3 = await s.next();
  assert.deepEqual(r3.names, ['c1']);
  assert.equal(r3.versionInfo, r2.versionInfo);
});

test('unsubscribe then resubscribe sends the resource again, unchanged', async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(EDS, ['c0', 'c1']);
  const r1 = await s.next();
  s.ack(r1);
  s.ack(r1, ['c0']);
  await s.expectSilence();
  s.ack(r1, ['c0', 'c1']);
  const r2 = await s.next();
  assert.deepEqual(r2.names, ['c1']);
  assert.equal(r2.versionInfo, r1.versionInfo);
});

test('named RDS/EDS are answered promptly even when nothing exists', async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(EDS, ['missing']);
  const r = await s.next(1_000);
  assert.equal(r.typeUrl, EDS);
  assert.equal(r.resources.length, 0);
  assert.equal(r.versionInfo, h.cache.get('default')?.version(EDS));
  s.ack(r, ['missing', 'c1']);
  const r2 = await s.next(1_000);
  assert.deepEqual(r2.names, ['c1']);
  s.ack(r2);
  s.subscribe(RDS, ['nope', 'routes']);
  const r3 = await s.next(1_000);
  assert.deepEqual(r3.names, ['routes']);
  s.ack(r3, ['nope', 'routes', 'also-missing']);
  const r4 = await s.next(1_000);
  assert.deepEqual(r4.resources, []);
});

test('a Cluster change re-sends its (unchanged) ClusterLoadAssignment, after CDS', async (t) => {
  const base = resourceSet({ clusters: 3 });
  const h = await startXds({ set: base });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(CDS);
  const c1 = await s.next();
  s.ack(c1);
  s.subscribe(EDS, ['c0', 'c1', 'c2']);
  const e1 = await s.next();
  s.ack(e1);
  await s.expectSilence();

  // c1's cluster changes, no CLA does.
  const changed: XdsResourceSet = { ...base, clusters: base.clusters.map((c) => (c.name === 'c1' ? edsCluster('c1', { connectTimeoutS: 7 }) : c)) };
  h.publish(changed);
  const c2 = await s.next();
  assert.equal(c2.typeUrl, CDS);
  const e2 = await s.next();
  assert.equal(e2.typeUrl, EDS);
  assert.deepEqual(e2.names, ['c1']);
  assert.equal(e2.versionInfo, e1.versionInfo); // same EDS version, re-sent for warming
  s.ack(c2);
  s.ack(e2);
  await s.expectSilence();
});

test('a Listener change re-sends its RouteConfiguration', async (t) => {
  const base = resourceSet();
  const h = await startXds({ set: base });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(LDS);
  s.ack(await s.next());
  s.subscribe(RDS, ['routes']);
  const r1 = await s.next();
  s.ack(r1);
  const l = httpListener('http', 10001, 'routes');
  h.publish({ ...base, listeners: [l] });
  const l2 = await s.next();
  assert.equal(l2.typeUrl, LDS);
  const r2 = await s.next();
  assert.equal(r2.typeUrl, RDS);
  assert.deepEqual(r2.names, ['routes']);
  assert.equal(r2.versionInfo, r1.versionInfo);
});

test('changes go out in order CDS -> EDS -> LDS -> RDS; a type whose next response waits for its ACK holds back later types', async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const s = h.stream();
  // Subscribe in reverse order on purpose; ACK whatever comes (warming may re-send RDS) until quiet.
  s.subscribe(RDS, ['routes']);
  s.subscribe(LDS);
  s.subscribe(EDS, ['c0', 'c1', 'c2']);
  s.subscribe(CDS);
  await ackUntilUpToDate(h, s, 'node-1', 4);
  await s.expectSilence(100);

  const everything = (n: number, port: number, timeout: number, weight: number): XdsResourceSet => {
    const set = resourceSet({ clusters: n, basePort: port, connectTimeoutS: timeout, apiWeight: weight });
    return { ...set, listeners: [httpListener('http', 10000 + timeout, 'routes')] };
  };
  h.publish(everything(3, 9400, 3, 70));
  const batch1 = [await s.next(), await s.next(), await s.next(), await s.next()];
  assert.deepEqual(
    batch1.map((r) => r.typeUrl),
    [CDS, EDS, LDS, RDS],
  );
  // ACK all but CDS, then change everything again: all four wait for CDS.
  for (const r of batch1.slice(1)) s.ack(r);
  await s.expectSilence(100);
  h.publish(everything(3, 9500, 4, 60));
  await s.expectSilence();
  const cdsState = h.server.registry.nodeStatus('node-1')?.types.CDS;
  assert.equal(cdsState?.upToDate, false);
  const first = batch1[0];
  assert.ok(first);
  s.ack(first);
  const batch2 = [await s.next(), await s.next(), await s.next(), await s.next()];
  assert.deepEqual(
    batch2.map((r) => r.typeUrl),
    [CDS, EDS, LDS, RDS],
  );
  assert.equal(batch2[0]?.versionInfo, h.cache.get('default')?.version(CDS));
});

for (const directWrites of [true, false]) {
  test(`one change goes out at once: CDS, the EDS warming re-send, RDS, in order, before any ACK (${directWrites ? 'direct' : 'grpc-js'} writes)`, async (t) => {
    const h = await startXds({ set: resourceSet({ clusters: 3 }), directWrites });
    t.after(() => h.close());
    const s = h.stream();
    s.subscribe(CDS);
    s.subscribe(EDS, ['c0', 'c1', 'c2']);
    s.subscribe(LDS);
    s.subscribe(RDS, ['routes']);
    await ackUntilUpToDate(h, s, 'node-1', 4);
    await s.expectSilence(100);
    const edsVersion = h.cache.get('default')?.version(EDS);

    // Every Cluster and the routes change; the CLAs and the Listener do not.
    h.publish(resourceSet({ clusters: 3, connectTimeoutS: 4, apiWeight: 40 }));
    const got = [await s.next(), await s.next(), await s.next()];
    assert.deepEqual(
      got.map((r) => r.typeUrl),
      [CDS, EDS, RDS],
    );
    const [cds, eds, rds] = got;
    assert.ok(cds && eds && rds);
    assert.equal(eds.versionInfo, edsVersion, 'unchanged CLAs, re-sent for warming');
    assert.deepEqual(eds.names, ['c0', 'c1', 'c2']);
    // All three are in flight together: none waited for the ACK of the one before it.
    const pending = Object.fromEntries((h.server.registry.list()[0]?.types ?? []).map((x) => [x.type, x.pendingNonce]));
    assert.deepEqual(pending, { CDS: cds.nonce, EDS: eds.nonce, LDS: undefined, RDS: rds.nonce });
    for (const r of got) s.ack(r);
    await s.expectSilence();
    const stats = h.server.stats;
    assert.ok(directWrites ? stats.directWrites > 0 && stats.grpcWrites === 0 : stats.grpcWrites > 0 && stats.directWrites === 0);
  });
}

test('a Cluster changed together with its CLA: one EDS response carries the new CLA and ends warming', async (t) => {
  const base = resourceSet({ clusters: 3 });
  const h = await startXds({ set: base });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(CDS);
  s.subscribe(EDS, ['c0', 'c1', 'c2']);
  await ackUntilUpToDate(h, s, 'node-1', 2);
  const oldEds = h.cache.get('default')?.version(EDS);
  h.publish({
    ...base,
    clusters: base.clusters.map((c) => (c.name === 'c1' ? edsCluster('c1', { connectTimeoutS: 6 }) : c)),
    endpoints: base.endpoints.map((e) => (e.cluster_name === 'c1' ? cla('c1', [['127.0.0.1', 9911]]) : e)),
  });
  const c2 = await s.next();
  assert.equal(c2.typeUrl, CDS);
  const e2 = await s.next();
  assert.equal(e2.typeUrl, EDS);
  assert.deepEqual(e2.names, ['c1']);
  assert.notEqual(e2.versionInfo, oldEds);
  assert.equal(e2.versionInfo, h.cache.get('default')?.version(EDS));
  s.ack(c2);
  s.ack(e2);
  await s.expectSilence(); // no second EDS response for the same change
});

test('a new cluster: the EDS subscription sent after CDS (before its ACK) is answered at once', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 2 }) });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(CDS);
  s.subscribe(EDS, ['c0', 'c1']);
  await ackUntilUpToDate(h, s, 'node-1', 2);
  h.publish(resourceSet({ clusters: 3 })); // c2 is new; c0 and c1 are unchanged
  const cds = await s.next();
  assert.deepEqual(cds.names, ['c0', 'c1', 'c2']);
  await s.expectSilence(100); // nothing to re-send: no existing cluster changed
  // Like Envoy: the new cluster asks for its CLA before the CDS ACK goes out.
  s.subscribe(EDS, ['c0', 'c1', 'c2']);
  const eds = await s.next(1_000);
  assert.deepEqual(eds.names, ['c2']);
  assert.equal(h.server.registry.list()[0]?.types.find((x) => x.type === 'CDS')?.pendingNonce, cds.nonce, 'CDS still unACKed');
  s.ack(cds);
  s.ack(eds);
  await s.expectSilence();
});

test('a new cluster while the warming re-send is in flight: the stale request is ignored, the ACK after it is answered', async (t) => {
  const base = resourceSet({ clusters: 2 });
  const h = await startXds({ set: base });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(CDS);
  s.subscribe(EDS, ['c0', 'c1']);
  await ackUntilUpToDate(h, s, 'node-1', 2);
  const e1 = s.received.filter((r) => r.typeUrl === EDS).at(-1);
  assert.ok(e1);
  // c0 changes (so its CLA is re-sent) and c2 is new.
  const next = resourceSet({ clusters: 3 });
  h.publish({ ...next, clusters: next.clusters.map((c) => (c.name === 'c0' ? edsCluster('c0', { connectTimeoutS: 8 }) : c)) });
  const cds = await s.next();
  const eds = await s.next();
  assert.equal(cds.typeUrl, CDS);
  assert.deepEqual(eds.names, ['c0']);
  // The client handled CDS before the EDS response: its new subscription echoes the older nonce.
  s.send({ typeUrl: EDS, resourceNames: ['c0', 'c1', 'c2'], versionInfo: e1.versionInfo, responseNonce: e1.nonce });
  await s.expectSilence(100);
  // Its ACK of the re-send repeats the subscription with the latest nonce: c2 goes out.
  s.ack(cds);
  s.ack(eds, ['c0', 'c1', 'c2']);
  const e3 = await s.next(1_000);
  assert.deepEqual(e3.names, ['c2']);
  s.ack(e3);
  await s.expectSilence();
});

test('named LDS/CDS (how gRPC clients subscribe) get every subscribed resource that exists, every time', async (t) => {
  const base = resourceSet({ clusters: 3 });
  const h = await startXds({ set: base });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(CDS, ['c0', 'c2', 'ghost']);
  const r1 = await s.next();
  assert.deepEqual(r1.names, ['c0', 'c2']);
  s.ack(r1);
  // A change to an unsubscribed cluster is not pushed.
  h.publish({ ...base, clusters: base.clusters.map((c) => (c.name === 'c1' ? edsCluster('c1', { connectTimeoutS: 9 }) : c)) });
  await s.expectSilence();
  // A change to a subscribed one sends the full subscribed set.
  h.publish({ ...base, clusters: base.clusters.map((c) => (c.name === 'c2' ? edsCluster('c2', { connectTimeoutS: 9 }) : c)) });
  const r2 = await s.next();
  assert.deepEqual(r2.names, ['c0', 'c2']);
  s.ack(r2);
  // Adding a name re-sends the full set including it.
  s.ack(r2, ['c0', 'c1', 'c2']);
  const r3 = await s.next();
  assert.deepEqual(r3.names, ['c0', 'c1', 'c2']);
});

test("per-type services: empty type_url means the service type; warming reaches the node's EDS stream", async (t) => {
  const base = resourceSet();
  const h = await startXds({ set: base });
  t.after(() => h.close());
  const cds = h.stream({ method: TYPE_METHOD[CDS] });
  const eds = h.stream({ method: TYPE_METHOD[EDS] });
  cds.send({ typeUrl: '' });
  const c1 = await cds.next();
  assert.equal(c1.typeUrl, CDS);
  assert.deepEqual(c1.names, ['c0', 'c1']);
  cds.ack(c1);
  eds.subscribe(EDS, ['c0', 'c1']);
  const e1 = await eds.next();
  eds.ack(e1);
  // A LDS request on the CDS service is not served.
  cds.send({ typeUrl: LDS });
  await cds.expectSilence(100);

  h.publish({ ...base, clusters: [edsCluster('c0', { connectTimeoutS: 3 }), base.clusters[1] ?? edsCluster('c1')] });
  const c2 = await cds.next();
  assert.equal(c2.typeUrl, CDS);
  const e2 = await eds.next();
  assert.deepEqual(e2.names, ['c0']);
});

test('the node is taken from the first request; later requests need not carry it', async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const s = h.conn.stream({ node: { id: 'envoy-7', cluster: 'edge', userAgentName: 'envoy', userAgentVersion: '1.31.0' } });
  s.subscribe(CDS);
  s.ack(await s.next());
  s.subscribe(EDS, ['c0']);
  assert.deepEqual((await s.next()).names, ['c0']);
  const [status] = h.server.registry.list();
  assert.equal(status?.nodeId, 'envoy-7');
  assert.equal(status?.nodeCluster, 'edge');
  assert.equal(status?.userAgent, 'envoy/1.31.0');
  assert.equal(status?.group, 'default');
  assert.deepEqual(
    status?.types.map((x) => x.type),
    ['CDS', 'EDS'],
  );
});

test('a node whose cluster has its own group is served that group', async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  h.publish(
    { clusters: [edsCluster('edge-only')], endpoints: [cla('edge-only')], listeners: [], routes: [routeConfig('r', [{ prefix: '/', cluster: 'edge-only' }])] },
    'edge',
  );
  const s = h.conn.stream({ node: { id: 'e1', cluster: 'edge' } });
  s.subscribe(CDS);
  assert.deepEqual((await s.next()).names, ['edge-only']);
  const d = h.conn.stream({ node: { id: 'd1', cluster: 'other' } });
  d.subscribe(CDS);
  assert.deepEqual((await d.next()).names, ['c0', 'c1']);
});
