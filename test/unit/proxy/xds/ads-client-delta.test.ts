/**
 * The proxy's ADS client speaking delta xDS (bootstrap `api_type: DELTA_GRPC`) against our real
 * xDS server on loopback: wildcard CDS/LDS and EDS for the referenced names over
 * DeltaAggregatedResources; a removed cluster arrives as a removal; a subscribed name that does
 * not exist is reported at once (removed_resources), not after the 15 s timer; a rejected
 * resource is NACKed and its version not sent again; after a control-plane restart the client
 * names what it holds (initial_resource_versions) and is sent nothing it has.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TypeUrl, type XdsTypeUrl } from '../../../../src/xds/resource-types.js';
import { XdsClient, type ApplyError, type XdsUpdate, type XdsWatcher } from '../../../../src/proxy/xds/ads-client.js';
import { nodeModel, readBootstrapFile } from '../../../../src/proxy/config/bootstrap.js';
import { createXdsServer, type ResponseEvent } from '../../../../src/server/index.js';
import { eventually, startXds } from '../../../support/xds-harness.js';
import { resourceSet } from '../../../support/xds-fixtures.js';
import { adsBootstrap } from '../../../support/envoy.js';
import { makeTempDir } from '../../../support/tmp.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Applies nothing; records updates, subscribes EDS like the proxy does, fails the CLA it is told to. */
class Recorder implements XdsWatcher {
  readonly updates: XdsUpdate[] = [];
  readonly missing: string[] = [];
  client: XdsClient | undefined;
  refuse: string | undefined;

  onUpdate(u: XdsUpdate): readonly ApplyError[] {
    this.updates.push(u);
    if (u.typeUrl === TypeUrl.Cluster)
      this.client?.subscribe(
        TypeUrl.ClusterLoadAssignment,
        [...(this.client?.known(TypeUrl.Cluster).keys() ?? []), ...u.upserts.map((r) => r.name)].filter((n) => !u.removals.includes(n)),
      );
    if (u.typeUrl !== TypeUrl.ClusterLoadAssignment) return [];
    return u.upserts.filter((r) => r.name === this.refuse).map((r) => ({ name: r.name, message: `${r.name}: refused by the test` }));
  }

  onDoesNotExist(_url: XdsTypeUrl, name: string): void {
    this.missing.push(name);
  }

  names(type: XdsTypeUrl): string[] {
    return this.updates.filter((u) => u.typeUrl === type).flatMap((u) => u.upserts.map((r) => r.name));
  }
}

test('delta: subscribe, removals, does-not-exist at once, NACK not re-sent, reconnect sends nothing held', async (t) => {
  const h = await startXds({ set: resourceSet({ clusters: 3 }) });
  let server = h.server;
  t.after(async () => {
    await server.close();
    await h.close();
  });
  const w = new Recorder();
  const client = new XdsClient({
    server: { host: '127.0.0.1', port: h.port },
    node: nodeModel('delta-proxy', 'web'),
    watcher: w,
    delta: true,
    backoff: { baseMs: 50, maxMs: 200 },
  });
  w.client = client;
  t.after(() => client.close());
  client.start();

  await eventually(() => client.known(TypeUrl.ClusterLoadAssignment).size === 3 && client.known(TypeUrl.Listener).size === 1, 5_000, 'CDS, EDS, LDS applied');
  const streams = h.server.registry.list();
  assert.deepEqual(
    streams.map((s) => `${s.nodeId}:${s.method}:${s.protocol}`),
    ['delta-proxy:ADS:delta'],
  );
  // Each resource is known at its own version (the content hash), as initial_resource_versions needs.
  assert.equal(client.known(TypeUrl.Cluster).get('c0')?.version, h.cache.get('default')?.type(TypeUrl.Cluster).resources.get('c0')?.version);

  // A removed cluster comes as a removal.
  h.publish(resourceSet({ clusters: 2 }));
  await eventually(() => w.updates.some((u) => u.typeUrl === TypeUrl.Cluster && u.removals.includes('c2')), 5_000, 'c2 removed');

  // A name that does not exist is reported at once (the server answers it in removed_resources).
  client.subscribe(TypeUrl.ClusterLoadAssignment, ['c0', 'c1', 'nope']);
  await eventually(() => w.missing.includes('nope'), 2_000, "'nope' reported as does-not-exist well before the 15 s timer");

  // A refused resource is NACKed; its version is not sent again when something else changes.
  w.refuse = 'c0';
  const nacks: string[] = [];
  h.server.registry.on('nack', (e) => nacks.push(e.type));
  h.publish(resourceSet({ clusters: 2, basePort: 9000 }));
  await eventually(() => nacks.includes('EDS'), 5_000, 'the EDS update NACKed');
  const before = w.names(TypeUrl.ClusterLoadAssignment).filter((n) => n === 'c0').length;
  h.publish(resourceSet({ clusters: 2, basePort: 9000, connectTimeoutS: 3 }));
  await eventually(() => h.server.registry.nodeStatus('delta-proxy')?.types.CDS?.upToDate === true, 5_000, 'the Cluster change ACKed');
  await client.idle();
  assert.equal(
    w.names(TypeUrl.ClusterLoadAssignment).filter((n) => n === 'c0').length,
    before,
    'the NACKed c0 version was not re-sent (not even to warm its cluster)',
  );

  // Control-plane restart: the client reconnects and names what it holds; nothing it holds comes again.
  w.refuse = undefined;
  const port = h.port;
  await server.close();
  server = createXdsServer({ cache: h.cache, shutdownGraceMs: 200 });
  let resources = 0;
  server.registry.on('response', (e: ResponseEvent) => {
    resources += e.resources;
  });
  await server.listen('127.0.0.1', port);
  await eventually(
    () => server.registry.nodeStatus('delta-proxy')?.upToDate === true && Object.keys(server.registry.nodeStatus('delta-proxy')?.types ?? {}).length === 3,
    10_000,
    'up to date after the restart',
  );
  // c0's CLA (rejected before) is the only thing the client lacks.
  assert.equal(resources, 1);
});

test('bootstrap: ads_config.api_type DELTA_GRPC is read; anything else but GRPC is refused, naming the path', async (t) => {
  const dir = await makeTempDir('delta-bootstrap');
  t.after(() => dir.remove());
  const file = join(dir.path, 'b.json');
  await writeFile(file, JSON.stringify(adsBootstrap({ xdsPort: 9000, nodeId: 'n', nodeCluster: 'c', apiType: 'DELTA_GRPC' })));
  assert.equal(readBootstrapFile(file).apiType, 'DELTA_GRPC');
  await writeFile(file, JSON.stringify(adsBootstrap({ xdsPort: 9000, nodeId: 'n', nodeCluster: 'c' })));
  assert.equal(readBootstrapFile(file).apiType, 'GRPC');
  const bad = adsBootstrap({ xdsPort: 9000, nodeId: 'n', nodeCluster: 'c' }) as { dynamic_resources: { ads_config: Record<string, unknown> } };
  bad.dynamic_resources.ads_config.api_type = 'REST';
  await writeFile(file, JSON.stringify(bad));
  assert.throws(() => readBootstrapFile(file), /dynamic_resources\.ads_config\.api_type/);
});
