/**
 * One config, two kinds of client: the publisher sets an Envoy snapshot (`<group>`, never an API
 * listener) and, while the config has `type: grpc` listeners, a gRPC snapshot (`<group>/grpc`,
 * only API listeners); clientKindGroupOf routes each node to its kind's snapshot by user agent,
 * with node metadata `consul-xds.kind` as the override.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { SnapshotCache, type CacheWatch } from '../../../src/cache/snapshot-cache.js';
import { clientKindGroupOf, clientKindOf, grpcGroup } from '../../../src/cache/client-kind.js';
import type { NodeInfo } from '../../../src/cache/node-info.js';
import type { Snapshot } from '../../../src/cache/snapshot.js';
import { Publisher } from '../../../src/pipeline/publisher.js';
import { silentLogger } from '../../../src/log.js';
import { TypeUrl } from '../../../src/xds/resource-types.js';

function node(userAgentName: string, opts: { cluster?: string; kind?: string } = {}): NodeInfo {
  return {
    id: `${userAgentName}-${opts.cluster ?? ''}-${opts.kind ?? ''}`,
    cluster: opts.cluster ?? '',
    userAgentName,
    userAgentVersion: '1',
    metadata: opts.kind === undefined ? {} : { 'consul-xds.kind': opts.kind },
  };
}

const ENVOY = node('envoy');
const GRPC_JS = node('gRPC Node Pure JS');

function config(withGrpc: boolean, weight = 1, webTimeout = 5): string {
  return `
listener:
  edge: { address: "127.0.0.1", port: 8000, virtual-hosts: ["web"] }
${withGrpc ? '  "greeter:50051": { type: grpc, virtual-hosts: ["greeter"] }' : ''}
virtual-hosts:
  web: { domain: ["web.test"], cluster: { web: { prefix: ["/"] } } }
  greeter: { domain: ["greeter:50051"], cluster: { greeter: { prefix: ["/"], weight: ${weight} }, canary: { prefix: ["/"], weight: 1 } } }
cluster:
  loadbalancer: { web: { connect-timeout: ${webTimeout} }, greeter: {}, canary: {} }
`;
}

function listenersOf(snapshot: Snapshot | undefined): Array<{ name: string; api: boolean }> {
  return (snapshot?.type(TypeUrl.Listener).list ?? []).map((r) => ({ name: r.name, api: r.object.api_listener !== undefined }));
}

function publish(cache: SnapshotCache, text: string, group?: string): Publisher {
  const publisher = new Publisher({ cache, logger: silentLogger, ...(group ? { group } : {}) });
  publisher.setConfig(parseConfig(text, 'test.yaml'), 'test.yaml');
  assert.ok(publisher.flush(), 'the config publishes');
  return publisher;
}

test('client kind: user agent, with node metadata as the override', () => {
  assert.equal(clientKindOf(ENVOY), 'envoy');
  for (const ua of ['gRPC Node Pure JS', 'gRPC Go', 'gRPC Java', 'gRPC C-core 1.60', 'grpc-python']) assert.equal(clientKindOf(node(ua)), 'grpc', ua);
  // Unknown clients (our own data plane, tools) are served as before: like Envoy.
  assert.equal(clientKindOf(node('')), 'envoy');
  assert.equal(clientKindOf(node('grpcurl-ish-proxy', { kind: 'envoy' })), 'envoy', 'metadata overrides a gRPC-looking agent');
  assert.equal(clientKindOf(node('custom-client', { kind: 'grpc' })), 'grpc');
  assert.equal(clientKindOf(node('envoy', { kind: 'GRPC' })), 'envoy', 'an unknown metadata value is ignored');
  assert.equal(clientKindOf(undefined), 'envoy');
});

test('Envoy nodes get the Envoy snapshot without API listeners; gRPC clients get only the API listeners', () => {
  const cache = new SnapshotCache({ groupOf: clientKindGroupOf() });
  const publisher = publish(cache, config(true));
  assert.deepEqual(cache.groups().sort(), ['default', 'default/grpc']);
  assert.equal(cache.groupOf(ENVOY), 'default');
  assert.equal(cache.groupOf(GRPC_JS), 'default/grpc');
  assert.equal(cache.groupOf(node('custom', { kind: 'grpc' })), 'default/grpc');
  assert.equal(cache.groupOf(node('gRPC Go', { kind: 'envoy' })), 'default');

  assert.deepEqual(listenersOf(cache.get(cache.groupOf(ENVOY))), [{ name: 'edge', api: false }]);
  assert.deepEqual(listenersOf(cache.get(cache.groupOf(GRPC_JS))), [{ name: 'greeter:50051', api: true }]);
  assert.deepEqual(cache.get('default')?.names(TypeUrl.RouteConfiguration), ['edge']);
  assert.deepEqual(cache.get('default/grpc')?.names(TypeUrl.RouteConfiguration), ['greeter:50051']);
  // gRPC clients are served the clusters their routes name; Envoy every cluster.
  assert.deepEqual(cache.get('default/grpc')?.names(TypeUrl.Cluster), ['canary', 'greeter']);
  assert.deepEqual(cache.get('default/grpc')?.names(TypeUrl.ClusterLoadAssignment), ['canary', 'greeter']);
  assert.deepEqual(cache.get('default')?.names(TypeUrl.Cluster), ['canary', 'greeter', 'web']);
  assert.equal(publisher.grpcSnapshot, cache.get('default/grpc'));
  assert.ok(publisher.status().grpcSnapshotVersions, 'status shows the gRPC snapshot');
  publisher.close();
});

test('a change wakes only the kind it concerns; removing the gRPC listeners moves gRPC clients back', () => {
  const cache = new SnapshotCache({ groupOf: clientKindGroupOf() });
  const publisher = publish(cache, config(true, 1));
  const heard = { envoy: 0, grpc: 0 };
  const watches: CacheWatch[] = [cache.watch(ENVOY, () => heard.envoy++), cache.watch(GRPC_JS, () => heard.grpc++)];
  const envoyVersion = cache.get('default')?.version();

  publisher.setConfig(parseConfig(config(true, 9), 'test.yaml'), 'test.yaml');
  publisher.flush();
  assert.deepEqual(heard, { envoy: 0, grpc: 1 }, "a gRPC route weight is not Envoy's business");
  assert.equal(cache.get('default')?.version(), envoyVersion);

  publisher.setConfig(parseConfig(config(true, 9, 7), 'test.yaml'), 'test.yaml');
  publisher.flush();
  assert.deepEqual(heard, { envoy: 1, grpc: 1 }, "a cluster only Envoy routes to is not gRPC's business");

  publisher.setConfig(parseConfig(config(false), 'test.yaml'), 'test.yaml');
  publisher.flush();
  assert.deepEqual(cache.groups(), ['default'], 'no gRPC listener, no gRPC snapshot');
  assert.equal(watches[1]?.group, 'default', 'the gRPC client now follows the Envoy snapshot (its listener is gone)');
  assert.equal(publisher.grpcSnapshot, undefined);
  for (const w of watches) w.cancel();
  publisher.close();
});

test('node groups: a gRPC client of group `edge` gets `edge/grpc`; no Envoy ever lands on a /grpc group', () => {
  const cache = new SnapshotCache({ groupOf: clientKindGroupOf() });
  const a = publish(cache, config(true));
  const b = publish(cache, config(true), 'edge');
  assert.equal(cache.groupOf(node('gRPC Go', { cluster: 'edge' })), grpcGroup('edge'));
  assert.equal(cache.groupOf(node('envoy', { cluster: 'edge' })), 'edge');
  assert.equal(cache.groupOf(node('envoy', { cluster: 'default/grpc' })), 'default', 'node.cluster naming a /grpc group is not followed');
  assert.equal(cache.groupOf(node('gRPC Go', { cluster: 'unknown' })), 'default/grpc');
  a.close();
  b.close();
});
