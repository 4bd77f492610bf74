/**
 * Encode-once fan-out: a change sent to many streams encodes no protobuf at all on the way out
 * (resource bytes come from the snapshot, the response body is built once and shared), and two
 * replicas fed the same input hand out byte-identical resources under identical versions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type protobuf from 'protobufjs';
import { messageType } from '../../../src/envoy/protos.js';
import { buildSnapshot } from '../../../src/cache/snapshot.js';
import { TypeUrl, TYPE_ORDER } from '../../../src/xds/resource-types.js';
import { AdsConnection, type AdsResponse, type AdsStream } from '../../support/ads-client.js';
import { ackUntilUpToDate, startXds } from '../../support/xds-harness.js';
import { resourceSet } from '../../support/xds-fixtures.js';

/** The response bytes without field 5 (nonce), which our server always writes last. */
function withoutNonce(r: AdsResponse): Buffer {
  const n = r.nonce.length;
  assert.equal(r.raw[r.raw.length - n - 2], 0x2a);
  return r.raw.subarray(0, r.raw.length - n - 2);
}

/** Count calls of `encode` on the given protobufjs types while `fn` runs. */
async function countEncodes(typeNames: readonly string[], fn: () => Promise<void>): Promise<number> {
  let calls = 0;
  const restore: Array<() => void> = [];
  for (const name of typeNames) {
    const type = messageType(name) as protobuf.Type & { encode: protobuf.Type['encode'] };
    const original = type.encode;
    type.encode = function counted(this: protobuf.Type, ...args: Parameters<protobuf.Type['encode']>) {
      calls++;
      return original.apply(this, args);
    };
    restore.push(() => {
      type.encode = original;
    });
  }
  try {
    await fn();
  } finally {
    for (const r of restore) r();
  }
  return calls;
}

test('a change fanned out to 60 streams encodes each response body once and no resource at all', { timeout: 30_000 }, async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 20 }) });
  t.after(() => h.close());
  const conns = Array.from({ length: 3 }, () => new AdsConnection(`127.0.0.1:${h.port}`, { separateConnection: true }));
  t.after(() => {
    for (const c of conns) c.close();
  });
  const names = Array.from({ length: 20 }, (_, i) => `c${i}`);
  const streams: AdsStream[] = [];
  for (let i = 0; i < 60; i++) {
    const conn = conns[i % 3];
    assert.ok(conn);
    const s = conn.stream({ node: { id: `n${i}` } });
    s.subscribe(TypeUrl.Cluster);
    s.subscribe(TypeUrl.ClusterLoadAssignment, names);
    s.subscribe(TypeUrl.Listener);
    s.subscribe(TypeUrl.RouteConfiguration, ['routes']);
    streams.push(s);
  }
  // Initial state: every stream has everything and ACKed it.
  await Promise.all(streams.map((s, i) => ackUntilUpToDate(h, s, `n${i}`, 4)));

  const COUNTED = [
    'envoy.config.cluster.v3.Cluster',
    'envoy.config.endpoint.v3.ClusterLoadAssignment',
    'envoy.config.listener.v3.Listener',
    'envoy.config.route.v3.RouteConfiguration',
    'google.protobuf.Any',
    'envoy.service.discovery.v3.DiscoveryResponse',
  ];
  // Everything changes: all four types go to every stream.
  const set = resourceSet({ clusters: 20, basePort: 9000, connectTimeoutS: 3, apiWeight: 10 });
  const changed = { ...set, listeners: set.listeners.map((l) => ({ ...l, per_connection_buffer_limit_bytes: { value: 65536 } })) };
  let snap: ReturnType<typeof buildSnapshot> | undefined;
  const buildEncodes = await countEncodes(COUNTED, async () => {
    snap = buildSnapshot(changed);
  });
  assert.ok(snap);
  const snapshot = snap;
  const resourceCount = TYPE_ORDER.reduce((n, t) => n + snapshot.type(t).list.length, 0);
  assert.ok(buildEncodes >= resourceCount * 2, 'the counter sees the snapshot encoding each resource and its Any');

  const buildsBefore = h.server.stats.sharedBuilds;
  const responsesBefore = h.server.stats.responses;
  const directBefore = h.server.stats.directWrites;
  const received: AdsResponse[][] = [];
  const fanOutEncodes = await countEncodes(COUNTED, async () => {
    h.cache.set('default', snapshot);
    for (const s of streams) received.push([await s.next(), await s.next(), await s.next(), await s.next()]);
  });
  assert.equal(fanOutEncodes, 0, 'no protobuf encoding on the way out');
  assert.equal(h.server.stats.responses - responsesBefore, 60 * 4);
  assert.equal(h.server.stats.sharedBuilds - buildsBefore, 4, 'one shared body per type');
  // With the installed grpc-js, every response takes the fast path (shared framed bytes written
  // straight onto the HTTP/2 stream). If a grpc-js upgrade breaks it, this fails, not just the speed.
  assert.equal(h.server.stats.directWrites - directBefore, 60 * 4);
  assert.equal(h.server.stats.grpcWrites, 0);

  for (const [i, type] of TYPE_ORDER.entries()) {
    const bodies = received.map((rs) => rs[i]);
    const first = bodies[0];
    assert.ok(first);
    assert.equal(first.typeUrl, type);
    assert.equal(first.versionInfo, snapshot.version(type));
    for (const [k, r] of bodies.entries()) {
      assert.ok(r);
      // One shared response: the very same bytes for every stream, nonce included...
      assert.ok(r.raw.equals(first.raw), 'identical bytes on every stream');
      // ...and still a fresh nonce on each stream: never one it has seen for this type before.
      const earlier = streams[k]?.received.filter((x) => x.typeUrl === type && x !== r).map((x) => x.nonce) ?? [];
      assert.ok(earlier.length > 0 && !earlier.includes(r.nonce), 'fresh nonce per stream');
    }
    // The resources on the wire are the snapshot's cached bytes.
    const anyType = messageType('google.protobuf.Any');
    const wire = first.resources.map((res) => Buffer.from(anyType.encode({ type_url: res.typeUrl, value: res.value }).finish()));
    const cached: Buffer[] = snapshot.type(type).list.map((res) => Buffer.from(res.bytes));
    assert.deepEqual(wire, cached);
  }
});

