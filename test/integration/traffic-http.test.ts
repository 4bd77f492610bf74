/**
 * HTTP traffic scenarios, each run against every data plane (real Envoy and our TS proxy, see
 * test/support/dataplanes.ts): a YAML config file (seed 001 format plus extensions, static
 * endpoints) -> `serve()` -> ADS -> the data plane -> local HTTP upstreams. One control plane and
 * one data plane per kind serve every scenario here:
 *  - /api splits 90/10 between web-api-perl and web-api-go;
 *  - `host-header` reaches the upstream as Host; health checks carry `health-check.host`;
 *  - /asset round-robins over web-asset's two endpoints;
 *  - a weight edit in the file is ACKed by the data plane within 1 s and moves the split to 70/30;
 *  - an endpoint whose health path answers 503 leaves rotation, and comes back once healthy;
 *  - mirroring 30%: the shadow cluster gets about 30% of the requests, with `-shadow` appended to
 *    Host, and clients only ever see the primary's answers;
 *  - retries: an upstream failing every other request with 503, behind `retry: {retry-on: [5xx],
 *    attempts: 2}`, gives clients only 200s;
 *  - the data plane NACKed nothing during the whole run.
 *
 * Statistics: a weighted split or a mirror fraction is drawn independently per request, so a
 * cluster with share p of n requests gets a Binomial(n, p) count. Every such assertion allows
 * 4 standard deviations, sqrt(n p (1-p)), around n p: a correct data plane fails one about once in
 * 15,000 runs, while the bands of 90/10 and 70/30 (62..138 vs 242..358 of 1,000) do not overlap.
 * Timing: every wait is a poll with a deadline, never a fixed sleep.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { DATA_PLANES, startDataPlane, watchNode, type DataPlane, type DataPlaneKind, type NodeWatch } from '../support/dataplanes.js';
import { startUpstream, UPSTREAM_HEADER, type Upstream } from '../support/upstreams.js';
import { binomialBounds, sendMany, type Tally } from '../support/traffic.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const DOMAIN = 'app.test';
const MIRROR_DOMAIN = 'mirror.test';
const FLAKY_DOMAIN = 'flaky.test';
const HOST_HEADER = 'www.upstream.test';
const HC_HOST = 'hc.upstream.test';
/** Requests per split measurement: 4 sigma at p = 0.1 is +-38 requests, at p = 0.3 +-58. */
const N = 1000;
const MIRROR_PERCENT = 30;
/** Sequential requests through the retrying route (each needs up to 2 upstream attempts). */
const RETRY_N = 100;

interface Ports {
  readonly listener: number;
  readonly perl: number;
  readonly go: number;
  readonly assetA: number;
  readonly assetB: number;
  readonly primary: number;
  readonly shadow: number;
  readonly flaky: number;
}

/**
 * The seed 001 config (loopback addresses, fast health checks, static endpoints) plus two virtual
 * hosts on the same listener: one mirroring, one retrying. Only the /api weights vary.
 */
function configYaml(p: Ports, w: { perl: number; go: number }): string {
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
  return `# written by test/integration/traffic-http.test.ts
listener:
  listen:
    protocol: "tcp"
    address: "127.0.0.1"
    port: ${p.listener}
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
virtual-hosts:
  mirror:
    domain: ["${MIRROR_DOMAIN}"]
    cluster:
      web-primary:
        prefix: ["/"]
        mirror: { cluster: web-shadow, percent: ${MIRROR_PERCENT} }
  flaky:
    domain: ["${FLAKY_DOMAIN}"]
    cluster:
      web-flaky:
        prefix: ["/"]
        retry: { retry-on: ["5xx"], attempts: 2 }
cluster:
  loadbalancer:
    web-api-perl:
      lb-policy: "round-robin"
      discovery: "eds"${hc}
    web-api-go:
      lb-policy: "round-robin"
      discovery: "eds"${hc}
    web-asset:
      lb-policy: "round-robin"
      discovery: "eds"${hc}
    web-primary: {}
    web-shadow: {}
    web-flaky: {}
endpoint:
  eds:
    web-api-perl:
      protocol: "tcp"
      port: ${p.perl}
      balancing-policy: "locality"
      static:
        - { address: "127.0.0.1", zone: "zone-a" }
    web-api-go:
      protocol: "tcp"
      port: ${p.go}
      balancing-policy: "locality"
      static:
        - { address: "127.0.0.1", zone: "zone-a" }
    web-asset:
      protocol: "tcp"
      balancing-policy: "locality"
      static:
        - { address: "127.0.0.1", port: ${p.assetA}, zone: "zone-a" }
        - { address: "127.0.0.1", port: ${p.assetB}, zone: "zone-a" }
    web-primary: { static: [{ address: "127.0.0.1", port: ${p.primary} }] }
    web-shadow: { static: [{ address: "127.0.0.1", port: ${p.shadow} }] }
    web-flaky: { static: [{ address: "127.0.0.1", port: ${p.flaky} }] }
`;
}

