/**
 * `consul-xds proxy --bootstrap FILE` speaks TLS to the control plane when the bootstrap's xDS
 * cluster has a transport_socket (UpstreamTlsContext with file certificates), with real
 * certificates made by openssl. The control plane is `serve()` behind a TLS front
 * (test/support/tls-forwarder.ts) that requires client certificates from the test CA.
 *
 * Asserted: with the right CA, client certificate, SNI and SAN matcher the proxy gets its config
 * and traffic flows (the front saw our SNI and client certificate); a server certificate from
 * another CA, or one whose SANs the matcher does not accept, gives no connection (the proxy never
 * falls back to plaintext); a transport_socket the proxy cannot honour (SDS, another transport
 * socket) stops the start with a non-zero exit code and the bootstrap field named.
 *
 * The ALS client likewise: an access-log sink cluster with a transport_socket (what the YAML's
 * sink TLS keys produce) gets the access-log stream over mTLS, and the sink writes the entries.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { send } from '../support/traffic.js';
import { freePort, makeTempDir, waitUntil } from '../support/tmp.js';
import { makeCa, type CertFiles, type TestCa } from '../support/tls-certs.js';
import { startTlsForwarder, type TlsForwarder } from '../support/tls-forwarder.js';
import { parseConfig } from '../../src/config/parse.js';
import { staticEndpoints } from '../../src/config/static-endpoints.js';
import { translate } from '../../src/translate/index.js';
import { startXds, type XdsHarness } from '../support/xds-harness.js';
import { startDataplane, type DataplaneHandle } from '../support/dataplane.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

interface Proxy {
  readonly child: ChildProcess;
  output(): string;
  readonly exit: Promise<number | null>;
  stop(): Promise<void>;
}

function startProxy(bootstrap: string): Proxy {
  const child = spawn(process.execPath, [CLI, 'proxy', '--bootstrap', bootstrap, '--admin-port', '0', '--drain-time-s', '0', '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exit,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exit;
    },
  };
}

/** The /ready status of the proxy (0 while it has not printed its admin address). */
async function readyStatus(p: Proxy): Promise<number> {
  const m = /admin (http:\/\/[^/\s]+)\/ready/.exec(p.output());
  if (!m) return 0;
  const res = await fetch(`${m[1]}/ready`);
  await res.arrayBuffer();
  return res.status;
}

