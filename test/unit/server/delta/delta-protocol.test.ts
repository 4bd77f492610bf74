/**
 * Delta (incremental) xDS over real gRPC (loopback), with a raw delta client: legacy and explicit
 * wildcard, subscribe/unsubscribe, removed_resources (deleted, unsubscribed-then-deleted, never
 * existed), initial_resource_versions on reconnect (nothing re-sent that the client holds),
 * per-resource versions equal to the snapshot's content hashes, nonces (stale ones acknowledge
 * nothing but still change the subscription), NACK of one resource version (never re-sent; other
 * changes keep flowing; a later version is sent), warming and CDS -> EDS -> LDS -> RDS order, the
 * per-type delta services, the registry's `protocol`, and the bytes one endpoint change costs a
 * delta client vs a SotW client; the resource-name limit on a growing delta subscription.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TypeUrl } from '../../../../src/xds/resource-types.js';
import { DELTA_TYPE_METHOD, type DeltaAdsStream, type DeltaResponse } from '../../../support/ads-client.js';
import { eventually, startXds, type XdsHarness } from '../../../support/xds-harness.js';
import { cla, edsCluster, resourceSet } from '../../../support/xds-fixtures.js';

const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;

const NODE = { id: 'node-1', cluster: 'web' };

function versionOf(h: XdsHarness, type: typeof CDS | typeof EDS | typeof LDS | typeof RDS, name: string): string | undefined {
  return h.cache.get('default')?.type(type).resources.get(name)?.version;
}

/** Next response, ACKed. */
async function nextAcked(s: DeltaAdsStream): Promise<DeltaResponse> {
  const r = await s.next();
  s.ack(r);
  return r;
}

test('legacy wildcard CDS: everything with per-resource content-hash versions, then only what changed; deletions in removed_resources', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  const s = h.conn.deltaStream({ node: NODE });
  s.subscribe(CDS);
  const r = await nextAcked(s);
  assert.equal(r.typeUrl, CDS);
  assert.deepEqual(r.names, ['c0', 'c1', 'c2']);
  for (const res of r.resources) {
    assert.equal(res.version, versionOf(h, CDS, res.resourceName));
    assert.equal(res.name, res.resourceName);
  }
  assert.equal(r.systemVersionInfo, h.cache.get('default')?.version(CDS));
  assert.deepEqual(r.removed, []);
  await s.expectSilence();
  const status = h.server.registry.list()[0];
  assert.equal(status?.protocol, 'delta');
  assert.equal(status?.types[0]?.wildcard, true);

  // One cluster more: only that one (plus nothing else of CDS).
  h.publish(resourceSet({ clusters: 4 }));
  const added = await nextAcked(s);
  assert.equal(added.typeUrl, CDS);
  assert.deepEqual(added.names, ['c3']);
  // Back to two: c2 and c3 removed, nothing re-sent.
  h.publish(resourceSet({ clusters: 2 }));
  const removed = await nextAcked(s);
  assert.deepEqual(removed.names, []);
  assert.deepEqual(removed.removed, ['c2', 'c3']);
  await s.expectSilence();
});

test("explicit '*' subscribes any type to everything; unsubscribing '*' ends it, subscribing again re-sends", async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 2 }) });
  t.after(() => h.close());
  const s = h.conn.deltaStream({ node: NODE });
  s.subscribe(EDS, ['*']);
  const r = await nextAcked(s);
  assert.deepEqual(r.names, ['c0', 'c1']);
  s.unsubscribe(EDS, ['*']);
  await eventually(() => h.server.registry.list()[0]?.types[0]?.wildcard === false, 2_000, "'*' unsubscribed");
  h.publish(resourceSet({ clusters: 2, basePort: 9100 }));
  await s.expectSilence();
  // Wildcard again: everything is sent again (the server no longer assumes the client kept it).
  s.subscribe(EDS, ['*']);
  assert.deepEqual((await nextAcked(s)).names, ['c0', 'c1']);
});

