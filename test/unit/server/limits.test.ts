/**
 * The xDS server's per-client limits (xds-server.ts, DEFAULT_XDS_LIMITS) over a real gRPC
 * connection: too many resource_names end the stream with INVALID_ARGUMENT naming count and
 * limit; a request over the size cap ends it with RESOURCE_EXHAUSTED; the defaults take an
 * ordinary large subscription; /status/clients output stays bounded whatever names a client sends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import { DEFAULT_XDS_LIMITS } from '../../../src/server/index.js';
import { MAX_STATUS_NAMES, MAX_STATUS_NAME_CHARS } from '../../../src/server/stream-state.js';
import { eventually, startXds } from '../../support/xds-harness.js';
import { resourceSet } from '../../support/xds-fixtures.js';

const names = (n: number, prefix = 'c') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

test('more resource_names than the limit end the stream with INVALID_ARGUMENT naming both numbers', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }), limits: { maxResourceNames: 5 } });
  t.after(() => h.close());
  const ok = h.stream();
  ok.subscribe(TypeUrl.ClusterLoadAssignment, names(5));
  assert.deepEqual((await ok.next()).names, ['c0', 'c1', 'c2'], 'at the limit: served');
  const s = h.stream({ node: { id: 'greedy' } });
  s.subscribe(TypeUrl.ClusterLoadAssignment, names(6));
  const status = await s.status;
  assert.equal(status.code, GrpcStatus.INVALID_ARGUMENT);
  assert.match(status.details, /EDS request names 6 resources; the limit is 5/);
  assert.equal(s.received.length, 0, 'nothing was sent');
  assert.equal(h.server.stats.overLimit, 1);
  // Over the limit on a later request too (a subscription that grows).
  ok.subscribe(TypeUrl.ClusterLoadAssignment, names(7));
  assert.equal((await ok.status).code, GrpcStatus.INVALID_ARGUMENT);
});

test('a request over the size cap ends its stream with RESOURCE_EXHAUSTED; the default cap is 1 MiB', { timeout: 20_000 }, async (t) => {
  assert.equal(DEFAULT_XDS_LIMITS.maxReceiveMessageBytes, 1024 * 1024);
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  // 1.2 MiB of names (under the name-count limit): refused by size alone.
  const s = h.stream({ node: { id: 'huge' } });
  s.subscribe(TypeUrl.ClusterLoadAssignment, names(3000, `${'x'.repeat(400)}-`));
  const status = await s.status;
  assert.equal(status.code, GrpcStatus.RESOURCE_EXHAUSTED);
  assert.equal(s.received.length, 0);
  // Default behaviour for an ordinary big client: 5,000 names (~50 KiB) are served.
  const big = h.stream({ node: { id: 'big' } });
  big.subscribe(TypeUrl.ClusterLoadAssignment, names(5000));
  assert.deepEqual((await big.next()).names, ['c0', 'c1', 'c2']);
});

test('/status/clients shows at most MAX_STATUS_NAMES names per type, each cut at MAX_STATUS_NAME_CHARS', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  t.after(() => h.close());
  const s = h.stream({ node: { id: 'wordy' } });
  const long = `${'n'.repeat(MAX_STATUS_NAME_CHARS + 100)}`;
  s.subscribe(TypeUrl.ClusterLoadAssignment, [long, ...names(MAX_STATUS_NAMES + 500)]);
  await s.next();
  await eventually(() => h.server.registry.nodeStatus('wordy') !== undefined, 2_000, 'node listed');
  const [stream] = h.server.registry.list().filter((st) => st.nodeId === 'wordy');
  const eds = stream?.types.find((ty) => ty.type === 'EDS');
  assert.ok(eds);
  assert.equal(eds.names.length, MAX_STATUS_NAMES);
  assert.equal(eds.namesOmitted, 501);
  assert.ok(eds.names.every((n) => n.length <= MAX_STATUS_NAME_CHARS + 3));
  assert.ok(JSON.stringify(stream).length < 64 * 1024, `status of one stream stays small: ${JSON.stringify(stream).length} chars`);
});

test('one connection gets at most maxConcurrentStreams streams at once; the next waits for a free one', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }), limits: { maxConcurrentStreams: 2 } });
  t.after(() => h.close());
  const streams = ['s1', 's2', 's3'].map((id) => h.stream({ node: { id } }));
  for (const s of streams) s.subscribe(TypeUrl.Cluster);
  await streams[0]?.next();
  await streams[1]?.next();
  await assert.rejects(streams[2]!.next(500), /no response within 500 ms/, 'the third stream is not served while two are open');
  assert.equal(h.server.registry.size, 2);
  streams[0]?.cancel();
  assert.deepEqual((await streams[2]!.next()).names.length, 3, 'served once a stream is free');
});
