/**
 * `type: grpc` listeners: what translate emits for proxyless gRPC clients, checked field by field
 * and then by grpc-js-xds's own resource validators (the code that decides ACK or NACK inside the
 * real client); the virtual host the client picks for its target; and the config refusals of what
 * gRPC clients cannot do, each naming its config path.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { register as registerXds } from '@grpc/grpc-js-xds';
import { ListenerResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type.js';
import { RouteConfigurationResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js';
import { ClusterResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/cluster-resource-type.js';
import { EndpointResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/endpoint-resource-type.js';
import type { XdsDecodeContext, XdsResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/xds-resource-type.js';
import { parseConfig } from '../../../src/config/parse.js';
import { staticEndpoints } from '../../../src/config/static-endpoints.js';
import { grpcVirtualHost } from '../../../src/config/views.js';
import { buildSnapshot, type Snapshot } from '../../../src/cache/snapshot.js';
import { splitForClients, translate } from '../../../src/translate/index.js';
import { messageType } from '../../../src/envoy/protos.js';
import { ConfigError } from '../../../src/errors.js';
import { TYPE_ORDER, TypeUrl, type XdsTypeUrl } from '../../../src/xds/resource-types.js';
import type { ProtoObject, XdsResourceSet } from '../../../src/xds/resources.js';

// The client validates HTTP filters against its filter registry, which register() fills in
// (it opens no connection).
registerXds();

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/** An http listener for Envoy and a gRPC listener sharing one config; canary split, timeout, retry. */
const CONFIG = `
listener:
  edge: { address: "0.0.0.0", port: 8000, virtual-hosts: ["web"] }
  "greeter:50051": { type: grpc }
virtual-hosts:
  web:
    domain: ["web.example.com"]
    host-header: "internal.example.com"
    cluster:
      web: { prefix: ["/"], mirror: { cluster: greeter, percent: 5 } }
  greeter:
    domain: ["greeter:50051", "greeter"]
    cluster:
      greeter:
        prefix: ["/helloworld.Greeter/"]
        weight: 80
        timeout: "2.5s"
        retry: { retry-on: ["5xx", "unavailable", "cancelled"], attempts: 2, per-try-timeout: "1s" }
      greeter-canary: { prefix: ["/helloworld.Greeter/"], weight: 20 }
  fallback:
    domain: ["*"]
    cluster: { web: { prefix: ["/"] } }
cluster:
  loadbalancer:
    web: { lb-policy: least-request }
    greeter: {}
    greeter-canary: { lb-policy: ring-hash }
endpoint:
  eds:
    greeter:
      port: 50051
      balancing-policy: locality
      static:
        - { address: "10.0.0.1", zone: "a" }
        - { address: "10.0.0.2", zone: "a", weight: 3 }
        - { address: "10.0.0.3", zone: "b", health: draining }
    greeter-canary:
      static: [{ address: "10.0.1.1", port: 50051 }]
`;

const config = parseConfig(CONFIG, 'grpc.yaml');
const full = translate(config, staticEndpoints(config));

function byName(list: readonly ProtoObject[], name: string, field = 'name'): ProtoObject {
  const found = list.find((r) => r[field] === name);
  assert.ok(found, `resource ${name}`);
  return found;
}