interface Flaky {
  readonly port: number;
  /** Requests answered 200 / 503 since the last reset. */
  readonly ok: number;
  readonly failed: number;
  reset(): void;
  close(): Promise<void>;
}

/** An upstream that answers every other request (the 2nd, 4th, ...) with 503. */
async function startFlaky(name: string): Promise<Flaky> {
  let seen = 0;
  let ok = 0;
  let failed = 0;
  const server = createServer({ keepAlive: true }, (req, res) => {
    req.resume();
    res.setHeader(UPSTREAM_HEADER, name);
    if (seen++ % 2 === 1) {
      failed++;
      res.statusCode = 503;
      res.end('flaky: failing this one');
    } else {
      ok++;
      res.end(JSON.stringify({ upstream: name }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    get ok() {
      return ok;
    },
    get failed() {
      return failed;
    },
    reset() {
      seen = ok = failed = 0;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function assertShare(got: number, n: number, p: number, label: string, detail: string): void {
  const { low, high } = binomialBounds(n, p);
  assert.ok(
    got >= low && got <= high,
    `${label}: ${got}/${n}, expected ${(n * p).toFixed(0)} within 4 sigma [${low.toFixed(1)}, ${high.toFixed(1)}]; ${detail}`,
  );
}

function suite(kind: DataPlaneKind): void {
  describe(`HTTP traffic through ${kind}`, () => {
    const nodeId = `traffic-http-${kind}`;
    let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
    let app: RunningApp | undefined;
    let dp: DataPlane | undefined;
    let node: NodeWatch | undefined;
    let flaky: Flaky | undefined;
    const up: Record<'perl' | 'go' | 'assetA' | 'assetB' | 'primary' | 'shadow', Upstream | undefined> = {
      perl: undefined,
      go: undefined,
      assetA: undefined,
      assetB: undefined,
      primary: undefined,
      shadow: undefined,
    };
    let ports: Ports;
    let configFile: string;

    const upstream = (k: keyof typeof up): Upstream => {
      const u = up[k];
      assert.ok(u, `upstream ${k} not started`);
      return u;
    };
    const plane = (): DataPlane => {
      assert.ok(dp, `${kind} not started`);
      return dp;
    };
    const watch = (): NodeWatch => {
      assert.ok(node, 'node watch not started');
      return node;
    };
    /** Saves the config the way editors do (write a temp file, rename it over the original). */
    const saveConfig = async (text: string): Promise<void> => {
      const tmp = `${configFile}.tmp-${process.pid}`;
      await writeFile(tmp, text);
      await rename(tmp, configFile);
    };
    const send = (host: string, path: string, count: number, concurrency?: number): Promise<Tally> =>
      sendMany({ port: ports.listener, host, path, count, ...(concurrency ? { concurrency } : {}) });
    const api = (count = N): Promise<Tally> => send(DOMAIN, '/api/items', count);
    const asset = (count: number): Promise<Tally> => send(DOMAIN, '/asset/logo.png', count);

    before(async () => {
      dir = await makeTempDir(`traffic-http-${kind}`);
      const [perl, go, assetA, assetB, primary, shadow] = await Promise.all(
        ['web-api-perl', 'web-api-go', 'web-asset-a', 'web-asset-b', 'web-primary', 'web-shadow'].map((n) => startUpstream(n)),
      );
      assert.ok(perl && go && assetA && assetB && primary && shadow);
      Object.assign(up, { perl, go, assetA, assetB, primary, shadow });
      flaky = await startFlaky('web-flaky');
      ports = {
        listener: await freePort(),
        perl: perl.port,
        go: go.port,
        assetA: assetA.port,
        assetB: assetB.port,
        primary: primary.port,
        shadow: shadow.port,
        flaky: flaky.port,
      };
      configFile = join(dir.path, 'consul-xds.yaml');
      await writeFile(configFile, configYaml(ports, { perl: 90, go: 10 }));
      app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
      const watching = watchNode(app.xdsServer.registry, nodeId);
      node = watching;
      dp = await startDataPlane(kind, { xdsPort: app.xdsPort, nodeId, nodeCluster: 'web', context: () => watching.describe() });
      await dp.ready();
      // Routes are in place and every /api and /asset endpoint passed its first health check
      // once traffic reaches all of them (nothing answered by the data plane itself).
      await dp.waitFor(
        async () => {
          const a = await api(20);
          const s = await asset(20);
          return a.byStatus.get(200) === 20 && s.count('web-asset-a') > 0 && s.count('web-asset-b') > 0;
        },
        { what: `listener 127.0.0.1:${ports.listener} routing /api and /asset to healthy endpoints`, timeoutMs: 20_000, intervalMs: 100 },
      );
    });

    after(async () => {
      node?.close();
      await dp?.stop();
      await app?.close();
      await Promise.all([...Object.values(up).map((u) => u?.close()), flaky?.close()]);
      await dir?.remove();
    });

    it('splits /api 90/10 between web-api-perl and web-api-go', async () => {
      const t = await api();
      assert.equal(t.byStatus.get(200), N, `every request answered 200: ${t.describe()}`);
      assert.equal(t.count('web-api-perl') + t.count('web-api-go'), N, t.describe());
      assertShare(t.count('web-api-go'), N, 0.1, '90/10 split, web-api-go', t.describe());
    });

    it('rewrites Host to host-header on the way to the upstream; health checks carry their own host', async () => {
      for (const k of ['perl', 'go', 'assetA', 'assetB'] as const) upstream(k).reset();
      await api(20);
      await asset(20);
      const seen = (['perl', 'go', 'assetA', 'assetB'] as const).flatMap((k) => upstream(k).requests);
      assert.equal(seen.length, 40, 'every request reached an upstream');
      for (const r of seen) assert.equal(r.host, HOST_HEADER, `Host seen by the upstream for ${r.path}`);
      const checks = await plane().waitFor(() => upstream('perl').healthChecks.length > 0 && upstream('perl').healthChecks, {
        what: 'a health check of web-api-perl',
      });
      for (const c of checks) assert.equal(c.host, HC_HOST, `Host of the health check to ${c.path}`);
    });

    it('sends /asset to both web-asset endpoints round robin, never to the /api clusters', async () => {
      const t = await asset(200);
      assert.equal(t.byStatus.get(200), 200, t.describe());
      // Round robin over two equal, healthy endpoints: an even share (+-1 for the starting point).
      assert.ok(Math.abs(t.count('web-asset-a') - t.count('web-asset-b')) <= 2, `even round robin: ${t.describe()}`);
      assert.equal(t.count('web-asset-a') + t.count('web-asset-b'), 200, t.describe());
    });

    it('a weight edit in the file is ACKed within a second and moves the split to 70/30', async (t) => {
      const before = watch().acked('RDS');
      assert.ok(before, 'the data plane ACKed routes before the edit');
      const started = Date.now();
      await saveConfig(configYaml(ports, { perl: 70, go: 30 }));
      await plane().waitFor(() => watch().acked('RDS') !== before && watch().upToDate(), {
        what: 'the data plane to ACK the 70/30 routes',
        timeoutMs: 10_000,
        intervalMs: 10,
      });
      const elapsed = Date.now() - started;
      t.diagnostic(`file save -> routes ACKed by ${kind}: ${elapsed} ms`);
      // Contract of the file source: a saved edit reaches connected data planes within 1 s.
      assert.ok(elapsed <= 1000, `the edit took ${elapsed} ms to be ACKed (budget 1000 ms)`);

      const split = await api();
      assert.equal(split.byStatus.get(200), N, split.describe());
      assertShare(split.count('web-api-go'), N, 0.3, '70/30 split after the edit, web-api-go', split.describe());
    });

    it('an endpoint failing its HTTP health check leaves rotation; its healthy peer takes all traffic', async () => {
      const b = upstream('assetB');
      b.setHealthStatus(503);
      try {
        // Envoy merges health changes for up to update_merge_window (1 s) before its worker's
        // load balancer sees them: wait for the traffic to follow, not for an admin flag.
        await plane().waitFor(async () => (await asset(10)).count('web-asset-a') === 10, {
          what: `web-asset-b (port ${b.port}, health path 503) to leave rotation`,
          timeoutMs: 15_000,
          intervalMs: 100,
        });
        upstream('assetA').reset();
        b.reset();
        const t = await asset(200);
        assert.equal(t.byStatus.get(200), 200, t.describe());
        assert.equal(t.count('web-asset-a'), 200, `all /asset traffic on the healthy endpoint: ${t.describe()}`);
        assert.equal(b.requests.length, 0, 'the unhealthy endpoint got no request');
        await plane().waitFor(() => b.healthChecks.length > 0, { what: 'the unhealthy endpoint to be health-checked still' });
        // Other clusters are untouched.
        const other = await api(100);
        assert.equal(other.byStatus.get(200), 100, other.describe());
      } finally {
        b.setHealthStatus(200);
      }
      await plane().waitFor(async () => (await asset(10)).count('web-asset-b') > 0, {
        what: 'web-asset-b to serve again after its health check passes',
        timeoutMs: 15_000,
        intervalMs: 100,
      });
    });

    it(`mirrors ${MIRROR_PERCENT}% of requests to the shadow cluster (Host + "-shadow"); clients only see the primary`, async () => {
      const primary = upstream('primary');
      const shadow = upstream('shadow');
      primary.reset();
      shadow.reset();
      const t = await send(MIRROR_DOMAIN, '/orders', N);
      assert.equal(t.byStatus.get(200), N, t.describe());
      // The shadow answers with its own x-upstream; not one of its answers may reach a client.
      assert.equal(t.count('web-primary'), N, `every client answer came from the primary: ${t.describe()}`);
      assert.equal(primary.requests.length, N, 'the primary served every request');
      // Mirrored requests are fire-and-forget: wait until the shadow's count stops moving.
      const mirrored = await settled(() => shadow.requests.length, plane(), 'the mirrored requests to finish arriving');
      assertShare(mirrored, N, MIRROR_PERCENT / 100, 'requests mirrored to web-shadow', `primary ${primary.requests.length}`);
      for (const r of shadow.requests) assert.equal(r.host, `${MIRROR_DOMAIN}-shadow`, `Host of a mirrored request to ${r.path}`);
      for (const r of shadow.requests) assert.equal(r.path, '/orders');
    });

    it('retries 5xx: an upstream failing every other request still gives clients only 200s', async () => {
      const f = flaky;
      assert.ok(f);
      f.reset();
      // One request at a time, so the upstream's alternation is deterministic: after the first
      // request, each one hits a 503 first and is retried onto the next (successful) turn.
      const t = await send(FLAKY_DOMAIN, '/pay', RETRY_N, 1);
      assert.equal(t.byStatus.get(200), RETRY_N, `clients saw only 200s: ${t.describe()}`);
      assert.equal(f.ok, RETRY_N, 'the upstream answered 200 once per client request');
      assert.equal(f.failed, RETRY_N - 1, 'every request but the first met a 503 and was retried');
    });

    it('the data plane NACKed no update during the whole run', () => {
      assert.equal(watch().nacks.length, 0, watch().describe());
    });
  });
}

/**
 * Polls `read` until it returns the same value on polls spanning at least `quietMs`; returns it.
 * For fire-and-forget side effects (mirrored requests) whose final count nothing announces.
 */
async function settled(read: () => number, dp: DataPlane, what: string, quietMs = 300): Promise<number> {
  let last = read();
  let since = Date.now();
  return dp.waitFor(
    () => {
      const now = read();
      if (now !== last) {
        last = now;
        since = Date.now();
        return undefined;
      }
      return Date.now() - since >= quietMs ? now : undefined;
    },
    { what, timeoutMs: 10_000, intervalMs: 50 },
  );
}

for (const kind of DATA_PLANES) suite(kind);
