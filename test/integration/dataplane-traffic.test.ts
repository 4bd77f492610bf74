/**
 * Our data plane end to end on real traffic: a YAML file in the seed 001 format -> `serve()` ->
 * ADS -> `consul-xds proxy` (in this process) -> local HTTP upstreams. The same scenarios as
 * envoy-file.test.ts: the /api weighted split through our proxy, a weight edit moving it, Host
 * rewritten to host-header, round robin over /asset's two endpoints, an endpoint whose HTTP
 * health check fails leaving rotation (and coming back), /ready turning LIVE, Envoy-style stats.
 *
 * Statistics: each request draws its weighted cluster independently, so a cluster's count over n
 * requests is Binomial(n, p); assertions allow 4 standard deviations (false failure about 1 in
 * 15,000 per assertion) and the bands of 90/10 and 70/30 do not overlap.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { routeTargets } from '../support/envoy.js';
import { startDataplane, type DataplaneHandle } from '../support/dataplane.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { binomialBounds, send, sendMany, type Tally } from '../support/traffic.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const DOMAIN = 'app.test';
const HOST_HEADER = 'www.upstream.test';
const HC_HOST = 'hc.upstream.test';
const N = 1000;

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

function assertShare(t: Tally, upstream: string, p: number, label: string): void {
  const { low, high } = binomialBounds(t.total, p);
  const got = t.count(upstream);
  assert.ok(got >= low && got <= high, `${label}: ${upstream} answered ${got}/${t.total}, expected within [${low.toFixed(1)}, ${high.toFixed(1)}]; ${t.describe()}`);
}

describe('our proxy against serve() in file mode', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let app: RunningApp | undefined;
  let dp: DataplaneHandle | undefined;
  const up: Record<'perl' | 'go' | 'assetA' | 'assetB', Upstream | undefined> = { perl: undefined, go: undefined, assetA: undefined, assetB: undefined };
  let ports: Ports;
  let configFile: string;

  const upstream = (k: keyof typeof up): Upstream => {
    const u = up[k];
    assert.ok(u, `upstream ${k} not started`);
    return u;
  };
  const proxy = (): DataplaneHandle => {
    assert.ok(dp, 'proxy not started');
    return dp;
  };
  const saveConfig = async (text: string): Promise<void> => {
    const tmp = `${configFile}.tmp-${process.pid}`;
    await writeFile(tmp, text);
    await rename(tmp, configFile);
  };
  const api = (count = N): Promise<Tally> => sendMany({ port: ports.listener, host: DOMAIN, path: '/api/items', count });
  const asset = (count: number): Promise<Tally> => sendMany({ port: ports.listener, host: DOMAIN, path: '/asset/logo.png', count });

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
    assert.ok(hosts.every((h) => h.zone === 'zone-a' && h.edsHealth === 'HEALTHY'), JSON.stringify(hosts));
  });

  it('weighted split through our proxy: /api 90/10 between web-api-perl and web-api-go', async () => {
    const t = await api();
    assert.equal(t.byStatus.get(200), N, `every request answered 200: ${t.describe()}`);
    assertShare(t, 'web-api-go', 0.1, '90/10 split');
    assert.equal(t.count('web-api-perl') + t.count('web-api-go'), N, t.describe());
    const stats = await proxy().stats('upstream_rq_2xx$|upstream_rq_total$|downstream_rq_total$');
    assert.equal((stats.get('cluster.web-api-perl.upstream_rq_2xx') ?? 0) + (stats.get('cluster.web-api-go.upstream_rq_2xx') ?? 0), N);
    assert.equal(stats.get('cluster.web-api-go.upstream_rq_total'), t.count('web-api-go'));
    assert.ok((stats.get('http.listen.downstream_rq_total') ?? 0) >= N, JSON.stringify([...stats]));
  });

  it('rewrites Host to host-header; health checks carry their own host', async () => {
    for (const k of ['perl', 'assetA', 'assetB'] as const) upstream(k).reset();
    await api(20);
    await asset(20);
    const seen = [...upstream('perl').requests, ...upstream('assetA').requests, ...upstream('assetB').requests];
    assert.ok(seen.length >= 20, `requests reached the upstreams (${seen.length})`);
    for (const r of seen) assert.equal(r.host, HOST_HEADER, `Host seen by the upstream for ${r.path}`);
    const checks = await proxy().waitFor(() => upstream('perl').healthChecks.length > 0 && upstream('perl').healthChecks, { what: 'a health check of web-api-perl' });
    for (const c of checks) {
      assert.equal(c.host, HC_HOST);
      assert.equal(c.userAgent, 'Envoy/HC');
    }
  });

  it('sends /asset round robin over both endpoints, never to /api clusters', async () => {
    const t = await asset(200);
    assert.equal(t.byStatus.get(200), 200, t.describe());
    assert.equal(t.count('web-api-perl') + t.count('web-api-go'), 0, t.describe());
    // Round robin (one proxy, one worker): the two endpoints alternate exactly.
    assert.equal(t.count('web-asset-a'), 100, t.describe());
    assert.equal(t.count('web-asset-b'), 100, t.describe());
  });

  it('serves HTTP/2 cleartext (prior knowledge) on the same port, to the HTTP/1.1 upstreams', async () => {
    const session = http2.connect(`http://127.0.0.1:${ports.listener}`);
    try {
      const replies = await Promise.all(
        Array.from({ length: 20 }, () =>
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

  it('a weight edit in the file reaches the proxy within a second and moves the split to 70/30', async (t) => {
    const started = Date.now();
    await saveConfig(configYaml(ports, { perl: 70, go: 30 }));
    await proxy().waitFor(
      async () => {
        const targets = routeTargets(await proxy().configDump(), '/api');
        return targets?.get('web-api-perl') === 70 && targets.get('web-api-go') === 30;
      },
      { what: 'the proxy to hold the 70/30 route', timeoutMs: 10_000, intervalMs: 20 },
    );
    const elapsed = Date.now() - started;
    t.diagnostic(`file save -> route in the proxy: ${elapsed} ms`);
    assert.ok(elapsed <= 1000, `the edit took ${elapsed} ms (budget 1000 ms)`);
    const split = await api();
    assert.equal(split.byStatus.get(200), N, split.describe());
    assertShare(split, 'web-api-go', 0.3, '70/30 split after the edit');
  });

  it('takes an endpoint whose health check fails out of rotation, and back when it passes', async () => {
    upstream('assetB').setHealthStatus(503);
    await proxy().waitFor(
      async () => (await proxy().clusters()).some((h) => h.port === ports.assetB && h.failedFlags.includes('failed_active_health_check')),
      { what: 'web-asset-b to fail its health check' },
    );
    const t = await asset(100);
    assert.equal(t.count('web-asset-a'), 100, `only the healthy endpoint serves: ${t.describe()}`);
    upstream('assetB').setHealthStatus(200);
    await proxy().waitFor(
      async () => (await proxy().clusters()).every((h) => h.failedFlags.length === 0),
      { what: 'web-asset-b to pass again' },
    );
    const back = await asset(100);
    assert.ok(back.count('web-asset-b') > 0, back.describe());
  });
});
