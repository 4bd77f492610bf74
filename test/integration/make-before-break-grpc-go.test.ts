/**
 * Make before break with grpc-go's own xDS client (issue 12 found the bug with it): the client of
 * test/fixtures/grpc-go-client calls the Greeter on `xds:///greeter:50051` from 8 goroutines while
 * the config file goes through 24 canary edits (weight 20 -> 0 -> 20, deleted and restored).
 * grpc-go must fail no call, and must never report the canary cluster as removed (`resource
 * "greeter-canary" of type "ClusterResource" has been removed`, which it logs and turns into
 * failed calls when CDS drops the cluster before the routes stop naming it).
 *
 * The binary comes from scripts/build-grpc-go-client.sh (Go and the module proxy on the first
 * build), which scripts/test.sh runs; without it the test fails and says so.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { grpcCanaryYaml, runCanaryEdits, type CanaryWeight } from '../support/canary-edits.js';
import { startBackend } from '../support/greeter.js';
import { watchRemovalOrder } from '../support/removal-order.js';
import { makeTempDir, waitUntil } from '../support/tmp.js';

const TARGET = 'greeter:50051';
const NODE_ID = 'mbb-grpc-go-client';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLIENT = process.env.GRPC_GO_CLIENT ?? join(ROOT, '.cache', 'grpc-go-client', 'client');

describe('make before break: grpc-go xDS client under load across canary edits', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let app: RunningApp | undefined;
  let child: ChildProcessWithoutNullStreams | undefined;
  const backends: Array<Awaited<ReturnType<typeof startBackend>>> = [];
  let configFile = '';
  let stdout = '';
  let stderr = '';
  const yaml = (w: CanaryWeight) => grpcCanaryYaml(TARGET, backends[0]?.port ?? 0, backends[1]?.port ?? 0, w);

  before(async () => {
    assert.ok(existsSync(CLIENT), `no grpc-go client at ${CLIENT}: scripts/test.sh builds it (scripts/build-grpc-go-client.sh)`);
    dir = await makeTempDir('mbb-grpc-go');
    backends.push(await startBackend('greeter'), await startBackend('canary'));
    configFile = join(dir.path, 'consul-xds.yaml');
    await writeFile(configFile, yaml(20));
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
    child = spawn(CLIENT, ['-target', `xds:///${TARGET}`, '-workers', '8'], {
      env: {
        ...process.env,
        GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify({
          xds_servers: [{ server_uri: `127.0.0.1:${app.xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
          node: { id: NODE_ID, locality: {} },
        }),
        GRPC_GO_LOG_SEVERITY_LEVEL: 'info',
        GRPC_GO_LOG_VERBOSITY_LEVEL: '2',
      },
    });
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
  });

  after(async () => {
    child?.kill();
    await app?.close();
    await Promise.all(backends.map((b) => b.close()));
    await dir?.remove();
  });

  it('zero failed calls, and the canary is never reported removed', async (t) => {
    assert.ok(app && child);
    const running = app;
    const proc = child;
    await waitUntil(() => stdout.includes('ready'), {
      what: 'a first grpc-go call through the xds channel',
      timeoutMs: 30_000,
      context: () => stderr.slice(-2_000),
    });
    const order = watchRemovalOrder(running, NODE_ID);
    let edits = 0;
    try {
      edits = await runCanaryEdits({ app: running, configFile, yaml, nodeId: NODE_ID });
    } finally {
      order.stop();
    }
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.stdin.end();
    await exited;
    const summary = /ok=(\d+) failed=(\d+)/.exec(stdout);
    const removed = stderr.split('\n').filter((l) => /greeter-canary.*has been removed|has been removed.*greeter-canary/.test(l));
    t.diagnostic(`${edits} edits; grpc-go: ${summary?.[0] ?? stdout}; canary reported removed ${removed.length} times`);
    assert.equal(edits, 24);
    assert.deepEqual(order.breaks, [], 'no cluster left CDS before the routes naming it were answered');
    assert.deepEqual(order.nacks, [], 'every stage was accepted');
    assert.deepEqual(removed.slice(0, 3), [], `grpc-go reported the canary removed ${removed.length} times`);
    assert.ok(summary && Number(summary[1]) > 0, `grpc-go made calls: ${stdout}`);
    assert.equal(
      Number(summary?.[2]),
      0,
      `failed calls:\n${stderr
        .split('\n')
        .filter((l) => l.startsWith('call failed'))
        .slice(0, 5)
        .join('\n')}`,
    );
  });
});