function errorsOf(text: string): string[] {
  try {
    parseConfig(text, 'grpc.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

/** A minimal config around one gRPC listener; `extra` is spliced into the greeter virtual host. */
function grpcConfig(opts: { listener?: string; vhost?: string; domains?: string; lb?: string; statics?: string } = {}): string {
  return `
listener:
  "greeter:50051": ${opts.listener ?? '{ type: grpc }'}
virtual-hosts:
  greeter:
    domain: ${opts.domains ?? '["greeter:50051"]'}
${opts.vhost ?? '    cluster: { greeter: { prefix: ["/"] } }'}
cluster:
  loadbalancer:
    greeter: { lb-policy: ${opts.lb ?? 'round-robin'} }
    shadow: {}
endpoint:
  eds:
    greeter:
      port: 50051
      static: ${opts.statics ?? '[{ address: "10.0.0.1" }]'}
`;
}

describe('translate: type: grpc listeners', () => {
  it('become an API listener (HCM over ADS RDS, router last) and a route table of the same name', () => {
    const listener = byName(full.listeners, 'greeter:50051');
    assert.equal(listener.address, undefined, 'an API listener binds nothing');
    assert.deepEqual(listener, {
      name: 'greeter:50051',
      api_listener: {
        api_listener: {
          '@type': HCM,
          stat_prefix: 'greeter:50051',
          rds: { route_config_name: 'greeter:50051', config_source: { ads: {}, resource_api_version: 'V3' } },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
        },
      },
    });
  });

  it('the route table holds only the virtual host the client picks, with gRPC-read timeout and retry fields', () => {
    const rc = byName(full.routes, 'greeter:50051');
    assert.deepEqual(rc, {
      name: 'greeter:50051',
      virtual_hosts: [
        {
          name: 'greeter',
          domains: ['greeter', 'greeter:50051'],
          routes: [
            {
              name: '/helloworld.Greeter/',
              match: { prefix: '/helloworld.Greeter/' },
              route: {
                weighted_clusters: {
                  clusters: [
                    { name: 'greeter', weight: { value: 80 } },
                    { name: 'greeter-canary', weight: { value: 20 } },
                  ],
                },
                // gRPC reads max_stream_duration, not timeout (gRFC A31).
                max_stream_duration: { max_stream_duration: { seconds: 2, nanos: 500_000_000 } },
                // Only the gRPC status conditions; per_try_timeout is not read by gRPC clients.
                retry_policy: { retry_on: 'cancelled,unavailable', num_retries: { value: 2 } },
              },
            },
          ],
        },
      ],
    });
  });

  it('clusters are EDS over ADS with an accepted lb policy; every locality has a locality and a weight >= 1', () => {
    const greeter = byName(full.clusters, 'greeter');
    assert.equal(greeter.type, 'EDS');
    assert.deepEqual(greeter.eds_cluster_config, { eds_config: { ads: {}, resource_api_version: 'V3' } });
    assert.equal(greeter.lb_policy, 'ROUND_ROBIN');
    assert.equal(byName(full.clusters, 'greeter-canary').lb_policy, 'RING_HASH');
    const cla = byName(full.endpoints, 'greeter', 'cluster_name');
    const localities = cla.endpoints as Array<{ locality: unknown; load_balancing_weight: { value: number } }>;
    assert.deepEqual(
      localities.map((l) => [l.locality, l.load_balancing_weight.value]),
      [
        [{ zone: 'a' }, 4],
        [{ zone: 'b' }, 1],
      ],
    );
    const canary = byName(full.endpoints, 'greeter-canary', 'cluster_name').endpoints as Array<{ locality: unknown }>;
    assert.deepEqual(
      canary.map((l) => l.locality),
      [{}],
      'an endpoint without zone still has a locality',
    );
  });

  it('splitForClients: Envoy gets no API listener and no gRPC route table; gRPC gets only those, and the clusters they route to', () => {
    const { envoy, grpc } = splitForClients(full);
    assert.ok(grpc, 'a gRPC set exists when the config has a grpc listener');
    assert.deepEqual(
      envoy.listeners.map((l) => l.name),
      ['edge'],
    );
    assert.deepEqual(
      envoy.routes.map((r) => r.name),
      ['edge'],
    );
    assert.ok(envoy.listeners.every((l) => l.api_listener === undefined));
    assert.deepEqual(
      grpc.listeners.map((l) => l.name),
      ['greeter:50051'],
    );
    assert.deepEqual(
      grpc.routes.map((r) => r.name),
      ['greeter:50051'],
    );
    assert.deepEqual(
      envoy.clusters.map((c) => c.name),
      ['greeter', 'greeter-canary', 'web'],
    );
    assert.deepEqual(
      grpc.clusters.map((c) => c.name),
      ['greeter', 'greeter-canary'],
      'not `web`: only Envoy routes there',
    );
    assert.deepEqual(
      grpc.endpoints.map((e) => e.cluster_name),
      ['greeter', 'greeter-canary'],
    );
    assert.equal(grpc.clusters[0], envoy.clusters[0], 'resources are shared, not copied');
    assert.ok(Object.isFrozen(envoy) && Object.isFrozen(grpc) && Object.isFrozen(grpc.listeners));

    const seed = parseConfig(grpcConfig().replace('"greeter:50051": { type: grpc }', 'edge: { address: "0.0.0.0", port: 1 }'), 'no-grpc.yaml');
    const plain = translate(seed, staticEndpoints(seed));
    const split = splitForClients(plain);
    assert.equal(split.grpc, undefined, 'no gRPC listener, no gRPC set');
    assert.equal(split.envoy, plain, 'the Envoy set is the translation itself');
  });

  it("grpc-js-xds's own validators accept every resource a gRPC client fetches from its snapshot", () => {
    const { grpc } = splitForClients(full);
    assert.ok(grpc);
    const results = decodeWithClient(buildSnapshot(grpc));
    assert.deepEqual(
      results.map((r) => `${r.type} ${r.name}`),
      ['CDS greeter', 'CDS greeter-canary', 'EDS greeter', 'EDS greeter-canary', 'LDS greeter:50051', 'RDS greeter:50051'],
    );
    for (const r of results) assert.equal(r.error, undefined, `${r.type} ${r.name}: ${r.error}`);
  });

  it('...and those validators do reject what we must never send (the check has teeth)', () => {
    const bad: XdsResourceSet = {
      clusters: [{ name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, lb_policy: 'LEAST_REQUEST' }],
      endpoints: [
        {
          cluster_name: 'c',
          endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 1 } } } }] }],
        },
      ],
      listeners: [],
      routes: [],
    };
    const errors = decodeWithClient(buildSnapshot(bad)).map((r) => `${r.type}: ${r.error ?? 'accepted'}`);
    assert.match(errors.find((e) => e.startsWith('CDS')) ?? '', /unsupported lb_policy|LEAST_REQUEST/);
    assert.match(errors.find((e) => e.startsWith('EDS')) ?? '', /locality unset/);
  });
});