test('named subscriptions: subscribe adds, unsubscribe drops, resubscribe re-sends, a missing name is answered in removed_resources', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  const s = h.conn.deltaStream({ node: NODE });
  s.subscribe(EDS, ['c0']);
  assert.deepEqual((await nextAcked(s)).names, ['c0']);
  s.subscribe(EDS, ['c1']);
  assert.deepEqual((await nextAcked(s)).names, ['c1'], 'only the newly subscribed name');
  s.unsubscribe(EDS, ['c0']);
  await s.expectSilence();
  await eventually(() => h.server.registry.list()[0]?.types[0]?.names.join() === 'c1', 2_000, 'c0 unsubscribed');

  // Every CLA changes: only the subscribed one is sent.
  h.publish(resourceSet({ clusters: 3, basePort: 9100 }));
  assert.deepEqual((await nextAcked(s)).names, ['c1']);
  // Resubscribing to c0 sends it again (the server forgot the client had it).
  s.subscribe(EDS, ['c0']);
  assert.deepEqual((await nextAcked(s)).names, ['c0']);
  // A name that does not exist is answered at once, as removed.
  s.subscribe(EDS, ['nope']);
  const missing = await nextAcked(s);
  assert.deepEqual(missing.names, []);
  assert.deepEqual(missing.removed, ['nope']);
  // An unsubscribed name that is later deleted is not reported.
  s.unsubscribe(EDS, ['c1']);
  await eventually(() => h.server.registry.list()[0]?.types[0]?.names.includes('c1') === false, 2_000, 'c1 unsubscribed');
  h.publish(resourceSet({ clusters: 1, basePort: 9100 }));
  await s.expectSilence();
});

test('initial_resource_versions: a reconnecting client is sent only what changed meanwhile', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  const held = Object.fromEntries(['c0', 'c1', 'c2'].map((n) => [n, versionOf(h, CDS, n) ?? '']));

  // Holds everything current: the first request is answered, with nothing in it.
  const s1 = h.conn.deltaStream({ node: NODE });
  s1.subscribe(CDS, [], held);
  const r1 = await nextAcked(s1);
  assert.deepEqual(r1.names, []);
  assert.deepEqual(r1.removed, []);
  s1.cancel();

  // c1 changed and c2 went away while it was disconnected; c3 is new.
  h.publish({ ...resourceSet({ clusters: 2 }), clusters: [edsCluster('c0'), edsCluster('c1', { connectTimeoutS: 5 })] });
  const s2 = h.conn.deltaStream({ node: NODE });
  s2.subscribe(CDS, [], held);
  const r2 = await s2.next();
  assert.deepEqual(r2.names, ['c1']);
  assert.deepEqual(r2.removed, ['c2']);

  // Named: a held EDS name at its current version is not re-sent.
  const s3 = h.conn.deltaStream({ node: NODE });
  s3.subscribe(EDS, ['c0', 'c1'], { c0: versionOf(h, EDS, 'c0') ?? '' });
  assert.deepEqual((await s3.next()).names, ['c1']);
});

test('NACK: the rejected resource version is never re-sent; other changes still flow; a later version is sent', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 2 }) });
  t.after(() => h.close());
  const s = h.conn.deltaStream({ node: NODE });
  s.subscribe(EDS, ['c0', 'c1']);
  await nextAcked(s);
  const base = resourceSet({ clusters: 2 });
  const withC0 = (port: number, c1Port = 8001) => ({ ...base, endpoints: [cla('c0', [['127.0.0.1', port]]), cla('c1', [['127.0.0.1', c1Port]])] });

  h.publish(withC0(7000));
  const bad = await s.next();
  assert.deepEqual(bad.names, ['c0']);
  s.nack(bad, 'c0: rejected');
  await s.expectSilence();
  const type = h.server.registry.list()[0]?.types[0];
  assert.equal(type?.lastResponseNacked, true);
  assert.equal(type?.nacks, 1);

  // c1 changes: only c1 goes out, the rejected c0 version does not come back with it.
  h.publish(withC0(7000, 8101));
  const other = await nextAcked(s);
  assert.deepEqual(other.names, ['c1']);
  await s.expectSilence();
  // c0 moves on: the new version is sent.
  h.publish(withC0(7001, 8101));
  const fixed = await nextAcked(s);
  assert.deepEqual(fixed.names, ['c0']);
  assert.equal(fixed.resources[0]?.version, versionOf(h, EDS, 'c0'));
  await eventually(() => h.server.registry.list()[0]?.types[0]?.lastResponseNacked === false, 2_000, 'the NACK superseded by an ACK');
});

