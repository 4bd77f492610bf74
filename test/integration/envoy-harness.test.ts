/**
 * Self-test of the real-Envoy harness (test/support): Envoy starts from our ADS bootstrap and its
 * admin answers even with no control plane up; the upstreams record hits, Host and health checks;
 * the traffic helper tallies who answered. If these fail, the scenario tests cannot be trusted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { adsBootstrap, envoyBinary, startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { binomialBounds, send, sendMany } from '../support/traffic.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('envoy harness', () => {
  let envoy: EnvoyHandle | undefined;
  const upstreams: Upstream[] = [];

  before(async () => {
    // Nothing listens on this port: Envoy must still come up and serve admin.
    envoy = await startEnvoy({ xdsPort: await freePort(), nodeId: 'harness-node', nodeCluster: 'harness' });
  });

  after(async () => {
    await envoy?.stop();
    await Promise.all(upstreams.map((u) => u.close()));
  });

  it('the ADS bootstrap passes `envoy --mode validate`', async () => {
    const dir = await makeTempDir('bootstrap');
    try {
      const file = join(dir.path, 'bootstrap.json');
      await writeFile(file, JSON.stringify(adsBootstrap({ xdsPort: 9000, nodeId: 'n', nodeCluster: 'c', alsPort: 9001 })));
      const { stdout, stderr } = await execFileAsync(await envoyBinary(), ['--mode', 'validate', '-c', file, '--use-dynamic-base-id']);
      assert.match(stdout + stderr, /OK/);
    } finally {
      await dir.remove();
    }
  });

  it('examples/envoy-bootstrap.yaml passes `envoy --mode validate` and matches `npm start`', async () => {
    const file = join(repoRoot, 'examples/envoy-bootstrap.yaml');
    const { stdout, stderr } = await execFileAsync(await envoyBinary(), ['--mode', 'validate', '-c', file, '--use-dynamic-base-id']);
    assert.match(stdout + stderr, /OK/);
    const doc = parse(await readFile(file, 'utf8')) as {
      node: { id: string; cluster: string };
      admin: { address: { socket_address: { address: string; port_value: number } } };
      static_resources: { clusters: Array<{ name: string; load_assignment: unknown }> };
    };
    assert.ok(doc.node.id && doc.node.cluster);
    assert.deepEqual(doc.admin.address.socket_address, { address: '127.0.0.1', port_value: 9901 });
    const xds = doc.static_resources.clusters.find((c) => c.name === 'xds_cluster');
    assert.match(JSON.stringify(xds?.load_assignment), /"address":"127\.0\.0\.1","port_value":9000/);
  });

  it('starts Envoy with admin on an ephemeral port and the static xds_cluster', async () => {
    assert.ok(envoy);
    assert.ok(envoy.adminPort > 0);
    const info = JSON.parse(await envoy.admin('/server_info')) as { node?: { id?: string; cluster?: string } };
    assert.equal(info.node?.id, 'harness-node');
    assert.equal(info.node?.cluster, 'harness');
    const dump = await envoy.configDump();
    const clusters = dump.configs.find((c) => c['@type'].endsWith('ClustersConfigDump'));
    assert.match(JSON.stringify(clusters), /"xds_cluster"/);
    const hosts = await envoy.clusters();
    assert.ok(hosts.some((h) => h.cluster === 'xds_cluster' && h.address === '127.0.0.1'));
    // The ADS stream keeps failing (nothing listens), which Envoy counts; proves it tries ADS.
    await envoy.waitFor(
      async () => ((await envoy!.stats('^cluster\\.xds_cluster\\.upstream_cx_connect_fail$')).get('cluster.xds_cluster.upstream_cx_connect_fail') ?? 0) > 0,
      { what: 'Envoy to attempt the ADS connection' },
    );
  });

  it('two Envoys run side by side (dynamic base id, ephemeral admin)', async () => {
    const second = await startEnvoy({ xdsPort: await freePort(), nodeId: 'harness-2', nodeCluster: 'harness' });
    try {
      assert.notEqual(second.adminPort, envoy?.adminPort);
    } finally {
      await second.stop();
    }
  });

  it('upstreams record hits, Host and health checks; traffic tallies who answered', async () => {
    const a = await startUpstream('up-a');
    upstreams.push(a);
    const ok = await send({ port: a.port, host: 'www.example.test', path: '/api/x' });
    assert.equal(ok.status, 200);
    assert.equal(ok.upstream, 'up-a');
    assert.deepEqual(JSON.parse(ok.body), { upstream: 'up-a', host: 'www.example.test', path: '/api/x' });
    a.setHealthStatus(503);
    assert.equal((await send({ port: a.port, host: 'h', path: a.healthPath })).status, 503);
    a.setHealthStatus(200);
    assert.equal((await send({ port: a.port, host: 'h', path: a.healthPath })).status, 200);
    assert.equal(a.healthChecks.length, 2);
    assert.equal(a.requests.length, 1);
    assert.equal(a.requests[0]?.host, 'www.example.test');

    const t = await sendMany({ port: a.port, host: 'h', path: '/p', count: 50 });
    assert.equal(t.total, 50);
    assert.equal(t.count('up-a'), 50);
    assert.equal(t.byStatus.get(200), 50);
    assert.equal(a.requests.length, 51);
  });

  it('binomial bounds are the stated 4-sigma band', () => {
    const b = binomialBounds(1000, 0.1);
    assert.ok(Math.abs(b.sd - 9.4868) < 1e-3);
    assert.ok(b.low > 62 && b.low < 63 && b.high > 137 && b.high < 138);
  });
});