describe('gRPC: route matches beyond prefixes', () => {
  const vhost = `    cluster:
      greeter: { prefix: ["/"] }
      canary: { prefix: ["/"], headers: { x-canary: "true", x-env: { prefix: beta }, x-id: { regex: "[0-9]+" }, x-legacy: { present: false } } }
      exact: { path: ["/pkg.Svc/Get"] }
      re: { regex: ["/pkg[.]Svc/(List|Watch)"] }`;
  const text = grpcConfig({ vhost }).replace('    shadow: {}', '    shadow: {}\n    canary: {}\n    exact: {}\n    re: {}');

  it('header-matched canaries, exact paths and regexes reach gRPC clients in the order Envoy uses, and grpc-js-xds accepts them', () => {
    const c = parseConfig(text, 'grpc-routes.yaml');
    const { grpc } = splitForClients(translate(c, staticEndpoints(c)));
    assert.ok(grpc);
    const rc = byName(grpc.routes, 'greeter:50051') as { virtual_hosts: Array<{ routes: Array<{ name: string; route: { cluster?: string } }> }> };
    assert.deepEqual(
      rc.virtual_hosts[0]?.routes.map((r) => [r.name, r.route.cluster]),
      [
        ['= /pkg.Svc/Get', 'exact'],
        ['~ /pkg[.]Svc/(List|Watch)', 're'],
        ['/ if x-canary=true and x-env^=beta and x-id~=[0-9]+ and !x-legacy', 'canary'],
        ['/', 'greeter'],
      ],
    );
    assert.deepEqual(
      grpc.clusters.map((x) => x.name),
      ['canary', 'exact', 'greeter', 're'],
      'every cluster a header or path route sends to is in the gRPC snapshot',
    );
    const results = decodeWithClient(buildSnapshot(grpc));
    for (const r of results) assert.equal(r.error, undefined, `${r.type} ${r.name}: ${r.error}`);
  });

  it('header rewrites and -bin header matches are refused on a virtual host gRPC clients use', () => {
    const bad = text
      .replace('greeter: { prefix: ["/"] }', 'greeter: { prefix: ["/"], request-headers: { set: { x-a: "1" } }, response-headers: { remove: ["x-b"] } }')
      .replace('x-canary: "true"', 'x-canary: "true", x-token-bin: { present: true }');
    const errors = errorsOf(bad);
    assert.deepEqual(
      errors.map((e) => e.split(': ')[0]),
      [
        'virtual-hosts.greeter.cluster.greeter.request-headers',
        'virtual-hosts.greeter.cluster.greeter.response-headers',
        'virtual-hosts.greeter.cluster.canary.headers.x-token-bin',
      ],
      errors.join('\n'),
    );
    assert.match(errors[0] ?? '', /they do not rewrite headers/);
    assert.match(errors[2] ?? '', /never match binary \(-bin\) metadata/);
  });
});

