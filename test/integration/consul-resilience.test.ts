/**
 * Consul faults and bad records against serve() and a real Consul agent (issue 9): what reaches
 * the published snapshot (the ClusterLoadAssignment Envoy would get), /status and /metrics.
 * - every instance deregistered: the last endpoints are held for the grace, shown as held on
 *   /status and /metrics, then the empty set is published; an instance returning ends a hold at once;
 * - one instance with Weights.Passing 2^32+5 and one with a malformed Port (injected by a
 *   tampering proxy: Consul 1.8.7 stores neither) cost only themselves: another instance's health
 *   change still reaches the snapshot, and both are reported in /status `skipped`;
 * - Consul restarted with an empty catalog (dev agent, catalog-only nodes): the index goes
 *   backwards, the last endpoints are held for the grace, then the empty set is published.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { serve, type RunningApp } from '../../src/app.js';
import { ConsulClient } from '../../src/consul/client.js';
import type { HealthServiceStatus, HealthSourceStatus } from '../../src/sources/consul-health.js';
import { silentLogger } from '../../src/log.js';
import { TypeUrl } from '../../src/xds/resource-types.js';
import { startConsul, type ConsulAgent } from '../support/consul.js';
import { startRewriteProxy } from '../support/consul-rewrite-proxy.js';
import { waitUntil } from '../support/tmp.js';

let consul: ConsulAgent;
const closers: Array<() => Promise<void>> = [];

before(async () => {
  consul = await startConsul();
});

after(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await consul?.destroy();
});

function configYaml(clusters: readonly string[]): string {
  const block = (indent: string, body: (c: string) => string) => clusters.map((c) => `${indent}${c}:\n${body(c)}`).join('\n');
  return `# test/integration/consul-resilience.test.ts
listener:
  listen:
    protocol: "tcp"
    address: "127.0.0.1"
    port: 18080
route:
  domain: ["app.test"]
  cluster:
${block('    ', (c) => `      prefix: ["/${c}"]`)}
cluster:
  loadbalancer:
${block('    ', () => '      lb-policy: "round-robin"\n      discovery: "eds"')}
endpoint:
  eds:
${block('    ', () => '      protocol: "tcp"')}
`;
}

async function startApp(key: string, clusters: readonly string[], emptyGraceMs: number, address = consul.address): Promise<RunningApp> {
  await consul.kvPut(key, configYaml(clusters));
  const app = await serve({
    consul: { address, key, emptyGraceMs, watch: { minIntervalMs: 50, backoffBaseMs: 100, backoffMaxMs: 500 }, startupTimeoutMs: 10_000 },
    xds: { host: '127.0.0.1', port: 0 },
    admin: { port: 0 },
    als: false,
    logger: silentLogger,
  });
  closers.push(() => app.close());
  return app;
}

interface Host {
  readonly port: number;
  readonly health: string;
  readonly weight: number;
}

interface ClaJson {
  readonly endpoints?: ReadonlyArray<{
    readonly lb_endpoints: ReadonlyArray<{
      readonly endpoint: { readonly address: { readonly socket_address: { readonly port_value: number } } };
      readonly health_status: string;
      readonly load_balancing_weight: { readonly value: number };
    }>;
  }>;
}

/** The hosts of `cluster` in the published snapshot, sorted by port. */
function hosts(app: RunningApp, cluster: string): Host[] {
  const cla = app.publisher.snapshot?.type(TypeUrl.ClusterLoadAssignment).resources.get(cluster)?.object as ClaJson | undefined;
  return (cla?.endpoints ?? [])
    .flatMap((l) =>
      l.lb_endpoints.map((e) => ({ port: e.endpoint.address.socket_address.port_value, health: e.health_status, weight: e.load_balancing_weight.value })),
    )
    .sort((a, b) => a.port - b.port);
}

function serviceStatus(app: RunningApp, service: string): HealthServiceStatus | undefined {
  return (app.status().consul?.health as HealthSourceStatus | undefined)?.services.find((s) => s.service === service);
}

