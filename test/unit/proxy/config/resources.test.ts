/**
 * Resource validation of our data plane: everything our own translate() emits (every config
 * extension at once) decodes and validates without a single refusal, so `consul-xds proxy`
 * honours every field our control plane sends; and fields it cannot honour are refused with a
 * message naming the resource and the field path (that text becomes the NACK's error_detail).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../../src/config/parse.js';
import { staticEndpoints } from '../../../../src/config/static-endpoints.js';
import { translate } from '../../../../src/translate/index.js';
import { messageType } from '../../../../src/envoy/protos.js';
import { TypeUrl, messageNameOf, type XdsTypeUrl } from '../../../../src/xds/resource-types.js';
import type { ProtoObject, XdsResourceSet } from '../../../../src/xds/resources.js';
import { decodeResource, isRejected } from '../../../../src/proxy/xds/resource-types.js';
import type { ClusterModel } from '../../../../src/proxy/config/cluster-resource.js';
import { SUPPORT } from '../../../../src/proxy/config/support.js';
import type { ListenerModel } from '../../../../src/proxy/config/listener-resource.js';
import type { RouteConfigModel, RouteModel } from '../../../../src/proxy/config/route-resource.js';

const KITCHEN_SINK = `
listener:
  web:
    address: "127.0.0.1"
    port: 10000
    request-timeout: 30
    idle-timeout: 300
    access-log: { grpc: { address: "127.0.0.1", port: 9001, buffer-size-bytes: 0, flush-interval: 0.5 } }
  mongo:
    address: "127.0.0.1"
    port: 27017
    type: tcp
    cluster: mongo
    idle-timeout: 60
    access-log: { grpc: { address: "127.0.0.1", port: 9001, log-name: mongo-log } }
route:
  domain: ["app.test", "*.app.test"]
  host-header: "www.app.test"
  cluster:
    perl:
      prefix: ["/api"]
      weight: 90
      timeout: 2
      retry: { retry-on: ["5xx", "connect-failure", "unavailable"], attempts: 3, per-try-timeout: 0.5 }
      mirror: { cluster: shadow, percent: 12.5 }
    go: { prefix: ["/api"], weight: 10, response-headers: { set: { x-served-by: "go 100%" }, remove: ["server"] } }
    grpc: { prefix: ["/pkg.Svc/"] }
    canary:
      prefix: ["/api"]
      path: ["/login"]
      regex: ["/v[0-9]+/items"]
      headers: { x-canary: true, x-env: { prefix: beta }, x-user: { regex: "[0-9]+" }, x-debug: { present: false }, x-trace: { present: true } }
      request-headers: { set: { x-a: "1" }, append: { x-b: "2" }, add-if-absent: { x-c: "3" }, remove: ["x-d"] }
cluster:
  loadbalancer:
    perl:
      lb-policy: least-request
      connect-timeout: 0.25
      health-check: { type: http, host: hc.test, value: /health, expected: ["200-299", "304"], timeout: 1, interval: 2, no-traffic-interval: 5, healthy: 2, unhealthy: 3 }
    go: { lb-policy: random }
    shadow: { lb-policy: ring-hash }
    grpc: { lb-policy: maglev, upstream-protocol: http2, health-check: { type: tcp, timeout: 1, interval: 1, healthy: 1, unhealthy: 1 } }
    mongo: { lb-policy: round-robin }
    canary: {}
endpoint:
  eds:
    perl: { port: 8080, balancing-policy: locality, static: [{ address: "10.0.0.1", zone: a, region: r, weight: 3 }, { address: "10.0.0.2", zone: b, health: draining }] }
    go: { port: 8081, static: [{ address: "10.0.0.3" }] }
    shadow: { port: 8082, static: [{ address: "10.0.0.4" }] }
    grpc: { port: 50051, static: [{ address: "::1" }] }
    mongo: { port: 27017, static: [{ address: "10.0.0.5", health: unhealthy }] }
    canary: { port: 8083, static: [{ address: "10.0.0.6" }] }
`;

const SETS: ReadonlyArray<[keyof XdsResourceSet, XdsTypeUrl]> = [
  ['clusters', TypeUrl.Cluster],
  ['endpoints', TypeUrl.ClusterLoadAssignment],
  ['listeners', TypeUrl.Listener],
  ['routes', TypeUrl.RouteConfiguration],
];

function encode(url: XdsTypeUrl, obj: ProtoObject): Uint8Array {
  const t = messageType(messageNameOf(url));
  return t.encode(t.fromObject(obj)).finish();
}

function decode(url: XdsTypeUrl, obj: ProtoObject) {
  return decodeResource(url, encode(url, obj), 0);
}

function refusal(url: XdsTypeUrl, obj: ProtoObject): string {
  const d = decode(url, obj);
  assert.ok(isRejected(d), `expected a refusal of ${JSON.stringify(obj).slice(0, 200)}`);
  return d.error;
}

const ADS = { ads: {}, resource_api_version: 'V3' };
const cluster = (extra: Record<string, unknown>): ProtoObject => ({ name: 'c1', type: 'EDS', eds_cluster_config: { eds_config: ADS }, ...extra });
const routeConfig = (route: Record<string, unknown>): ProtoObject => ({
  name: 'r1',
  virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, ...route }] }],
});
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const CONNECTION_LIMIT = 'type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit';
/** l1 with a connection_limit filter (config `limit`) before its HCM. */
const withConnectionLimit = (limit: Record<string, unknown>): ProtoObject => {
  const l = listener({ http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }] }) as {
    filter_chains: Array<{ filters: unknown[] }>;
  };
  l.filter_chains[0]?.filters.unshift({ name: 'envoy.filters.network.connection_limit', typed_config: { '@type': CONNECTION_LIMIT, ...limit } });
  return l as unknown as ProtoObject;
};
const listener = (hcm: Record<string, unknown>, extra: Record<string, unknown> = {}): ProtoObject => ({
  name: 'l1',
  address: { socket_address: { address: '127.0.0.1', port_value: 1 } },
  filter_chains: [
    { filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 'l1', rds: { route_config_name: 'r1', config_source: ADS }, ...hcm } }] },
  ],
  ...extra,
});

