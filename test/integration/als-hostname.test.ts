/**
 * The access-log sink by host name (docker-compose's `consul-xds` service, here `localhost`):
 * real Envoy accepts the STRICT_DNS sink cluster consul-xds sends (no update_rejected), resolves
 * the name, and every request through its listener arrives at the sink as a log line.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { send } from '../support/traffic.js';
import { freePort, makeTempDir, waitUntil } from '../support/tmp.js';

let dir: Awaited<ReturnType<typeof makeTempDir>>;
let app: RunningApp;
let envoy: EnvoyHandle;
let upstream: Upstream;
let listenerPort = 0;
let logFile = '';

before(async () => {
  dir = await makeTempDir('als-hostname');
  logFile = join(dir.path, 'access.log');
  upstream = await startUpstream('web');
  listenerPort = await freePort();
  const alsPort = await freePort();
  const config = join(dir.path, 'config.yaml');
  await writeFile(
    config,
    `# written by test/integration/als-hostname.test.ts
listener:
  edge:
    address: "127.0.0.1"
    port: ${listenerPort}
    access-log: { grpc: { address: "localhost", port: ${alsPort}, buffer-size-bytes: 0 } }
route:
  domain: ["*"]
  cluster:
    web: { prefix: ["/"] }
cluster:
  loadbalancer:
    web: {}
endpoint:
  eds:
    web: { static: [{ address: "127.0.0.1", port: ${upstream.port} }] }
`,
  );
  app = await serve({
    configFile: config,
    xds: { host: '127.0.0.1', port: 0 },
    admin: { port: 0 },
    als: { port: alsPort, file: logFile },
    logger: silentLogger,
  });
  envoy = await startEnvoy({ xdsPort: app.xdsPort, nodeId: 'als-hostname', nodeCluster: 'web' });
});

after(async () => {
  await envoy?.stop();
  await app?.close();
  await upstream?.close();
  await dir?.remove();
});

it('Envoy takes the STRICT_DNS sink cluster for `localhost` and streams every access log to it', async () => {
  await envoy.waitFor(async () => (await send({ port: listenerPort, host: 'x', path: '/warmup' }).catch(() => undefined))?.status === 200, {
    what: 'Envoy to route /',
  });
  for (let i = 0; i < 9; i++) assert.equal((await send({ port: listenerPort, host: 'x', path: `/r${i}` })).status, 200);
  const lines = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : []);
  await waitUntil(() => lines().length >= 10, { what: '10 access-log lines', context: () => `${lines().length} lines; ${envoy.logFile}` });
  assert.deepEqual(
    lines().map((l) => (JSON.parse(l) as { status: number }).status),
    Array.from({ length: 10 }, () => 200),
  );
  const dump = JSON.stringify(await envoy.configDump());
  assert.match(dump, /"name":"consul-xds-als-localhost-\d+","type":"STRICT_DNS"/);
  assert.equal((await envoy.stats('cluster_manager\\.cds\\.update_rejected')).get('cluster_manager.cds.update_rejected'), 0);
});
