/**
 * The stream registry as admin, metrics and health endpoints see it: per-stream status, events
 * (stream open/close, response, ACK, NACK) and nodeStatus ("latest version ACKed? last response
 * NACKed?").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import type { NackEvent, ResponseEvent, XdsEvent } from '../../../src/server/index.js';
import type { StreamStatus } from '../../../src/server/index.js';
import { eventually, startXds } from '../../support/xds-harness.js';
import { resourceSet } from '../../support/xds-fixtures.js';

test('events: open, response, ack, nack, close — with node, type, version and nonce', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const events: Array<[string, StreamStatus | XdsEvent | ResponseEvent | NackEvent]> = [];
  const reg = h.server.registry;
  reg.on('stream-open', (s) => events.push(['open', s]));
  reg.on('stream-close', (s) => events.push(['close', s]));
  reg.on('response', (e) => events.push(['response', e]));
  reg.on('ack', (e) => events.push(['ack', e]));
  reg.on('nack', (e) => events.push(['nack', e]));

  const s = h.conn.stream({ node: { id: 'envoy-1', cluster: 'web' } });
  s.subscribe(TypeUrl.Cluster);
  const r1 = await s.next();
  s.ack(r1);
  h.publish(resourceSet({ connectTimeoutS: 4 }));
  const r2 = await s.next();
  s.nack(r2, 'no thanks');
  s.nack(r2, 'no thanks'); // a retry: not outstanding any more, no second event
  await s.expectSilence(100);
  s.cancel();
  await eventually(() => events.some(([k]) => k === 'close'), 2_000, 'close event');

  assert.deepEqual(
    events.map(([k]) => k),
    ['open', 'response', 'ack', 'response', 'nack', 'close'],
  );
  const open = events[0]?.[1] as StreamStatus;
  assert.equal(open.nodeId, 'envoy-1');
  assert.equal(open.nodeCluster, 'web');
  const resp = events[1]?.[1] as ResponseEvent;
  assert.deepEqual(
    { ...resp, bytes: 0 },
    { streamId: open.id, nodeId: 'envoy-1', typeUrl: TypeUrl.Cluster, type: 'CDS', version: r1.versionInfo, nonce: r1.nonce, resources: 2, bytes: 0 },
  );
  assert.ok(resp.bytes > 0);
  const ack = events[2]?.[1] as XdsEvent;
  assert.equal(ack.version, r1.versionInfo);
  assert.equal(ack.nonce, r1.nonce);
  const nack = events[4]?.[1] as NackEvent;
  assert.equal(nack.version, r2.versionInfo);
  assert.equal(nack.message, 'no thanks');
  assert.equal(nack.code, 13);
  assert.equal(nack.repeated, false);
  const closed = events[5]?.[1] as StreamStatus;
  assert.equal(closed.types[0]?.lastNack?.message, 'no thanks');
});

test('nodeStatus follows a node from pending to ACKed, across types, and forgets it when it leaves', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const reg = h.server.registry;
  assert.equal(reg.nodeStatus('envoy-1'), undefined);
  const s = h.conn.stream({ node: { id: 'envoy-1' } });
  s.subscribe(TypeUrl.Cluster);
  const c = await s.next();
  let st = reg.nodeStatus('envoy-1');
  assert.equal(st?.upToDate, false, 'sent, not yet ACKed');
  assert.equal(st?.types.CDS?.pendingNonce, c.nonce);
  s.ack(c);
  s.subscribe(TypeUrl.ClusterLoadAssignment, ['c0', 'c1']);
  s.ack(await s.next());
  await eventually(() => reg.nodeStatus('envoy-1')?.upToDate === true, 1_000, 'up to date');
  st = reg.nodeStatus('envoy-1');
  assert.equal(st?.group, 'default');
  assert.equal(st?.streams, 1);
  assert.equal(st?.nacked, false);
  assert.equal(st?.types.EDS?.currentVersion, h.cache.get('default')?.version(TypeUrl.ClusterLoadAssignment));
  assert.equal(st?.types.EDS?.ackedVersion, st?.types.EDS?.currentVersion);
  assert.deepEqual(st?.types.EDS?.names, ['c0', 'c1']);
  assert.equal(st?.types.CDS?.wildcard, true);

  // A change that does not concern what the node subscribed to keeps it up to date.
  h.publish({ ...resourceSet(), endpoints: [...resourceSet().endpoints] });
  assert.equal(reg.nodeStatus('envoy-1')?.upToDate, true);

  // A new version pending: not up to date until ACKed.
  h.publish(resourceSet({ basePort: 9001 }));
  assert.equal(reg.nodeStatus('envoy-1')?.upToDate, false);
  s.ack(await s.next());
  await eventually(() => reg.nodeStatus('envoy-1')?.upToDate === true, 1_000, 'up to date again');

  const listed = reg.list();
  assert.equal(listed.length, 1);
  assert.equal(JSON.parse(JSON.stringify(reg)).streams[0].nodeId, 'envoy-1');
  assert.deepEqual(reg.nodes(), ['envoy-1']);

  s.cancel();
  await eventually(() => reg.nodeStatus('envoy-1') === undefined, 2_000, 'node forgotten');
  assert.equal(reg.size, 0);
  assert.deepEqual(reg.nodes(), []);
});

test('a rollback after a NACK makes the node up to date again (the client holds the version now current)', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  const reg = h.server.registry;
  const s = h.conn.stream({ node: { id: 'envoy-1' } });
  s.subscribe(TypeUrl.Cluster);
  const good = await s.next();
  s.ack(good);
  await eventually(() => reg.nodeStatus('envoy-1')?.upToDate === true, 1_000, 'up to date');
  h.publish(resourceSet({ connectTimeoutS: 4 }));
  s.nack(await s.next(), 'bad connect timeout');
  await eventually(() => reg.nodeStatus('envoy-1')?.nacked === true, 1_000, 'nacked');
  assert.equal(reg.nodeStatus('envoy-1')?.upToDate, false);
  // The operator rolls back: the current version is the one the client ACKed and still holds.
  h.publish(resourceSet());
  assert.equal(h.cache.get('default')?.version(TypeUrl.Cluster), good.versionInfo);
  await s.expectSilence(100);
  const st = reg.nodeStatus('envoy-1');
  assert.equal(st?.nacked, false);
  assert.equal(st?.upToDate, true);
  assert.equal(st?.types.CDS?.lastNack?.message, 'bad connect timeout', 'the NACK stays on record');
});
