/**
 * Observability of our data plane, with our own side services:
 *  - access logs over gRPC (envoy.access_loggers.http_grpc, as translate emits it for a
 *    listener's `access-log`) reach the sidecar's ALS sink, which writes one JSON line per
 *    request with method, path, status, cluster and upstream host;
 *  - the sidecar's health endpoint, told to require the data plane's admin /ready, is healthy
 *    with our proxy exactly as with Envoy;
 *  - a file access log (FileAccessLog with a json_format) writes one line per request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { startDataplane, type DataplaneHandle } from '../support/dataplane.js';
import { startXds, type XdsHarness } from '../support/xds-harness.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { oneWebClusterConfig } from '../support/config-text.js';
import { send } from '../support/traffic.js';
import { freePort, makeTempDir, waitUntil } from '../support/tmp.js';
import { loadExtras } from '../../src/proxy/xds/resource-types.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const ADS = { ads: {}, resource_api_version: 'V3' };

async function lines(file: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('our proxy: gRPC access logs to the sidecar sink, sidecar health', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let app: RunningApp | undefined;
  let dp: DataplaneHandle | undefined;
  let web: Upstream | undefined;
  let port = 0;
  let logFile = '';

  before(async () => {
    dir = await makeTempDir('dataplane-als');
    web = await startUpstream('web');
    const [alsPort, proxyAdmin] = await Promise.all([freePort(), freePort()]);
    logFile = join(dir.path, 'access.log');
    const configFile = join(dir.path, 'consul-xds.yaml');
    await writeFile(
      configFile,
      oneWebClusterConfig({
        listenerPort: 0,
        upstreamPort: web.port,
        accessLog: `{ grpc: { address: "127.0.0.1", port: ${alsPort}, buffer-size-bytes: 0 } }`,
      }),
    );
    app = await serve({
      configFile,
      xds: { host: '127.0.0.1', port: 0 },
      admin: { port: 0, envoyAdminUrl: `http://127.0.0.1:${proxyAdmin}`, watchNode: 'dp-obs' },
      als: { port: alsPort, file: logFile },
      logger: silentLogger,
    });
    dp = await startDataplane({ xdsPort: app.xdsPort, nodeId: 'dp-obs', nodeCluster: 'edge', adminPort: proxyAdmin });
    await dp.proxy.whenLive(20_000);
    // Port 0 in the config: the proxy picked one (no race with parallel test files).
    port = dp.proxy.listenerPort('edge') ?? 0;
  });

  after(async () => {
    await dp?.stop();
    await app?.close();
    await web?.close();
    await dir?.remove();
  });

  it("the sidecar's health check (requiring the data plane's /ready) passes with our proxy", async () => {
    const url = `http://127.0.0.1:${app?.adminPort ?? 0}/health`;
    const res = await waitUntil(
      async () => {
        const r = await fetch(url);
        await r.text();
        return r.status === 200 && r;
      },
      { what: 'sidecar /health to turn 200' },
    );
    assert.equal(res.status, 200);
  });

  it('streams one access-log entry per request to the ALS sink', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await send({ port, host: 'obs.test', path: `/obs/${i}` })).status, 200);
    assert.equal((await send({ port, host: 'obs.test', path: '/missing-is-fine-too' })).status, 200);
    const got = await waitUntil(
      async () => {
        const ls = (await lines(logFile)).filter((l) => String(l.path ?? '').startsWith('/obs/'));
        return ls.length >= 5 && ls;
      },
      { what: 'five access-log lines in the sink file', timeoutMs: 10_000 },
    );
    for (const l of got) {
      assert.equal(l.method, 'GET');
      assert.equal(l.status, 200);
      assert.equal(l.upstream_cluster, 'web');
      assert.equal(l.upstream_host, `127.0.0.1:${web?.port}`);
      assert.equal(l.authority, 'obs.test');
      assert.equal(l.node, 'dp-obs');
      assert.equal(l.protocol, 'HTTP/1.1');
    }
    assert.deepEqual(got.map((l) => l.path).sort(), ['/obs/0', '/obs/1', '/obs/2', '/obs/3', '/obs/4']);
  });
});

describe('our proxy: file access log with a JSON format', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let xds: XdsHarness | undefined;
  let dp: DataplaneHandle | undefined;
  let web: Upstream | undefined;

  after(async () => {
    await dp?.stop();
    await xds?.close();
    await web?.close();
    await dir?.remove();
  });

  it('writes one formatted line per request', async () => {
    dir = await makeTempDir('dataplane-filelog');
    web = await startUpstream('web');
    const file = join(dir.path, 'proxy-access.log');
    // The control plane in this process packs a FileAccessLog: its proto must be in the shared root
    // (protobufjs turns an unknown '@type' into an empty Any).
    loadExtras();
    xds = await startXds({
      set: {
        clusters: [{ name: 'web', type: 'EDS', eds_cluster_config: { eds_config: ADS }, connect_timeout: { seconds: 1 } }],
        endpoints: [
          {
            cluster_name: 'web',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: web.port } } } }] }],
          },
        ],
        listeners: [
          {
            name: 'edge',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            filter_chains: [
              {
                filters: [
                  {
                    name: 'hcm',
                    typed_config: {
                      '@type': HCM,
                      stat_prefix: 'edge',
                      rds: { route_config_name: 'r', config_source: ADS },
                      http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }],
                      access_log: [
                        {
                          name: 'file',
                          typed_config: {
                            '@type': FILE_LOG,
                            path: file,
                            // google.protobuf.Value fields are camelCase in protobufjs' bundled struct.proto.
                            log_format: {
                              json_format: {
                                fields: {
                                  method: { stringValue: '%REQ(:METHOD)%' },
                                  path: { stringValue: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%' },
                                  code: { stringValue: '%RESPONSE_CODE%' },
                                  flags: { stringValue: '%RESPONSE_FLAGS%' },
                                  upstream: { stringValue: '%UPSTREAM_HOST%' },
                                  cluster: { stringValue: '%UPSTREAM_CLUSTER%' },
                                },
                              },
                            },
                          },
                        },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
        routes: [{ name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/web' }, route: { cluster: 'web' } }] }] }],
      },
    });
    dp = await startDataplane({ xdsPort: xds.port, nodeId: 'dp-filelog', nodeCluster: 'edge' });
    await dp.proxy.whenLive(20_000);
    const port = dp.proxy.listenerPort('edge') ?? 0;
    await send({ port, host: 'x', path: '/web/1' });
    await send({ port, host: 'x', path: '/nowhere' });
    const got = await waitUntil(
      async () => {
        const ls = await lines(file);
        return ls.length >= 2 && ls;
      },
      { what: 'two lines in the file access log' },
    );
    assert.deepEqual(got[0], { method: 'GET', path: '/web/1', code: 200, flags: null, upstream: `127.0.0.1:${web.port}`, cluster: 'web' });
    assert.deepEqual(got[1], { method: 'GET', path: '/nowhere', code: 404, flags: 'NR', upstream: null, cluster: null });
  });
});
