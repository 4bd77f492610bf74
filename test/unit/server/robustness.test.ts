/**
 * The server survives bad clients and churn: unknown type URLs, undecodable bytes, requests
 * before any snapshot, a response over the configured message size limit, shutdown with live
 * streams, and 10,000 stream open/close cycles that must leave no stream, watch or node state
 * behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import { AdsConnection, type AdsStream } from '../../support/ads-client.js';
import { eventually, startXds } from '../../support/xds-harness.js';
import { resourceSet } from '../../support/xds-fixtures.js';

test('an unknown type URL is ignored; the stream and the server keep working', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const s = h.stream();
  s.send({ typeUrl: 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig', resourceNames: ['x'] });
  s.send({ typeUrl: '' }); // ADS needs a type URL
  s.send({ typeUrl: 'garbage' });
  await s.expectSilence();
  // All three counted (on a starved 2-core box the third may land after the silence window).
  await eventually(() => h.server.stats.unknownType === 3, 2_000, `3 unknown-type requests counted (${h.server.stats.unknownType})`);
  s.subscribe(TypeUrl.Cluster);
  assert.deepEqual((await s.next()).names, ['c0', 'c1']);
});

test('the node on a first request of an unknown type is kept: a later request of a served type gets its group', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  h.publish(resourceSet({ clusters: 3 }), 'edge');
  // The node rides on the first request only (set_node_on_first_message_only), and that request is
  // for a type this server does not serve.
  const s = h.stream({ node: { id: 'edge-1', cluster: 'edge' } });
  s.send({ typeUrl: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret', resourceNames: ['x'] });
  s.subscribe(TypeUrl.Cluster);
  assert.deepEqual((await s.next()).names, ['c0', 'c1', 'c2'], "the edge group's clusters, not the default group's");
  assert.equal(h.server.registry.nodeStatus('edge-1')?.group, 'edge');
});

test('undecodable bytes end that stream with INVALID_ARGUMENT, nothing else', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const healthy = h.stream({ node: { id: 'healthy' } });
  healthy.subscribe(TypeUrl.Cluster);
  healthy.ack(await healthy.next());

  const bad = h.stream({ node: { id: 'bad' } });
  bad.subscribe(TypeUrl.Cluster);
  await bad.next();
  bad.sendRaw(Buffer.from('not a protobuf message at all'));
  const status = await bad.status;
  assert.equal(status.code, GrpcStatus.INVALID_ARGUMENT);
  assert.match(status.details, /malformed DiscoveryRequest/);
  assert.equal(h.server.stats.malformed, 1);
  await eventually(() => h.server.registry.nodeStatus('bad') === undefined, 1_000, 'bad stream gone');

  // The other stream, on the same connection, still gets updates.
  h.publish(resourceSet({ clusters: 3 }));
  assert.deepEqual((await healthy.next()).names, ['c0', 'c1', 'c2']);
  // And new streams are served.
  const again = h.stream({ node: { id: 'again' } });
  again.subscribe(TypeUrl.Listener);
  assert.deepEqual((await again.next()).names, ['http']);
});

test('an undecodable node ends that stream with INVALID_ARGUMENT', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const s = h.conn.stream();
  const typeUrl = Buffer.from(TypeUrl.Cluster);
  // field 2 (node) holds one byte that is not a valid field; field 4 is the type URL.
  s.sendRaw(Buffer.concat([Buffer.from([0x12, 0x01, 0x7f, 0x22, typeUrl.length]), typeUrl]));
  const status = await s.status;
  assert.equal(status.code, GrpcStatus.INVALID_ARGUMENT);
  assert.match(status.details, /node/);
});

test('requests before the first snapshot wait for it', { timeout: 20_000 }, async (t) => {
  const h = await startXds();
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(TypeUrl.Cluster);
  s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0']);
  await s.expectSilence(100);
  h.publish(resourceSet());
  const [a, b] = [await s.next(), await s.next()];
  assert.equal(a.typeUrl, TypeUrl.Cluster);
  assert.equal(b.typeUrl, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(b.names, ['c0']);
});

test('a client half-close ends the stream with OK and forgets it', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(TypeUrl.Cluster);
  await s.next();
  s.end();
  assert.equal((await s.status).code, GrpcStatus.OK);
  await eventually(() => h.server.registry.size === 0 && h.cache.watcherCount === 0, 1_000, 'stream forgotten');
});

test('a response over grpc.max_send_message_length ends that stream with RESOURCE_EXHAUSTED', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }), grpcOptions: { 'grpc.max_send_message_length': 200 } });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0']); // small enough
  const ok = await s.next();
  assert.deepEqual(ok.names, ['c0']);
  s.subscribe(TypeUrl.Cluster); // three clusters: too large
  const status = await s.status;
  assert.equal(status.code, GrpcStatus.RESOURCE_EXHAUSTED);
});

test('close() ends live streams with UNAVAILABLE and returns promptly', { timeout: 20_000 }, async () => {
  const h = await startXds({ set: resourceSet() });
  const streams = [h.stream(), h.stream(), h.stream({ node: { id: 'other' } })];
  for (const s of streams) s.subscribe(TypeUrl.Cluster);
  for (const s of streams) await s.next();
  const started = Date.now();
  await h.close();
  assert.ok(Date.now() - started < 2_000, 'close took too long');
  for (const s of streams) assert.equal((await s.status).code, GrpcStatus.UNAVAILABLE);
  assert.equal(h.server.registry.size, 0);
  assert.equal(h.cache.watcherCount, 0);
});

test('10,000 stream open/close cycles leave no streams, watches or node state behind', { timeout: 120_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  // Several connections, each carrying many short streams; three ways of ending a stream. Ten
  // connections keep each one's 800 cancels under nghttp2's rapid-reset allowance (a burst of
  // 1000 RST_STREAMs, then 33/s): with four, a fast run got GOAWAY(INTERNAL_ERROR) near its end.
  const conns = Array.from({ length: 10 }, () => new AdsConnection(`127.0.0.1:${h.port}`, { separateConnection: true }));
  t.after(() => {
    for (const c of conns) c.close();
  });
  const TOTAL = 10_000;
  const BATCH = 500;
  let peakStreams = 0;
  let peakWatchers = 0;
  for (let start = 0; start < TOTAL; start += BATCH) {
    const batch: AdsStream[] = [];
    for (let i = start; i < start + BATCH; i++) {
      const conn = conns[i % conns.length];
      assert.ok(conn);
      const s = conn.stream({ node: { id: `node-${i}` }, decodeResources: false });
      s.subscribe(i % 3 === 0 ? TypeUrl.ClusterLoadAssignment : TypeUrl.Cluster, i % 3 === 0 ? ['c0'] : []);
      batch.push(s);
    }
    await Promise.all(batch.map((s) => s.next(10_000)));
    peakStreams = Math.max(peakStreams, h.server.registry.size);
    peakWatchers = Math.max(peakWatchers, h.cache.watcherCount);
    batch.forEach((s, k) => {
      if (k % 5 === 0) s.end();
      else s.cancel();
    });
    await eventually(() => h.server.registry.size === 0, 10_000, `batch at ${start} cleaned up`);
  }
  assert.equal(peakStreams, BATCH);
  assert.equal(peakWatchers, BATCH);
  assert.equal(h.server.stats.streamsTotal, TOTAL);
  assert.equal(h.server.registry.size, 0);
  assert.equal(h.server.registry.nodeCount, 0);
  assert.deepEqual(h.server.registry.nodes(), []);
  assert.equal(h.cache.watcherCount, 0);
  assert.equal(h.server.stats.subscriptions, 0, 'interned subscriptions released');
  // A publish after the churn reaches nobody and costs nothing.
  const before = h.server.stats.responses;
  h.publish(resourceSet({ clusters: 5 }));
  assert.equal(h.server.stats.responses, before);
});
