/**
 * Delta streams in the admin server exactly like SotW ones, over loopback with the real xDS server
 * and a raw delta client: health waits for the first ACK and is ready after it; /status/clients
 * lists the stream with `protocol: 'delta'` (and a SotW stream beside it with 'sotw'); a NACK shows
 * there and fails health; /metrics counts delta responses, ACKs, NACKs and streams.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { SnapshotCache } from '../../../src/cache/snapshot-cache.js';
import { buildSnapshot } from '../../../src/cache/snapshot.js';
import { createXdsServer, type NodeStatus, type StreamStatus } from '../../../src/server/index.js';
import { startSidecar } from '../../../src/sidecar.js';
import { silentLogger } from '../../../src/log.js';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import { AdsConnection } from '../../support/ads-client.js';
import { resourceSet } from '../../support/xds-fixtures.js';
import { waitUntil } from '../../support/tmp.js';

test('a delta stream is health-checked, listed and counted like a SotW one', async () => {
  const cache = new SnapshotCache();
  cache.set('default', buildSnapshot(resourceSet({ clusters: 1 })));
  const xds = createXdsServer({ cache, logger: silentLogger });
  const xdsPort = await xds.listen('127.0.0.1', 0);
  const sidecar = await startSidecar({
    cache,
    registry: xds.registry,
    logger: silentLogger,
    admin: { port: 0, watchNode: 'envoy-delta' },
    als: false,
    processMetrics: false,
  });
  const conn = new AdsConnection(`127.0.0.1:${xdsPort}`);
  after(async () => {
    conn.close();
    await sidecar.close();
    await xds.close();
  });
  const base = `http://127.0.0.1:${sidecar.adminPort}`;
  const get = async (p: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${base}${p}`);
    return { status: res.status, body: await res.text() };
  };

  const delta = conn.deltaStream({ node: { id: 'envoy-delta', cluster: 'edge' } });
  delta.subscribe(TypeUrl.Cluster);
  const cds = await delta.next();
  assert.equal((await get('/health')).status, 503, 'not ready before the first ACK');
  delta.ack(cds);
  await waitUntil(async () => (await get('/health')).status === 200, { what: 'health 200 after the delta ACK', timeoutMs: 5_000 });

  const sotw = conn.stream({ node: { id: 'envoy-sotw', cluster: 'edge' } });
  sotw.subscribe(TypeUrl.Cluster);
  sotw.ack(await sotw.next());
  await waitUntil(() => xds.registry.nodeStatus('envoy-sotw')?.upToDate === true, { what: 'the SotW node up to date', timeoutMs: 5_000 });
  const listed = JSON.parse((await get('/status/clients')).body) as { nodes: NodeStatus[]; streams: StreamStatus[] };
  assert.deepEqual(listed.streams.map((s) => `${s.nodeId}:${s.protocol}`).sort(), ['envoy-delta:delta', 'envoy-sotw:sotw']);

  cache.set('default', buildSnapshot(resourceSet({ clusters: 1, connectTimeoutS: 7 })));
  const bad = await delta.next();
  delta.nack(bad, 'cluster c0: connect_timeout not liked');
  sotw.ack(await sotw.next());
  await waitUntil(async () => (await get('/health')).status === 503, { what: 'health to report the delta NACK', timeoutMs: 5_000 });
  assert.match((await get('/health')).body, /connect_timeout not liked/);
  const status = JSON.parse((await get('/status/clients')).body) as { nodes: NodeStatus[] };
  const node = status.nodes.find((n) => n.nodeId === 'envoy-delta');
  assert.equal(node?.nacked, true);
  assert.equal(node?.types.CDS?.lastNack?.message, 'cluster c0: connect_timeout not liked');

  const metrics = (await get('/metrics')).body;
  assert.match(metrics, /^consul_xds_xds_nacks_total\{type="CDS"\} 1$/m);
  assert.match(metrics, /^consul_xds_xds_streams 2$/m);
});
