/**
 * Envoy-only checks of file mode: a YAML file in the seed 001 format (plus static endpoints) ->
 * `serve()` -> real Envoy over ADS -> local HTTP upstreams. Invalid edits (YAML syntax, schema,
 * undefined cluster) are refused: Envoy keeps the same resource versions (read from its
 * /config_dump) and the same split, and a later valid edit still reaches it; Envoy's
 * `update_rejected` counters stay 0 for the whole run.
 *
 * The traffic scenarios on this config (the 90/10 split, a weight edit moving it, host rewrite,
 * round robin, a failing health check) run against Envoy AND our TS proxy in
 * traffic-http.test.ts.
 *
 * Statistics: each request picks a weighted cluster independently, so the count for a cluster
 * with weight share p over n requests is Binomial(n, p). Every split assertion allows 4 standard
 * deviations (sqrt(n p (1-p))) around n p: a correct server fails one assertion about once in
 * 15,000 runs.
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
    // Ephemeral admin and ALS ports: the defaults (9002, 9001) would collide with other test files running at once.
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: { port: 0 }, als: { port: 0 }, logger: log.logger });
    envoy = await startEnvoy({ xdsPort: app.xdsPort, nodeId: 'envoy-file-test', nodeCluster: 'web' });

    for (const [cluster, hosts] of [
      ['web-api-perl', 1],
      ['web-api-go', 1],
      ['web-asset', 2],
    ] as const) {
      await waitHealthy(cluster, hosts);
    }
    // The listener and its routes are in place once a request through it reaches an upstream.
    await theEnvoy().waitFor(async () => (await send({ port: ports.listener, host: DOMAIN, path: '/api/ready' })).status === 200, {
      what: `Envoy listener 127.0.0.1:${ports.listener} routing /api`,
      timeoutMs: 20_000,
    });
  });

  after(async () => {
    await envoy?.stop();
    await app?.close();
    await Promise.all(Object.values(up).map((u) => u?.close()));
    await dir?.remove();
  });

  it('invalid edits are refused: Envoy keeps the served versions and the 90/10 split', async () => {
    const served = dynamicVersions(await theEnvoy().configDump());
    assert.ok(Object.keys(served.routes).length > 0, 'Envoy has dynamic routes');

    const invalid = [
      // YAML syntax error (unclosed flow sequence).
      configYaml(ports, { perl: 90, go: 10 }).replace('prefix: ["/asset"]', 'prefix: ["/asset"'),
      // Schema error: a weight must be an integer >= 0.
      configYaml(ports, { perl: 90, go: '"heavy"' }),
      // Cross-reference error: a route naming a cluster that cluster.loadbalancer lacks.
      configYaml(ports, { perl: 90, go: 10 }).replace('    web-asset:\n      prefix', '    web-nowhere:\n      prefix'),
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
    assertShare(t, 'web-api-go', 0.1, '90/10 split after invalid edits');
    // Checked after the traffic run too, so a late publish of a bad config would show.
    assert.deepEqual(dynamicVersions(await theEnvoy().configDump()), served, 'Envoy holds the same resource versions');

    // The watch still works after refusals: a valid edit goes through.
    await saveConfig(configYaml(ports, { perl: 70, go: 30 }));
    await theEnvoy().waitFor(async () => routeTargets(await theEnvoy().configDump(), '/api')?.get('web-api-go') === 30, {
      what: 'Envoy to hold the 70/30 route after a valid edit',
      timeoutMs: 10_000,
    });
  });

  it('Envoy rejected no update from us (no NACK during the whole run)', async () => {
    const stats = await theEnvoy().stats('update_rejected$');
    const rejected = [...stats].filter(([, n]) => n > 0);
    assert.ok(stats.size > 0, 'Envoy reports update_rejected counters');
    assert.deepEqual(rejected, [], 'update_rejected counters are all 0');
  });
});
