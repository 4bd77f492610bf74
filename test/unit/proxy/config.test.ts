/**
 * Small pure parts of our data plane: the bootstrap (flags and Envoy-style file), virtual-host and
 * route matching, the `-shadow` authority of mirrored requests, and access-log formats (Envoy's
 * default line, JSON, unknown operators refused).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHostPort, parseLocality, readBootstrapFile } from '../../../src/proxy/config/bootstrap.js';
import { RouteTable } from '../../../src/proxy/router/route-table.js';
import { readRouteConfiguration } from '../../../src/proxy/config/route-resource.js';
import { FieldReader } from '../../../src/proxy/config/field-reader.js';
import { shadowAuthority } from '../../../src/proxy/router/shadow-writer.js';
import { DEFAULT_FORMAT, compileJson, compileText, type LogRecord } from '../../../src/proxy/access-log/formatter.js';
import type { ConfigError, ConsulXdsError } from '../../../src/errors.js';
import { makeTempDir } from '../../support/tmp.js';

describe('bootstrap', () => {
  const dirs: Array<{ remove(): Promise<void> }> = [];
  after(async () => {
    for (const d of dirs) await d.remove();
  });

  it('parses HOST:PORT and localities, naming the flag on errors', () => {
    assert.deepEqual(parseHostPort('xds', '127.0.0.1:9000'), { host: '127.0.0.1', port: 9000 });
    assert.deepEqual(parseHostPort('xds', '[::1]:18000'), { host: '::1', port: 18000 });
    assert.throws(
      () => parseHostPort('xds', 'localhost'),
      (e: ConsulXdsError) => e.code === 'CXDS_USAGE' && /--xds/.test(e.message),
    );
    assert.deepEqual(parseLocality('ap-northeast-1/apne1-az1'), { region: 'ap-northeast-1', zone: 'apne1-az1', subZone: '' });
    assert.throws(() => parseLocality('a//b'), /--locality/);
  });

  it('reads an Envoy-style bootstrap: node, admin, and the ADS cluster address', async () => {
    const dir = await makeTempDir('dp-bootstrap');
    dirs.push(dir);
    const file = join(dir.path, 'bootstrap.yaml');
    writeFileSync(
      file,
      `node: { id: edge-1, cluster: edge, locality: { region: r1, zone: z1 }, metadata: { role: front } }
admin: { address: { socket_address: { address: 127.0.0.1, port_value: 9901 } } }
dynamic_resources:
  ads_config: { api_type: GRPC, transport_api_version: V3, grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }] }
  cds_config: { resource_api_version: V3, ads: {} }
  lds_config: { resource_api_version: V3, ads: {} }
static_resources:
  clusters:
    - name: xds_cluster
      type: STATIC
      load_assignment:
        cluster_name: xds_cluster
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9000 } } } }] }]
`,
    );
    const b = readBootstrapFile(file);
    assert.deepEqual(b.xds, { host: '127.0.0.1', port: 9000 });
    assert.deepEqual(b.admin, { host: '127.0.0.1', port: 9901 });
    assert.equal(b.node.id, 'edge-1');
    assert.deepEqual(b.node.locality, { region: 'r1', zone: 'z1', subZone: '' });
    assert.equal(b.node.proto.user_agent_name, 'consul-xds-proxy');

    const bad = join(dir.path, 'bad.yaml');
    writeFileSync(bad, 'node: { id: x }\ndynamic_resources: { ads_config: { grpc_services: [{ envoy_grpc: { cluster_name: nowhere } }] } }\n');
    assert.throws(
      () => readBootstrapFile(bad),
      (e: ConfigError) => e.issues.some((i) => i.path === 'node.cluster'),
    );
  });
});

describe('virtual hosts and routes', () => {
  const router = (vhosts: unknown[], extra: Record<string, unknown> = {}): RouteTable =>
    new RouteTable(readRouteConfiguration(new FieldReader({ name: 'r', virtual_hosts: vhosts, ...extra }, 'RouteConfiguration r')));
  const direct = (name: string, domains: string[], routes?: unknown[]): unknown => ({
    name,
    domains,
    routes: routes ?? [{ name, match: { prefix: '/' }, direct_response: { status: 200 } }],
  });
  const req = (authority: string, path = '/', headers: Record<string, string> = {}) => ({ authority, path, header: (n: string) => headers[n] });

  it('orders domains like Envoy and matches the authority with its port', () => {
    const r = router([
      direct('any', ['*']),
      direct('sfx', ['*.example.com']),
      direct('exact', ['api.example.com']),
      direct('pfx', ['api.*']),
      direct('port', ['web.test:8080']),
    ]);
    const vh = (a: string): string | undefined => r.virtualHost(a)?.name;
    assert.equal(vh('api.example.com'), 'exact');
    assert.equal(vh('API.Example.com'), 'exact');
    assert.equal(vh('www.example.com'), 'sfx');
    assert.equal(vh('api.other'), 'pfx');
    assert.equal(vh('web.test:8080'), 'port');
    assert.equal(vh('web.test'), 'any');
    assert.equal(vh('www.example.com:80'), 'any', 'a port makes the domains miss (no ignore_port_in_host_matching)');
    const ignoring = router([direct('exact', ['api.example.com'])], { ignore_port_in_host_matching: true });
    assert.equal(ignoring.virtualHost('api.example.com:80')?.name, 'exact');
  });

  it('matches prefix, case-insensitive paths, query parameters, gRPC-only and inverted headers in order', () => {
    const r = router([
      direct(
        'vh',
        ['*'],
        [
          { name: 'q', match: { prefix: '/q', query_parameters: [{ name: 'debug', string_match: { exact: '1' } }] }, direct_response: { status: 200 } },
          { name: 'grpc', match: { prefix: '/', grpc: {} }, direct_response: { status: 200 } },
          { name: 'ci', match: { path: '/CaSe', case_sensitive: { value: false } }, direct_response: { status: 200 } },
          {
            name: 'not-beta',
            match: { prefix: '/h', headers: [{ name: 'x-beta', present_match: true, invert_match: true }] },
            direct_response: { status: 200 },
          },
          { name: 'rest', match: { prefix: '/' }, direct_response: { status: 200 } },
        ],
      ),
    ]);
    const name = (path: string, headers: Record<string, string> = {}): string | undefined => r.match(req('x', path, headers))?.name;
    assert.equal(name('/q?debug=1'), 'q');
    assert.equal(name('/q?debug=0'), 'rest');
    assert.equal(name('/any', { 'content-type': 'application/grpc+proto' }), 'grpc');
    assert.equal(name('/case'), 'ci');
    assert.equal(name('/h'), 'not-beta');
    assert.equal(name('/h', { 'x-beta': '1' }), 'rest');
  });
});

describe('mirroring and access-log formats', () => {
  it('appends -shadow to the host part of the authority', () => {
    assert.equal(shadowAuthority('app.test'), 'app.test-shadow');
    assert.equal(shadowAuthority('app.test:8080'), 'app.test-shadow:8080');
    assert.equal(shadowAuthority('[::1]:80'), '[::1]-shadow:80');
  });

  const record: LogRecord = {
    kind: 'http',
    startMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
    method: 'GET',
    path: '/api/x',
    authority: 'app.test',
    protocol: 'HTTP/1.1',
    status: 503,
    flags: 'UH',
    details: 'no_healthy_upstream',
    bytesIn: 0,
    bytesOut: 19,
    durationMs: 1.6,
    upstreamMs: -1,
    upstreamHost: '',
    cluster: 'web',
    routeName: '/api',
    downstreamRemote: '127.0.0.1:5000',
    downstreamLocal: '127.0.0.1:10000',
    requestId: 'rid-1',
    userAgent: 'curl/8',
    forwardedFor: '',
    reqHeader: () => undefined,
    respHeader: () => undefined,
  };
  const reader = new FieldReader({}, 'Listener l');

  it("writes Envoy's default line", () => {
    assert.equal(
      compileText(reader, 'format', DEFAULT_FORMAT)(record),
      '[2026-01-02T03:04:05.678Z] "GET /api/x HTTP/1.1" 503 UH 0 19 2 - "-" "curl/8" "rid-1" "app.test" "-"\n',
    );
  });

  it('writes JSON and refuses unknown operators', () => {
    const f = compileJson(
      reader,
      'json_format',
      { code: '%RESPONSE_CODE%', route: '%ROUTE_NAME%', host: '%UPSTREAM_HOST%', both: '%REQ(:METHOD)% %UPSTREAM_CLUSTER%' },
      true,
    );
    assert.deepEqual(JSON.parse(f(record)), { code: 503, route: '/api', both: 'GET web' });
    assert.throws(() => compileText(reader, 'format', '%NOPE%'), /access-log operator %NOPE% is not implemented/);
  });
});
