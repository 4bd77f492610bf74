/**
 * Our proxy's upstream pools over TLS (a cluster's UpstreamTlsContext), against real node HTTPS
 * and h2-over-TLS servers with openssl-made certificates: requests go over TLS with our client
 * certificate; a server from another CA is a connect failure, not a plaintext request; a cluster
 * update with other TLS settings retires the connections made with the old ones (HTTP/1.1 and
 * HTTP/2), while an update with the same settings keeps them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { FieldReader } from '../../../../src/proxy/config/field-reader.js';
import { readUpstreamTransportSocket, type UpstreamTlsModel } from '../../../../src/proxy/config/tls-context.js';
import { Http1Pool } from '../../../../src/proxy/upstream/http1-conn-pool.js';
import { Http2HostPool } from '../../../../src/proxy/upstream/http2-conn-pool.js';
import { Host } from '../../../../src/proxy/upstream/host.js';
import { ClusterStats } from '../../../../src/proxy/stats.js';
import type { UpstreamCallbacks, UpstreamFailure } from '../../../../src/proxy/upstream/conn-pool.js';
import { makeTempDir } from '../../../support/tmp.js';
import { makeCa, type CertFiles, type TestCa } from '../../../support/certs.js';

/** The model a Cluster with this UpstreamTlsContext gives. */
function tlsModel(ctx: Record<string, unknown>): UpstreamTlsModel {
  const r = new FieldReader(
    {
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', ...ctx },
    },
    'Cluster c',
    'transport_socket',
  );
  const model = readUpstreamTransportSocket(r);
  r.finish();
  return model;
}

function callbacks(resolve: (r: { status: number; failure?: UpstreamFailure }) => void): UpstreamCallbacks {
  let status = 0;
  return {
    onUpstreamHeaders: (s) => (status = s),
    onUpstreamData: () => undefined,
    onUpstreamTrailers: () => undefined,
    onUpstreamEnd: () => resolve({ status }),
    onUpstreamError: (failure) => resolve({ status, failure }),
  };
}

describe('upstream pools over TLS', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let ca: TestCa;
  let me: CertFiles;
  let otherCa: TestCa;
  const closers: Array<() => void | Promise<void>> = [];
  /** CN of the client certificate on each new connection, per server. */
  const h1Clients: string[] = [];
  const h2Clients: string[] = [];
  let h1Port = 0;
  let h2Port = 0;

  before(async () => {
    dir = await makeTempDir('upstream-tls');
    ca = await makeCa(dir.path, 'ca');
    otherCa = await makeCa(dir.path, 'other');
    me = await ca.issue('proxy', { dns: ['proxy'] });
    const server = await ca.issue('server', { dns: ['upstream.test'] });
    const tlsOpts = { cert: readFileSync(server.cert), key: readFileSync(server.key), ca: readFileSync(ca.cert), requestCert: true, rejectUnauthorized: true };
    const h1 = https.createServer({ ...tlsOpts, keepAliveTimeout: 60_000 }, (_req, res) => res.end('ok'));
    h1.on('secureConnection', (s: TLSSocket) => h1Clients.push(String(s.getPeerCertificate().subject?.CN)));
    const h2 = http2.createSecureServer(tlsOpts, (_req, res) => res.end('ok'));
    h2.on('secureConnection', (s: TLSSocket) => h2Clients.push(String(s.getPeerCertificate().subject?.CN)));
    for (const s of [h1, h2]) {
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      closers.push(() => new Promise<void>((resolve) => s.close(() => resolve())));
    }
    h1Port = (h1.address() as AddressInfo).port;
    h2Port = (h2.address() as AddressInfo).port;
    closers.push(() => h1.closeAllConnections());
  });

  after(async () => {
    for (const c of closers.reverse()) await c();
    await dir.remove();
  });

  const client = (trusted: string, sni = 'upstream.test') =>
    tlsModel({
      sni,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: me.cert }, private_key: { filename: me.key } }],
        validation_context: { trusted_ca: { filename: trusted } },
      },
    });

  it('HTTP/1.1: requests over TLS with our client certificate; other TLS settings retire the old connections', async () => {
    const stats = new ClusterStats();
    const base = { connectTimeoutMs: 1000, maxConnections: 10, maxRequestsPerConnection: 0, idleTimeoutMs: 60_000, stats };
    const first = client(ca.cert);
    const pool = new Http1Pool({ ...base, tls: first });
    closers.push(() => pool.close());
    const host = new Host('127.0.0.1', h1Port);
    const get = () =>
      new Promise<{ status: number; failure?: UpstreamFailure }>((resolve) =>
        pool.request(host, 'GET', '/', { host: 'upstream.test' }, false, callbacks(resolve)),
      );
    assert.equal((await get()).status, 200);
    assert.equal((await get()).status, 200);
    assert.deepEqual(h1Clients, ['proxy'], 'one TLS connection, our certificate');
    // Same settings read again (a CDS update that changed something else): the connection stays.
    pool.update({ ...base, tls: client(ca.cert) });
    assert.equal((await get()).status, 200);
    assert.equal(h1Clients.length, 1);
    // Another SNI: a new connection.
    pool.update({ ...base, tls: client(ca.cert, 'other.test') });
    assert.equal((await get()).status, 200);
    assert.equal(h1Clients.length, 2);
    // A CA the server's certificate does not chain to: a connect failure, never a plaintext request.
    pool.update({ ...base, tls: client(otherCa.cert) });
    const refused = await get();
    assert.equal(refused.status, 0);
    assert.ok(refused.failure, 'the request failed');
    assert.ok(stats.upstream_cx_connect_fail >= 1);
  });

  it('HTTP/2: streams over TLS (ALPN h2) with our client certificate; other TLS settings move new streams to a new connection', async () => {
    const stats = new ClusterStats();
    const base = { connectTimeoutMs: 1000, maxConcurrentStreams: 100, maxRequestsPerConnection: 0, idleTimeoutMs: 60_000, stats };
    const pool = new Http2HostPool(new Host('127.0.0.1', h2Port), { ...base, tls: client(ca.cert) });
    closers.push(() => pool.destroy());
    const get = () =>
      new Promise<{ status: number; failure?: UpstreamFailure }>((resolve) =>
        pool.request({ ':method': 'GET', ':path': '/', ':authority': 'upstream.test', ':scheme': 'https' }, true, callbacks(resolve)),
      );
    assert.equal((await get()).status, 200);
    assert.equal((await get()).status, 200);
    assert.deepEqual(h2Clients, ['proxy']);
    pool.update({ ...base, tls: client(ca.cert) });
    assert.equal((await get()).status, 200);
    assert.equal(h2Clients.length, 1, 'same settings: same connection');
    pool.update({ ...base, tls: client(ca.cert, 'other.test') });
    assert.equal((await get()).status, 200);
    assert.equal(h2Clients.length, 2, 'new settings: new connection');
  });
});
