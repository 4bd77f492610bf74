/**
 * CSDS on serve's xDS port under mTLS (docs/xds-server.md, "CSDS"), with real certificates made by
 * openssl, a real Envoy on mTLS, and the tools an operator uses: grpcurl and `consul-xds status
 * --csds`. Two fleets: node group `default` (the config file: the Envoy `edge-a` and a raw ADS
 * client `edge-b`) and `payments` (a snapshot set straight into the cache, standing in for a
 * second Consul KV key; the client `pay-1`). Asserts:
 *  - edge-a's certificate reads edge-a only; a whole-group certificate for `default` reads edge-a
 *    and edge-b; the operator SAN (`csdsAdminSans`, serve's --csds-admin-san) reads all three;
 *  - a matcher naming another fleet's node is answered without it, counted in
 *    consul_xds_csds_withheld_total and logged once, with no certificate or key bytes in the log;
 *  - `consul-xds status --csds` presents a client certificate (--csds-tls-*) and shows what it may
 *    read; the server name it checks can be set; without a client certificate the TLS handshake
 *    fails and it exits 1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import { serve, type RunningApp } from '../../src/app.js';
import { buildSnapshot } from '../../src/cache/snapshot.js';
import { envoyProtoIncludeDirs } from '../../src/envoy/protos.js';
import { TypeUrl } from '../../src/xds/resource-types.js';
import { AdsConnection } from '../support/ads-client.js';
import { makeCa, type IssuedCert, type TestCa } from '../support/certs.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { captureLog } from '../support/log-capture.js';
import { oneWebClusterConfig } from '../support/config-text.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { resourceSet } from '../support/xds-fixtures.js';
import { freePort, makeTempDir, waitUntil } from '../support/tmp.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const PATTERN = 'spiffe://test.local/group/{group}/node/{node}';
const OPS_SAN = 'spiffe://test.local/ops/csds';

describe('CSDS under mTLS: each certificate reads what it may', () => {
  let dir: { path: string; remove(): Promise<void> };
  let ca: TestCa;
  let app: RunningApp;
  let envoy: EnvoyHandle | undefined;
  let upstream: Upstream;
  const conns: AdsConnection[] = [];
  const certs: Record<string, IssuedCert> = {};
  const log = captureLog();
  const cert = (name: string): IssuedCert => {
    const c = certs[name];
    assert.ok(c, name);
    return c;
  };

  /** grpcurl FetchClientStatus with `name`'s client certificate; the node ids answered. */
  const grpcurl = async (name: string, request: object = {}): Promise<string[]> => {
    const bin = process.env.GRPCURL_BIN;
    assert.ok(bin, 'GRPCURL_BIN: scripts/test.sh installs grpcurl (scripts/install-grpcurl.sh)');
    const args = [
      '-cacert',
      ca.cert,
      '-cert',
      cert(name).cert,
      '-key',
      cert(name).key,
      ...envoyProtoIncludeDirs().flatMap((d) => ['-import-path', d]),
      '-proto',
      'envoy/service/status/v3/csds.proto',
      '-d',
      JSON.stringify(request),
      `127.0.0.1:${app.xdsPort}`,
      'envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus',
    ];
    const out = JSON.parse((await run(bin, args)).stdout) as { config?: Array<{ node: { id: string } }> };
    return (out.config ?? []).map((c) => c.node.id);
  };
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${app.adminPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? Number.NaN : Number(line.split(' ').pop());
  };
  const status = (...tls: string[]) => run(process.execPath, [CLI, 'status', '--csds', `127.0.0.1:${app.xdsPort}`, ...tls]);
  const statusAs = (name: string, ...more: string[]) =>
    status('--csds-tls-ca', ca.cert, '--csds-tls-cert', cert(name).cert, '--csds-tls-key', cert(name).key, ...more);

  before(async () => {
    dir = await makeTempDir('csds-mtls');
    ca = await makeCa(dir.path, 'fleet');
    const server = await ca.issue('xds-server', { dns: ['localhost'], ip: ['127.0.0.1'] });
    for (const [name, uri] of [
      ['edge-a', 'spiffe://test.local/group/default/node/edge-a'],
      ['edge-b', 'spiffe://test.local/group/default/node/edge-b'],
      ['pay-1', 'spiffe://test.local/group/payments/node/pay-1'],
      ['default-fleet', 'spiffe://test.local/group/default/node/*'],
      ['ops', OPS_SAN],
    ] as const) {
      certs[name] = await ca.issue(name, { uri: [uri] });
    }
    upstream = await startUpstream('web');
    const configFile = join(dir.path, 'consul-xds.yaml');
    await writeFile(configFile, oneWebClusterConfig({ listenerPort: await freePort(), upstreamPort: upstream.port }));
    app = await serve({
      configFile,
      xds: { host: '127.0.0.1', port: 0 },
      xdsSecurity: { tls: { cert: server.cert, key: server.key, clientCa: ca.cert }, groupPattern: PATTERN, csdsAdminSans: [OPS_SAN] },
      admin: { host: '127.0.0.1', port: 0 },
      als: false,
      logger: log.logger,
    });
    // The second fleet: a node whose node.cluster names the group is served it.
    app.cache.set('payments', buildSnapshot(resourceSet({ clusters: 2 })));

    envoy = await startEnvoy({
      xdsPort: app.xdsPort,
      nodeId: 'edge-a',
      nodeCluster: 'edge',
      xdsTls: { ca: ca.cert, cert: cert('edge-a').cert, key: cert('edge-a').key, sni: 'localhost' },
    });
    await envoy.waitFor(() => app.xdsServer.registry.nodeStatus('edge-a')?.upToDate === true, { what: 'Envoy edge-a (mTLS) up to date', timeoutMs: 20_000 });
    for (const [node, cluster] of [
      ['edge-b', 'edge'],
      ['pay-1', 'payments'],
    ] as const) {
      const c = new AdsConnection(`127.0.0.1:${app.xdsPort}`, {
        credentials: credentials.createSsl(readFileSync(ca.cert), readFileSync(cert(node).key), readFileSync(cert(node).cert)),
        channelOptions: { 'grpc.ssl_target_name_override': 'localhost' },
        separateConnection: true,
      });
      conns.push(c);
      const s = c.stream({ node: { id: node, cluster } });
      s.subscribe(TypeUrl.Cluster);
      await s.next();
    }
    await waitUntil(() => app.xdsServer.registry.nodes().length === 3, { what: 'three nodes connected' });
  });
  after(async () => {
    for (const c of conns) c.close();
    await envoy?.stop();
    await app?.close();
    await upstream?.close();
    await dir?.remove();
  });

  it("grpcurl: edge-a's certificate reads edge-a, the fleet certificate its group, the operator SAN every node", async () => {
    assert.deepEqual(await grpcurl('edge-a'), ['edge-a']);
    assert.deepEqual(await grpcurl('pay-1'), ['pay-1']);
    assert.deepEqual(await grpcurl('default-fleet'), ['edge-a', 'edge-b']);
    assert.deepEqual(await grpcurl('ops'), ['edge-a', 'edge-b', 'pay-1']);
    assert.equal(await metric('consul_xds_csds_withheld_total'), 0, 'no matchers: nothing asked of others');
  });

  it('grpcurl: a matcher naming another fleet is answered without it, counted, and logged once without certificate bytes', async () => {
    assert.deepEqual(await grpcurl('edge-a', { node_matchers: [{ node_id: { exact: 'pay-1' } }] }), []);
    assert.deepEqual(await grpcurl('pay-1', { node_matchers: [{ node_id: { prefix: 'edge-' } }, { node_id: { exact: 'pay-1' } }] }), ['pay-1']);
    assert.equal(await metric('consul_xds_csds_withheld_total'), 2);
    const warned = log.atLeast(40).filter((r) => String(r.msg).startsWith('CSDS answer left out'));
    assert.equal(warned.length, 2, log.tail());
    assert.match(String(warned[0]?.sans), /node\/edge-a/);
    const text = JSON.stringify(log.records);
    assert.doesNotMatch(text, /BEGIN|PRIVATE KEY|CERTIFICATE-----/, 'no PEM in the log');
    for (const name of Object.keys(certs)) {
      const c = cert(name);
      for (const file of [c.cert, c.key]) {
        const body = readFileSync(file, 'utf8').split('\n')[1] ?? '';
        assert.ok(body.length > 20 && !text.includes(body), `nothing of ${file} in the log`);
      }
      assert.ok(!text.includes(c.fingerprint256), `no fingerprint of ${name} in the log`);
    }
  });

  it('consul-xds status --csds presents a client certificate and shows what it may read; without one it cannot connect', async (t) => {
    const ops = (await statusAs('ops')).stdout;
    t.diagnostic(`status --csds as ops:\n${ops}`);
    assert.deepEqual(
      ops
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
      ['edge-a default', 'edge-b default', 'pay-1 payments'],
    );
    const mine = (await statusAs('edge-b')).stdout;
    assert.deepEqual(
      mine
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/)[0]),
      ['edge-b'],
    );
    const named = (await statusAs('edge-b', '--csds-tls-server-name', 'localhost')).stdout;
    assert.match(named, /^edge-b\s/m, 'the server certificate carries DNS:localhost');
    await assert.rejects(statusAs('edge-b', '--csds-tls-server-name', 'elsewhere.test'), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 1, 'the server certificate does not carry that name');
      return true;
    });
    await assert.rejects(status('--csds-tls-ca', ca.cert), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr ?? '', /CSDS at 127\.0\.0\.1:\d+ did not answer/);
      return true;
    });
    await assert.rejects(status('--csds-tls-cert', cert('ops').cert), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr ?? '', /--csds-tls-cert and --csds-tls-key go together/);
      return true;
    });
  });
});
