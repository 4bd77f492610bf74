/**
 * The walking skeleton end to end, on real traffic: a YAML file in the seed 001 format (plus
 * static endpoints for file mode) -> `serve()` -> real Envoy over ADS -> local HTTP upstreams.
 * Asserts the /api weighted split, a weight edit moving it within a second, invalid edits
 * changing nothing, `host-header` reaching the upstream as Host, /asset going to web-asset, and
 * an endpoint whose HTTP health check fails leaving rotation while its healthy peer keeps serving.
 *
 * Statistics: each request picks a weighted cluster independently, so the count for a cluster
 * with weight share p over n requests is Binomial(n, p). Every split assertion allows 4 standard
 * deviations (sqrt(n p (1-p))) around n p: a correct server fails one assertion about once in
 * 15,000 runs, while the bands of the splits we compare (90/10 vs 70/30) do not overlap.
 *
 * Timing: every wait is a poll with a deadline, never a fixed sleep.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { dynamicVersions, routeTargets, startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { binomialBounds, send, sendMany, type Tally } from '../support/traffic.js';
import { captureLog, type CapturedLog } from '../support/log-capture.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const DOMAIN = 'app.test';
const HOST_HEADER = 'www.upstream.test';
const HC_HOST = 'hc.upstream.test';
/** Requests per split measurement: 4 sigma at p = 0.1 is +-38 requests (3.8 points). */
const N = 1000;

interface Weights {
  readonly perl: number | string;
  readonly go: number | string;
}

interface Ports {
  readonly listener: number;
  readonly perl: number;
  readonly go: number;
  readonly assetA: number;
  readonly assetB: number;
}