describe('the virtual host a gRPC client picks', () => {
  const pick = (domains: Record<string, string[]>, authority = 'greeter:50051'): string | undefined => {
    const vhosts = Object.entries(domains)
      .map(([name, d]) => `  ${name}:\n    domain: ${JSON.stringify(d)}\n    cluster: { greeter: { prefix: ["/"] } }`)
      .join('\n');
    const text = `listener:\n  x: { address: "127.0.0.1", port: 1 }\nvirtual-hosts:\n${vhosts}\ncluster:\n  loadbalancer: { greeter: {} }\n`;
    const c = parseConfig(text, 'pick.yaml');
    return grpcVirtualHost(c, authority, { type: 'grpc' }).chosen?.name;
  };

  it('exact beats *.suffix beats prefix* beats *, and the longer pattern wins within a kind', () => {
    assert.equal(pick({ any: ['*'], exact: ['greeter:50051'], suffix: ['*:50051'], prefix: ['greeter:*'] }), 'exact');
    assert.equal(pick({ any: ['*'], suffix: ['*:50051'], prefix: ['greeter:*'] }), 'suffix');
    assert.equal(pick({ any: ['*'], prefix: ['greeter:*'] }), 'prefix');
    assert.equal(pick({ any: ['*'], other: ['other:50051'] }), 'any');
    assert.equal(pick({ short: ['*1'], long: ['*:50051'] }), 'long');
    assert.equal(pick({ other: ['other:50051'] }), undefined);
    assert.equal(pick({ upper: ['Greeter:50051'] }), undefined, 'domains are compared case-sensitively, as the client does');
  });
});

