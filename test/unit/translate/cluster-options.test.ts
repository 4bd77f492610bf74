/**
 * translate() of the cluster keys of seed 002 / 003: a DNS cluster with its inline
 * load_assignment and no ClusterLoadAssignment; HttpProtocolOptions with the stream and request
 * limits (non-deprecated fields); circuit breakers, outlier detection and panic threshold; hash
 * policies on every route (Envoy's and gRPC's) to a hashed cluster. Each resource also goes
 * through the real Envoy protos, so a misspelled field fails here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { translate, splitForClients } from '../../../src/translate/index.js';
import { messageType, TO_OBJECT } from '../../../src/envoy/protos.js';
import type { ProtoObject } from '../../../src/xds/resources.js';

const CONFIG = `
listener:
  edge: { address: "127.0.0.1", port: 8000, virtual-hosts: ["web"] }
  "greeter:50051": { type: grpc, virtual-hosts: ["greeter"] }
virtual-hosts:
  web:
    domain: ["web.test"]
    cluster:
      dns: { prefix: ["/dns"] }
      logical: { prefix: ["/logical"] }
      h2: { prefix: ["/h2"] }
      sticky: { prefix: ["/sticky"] }
  greeter:
    domain: ["greeter:50051"]
    cluster:
      greeter: { prefix: ["/"] }
cluster:
  loadbalancer:
    dns:
      discovery: strict-dns
      hosts: ["backend:50051", "10.0.0.7:8080"]
      dns-refresh-rate: 2.5
      dns-lookup-family: v4-only
    logical:
      discovery: logical-dns
      hosts: ["api.example.com:443"]
    h2:
      upstream-protocol: http2
      max-concurrent-streams: 4
      max-requests-per-connection: 1000
      circuit-breakers: { max-connections: 8, max-pending-requests: 0, max-requests: 2, max-retries: 1 }
      outlier-detection: { consecutive-5xx: 3, interval: 0.5, base-ejection-time: 10, max-ejection-percent: 100 }
      healthy-panic-threshold: 0
    sticky:
      lb-policy: maglev
      max-requests-per-connection: 5
      hash-policy: [{ header: x-user }, { cookie: { name: session } }, { source-ip: true }]
    greeter:
      lb-policy: ring-hash
      hash-policy: [{ header: x-user }]
      circuit-breakers: { max-requests: 10 }
`;

const set = translate(parseConfig(CONFIG, 'test.yaml'), new Map());
const cluster = (name: string): ProtoObject => {
  const c = set.clusters.find((x) => x.name === name);
  assert.ok(c, `cluster ${name}`);
  return c;
};
const routeTo = (table: string, cluster: string): Record<string, unknown> => {
  const rc = set.routes.find((r) => r.name === table) as { virtual_hosts: Array<{ routes: Array<{ route: Record<string, unknown> }> }> } | undefined;
  const r = rc?.virtual_hosts.flatMap((v) => v.routes).find((x) => x.route.cluster === cluster);
  assert.ok(r, `route to ${cluster} in ${table}`);
  return r.route;
};

/** Encoded by the real protos and decoded again, `obj` must still hold everything it had. */
function survivesEncoding(message: string, obj: ProtoObject): void {
  const type = messageType(message);
  const back = type.toObject(type.decode(type.encode(type.fromObject(obj)).finish()), TO_OBJECT);
  // TO_OBJECT gives every repeated field, empty ones as []: those were not set.
  const set = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (Array.isArray(x) && x.length === 0 ? undefined : x)));
  assert.deepEqual(set(back), set(obj), `${message} ${String(obj.name)} survives encoding`);
}

describe('translate: cluster options', () => {
  it('strict-dns / logical-dns: the names in an inline load_assignment, no EDS and no ClusterLoadAssignment', () => {
    assert.deepEqual(cluster('dns'), {
      name: 'dns',
      type: 'STRICT_DNS',
      load_assignment: {
        cluster_name: 'dns',
        endpoints: [
          {
            lb_endpoints: [
              { endpoint: { address: { socket_address: { protocol: 'TCP', address: 'backend', port_value: 50051 } } } },
              { endpoint: { address: { socket_address: { protocol: 'TCP', address: '10.0.0.7', port_value: 8080 } } } },
            ],
          },
        ],
      },
      dns_refresh_rate: { seconds: 2, nanos: 500_000_000 },
      dns_lookup_family: 'V4_ONLY',
      connect_timeout: { seconds: 5, nanos: 0 },
      lb_policy: 'ROUND_ROBIN',
    });
    assert.equal(cluster('logical').type, 'LOGICAL_DNS');
    assert.deepEqual(
      set.endpoints.map((e) => e.cluster_name),
      ['dns', 'greeter', 'h2', 'logical', 'sticky'].filter((n) => n !== 'dns' && n !== 'logical'),
    );
  });

  it('HTTP/2 stream limit and request limit through HttpProtocolOptions; breakers, outlier detection, panic threshold', () => {
    const h2 = cluster('h2');
    assert.deepEqual(h2.typed_extension_protocol_options, {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 4 } } },
        common_http_protocol_options: { max_requests_per_connection: { value: 1000 } },
      },
    });
    assert.equal(h2.max_requests_per_connection, undefined, 'not the deprecated Cluster field');
    assert.deepEqual(h2.circuit_breakers, {
      thresholds: [
        { priority: 'DEFAULT', max_connections: { value: 8 }, max_pending_requests: { value: 0 }, max_requests: { value: 2 }, max_retries: { value: 1 } },
      ],
    });
    assert.deepEqual(h2.outlier_detection, {
      consecutive_5xx: { value: 3 },
      interval: { seconds: 0, nanos: 500_000_000 },
      base_ejection_time: { seconds: 10, nanos: 0 },
      max_ejection_percent: { value: 100 },
    });
    assert.deepEqual(h2.common_lb_config, { healthy_panic_threshold: { value: 0 } });
    // HTTP/1.1 with a request limit: HttpProtocolOptions needs its protocol choice too.
    assert.deepEqual(
      (cluster('sticky').typed_extension_protocol_options as Record<string, Record<string, unknown>>)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']
        ?.explicit_http_config,
      { http_protocol_options: {} },
    );
    assert.equal(cluster('dns').typed_extension_protocol_options, undefined, 'HTTP/1.1 without limits: nothing to say');
  });

  it('hash policies go on the routes to the hashed cluster, for Envoy and for gRPC clients', () => {
    assert.deepEqual(routeTo('edge', 'sticky').hash_policy, [
      { header: { header_name: 'x-user' } },
      { cookie: { name: 'session' } },
      { connection_properties: { source_ip: true } },
    ]);
    assert.equal(routeTo('edge', 'h2').hash_policy, undefined);
    assert.deepEqual(routeTo('greeter:50051', 'greeter').hash_policy, [{ header: { header_name: 'x-user' } }]);
    const grpc = splitForClients(set).grpc;
    assert.deepEqual(
      grpc?.clusters.map((c) => c.name),
      ['greeter'],
    );
  });

  it('every resource survives the real Envoy protos', () => {
    for (const c of set.clusters) survivesEncoding('envoy.config.cluster.v3.Cluster', c);
    for (const r of set.routes) survivesEncoding('envoy.config.route.v3.RouteConfiguration', r);
  });
});