/** The seed 001 config with loopback addresses, fast health checks and static endpoints. */
function configYaml(ports: Ports, w: Weights): string {
  const healthCheck = `
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
  return `# written by test/integration/envoy-file.test.ts
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
      lb-policy: "round-robin"
      discovery: "eds"${healthCheck}
    web-api-go:
      lb-policy: "round-robin"
      discovery: "eds"${healthCheck}
    web-asset:
      lb-policy: "round-robin"
      discovery: "eds"${healthCheck}
endpoint:
  eds:
    web-api-perl:
      protocol: "tcp"
      port: ${ports.perl}
      balancing-policy: "locality"
      static:
        - { address: "127.0.0.1", zone: "zone-a" }
    web-api-go:
      protocol: "tcp"
      port: ${ports.go}
      balancing-policy: "locality"
      static:
        - { address: "127.0.0.1", zone: "zone-a" }
    web-asset:
      protocol: "tcp"
      balancing-policy: "locality"
      static:
        - { address: "127.0.0.1", port: ${ports.assetA}, zone: "zone-a" }
        - { address: "127.0.0.1", port: ${ports.assetB}, zone: "zone-a" }
`;
}

function assertShare(t: Tally, upstream: string, p: number, label: string): void {
  const { low, high } = binomialBounds(t.total, p);
  const got = t.count(upstream);
  assert.ok(
    got >= low && got <= high,
    `${label}: ${upstream} answered ${got}/${t.total}, expected ${(t.total * p).toFixed(0)} within 4 sigma [${low.toFixed(1)}, ${high.toFixed(1)}]; tally: ${t.describe()}`,
  );
}

describe('real Envoy against serve() in file mode', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let app: RunningApp | undefined;
  let envoy: EnvoyHandle | undefined;
  let log: CapturedLog;
  const up: Record<'perl' | 'go' | 'assetA' | 'assetB', Upstream | undefined> = { perl: undefined, go: undefined, assetA: undefined, assetB: undefined };
  let ports: Ports;
  let configFile: string;

  const upstream = (k: keyof typeof up): Upstream => {
    const u = up[k];
    assert.ok(u, `upstream ${k} not started`);
    return u;
  };
  const theEnvoy = (): EnvoyHandle => {
    assert.ok(envoy, 'Envoy not started');
    return envoy;
  };

  /** Saves the config the way editors do (write a temp file, rename it over the original). */
  const saveConfig = async (text: string): Promise<void> => {
    const tmp = `${configFile}.tmp-${process.pid}`;
    await writeFile(tmp, text);
    await rename(tmp, configFile);
  };

  const api = (count = N): Promise<Tally> => sendMany({ port: ports.listener, host: DOMAIN, path: '/api/items', count });
  const asset = (count: number): Promise<Tally> => sendMany({ port: ports.listener, host: DOMAIN, path: '/asset/logo.png', count });

  /** Waits until Envoy sees every endpoint of a cluster passing its health check. */
  const waitHealthy = (cluster: string, hosts: number): Promise<true> =>
    theEnvoy().waitFor(
      async () => {
        const hs = (await theEnvoy().clusters()).filter((h) => h.cluster === cluster);
        return hs.length === hosts && hs.every((h) => h.failedFlags.length === 0);
      },
      { what: `all ${hosts} endpoints of ${cluster} healthy in Envoy`, timeoutMs: 20_000 },
    );

  before(async () => {
    dir = await makeTempDir('envoy-file');
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

    log = captureLog();
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, logger: log.logger });
    envoy = await startEnvoy({ xdsPort: app.xdsPort, nodeId: 'envoy-file-test', nodeCluster: 'web' });

    for (const [cluster, hosts] of [['web-api-perl', 1], ['web-api-go', 1], ['web-asset', 2]] as const) {
      await waitHealthy(cluster, hosts);
    }
    // The listener and its routes are in place once a request through it reaches an upstream.
    await theEnvoy().waitFor(
      async () => (await send({ port: ports.listener, host: DOMAIN, path: '/api/ready' })).status === 200,
      { what: `Envoy listener 127.0.0.1:${ports.listener} routing /api`, timeoutMs: 20_000 },
    );
  });

  after(async () => {
    await envoy?.stop();
    await app?.close();
    await Promise.all(Object.values(up).map((u) => u?.close()));
    await dir?.remove();
  });

  it('splits /api 90/10 between web-api-perl and web-api-go', async () => {
    const t = await api();
    assert.equal(t.byStatus.get(200), N, `every request answered 200: ${t.describe()}`);
    assertShare(t, 'web-api-go', 0.1, '90/10 split');
    assert.equal(t.count('web-api-perl') + t.count('web-api-go'), N, t.describe());
  });

  it('rewrites Host to host-header on the way to the upstream; health checks carry their own host', async () => {
    upstream('perl').reset();
    upstream('assetA').reset();
    upstream('assetB').reset();
    await api(20);
    await asset(20);
    const seen = [...upstream('perl').requests, ...upstream('assetA').requests, ...upstream('assetB').requests];
    assert.ok(seen.length >= 20, `requests reached the upstreams (${seen.length})`);
    for (const r of seen) assert.equal(r.host, HOST_HEADER, `Host seen by the upstream for ${r.path}`);
    const checks = await theEnvoy().waitFor(() => upstream('perl').healthChecks.length > 0 && upstream('perl').healthChecks, {
      what: 'Envoy to health-check web-api-perl',
    });
    for (const c of checks) assert.equal(c.host, HC_HOST, `Host of the health check to ${c.path}`);
  });

  it('sends /asset to web-asset (both endpoints), never to the /api clusters', async () => {
    const t = await asset(200);
    assert.equal(t.byStatus.get(200), 200, t.describe());
    assert.equal(t.count('web-api-perl') + t.count('web-api-go'), 0, t.describe());
    // Round robin over two healthy endpoints: both serve.
    assert.ok(t.count('web-asset-a') > 0 && t.count('web-asset-b') > 0, t.describe());
    assert.equal(t.count('web-asset-a') + t.count('web-asset-b'), 200, t.describe());
  });

  it('a weight edit in the file reaches Envoy within a second and moves the split to 70/30', async (t) => {
    const started = Date.now();
    await saveConfig(configYaml(ports, { perl: 70, go: 30 }));
    await theEnvoy().waitFor(
      async () => {
        const targets = routeTargets(await theEnvoy().configDump(), '/api');
        return targets?.get('web-api-perl') === 70 && targets.get('web-api-go') === 30;
      },
      { what: 'Envoy to hold the 70/30 route', timeoutMs: 10_000, intervalMs: 20 },
    );
    const elapsed = Date.now() - started;
    t.diagnostic(`file save -> route in Envoy: ${elapsed} ms`);
    // Contract of the file source: a saved edit reaches connected clients within 1 s.
    assert.ok(elapsed <= 1000, `the edit took ${elapsed} ms to reach Envoy (budget 1000 ms)`);

    const split = await api();
    assert.equal(split.byStatus.get(200), N, split.describe());
    assertShare(split, 'web-api-go', 0.3, '70/30 split after the edit');
  });

  it('invalid edits are refused: Envoy keeps the served versions and the 70/30 split', async () => {
    const served = dynamicVersions(await theEnvoy().configDump());
    assert.ok(Object.keys(served.routes).length > 0, 'Envoy has dynamic routes');

    const invalid = [
      // YAML syntax error (unclosed flow sequence).
      configYaml(ports, { perl: 70, go: 30 }).replace('prefix: ["/asset"]', 'prefix: ["/asset"'),
      // Schema error: a weight must be an integer >= 0.
      configYaml(ports, { perl: 70, go: '"heavy"' }),
      // Cross-reference error: a route naming a cluster that cluster.loadbalancer lacks.
      configYaml(ports, { perl: 70, go: 30 }).replace('    web-asset:\n      prefix', '    web-nowhere:\n      prefix'),
    ];
    for (const text of invalid) {
      const since = log.records.length;
      await saveConfig(text);
      // The app says it refused the edit (stable error code, not message text).
      await log.waitFor((r) => r.level >= 50 && r.code === 'CXDS_CONFIG_INVALID', {
        what: 'the app to refuse the invalid edit with CXDS_CONFIG_INVALID',
        since,
      });
    }

    const t = await api();
    assert.equal(t.byStatus.get(200), N, `traffic unharmed after invalid edits: ${t.describe()}`);
    assertShare(t, 'web-api-go', 0.3, '70/30 split after invalid edits');
    // Checked after the traffic run too, so a late publish of a bad config would show.
    assert.deepEqual(dynamicVersions(await theEnvoy().configDump()), served, 'Envoy holds the same resource versions');

    // The watch still works after refusals: a valid edit goes through.
    await saveConfig(configYaml(ports, { perl: 90, go: 10 }));
    await theEnvoy().waitFor(
      async () => routeTargets(await theEnvoy().configDump(), '/api')?.get('web-api-go') === 10,
      { what: 'Envoy to hold the 90/10 route after a valid edit', timeoutMs: 10_000 },
    );
  });

  it('an endpoint failing its HTTP health check leaves rotation; its healthy peer takes all traffic', async () => {
    const b = upstream('assetB');
    b.setHealthStatus(503);
    try {
      await theEnvoy().waitFor(
        async () => (await theEnvoy().clusters()).some((h) => h.port === b.port && h.failedFlags.includes('failed_active_health_check')),
        { what: `Envoy to mark web-asset-b (port ${b.port}) failed_active_health_check`, timeoutMs: 15_000 },
      );
      // Envoy merges health changes for up to common_lb_config.update_merge_window (1 s by
      // default) before its worker's load balancer sees them, so wait for the traffic to follow.
      await theEnvoy().waitFor(async () => (await asset(10)).count('web-asset-a') === 10, {
        what: 'the load balancer to drop web-asset-b',
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      upstream('assetA').reset();
      b.reset();
      const t = await asset(200);
      assert.equal(t.byStatus.get(200), 200, t.describe());
      assert.equal(t.count('web-asset-a'), 200, `all /asset traffic on the healthy endpoint: ${t.describe()}`);
      assert.equal(b.requests.length, 0, 'the unhealthy endpoint got no request');
      // Other clusters are untouched.
      const other = await api(100);
      assert.equal(other.byStatus.get(200), 100, other.describe());
    } finally {
      b.setHealthStatus(200);
    }
    // Recovered: back in rotation (again after the merge window).
    await waitHealthy('web-asset', 2);
    await theEnvoy().waitFor(async () => (await asset(10)).count('web-asset-b') > 0, {
      what: 'web-asset-b to serve again after its health check passes',
      timeoutMs: 10_000,
      intervalMs: 100,
    });
  });

  it('Envoy rejected no update from us (no NACK during the whole run)', async () => {
    const stats = await theEnvoy().stats('update_rejected$');
    const rejected = [...stats].filter(([, n]) => n > 0);
    assert.ok(stats.size > 0, 'Envoy reports update_rejected counters');
    assert.deepEqual(rejected, [], 'update_rejected counters are all 0');
  });
});