describe('our proxy accepts everything our control plane emits', () => {
  const config = parseConfig(KITCHEN_SINK, 'kitchen-sink');
  const set = translate(config, staticEndpoints(config));

  for (const [key, url] of SETS) {
    it(`accepts every ${key} resource`, () => {
      assert.ok(set[key].length > 0);
      for (const obj of set[key]) {
        const d = decode(url, obj);
        assert.ok(!isRejected(d), isRejected(d) ? d.error : '');
      }
    });
  }

  it('reads what matters from them', () => {
    const byName = new Map(set.clusters.map((c) => [String(c.name), decode(TypeUrl.Cluster, c)]));
    const perl = byName.get('perl');
    assert.ok(perl && !isRejected(perl));
    const pm = perl.model as ClusterModel;
    assert.equal(pm.lbPolicy, 'LEAST_REQUEST');
    assert.equal(pm.connectTimeoutMs, 250);
    assert.equal(pm.localityWeighted, true);
    assert.equal(pm.healthCheck?.host, 'hc.test');
    assert.equal(pm.healthCheck?.noTrafficIntervalMs, 5000);
    assert.deepEqual(pm.healthCheck?.expected, [
      { start: 200, end: 300 },
      { start: 304, end: 305 },
    ]);
    const grpc = byName.get('grpc');
    assert.ok(grpc && !isRejected(grpc));
    assert.equal((grpc.model as ClusterModel).http2, true);
    assert.equal((grpc.model as ClusterModel).healthCheck?.kind, 'tcp');
    const als = byName.get([...byName.keys()].find((n) => n.includes('als') || n.includes('access')) ?? '');
    assert.ok(als && !isRejected(als), 'the access-log sink cluster (STATIC, HTTP/2) is accepted');
    assert.equal((als.model as ClusterModel).discovery, 'STATIC');

    const rc = decode(TypeUrl.RouteConfiguration, set.routes[0] as ProtoObject);
    assert.ok(!isRejected(rc));
    const api = (rc.model as RouteConfigModel).virtualHosts[0]?.routes.find((r) => r.match.value === '/api' && r.match.headers.length === 0);
    assert.ok(api?.action.kind === 'forward');
    assert.deepEqual(
      api.action.weighted?.map((w) => [w.name, w.weight]),
      [
        ['go', 10],
        ['perl', 90],
      ],
    );
    assert.equal(api.action.hostRewrite, 'www.app.test');
    assert.equal(api.action.timeoutMs, 2000);
    assert.equal(api.action.retry?.numRetries, 3);
    assert.equal(api.action.retry?.perTryTimeoutMs, 500);
    assert.deepEqual(
      api.action.mirrors.map((m) => [m.cluster, m.fraction.numerator, m.fraction.denominator]),
      [['shadow', 1250, 10_000]],
    );

    const web = set.listeners.map((l) => decode(TypeUrl.Listener, l)).find((l) => !isRejected(l) && l.name === 'web');
    assert.ok(web && !isRejected(web));
    const f = (web.model as ListenerModel).filter;
    assert.ok(f.kind === 'http');
    assert.equal(f.requestTimeoutMs, 30_000);
    assert.equal(f.idleTimeoutMs, 300_000);
    // Not in the resource: Envoy's stream idle and listener filter timeouts, and a 10 s headers timeout.
    assert.equal(f.streamIdleTimeoutMs, 300_000);
    assert.equal(f.sniffTimeoutMs, 15_000);
    assert.equal(f.requestHeadersTimeoutMs, 10_000);
    assert.equal(f.useRemoteAddress, false);
    assert.equal(f.accessLogs[0]?.kind, 'grpc');
  });
});

