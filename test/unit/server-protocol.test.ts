/**
 * SotW protocol over real gRPC (loopback): ACK, NACK (recorded, not re-sent, later version sent),
 * stale nonces, subscription changes, resubscribe, named RDS/EDS answered even when empty,
 * warming (CLA re-sent after a Cluster change), CDS -> EDS -> LDS -> RDS order, wildcard and
 * named full-state subscriptions, per-type services.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { TypeUrl } from '../../src/xds/type-urls.js';
import type { XdsResourceSet } from '../../src/xds/resources.js';
import { TYPE_METHOD } from '../support/ads-client.js';
import { ackUntilUpToDate, eventually, startXds } from '../support/xds-harness.js';
import { cla, edsCluster, httpListener, resourceSet, routeConfig } from '../support/xds-fixtures.js';

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
  const logger = pino({ level: 'warn' }, new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } }));
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

test('changes go out in order CDS -> EDS -> LDS -> RDS, and nothing overtakes a type waiting for its ACK', async (t) => {
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
  assert.deepEqual(batch1.map((r) => r.typeUrl), [CDS, EDS, LDS, RDS]);
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
  assert.deepEqual(batch2.map((r) => r.typeUrl), [CDS, EDS, LDS, RDS]);
  assert.equal(batch2[0]?.versionInfo, h.cache.get('default')?.version(CDS));
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

test('per-type services: empty type_url means the service type; warming reaches the node\'s EDS stream', async (t) => {
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
  assert.deepEqual(status?.types.map((x) => x.type), ['CDS', 'EDS']);
});

test('a node whose cluster has its own group is served that group', async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  h.publish({ clusters: [edsCluster('edge-only')], endpoints: [cla('edge-only')], listeners: [], routes: [routeConfig('r', [{ prefix: '/', cluster: 'edge-only' }])] }, 'edge');
  const s = h.conn.stream({ node: { id: 'e1', cluster: 'edge' } });
  s.subscribe(CDS);
  assert.deepEqual((await s.next()).names, ['edge-only']);
  const d = h.conn.stream({ node: { id: 'd1', cluster: 'other' } });
  d.subscribe(CDS);
  assert.deepEqual((await d.next()).names, ['c0', 'c1']);
});
