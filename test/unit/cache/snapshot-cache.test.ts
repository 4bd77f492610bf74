/**
 * SnapshotCache: notifies only types whose version changed, resolves node groups, moves watches
 * when groups appear or disappear, and forgets cancelled watches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot, type Snapshot } from '../../../src/cache/snapshot.js';
import { DEFAULT_GROUP, SnapshotCache } from '../../../src/cache/snapshot-cache.js';
import type { NodeInfo } from '../../../src/cache/node-info.js';
import { TypeUrl, type XdsTypeUrl } from '../../../src/xds/resource-types.js';
import { resourceSet } from '../../support/xds-fixtures.js';

function node(id: string, cluster = '', metadata: NodeInfo['metadata'] = {}): NodeInfo {
  return { id, cluster, userAgentName: 'test', userAgentVersion: '1', metadata };
}

function recorder() {
  const calls: Array<{ snapshot: Snapshot; changed: XdsTypeUrl[] }> = [];
  return { calls, listener: (snapshot: Snapshot, changed: ReadonlySet<XdsTypeUrl>) => calls.push({ snapshot, changed: [...changed] }) };
}

test('set notifies watchers only of the types whose version changed', () => {
  const cache = new SnapshotCache();
  const rec = recorder();
  const w = cache.watch(node('n1'), rec.listener);
  assert.equal(w.snapshot, undefined);
  const s1 = buildSnapshot(resourceSet());
  assert.deepEqual([...cache.set(DEFAULT_GROUP, s1)].length, 4);
  assert.equal(w.snapshot, s1);
  assert.deepEqual(rec.calls.at(-1)?.changed, [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration]);

  // Same content, new object: nothing to push.
  const before = rec.calls.length;
  assert.equal(cache.set(DEFAULT_GROUP, buildSnapshot(resourceSet())).size, 0);
  assert.equal(rec.calls.length, before);

  // Only endpoints moved.
  cache.set(DEFAULT_GROUP, buildSnapshot(resourceSet({ basePort: 9000 })));
  assert.deepEqual(rec.calls.at(-1)?.changed, [TypeUrl.ClusterLoadAssignment]);
  // Only the route weights moved.
  cache.set(DEFAULT_GROUP, buildSnapshot(resourceSet({ basePort: 9000, apiWeight: 50 })));
  assert.deepEqual(rec.calls.at(-1)?.changed, [TypeUrl.RouteConfiguration]);
});

test('node.cluster picks its own group when one exists, else default; watches move when groups come and go', () => {
  const cache = new SnapshotCache();
  const def = buildSnapshot(resourceSet());
  const edge = buildSnapshot(resourceSet({ clusters: 3 }));
  cache.set(DEFAULT_GROUP, def);
  const rec = recorder();
  const w = cache.watch(node('n1', 'edge'), rec.listener);
  assert.equal(w.group, DEFAULT_GROUP);
  assert.equal(cache.groupOf(node('x', 'edge')), DEFAULT_GROUP);

  cache.set('edge', edge);
  assert.equal(w.group, 'edge');
  assert.equal(w.snapshot, edge);
  // Moving to a different snapshot reports what differs between the two (routes are the same).
  assert.deepEqual(rec.calls.at(-1)?.changed, [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]);
  assert.deepEqual(cache.groups().sort(), ['default', 'edge']);

  // A default-group update does not concern the edge node any more.
  const n = rec.calls.length;
  cache.set(DEFAULT_GROUP, buildSnapshot(resourceSet({ basePort: 7000 })));
  assert.equal(rec.calls.length, n);

  assert.equal(cache.delete('edge'), true);
  assert.equal(w.group, DEFAULT_GROUP);
  assert.equal(rec.calls.length, n + 1);
  assert.equal(cache.delete('edge'), false);
});

test('a custom groupOf decides by node metadata', () => {
  const cache = new SnapshotCache({
    groupOf: (n, has) => {
      const role = n?.metadata.role;
      return typeof role === 'string' && has(role) ? role : DEFAULT_GROUP;
    },
  });
  cache.set('grpc', buildSnapshot(resourceSet({ clusters: 1 })));
  cache.set(DEFAULT_GROUP, buildSnapshot(resourceSet()));
  assert.equal(cache.groupOf(node('a', 'whatever', { role: 'grpc' })), 'grpc');
  assert.equal(cache.groupOf(node('b', 'grpc')), DEFAULT_GROUP);
  assert.equal(cache.groupOf(undefined), DEFAULT_GROUP);
});

test('cancelled watches are forgotten and hear nothing; the count returns to zero', () => {
  const cache = new SnapshotCache();
  const rec = recorder();
  const watches = Array.from({ length: 100 }, (_, i) => cache.watch(node(`n${i}`, i % 2 ? 'edge' : ''), rec.listener));
  assert.equal(cache.watcherCount, 100);
  for (const w of watches) {
    w.cancel();
    w.cancel(); // idempotent
  }
  assert.equal(cache.watcherCount, 0);
  cache.set(DEFAULT_GROUP, buildSnapshot(resourceSet()));
  cache.set('edge', buildSnapshot(resourceSet({ clusters: 3 })));
  assert.equal(rec.calls.length, 0);
  assert.equal(cache.watcherCount, 0);
});

test('a throwing watcher does not stop the others', () => {
  const cache = new SnapshotCache();
  const rec = recorder();
  cache.watch(node('bad'), () => {
    throw new Error('boom');
  });
  cache.watch(node('good'), rec.listener);
  cache.set(DEFAULT_GROUP, buildSnapshot(resourceSet()));
  assert.equal(rec.calls.length, 1);
});
