/**
 * Consul mode end to end, on real traffic: Consul (KV config + service health) -> serve() ->
 * real Envoy over ADS -> local HTTP upstreams registered in Consul.
 * - instances registered with Meta zones/regions and weights reach Envoy with that locality and weight;
 * - a TTL check going critical takes the instance out of rotation within 2 s (measured, 5 runs);
 * - service maintenance drains the instance;
 * - a weight edit in KV (`weights set`'s path: check-and-set) moves the split (measured, 5 runs);
 * - invalid YAML, a config that fails validation or one over the size cap, written to KV, changes nothing;
 * - Consul stopped: Envoy keeps routing; Consul restarted: a later KV change still arrives.
 * The measured latencies (Consul change -> Envoy's admin shows it) are printed as test
 * diagnostics (median and max).
 *
 * Statistics as in envoy-file.test.ts: shares are Binomial(n, p), asserted within 4 sigma.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serve, type RunningApp } from '../../src/app.js';
import { applyKvWrite, planWeightEdit } from '../../src/commands/kv-write.js';
import type { HealthSourceStatus } from '../../src/sources/consul-health.js';
import { dynamicVersions, routeTargets, startEnvoy, type EnvoyHandle, type EnvoyHost } from '../support/envoy.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { binomialBounds, sendMany, type Tally } from '../support/traffic.js';
import { captureLog, type CapturedLog } from '../support/log-capture.js';
import { startConsul, type ConsulAgent } from '../support/consul.js';
import { freePort, waitUntil } from '../support/tmp.js';

const KEY = 'consul-xds/config';
/** The size cap of the serve() under test: small enough for Consul to store a bigger value. */
const CONFIG_CAP = 64 * 1024;
const DOMAIN = 'app.test';
const RUNS = 5;

function configYaml(listenerPort: number, perl: number, go: number): string {
  return `# Consul-mode config (test/integration/consul-envoy.test.ts): endpoints come from Consul health.
listener:
  listen:
    protocol: "tcp"
    address: "127.0.0.1"
    port: ${listenerPort}
route:
  domain: ["${DOMAIN}"]
  cluster:
    web-api-perl:
      prefix: ["/api"]
      weight: ${perl}   # the stable fleet
    web-api-go:
      prefix: ["/api"]
      weight: ${go}   # the canary
cluster:
  loadbalancer:
    web-api-perl:
      lb-policy: "round-robin"
      discovery: "eds"
    web-api-go:
      lb-policy: "round-robin"
      discovery: "eds"
endpoint:
  eds:
    web-api-perl:
      protocol: "tcp"
      balancing-policy: "locality"
    web-api-go:
      protocol: "tcp"
      balancing-policy: "locality"
`;
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const mid = s.length % 2 ? (s[(s.length - 1) / 2] ?? 0) : ((s[s.length / 2 - 1] ?? 0) + (s[s.length / 2] ?? 0)) / 2;
  return `median ${mid.toFixed(0)} ms, max ${(s.at(-1) ?? 0).toFixed(0)} ms over ${s.length} runs (${s.map((x) => x.toFixed(0)).join(', ')})`;
}

