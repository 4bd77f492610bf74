/**
 * Delta xDS with real Envoy (`api_type: DELTA_GRPC`) next to a SotW Envoy on the same server and
 * snapshot (100 clusters): both get up to date; the registry shows each stream's protocol; one
 * endpoint change sends the delta Envoy one ClusterLoadAssignment; one Cluster change sends it that
 * Cluster and its CLA (the warming re-send) while SotW re-sends all 100 Clusters, and no cluster
 * stays warming; after a control-plane restart the delta Envoy names what it holds
 * (initial_resource_versions) and is sent no resource again, while SotW is sent everything.
 * The bytes of each are printed (docs/xds-server.md, "Delta xDS", quotes them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot } from '../../src/cache/snapshot.js';
import { DEFAULT_GROUP, SnapshotCache } from '../../src/cache/snapshot-cache.js';
import { createXdsServer, type ResponseEvent, type XdsServer } from '../../src/server/index.js';
import type { XdsResourceSet } from '../../src/xds/resources.js';
import { cla, edsCluster, httpListener, resourceSet } from '../support/xds-fixtures.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { freePort, waitUntil } from '../support/tmp.js';

const N = 100;

function fleetSet(listenerPort: number, change: { endpointPort?: number; connectTimeoutS?: number } = {}): XdsResourceSet {
  const set = resourceSet({ clusters: N });
  return {
    ...set,
    clusters: set.clusters.map((c, i) => (i === 7 && change.connectTimeoutS !== undefined ? edsCluster('c7', { connectTimeoutS: change.connectTimeoutS }) : c)),
    endpoints: set.endpoints.map((e, i) => (i === 7 && change.endpointPort !== undefined ? cla('c7', [['127.0.0.1', change.endpointPort]]) : e)),
    listeners: [httpListener('http', listenerPort, 'routes')],
  };
}

interface Tally {
  responses: number;
  resources: number;
  bytes: number;
}

test('Envoy on delta xDS next to Envoy on SotW: what one change and one reconnect cost each', async (t) => {
  const cache = new SnapshotCache();
  const listenerPort = await freePort();
  cache.set(DEFAULT_GROUP, buildSnapshot(fleetSet(listenerPort)));
  let server: XdsServer = createXdsServer({ cache, shutdownGraceMs: 200 });
  const xdsPort = await server.listen('127.0.0.1', 0);
  const envoys: EnvoyHandle[] = [];
  t.after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await server.close();
  });

  const tallies = new Map<string, Tally>();
  const listen = (s: XdsServer): void => {
    s.registry.on('response', (e: ResponseEvent) => {
      const tally = tallies.get(e.nodeId);
      if (tally === undefined) return;
      tally.responses++;
      tally.resources += e.resources;
      tally.bytes += e.bytes;
    });
  };
  listen(server);
  const measure = async (what: string, change: () => void): Promise<Record<'sotw' | 'delta', Tally>> => {
    for (const id of ['sotw', 'delta']) tallies.set(id, { responses: 0, resources: 0, bytes: 0 });
    change();
    await settled(what);
    const out = { sotw: { ...(tallies.get('sotw') as Tally) }, delta: { ...(tallies.get('delta') as Tally) } };
    t.diagnostic(
      `${what}: SotW ${out.sotw.responses} responses, ${out.sotw.resources} resources, ${out.sotw.bytes} bytes; delta ${out.delta.responses} responses, ${out.delta.resources} resources, ${out.delta.bytes} bytes`,
    );
    return out;
  };
  const settled = (what: string): Promise<unknown> =>
    waitUntil(
      () =>
        ['sotw', 'delta'].every(
          (id) => Object.keys(server.registry.nodeStatus(id)?.types ?? {}).length === 4 && server.registry.nodeStatus(id)?.upToDate === true,
        ),
      { what: `both Envoys up to date (${what})`, timeoutMs: 20_000, context: () => JSON.stringify(server.registry.list()) },
    );

  envoys.push(await startEnvoy({ xdsPort, nodeId: 'sotw', nodeCluster: 'fleet', apiType: 'GRPC' }));
  envoys.push(await startEnvoy({ xdsPort, nodeId: 'delta', nodeCluster: 'fleet', apiType: 'DELTA_GRPC' }));
  await settled('first config');
  const protocols = server.registry
    .list()
    .map((s) => `${s.nodeId}:${s.method}:${s.protocol}`)
    .sort();
  assert.deepEqual(protocols, ['delta:ADS:delta', 'sotw:ADS:sotw']);
  const [sotwEnvoy, deltaEnvoy] = envoys as [EnvoyHandle, EnvoyHandle];

  const endpoint = await measure(`one endpoint change among ${N} clusters`, () =>
    cache.set(DEFAULT_GROUP, buildSnapshot(fleetSet(listenerPort, { endpointPort: 7777 }))),
  );
  assert.deepEqual(endpoint.delta, { ...endpoint.delta, responses: 1, resources: 1 });
  await deltaEnvoy.waitFor(async () => (await deltaEnvoy.clusters()).some((h) => h.cluster === 'c7' && h.port === 7777), {
    what: 'the delta Envoy routes c7 to :7777',
  });

  const cluster = await measure(`one Cluster change among ${N}`, () =>
    cache.set(DEFAULT_GROUP, buildSnapshot(fleetSet(listenerPort, { endpointPort: 7777, connectTimeoutS: 9 }))),
  );
  assert.deepEqual(cluster.delta, { ...cluster.delta, responses: 2, resources: 2 }, 'the Cluster, then its CLA re-sent so it finishes warming');
  assert.equal(cluster.sotw.resources, N + 1);
  for (const envoy of envoys) {
    await envoy.waitFor(async () => (await envoy.stats('cluster_manager.warming_clusters')).get('cluster_manager.warming_clusters') === 0, {
      what: 'no cluster left warming after the Cluster change',
    });
  }

  // Control-plane restart on the same port: both Envoys reconnect to a fresh server.
  await server.close();
  tallies.set('sotw', { responses: 0, resources: 0, bytes: 0 });
  tallies.set('delta', { responses: 0, resources: 0, bytes: 0 });
  server = createXdsServer({ cache, shutdownGraceMs: 200 });
  listen(server);
  await server.listen('127.0.0.1', xdsPort);
  await settled('reconnect');
  const sotw = tallies.get('sotw') as Tally;
  const delta = tallies.get('delta') as Tally;
  t.diagnostic(`reconnect: SotW ${sotw.resources} resources, ${sotw.bytes} bytes; delta ${delta.resources} resources, ${delta.bytes} bytes`);
  assert.equal(delta.resources, 0, 'initial_resource_versions: nothing re-sent that the delta Envoy holds');
  assert.ok(sotw.resources >= 2 * N, `SotW is sent everything again (${sotw.resources})`);
  for (const envoy of [sotwEnvoy, deltaEnvoy]) {
    assert.equal((await envoy.stats('cluster_manager.active_clusters')).get('cluster_manager.active_clusters'), N + 1);
  }
});
