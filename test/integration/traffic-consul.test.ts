/**
 * Consul-driven endpoints on every data plane (real Envoy and our TS proxy): a real Consul agent
 * (config in KV, instances registered with TTL checks) -> `serve({ consul })` -> ADS -> the data
 * plane -> local HTTP upstreams. Asserted on real traffic: a newly registered instance receives
 * requests; its TTL check going critical takes it out of rotation (and passing brings it back);
 * deregistering it takes it out for good. One Consul agent serves the whole file; each data plane
 * gets its own KV key and Consul service, so the two never see each other's instances.
 *
 * Balancing is round robin over equal weights, so two healthy instances split a run evenly (a
 * difference of at most 2 for the starting point and requests in flight at a change).
 * Timing: every wait is a poll with a deadline; the time from the Consul change until traffic
 * follows is printed as a test diagnostic.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { startConsul, type ConsulAgent } from '../support/consul.js';
import { DATA_PLANES, startDataPlane, watchNode, type DataPlane, type DataPlaneKind, type NodeWatch } from '../support/dataplanes.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { sendMany, type Tally } from '../support/traffic.js';
import { freePort } from '../support/tmp.js';

const DOMAIN = 'app.test';

let consul: ConsulAgent | undefined;
const agent = (): ConsulAgent => {
  assert.ok(consul, 'Consul not started');
  return consul;
};

before(async () => {
  consul = await startConsul();
});

after(async () => {
  await consul?.destroy();
});

function configYaml(listenerPort: number, service: string): string {
  return `# Consul-mode config (test/integration/traffic-consul.test.ts): endpoints come from Consul health.
listener:
  listen: { address: "127.0.0.1", port: ${listenerPort} }
route:
  domain: ["${DOMAIN}"]
  cluster:
    web: { prefix: ["/"] }
cluster:
  loadbalancer:
    web: { lb-policy: round-robin }
endpoint:
  eds:
    web: { service: "${service}" }
`;
}

function suite(kind: DataPlaneKind): void {
  describe(`Consul-driven endpoints through ${kind}`, () => {
    const nodeId = `traffic-consul-${kind}`;
    const service = `traffic-web-${kind}`;
    const key = `consul-xds/traffic-${kind}`;
    let app: RunningApp | undefined;
    let dp: DataPlane | undefined;
    let node: NodeWatch | undefined;
    let listenerPort = 0;
    const ups: Record<'a' | 'b', Upstream | undefined> = { a: undefined, b: undefined };

    const plane = (): DataPlane => {
      assert.ok(dp, `${kind} not started`);
      return dp;
    };
    const upstream = (k: 'a' | 'b'): Upstream => {
      const u = ups[k];
      assert.ok(u, `upstream ${k} not started`);
      return u;
    };
    const instanceId = (k: 'a' | 'b'): string => `${service}-${k}`;
    const register = (k: 'a' | 'b'): Promise<void> =>
      agent().registerService({
        Name: service,
        ID: instanceId(k),
        Address: '127.0.0.1',
        Port: upstream(k).port,
        Checks: [{ CheckID: `${instanceId(k)}-ttl`, TTL: '10m', Status: 'passing' }],
      });
    const send = (count: number): Promise<Tally> => sendMany({ port: listenerPort, host: DOMAIN, path: '/orders', count });
    /** Polls small runs of traffic until `ok(tally)`; returns how long that took since `t0`. */
    const trafficFollows = async (ok: (t: Tally) => boolean, what: string, t0: number): Promise<number> => {
      await plane().waitFor(async () => ok(await send(10)), { what, timeoutMs: 10_000, intervalMs: 20 });
      return performance.now() - t0;
    };

    before(async () => {
      const [a, b] = await Promise.all([startUpstream('web-a'), startUpstream('web-b')]);
      Object.assign(ups, { a, b });
      listenerPort = await freePort();
      await register('a');
      await agent().kvPut(key, configYaml(listenerPort, service));
      app = await serve({
        consul: { address: agent().address, key, watch: { backoffBaseMs: 100, backoffMaxMs: 500 }, startupTimeoutMs: 10_000 },
        xds: { host: '127.0.0.1', port: 0 },
        admin: false,
        als: false,
        logger: silentLogger,
      });
      const watching = watchNode(app.xdsServer.registry, nodeId);
      node = watching;
      dp = await startDataPlane(kind, { xdsPort: app.xdsPort, nodeId, nodeCluster: 'web', context: () => watching.describe() });
      await dp.ready();
      await dp.waitFor(async () => (await send(10)).count('web-a') === 10, {
        what: `the one registered instance (web-a) serving through 127.0.0.1:${listenerPort}`,
        intervalMs: 100,
      });
    });

    after(async () => {
      node?.close();
      await dp?.stop();
      await app?.close();
      await Promise.all(Object.values(ups).map((u) => u?.close()));
    });

    it('a newly registered instance receives traffic', async (t) => {
      const t0 = performance.now();
      await register('b');
      const ms = await trafficFollows((tally) => tally.count('web-b') > 0, 'web-b to receive traffic after its registration', t0);
      t.diagnostic(`register -> traffic reaches web-b (${kind}): ${ms.toFixed(0)} ms`);
      const tally = await send(200);
      assert.equal(tally.byStatus.get(200), 200, tally.describe());
      assert.ok(Math.abs(tally.count('web-a') - tally.count('web-b')) <= 2, `round robin over both instances: ${tally.describe()}`);
    });

    it('a critical TTL check takes the instance out of rotation; passing brings it back', async (t) => {
      let t0 = performance.now();
      await agent().ttl(`${instanceId('b')}-ttl`, 'fail', 'test: failing');
      const out = await trafficFollows((tally) => tally.count('web-a') === 10, 'web-b (critical) to leave rotation', t0);
      upstream('b').reset();
      const tally = await send(200);
      assert.equal(tally.byStatus.get(200), 200, tally.describe());
      assert.equal(tally.count('web-a'), 200, `all traffic on the passing instance: ${tally.describe()}`);
      assert.equal(upstream('b').requests.length, 0, 'the critical instance got no request');

      t0 = performance.now();
      await agent().ttl(`${instanceId('b')}-ttl`, 'pass');
      const back = await trafficFollows((s) => s.count('web-b') > 0, 'web-b (passing again) to return to rotation', t0);
      t.diagnostic(`TTL critical -> out of rotation: ${out.toFixed(0)} ms; passing -> back: ${back.toFixed(0)} ms (${kind})`);
    });

    it('a deregistered instance gets no more traffic', async () => {
      const t0 = performance.now();
      await agent().deregisterService(instanceId('b'));
      await trafficFollows((tally) => tally.count('web-a') === 10, 'web-b (deregistered) to leave rotation', t0);
      upstream('b').reset();
      const tally = await send(200);
      assert.equal(tally.count('web-a'), 200, tally.describe());
      assert.equal(upstream('b').requests.length, 0, 'the deregistered instance got no request');
    });

    it('the data plane NACKed no update during the whole run', () => {
      assert.ok(node);
      assert.equal(node.nacks.length, 0, node.describe());
    });
  });
}

for (const kind of DATA_PLANES) suite(kind);
