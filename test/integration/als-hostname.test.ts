/**
 * The access-log sink by host name (docker-compose's `consul-xds` service, here `localhost`), on
 * real Envoy and on the TS data plane: each accepts the STRICT_DNS sink cluster consul-xds sends
 * (no NACK, Envoy's update_rejected counters at 0), resolves the name, and every request through
 * its listener arrives at the sink as a log line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { assertNoRejectedUpdate, DATA_PLANES, startDataPlane, watchNode, type DataPlane, type NodeWatch } from '../support/dataplanes.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { send } from '../support/traffic.js';
import { freePort, makeTempDir } from '../support/tmp.js';
import { oneWebClusterConfig } from '../support/config-text.js';

for (const kind of DATA_PLANES) {
  describe(`the access-log sink by host name, on ${kind}`, () => {
    let dir: Awaited<ReturnType<typeof makeTempDir>>;
    let app: RunningApp;
    let dp: DataPlane;
    let node: NodeWatch;
    let upstream: Upstream;
    let listenerPort = 0;
    let logFile = '';

    before(async () => {
      dir = await makeTempDir(`als-hostname-${kind}`);
      logFile = join(dir.path, 'access.log');
      upstream = await startUpstream('web');
      listenerPort = await freePort();
      const alsPort = await freePort();
      const config = join(dir.path, 'config.yaml');
      await writeFile(
        config,
        `# written by test/integration/als-hostname.test.ts\n${oneWebClusterConfig({
          listenerPort,
          upstreamPort: upstream.port,
          accessLog: `{ grpc: { address: "localhost", port: ${alsPort}, buffer-size-bytes: 0 } }`,
        })}`,
      );
      app = await serve({
        configFile: config,
        xds: { host: '127.0.0.1', port: 0 },
        admin: { port: 0 },
        als: { port: alsPort, file: logFile },
        logger: silentLogger,
      });
      node = watchNode(app.xdsServer.registry, `als-hostname-${kind}`);
      dp = await startDataPlane(kind, { xdsPort: app.xdsPort, nodeId: `als-hostname-${kind}`, nodeCluster: 'web', context: () => node.describe() });
    });

    after(async () => {
      node?.close();
      await dp?.stop();
      await app?.close();
      await upstream?.close();
      await dir?.remove();
    });

    it('takes the STRICT_DNS sink cluster for `localhost` and streams every access log to it', async () => {
      await dp.waitFor(async () => (await send({ port: listenerPort, host: 'x', path: '/warmup' }).catch(() => undefined))?.status === 200, {
        what: `${kind} to route /`,
      });
      for (let i = 0; i < 9; i++) assert.equal((await send({ port: listenerPort, host: 'x', path: `/r${i}` })).status, 200);
      const lines = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : []);
      await dp.waitFor(() => lines().length >= 10, { what: '10 access-log lines', context: () => `${lines().length} lines` });
      assert.deepEqual(
        lines().map((l) => (JSON.parse(l) as { status: number }).status),
        Array.from({ length: 10 }, () => 200),
      );
      assert.match(await dp.admin('/config_dump'), /"name":\s*"consul-xds-als-localhost-\d+",\s*"type":\s*"STRICT_DNS"/);
      await assertNoRejectedUpdate(dp, node);
    });
  });
}