test('a NACK followed by a rollback re-sends the old version (the client state is not assumed)', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 1 }) });
  t.after(() => h.close());
  const s = h.conn.deltaStream({ node: NODE });
  s.subscribe(EDS, ['c0']);
  const first = await nextAcked(s);
  h.publish(resourceSet({ clusters: 1, basePort: 9000 }));
  s.nack(await s.next(), 'no');
  h.publish(resourceSet({ clusters: 1 }));
  const back = await nextAcked(s);
  assert.deepEqual(back.names, ['c0']);
  assert.equal(back.resources[0]?.version, first.resources[0]?.version);
});

test('nonces: fresh per response; a stale nonce acknowledges nothing but its subscription change applies', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  const s = h.conn.deltaStream({ node: NODE });
  s.subscribe(EDS, ['c0']);
  const a = await s.next();
  s.ack(a);
  s.subscribe(EDS, ['c1']);
  const b = await s.next();
  assert.notEqual(a.nonce, b.nonce);
  assert.notEqual(b.nonce, '');
  // The older nonce does not ACK b, yet its subscribe of c2 is applied (a delta diff is never dropped).
  s.send({ typeUrl: EDS, responseNonce: a.nonce, subscribe: ['c2'] });
  await eventually(() => h.server.registry.list()[0]?.types[0]?.names.includes('c2') === true, 2_000, 'c2 subscribed');
  assert.equal(h.server.registry.list()[0]?.types[0]?.pendingNonce, b.nonce);
  assert.ok(h.server.stats.stale >= 1);
  // b is still in flight: c2 waits for its ACK, then goes out.
  await s.expectSilence();
  s.ack(b);
  const c = await nextAcked(s);
  assert.deepEqual(c.names, ['c2']);
});

test('warming and order: a Cluster change sends CDS, then its unchanged CLA, in one go', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 2 }) });
  t.after(() => h.close());
  const s = h.conn.deltaStream({ node: NODE });
  s.subscribe(CDS);
  s.subscribe(EDS, ['c0', 'c1']);
  s.subscribe(LDS);
  s.subscribe(RDS, ['routes']);
  const types: string[] = [];
  for (let i = 0; i < 4; i++) types.push((await nextAcked(s)).typeUrl);
  assert.deepEqual(types, [CDS, EDS, LDS, RDS]);

  h.publish(resourceSet({ clusters: 2, connectTimeoutS: 3 }));
  const cds = await s.next();
  const eds = await s.next();
  assert.equal(cds.typeUrl, CDS);
  assert.deepEqual(cds.names, ['c0', 'c1']);
  assert.equal(eds.typeUrl, EDS);
  assert.deepEqual(eds.names, ['c0', 'c1'], 'the CLAs are re-sent although unchanged');
  s.ack(cds);
  s.ack(eds);
  await s.expectSilence();
});