describe('proxy: xDS over TLS from the bootstrap transport_socket', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let ca: TestCa;
  let client: CertFiles;
  let otherCa: TestCa;
  let app: RunningApp | undefined;
  let front: TlsForwarder | undefined;
  let upstream: Upstream | undefined;
  let listenerPort = 0;
  const proxies: Proxy[] = [];

  before(async () => {
    dir = await makeTempDir('dp-xds-tls');
    ca = makeCa(dir.path, 'xds-ca');
    otherCa = makeCa(dir.path, 'other-ca');
    client = ca.issue('proxy-client', ['DNS:proxy-client']);
    upstream = await startUpstream('xds-tls-web');
    listenerPort = await freePort();
    const configFile = join(dir.path, 'consul-xds.yaml');
    await writeFile(
      configFile,
      `listener:
  web: { address: "127.0.0.1", port: ${listenerPort} }
route: { domain: ["*"], cluster: { web: { prefix: ["/"] } } }
cluster: { loadbalancer: { web: {} } }
endpoint: { eds: { web: { static: [{ address: "127.0.0.1", port: ${upstream.port} }] } } }
`,
    );
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
    front = await startTlsForwarder({ server: ca.issue('xds-server', ['DNS:xds.test']), clientCa: ca.cert, targetPort: app.xdsPort });
  });

  after(async () => {
    for (const p of proxies) await p.stop();
    await front?.close();
    await app?.close();
    await upstream?.close();
    await dir.remove();
  });

  /** A bootstrap whose xDS cluster (the TLS front) has `transportSocket`. */
  async function bootstrap(name: string, transportSocket: unknown): Promise<string> {
    assert.ok(front);
    const file = join(dir.path, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        node: { id: name, cluster: 'edge' },
        dynamic_resources: { ads_config: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }] } },
        static_resources: {
          clusters: [
            {
              name: 'xds',
              load_assignment: {
                endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: front.port } } } }] }],
              },
              transport_socket: transportSocket,
            },
          ],
        },
      }),
    );
    return file;
  }

  const tlsSocket = (trustedCa: string, san: string): unknown => ({
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': UPSTREAM_TLS,
      sni: 'xds.test',
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: client.cert }, private_key: { filename: client.key } }],
        validation_context: { trusted_ca: { filename: trustedCa }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: san } }] },
      },
    },
  });

  it('connects with TLS, its client certificate and SNI; gets its config; traffic flows', async () => {
    assert.ok(front && upstream);
    const p = startProxy(await bootstrap('tls-good', tlsSocket(ca.cert, 'xds.test')));
    proxies.push(p);
    await waitUntil(async () => (await readyStatus(p)) === 200, { what: 'the proxy to be LIVE over TLS', timeoutMs: 20_000, context: () => p.output() });
    const reply = await waitUntil(
      async () => {
        const r = await send({ port: listenerPort, host: 'any', path: '/over-tls' }).catch(() => undefined);
        return r?.upstream === 'xds-tls-web' ? r : undefined;
      },
      { what: 'a request through the proxy', timeoutMs: 10_000, context: () => p.output() },
    );
    assert.equal(reply.status, 200);
    assert.ok(
      front.accepted.some((a) => a.sni === 'xds.test' && a.clientCn === 'proxy-client'),
      `the TLS front saw our SNI and client certificate: ${JSON.stringify(front.accepted)}`,
    );
    await p.stop();
  });

  for (const [what, trusted, san] of [
    ['a server certificate from another CA', 'other', 'xds.test'],
    ['a server certificate whose SANs match no matcher', 'own', 'not-xds.test'],
  ] as const) {
    it(`${what}: no connection, and no plaintext fallback`, async () => {
      assert.ok(app);
      const p = startProxy(await bootstrap(`tls-bad-${trusted}`, tlsSocket(trusted === 'other' ? otherCa.cert : ca.cert, san)));
      proxies.push(p);
      await waitUntil(async () => (await readyStatus(p)) !== 0, { what: 'the proxy admin server', timeoutMs: 20_000, context: () => p.output() });
      await sleep(3_000);
      assert.notEqual(await readyStatus(p), 200, `not LIVE:\n${p.output()}`);
      assert.doesNotMatch(p.output(), /xDS stream up/);
      assert.equal(app.xdsServer.registry.nodeStatus(`tls-bad-${trusted}`), undefined, 'the control plane never saw a stream from this node');
      await p.stop();
    });
  }

  for (const [what, socket, field] of [
    [
      'SDS',
      {
        name: 'envoy.transport_sockets.tls',
        typed_config: { '@type': UPSTREAM_TLS, common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'cert' }] } },
      },
      'static_resources.clusters[0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs',
    ],
    [
      'another transport socket',
      { name: 'envoy.transport_sockets.alts', typed_config: { '@type': UPSTREAM_TLS } },
      'static_resources.clusters[0].transport_socket.name',
    ],
  ] as const) {
    it(`refuses to start on a transport_socket it cannot honour (${what}), naming the field`, async () => {
      const p = startProxy(await bootstrap(`tls-refused-${what.replace(/\W+/g, '-')}`, socket));
      proxies.push(p);
      const code = await p.exit;
      assert.notEqual(code, 0, 'non-zero exit code');
      assert.ok(p.output().includes(field), `the output names ${field}:\n${p.output()}`);
      assert.doesNotMatch(p.output(), /xDS stream up/);
    });
  }
});

