/**
 * Sidecar duties against a real Envoy, fed by `serve()` in file mode (which starts the admin
 * server and the ALS sink as `consul-xds serve` does). The listener's
 * `access-log: {grpc: ...}` option (no hand-written Envoy config) makes Envoy stream its access
 * logs to our ALS sink. Asserts:
 *  - health is not ready before Envoy has ACKed (never 200 while no version is ACKed), ready after;
 *  - a raw ADS client that never ACKs (test/support/ads-client.ts) does not take health down:
 *    it is listed in the 200 answer, and with --envoy-admin (Envoy's real /server_info names the
 *    node) it is not even looked at;
 *  - requests through Envoy appear as JSON lines with the right status, route and cluster, and in
 *    the aggregates (/stats/access-log) and Prometheus metrics;
 *  - the maintenance file flips health to 599 within a second and back;
 *  - a resource Envoy itself refuses (published straight into the cache, past translate's checks)
 *    is NACKed: /status/clients shows Envoy's message with its time, health is 503, traffic keeps
 *    flowing on the last good config, and health recovers once a good snapshot is served.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { buildSnapshot, type Snapshot } from '../../src/cache/snapshot.js';
import type { NodeStatus } from '../../src/server/index.js';
import type { ProtoObject } from '../../src/xds/resources.js';
import { silentLogger } from '../../src/log.js';
import { HealthChecker } from '../../src/admin/health.js';
import { TypeUrl } from '../../src/xds/resource-types.js';
import type { AggregatesSnapshot } from '../../src/als/aggregates.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { AdsConnection } from '../support/ads-client.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { send } from '../support/traffic.js';
import { freePort, makeTempDir, waitUntil } from '../support/tmp.js';

const DOMAIN = 'app.test';
const NODE = 'sidecar-envoy';

interface Ports {
  readonly listener: number;
  readonly als: number;
  readonly api: number;
  readonly asset: number;
  readonly closed: number;
}

function configYaml(p: Ports): string {
  return `# written by test/integration/sidecar-envoy.test.ts
listener:
  listen:
    protocol: "tcp"
    address: "127.0.0.1"
    port: ${p.listener}
    access-log:
      grpc: { address: "127.0.0.1", port: ${p.als}, log-name: "edge", buffer-size-bytes: 0 }
route:
  domain: ["${DOMAIN}"]
  cluster:
    web-api-perl:
      prefix: ["/api"]
      weight: 100
    web-asset:
      prefix: ["/asset"]
      weight: 100
    web-broken:
      prefix: ["/broken"]
      weight: 100
cluster:
  loadbalancer:
    web-api-perl: { lb-policy: "round-robin", discovery: "eds" }
    web-asset: { lb-policy: "round-robin", discovery: "eds" }
    web-broken: { lb-policy: "round-robin", discovery: "eds", connect-timeout: 1 }
endpoint:
  eds:
    web-api-perl:
      static: [{ address: "127.0.0.1", port: ${p.api} }]
    web-asset:
      static: [{ address: "127.0.0.1", port: ${p.asset} }]
    web-broken:
      static: [{ address: "127.0.0.1", port: ${p.closed} }]
`;
}

describe('sidecar duties with a real Envoy', () => {
  let dir: { path: string; remove(): Promise<void> };
  let app: RunningApp;
  let envoy: EnvoyHandle | undefined;
  let api: Upstream;
  let asset: Upstream;
  let ports: Ports;
  let logFile: string;
  let maintenanceFile: string;
  let admin = '';

  const get = async (path: string) => {
    const res = await fetch(`${admin}${path}`);
    return { status: res.status, body: await res.text() };
  };
  const nodeStatus = async (): Promise<NodeStatus | undefined> =>
    (JSON.parse((await get('/status/clients')).body) as { nodes: NodeStatus[] }).nodes.find((n) => n.nodeId === NODE);
  const logLines = (): Array<Record<string, unknown>> =>
    fs.existsSync(logFile)
      ? fs
          .readFileSync(logFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];

  before(async () => {
    dir = await makeTempDir('sidecar-envoy');
    logFile = join(dir.path, 'access.log');
    maintenanceFile = join(dir.path, 'maintenance');
    api = await startUpstream('web-api-perl');
    asset = await startUpstream('web-asset');
    // The listener, ALS and a port nobody listens on must be named in the config up front.
    ports = { listener: await freePort(), als: await freePort(), api: api.port, asset: asset.port, closed: await freePort() };
    const configFile = join(dir.path, 'consul-xds.yaml');
    await writeFile(configFile, configYaml(ports));
    app = await serve({
      configFile,
      xds: { host: '127.0.0.1', port: 0 },
      admin: { port: 0, healthPath: '/_my_health_check', maintenanceFile, graceMs: 5000 },
      als: { port: ports.als, file: logFile },
      logger: silentLogger,
    });
    admin = `http://127.0.0.1:${app.adminPort}`;
  });

  after(async () => {
    await envoy?.stop();
    await app?.close();
    await api?.close();
    await asset?.close();
    await dir?.remove();
  });

  it('is not ready before Envoy has ACKed, ready after', async () => {
    const first = await get('/_my_health_check');
    assert.equal(first.status, 503);
    assert.match(first.body, /no-envoy-connected/);

    // Sample health and the registry side by side while Envoy connects: health may only say 200
    // once the registry shows Envoy's ACK of the current CDS and LDS versions.
    const samples: Array<{ status: number; acked: boolean }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const h = await get('/_my_health_check');
        const st = await nodeStatus();
        const acked =
          st !== undefined && st.types.CDS?.ackedVersion === st.types.CDS?.currentVersion && st.types.LDS?.ackedVersion === st.types.LDS?.currentVersion;
        samples.push({ status: h.status, acked: h.status === 200 ? acked : false });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    envoy = await startEnvoy({ xdsPort: app.xdsPort, nodeId: NODE, nodeCluster: 'edge' });
    await waitUntil(async () => (await get('/_my_health_check')).status === 200, { what: 'health 200 after Envoy ACKed', context: () => envoy!.logTail() });
    sampling = false;
    await sampler;
    assert.ok(
      samples.some((s) => s.status === 503),
      'health was not ready at first',
    );
    assert.deepEqual(
      samples.filter((s) => s.status === 200 && !s.acked),
      [],
      'never 200 before the ACK',
    );
    const st = await nodeStatus();
    assert.equal(st?.upToDate, true);
    assert.equal(st?.types.CDS?.ackedVersion, app.cache.get('default')?.version(TypeUrl.Cluster));
    assert.equal(st?.types.LDS?.ackedVersion, app.cache.get('default')?.version(TypeUrl.Listener));
  });

  it('a client that never ACKs does not fail health: listed by default, ignored with --envoy-admin', async () => {
    const conn = new AdsConnection(`127.0.0.1:${app.xdsPort}`);
    const local = new HealthChecker({ cache: app.cache, registry: app.xdsServer.registry, envoyAdminUrl: envoy!.adminUrl, graceMs: 5000 });
    const stranger = conn.stream({ node: { id: 'never-acks', cluster: 'elsewhere' } });
    try {
      stranger.subscribe(TypeUrl.Cluster);
      const cds = await stranger.next();
      assert.ok(cds.names.includes('web-api-perl'), `CDS sent to the stranger: ${cds.names.join(', ')}`);
      // Past the ACK grace (5 s) too: a client that never answers must never count.
      const until = Date.now() + 6000;
      while (Date.now() < until) {
        const h = await get('/_my_health_check');
        assert.equal(h.status, 200, h.body);
        const body = JSON.parse(h.body) as { status: string; others: Array<{ reason: string; node: string; type: string }> };
        assert.equal(body.status, 'OK');
        assert.deepEqual(
          body.others.map((p) => [p.reason, p.node, p.type]),
          [['awaiting-first-ack', 'never-acks', 'CDS']],
        );
        const judgedLocally = await local.check();
        assert.deepEqual([judgedLocally.status, judgedLocally.body], [200, 'OK'], 'the node real Envoy names in /server_info decides alone');
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      stranger.cancel();
      await waitUntil(async () => (await get('/_my_health_check')).body === 'OK', { what: 'the stranger to leave the health answer' });
      local.close();
      conn.close();
    }
  });

  it('requests through Envoy become log lines and aggregates with the right status and cluster', async () => {
    const expectations: Array<[string, number, number]> = [
      ['/api/users', 200, 20],
      ['/asset/logo.png', 200, 5],
      ['/nothing-here', 404, 4],
      ['/broken/x', 503, 3],
    ];
    await envoy!.waitFor(async () => (await send({ port: ports.listener, host: DOMAIN, path: '/api/warmup' }).catch(() => undefined))?.status === 200, {
      what: 'Envoy to route /api',
    });
    for (const [path, status, n] of expectations) {
      for (let i = 0; i < n; i++) {
        const r = await send({ port: ports.listener, host: DOMAIN, path: `${path}?i=${i}` });
        assert.equal(r.status, status, `${path}: ${r.body}`);
      }
    }
    const total = 1 + expectations.reduce((s, [, , n]) => s + n, 0);
    await waitUntil(() => logLines().length >= total, { what: `${total} access-log lines`, context: () => `${logLines().length} lines` });
    const lines = logLines();
    const of = (prefix: string) => lines.filter((l) => String(l.path).startsWith(prefix));
    for (const l of of('/api/users')) {
      assert.equal(l.status, 200);
      assert.equal(l.upstream_cluster, 'web-api-perl');
      assert.equal(l.upstream_host, `127.0.0.1:${ports.api}`);
      assert.equal(l.route, '/api');
      assert.equal(l.authority, DOMAIN);
      assert.equal(l.method, 'GET');
      assert.equal(l.node, NODE);
      assert.equal(l.log_name, 'edge');
      assert.equal(typeof l.request_id, 'string');
      assert.ok(typeof l.duration_ms === 'number' && l.duration_ms >= 0);
      assert.match(String(l.time), /^\d{4}-\d\d-\d\dT/);
    }
    assert.equal(of('/api/users').length, 20);
    assert.deepEqual([...new Set(of('/asset/').map((l) => `${l.status} ${l.upstream_cluster}`))], ['200 web-asset']);
    assert.deepEqual([...new Set(of('/nothing-here').map((l) => `${l.status} ${l.flags}`))], ['404 NR']);
    assert.deepEqual([...new Set(of('/broken/').map((l) => `${l.status} ${l.upstream_cluster} ${l.flags}`))], ['503 web-broken UF']);

    const stats = JSON.parse((await get('/stats/access-log')).body) as AggregatesSnapshot;
    const cluster = (name: string) => stats.clusters.find((c) => c.cluster === name);
    assert.equal(cluster('web-api-perl')?.total.classes['2xx'], 21);
    assert.equal(cluster('web-asset')?.window.classes['2xx'], 5);
    assert.equal(cluster('web-broken')?.window.classes['5xx'], 3);
    const apiRoute = stats.routes.find((r) => r.vhost === DOMAIN && r.route === '/api');
    assert.equal(apiRoute?.window.requests, 21);
    assert.ok(apiRoute?.window.p99_ms !== undefined && apiRoute.window.p50_ms! <= apiRoute.window.p99_ms);
    assert.equal(stats.routes.find((r) => r.vhost === DOMAIN && r.route === '')?.window.classes['4xx'], 4);

    const metrics = (await get('/metrics')).body;
    assert.match(metrics, /^consul_xds_cluster_requests_total\{cluster="web-api-perl",class="2xx"\} 21$/m);
    assert.match(metrics, /^consul_xds_cluster_requests_total\{cluster="web-broken",class="5xx"\} 3$/m);
    assert.match(metrics, /^consul_xds_route_latency_seconds\{vhost="app.test",route="\/api",quantile="0.99"\} [0-9.e-]+$/m);
    assert.match(metrics, /^consul_xds_access_log_entries_total\{kind="http"\} 33$/m);
    assert.match(metrics, /^consul_xds_access_log_streams 1$/m);
  });

  it('the maintenance file flips health to 599 within a second, and back', async () => {
    const flipTime = async (want: number): Promise<number> => {
      const t = performance.now();
      await waitUntil(async () => (await get('/_my_health_check')).status === want, { what: `health ${want}`, timeoutMs: 1000, intervalMs: 10 });
      return performance.now() - t;
    };
    fs.writeFileSync(maintenanceFile, '');
    assert.ok((await flipTime(599)) < 1000);
    assert.equal((await get('/_my_health_check')).body, 'MAINTENANCE');
    fs.rmSync(maintenanceFile);
    assert.ok((await flipTime(200)) < 1000);
  });

  it('a resource Envoy refuses is NACKed: shown on /status/clients, health 503, traffic unharmed; recovery', async () => {
    const good = app.cache.get('default')!;
    // Past translate's checks on purpose: a health check without interval and thresholds is
    // something only Envoy's own validation refuses.
    const bad = withExtraCluster(good, {
      name: 'rejected-by-envoy',
      type: 'STATIC',
      connect_timeout: { seconds: 1 },
      load_assignment: { cluster_name: 'rejected-by-envoy', endpoints: [] },
      health_checks: [{ timeout: { seconds: 1 }, http_health_check: { path: '/' } }],
    });
    const nackedAt = Date.now();
    app.cache.set('default', bad);
    const st = await waitUntil(
      async () => {
        const s = await nodeStatus();
        return s?.types.CDS?.lastResponseNacked ? s : undefined;
      },
      { what: 'Envoy to NACK the cluster', context: () => envoy!.logTail() },
    );
    const nack = st.types.CDS!.lastNack!;
    assert.equal(nack.version, bad.version(TypeUrl.Cluster));
    assert.match(nack.message, /rejected-by-envoy|HealthCheck|interval/i);
    assert.ok(Date.parse(nack.at) >= nackedAt - 1000 && Date.parse(nack.at) <= Date.now());
    assert.equal(st.types.CDS!.ackedVersion, good.version(TypeUrl.Cluster), 'still on the last good version');

    const h = await get('/_my_health_check');
    assert.equal(h.status, 503);
    const problems = (JSON.parse(h.body) as { problems: Array<{ reason: string; type?: string; node?: string }> }).problems;
    assert.deepEqual(
      problems.map((p) => [p.reason, p.type, p.node]),
      [['nacked', 'CDS', NODE]],
    );
    assert.match((await get('/metrics')).body, /^consul_xds_xds_nacks_total\{type="CDS"\} [1-9]\d*$/m);
    assert.equal((await send({ port: ports.listener, host: DOMAIN, path: '/api/still-up' })).status, 200, 'Envoy keeps the last good config');

    app.cache.set('default', good);
    await waitUntil(async () => (await get('/_my_health_check')).status === 200, {
      what: 'health 200 after the good snapshot is back',
      context: () => envoy!.logTail(),
    });
  });
});

/** The same snapshot plus one cluster, rebuilt from the snapshot's own JSON. */
function withExtraCluster(s: Snapshot, cluster: ProtoObject): Snapshot {
  const t = s.toJSON().types;
  const res = (k: keyof typeof t) => t[k].resources.map((r) => r.resource);
  return buildSnapshot({ clusters: [...res('CDS'), cluster], endpoints: res('EDS'), listeners: res('LDS'), routes: res('RDS') });
}
