/**
 * translate(): the seed 001 config and every extension turned into Envoy v3 resources, checked
 * field by field, then encoded through the real Envoy protos and decoded again (a misspelled
 * field or an unresolvable Any '@type' would silently vanish in protobufjs; the round trip
 * catches both). Also: refusals of what Envoy would NACK, and byte-identical output.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../../src/config/parse.js';
import type { Config } from '../../../src/config/schema.js';
import type { EndpointInfo, EndpointMap } from '../../../src/config/endpoints.js';
import { staticEndpoints } from '../../../src/config/static-endpoints.js';
import { translate } from '../../../src/translate/index.js';
import { envoyRoot, messageType, TO_OBJECT } from '../../../src/envoy/protos.js';
import { ConfigError } from '../../../src/errors.js';
import type { ProtoObject, XdsResourceSet } from '../../../src/xds/resources.js';
import { TYPE_PREFIX } from '../../../src/xds/resource-types.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const SEED = readFileSync(`${root}examples/seed-001.yaml`, 'utf8');

const MESSAGE: Record<keyof XdsResourceSet, string> = {
  clusters: 'envoy.config.cluster.v3.Cluster',
  endpoints: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  listeners: 'envoy.config.listener.v3.Listener',
  routes: 'envoy.config.route.v3.RouteConfiguration',
};

/** Every '@type' in an object tree. */
function anyTypes(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) anyTypes(v, out);
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k === '@type') out.push(String(v));
      else anyTypes(v, out);
    }
  }
  return out;
}