describe('real Envoy against serve() in Consul mode', () => {
  let consul: ConsulAgent | undefined;
  let app: RunningApp | undefined;
  let envoy: EnvoyHandle | undefined;
  let log: CapturedLog;
  let listenerPort: number;
  const ups: Upstream[] = [];
  // name -> [service, zone, region, weight]
  const INSTANCES = {
    'perl-a': ['web-api-perl', 'zone-a', 'region-1', 3],
    'perl-b': ['web-api-perl', 'zone-a', 'region-1', 2],
    'perl-c': ['web-api-perl', 'zone-a', 'region-1', 1],
    'go-a': ['web-api-go', 'zone-b', 'region-1', 1],
  } as const;
  type Name = keyof typeof INSTANCES;
  const port = new Map<Name, number>();

  const c = (): ConsulAgent => {
    assert.ok(consul);
    return consul;
  };
  const e = (): EnvoyHandle => {
    assert.ok(envoy);
    return envoy;
  };
  const register = async (name: Name): Promise<void> => {
    const [service, zone, region, weight] = INSTANCES[name];
    await c().registerService({
      Name: service,
      ID: name,
      Address: '127.0.0.1',
      Port: port.get(name),
      Meta: { zone, region },
      Weights: { Passing: weight, Warning: 1 },
      Checks: [{ CheckID: `${name}-ttl`, TTL: '10m', Status: 'passing' }],
    });
  };
  /** Hosts of the Consul-fed clusters (Envoy also lists its static xds_cluster). */
  const consulHosts = async (handle = e()): Promise<EnvoyHost[]> => (await handle.clusters()).filter((h) => h.cluster.startsWith('web-api-'));
  const healthyCount = async (handle = e()): Promise<number> => (await consulHosts(handle)).filter((h) => h.edsHealth === 'HEALTHY').length;
  const hostOf = async (name: Name): Promise<EnvoyHost | undefined> => (await consulHosts()).find((h) => h.port === port.get(name));
  const waitHost = (name: Name, edsHealth: string, what: string): Promise<EnvoyHost> =>
    e().waitFor(
      async () => {
        const h = await hostOf(name);
        return h?.edsHealth === edsHealth ? h : undefined;
      },
      { what, timeoutMs: 10_000, intervalMs: 10 },
    );
  const api = (count: number): Promise<Tally> => sendMany({ port: listenerPort, host: DOMAIN, path: '/api/items', count });
  const routeNow = async (): Promise<Map<string, number> | undefined> => routeTargets(await e().configDump(), '/api');

  before(async () => {
    log = captureLog('info');
    consul = await startConsul();
    for (const name of Object.keys(INSTANCES) as Name[]) {
      const u = await startUpstream(name);
      ups.push(u);
      port.set(name, u.port);
      await register(name);
    }
    listenerPort = await freePort();
    await consul.kvPut(KEY, configYaml(listenerPort, 90, 10));
    app = await serve({
      consul: { address: consul.address, key: KEY, watch: { backoffBaseMs: 100, backoffMaxMs: 500 }, startupTimeoutMs: 10_000 },
      // Below Consul's own 512 KiB value limit, so an oversized value can reach us.
      configLimits: { maxBytes: CONFIG_CAP },
      xds: { host: '127.0.0.1', port: 0 },
      admin: false,
      als: false,
      logger: log.logger,
    });
    envoy = await startEnvoy({ xdsPort: app.xdsPort, nodeId: 'consul-envoy-test', nodeCluster: 'edge' });
    const started = envoy;
    await started.waitFor(async () => (await healthyCount(started)) === 4, { what: 'Envoy to see four healthy Consul instances' });
    await envoy.waitFor(async () => (await routeNow())?.get('web-api-go') === 10, { what: 'the /api split from KV' });
  });

  after(async () => {
    await envoy?.stop();
    await app?.close();
    await Promise.all(ups.map((u) => u.close()));
    await consul?.destroy();
  });

  it('instances appear in Envoy with the locality and weight registered in Consul', async () => {
    for (const name of Object.keys(INSTANCES) as Name[]) {
      const [service, zone, region, weight] = INSTANCES[name];
      const h = await hostOf(name);
      assert.ok(h, `${name} in Envoy`);
      assert.deepEqual(
        { cluster: h.cluster, zone: h.zone, region: h.region, weight: h.weight, edsHealth: h.edsHealth },
        { cluster: service, zone, region, weight, edsHealth: 'HEALTHY' },
        name,
      );
    }
    const t = await api(400);
    assert.equal(t.count(''), 0, `every request answered by an upstream: ${t.describe()}`);
  });

  it('a critical TTL check takes the instance out of rotation within 2 s; passing brings it back', async (t) => {
    const latencies: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      let t0 = performance.now();
      await c().ttl('perl-a-ttl', 'fail');
      await waitHost('perl-a', 'UNHEALTHY', 'perl-a UNHEALTHY in Envoy');
      latencies.push(performance.now() - t0);
      if (run === 0) {
        const tally = await api(300);
        assert.equal(tally.count('perl-a'), 0, `perl-a out of rotation: ${tally.describe()}`);
        assert.ok(tally.count('perl-b') > 0 && tally.count('perl-c') > 0 && tally.count('') === 0, tally.describe());
      }
      t0 = performance.now();
      await c().ttl('perl-a-ttl', 'pass');
      await waitHost('perl-a', 'HEALTHY', 'perl-a HEALTHY again');
      latencies.push(performance.now() - t0);
    }
    t.diagnostic(`Consul TTL check change -> new EDS at Envoy: ${stats(latencies)}`);
    assert.ok(Math.max(...latencies) < 2000, `every health change reached Envoy within 2 s: ${stats(latencies)}`);
    const tally = await api(300);
    assert.ok(tally.count('perl-a') > 0, `perl-a back in rotation: ${tally.describe()}`);
  });

  it('service maintenance drains the instance', async () => {
    await c().serviceMaintenance('perl-b', true, 'deploy');
    await waitHost('perl-b', 'DRAINING', 'perl-b DRAINING in Envoy');
    const tally = await api(300);
    assert.equal(tally.count('perl-b'), 0, `perl-b drained: ${tally.describe()}`);
    assert.equal(tally.count(''), 0, tally.describe());
    await c().serviceMaintenance('perl-b', false);
    await waitHost('perl-b', 'HEALTHY', 'perl-b back');
  });

  it('a weight edit in KV (check-and-set) moves the traffic split', async (t) => {
    const latencies: number[] = [];
    const plan = [
      [70, 30],
      [90, 10],
      [50, 50],
      [80, 20],
      [70, 30],
    ] as const;
    for (const [perl, go] of plan) {
      const { plan: write } = await planWeightEdit(c().client, KEY, '/api', [
        { cluster: 'web-api-perl', weight: perl },
        { cluster: 'web-api-go', weight: go },
      ]);
      const t0 = performance.now();
      await applyKvWrite(c().client, write);
      await e().waitFor(
        async () => {
          const r = await routeNow();
          return r?.get('web-api-perl') === perl && r.get('web-api-go') === go;
        },
        { what: `RDS ${perl}/${go} at Envoy`, timeoutMs: 5000, intervalMs: 10 },
      );
      latencies.push(performance.now() - t0);
    }
    t.diagnostic(`Consul KV edit -> new RDS at Envoy: ${stats(latencies)}`);
    assert.ok(Math.max(...latencies) < 1000, `every KV edit reached Envoy within a second: ${stats(latencies)}`);
    const tally = await api(1000);
    const { low, high } = binomialBounds(tally.total, 0.3);
    assert.ok(
      tally.count('go-a') >= low && tally.count('go-a') <= high,
      `go-a share ~30% within 4 sigma [${low.toFixed(0)}, ${high.toFixed(0)}]: ${tally.describe()}`,
    );
  });

  it('invalid YAML, an invalid config or one over the size cap in KV changes nothing; the error names the key', async () => {
    const before = dynamicVersions(await e().configDump());
    const good = (await c().client.kvGet(KEY))?.value ?? '';
    const oversized = `${good}#${'x'.repeat(CONFIG_CAP)}\n`;
    for (const [what, text, code] of [
      ['YAML syntax', 'route: [\n', 'CXDS_CONFIG_INVALID'],
      ['schema', good.replace(/weight: 30/, 'weight: "lots"'), 'CXDS_CONFIG_INVALID'],
      ['cross-section rule', good.replace(/weight: 70/, 'weight: 0').replace(/weight: 30/, 'weight: 0'), 'CXDS_CONFIG_INVALID'],
      ['over the size cap', oversized, 'CXDS_CONFIG_TOO_LARGE'],
    ] as const) {
      const since = log.records.length;
      await c().kvPut(KEY, text);
      const rec = await log.waitFor((r) => r.code === code, { what: `${what}: the refusal logged`, since });
      assert.match(JSON.stringify(rec), /consul kv consul-xds\/config/, `${what}: the error names the key`);
      if (code === 'CXDS_CONFIG_TOO_LARGE')
        assert.match(JSON.stringify(rec), new RegExp(`the config is ${Buffer.byteLength(oversized)} bytes, over the ${CONFIG_CAP}-byte cap`));
    }
    const tally = await api(300);
    assert.equal(tally.count(''), 0, tally.describe());
    assert.deepEqual(dynamicVersions(await e().configDump()), before, 'Envoy holds the same versions');
    assert.equal((await routeNow())?.get('web-api-go'), 30);
    await c().kvPut(KEY, good);
  });

  it('Consul stopped: Envoy keeps routing; Consul restarted: a later KV change still arrives', async () => {
    const versions = dynamicVersions(await e().configDump());
    await c().stop();
    const a = app;
    assert.ok(a);
    await waitUntil(() => ((a.status().consul?.health as HealthSourceStatus | undefined)?.services ?? []).every((s) => s.consecutiveFailures >= 2), {
      what: 'health watches to report the outage',
      timeoutMs: 10_000,
    });
    const during = await api(300);
    assert.equal(during.count(''), 0, `all answered while Consul is down: ${during.describe()}`);
    assert.ok(during.count('go-a') > 0 && during.count('perl-a') > 0, during.describe());
    assert.deepEqual(dynamicVersions(await e().configDump()), versions, 'no change pushed while Consul is down');

    await c().start();
    // A dev agent comes back empty of KV; its own services return from its data dir with their TTL
    // checks critical until refreshed. Refresh them (the instances' own job), then write a new
    // config: both must arrive.
    for (const name of Object.keys(INSTANCES) as Name[]) await c().ttl(`${name}-ttl`, 'pass');
    await c().kvPut(KEY, configYaml(listenerPort, 60, 40));
    await e().waitFor(async () => (await routeNow())?.get('web-api-go') === 40, { what: 'the post-restart KV change at Envoy', timeoutMs: 10_000 });
    await e().waitFor(async () => (await healthyCount()) === 4, { what: 'four healthy instances after the restart' });
    const afterRestart = await api(300);
    assert.equal(afterRestart.count(''), 0, afterRestart.describe());
  });
});