describe('our proxy runs route regexes on RE2', () => {
  const firstRoute = (route: Record<string, unknown>): RouteModel => {
    const d = decode(TypeUrl.RouteConfiguration, routeConfig(route));
    assert.ok(!isRejected(d), isRejected(d) ? d.error : '');
    const r = (d.model as RouteConfigModel).virtualHosts[0]?.routes[0];
    assert.ok(r);
    return r;
  };

  it('matches whole paths, case-insensitively when asked, in linear time', () => {
    const m = firstRoute({ match: { safe_regex: { regex: '/api/(a+)+' }, case_sensitive: { value: false } }, route: { cluster: 'c1' } }).match;
    assert.equal(m.regex?.testExact('/API/aaa'), true);
    assert.equal(m.regex?.testExact('/api/aaa/x'), false);
    // Catastrophic for a backtracking engine (2^40 paths); RE2 answers at once.
    const started = performance.now();
    assert.equal(m.regex?.testExact(`/api/${'a'.repeat(40)}!`), false);
    assert.ok(performance.now() - started < 1000, 'RE2 is linear in the input');
  });

  it('regex_rewrite substitutes \\N with capture group N and keeps other characters literal', () => {
    const a = firstRoute({
      route: { cluster: 'c1', regex_rewrite: { pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1$1' } },
    }).action;
    assert.ok(a.kind === 'forward' && a.regexRewrite);
    assert.equal(a.regexRewrite('/service/foo/v1/api'), '/v1/api/instance/foo$1');
    const all = firstRoute({ route: { cluster: 'c1', regex_rewrite: { pattern: { regex: 'o' }, substitution: '0' } } }).action;
    assert.ok(all.kind === 'forward' && all.regexRewrite);
    assert.equal(all.regexRewrite('/foo/boo'), '/f00/b00', 'every match is replaced');
  });
});

describe('our proxy refuses what it cannot honour, naming resource and field', () => {
  const cases: ReadonlyArray<[string, XdsTypeUrl, ProtoObject, RegExp]> = [
    [
      'subset load balancing',
      TypeUrl.Cluster,
      cluster({ lb_subset_config: { fallback_policy: 'ANY_ENDPOINT' } }),
      /Cluster 'c1': lb_subset_config: subset load balancing/,
    ],
    [
      'a transport socket other than envoy.transport_sockets.tls',
      TypeUrl.Cluster,
      cluster({ transport_socket: { name: 'tls' } }),
      /Cluster 'c1': transport_socket/,
    ],
    ['ORIGINAL_DST clusters', TypeUrl.Cluster, { name: 'c1', type: 'ORIGINAL_DST' }, /Cluster 'c1': type: ORIGINAL_DST is not supported/],
    [
      'a DNS cluster without names',
      TypeUrl.Cluster,
      { name: 'c1', type: 'STRICT_DNS' },
      /Cluster 'c1': load_assignment: a STRICT_DNS cluster needs load_assignment/,
    ],
    [
      'a LOGICAL_DNS cluster with two names',
      TypeUrl.Cluster,
      {
        name: 'c1',
        type: 'LOGICAL_DNS',
        load_assignment: {
          endpoints: [
            {
              lb_endpoints: ['a.test', 'b.test'].map((address) => ({ endpoint: { address: { socket_address: { address, port_value: 80 } } } })),
            },
          ],
        },
      },
      /Cluster 'c1': load_assignment: a LOGICAL_DNS cluster takes exactly one endpoint \(got 2\)/,
    ],
    [
      'a name in an EDS assignment',
      TypeUrl.ClusterLoadAssignment,
      { cluster_name: 'c1', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'backend.test', port_value: 80 } } } }] }] },
      /'backend\.test' is not an IP literal \(names are resolved only for STRICT_DNS and LOGICAL_DNS clusters\)/,
    ],
    [
      'an unknown field deep inside',
      TypeUrl.Cluster,
      cluster({ circuit_breakers: { thresholds: [{ retry_budget: { budget_percent: { value: 20 } } }] } }),
      /circuit_breakers\.thresholds\[0\]\.retry_budget/,
    ],
    [
      'a health check without a path',
      TypeUrl.Cluster,
      cluster({
        health_checks: [
          { timeout: { seconds: 1 }, interval: { seconds: 1 }, healthy_threshold: { value: 1 }, unhealthy_threshold: { value: 1 }, http_health_check: {} },
        ],
      }),
      /health_checks\[0\]\.http_health_check\.path: must be set/,
    ],
    [
      'CORS on a route',
      TypeUrl.RouteConfiguration,
      routeConfig({ route: { cluster: 'c1', cors: {} } }),
      /RouteConfiguration 'r1': virtual_hosts\[0\]\.routes\[0\]\.route\.cors/,
    ],
    // Header mutations are honoured on routes and weighted clusters (test/unit/proxy/router/header-routes.test.ts); not elsewhere.
    [
      'header mutations of a virtual host',
      TypeUrl.RouteConfiguration,
      {
        name: 'r1',
        virtual_hosts: [
          {
            name: 'vh',
            domains: ['*'],
            routes: [{ match: { prefix: '/' }, route: { cluster: 'c1' } }],
            request_headers_to_add: [{ header: { key: 'x', value: 'y' } }],
          },
        ],
      },
      /virtual_hosts\[0\]\.request_headers_to_add: header mutations are implemented on routes and weighted clusters/,
    ],
    [
      'a format command in a header value',
      TypeUrl.RouteConfiguration,
      routeConfig({ route: { cluster: 'c1' }, request_headers_to_add: [{ header: { key: 'x', value: '%DOWNSTREAM_REMOTE_ADDRESS%' } }] }),
      /request_headers_to_add\[0\]\.header\.value: '%DOWNSTREAM_REMOTE_ADDRESS%': format commands/,
    ],
    [
      'a Host header mutation',
      TypeUrl.RouteConfiguration,
      routeConfig({ route: { cluster: 'c1' }, request_headers_to_remove: ['Host'] }),
      /routes\[0\]\.request_headers_to_remove: 'Host': :-prefixed or host headers may not be modified/,
    ],
    [
      'an unknown retry condition',
      TypeUrl.RouteConfiguration,
      routeConfig({ route: { cluster: 'c1', retry_policy: { retry_on: '5xx,bogus' } } }),
      /retry_policy\.retry_on: retry condition 'bogus'/,
    ],
    // RE2, as Envoy: no backreferences, no lookaround.
    [
      'a backreference in a route regex',
      TypeUrl.RouteConfiguration,
      routeConfig({ match: { safe_regex: { regex: '(a)\\1' } }, route: { cluster: 'c1' } }),
      /RouteConfiguration 'r1': virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex: invalid RE2 regex '\(a\)\\1'/,
    ],
    [
      'a lookahead in a header regex',
      TypeUrl.RouteConfiguration,
      routeConfig({ match: { prefix: '/', headers: [{ name: 'x', string_match: { safe_regex: { regex: '(?=a)a' } } }] }, route: { cluster: 'c1' } }),
      /routes\[0\]\.match\.headers\[0\]\.string_match\.safe_regex\.regex: invalid RE2 regex/,
    ],
    [
      'a backreference in a regex rewrite',
      TypeUrl.RouteConfiguration,
      routeConfig({ route: { cluster: 'c1', regex_rewrite: { pattern: { regex: '(a)\\1' }, substitution: 'b' } } }),
      /routes\[0\]\.route\.regex_rewrite\.pattern\.regex: invalid RE2 regex/,
    ],
    ['a route without an action', TypeUrl.RouteConfiguration, routeConfig({}), /routes\[0\]: a route needs an action/],
    // A filter type the proxy has not even loaded the proto of (packed by hand: fromObject would drop it).
    [
      'another HTTP filter',
      TypeUrl.Listener,
      listener({
        http_filters: [
          {
            name: 'envoy.filters.http.cors',
            typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors', value: Buffer.alloc(0) },
          },
          { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
        ],
      }),
      /Listener 'l1': .*http_filters\[0\].*envoy\.filters\.http\.cors/,
    ],
    [
      'listener filters',
      TypeUrl.Listener,
      listener({}, { listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }] }),
      /Listener 'l1': listener_filters/,
    ],
    [
      'a connection_limit without max_connections',
      TypeUrl.Listener,
      withConnectionLimit({ stat_prefix: 'cl' }),
      /Listener 'l1': filter_chains\[0\]\.filters\[0\]\.typed_config\.max_connections: must be set/,
    ],
    [
      'a hostname endpoint',
      TypeUrl.ClusterLoadAssignment,
      { cluster_name: 'c1', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'db.internal', port_value: 1 } } } }] }] },
      /ClusterLoadAssignment 'c1': .*address: 'db\.internal' is not an IP literal/,
    ],
  ];
  for (const [what, url, obj, re] of cases) {
    it(`refuses ${what}`, () => assert.match(refusal(url, obj), re));
  }

  it('the support table lists each field of a message once: ignored or refused, not both', () => {
    for (const [message, entry] of Object.entries(SUPPORT)) {
      const ignored: readonly string[] = 'ignored' in entry ? entry.ignored : [];
      const refused = Object.keys('refused' in entry ? entry.refused : {});
      assert.equal(new Set(ignored).size, ignored.length, `${message}: a field ignored twice`);
      assert.deepEqual(
        refused.filter((k) => ignored.includes(k)),
        [],
        `${message}: ignored and refused`,
      );
    }
  });

  it('accepts the same resources without the offending field', () => {
    assert.ok(!isRejected(decode(TypeUrl.Cluster, cluster({}))));
    assert.ok(!isRejected(decode(TypeUrl.RouteConfiguration, routeConfig({ route: { cluster: 'c1' } }))));
    assert.ok(!isRejected(decode(TypeUrl.Listener, listener({ http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }] }))));
  });

  it('reads max_request_headers_kb (Envoy: 60 by default, 1 to 8192) and NACKs a value outside that range', () => {
    const bytes = (hcm: Record<string, unknown>): number => {
      const d = decode(TypeUrl.Listener, listener(hcm));
      assert.ok(!isRejected(d), isRejected(d) ? d.error : '');
      const f = (d.model as ListenerModel).filter;
      assert.ok(f.kind === 'http');
      return f.maxRequestHeadersBytes;
    };
    assert.equal(bytes({}), 60 * 1024);
    assert.equal(bytes({ max_request_headers_kb: { value: 8 } }), 8 * 1024);
    assert.match(refusal(TypeUrl.Listener, listener({ max_request_headers_kb: { value: 9000 } })), /max_request_headers_kb.*9000: expected 1 to 8192/);
  });

  it('reads a connection_limit filter in front of the HTTP connection manager', () => {
    const d = decode(TypeUrl.Listener, withConnectionLimit({ stat_prefix: 'cl', max_connections: { value: 100 }, delay: { seconds: 1 } }));
    assert.ok(!isRejected(d), isRejected(d) ? d.error : '');
    const f = (d.model as ListenerModel).filter;
    assert.ok(f.kind === 'http');
    assert.deepEqual(f.connectionLimit, { statPrefix: 'cl', maxConnections: 100, delayMs: 1000 });
  });
});
