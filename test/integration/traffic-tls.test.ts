/**
 * TLS on every data plane (real Envoy and our TS proxy), from the YAML `tls` keys, with real
 * certificates made by openssl: `serve()` -> ADS -> the data plane.
 *
 * TLS listener: HTTPS clients verify the listener's certificate against the test CA; HTTP/1.1 and
 * HTTP/2 (chosen by ALPN) both reach the upstreams; x-forwarded-proto is https. With `client-ca`,
 * a client certificate is required: none, or one from another CA, and the handshake fails.
 * TLS upstream: the cluster dials an HTTPS upstream that requires our client certificate, after
 * health checks over TLS passed; an HTTP/2 cluster reaches an h2-over-TLS upstream. TCP: a TLS
 * listener in front of a TLS backend, bytes through both. The data plane NACKs nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { DATA_PLANES, startDataPlane, watchNode, type DataPlane, type DataPlaneKind, type NodeWatch } from '../support/dataplanes.js';
import { freePort, makeTempDir } from '../support/tmp.js';
import { makeCa, type CertFiles, type TestCa } from '../support/certs.js';
import { UPSTREAM_HEADER, startUpstream, type Upstream } from '../support/upstreams.js';

interface Certs {
  readonly ca: TestCa;
  /** The listeners' certificate (localhost, 127.0.0.1). */
  readonly listener: CertFiles;
  /** The upstreams' certificate. */
  readonly upstream: CertFiles;
  /** The data plane's client certificate towards upstreams (CN data-plane). */
  readonly dataPlane: CertFiles;
  /** A downstream client's certificate (CN client). */
  readonly client: CertFiles;
  /** A certificate from another CA. */
  readonly stranger: CertFiles;
}

interface Reply {
  readonly status: number;
  readonly upstream: string;
  readonly body: string;
}

/** One HTTPS/1.1 request (no ALPN, as node's https client) to 127.0.0.1:port, verifying the server against `ca` (name localhost). */
function httpsGet(port: number, path: string, ca: string, client?: CertFiles): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: 'localhost',
        ca: readFileSync(ca),
        ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
        agent: false,
        timeout: 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = res.headers[UPSTREAM_HEADER];
          resolve({ status: res.statusCode ?? 0, upstream: typeof h === 'string' ? h : '', body: Buffer.concat(chunks).toString() });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`HTTPS request to 127.0.0.1:${port}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** An HTTP/2 request over TLS (ALPN h2, or no ALPN at all: prior knowledge); also returns the negotiated protocol. */
function h2Get(port: number, path: string, ca: string, alpn = true): Promise<Reply & { alpn: string }> {
  return new Promise((resolve, reject) => {
    const tlsOpts = { ca: readFileSync(ca), servername: 'localhost' };
    const session = http2.connect(
      `https://127.0.0.1:${port}`,
      alpn ? tlsOpts : { ...tlsOpts, createConnection: () => tls.connect({ ...tlsOpts, host: '127.0.0.1', port }) },
    );
    session.on('error', reject);
    const stream = session.request({ ':path': path, ':authority': 'tls.test' });
    let status = 0;
    let upstream = '';
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      upstream = String(h[UPSTREAM_HEADER] ?? '');
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const alpn = String(session.alpnProtocol);
      session.close();
      resolve({ status, upstream, body: Buffer.concat(chunks).toString(), alpn });
    });
    stream.on('error', reject);
    stream.setTimeout(5_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
  });
}

/** Does a TLS handshake with the listener succeed (and the connection stay open for a request)? */
async function handshakeRefused(port: number, ca: string, client?: CertFiles): Promise<boolean> {
  try {
    const reply = await httpsGet(port, '/', ca, client);
    return reply.status === 0;
  } catch {
    return true;
  }
}