describe('proxy: gRPC access logs over TLS when the sink cluster has a transport_socket', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let sink: RunningApp | undefined;
  let front: TlsForwarder | undefined;
  let xds: XdsHarness | undefined;
  let dp: DataplaneHandle | undefined;
  let web: Upstream | undefined;
  let logFile = '';

  after(async () => {
    await dp?.stop();
    await xds?.close();
    await front?.close();
    await sink?.close();
    await web?.close();
    await dir.remove();
  });

  it('streams the entries over mTLS to the sink', async () => {
    dir = await makeTempDir('dp-als-tls');
    const ca = makeCa(dir.path, 'als-ca');
    const client = ca.issue('proxy-als', ['DNS:proxy-als']);
    web = await startUpstream('als-tls-web');
    const alsPort = await freePort();
    logFile = join(dir.path, 'access.log');
    // The sink: our serve()'s plaintext ALS port, behind a TLS front that requires client certificates.
    const sinkConfig = join(dir.path, 'sink.yaml');
    await writeFile(sinkConfig, 'listener: {}\ncluster: { loadbalancer: {} }\n');
    // The sink runs with the admin server (serve() starts them together).
    sink = await serve({
      configFile: sinkConfig,
      xds: { host: '127.0.0.1', port: 0 },
      admin: { port: 0 },
      als: { port: alsPort, file: logFile },
      logger: silentLogger,
    });
    front = await startTlsForwarder({ server: ca.issue('als-server', ['DNS:als.test']), clientCa: ca.cert, targetPort: alsPort });
    const config = parseConfig(
      `listener:
  edge: { address: "127.0.0.1", port: 0, access-log: { grpc: { address: "127.0.0.1", port: ${front.port}, buffer-size-bytes: 0 } } }
route: { domain: ["*"], cluster: { web: { prefix: ["/"] } } }
cluster: { loadbalancer: { web: {} } }
endpoint: { eds: { web: { static: [{ address: "127.0.0.1", port: ${web.port} }] } } }
`,
      'als-tls.yaml',
    );
    const set = translate(config, staticEndpoints(config));
    const sinkCluster = set.clusters.find((c) => String(c.name).startsWith('consul-xds-als-'));
    assert.ok(sinkCluster, 'the translated set has the sink cluster');
    const clusters = set.clusters.map((c) =>
      c === sinkCluster
        ? {
            ...c,
            transport_socket: {
              name: 'envoy.transport_sockets.tls',
              typed_config: {
                '@type': UPSTREAM_TLS,
                sni: 'als.test',
                common_tls_context: {
                  tls_certificates: [{ certificate_chain: { filename: client.cert }, private_key: { filename: client.key } }],
                  validation_context: { trusted_ca: { filename: ca.cert } },
                },
              },
            },
          }
        : c,
    );
    xds = await startXds({ set: { ...set, clusters } });
    dp = await startDataplane({ xdsPort: xds.port, nodeId: 'dp-als-tls', nodeCluster: 'edge' });
    await dp.proxy.whenLive(20_000);
    const port = dp.proxy.listenerPort('edge') ?? 0;
    for (let i = 0; i < 3; i++) assert.equal((await send({ port, host: 'als.test', path: `/als-tls/${i}` })).status, 200);
    const got = await waitUntil(
      async () => {
        const text = await readFile(logFile, 'utf8').catch(() => '');
        const paths = text
          .split('\n')
          .filter((l) => l.includes('/als-tls/'))
          .map((l) => String((JSON.parse(l) as { path?: string }).path));
        return paths.length >= 3 && paths;
      },
      {
        what: 'three access-log lines in the sink file',
        timeoutMs: 10_000,
        context: async () =>
          `TLS front: ${JSON.stringify({ accepted: front?.accepted, failed: front?.failed })}\n${await dp?.admin('/stats?filter=access_log|consul-xds-als|cds')}`,
      },
    );
    assert.deepEqual(got.sort(), ['/als-tls/0', '/als-tls/1', '/als-tls/2']);
    assert.ok(
      front.accepted.some((a) => a.sni === 'als.test' && a.clientCn === 'proxy-als'),
      `the sink's TLS front saw our SNI and client certificate: ${JSON.stringify(front.accepted)}`,
    );
  });
});
