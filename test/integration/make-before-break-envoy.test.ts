/**
 * Make before break with a real Envoy, over SotW and over Delta xDS: under a steady HTTP load
 * through its listener, a YAML file is edited over and over, canary weight 20 -> 0 -> 20 and the canary route and cluster deleted
 * from the file and put back. Not one request may fail, and on the wire no CDS response may leave
 * out a cluster the routes Envoy holds still name (src/cache/make-before-break.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { runCanaryEdits, type CanaryWeight } from '../support/canary-edits.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { watchRemovalOrder } from '../support/removal-order.js';
import { send, startLoad } from '../support/traffic.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const NODE_ID = 'mbb-envoy';

function configYaml(listenerPort: number, main: number, canary: number, canaryWeight: CanaryWeight): string {
  const has = canaryWeight !== 'deleted';
  return `# written by test/integration/make-before-break-envoy.test.ts
listener:
  edge: { address: "127.0.0.1", port: ${listenerPort}, virtual-hosts: ["web"] }
virtual-hosts:
  web:
    domain: ["web.test"]
    cluster:
      main: { prefix: ["/"]${has ? ', weight: 80' : ''} }
${has ? `      canary: { prefix: ["/"], weight: ${canaryWeight} }\n` : ''}cluster:
  loadbalancer:
    main: {}
${has ? '    canary: {}\n' : ''}endpoint:
  eds:
    main:
      static: [{ address: "127.0.0.1", port: ${main} }]
${has ? `    canary:\n      static: [{ address: "127.0.0.1", port: ${canary} }]\n` : ''}`;
}

for (const apiType of ['GRPC', 'DELTA_GRPC'] as const)
  describe(`make before break: real Envoy (${apiType}) under load across canary edits`, () => {
    let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
    let app: RunningApp | undefined;
    let envoy: EnvoyHandle | undefined;
    const upstreams: Upstream[] = [];
    let configFile = '';
    let listenerPort = 0;

    before(async () => {
      dir = await makeTempDir(`mbb-envoy-${apiType}`);
      upstreams.push(await startUpstream('main'), await startUpstream('canary'));
      listenerPort = await freePort();
      configFile = join(dir.path, 'consul-xds.yaml');
      await writeFile(configFile, configYaml(listenerPort, upstreams[0]?.port ?? 0, upstreams[1]?.port ?? 0, 20));
      app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
      envoy = await startEnvoy({ xdsPort: app.xdsPort, nodeId: NODE_ID, nodeCluster: 'edge', apiType });
    });

    after(async () => {
      await envoy?.stop();
      await app?.close();
      await Promise.all(upstreams.map((u) => u.close()));
      await dir?.remove();
    });

    it('zero failed requests across 24 edits: weight 20 <-> 0 and the canary deleted and restored', async (t) => {
      assert.ok(app && envoy);
      const running = app;
      await envoy.waitFor(() => running.xdsServer.registry.nodeStatus(NODE_ID)?.upToDate, { what: 'Envoy to ACK its first snapshot', timeoutMs: 20_000 });
      await envoy.waitFor(async () => (await send({ port: listenerPort, host: 'web.test', path: '/' })).status === 200, {
        what: 'a first request through Envoy',
        timeoutMs: 20_000,
      });

      const order = watchRemovalOrder(running, NODE_ID);
      const load = startLoad({ port: listenerPort, host: 'web.test', path: '/', concurrency: 4, pauseMs: 1, maxRequests: 200_000 });
      let edits = 0;
      try {
        const [main, canary] = [upstreams[0]?.port ?? 0, upstreams[1]?.port ?? 0];
        edits = await runCanaryEdits({ app: running, configFile, yaml: (w) => configYaml(listenerPort, main, canary, w), nodeId: NODE_ID });
      } finally {
        order.stop();
      }
      const total = await load.stop();
      t.diagnostic(`${edits} edits; ${total.describe()}`);
      // Envoy's own count of requests routed to a cluster it did not have (503 NC), for the log.
      t.diagnostic(`envoy: ${JSON.stringify(Object.fromEntries(await envoy.stats('http\\.edge\\.no_cluster|cluster_manager\\.cluster_(added|removed)')))}`);
      assert.equal(edits, 24);
      assert.ok(total.count('canary') > 0, 'the canary got requests while it was routed to');
      assert.deepEqual(order.breaks, [], 'no cluster left CDS before the routes naming it were answered');
      assert.deepEqual(order.nacks, [], 'every stage was accepted');
      assert.equal(load.failed, 0, `failed requests: ${JSON.stringify(load.failures.slice(0, 5))}`);
    });
  });