/** An h2-over-TLS upstream that names itself in `x-upstream`. */
async function startH2TlsUpstream(name: string, cert: CertFiles): Promise<{ port: number; hits: number; close(): Promise<void> }> {
  let hits = 0;
  const server = http2.createSecureServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (req, res) => {
    hits++;
    res.setHeader(UPSTREAM_HEADER, name);
    res.end(JSON.stringify({ upstream: name, protocol: req.httpVersion, scheme: req.headers[':scheme'] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  return {
    port: (server.address() as AddressInfo).port,
    get hits() {
      return hits;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A TLS echo backend: writes `<name>|`, then echoes. */
async function startTlsEcho(name: string, cert: CertFiles): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.write(`${name}|`);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** TLS to 127.0.0.1:port (verifying `ca`), send `text`, read until `<name>|<text>` came back. */
function tlsEcho(port: number, ca: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(ca) }, () => s.write(text));
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.endsWith(`|${text}`)) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.setTimeout(5_000, () => s.destroy(new Error(`TLS echo through ${port} timed out (got '${got}')`)));
  });
}

function configYaml(c: Certs, ports: { web: number; mtls: number; tcp: number }, api: Upstream, h2Port: number, echoPort: number): string {
  return `# written by test/integration/traffic-tls.test.ts
listener:
  web: { address: "127.0.0.1", port: ${ports.web}, tls: { cert: ${c.listener.cert}, key: ${c.listener.key} } }
  mtls: { address: "127.0.0.1", port: ${ports.mtls}, tls: { cert: ${c.listener.cert}, key: ${c.listener.key}, client-ca: ${c.ca.cert} } }
  secure-tcp: { address: "127.0.0.1", port: ${ports.tcp}, type: tcp, cluster: echo, tls: { cert: ${c.listener.cert}, key: ${c.listener.key} } }
route:
  domain: ["*"]
  cluster:
    api: { prefix: ["/"] }
    grpcish: { prefix: ["/h2"] }
cluster:
  loadbalancer:
    api:
      connect-timeout: 1
      tls: { ca: ${c.ca.cert}, sni: upstream.test, cert: ${c.dataPlane.cert}, key: ${c.dataPlane.key} }
      health-check: { value: ${api.healthPath}, timeout: 1, interval: 0.5, no-traffic-interval: 0.5, healthy: 1, unhealthy: 1 }
    grpcish: { upstream-protocol: http2, connect-timeout: 1, tls: { ca: ${c.ca.cert}, sni: upstream.test } }
    # No sni: any certificate the CA signed is accepted, whatever address was dialled.
    echo: { connect-timeout: 1, tls: { ca: ${c.ca.cert} } }
endpoint:
  eds:
    api: { static: [{ address: "127.0.0.1", port: ${api.port} }] }
    grpcish: { static: [{ address: "127.0.0.1", port: ${h2Port} }] }
    echo: { static: [{ address: "127.0.0.1", port: ${echoPort} }] }
`;
}

function suite(kind: DataPlaneKind): void {
  describe(`TLS through ${kind}`, () => {
    const nodeId = `traffic-tls-${kind}`;
    let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
    let certs: Certs;
    let app: RunningApp | undefined;
    let dp: DataPlane | undefined;
    let node: NodeWatch | undefined;
    let api: Upstream | undefined;
    let h2: Awaited<ReturnType<typeof startH2TlsUpstream>> | undefined;
    let echo: Awaited<ReturnType<typeof startTlsEcho>> | undefined;
    const ports = { web: 0, mtls: 0, tcp: 0 };

    before(async () => {
      dir = await makeTempDir(`traffic-tls-${kind}`);
      const ca = await makeCa(dir.path, 'test-ca');
      certs = {
        ca,
        listener: await ca.issue('listener', { dns: ['localhost'], ip: ['127.0.0.1'] }),
        upstream: await ca.issue('upstream', { dns: ['upstream.test'] }),
        dataPlane: await ca.issue('data-plane', { dns: ['data-plane.test'] }),
        client: await ca.issue('client', { dns: ['client.test'] }),
        stranger: await (await makeCa(dir.path, 'other-ca')).issue('stranger', { dns: ['client.test'] }),
      };
      api = await startUpstream('tls-api', { tls: { ...certs.upstream, ca: ca.cert } });
      h2 = await startH2TlsUpstream('tls-h2', certs.upstream);
      echo = await startTlsEcho('tls-echo', certs.upstream);
      ports.web = await freePort();
      ports.mtls = await freePort();
      ports.tcp = await freePort();
      const configFile = join(dir.path, 'consul-xds.yaml');
      await writeFile(configFile, configYaml(certs, ports, api, h2.port, echo.port));
      app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
      const watching = watchNode(app.xdsServer.registry, nodeId);
      node = watching;
      dp = await startDataPlane(kind, { xdsPort: app.xdsPort, nodeId, nodeCluster: 'edge', context: () => watching.describe() });
      await dp.ready();
      // The api host becomes routable once a health check over TLS (with our client cert) passed.
      await dp.waitFor(
        async () => {
          const r = await httpsGet(ports.web, '/ready-probe', certs.ca.cert).catch(() => undefined);
          return r?.upstream === 'tls-api';
        },
        { what: `an HTTPS request through 127.0.0.1:${ports.web} to reach tls-api`, intervalMs: 200 },
      );
    });

    after(async () => {
      node?.close();
      await dp?.stop();
      await app?.close();
      await api?.close();
      await h2?.close();
      await echo?.close();
      await dir?.remove();
    });

    it('terminates HTTPS/1.1 with its certificate (verified by the client) and dials the upstream over TLS with its client certificate', async () => {
      assert.ok(api);
      const reply = await httpsGet(ports.web, '/hello', certs.ca.cert);
      assert.equal(reply.status, 200, reply.body);
      assert.equal(reply.upstream, 'tls-api');
      const seen = api.requests.at(-1);
      assert.equal(seen?.path, '/hello');
      assert.equal(seen?.clientCertCn, 'data-plane', 'the upstream saw the data plane client certificate');
      assert.equal(seen?.headers['x-forwarded-proto'], 'https', 'x-forwarded-proto of a TLS listener');
    });

    it('health-checks the TLS upstream over TLS', () => {
      assert.ok(api);
      const hc = api.healthChecks.at(-1);
      assert.ok(hc, 'health checks arrived');
      assert.equal(hc.clientCertCn, 'data-plane');
    });

    it('speaks HTTP/2 when the client asks by ALPN, and reaches an HTTP/2-over-TLS upstream', async () => {
      assert.ok(h2);
      const before = h2.hits;
      const reply = await h2Get(ports.web, '/h2/x', certs.ca.cert);
      assert.equal(reply.alpn, 'h2');
      assert.equal(reply.status, 200, reply.body);
      assert.equal(reply.upstream, 'tls-h2');
      assert.equal(h2.hits, before + 1);
      assert.equal((JSON.parse(reply.body) as { scheme: string }).scheme, 'https', ':scheme towards a TLS upstream');
    });

    it('speaks HTTP/2 over TLS without ALPN too: the client preface decides, as in cleartext', async () => {
      assert.ok(h2);
      const reply = await h2Get(ports.web, '/h2/x', certs.ca.cert, false);
      assert.equal(reply.alpn, 'false');
      assert.equal(reply.status, 200);
      assert.equal(reply.upstream, 'tls-h2');
    });

    it('mTLS listener: a client certificate from the CA is let in; none, or one from another CA, is refused', async () => {
      const ok = await httpsGet(ports.mtls, '/m', certs.ca.cert, certs.client);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.upstream, 'tls-api');
      assert.equal(await handshakeRefused(ports.mtls, certs.ca.cert), true, 'no client certificate');
      assert.equal(await handshakeRefused(ports.mtls, certs.ca.cert, certs.stranger), true, 'a certificate from another CA');
      // The refusals closed connections, they did not take the listener down.
      assert.equal((await httpsGet(ports.mtls, '/m', certs.ca.cert, certs.client)).status, 200);
      assert.ok(dp);
      const prefix = `listener.127.0.0.1_${ports.mtls}.ssl`;
      assert.ok(((await dp.stat(`${prefix}.handshake`)) ?? 0) >= 2, `${prefix}.handshake`);
      // Counted as Envoy counts them: one refusal without a certificate, one for the stranger's.
      assert.equal(await dp.stat(`${prefix}.fail_verify_no_cert`), 1, `${prefix}.fail_verify_no_cert`);
      assert.equal(await dp.stat(`${prefix}.fail_verify_error`), 1, `${prefix}.fail_verify_error`);
    });

    it('TCP proxy: TLS in from the client, TLS out to the backend (chain verified; without sni, no name check)', async () => {
      assert.equal(await tlsEcho(ports.tcp, certs.ca.cert, 'ping over tls'), 'tls-echo|ping over tls');
    });

    it('the data plane NACKed no update during the whole run (update_rejected stays 0)', async () => {
      assert.ok(node && dp);
      assert.equal(node.nacks.length, 0, node.describe());
      assert.equal(await dp.stat('cluster_manager.cds.update_rejected'), 0);
      assert.equal(await dp.stat('listener_manager.lds.update_rejected'), 0);
    });
  });
}

for (const kind of DATA_PLANES) suite(kind);