/** Everything in `expected` is in `actual` with the same value (actual may hold more: defaults). */
function assertSubset(expected: unknown, actual: unknown, where: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${where}: expected a list`);
    assert.equal(actual.length, expected.length, `${where}: list length`);
    expected.forEach((e, i) => {
      assertSubset(e, actual[i], `${where}[${i}]`);
    });
  } else if (typeof expected === 'object' && expected !== null) {
    assert.ok(typeof actual === 'object' && actual !== null, `${where}: expected a message`);
    for (const [k, v] of Object.entries(expected)) {
      const got = (actual as Record<string, unknown>)[k];
      assert.ok(got !== undefined && got !== null, `${where}.${k} was lost in encoding (unknown field or unresolved Any?)`);
      assertSubset(v, got, `${where}.${k}`);
    }
  } else {
    assert.equal(actual, expected, where);
  }
}

/** Encode through the real protos, decode, and check nothing was lost; returns the bytes. */
function roundTrip(set: XdsResourceSet): Buffer[] {
  const out: Buffer[] = [];
  for (const key of Object.keys(MESSAGE) as (keyof XdsResourceSet)[]) {
    const type = messageType(MESSAGE[key]);
    for (const obj of set[key]) {
      for (const url of anyTypes(obj)) {
        assert.ok(url.startsWith(TYPE_PREFIX), url);
        assert.doesNotThrow(() => envoyRoot().lookupType(url.slice(TYPE_PREFIX.length)), `Any type ${url} resolves`);
      }
      const bytes = type.encode(type.fromObject(obj)).finish();
      const back = type.toObject(type.decode(bytes), { ...TO_OBJECT, defaults: true });
      assertSubset(obj, back, `${key}:${String(obj.name ?? obj.cluster_name)}`);
      out.push(Buffer.from(bytes));
    }
  }
  return out;
}

function byName(list: readonly ProtoObject[], name: string): ProtoObject {
  const found = list.find((r) => r.name === name || r.cluster_name === name);
  assert.ok(found, `resource ${name}`);
  return found;
}

/** Navigate a resource object by a path of keys/indexes. */
function at(obj: unknown, ...path: (string | number)[]): unknown {
  let v = obj;
  for (const p of path) v = (v as Record<string | number, unknown>)[p];
  return v;
}

const noEndpoints: EndpointMap = new Map();
const seedConfig = (): Config => parseConfig(SEED, 'seed-001.yaml');

describe('translate: seed 001', () => {
  const set = translate(seedConfig(), noEndpoints);

  it('CDS has web-api-perl / web-api-go / web-asset over EDS/ADS with the seed health checks', () => {
    assert.deepEqual(
      set.clusters.map((c) => c.name),
      ['web-api-go', 'web-api-perl', 'web-asset'],
    );
    for (const c of set.clusters) {
      assert.deepEqual(c, {
        name: c.name,
        type: 'EDS',
        eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
        connect_timeout: { seconds: 5, nanos: 0 },
        lb_policy: 'ROUND_ROBIN',
        health_checks: [
          {
            timeout: { seconds: 3, nanos: 0 },
            interval: { seconds: 1, nanos: 0 },
            healthy_threshold: { value: 3 },
            unhealthy_threshold: { value: 4 },
            http_health_check: { host: 'www.mirrativ.com', path: '/health_check', expected_statuses: [{ start: 200, end: 201 }] },
          },
        ],
        common_lb_config: { locality_weighted_lb_config: {} },
      });
    }
  });

  it('RDS splits /api 90/10 and sends /asset to web-asset, Host rewritten to www.mirrativ.com', () => {
    assert.equal(set.routes.length, 1);
    assert.deepEqual(set.routes[0], {
      name: 'listen',
      virtual_hosts: [
        {
          name: 'default',
          domains: ['mirrativ.com', 'www.mirrativ.com'],
          routes: [
            { name: '/asset', match: { prefix: '/asset' }, route: { cluster: 'web-asset', host_rewrite_literal: 'www.mirrativ.com' } },
            {
              name: '/api',
              match: { prefix: '/api' },
              route: {
                weighted_clusters: {
                  clusters: [
                    { name: 'web-api-go', weight: { value: 10 } },
                    { name: 'web-api-perl', weight: { value: 90 } },
                  ],
                },
                host_rewrite_literal: 'www.mirrativ.com',
              },
            },
          ],
        },
      ],
    });
  });

  it('LDS: listener "listen" on 0.0.0.0:8000, HCM with RDS over ADS and the router filter last', () => {
    assert.equal(set.listeners.length, 1);
    const l = byName(set.listeners, 'listen');
    assert.deepEqual(l.address, { socket_address: { protocol: 'TCP', address: '0.0.0.0', port_value: 8000 } });
    const filters = at(l, 'filter_chains', 0, 'filters') as ProtoObject[];
    assert.equal(filters.length, 1);
    assert.equal(filters[0]?.name, 'envoy.filters.network.http_connection_manager');
    const hcm = at(filters[0], 'typed_config') as ProtoObject;
    assert.equal(hcm['@type'], 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
    assert.equal(hcm.stat_prefix, 'listen');
    assert.deepEqual(hcm.rds, { route_config_name: 'listen', config_source: { ads: {}, resource_api_version: 'V3' } });
    const http = hcm.http_filters as ProtoObject[];
    assert.deepEqual(http.at(-1), {
      name: 'envoy.filters.http.router',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
    });
    assert.equal(hcm.access_log, undefined);
  });

  it('EDS: a ClusterLoadAssignment per cluster even with no data (empty endpoints)', () => {
    assert.deepEqual(set.endpoints, [
      { cluster_name: 'web-api-go', endpoints: [] },
      { cluster_name: 'web-api-perl', endpoints: [] },
      { cluster_name: 'web-asset', endpoints: [] },
    ]);
  });

  it('encodes and decodes through the real Envoy protos without losing anything', () => {
    roundTrip(set);
  });

  it('is deeply frozen', () => {
    assert.ok(Object.isFrozen(set) && Object.isFrozen(set.clusters[0]) && Object.isFrozen(at(set.routes[0], 'virtual_hosts', 0, 'routes')));
  });
});

describe('translate: endpoints', () => {
  const eps = (list: EndpointInfo[]): EndpointMap => new Map([['web-api-go', list]]);

  it('one LocalityLbEndpoints per (region, zone), sorted, weight = sum of endpoint weights, locality {} when unknown', () => {
    const set = translate(
      seedConfig(),
      eps([
        { address: '10.0.1.2', port: 8080, health: 'HEALTHY', region: 'asia', zone: 'b', weight: 2 },
        { address: '10.0.0.9', port: 8080, health: 'UNHEALTHY' },
        { address: '10.0.1.1', port: 8080, health: 'DRAINING', region: 'asia', zone: 'b' },
        { address: '10.0.0.3', port: 8080, health: 'DEGRADED', region: 'asia', zone: 'a', weight: 5 },
      ]),
    );
    const sa = (address: string): ProtoObject => ({ address: { socket_address: { protocol: 'TCP', address, port_value: 8080 } } });
    assert.deepEqual(byName(set.endpoints, 'web-api-go'), {
      cluster_name: 'web-api-go',
      endpoints: [
        {
          locality: {},
          load_balancing_weight: { value: 1 },
          lb_endpoints: [{ endpoint: sa('10.0.0.9'), health_status: 'UNHEALTHY', load_balancing_weight: { value: 1 } }],
        },
        {
          locality: { region: 'asia', zone: 'a' },
          load_balancing_weight: { value: 5 },
          lb_endpoints: [{ endpoint: sa('10.0.0.3'), health_status: 'DEGRADED', load_balancing_weight: { value: 5 } }],
        },
        {
          locality: { region: 'asia', zone: 'b' },
          load_balancing_weight: { value: 3 },
          lb_endpoints: [
            { endpoint: sa('10.0.1.1'), health_status: 'DRAINING', load_balancing_weight: { value: 1 } },
            { endpoint: sa('10.0.1.2'), health_status: 'HEALTHY', load_balancing_weight: { value: 2 } },
          ],
        },
      ],
    });
    const decoded = roundTrip(set);
    assert.ok(decoded.length > 0);
    // The empty locality survives encoding as a present (empty) message: gRPC clients require it.
    const cla = messageType(MESSAGE.endpoints);
    const back = cla.toObject(cla.decode(cla.encode(cla.fromObject(byName(set.endpoints, 'web-api-go'))).finish()), TO_OBJECT);
    assert.deepEqual(at(back, 'endpoints', 0, 'locality'), {});
  });

  it('ignores endpoint data for clusters the config does not define', () => {
    const set = translate(seedConfig(), new Map([['stranger', [{ address: '10.0.0.1', port: 1, health: 'HEALTHY' as const }]]]));
    assert.deepEqual(
      set.endpoints.map((e) => e.cluster_name),
      ['web-api-go', 'web-api-perl', 'web-asset'],
    );
  });

  it('refuses endpoints Envoy would NACK: host names, weight 0, bad ports', () => {
    assert.throws(
      () =>
        translate(
          seedConfig(),
          eps([
            { address: 'web1.internal', port: 8080, health: 'HEALTHY', origin: 'consul:node1/web-api-go' },
            { address: '10.0.0.1', port: 0, health: 'HEALTHY' },
            { address: '10.0.0.2', port: 80, health: 'HEALTHY', weight: 0 },
          ]),
        ),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(
          err.issues.map((i) => `${i.path}: ${i.message}`),
          [
            'web-api-go[0].address: web1.internal:8080 from consul:node1/web-api-go: EDS endpoints need an IP address',
            'web-api-go[1].port: 10.0.0.1:0: port must be 1-65535',
            'web-api-go[2].weight: 10.0.0.2:80: weight must be an integer 1-4294967295',
          ],
        );
        return true;
      },
    );
  });
});

const EXTENDED = `
listener:
  public:
    address: "0.0.0.0"
    port: 8000
    virtual-hosts: ["default"]
    request-timeout: "30s"
    idle-timeout: 300
    access-log:
      grpc: { address: "127.0.0.1", port: 9001, log-name: "public", buffer-size-bytes: 0, flush-interval: "100ms" }
  admin:
    address: "127.0.0.1"
    port: 8001
    stat-prefix: "admin_http"
    virtual-hosts: ["admin", "grpc"]
    access-log:
      grpc: { address: "127.0.0.1", port: 9001 }
  mongo:
    address: "127.0.0.1"
    port: 27017
    type: tcp
    cluster: mongo
    idle-timeout: "1h"
    access-log:
      grpc: { address: "127.0.0.1", port: 9001 }
route:
  domain: ["mirrativ.com"]
  cluster:
    web-api-perl:
      prefix: ["/api", "/api/foobar"]
      weight: 90
      timeout: 2.5
      retry: { retry-on: ["reset", "5xx"], attempts: 2, per-try-timeout: "500ms" }
      mirror: { cluster: web-api-go-shadow, percent: 10 }
    web-api-go:
      prefix: ["/api"]
      weight: 10
      mirror: { cluster: web-api-go-shadow, percent: 10 }
virtual-hosts:
  admin:
    domain: ["admin.mirrativ.com", "*.admin.mirrativ.com"]
    cluster:
      web-api-perl:
        prefix: ["/"]
        mirror: { cluster: web-api-go-shadow, percent: 0.5 }
  grpc:
    domain: ["grpc.internal:8001"]
    cluster:
      greeter: { prefix: ["/helloworld.Greeter/"], mirror: { cluster: web-api-go-shadow, percent: 0.0025 } }
cluster:
  loadbalancer:
    web-api-perl: { lb-policy: least-request }
    web-api-go: { lb-policy: random, connect-timeout: "250ms" }
    web-api-go-shadow: { lb-policy: maglev }
    greeter:
      lb-policy: ring-hash
      upstream-protocol: http2
      health-check: { value: "/health", expected: ["200-299", "404"], timeout: 1, interval: "2s", no-traffic-interval: 5, healthy: 2, unhealthy: 3 }
    mongo:
      health-check: { type: tcp, timeout: 1, interval: 5, healthy: 1, unhealthy: 2 }
endpoint:
  eds:
    greeter:
      port: 50051
      static:
        - { address: "127.0.0.1", zone: "a", weight: 2 }
        - { address: "::1", port: 50052, zone: "a", health: unhealthy }
    mongo:
      static:
        - { address: "10.0.0.7", port: 27017 }
`;

describe('translate: extensions', () => {
  const config = parseConfig(EXTENDED, 'extended.yaml');
  const set = translate(config, staticEndpoints(config));

  it('several listeners, each http listener with its own RouteConfiguration of the virtual hosts it picks', () => {
    assert.deepEqual(
      set.listeners.map((l) => l.name),
      ['admin', 'mongo', 'public'],
    );
    assert.deepEqual(
      set.routes.map((r) => [r.name, (r.virtual_hosts as ProtoObject[]).map((v) => v.name)]),
      [
        ['admin', ['admin', 'grpc']],
        ['public', ['default']],
      ],
    );
    const admin = byName(set.listeners, 'admin');
    assert.equal(at(admin, 'filter_chains', 0, 'filters', 0, 'typed_config', 'stat_prefix'), 'admin_http');
    assert.equal(at(admin, 'filter_chains', 0, 'filters', 0, 'typed_config', 'rds', 'route_config_name'), 'admin');
    const vhosts = at(byName(set.routes, 'admin'), 'virtual_hosts') as ProtoObject[];
    assert.deepEqual(vhosts[0]?.domains, ['*.admin.mirrativ.com', 'admin.mirrativ.com']);
    assert.equal(at(vhosts[0], 'routes', 0, 'route', 'cluster'), 'web-api-perl');
    assert.equal(at(vhosts[0], 'routes', 0, 'route', 'host_rewrite_literal'), undefined);
  });

  it('longer prefixes first; per-route timeout, retries and mirroring with a percentage', () => {
    const routes = at(byName(set.routes, 'public'), 'virtual_hosts', 0, 'routes') as ProtoObject[];
    assert.deepEqual(
      routes.map((r) => at(r, 'match', 'prefix')),
      ['/api/foobar', '/api'],
    );
    assert.deepEqual(routes[1]?.route, {
      weighted_clusters: {
        clusters: [
          { name: 'web-api-go', weight: { value: 10 } },
          { name: 'web-api-perl', weight: { value: 90 } },
        ],
      },
      timeout: { seconds: 2, nanos: 500_000_000 },
      retry_policy: { retry_on: '5xx,reset', num_retries: { value: 2 }, per_try_timeout: { seconds: 0, nanos: 500_000_000 } },
      request_mirror_policies: [{ cluster: 'web-api-go-shadow', runtime_fraction: { default_value: { numerator: 10, denominator: 'HUNDRED' } } }],
    });
    // /api/foobar is web-api-perl's alone: a plain cluster action with the entry's options.
    assert.equal(at(routes[0], 'route', 'cluster'), 'web-api-perl');
    assert.equal(at(routes[0], 'route', 'weighted_clusters'), undefined);
    const fractions = (_virtualHost: string, i: number): unknown =>
      at(byName(set.routes, 'admin'), 'virtual_hosts', i, 'routes', 0, 'route', 'request_mirror_policies', 0, 'runtime_fraction', 'default_value');
    assert.deepEqual(fractions('admin', 0), { numerator: 50, denominator: 'TEN_THOUSAND' });
    assert.deepEqual(fractions('grpc', 1), { numerator: 25, denominator: 'MILLION' });
  });

  it('a tcp listener runs tcp_proxy to its cluster (seed 000 MongoDB)', () => {
    const filters = at(byName(set.listeners, 'mongo'), 'filter_chains', 0, 'filters') as ProtoObject[];
    assert.equal(filters.length, 1);
    assert.equal(filters[0]?.name, 'envoy.filters.network.tcp_proxy');
    const proxy = filters[0]?.typed_config as ProtoObject;
    assert.equal(proxy['@type'], 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy');
    assert.equal(proxy.stat_prefix, 'mongo');
    assert.equal(proxy.cluster, 'mongo');
    assert.deepEqual(proxy.idle_timeout, { seconds: 3600, nanos: 0 });
    assert.equal(at(proxy, 'access_log', 0, 'name'), 'envoy.access_loggers.tcp_grpc');
    assert.equal(at(proxy, 'access_log', 0, 'typed_config', '@type'), 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig');
  });

  it('gRPC access logs to the ALS sink, plus one STATIC HTTP/2 cluster for the sink', () => {
    const hcm = at(byName(set.listeners, 'public'), 'filter_chains', 0, 'filters', 0, 'typed_config') as ProtoObject;
    assert.deepEqual(hcm.access_log, [
      {
        name: 'envoy.access_loggers.http_grpc',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig',
          common_config: {
            log_name: 'public',
            grpc_service: { envoy_grpc: { cluster_name: 'consul-xds-als-127.0.0.1-9001' } },
            transport_api_version: 'V3',
            buffer_size_bytes: { value: 0 },
            buffer_flush_interval: { seconds: 0, nanos: 100_000_000 },
          },
        },
      },
    ]);
    assert.deepEqual(hcm.request_timeout, { seconds: 30, nanos: 0 });
    assert.deepEqual(hcm.common_http_protocol_options, { idle_timeout: { seconds: 300, nanos: 0 } });
    // Without log-name, the listener name.
    assert.equal(
      at(byName(set.listeners, 'admin'), 'filter_chains', 0, 'filters', 0, 'typed_config', 'access_log', 0, 'typed_config', 'common_config', 'log_name'),
      'admin',
    );
    const sinks = set.clusters.filter((c) => c.type === 'STATIC');
    assert.deepEqual(sinks, [
      {
        name: 'consul-xds-als-127.0.0.1-9001',
        type: 'STATIC',
        connect_timeout: { seconds: 1, nanos: 0 },
        load_assignment: {
          cluster_name: 'consul-xds-als-127.0.0.1-9001',
          endpoints: [
            { locality: {}, lb_endpoints: [{ endpoint: { address: { socket_address: { protocol: 'TCP', address: '127.0.0.1', port_value: 9001 } } } }] },
          ],
        },
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicit_http_config: { http2_protocol_options: {} },
          },
        },
      },
    ]);
    // The sink is not an EDS cluster: no ClusterLoadAssignment for it.
    assert.ok(!set.endpoints.some((e) => e.cluster_name === 'consul-xds-als-127.0.0.1-9001'));
  });

  it('clusters: lb policies, connect timeout, HTTP/2 via HttpProtocolOptions (never http2_protocol_options), http and tcp health checks', () => {
    assert.deepEqual(
      set.clusters.map((c) => [c.name, c.lb_policy ?? null]),
      [
        ['consul-xds-als-127.0.0.1-9001', null],
        ['greeter', 'RING_HASH'],
        ['mongo', 'ROUND_ROBIN'],
        ['web-api-go', 'RANDOM'],
        ['web-api-go-shadow', 'MAGLEV'],
        ['web-api-perl', 'LEAST_REQUEST'],
      ],
    );
    assert.deepEqual(byName(set.clusters, 'web-api-go').connect_timeout, { seconds: 0, nanos: 250_000_000 });
    const greeter = byName(set.clusters, 'greeter');
    assert.equal(greeter.http2_protocol_options, undefined);
    assert.deepEqual(greeter.typed_extension_protocol_options, {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    });
    assert.equal(byName(set.clusters, 'web-api-perl').typed_extension_protocol_options, undefined);
    assert.deepEqual(greeter.health_checks, [
      {
        timeout: { seconds: 1, nanos: 0 },
        interval: { seconds: 2, nanos: 0 },
        healthy_threshold: { value: 2 },
        unhealthy_threshold: { value: 3 },
        no_traffic_interval: { seconds: 5, nanos: 0 },
        http_health_check: {
          path: '/health',
          expected_statuses: [
            { start: 200, end: 300 },
            { start: 404, end: 405 },
          ],
        },
      },
    ]);
    assert.deepEqual(byName(set.clusters, 'mongo').health_checks, [
      {
        timeout: { seconds: 1, nanos: 0 },
        interval: { seconds: 5, nanos: 0 },
        healthy_threshold: { value: 1 },
        unhealthy_threshold: { value: 2 },
        tcp_health_check: {},
      },
    ]);
    assert.equal(byName(set.clusters, 'greeter').common_lb_config, undefined);
  });

  it('static endpoints become the CLAs of their clusters (port fallback, IPv6, health, weight)', () => {
    const greeter = byName(set.endpoints, 'greeter');
    assert.deepEqual(at(greeter, 'endpoints', 0, 'locality'), { zone: 'a' });
    assert.deepEqual(at(greeter, 'endpoints', 0, 'load_balancing_weight'), { value: 3 });
    const lbs = at(greeter, 'endpoints', 0, 'lb_endpoints') as ProtoObject[];
    assert.deepEqual(
      lbs.map((e) => [
        at(e, 'endpoint', 'address', 'socket_address', 'address'),
        at(e, 'endpoint', 'address', 'socket_address', 'port_value'),
        e.health_status,
      ]),
      [
        ['127.0.0.1', 50051, 'HEALTHY'],
        ['::1', 50052, 'UNHEALTHY'],
      ],
    );
    assert.deepEqual(byName(set.endpoints, 'web-api-go-shadow'), { cluster_name: 'web-api-go-shadow', endpoints: [] });
  });

  it('encodes and decodes through the real Envoy protos without losing anything', () => {
    const bytes = roundTrip(set);
    assert.equal(bytes.length, set.clusters.length + set.endpoints.length + set.listeners.length + set.routes.length);
  });
});

describe('translate: guards and determinism', () => {
  it('an unknown Any type would be lost: the round-trip check catches it', () => {
    const bad: XdsResourceSet = {
      clusters: [],
      endpoints: [],
      routes: [],
      listeners: [{ name: 'x', filter_chains: [{ filters: [{ name: 'f', typed_config: { '@type': `${TYPE_PREFIX}envoy.NoSuchType`, a: 1 } }] }] }],
    };
    assert.throws(() => roundTrip(bad), /does not resolve|no such type|lost in encoding/i);
  });

  it('re-checks cross-section rules for configs that did not come through parseConfig', () => {
    const base = structuredClone(seedConfig()) as { route: { cluster: Record<string, unknown> } };
    base.route.cluster['web-api-rust'] = { prefix: ['/rust'] };
    assert.throws(() => translate(base as unknown as Config, noEndpoints), {
      code: 'CXDS_CONFIG_INVALID',
      message: 'config: route.cluster.web-api-rust: cluster "web-api-rust" is not defined under cluster.loadbalancer',
    });
  });

  it('the same input gives byte-identical output, whatever the key order in the YAML', () => {
    const eps: EndpointMap = new Map([
      [
        'web-api-go',
        [
          { address: '10.0.0.2', port: 8080, health: 'HEALTHY' as const, zone: 'b' },
          { address: '10.0.0.1', port: 8080, health: 'HEALTHY' as const, zone: 'a' },
        ],
      ],
    ]);
    const reversedEps: EndpointMap = new Map([['web-api-go', [...(eps.get('web-api-go') ?? [])].reverse()]]);
    const perlThenGo = '    web-api-perl:\n      prefix: ["/api"]\n      weight: 90\n    web-api-go:\n      prefix: ["/api"]\n      weight: 10\n';
    const goThenPerl = '    web-api-go:\n      prefix: ["/api"]\n      weight: 10\n    web-api-perl:\n      prefix: ["/api"]\n      weight: 90\n';
    assert.ok(SEED.includes(perlThenGo));
    const reordered = SEED.replace(perlThenGo, goThenPerl).replace(
      'domain: ["mirrativ.com", "www.mirrativ.com"]',
      'domain: ["www.mirrativ.com", "mirrativ.com"]',
    );
    assert.notEqual(reordered, SEED);
    const a = roundTrip(translate(seedConfig(), eps));
    const b = roundTrip(translate(parseConfig(reordered, 'reordered'), reversedEps));
    assert.deepEqual(b, a);
  });
});

describe('translate: route matches beyond prefixes and header rewrites', () => {
  const CANARY = `
listener:
  listen: { address: "0.0.0.0", port: 8000 }
route:
  domain: ["mirrativ.com"]
  host-header: "www.mirrativ.com"
  cluster:
    web-api-perl:
      prefix: ["/api"]
      weight: 90
      request-headers: { set: { x-backend: perl }, remove: ["X-Debug"] }
    web-api-go:
      prefix: ["/api"]
      weight: 10
      response-headers: { set: { x-served-by: "go 100%" }, remove: ["server"] }
    web-api-go-canary:
      prefix: ["/api"]
      headers: { x-canary: true }
      request-headers: { append: { x-via: consul-xds }, add-if-absent: { x-tenant: default } }
    web-foobar: { path: ["/api/foobar"] }
    web-users: { regex: ["/api/v[0-9]+/users"], headers: { x-legacy: { present: false }, x-env: { prefix: beta }, x-id: { regex: "[0-9]+" }, x-trace: { present: true } } }
cluster:
  loadbalancer: { web-api-perl: {}, web-api-go: {}, web-api-go-canary: {}, web-foobar: {}, web-users: {} }
`;
  const config = parseConfig(CANARY, 'canary.yaml');
  const set = translate(config, staticEndpoints(config));
  const routes = at(byName(set.routes, 'listen'), 'virtual_hosts', 0, 'routes') as ProtoObject[];

  it('exact path, then regex, then the header canary, then the weighted catch-all of /api', () => {
    assert.deepEqual(
      routes.map((r) => r.name),
      ['= /api/foobar', '~ /api/v[0-9]+/users if x-env^=beta and x-id~=[0-9]+ and !x-legacy and x-trace', '/api if x-canary=true', '/api'],
    );
    assert.deepEqual(routes[0]?.match, { path: '/api/foobar' });
    assert.deepEqual(routes[1]?.match, {
      safe_regex: { regex: '/api/v[0-9]+/users' },
      headers: [
        { name: 'x-env', string_match: { prefix: 'beta' } },
        { name: 'x-id', string_match: { safe_regex: { regex: '[0-9]+' } } },
        // Absent: present_match inverted (older Envoys and gRPC clients read present_match: false as "present").
        { name: 'x-legacy', present_match: true, invert_match: true },
        { name: 'x-trace', present_match: true },
      ],
    });
    assert.deepEqual(routes[2]?.match, { prefix: '/api', headers: [{ name: 'x-canary', string_match: { exact: 'true' } }] });
    assert.deepEqual(routes[3]?.match, { prefix: '/api' });
  });

  it('a single cluster gets its header rewrites on the route; clusters in a split on their weighted cluster', () => {
    const canary = routes[2] as ProtoObject;
    assert.deepEqual(canary.route, { cluster: 'web-api-go-canary', host_rewrite_literal: 'www.mirrativ.com' });
    assert.deepEqual(canary.request_headers_to_add, [
      { header: { key: 'x-via', value: 'consul-xds' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-tenant', value: 'default' }, append_action: 'ADD_IF_ABSENT' },
    ]);
    assert.deepEqual(at(routes[3], 'route', 'weighted_clusters', 'clusters'), [
      {
        name: 'web-api-go',
        weight: { value: 10 },
        // Envoy reads header values as format strings: a literal % is written %%.
        response_headers_to_add: [{ header: { key: 'x-served-by', value: 'go 100%%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        response_headers_to_remove: ['server'],
      },
      {
        name: 'web-api-perl',
        weight: { value: 90 },
        request_headers_to_add: [{ header: { key: 'x-backend', value: 'perl' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        request_headers_to_remove: ['x-debug'],
      },
    ]);
    assert.equal(routes[3]?.request_headers_to_add, undefined, 'nothing on the shared route itself');
  });

  it('encodes and decodes through the real Envoy protos without losing anything', () => {
    roundTrip(set);
  });
});
