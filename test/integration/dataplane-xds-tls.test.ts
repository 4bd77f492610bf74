/**
 * `consul-xds proxy --bootstrap FILE` against `serve()` with xDS and ALS over mTLS (its
 * --xds-tls-* / --als-tls-* options and the node identity rule), with real certificates made by
 * openssl. The proxy speaks TLS to the control plane because the bootstrap's xDS cluster has a
 * transport_socket (UpstreamTlsContext with file certificates), and to the ALS sink because the
 * YAML's `access-log.grpc.tls` gives the sink cluster one.
 *
 * Asserted: with the right CA, client certificate (naming the node id), SNI and SAN matcher the
 * proxy gets its config, traffic flows, and its access-log entries reach the mTLS sink under its
 * node id; a server certificate from another CA, or one whose SANs the matcher does not accept,
 * gives no stream at all (the proxy never falls back to plaintext); a transport_socket the proxy
 * cannot honour (SDS, another transport socket) stops the start with a non-zero exit code and the
 * bootstrap field named.
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
import { makeCa, type TestCa } from '../support/certs.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

interface Proxy {
  readonly child: ChildProcess;
  output(): string;
  readonly exit: Promise<number | null>;
  stop(): Promise<void>;
}

function startProxy(bootstrap: string): Proxy {
  // One process (the default is one worker per core): the xDS stream is the primary's either way, and stop() SIGKILLs.
  const child = spawn(
    process.execPath,
    [CLI, 'proxy', '--bootstrap', bootstrap, '--admin-port', '0', '--drain-time-s', '0', '--concurrency', '1', '--log-level', 'info'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
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

describe('proxy: xDS and ALS over mTLS to serve()', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let ca: TestCa;
  let otherCa: TestCa;
  let app: RunningApp | undefined;
  let upstream: Upstream | undefined;
  let listenerPort = 0;
  let logFile = '';
  const proxies: Proxy[] = [];

  before(async () => {
    dir = await makeTempDir('dp-xds-tls');
    ca = await makeCa(dir.path, 'fleet');
    otherCa = await makeCa(dir.path, 'other');
    const xdsServer = await ca.issue('xds-server', { dns: ['xds.test'] });
    const alsServer = await ca.issue('als-server', { dns: ['als.test'] });
    const edge = await ca.issue('edge-tls', { dns: ['edge-tls'] });
    upstream = await startUpstream('xds-tls-web');
    listenerPort = await freePort();
    const alsPort = await freePort();
    logFile = join(dir.path, 'access.log');
    const configFile = join(dir.path, 'consul-xds.yaml');
    // The sink cluster's client certificate is the proxy's own (it names the node id, as the sink requires).
    await writeFile(
      configFile,
      `listener:
  web:
    address: "127.0.0.1"
    port: ${listenerPort}
    access-log: { grpc: { address: "127.0.0.1", port: ${alsPort}, buffer-size-bytes: 0, tls: { ca: ${ca.cert}, cert: ${edge.cert}, key: ${edge.key}, sni: als.test } } }
route: { domain: ["*"], cluster: { web: { prefix: ["/"] } } }
cluster: { loadbalancer: { web: {} } }
endpoint: { eds: { web: { static: [{ address: "127.0.0.1", port: ${upstream.port} }] } } }
`,
    );
    app = await serve({
      configFile,
      xds: { host: '127.0.0.1', port: 0 },
      xdsSecurity: { tls: { cert: xdsServer.cert, key: xdsServer.key, clientCa: ca.cert } },
      admin: { port: 0 },
      als: { port: alsPort, file: logFile, tls: { cert: alsServer.cert, key: alsServer.key, clientCa: ca.cert } },
      logger: silentLogger,
    });
  });

  after(async () => {
    for (const p of proxies) await p.stop();
    await app?.close();
    await upstream?.close();
    await dir.remove();
  });

  /** A bootstrap for node `nodeId` whose xDS cluster (serve's TLS port) has `transportSocket`. */
  async function bootstrap(nodeId: string, transportSocket: unknown): Promise<string> {
    assert.ok(app);
    const file = join(dir.path, `${nodeId}.json`);
    await writeFile(
      file,
      JSON.stringify({
        node: { id: nodeId, cluster: 'edge' },
        dynamic_resources: { ads_config: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }] } },
        static_resources: {
          clusters: [
            {
              name: 'xds',
              load_assignment: {
                endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: app.xdsPort } } } }] }],
              },
              transport_socket: transportSocket,
            },
          ],
        },
      }),
    );
    return file;
  }

  /** mTLS with a client certificate naming `nodeId`, the server verified against `trustedCa` and matched against `san`. */
  const tlsSocket = async (nodeId: string, trustedCa: string, san: string): Promise<unknown> => {
    const client = await ca.issue(`${nodeId}-client`, { dns: [nodeId] });
    return {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': UPSTREAM_TLS,
        sni: 'xds.test',
        common_tls_context: {
          tls_certificates: [{ certificate_chain: { filename: client.cert }, private_key: { filename: client.key } }],
          validation_context: { trusted_ca: { filename: trustedCa }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: san } }] },
        },
      },
    };
  };

  it('connects with TLS and its client certificate; gets its config; traffic flows; access logs reach the mTLS sink', async () => {
    assert.ok(app && upstream);
    const p = startProxy(await bootstrap('edge-tls', await tlsSocket('edge-tls', ca.cert, 'xds.test')));
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
    assert.ok(app.xdsServer.registry.nodeStatus('edge-tls'), 'the control plane knows the node (its identity rule let it in)');
    const logged = await waitUntil(
      async () => {
        const lines = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').filter((l) => l.includes('/over-tls'));
        return lines.length > 0 && (JSON.parse(lines[0] as string) as { node?: string });
      },
      { what: 'the access-log entry in the mTLS sink file', timeoutMs: 10_000, context: () => p.output() },
    );
    assert.equal(logged.node, 'edge-tls');
    await p.stop();
  });

  for (const [what, trusted, san] of [
    ['a server certificate from another CA', 'other', 'xds.test'],
    ['a server certificate whose SANs match no matcher', 'own', 'not-xds.test'],
  ] as const) {
    it(`${what}: no stream, and no plaintext fallback`, async () => {
      assert.ok(app);
      const nodeId = `tls-bad-${trusted}`;
      const p = startProxy(await bootstrap(nodeId, await tlsSocket(nodeId, trusted === 'other' ? otherCa.cert : ca.cert, san)));
      proxies.push(p);
      await waitUntil(async () => (await readyStatus(p)) !== 0, { what: 'the proxy admin server', timeoutMs: 20_000, context: () => p.output() });
      await sleep(3_000);
      assert.notEqual(await readyStatus(p), 200, `not LIVE:\n${p.output()}`);
      assert.doesNotMatch(p.output(), /xDS stream up/);
      assert.equal(app.xdsServer.registry.nodeStatus(nodeId), undefined, 'the control plane never saw a stream from this node');
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