test('per-type delta services: CDS and EDS on their own streams, warming passed between them', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 1 }) });
  t.after(() => h.close());
  const cds = h.conn.deltaStream({ node: NODE, method: DELTA_TYPE_METHOD[CDS] });
  const eds = h.conn.deltaStream({ node: NODE, method: DELTA_TYPE_METHOD[EDS] });
  cds.send({ typeUrl: '', subscribe: [] });
  eds.send({ typeUrl: '', subscribe: ['c0'] });
  assert.deepEqual((await nextAcked(cds)).names, ['c0']);
  assert.deepEqual((await nextAcked(eds)).names, ['c0']);
  h.publish(resourceSet({ clusters: 1, connectTimeoutS: 4 }));
  assert.deepEqual((await nextAcked(cds)).names, ['c0']);
  assert.deepEqual((await nextAcked(eds)).names, ['c0']);
  const methods = h.server.registry
    .list()
    .map((st) => `${st.method}/${st.protocol}`)
    .sort();
  assert.deepEqual(methods, ['CDS/delta', 'EDS/delta']);
});

test('one endpoint change among 200 clusters: a delta client gets one ClusterLoadAssignment, a SotW client more', async (t) => {
  const n = 200;
  const h = await startXds({ set: resourceSet({ clusters: n }) });
  t.after(() => h.close());
  const names = Array.from({ length: n }, (_, i) => `c${i}`);
  const delta = h.conn.deltaStream({ node: { id: 'delta' } });
  delta.subscribe(EDS, names);
  await nextAcked(delta);
  const sotw = h.stream({ node: { id: 'sotw' } });
  sotw.subscribe(EDS, names);
  sotw.ack(await sotw.next());

  const set = resourceSet({ clusters: n });
  h.publish({ ...set, endpoints: set.endpoints.map((e, i) => (i === 7 ? cla('c7', [['127.0.0.1', 7777]]) : e)) });
  const d = await nextAcked(delta);
  const s = await sotw.next();
  sotw.ack(s);
  assert.deepEqual(d.names, ['c7']);
  assert.deepEqual(s.names, ['c7'], 'SotW EDS also sends only the changed CLA');
  t.diagnostic(`EDS, one endpoint change among ${n}: delta ${d.raw.length} bytes, SotW ${s.raw.length} bytes`);

  // CDS, one cluster changed: SotW re-sends the full set; delta only that cluster.
  const dc = h.conn.deltaStream({ node: { id: 'delta-cds' } });
  dc.subscribe(CDS);
  await nextAcked(dc);
  const sc = h.stream({ node: { id: 'sotw-cds' } });
  sc.subscribe(CDS);
  sc.ack(await sc.next());
  const set2 = resourceSet({ clusters: n });
  h.publish({ ...set2, clusters: set2.clusters.map((c, i) => (i === 7 ? edsCluster('c7', { connectTimeoutS: 9 }) : c)) });
  const dr = await dc.next();
  const sr = await sc.next();
  assert.deepEqual(dr.names, ['c7']);
  assert.equal(sr.names.length, n);
  t.diagnostic(`CDS, one cluster changed among ${n}: delta ${dr.raw.length} bytes, SotW ${sr.raw.length} bytes`);
  assert.ok(dr.raw.length * 50 < sr.raw.length);
});

test('malformed delta bytes end only that stream, with INVALID_ARGUMENT', async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const bad = h.conn.deltaStream({ node: NODE });
  bad.sendRaw(Buffer.from([0x0a, 0xff, 0xff]));
  const st = await bad.status;
  assert.equal(st.code, 3);
  const good = h.conn.deltaStream({ node: NODE });
  good.subscribe(CDS);
  assert.deepEqual((await good.next()).names, ['c0', 'c1']);
});

test('a delta subscription growing past the resource-name limit ends the stream with INVALID_ARGUMENT naming both numbers', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }), limits: { maxResourceNames: 5 } });
  t.after(() => h.close());
  const s = h.conn.deltaStream({ node: NODE });
  s.subscribe(EDS, ['c0', 'c1', 'c2', 'x3']);
  await nextAcked(s);
  s.subscribe(EDS, ['x4']);
  await nextAcked(s);
  // Seven in all, though this request names only two.
  s.subscribe(EDS, ['x5', 'x6']);
  const status = await s.status;
  assert.equal(status.code, 3);
  assert.match(status.details, /EDS subscription names 7 resources; the limit is 5/);
  assert.equal(h.server.stats.overLimit, 1);
});
