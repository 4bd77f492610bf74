/**
 * The health source against a real Consul agent: instances registered with Service/Node Meta
 * zones and weights become endpoints with the right locality, weight and port; TTL checks moving
 * pass -> warn -> fail and service maintenance map to HEALTHY / DEGRADED / UNHEALTHY / DRAINING
 * (unhealthy instances stay, with their status); check output alone changes nothing; watches
 * start and stop with the services the config uses; ready() waits for every service's first
 * answer; an outage keeps the last endpoints and a restart resumes without a new source (instances
 * the restarted Consul lacks are held for the grace: its index went backwards).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointInfo, EndpointMap } from '../../src/config/endpoints.js';
import { ConsulHealthSource, type ConsulHealthSourceOptions } from '../../src/sources/consul-health.js';
import { startConsul, type ConsulAgent } from '../support/consul.js';
import { waitUntil } from '../support/tmp.js';

let consul: ConsulAgent;
const sources: ConsulHealthSource[] = [];

before(async () => {
  consul = await startConsul();
});

after(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await consul?.destroy();
});

interface Observed {
  source: ConsulHealthSource;
  maps: Array<{ map: EndpointMap; at: number }>;
  latest(cluster: string): readonly EndpointInfo[] | undefined;
}

function observe(extra: Partial<ConsulHealthSourceOptions> = {}): Observed {
  const maps: Observed['maps'] = [];
  const source = new ConsulHealthSource({ client: consul.client, onChange: (map) => maps.push({ map, at: performance.now() }), ...extra });
  sources.push(source);
  return { source, maps, latest: (cluster) => maps.at(-1)?.map.get(cluster) };
}

function byOrigin(eps: readonly EndpointInfo[] | undefined, origin: string): EndpointInfo | undefined {
  return eps?.find((e) => e.origin?.endsWith(`/${origin}`));
}

const ttl = (id: string) => ({ CheckID: `${id}-ttl`, TTL: '10m', Status: 'passing' as const });

test('instances with meta zones and weights become endpoints: locality, weight, address and port rules', async () => {
  await consul.registerService({
    Name: 'web',
    ID: 'web-1',
    Address: '127.0.0.11',
    Port: 8080,
    Meta: { zone: 'z1', region: 'r1' },
    Weights: { Passing: 5, Warning: 2 },
    Checks: [ttl('web-1')],
  });
  await consul.registerService({ Name: 'web', ID: 'web-2', Address: '127.0.0.12', Port: 8081, Meta: { zone: 'z2', region: 'r1' }, Checks: [ttl('web-2')] });
  // Another node (via the catalog): locality from Node.Meta, address from Node.Address.
  await consul.catalogRegister({
    node: 'ext-1',
    address: '127.0.0.13',
    nodeMeta: { zone: 'z3', region: 'r2' },
    service: { id: 'web-3', name: 'web', port: 9090, weights: { Passing: 7, Warning: 1 } },
    status: 'passing',
  });

  const o = observe();
  o.source.setServices([{ cluster: 'web-cluster', service: 'web' }]);
  await o.source.ready(5000);
  const eps = await waitUntil(() => (o.latest('web-cluster')?.length === 3 ? o.latest('web-cluster') : undefined), { what: 'three web endpoints' });
  assert.deepEqual(eps, [
    { address: '127.0.0.11', port: 8080, region: 'r1', zone: 'z1', health: 'HEALTHY', weight: 5, origin: `consul-xds-test-${consul.ports.http}/web-1` },
    { address: '127.0.0.12', port: 8081, region: 'r1', zone: 'z2', health: 'HEALTHY', weight: 1, origin: `consul-xds-test-${consul.ports.http}/web-2` },
    { address: '127.0.0.13', port: 9090, region: 'r2', zone: 'z3', health: 'HEALTHY', weight: 7, origin: 'ext-1/web-3' },
  ]);

  // The config's endpoint.eds.<name>.port overrides Service.Port; one service may back two clusters (one watch).
  o.source.setServices([
    { cluster: 'web-cluster', service: 'web', port: 80 },
    { cluster: 'web-canary', service: 'web' },
  ]);
  await waitUntil(() => o.latest('web-cluster')?.every((e) => e.port === 80) && o.latest('web-canary')?.length === 3, { what: 'port override applied' });
  assert.deepEqual(
    o.latest('web-canary')?.map((e) => e.port),
    [8080, 8081, 9090],
  );
  const st = o.source.status();
  assert.equal(st.services.length, 1, 'one watch for one service');
  assert.deepEqual(st.services[0]?.clusters, ['web-canary', 'web-cluster']);
  assert.equal(st.services[0]?.instances, 3);
  assert.equal(st.ready, true);
});

test('TTL pass/warn/fail and maintenance map to HEALTHY/DEGRADED/UNHEALTHY/DRAINING; instances stay listed', async () => {
  const o = observe();
  o.source.setServices([{ cluster: 'web', service: 'web' }]);
  await o.source.ready(5000);
  const step = async (what: string, act: () => Promise<void>, expect: Partial<EndpointInfo>): Promise<number> => {
    const t0 = performance.now();
    await act();
    const hit = await waitUntil(
      () => {
        const e = byOrigin(o.latest('web'), 'web-1');
        return e && Object.entries(expect).every(([k, v]) => e[k as keyof EndpointInfo] === v) ? o.maps.at(-1) : undefined;
      },
      { what, timeoutMs: 5000, intervalMs: 5 },
    );
    assert.equal(o.latest('web')?.length, 3, `${what}: every instance still listed`);
    return hit.at - t0;
  };
  const latencies = [
    await step('warn -> DEGRADED with the Warning weight', () => consul.ttl('web-1-ttl', 'warn'), { health: 'DEGRADED', weight: 2 }),
    await step('fail -> UNHEALTHY', () => consul.ttl('web-1-ttl', 'fail'), { health: 'UNHEALTHY' }),
    await step('pass -> HEALTHY with the Passing weight', () => consul.ttl('web-1-ttl', 'pass'), { health: 'HEALTHY', weight: 5 }),
    await step('maintenance on -> DRAINING', () => consul.serviceMaintenance('web-1', true, 'deploy'), { health: 'DRAINING' }),
    await step('maintenance off -> HEALTHY', () => consul.serviceMaintenance('web-1', false), { health: 'HEALTHY' }),
  ];
  assert.ok(Math.max(...latencies) < 500, `check change -> endpoints in ${latencies.map((l) => l.toFixed(0)).join(', ')} ms`);
  assert.equal(byOrigin(o.latest('web'), 'web-2')?.health, 'HEALTHY', 'other instances untouched');

  // A check whose output changes but not its status (written straight to the catalog: the agent
  // would defer an output-only sync): the index moves, nothing is emitted.
  const count = o.maps.length;
  const indexBefore = o.source.status().services[0]?.index ?? 0;
  await consul.catalogRegister({
    node: 'ext-1',
    address: '127.0.0.13',
    nodeMeta: { zone: 'z3', region: 'r2' },
    service: { id: 'web-3', name: 'web', port: 9090, weights: { Passing: 7, Warning: 1 } },
    status: 'passing',
    output: 'HTTP GET /health: 200 OK, 3 ms',
  });
  await waitUntil(() => (o.source.status().services[0]?.index ?? 0) > indexBefore, { what: 'the watch to see the output change', timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(o.maps.length, count, 'an output-only change emits nothing');
});

test('warningAs HEALTHY and custom locality keys', async () => {
  await consul.registerService({
    Name: 'api',
    ID: 'api-1',
    Address: '127.0.0.21',
    Port: 7000,
    Meta: { az: 'tz1', geo: 'tr1' },
    Weights: { Passing: 4, Warning: 3 },
    Checks: [{ CheckID: 'api-1-ttl', TTL: '10m', Status: 'warning' }],
  });
  const o = observe({ mapping: { warningAs: 'HEALTHY', zoneKey: 'az', regionKey: 'geo' } });
  o.source.setServices([{ cluster: 'api', service: 'api' }]);
  await o.source.ready(5000);
  const eps = await waitUntil(() => o.latest('api'), { what: 'api endpoints' });
  assert.deepEqual(eps, [
    { address: '127.0.0.21', port: 7000, region: 'tr1', zone: 'tz1', health: 'HEALTHY', weight: 3, origin: `consul-xds-test-${consul.ports.http}/api-1` },
  ]);
});

test('watches follow setServices: unknown services answer empty, removed services stop and leave the map', async () => {
  const o = observe();
  o.source.setServices([
    { cluster: 'web', service: 'web' },
    { cluster: 'ghost', service: 'no-such-service' },
  ]);
  await o.source.ready(5000);
  await waitUntil(() => o.maps.at(-1)?.map.has('ghost') && o.latest('web'), { what: 'both clusters answered' });
  assert.deepEqual(o.latest('ghost'), [], 'a service with no instances is an empty, known cluster');
  o.source.setServices([{ cluster: 'web', service: 'web' }]);
  assert.deepEqual(
    o.source.status().services.map((s) => s.service),
    ['web'],
  );
  assert.equal(o.maps.at(-1)?.map.has('ghost'), false, 'removed cluster leaves the map');
  o.source.setServices([]);
  assert.equal(o.source.status().services.length, 0);
  assert.equal(o.maps.at(-1)?.map.size, 0);
  await o.source.ready(10); // nothing watched: ready at once
});

test('a new instance registering appears; deregistering removes it', async () => {
  const o = observe();
  o.source.setServices([{ cluster: 'web', service: 'web' }]);
  await o.source.ready(5000);
  await consul.registerService({ Name: 'web', ID: 'web-4', Address: '127.0.0.14', Port: 8084, Checks: [ttl('web-4')] });
  await waitUntil(() => byOrigin(o.latest('web'), 'web-4'), { what: 'web-4 to appear', timeoutMs: 5000 });
  await consul.deregisterService('web-4');
  await waitUntil(() => !byOrigin(o.latest('web'), 'web-4'), { what: 'web-4 to leave', timeoutMs: 5000 });
});

test('a burst of 100 instances flapping is read in a few answers, not 100 (rate-limited loop + content compare)', async (t) => {
  const ids = Array.from({ length: 100 }, (_, i) => `burst-${i}`);
  for (const id of ids)
    await consul.registerService({
      Name: 'burst',
      ID: id,
      Address: `127.0.1.${ids.indexOf(id) + 1}`,
      Port: 80,
      Checks: [{ CheckID: `${id}-ttl`, TTL: '10m', Status: 'passing' }],
    });
  const o = observe({ timing: { minIntervalMs: 100 } });
  o.source.setServices([{ cluster: 'burst', service: 'burst' }]);
  await o.source.ready(5000);
  await waitUntil(() => o.latest('burst')?.length === 100, { what: '100 burst instances' });
  const before = o.maps.length;
  const t0 = performance.now();
  // Ten workers flip every instance to critical, as a failing dependency would.
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) await consul.ttl(`${id}-ttl`, 'fail');
    }),
  );
  const burstMs = performance.now() - t0;
  await waitUntil(() => o.latest('burst')?.every((e) => e.health === 'UNHEALTHY'), { what: 'all 100 UNHEALTHY', timeoutMs: 5000 });
  const emissions = o.maps.length - before;
  t.diagnostic(`100 TTL flaps over ${burstMs.toFixed(0)} ms -> ${emissions} endpoint updates`);
  assert.ok(
    emissions <= Math.ceil(burstMs / 100) + 2,
    `${emissions} endpoint updates for 100 flaps over ${burstMs.toFixed(0)} ms (one read per 100 ms at most)`,
  );
  assert.ok(emissions < 100 / 4, `${emissions} updates, far fewer than 100`);
  o.source.setServices([]);
  for (const id of ids) await consul.deregisterService(id);
});

// Last: it stops and restarts the agent (dev mode: state is lost).
test('Consul down: last endpoints kept, errors name the service, ready() times out naming it; back: watches resume', async () => {
  const errors: string[] = [];
  const o = observe({ timing: { backoffBaseMs: 100, backoffMaxMs: 500 }, emptyGraceMs: 3000, onError: (e) => errors.push(e.message) });
  o.source.setServices([{ cluster: 'web', service: 'web' }]);
  await o.source.ready(5000);
  const before = o.latest('web');
  assert.ok(before && before.length >= 3);

  await consul.stop();
  await waitUntil(() => (o.source.status().services[0]?.consecutiveFailures ?? 0) >= 2, { what: 'failures to be reported', timeoutMs: 10_000 });
  assert.deepEqual(o.latest('web'), before, 'last endpoints kept');
  assert.match(errors[0] ?? '', /consul GET \/v1\/health\/service\/web: cannot reach consul/);
  // A service added during the outage cannot answer: ready() names it.
  o.source.setServices([
    { cluster: 'web', service: 'web' },
    { cluster: 'late', service: 'late' },
  ]);
  await assert.rejects(o.source.ready(300), /consul health: no answer within 300 ms for late \(consul GET \/v1\/health\/service\/late: cannot reach consul/);

  await consul.start();
  await consul.registerService({ Name: 'web', ID: 'web-9', Address: '127.0.0.19', Port: 8089, Checks: [ttl('web-9')] });
  // The agent re-registers its own services from its data dir; the catalog-only node ext-1 is gone.
  // Its index went backwards, so web-3 is held for the grace while new web-9 shows at once.
  await waitUntil(() => byOrigin(o.latest('web'), 'web-9'), { what: 'web-9 from the restarted agent', timeoutMs: 10_000 });
  assert.ok(byOrigin(o.latest('web'), 'web-3'), 'web-3 (gone with the restart) is still served during the grace');
  assert.equal(o.source.status().services.find((s) => s.service === 'web')?.held?.reason, 'index-backwards');
  await waitUntil(() => byOrigin(o.latest('web'), 'web-9') && !byOrigin(o.latest('web'), 'web-3'), {
    what: "the restarted agent's instances",
    timeoutMs: 10_000,
  });
  await o.source.ready(5000);
  assert.equal(
    o.source.status().services.every((s) => s.consecutiveFailures === 0),
    true,
  );
});
