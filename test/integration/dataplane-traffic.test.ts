/**
 * Proxy-only checks on real traffic: a YAML file in the seed 001 format -> `serve()` -> ADS ->
 * `consul-xds proxy` (in this process) -> local HTTP upstreams. /ready turning LIVE with every
 * endpoint healthy, HTTP/2 cleartext on the HTTP/1.1 port, and 404 for no route. The traffic
 * scenarios shared with Envoy (split, weight edit, host rewrite, round robin, health checks) live
 * in the parameterised traffic-*.test.ts suite, which runs them against both data planes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { startDataplane, type DataplaneHandle } from '../support/dataplane.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { send } from '../support/traffic.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const DOMAIN = 'app.test';
const HOST_HEADER = 'www.upstream.test';
const HC_HOST = 'hc.upstream.test';

interface Ports {
  readonly listener: number;
  readonly perl: number;
  readonly go: number;
  readonly assetA: number;
  readonly assetB: number;
}

function configYaml(ports: Ports, w: { perl: number; go: number }): string {
  const hc = `
      health-check:
        type: "http"
        host: "${HC_HOST}"
        value: "/health_check"
        expected: ["200"]
        timeout: 1
        interval: 0.2
        no-traffic-interval: 0.2
        healthy: 1
        unhealthy: 2`;
  return `# written by test/integration/dataplane-traffic.test.ts
listener:
  listen:
    protocol: "tcp"
    address: "127.0.0.1"
    port: ${ports.listener}
route:
  domain: ["${DOMAIN}"]
  host-header: "${HOST_HEADER}"
  cluster:
    web-api-perl:
      prefix: ["/api"]
      weight: ${w.perl}
    web-api-go:
      prefix: ["/api"]
      weight: ${w.go}
    web-asset:
      prefix: ["/asset"]
      weight: 100
cluster:
  loadbalancer:
    web-api-perl:
      lb-policy: "round-robin"${hc}
    web-api-go:
      lb-policy: "round-robin"${hc}
    web-asset:
      lb-policy: "round-robin"${hc}
endpoint:
  eds:
    web-api-perl:
      port: ${ports.perl}
      balancing-policy: "locality"
      static:
        - { address: "127.0.0.1", zone: "zone-a" }
    web-api-go:
      port: ${ports.go}
      balancing-policy: "locality"
      static:
        - { address: "127.0.0.1", zone: "zone-a" }
    web-asset:
      balancing-policy: "locality"
      static:
        - { address: "127.0.0.1", port: ${ports.assetA}, zone: "zone-a" }
        - { address: "127.0.0.1", port: ${ports.assetB}, zone: "zone-a" }
`;
}

describe('our proxy against serve() in file mode', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let app: RunningApp | undefined;
  let dp: DataplaneHandle | undefined;
  const up: Record<'perl' | 'go' | 'assetA' | 'assetB', Upstream | undefined> = { perl: undefined, go: undefined, assetA: undefined, assetB: undefined };
  let ports: Ports;
  let configFile: string;

  const proxy = (): DataplaneHandle => {
    assert.ok(dp, 'proxy not started');
    return dp;
  };

  before(async () => {
    dir = await makeTempDir('dataplane-traffic');
    const [perl, go, assetA, assetB] = await Promise.all([
      startUpstream('web-api-perl'),
      startUpstream('web-api-go'),
      startUpstream('web-asset-a'),
      startUpstream('web-asset-b'),
    ]);
    Object.assign(up, { perl, go, assetA, assetB });
    ports = { listener: await freePort(), perl: perl.port, go: go.port, assetA: assetA.port, assetB: assetB.port };
    configFile = join(dir.path, 'consul-xds.yaml');
    await writeFile(configFile, configYaml(ports, { perl: 90, go: 10 }));
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
    dp = await startDataplane({ xdsPort: app.xdsPort, nodeId: 'dataplane-traffic', nodeCluster: 'web' });
  });

  after(async () => {
    await dp?.stop();
    await app?.close();
    await Promise.all(Object.values(up).map((u) => u?.close()));
    await dir?.remove();
  });

  it('turns /ready LIVE once the first config is applied, with every endpoint healthy', async () => {
    await proxy().proxy.whenLive(20_000);
    assert.equal((await proxy().admin('/ready')).trim(), 'LIVE');
    assert.equal(proxy().proxy.listenerPort('listen'), ports.listener);
    const hosts = await proxy().waitFor(
      async () => {
        const hs = await proxy().clusters();
        return hs.length === 4 && hs.every((h) => h.failedFlags.length === 0) && hs;
      },
      { what: 'all 4 endpoints healthy in the proxy' },
    );
    assert.deepEqual(new Set(hosts.map((h) => h.cluster)), new Set(['web-api-perl', 'web-api-go', 'web-asset']));
    assert.ok(
      hosts.every((h) => h.zone === 'zone-a' && h.edsHealth === 'HEALTHY'),
      JSON.stringify(hosts),
    );
  });

  it('serves HTTP/2 cleartext (prior knowledge) on the same port, to the HTTP/1.1 upstreams', async () => {
    const session = http2.connect(`http://127.0.0.1:${ports.listener}`);
    try {
      const replies = await Promise.all(
        Array.from(
          { length: 20 },
          () =>
            new Promise<{ status: number; upstream: string }>((resolve, reject) => {
              const s = session.request({ ':path': '/asset/h2', ':authority': DOMAIN });
              let status = 0;
              let upstream = '';
              s.on('response', (h) => {
                status = Number(h[':status']);
                upstream = String(h['x-upstream'] ?? '');
              });
              s.on('data', () => undefined);
              s.on('end', () => resolve({ status, upstream }));
              s.on('error', reject);
              s.end();
            }),
        ),
      );
      assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
      assert.deepEqual(new Set(replies.map((r) => r.upstream)), new Set(['web-asset-a', 'web-asset-b']), 'balanced per request on one connection');
    } finally {
      session.close();
    }
    const st = await proxy().stats('^http\\.listen\\.downstream_cx_http2_total$');
    assert.ok((st.get('http.listen.downstream_cx_http2_total') ?? 0) >= 1);
  });

  it('answers 404 (no route) for an unknown Host or path', async () => {
    assert.equal((await send({ port: ports.listener, host: 'other.test', path: '/api/x' })).status, 404);
    assert.equal((await send({ port: ports.listener, host: DOMAIN, path: '/nothing' })).status, 404);
  });
});
