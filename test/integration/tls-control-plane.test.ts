/**
 * Transport security of `serve` (docs/sidecar.md, "Transport security") with a real Envoy and
 * real certificates made by openssl (test/support/certs.ts). Asserts:
 *  - Envoy's bootstrap dials xDS over mTLS, gets its config, and traffic flows through it; its
 *    access logs (the YAML `access-log.grpc.tls` keys) reach the sink over mTLS;
 *  - refused, counted in /metrics by reason, and never sent config: a real Envoy whose
 *    certificate does not name its node id; a client whose certificate names another node group;
 *    no client certificate, one from another CA, a plaintext client (the TLS handshake fails);
 *  - rotation: new server cert files reach new connections while the connected Envoy keeps its
 *    stream and still gets a config change; a bad new pair keeps the old certificate serving and
 *    shows in /status and /metrics; no request through Envoy fails meanwhile;
 *  - the health-only port answers the health path (599 in maintenance too) and 404 for the rest;
 *  - the ALS sink refuses a stream whose identifier forges another node id.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { serve, type RunningApp } from '../../src/app.js';
import { alsServiceDefinition } from '../../src/als/sink.js';
import { TypeUrl } from '../../src/xds/resource-types.js';
import { makeCa, servedFingerprint, type CertFiles, type IssuedCert, type TestCa } from '../support/certs.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { AdsConnection } from '../support/ads-client.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { send } from '../support/traffic.js';
import { captureLog } from '../support/log-capture.js';
import { freePort, makeTempDir, waitUntil } from '../support/tmp.js';

const DOMAIN = 'app.test';
const PATTERN = 'spiffe://test.local/group/{group}/node/{node}';

function configYaml(p: { listener: number; als: number; api: number }, ca: string, client: CertFiles, extraRoute = ''): string {
  return `# written by test/integration/tls-control-plane.test.ts
listener:
  listen:
    address: "127.0.0.1"
    port: ${p.listener}
    access-log:
      grpc:
        address: "127.0.0.1"
        port: ${p.als}
        log-name: "edge"
        buffer-size-bytes: 0
        tls: { ca: "${ca}", cert: "${client.cert}", key: "${client.key}", sni: "localhost" }
route:
  domain: ["${DOMAIN}"]
  cluster:
    web-api-perl:
      prefix: ["/api"${extraRoute}]
      weight: 100
cluster:
  loadbalancer:
    web-api-perl: { lb-policy: "round-robin", discovery: "eds" }
endpoint:
  eds:
    web-api-perl:
      static: [{ address: "127.0.0.1", port: ${p.api} }]
`;
}

describe('transport security of serve, with a real Envoy', () => {
  let dir: { path: string; remove(): Promise<void> };
  let ca: TestCa;
  let rogue: TestCa;
  let app: RunningApp;
  let envoy: EnvoyHandle | undefined;
  let api: Upstream;
  let ports: { listener: number; als: number; api: number };
  let configFile: string;
  let logFile: string;
  let maintenanceFile: string;
  let live: CertFiles;
  let server1: IssuedCert;
  let edge1: IssuedCert;
  let admin = '';
  const log = captureLog();

  const get = async (base: string, path: string) => {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, body: await res.text() };
  };
  const metric = async (name: string, labels: string): Promise<number> => {
    const text = (await get(admin, '/metrics')).body;
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  };
  const logLines = (): Array<Record<string, unknown>> =>
    fs.existsSync(logFile)
      ? fs
          .readFileSync(logFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
  const tlsClient = (client?: CertFiles) =>
    grpc.credentials.createSsl(fs.readFileSync(ca.cert), client ? fs.readFileSync(client.key) : null, client ? fs.readFileSync(client.cert) : null);

  before(async () => {
    dir = await makeTempDir('tls-cp');
    ca = await makeCa(dir.path, 'fleet');
    rogue = await makeCa(dir.path, 'rogue');
    server1 = await ca.issue('xds-server-1', { dns: ['localhost'], ip: ['127.0.0.1'] });
    const alsServer = await ca.issue('als-server', { dns: ['localhost'], ip: ['127.0.0.1'] });
    edge1 = await ca.issue('edge-1', { uri: ['spiffe://test.local/group/default/node/edge-1'] });
    live = { cert: join(dir.path, 'xds.crt'), key: join(dir.path, 'xds.key') };
    await copyFile(server1.cert, live.cert);
    await copyFile(server1.key, live.key);
    api = await startUpstream('web-api-perl');
    ports = { listener: await freePort(), als: await freePort(), api: api.port };
    configFile = join(dir.path, 'consul-xds.yaml');
    logFile = join(dir.path, 'access.log');
    maintenanceFile = join(dir.path, 'maintenance');
    await writeFile(configFile, configYaml(ports, ca.cert, edge1));
    app = await serve({
      configFile,
      xds: { host: '127.0.0.1', port: 0 },
      xdsSecurity: { tls: { ...live, clientCa: ca.cert }, groupPattern: PATTERN, pollMs: 100 },
      admin: { port: 0, healthPath: '/_health', healthPort: 0, maintenanceFile, graceMs: 5000 },
      als: {
        port: ports.als,
        file: logFile,
        tls: { cert: alsServer.cert, key: alsServer.key, clientCa: ca.cert },
        tlsPollMs: 100,
        identityUriPattern: PATTERN,
      },
      logger: log.logger,
    });
    admin = `http://127.0.0.1:${app.adminPort}`;
  });

  after(async () => {
    await envoy?.stop();
    await app?.close();
    await api?.close();
    await dir?.remove();
  });

  it('Envoy dials xDS over mTLS, gets its config, traffic flows, and its access logs reach the sink over mTLS', async () => {
    envoy = await startEnvoy({
      xdsPort: app.xdsPort,
      nodeId: 'edge-1',
      nodeCluster: 'edge',
      xdsTls: { ca: ca.cert, cert: edge1.cert, key: edge1.key, sni: 'localhost' },
    });
    await envoy.waitFor(async () => (await send({ port: ports.listener, host: DOMAIN, path: '/api/warmup' }).catch(() => undefined))?.status === 200, {
      what: 'Envoy (mTLS to xDS) to route /api',
    });
    let failed = 0;
    for (let i = 0; i < 20; i++) if ((await send({ port: ports.listener, host: DOMAIN, path: `/api/users?i=${i}` })).status !== 200) failed++;
    assert.equal(failed, 0);
    await waitUntil(() => logLines().filter((l) => l.node === 'edge-1' && String(l.path).startsWith('/api/users')).length === 20, {
      what: '20 access-log lines from edge-1 over mTLS',
      context: async () => `${logLines().length} lines; ${await envoy!.logTail()}`,
    });
    const status = JSON.parse((await get(admin, '/status')).body) as { transportSecurity: Record<string, { mtls: boolean; refused: Record<string, number> }> };
    assert.equal(status.transportSecurity.xds?.mtls, true);
    assert.equal(status.transportSecurity.als?.mtls, true);
    assert.equal(await metric('consul_xds_als_identity_denied_total', 'reason="node_id"'), 0);
  });

  it('a real Envoy whose certificate does not name its node id never gets config; counted', async () => {
    const stranger = await ca.issue('someone-else', { dns: ['someone-else'] });
    const before = await metric('consul_xds_xds_identity_denied_total', 'reason="node_id"');
    const other = await startEnvoy({
      xdsPort: app.xdsPort,
      nodeId: 'edge-3',
      nodeCluster: 'edge',
      xdsTls: { ca: ca.cert, cert: stranger.cert, key: stranger.key },
    });
    try {
      await waitUntil(async () => (await metric('consul_xds_xds_identity_denied_total', 'reason="node_id"')) >= before + 2, {
        what: 'edge-3 refused (and refused again when it retries)',
        context: () => other.logTail(),
      });
      const stats = await other.stats('cluster_manager.cds.update_success|listener_manager.lds.update_success');
      assert.equal(stats.get('cluster_manager.cds.update_success') ?? 0, 0, 'no CDS reached the refused Envoy');
      assert.equal(stats.get('listener_manager.lds.update_success') ?? 0, 0, 'no LDS reached the refused Envoy');
      assert.equal(app.xdsServer.registry.nodeStatus('edge-3'), undefined, 'the refused node is not listed as a client');
    } finally {
      await other.stop();
    }
  });

  it('refuses another group, no client certificate, another CA and plaintext; each counted by reason', async () => {
    const opts = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.initial_reconnect_backoff_ms': 100 } as const;
    const attempt = async (credentials: grpc.ChannelCredentials, node: { id: string; cluster: string }) => {
      const conn = new AdsConnection(`127.0.0.1:${app.xdsPort}`, { credentials, channelOptions: opts, separateConnection: true });
      try {
        const s = conn.stream({ node });
        s.subscribe(TypeUrl.Cluster);
        const st = await s.status;
        return { code: st.code, details: st.details, received: s.received.length };
      } finally {
        conn.close();
      }
    };
    const payments = await ca.issue('edge-2', { uri: ['spiffe://test.local/group/payments/node/edge-2'] });
    const wrongGroup = await attempt(tlsClient(payments), { id: 'edge-2', cluster: 'payments' });
    assert.equal(wrongGroup.code, grpc.status.PERMISSION_DENIED);
    assert.match(wrongGroup.details, /node 'edge-2' would be served node group 'default', but its certificate names group\(s\) 'payments'/);
    assert.equal(wrongGroup.received, 0);
    assert.equal(await metric('consul_xds_xds_identity_denied_total', 'reason="group"'), 1);
    const refusals = log.records.filter((r) => r.node === 'edge-2');
    assert.equal(refusals.length, 1, 'logged once for the stream');
    assert.equal(refusals[0]?.sans, 'URI:spiffe://test.local/group/payments/node/edge-2');
    assert.match(String(refusals[0]?.peer), /^(ipv4:)?127\.0\.0\.1:\d+$/);

    const forged = await attempt(tlsClient(edge1), { id: 'edge-7', cluster: 'edge' });
    assert.equal(forged.code, grpc.status.PERMISSION_DENIED, 'a good certificate does not let its holder speak for another node');
    assert.equal(forged.received, 0);

    const outsider = await rogue.issue('edge-4', { dns: ['edge-4'] });
    for (const [what, credentials] of [
      ['no client certificate', tlsClient()],
      ['a certificate from another CA', tlsClient(outsider)],
      ['plaintext', grpc.credentials.createInsecure()],
    ] as const) {
      const handshakes = await metric('consul_xds_xds_identity_denied_total', 'reason="tls_handshake"');
      const r = await attempt(credentials, { id: what === 'a certificate from another CA' ? 'edge-4' : 'edge-1', cluster: 'edge' });
      assert.equal(r.code, grpc.status.UNAVAILABLE, `${what}: ${r.details}`);
      assert.equal(r.received, 0, `${what}: nothing received`);
      await waitUntil(async () => (await metric('consul_xds_xds_identity_denied_total', 'reason="tls_handshake"')) > handshakes, {
        what: `${what}: the failed TLS handshake counted`,
      });
    }
  });

  it('rotation: new connections get the new certificate, the connected Envoy keeps its stream and gets changes; a bad pair keeps the old one', async () => {
    const streamIds = () =>
      app.xdsServer.registry
        .list()
        .filter((s) => s.nodeId === 'edge-1')
        .map((s) => s.id);
    const before = streamIds();
    assert.equal(before.length, 1);
    assert.equal(await servedFingerprint(app.xdsPort, ca.cert, edge1), server1.fingerprint256);

    // Traffic through Envoy the whole time: nothing may fail.
    let sent = 0;
    let failed = 0;
    let running = true;
    const load = (async () => {
      while (running) {
        const r = await send({ port: ports.listener, host: DOMAIN, path: '/api/load' }).catch(() => undefined);
        sent++;
        if (r?.status !== 200) failed++;
        await new Promise((res) => setTimeout(res, 10));
      }
    })();

    const server2 = await ca.issue('xds-server-2', { dns: ['localhost'], ip: ['127.0.0.1'] });
    await copyFile(server2.key, live.key);
    await copyFile(server2.cert, live.cert);
    await waitUntil(async () => (await servedFingerprint(app.xdsPort, ca.cert, edge1)) === server2.fingerprint256, {
      what: 'new connections to get the new certificate',
    });
    assert.equal(await metric('consul_xds_tls_reloads_total', 'server="xds",result="ok"'), 1);

    // The existing stream goes on and still carries changes.
    await writeFile(configFile, configYaml(ports, ca.cert, edge1, ', "/v2"'));
    await envoy!.waitFor(async () => (await send({ port: ports.listener, host: DOMAIN, path: '/v2/x' }).catch(() => undefined))?.status === 200, {
      what: 'a config change to reach the connected Envoy after the rotation',
    });
    assert.deepEqual(streamIds(), before, 'the same xDS stream, not a reconnect');

    // A key that is not the certificate's: refused, reported, the second certificate keeps serving.
    const server3 = await ca.issue('xds-server-3', { dns: ['localhost'] });
    await copyFile(server3.key, live.key);
    await waitUntil(async () => (await metric('consul_xds_tls_reload_failing', 'server="xds"')) === 1, { what: 'the bad pair reported in /metrics' });
    const status = JSON.parse((await get(admin, '/status')).body) as {
      transportSecurity: { xds: { tls: { serial: string; lastError: { message: string } | null } } };
    };
    assert.match(status.transportSecurity.xds.tls.lastError?.message ?? '', /key .*xds\.key does not belong to certificate .*xds\.crt/);
    assert.equal(status.transportSecurity.xds.tls.serial, server2.serial);
    assert.equal(await metric('consul_xds_tls_reloads_total', 'server="xds",result="error"'), 1);
    assert.equal(await servedFingerprint(app.xdsPort, ca.cert, edge1), server2.fingerprint256, 'the last good certificate keeps serving');

    await copyFile(server2.key, live.key);
    await waitUntil(async () => (await metric('consul_xds_tls_reload_failing', 'server="xds"')) === 0, {
      what: 'the report to clear once the files are right',
    });
    running = false;
    await load;
    assert.ok(sent > 10, `sent ${sent}`);
    assert.equal(failed, 0, `${failed} of ${sent} requests through Envoy failed during the rotation`);
  });

  it('the health-only port answers the health path and 404 for everything else', async () => {
    const healthPort = app.sidecar?.healthPort;
    assert.ok(healthPort !== undefined);
    const health = `http://127.0.0.1:${healthPort}`;
    const viaAdmin = await get(admin, '/_health');
    const viaHealth = await get(health, '/_health');
    assert.equal(viaHealth.status, viaAdmin.status);
    assert.equal(viaHealth.status, 200, viaHealth.body);
    for (const path of ['/config_dump', '/status/clients', '/status', '/metrics', '/stats/access-log', '/', '/health']) {
      const r = await get(health, path);
      assert.equal(r.status, 404, `${path} on the health port`);
      assert.deepEqual((JSON.parse(r.body) as { endpoints: string[] }).endpoints, ['/_health'], `${path}: the 404 lists only the health path`);
    }
    assert.equal((await get(admin, '/config_dump')).status, 200, 'the admin port keeps everything');
    await writeFile(maintenanceFile, '');
    try {
      await waitUntil(async () => (await get(health, '/_health')).status === 599, { what: '599 MAINTENANCE on the health port' });
    } finally {
      fs.rmSync(maintenanceFile);
    }
    await waitUntil(async () => (await get(health, '/_health')).status === 200, { what: 'health back to 200' });
  });

  it('the ALS sink refuses a stream whose identifier names a node the certificate does not', async () => {
    const Ctor = grpc.makeGenericClientConstructor(alsServiceDefinition(), 'AccessLogService');
    const client = new Ctor(`127.0.0.1:${ports.als}`, tlsClient(edge1), { 'grpc.ssl_target_name_override': 'localhost' });
    try {
      const done = new Promise<grpc.ServiceError | null>((resolve) => {
        const method = (client as unknown as Record<string, (cb: (err: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<object>>)
          .StreamAccessLogs!;
        const call = method.call(client, (err) => resolve(err));
        call.write({
          identifier: { node: { id: 'edge-9', cluster: 'edge' }, log_name: 'forged' },
          http_logs: { log_entry: [{ request: { path: '/forged', request_method: 'GET' }, response: { response_code: { value: 200 } } }] },
        });
      });
      const err = await done;
      assert.equal(err?.code, grpc.status.PERMISSION_DENIED);
      assert.match(err?.details ?? '', /node id 'edge-9' is not a DNS or URI SAN/);
      assert.equal(await metric('consul_xds_als_identity_denied_total', 'reason="node_id"'), 1);
      assert.equal(logLines().filter((l) => l.path === '/forged').length, 0, 'nothing of the forged stream was written');
    } finally {
      client.close();
    }
  });
});