async function admin(app: RunningApp, path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${app.adminPort}${path}`);
  assert.equal(res.status, 200, path);
  return res.text();
}

const ttl = (id: string) => ({ CheckID: `${id}-ttl`, TTL: '10m', Status: 'passing' as const });

test('every instance deregistered: last endpoints held for the grace (on /status and /metrics), then empty; a returning instance ends a hold at once', async (t) => {
  const GRACE = 2000;
  // Both on one catalog node, so one deregistration removes both at once (a node leaving).
  for (const [id, port] of [
    ['held-1', 9001],
    ['held-2', 9002],
  ] as const) {
    await consul.catalogRegister({ node: 'held-node', address: '127.0.0.41', service: { id, name: 'held', port }, status: 'passing' });
  }
  const app = await startApp('consul-xds/held', ['held'], GRACE);
  assert.deepEqual(
    hosts(app, 'held').map((h) => h.port),
    [9001, 9002],
  );

  const t0 = performance.now();
  ConsulClient.expect(await consul.client.request('PUT', '/v1/catalog/deregister', { body: JSON.stringify({ Node: 'held-node' }) }), 'deregister held-node');
  const held = await waitUntil(() => serviceStatus(app, 'held')?.held, { what: 'the hold to start', timeoutMs: 5000 });
  assert.equal(held.reason, 'empty');
  assert.deepEqual(held.held, ['held-node/held-1', 'held-node/held-2']);
  assert.deepEqual(
    hosts(app, 'held').map((h) => h.port),
    [9001, 9002],
    'the last endpoints keep serving',
  );
  assert.equal(serviceStatus(app, 'held')?.instances, 0, 'status still says what Consul answered');

  const status = JSON.parse(await admin(app, '/status')) as { consul: { health: HealthSourceStatus } };
  assert.deepEqual(status.consul.health.services.find((s) => s.service === 'held')?.held, held, '/status shows the hold and since when');
  const metrics = await admin(app, '/metrics');
  const line = metrics.split('\n').find((l) => l.startsWith('consul_xds_consul_service_held_since_seconds{service="held",reason="empty"}'));
  assert.ok(
    line,
    `/metrics shows the hold:\n${metrics
      .split('\n')
      .filter((l) => l.includes('held'))
      .join('\n')}`,
  );
  assert.equal(Number(line.split(' ')[1]), Date.parse(held.since) / 1000);

  await waitUntil(() => hosts(app, 'held').length === 0, { what: 'the empty set after the grace', timeoutMs: GRACE + 5000, intervalMs: 20 });
  const heldMs = performance.now() - t0;
  t.diagnostic(`deregistered -> empty published after ${heldMs.toFixed(0)} ms (grace ${GRACE} ms)`);
  assert.ok(heldMs >= GRACE - 50, `empty published after ${heldMs.toFixed(0)} ms, before the ${GRACE} ms grace was over`);
  assert.equal(serviceStatus(app, 'held')?.held, undefined);
  assert.ok(!(await admin(app, '/metrics')).includes('consul_xds_consul_service_held_since_seconds{service="held"'), 'the gauge is gone with the hold');

  // A redeploy: the old instance leaves (hold), a new one registers within the grace: it wins at once.
  await consul.registerService({ Name: 'held', ID: 'held-1', Address: '127.0.0.1', Port: 9001, Checks: [ttl('held-1')] });
  await waitUntil(() => hosts(app, 'held').length === 1, { what: 'held-1 back', timeoutMs: 5000 });
  await consul.deregisterService('held-1');
  await waitUntil(() => serviceStatus(app, 'held')?.held, { what: 'the second hold', timeoutMs: 5000 });
  const t1 = performance.now();
  await consul.registerService({ Name: 'held', ID: 'held-3', Address: '127.0.0.1', Port: 9003, Checks: [ttl('held-3')] });
  await waitUntil(
    () =>
      hosts(app, 'held')
        .map((h) => h.port)
        .join() === '9003',
    { what: 'only the new instance', timeoutMs: GRACE },
  );
  t.diagnostic(`returning instance published ${(performance.now() - t1).toFixed(0)} ms after registering (grace ${GRACE} ms)`);
  assert.equal(serviceStatus(app, 'held')?.held, undefined);
  await consul.deregisterService('held-3');
});

test("an instance with Weights.Passing 2^32+5 and one with a text Port cost only themselves: another instance's health change still reaches the snapshot", async () => {
  const BIG = 2 ** 32 + 5;
  // Consul 1.8.7 refuses (agent API) or resets (catalog API) such weights: a proxy puts them in its answers.
  const proxy = await startRewriteProxy(consul.address, (path, json) => {
    if (path !== '/v1/health/service/fleet' || !Array.isArray(json)) return json;
    return json.map((e: { Service: { ID: string; Port: unknown; Weights: unknown } }) => {
      if (e.Service.ID === 'big-1') return { ...e, Service: { ...e.Service, Weights: { Passing: BIG, Warning: 1 } } };
      if (e.Service.ID === 'textport-1') return { ...e, Service: { ...e.Service, Port: String(e.Service.Port) } };
      return e;
    });
  });
  closers.push(() => proxy.close());
  await consul.registerService({ Name: 'fleet', ID: 'good-1', Address: '127.0.0.1', Port: 9101, Weights: { Passing: 1, Warning: 1 }, Checks: [ttl('good-1')] });
  const app = await startApp('consul-xds/fleet', ['fleet'], 30_000, proxy.address);
  assert.deepEqual(hosts(app, 'fleet'), [{ port: 9101, health: 'HEALTHY', weight: 1 }]);

  // The bad registrations arrive after start-up, as in production.
  await consul.registerService({ Name: 'fleet', ID: 'big-1', Address: '127.0.0.1', Port: 9102, Weights: { Passing: 5, Warning: 1 }, Checks: [ttl('big-1')] });
  await consul.registerService({ Name: 'fleet', ID: 'textport-1', Address: '127.0.0.1', Port: 9103, Checks: [ttl('textport-1')] });
  await waitUntil(() => hosts(app, 'fleet').length === 2, { what: 'big-1 published (clamped)', timeoutMs: 5000 });
  // Then the good instance fails its check: that must reach the snapshot.
  await consul.ttl('good-1-ttl', 'fail');
  await waitUntil(() => hosts(app, 'fleet').find((h) => h.port === 9101)?.health === 'UNHEALTHY', {
    what: 'good-1 UNHEALTHY in the snapshot',
    timeoutMs: 5000,
  });
  const [good, big] = hosts(app, 'fleet');
  assert.equal(good?.weight, 1);
  assert.ok(
    (big?.weight ?? 0) > 4_000_000_000 && (big?.weight ?? 0) + (good?.weight ?? 0) <= 4_294_967_295,
    `big-1 weight ${big?.weight}: clamped and scaled into uint32`,
  );
  assert.equal(app.publisher.status().lastError, undefined, 'no snapshot build failed');

  const status = JSON.parse(await admin(app, '/status')) as { consul: { health: HealthSourceStatus } };
  const skipped = status.consul.health.services.find((s) => s.service === 'fleet')?.skipped.join('\n') ?? '';
  assert.match(skipped, /consul health fleet: instance [^/]+\/big-1: weight 4294967301 is above Envoy's maximum 4294967295; clamped/);
  assert.match(skipped, /consul health fleet: entry \d \(instance [^/]+\/textport-1\): Service\.Port: .*; skipped/);
  assert.match(await admin(app, '/metrics'), /consul_xds_consul_instances_skipped\{service="fleet"\} 3/);
  for (const id of ['good-1', 'big-1', 'textport-1']) await consul.deregisterService(id);
});

// Last: it restarts the agent (dev mode: the catalog comes back without the catalog-only nodes).
test('Consul restarted with an empty catalog: index backwards, last endpoints held for the grace, then empty', async (t) => {
  const GRACE = 3000;
  for (const [node, address] of [
    ['ext-a', '127.0.0.31'],
    ['ext-b', '127.0.0.32'],
  ] as const) {
    await consul.catalogRegister({ node, address, service: { id: `${node}-svc`, name: 'ext', port: 9201 }, status: 'passing' });
  }
  const app = await startApp('consul-xds/ext', ['ext'], GRACE);
  assert.equal(hosts(app, 'ext').length, 2);

  await consul.stop();
  await consul.start();
  const held = await waitUntil(() => serviceStatus(app, 'ext')?.held, { what: 'the hold after the restart', timeoutMs: 15_000, intervalMs: 20 });
  assert.equal(held.reason, 'index-backwards');
  assert.equal(serviceStatus(app, 'ext')?.instances, 0, 'Consul answers no instances');
  assert.equal(hosts(app, 'ext').length, 2, 'the last endpoints keep serving');
  await waitUntil(() => hosts(app, 'ext').length === 0, { what: 'the empty set after the grace', timeoutMs: GRACE + 5000, intervalMs: 20 });
  const heldMs = Date.now() - Date.parse(held.since);
  t.diagnostic(`restart hold: empty published ${heldMs} ms after the hold began (grace ${GRACE} ms)`);
  assert.ok(heldMs >= GRACE - 50, `empty published ${heldMs} ms into the hold, before the ${GRACE} ms grace was over`);
});
