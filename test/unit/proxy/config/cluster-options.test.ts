/**
 * Our data plane reads the cluster keys of seed 002 / 003 from what our control plane emits: a
 * STRICT_DNS cluster's names and DNS settings, HTTP/2 stream and request limits, circuit
 * breakers, outlier detection, panic threshold, and the hash policy on the route.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../../src/config/parse.js';
import { translate } from '../../../../src/translate/index.js';
import { messageType } from '../../../../src/envoy/protos.js';
import { TypeUrl, messageNameOf, type XdsTypeUrl } from '../../../../src/xds/resource-types.js';
import type { ProtoObject } from '../../../../src/xds/resources.js';
import { decodeResource, isRejected, type ModelOf } from '../../../../src/proxy/xds/resource-types.js';

const CONFIG = `
listener:
  edge: { address: "127.0.0.1", port: 8000 }
route:
  domain: ["*"]
  cluster:
    dns: { prefix: ["/dns"] }
    h2: { prefix: ["/h2"] }
cluster:
  loadbalancer:
    dns:
      discovery: strict-dns
      hosts: ["localhost:8080", "backend.test:9090"]
      dns-refresh-rate: 2
      dns-lookup-family: v4-only
    h2:
      lb-policy: ring-hash
      upstream-protocol: http2
      max-concurrent-streams: 4
      max-requests-per-connection: 100
      circuit-breakers: { max-connections: 8, max-pending-requests: 0, max-requests: 2, max-retries: 1 }
      outlier-detection: { consecutive-5xx: 3, interval: 0.5, base-ejection-time: 10, max-ejection-percent: 100 }
      healthy-panic-threshold: 0
      hash-policy: [{ header: x-user }, { cookie: { name: session } }, { source-ip: true }]
`;

function decode<T extends XdsTypeUrl>(url: T, obj: ProtoObject): ModelOf[T] {
  const t = messageType(messageNameOf(url));
  const d = decodeResource(url, t.encode(t.fromObject(obj)).finish(), 0);
  assert.ok(!isRejected(d), isRejected(d) ? d.error : '');
  return d.model as ModelOf[T];
}

describe('our proxy reads the cluster options our control plane emits', () => {
  const set = translate(parseConfig(CONFIG, 'test.yaml'), new Map());
  const cluster = (name: string): ModelOf[typeof TypeUrl.Cluster] => decode(TypeUrl.Cluster, set.clusters.find((c) => c.name === name) as ProtoObject);

  it('a STRICT_DNS cluster: its names, refresh rate and address family', () => {
    const c = cluster('dns');
    assert.equal(c.discovery, 'STRICT_DNS');
    assert.equal(c.dns?.strict, true);
    assert.equal(c.dns?.refreshMs, 2000);
    assert.equal(c.dns?.family, 'V4_ONLY');
    assert.deepEqual(
      c.dns?.targets.localities.flatMap((l) => l.endpoints.map((e) => `${e.address}:${e.port}`)),
      ['localhost:8080', 'backend.test:9090'],
    );
  });

  it('limits, breakers, outlier detection, panic threshold', () => {
    const c = cluster('h2');
    assert.equal(c.http2, true);
    assert.equal(c.h2MaxConcurrentStreams, 4);
    assert.equal(c.maxRequestsPerConnection, 100);
    assert.deepEqual(c.thresholds, { maxConnections: 8, maxPendingRequests: 0, maxRequests: 2, maxRetries: 1 });
    assert.equal(c.outlier?.consecutive5xx, 3);
    assert.equal(c.outlier?.intervalMs, 500);
    assert.equal(c.outlier?.baseEjectionMs, 10_000);
    assert.equal(c.outlier?.maxEjectionPercent, 100);
    assert.equal(c.panicThreshold, 0);
  });

  it('the hash policy on the route to the hashed cluster', () => {
    const rc = decode(TypeUrl.RouteConfiguration, set.routes[0] as ProtoObject);
    const route = rc.virtualHosts[0]?.routes.find((r) => r.match.value === '/h2');
    assert.ok(route?.action.kind === 'forward');
    assert.deepEqual(
      route.action.hashPolicies.map((h) => h.kind),
      ['header', 'cookie', 'source_ip'],
    );
  });
});