describe('config: what gRPC clients cannot do is refused, with its config path', () => {
  it('accepts the minimal gRPC listener', () => {
    assert.deepEqual(errorsOf(grpcConfig()), []);
  });

  it('a grpc listener takes no address, port or socket settings, and the type must be known', () => {
    assert.deepEqual(errorsOf(grpcConfig({ listener: '{ type: grpc, address: "127.0.0.1", port: 50051 }' })), [
      'listener.greeter:50051.address: unknown key (misspelled, or not valid in this section)',
      'listener.greeter:50051.port: unknown key (misspelled, or not valid in this section)',
    ]);
    assert.deepEqual(errorsOf(grpcConfig({ listener: '{ type: grcp }' })), ['listener.greeter:50051.type: expected one of "http", "tcp", "grpc"']);
  });

  it('no virtual host matching the target authority', () => {
    const [error, ...rest] = errorsOf(grpcConfig({ domains: '["greeter"]' }));
    assert.deepEqual(rest, []);
    assert.match(error ?? '', /^listener\.greeter:50051: no virtual host matches the gRPC target authority "greeter:50051".*candidates: greeter \[greeter\]/);
  });

  it('two virtual hosts matching equally well', () => {
    const text = grpcConfig().replace(
      'virtual-hosts:\n',
      'virtual-hosts:\n  other:\n    domain: ["greeter:50051"]\n    cluster: { greeter: { prefix: ["/"] } }\n',
    );
    const errors = errorsOf(text);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0] ?? '', /virtual hosts "greeter" \(domain "greeter:50051"\), "other" \(domain "greeter:50051"\) match .* equally well/);
    // Naming one of them settles it.
    assert.deepEqual(errorsOf(text.replace('{ type: grpc }', '{ type: grpc, virtual-hosts: ["other"] }')), []);
  });

  it('host rewrite, mirrors, retries on no gRPC condition, other lb policies, an address listed twice', () => {
    const vhost = `    host-header: "x.internal"
    cluster:
      greeter: { prefix: ["/"], mirror: { cluster: shadow }, retry: { retry-on: ["5xx", "reset"] } }`;
    const errors = errorsOf(grpcConfig({ vhost, lb: 'least-request', statics: '[{ address: "10.0.0.1" }, { address: "10.0.0.1", port: 50051 }]' }));
    const paths = errors.map((e) => e.split(': ')[0]);
    assert.deepEqual(
      paths,
      [
        'virtual-hosts.greeter.host-header',
        'virtual-hosts.greeter.cluster.greeter.mirror',
        'virtual-hosts.greeter.cluster.greeter.retry.retry-on',
        'cluster.loadbalancer.greeter.lb-policy',
        'endpoint.eds.greeter.static[1]',
      ],
      errors.join('\n'),
    );
    assert.match(errors[2] ?? '', /retry only on cancelled, deadline-exceeded, internal, resource-exhausted, unavailable; none of 5xx, reset/);
    assert.match(errors[3] ?? '', /"least-request" is not supported by proxyless gRPC clients \(only round-robin, ring-hash\)/);
    assert.match(errors[4] ?? '', /10\.0\.0\.1:50051 is already listed at static\[0\]/);
  });

  it('the same settings are fine on a virtual host only Envoy uses, and a shared problem is reported once', () => {
    // `web` rewrites Host, mirrors and uses least-request: only the http listener serves it.
    assert.deepEqual(errorsOf(CONFIG), []);
    const twoListeners = grpcConfig({ lb: 'maglev' })
      .replace('listener:\n', 'listener:\n  "greeter:8080": { type: grpc, virtual-hosts: ["greeter"] }\n')
      .replace('domain: ["greeter:50051"]', 'domain: ["greeter:50051", "greeter:8080"]');
    assert.deepEqual(
      errorsOf(twoListeners).map((e) => e.split(': ')[0]),
      ['cluster.loadbalancer.greeter.lb-policy'],
    );
  });

  it('retries are fine when one condition applies to gRPC', () => {
    const vhost = `    cluster:
      greeter: { prefix: ["/"], retry: { retry-on: ["5xx", "unavailable"] } }`;
    assert.deepEqual(errorsOf(grpcConfig({ vhost })), []);
  });
});

interface ClientVerdict {
  readonly type: string;
  readonly name: string;
  readonly error?: string;
}

const CLIENT_TYPES: Readonly<Record<XdsTypeUrl, XdsResourceType>> = {
  [TypeUrl.Cluster]: ClusterResourceType.get(),
  [TypeUrl.ClusterLoadAssignment]: EndpointResourceType.get(),
  [TypeUrl.Listener]: ListenerResourceType.get(),
  [TypeUrl.RouteConfiguration]: RouteConfigurationResourceType.get(),
};

/** Runs every encoded resource of a snapshot through grpc-js-xds's decoder and validator. */
function decodeWithClient(snapshot: Snapshot): ClientVerdict[] {
  const anyType = messageType('google.protobuf.Any');
  // Only TLS and LRS settings read the context; we send neither.
  const context = { server: {}, bootstrap: { certificateProviders: {} } } as unknown as XdsDecodeContext;
  const out: ClientVerdict[] = [];
  for (const t of TYPE_ORDER) {
    for (const r of snapshot.type(t).list) {
      const any = anyType.toObject(anyType.decode(r.bytes)) as { type_url: string; value: Uint8Array };
      const result = CLIENT_TYPES[t].decode(context, { type_url: any.type_url, value: Buffer.from(any.value) });
      out.push({
        type: t === TypeUrl.Cluster ? 'CDS' : t === TypeUrl.ClusterLoadAssignment ? 'EDS' : t === TypeUrl.Listener ? 'LDS' : 'RDS',
        name: result.name,
        ...(result.error ? { error: result.error } : {}),
      });
    }
  }
  return out;
}