test('re-sending a response built earlier gives it a fresh nonce on that stream', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const s = h.stream();
  s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0']);
  s.ack(await s.next());
  s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0', 'c1']);
  const first = await s.next();
  assert.deepEqual(first.names, ['c1']);
  s.ack(first);
  s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0']);
  await s.expectSilence(100);
  // Resubscribing sends the same [c1] response of the same snapshot again: same body, new nonce.
  s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0', 'c1']);
  const again = await s.next();
  assert.deepEqual(again.names, ['c1']);
  assert.notEqual(again.nonce, first.nonce);
  assert.ok(withoutNonce(again).equals(withoutNonce(first)));
  assert.equal(h.server.stats.nonceCopies, 1);
  s.ack(again);
  await s.expectSilence();
});

test('a warming re-send to many streams is one shared response; so is a re-send of a body they had before', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  const streams: AdsStream[] = [];
  for (let i = 0; i < 20; i++) {
    const s = h.conn.stream({ node: { id: `w${i}` } });
    s.subscribe(TypeUrl.Cluster);
    s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0', 'c1', 'c2']);
    streams.push(s);
  }
  await Promise.all(streams.map((s, i) => ackUntilUpToDate(h, s, `w${i}`, 2)));
  const edsNonces = (s: AdsStream): string[] => s.received.filter((r) => r.typeUrl === TypeUrl.ClusterLoadAssignment).map((r) => r.nonce);
  const expectShared = (rs: readonly AdsResponse[], seen: ReadonlyArray<readonly string[]>): void => {
    const first = rs[0];
    assert.ok(first);
    for (const [i, r] of rs.entries()) {
      assert.ok(r.raw.equals(first.raw), 'identical bytes on every stream');
      assert.ok(!seen[i]?.includes(r.nonce), 'a nonce this stream has not seen for EDS');
    }
  };

  // Every Cluster changes, no CLA does: each stream gets CDS, then all three CLAs again, built
  // once for all 20 streams (with the new snapshot's nonce).
  let seen = streams.map(edsNonces);
  const builds = h.server.stats.sharedBuilds;
  const copies = h.server.stats.nonceCopies;
  h.publish(resourceSet({ clusters: 3, connectTimeoutS: 2 }));
  const warming: AdsResponse[] = [];
  for (const s of streams) {
    const cds = await s.next();
    assert.equal(cds.typeUrl, TypeUrl.Cluster);
    const e = await s.next();
    assert.equal(e.typeUrl, TypeUrl.ClusterLoadAssignment);
    assert.deepEqual(e.names, ['c0', 'c1', 'c2']);
    warming.push(e);
    s.ack(cds);
    s.ack(e);
  }
  assert.equal(h.server.stats.sharedBuilds - builds, 2, 'one CDS and one EDS body for all streams');
  assert.equal(h.server.stats.nonceCopies - copies, 0);
  expectShared(warming, seen);

  // Unsubscribe and resubscribe c2, twice: the second time every stream is sent a body it had
  // before, under the same snapshot. It needs a nonce none of them has seen: one renewed response
  // serves all 20 streams (one copy, not one per stream).
  for (const round of [1, 2]) {
    for (const s of streams) s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0', 'c1']);
    await Promise.all(streams.map((s) => s.expectSilence(50)));
    seen = streams.map(edsNonces);
    const copiesBefore = h.server.stats.nonceCopies;
    for (const s of streams) s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0', 'c1', 'c2']);
    const again: AdsResponse[] = [];
    for (const s of streams) {
      const r = await s.next();
      assert.deepEqual(r.names, ['c2']);
      again.push(r);
      s.ack(r);
    }
    assert.equal(h.server.stats.nonceCopies - copiesBefore, round === 1 ? 0 : 1);
    expectShared(again, seen);
  }
});

test('two replicas given the same input serve identical versions and bytes', { timeout: 20_000 }, async (t) => {
  const a = await startXds({ set: resourceSet({ clusters: 4 }) });
  const b = await startXds({ set: resourceSet({ clusters: 4 }) });
  t.after(() => Promise.all([a.close(), b.close()]));
  const fetchAll = async (h: typeof a): Promise<AdsResponse[]> => {
    const s = h.stream();
    s.subscribe(TypeUrl.Cluster);
    s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0', 'c1', 'c2', 'c3']);
    s.subscribe(TypeUrl.Listener);
    s.subscribe(TypeUrl.RouteConfiguration, ['routes']);
    return [await s.next(), await s.next(), await s.next(), await s.next()];
  };
  const [ra, rb] = [await fetchAll(a), await fetchAll(b)];
  ra.forEach((x, i) => {
    const y = rb[i];
    assert.ok(y);
    assert.equal(x.typeUrl, y.typeUrl);
    assert.equal(x.versionInfo, y.versionInfo);
    assert.ok(withoutNonce(x).equals(withoutNonce(y)));
  });
});
