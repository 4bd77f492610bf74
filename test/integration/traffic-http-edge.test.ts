/**
 * HTTP edge behaviour, each scenario run against every data plane (real Envoy and our TS proxy,
 * see test/support/dataplanes.ts) with the same hand-written Envoy resources from a real xDS
 * server: Envoy's answer is the reference. Four listeners share one route table to an upstream
 * that records the request headers it received:
 *  - `plain`: the HCM as our control plane emits it (use_remote_address unset);
 *  - `remote`: use_remote_address true (the data plane is the edge and appends the peer to XFF);
 *  - `strict`: request_headers_timeout and stream_idle_timeout of half a second;
 *  - `capped`: a connection_limit filter (max 2 connections) in front of the HCM.
 * Scenarios: x-forwarded-for and x-forwarded-proto (taken from the connection, never from the
 * client's `:scheme`), hop-by-hop headers and headers named in `Connection:` stripped, a route
 * regex that is catastrophic for a backtracking engine (`(a+)+`) answered at once while the admin
 * endpoint stays responsive, a client stalling in its request headers (408 and close) and one
 * stalling in its request body over HTTP/1.1 and HTTP/2 (408 stream timeout), a third
 * connection to the capped listener closed unanswered and counted, and a route regex RE2 refuses
 * (`(a)\1`) NACKed while the last good routes keep serving.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import type { ProtoObject, XdsResourceSet } from '../../src/xds/resources.js';
import { startXds, type XdsHarness } from '../support/xds-harness.js';
import { DATA_PLANES, dataPlaneProgram, startDataPlane, watchNode, type DataPlane, type DataPlaneKind, type NodeWatch } from '../support/dataplanes.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { freePort } from '../support/tmp.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ADS = { ads: {}, resource_api_version: 'V3' };
const HOST = 'edge.test';

const CONNECTION_LIMIT = 'type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit';
const CAP = 2;

function listener(name: string, port: number, hcm: Record<string, unknown>, before: ProtoObject[] = []): ProtoObject {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        filters: [
          ...before,
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              codec_type: 'AUTO',
              rds: { route_config_name: 'edge-routes', config_source: ADS },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
              ...hcm,
            },
          },
        ],
      },
    ],
  };
}

const HALF_SECOND = { nanos: 500_000_000 };

interface Ports {
  readonly plain: number;
  readonly remote: number;
  readonly strict: number;
  readonly capped: number;
  readonly echo: number;
}

function resources(ports: Ports): XdsResourceSet {
  return {
    clusters: [{ name: 'echo', type: 'EDS', eds_cluster_config: { eds_config: ADS }, connect_timeout: { seconds: 1 }, lb_policy: 'ROUND_ROBIN' }],
    endpoints: [
      {
        cluster_name: 'echo',
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: ports.echo } } } }] }],
      },
    ],
    listeners: [
      listener('plain', ports.plain, {}),
      listener('remote', ports.remote, { use_remote_address: { value: true } }),
      listener('strict', ports.strict, { request_headers_timeout: HALF_SECOND, stream_idle_timeout: HALF_SECOND, max_request_headers_kb: { value: 8 } }),
      listener('capped', ports.capped, {}, [
        { name: 'envoy.filters.network.connection_limit', typed_config: { '@type': CONNECTION_LIMIT, stat_prefix: 'capped', max_connections: { value: CAP } } },
      ]),
    ],
    routes: [
      {
        name: 'edge-routes',
        virtual_hosts: [
          {
            name: 'edge',
            domains: ['*'],
            routes: [
              { match: { safe_regex: { regex: '/redos/(a+)+' } }, direct_response: { status: 200, body: { inline_string: 'regex matched' } } },
              { match: { prefix: '/' }, route: { cluster: 'echo' } },
            ],
          },
        ],
      },
    ],
  };
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** One HTTP/1.1 request on a fresh connection (no agent: hop-by-hop headers go out as given). */
function get1(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, headers: { host: HOST, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One h2c (prior knowledge) request with the given pseudo and plain headers. */
function get2(port: number, headers: http2.OutgoingHttpHeaders): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':path': '/h2', ':authority': HOST, ...headers });
    let status = 0;
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    req.on('error', reject);
    req.end();
  });
}

/** This host's first non-loopback IPv4 address (127.0.0.1 when it has none). */
function hostAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Writes `text` on a fresh connection and collects everything until the peer closes (10 s at most). */
function rawExchange(port: number, text: string): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    const giveUp = setTimeout(() => {
      socket.destroy();
      resolve({ data, closed: false });
    }, 10_000);
    socket.on('close', () => {
      clearTimeout(giveUp);
      resolve({ data, closed: true });
    });
    // A peer that closes while our request bytes sit unread in its socket sends RST, not FIN (Envoy's
    // connection_limit does, depending on timing): that is a close too, and what arrived is kept.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err);
    });
  });
}

/** A keep-alive connection that has been served one request (so the data plane surely holds it). */
function servedConnection(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET /held HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`));
    socket.once('data', () => resolve(socket));
    socket.once('close', () => reject(new Error(`connection to ${port} closed before an answer`)));
    socket.on('error', reject);
  });
}

function suite(kind: DataPlaneKind): void {
  describe(`HTTP edge behaviour through ${kind}`, () => {
    const nodeId = `traffic-http-edge-${kind}`;
    let xds: XdsHarness | undefined;
    let dp: DataPlane | undefined;
    let node: NodeWatch | undefined;
    let echo: Upstream | undefined;
    let ports: Ports;

    const upstream = (): Upstream => {
      assert.ok(echo, 'echo upstream not started');
      return echo;
    };
    const plane = (): DataPlane => {
      assert.ok(dp, `${kind} not started`);
      return dp;
    };
    /** Sends one request and returns the headers the upstream received for it. */
    const seen = async (send: () => Promise<Answer>): Promise<http.IncomingHttpHeaders> => {
      upstream().reset();
      const a = await send();
      assert.equal(a.status, 200, `answer: ${a.body}`);
      const r = upstream().requests;
      assert.equal(r.length, 1, 'one request reached the upstream');
      return (r[0] as { headers: http.IncomingHttpHeaders }).headers;
    };

    before(async () => {
      echo = await startUpstream('echo');
      ports = { plain: await freePort(), remote: await freePort(), strict: await freePort(), capped: await freePort(), echo: echo.port };
      xds = await startXds({ set: resources(ports) });
      const watching = watchNode(xds.server.registry, nodeId);
      node = watching;
      dp = await startDataPlane(kind, { xdsPort: xds.port, nodeId, nodeCluster: 'edge', context: () => watching.describe() });
      await dp.ready();
      await dp.waitFor(
        async () =>
          (await get1(ports.plain, '/ready').catch(() => ({ status: 0, body: '' }))).status === 200 &&
          (await get1(ports.remote, '/ready').catch(() => ({ status: 0, body: '' }))).status === 200 &&
          (await get1(ports.strict, '/ready').catch(() => ({ status: 0, body: '' }))).status === 200 &&
          (await get1(ports.capped, '/ready').catch(() => ({ status: 0, body: '' }))).status === 200,
        {
          what: 'every listener routing to the echo upstream',
          timeoutMs: 20_000,
          intervalMs: 100,
        },
      );
    });

    after(async () => {
      node?.close();
      await dp?.stop();
      await xds?.close();
      await echo?.close();
    });

    it('x-forwarded-for: passed through as sent without use_remote_address; with it, the peer appended (a loopback peer as the host address)', async () => {
      const plainNone = await seen(() => get1(ports.plain, '/xff'));
      assert.equal(plainNone['x-forwarded-for'], undefined, 'no XFF invented without use_remote_address');
      const plainSent = await seen(() => get1(ports.plain, '/xff', { 'x-forwarded-for': '203.0.113.7' }));
      assert.equal(plainSent['x-forwarded-for'], '203.0.113.7');
      // Envoy appends its own host address (first non-loopback IPv4) for a loopback peer.
      const self = hostAddress();
      const remoteNone = await seen(() => get1(ports.remote, '/xff'));
      assert.equal(remoteNone['x-forwarded-for'], self);
      const remoteSent = await seen(() => get1(ports.remote, '/xff', { 'x-forwarded-for': '203.0.113.7' }));
      assert.equal(remoteSent['x-forwarded-for'], `203.0.113.7,${self}`);
      const remoteH2 = await seen(() => get2(ports.remote, { 'x-forwarded-for': '198.51.100.1' }));
      assert.equal(remoteH2['x-forwarded-for'], `198.51.100.1,${self}`);
    });

    it('x-forwarded-proto: from the connection (cleartext: http), never from :scheme; a client value kept only without use_remote_address', async () => {
      const xfp = async (port: number, send: (port: number) => Promise<Answer>): Promise<string | string[] | undefined> =>
        (await seen(() => send(port)))['x-forwarded-proto'];
      for (const port of [ports.plain, ports.remote]) {
        assert.equal(await xfp(port, (p) => get1(p, '/xfp')), 'http', `HTTP/1.1 on ${port}`);
        assert.equal(await xfp(port, (p) => get2(p, { ':scheme': 'https' })), 'http', `h2c with :scheme https on ${port}`);
      }
      // The client is trusted to name the protocol unless the data plane is the edge (use_remote_address, 0 trusted hops).
      assert.equal(await xfp(ports.plain, (p) => get1(p, '/xfp', { 'x-forwarded-proto': 'https' })), 'https');
      assert.equal(await xfp(ports.plain, (p) => get2(p, { 'x-forwarded-proto': 'https' })), 'https');
      assert.equal(await xfp(ports.remote, (p) => get1(p, '/xfp', { 'x-forwarded-proto': 'https' })), 'http');
      assert.equal(await xfp(ports.remote, (p) => get2(p, { ':scheme': 'https', 'x-forwarded-proto': 'https' })), 'http');
    });

    it('strips hop-by-hop headers and the headers named in Connection:', async () => {
      const h = await seen(() =>
        get1(ports.plain, '/hop', {
          connection: 'keep-alive, x-hop-secret, X-Other-Hop',
          'keep-alive': 'timeout=5',
          'proxy-connection': 'keep-alive',
          'x-hop-secret': 'do not forward',
          'x-other-hop': 'nor this',
          'x-end-to-end': 'forward me',
        }),
      );
      assert.equal(h['x-end-to-end'], 'forward me');
      for (const name of ['x-hop-secret', 'x-other-hop', 'keep-alive', 'proxy-connection']) {
        assert.equal(h[name], undefined, `${name} reached the upstream: ${JSON.stringify(h)}`);
      }
    });

    it('a route regex catastrophic for backtracking, (a+)+, answers at once; admin stays responsive', async () => {
      const matched = await get1(ports.plain, `/redos/${'a'.repeat(40)}`);
      assert.equal(matched.body, 'regex matched');
      // 'a' x 40 + '!': no match, but a backtracking engine tries 2^40 ways first.
      const evil = get1(ports.plain, `/redos/${'a'.repeat(40)}!`);
      const admin = await plane().admin('/ready');
      assert.match(admin, /LIVE/);
      const answer = await evil;
      assert.equal(answer.status, 200, 'fell through to the echo route');
      assert.match(answer.body, /"upstream":"echo"/);
      assert.match(await plane().admin('/ready'), /LIVE/);
    });

    it('request_headers_timeout: a client stalling inside its request line gets 408 and the connection closes', async () => {
      const before = (await plane().stat('http.strict.downstream_rq_header_timeout')) ?? 0;
      const started = Date.now();
      const { data, closed } = await rawExchange(ports.strict, 'GET /half-a-request-li');
      assert.ok(closed, 'the data plane closed the connection');
      assert.match(data, /^HTTP\/1\.1 408 /, `answer: ${JSON.stringify(data)}`);
      assert.match(data, /request header timeout$/);
      assert.ok(Date.now() - started >= 400, 'not before the timeout');
      await plane().waitFor(async () => ((await plane().stat('http.strict.downstream_rq_header_timeout')) ?? 0) === before + 1, {
        what: 'http.strict.downstream_rq_header_timeout to count the timeout',
      });
    });

    it('stream_idle_timeout: a request body that stalls gets 408 "stream timeout" over HTTP/1.1 and HTTP/2', async () => {
      const before = (await plane().stat('http.strict.downstream_rq_idle_timeout')) ?? 0;
      const h1 = await rawExchange(ports.strict, `POST /upload HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: 100\r\n\r\n0123456789`);
      assert.match(h1.data, /^HTTP\/1\.1 408 /, `answer: ${JSON.stringify(h1.data)}`);
      assert.match(h1.data, /stream timeout$/);
      assert.ok(h1.closed, 'the connection closes (the rest of the body would be read as a request)');
      const h2 = await new Promise<Answer>((resolve, reject) => {
        const session = http2.connect(`http://127.0.0.1:${ports.strict}`);
        session.on('error', reject);
        const req = session.request({ ':method': 'POST', ':path': '/upload', ':authority': HOST }, { endStream: false });
        req.write('0123456789');
        let status = 0;
        let body = '';
        req.setEncoding('utf8');
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (c: string) => (body += c));
        const giveUp = setTimeout(() => {
          session.destroy();
          reject(new Error(`the stalled HTTP/2 stream was not ended in 10 s (status ${status}, body ${JSON.stringify(body)})`));
        }, 10_000);
        req.on('close', () => {
          clearTimeout(giveUp);
          session.close();
          resolve({ status, body });
        });
      });
      assert.deepEqual(h2, { status: 408, body: 'stream timeout' });
      await plane().waitFor(async () => ((await plane().stat('http.strict.downstream_rq_idle_timeout')) ?? 0) === before + 2, {
        what: 'http.strict.downstream_rq_idle_timeout to count both',
      });
    });

    // With workers (ts-proxy-c2) each holds its share (1 of 2): the two held connections are handed
    // to different workers (node:cluster gives a new connection to a worker not busy taking one), so
    // the third finds its worker full, as it finds Envoy's shared count full.
    it(`connection_limit: a connection beyond max_connections (${CAP}) is closed unanswered and counted`, async () => {
      const limited = async (): Promise<number> => (await plane().stat('connection_limit.capped.limited_connections')) ?? 0;
      const before = await limited();
      const held = await Promise.all(Array.from({ length: CAP }, () => servedConnection(ports.capped)));
      try {
        const over = await rawExchange(ports.capped, `GET /over HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`);
        assert.deepEqual(over, { data: '', closed: true });
        assert.equal(await limited(), before + 1);
      } finally {
        for (const socket of held) socket.destroy();
      }
      // The closed connections free their places.
      await plane().waitFor(async () => (await get1(ports.capped, '/again').catch(() => ({ status: 0, body: '' }))).status === 200, {
        what: 'the capped listener to take a connection again',
      });
    });

    it('max_request_headers_kb: headers over the limit (8 KiB here) get 431 over HTTP/1.1 and a reset over HTTP/2; under it they pass', async () => {
      const outcome = (p: Promise<Answer>): Promise<string> =>
        p.then(
          (a) => (a.status === 200 ? 'status 200' : `status ${a.status} ${a.body}`),
          (e: NodeJS.ErrnoException) => `error ${e.code ?? ''} ${e.message}`,
        );
      const big = { 'x-big': 'b'.repeat(10 * 1024) };
      const small = { 'x-big': 'b'.repeat(4 * 1024) };
      const h1Big = await outcome(get1(ports.strict, '/big', big));
      const h2Big = await outcome(get2(ports.strict, big));
      const h1Small = await outcome(get1(ports.strict, '/small', small));
      const h2Small = await outcome(get2(ports.strict, small));
      const h1Plain = await outcome(get1(ports.plain, '/big', big));
      const h2Plain = await outcome(get2(ports.plain, big));
      assert.deepEqual(
        { h1Big, h2Big, h1Small, h2Small, h1Plain, h2Plain },
        {
          h1Big: 'status 431 Request Header Fields Too Large',
          h2Big: 'error ERR_HTTP2_STREAM_ERROR Stream closed with error code NGHTTP2_INTERNAL_ERROR',
          h1Small: 'status 200',
          h2Small: 'status 200',
          h1Plain: 'status 200',
          h2Plain: 'status 200',
        },
      );
    });

    it('an HTTP/2 header value with a blank at either end is served, the blanks dropped (RFC 9110 5.5), as Envoy serves it', async () => {
      const h = await seen(() => get2(ports.plain, { 'x-padded': ' value\t' }));
      assert.equal(h['x-padded'], 'value');
    });

    it('the data plane NACKed nothing', () => {
      assert.ok(node);
      assert.equal(node.nacks.length, 0, node.describe());
    });

    it('a route regex RE2 refuses, (a)\\1, is NACKed naming the regex; the last good routes keep serving', async () => {
      assert.ok(xds && node);
      const watching = node;
      const good = resources(ports);
      const routes = good.routes[0] as { virtual_hosts: Array<{ routes: unknown[] }> };
      const badRoutes = {
        ...routes,
        virtual_hosts: [
          {
            ...routes.virtual_hosts[0],
            routes: [{ match: { safe_regex: { regex: '(a)\\1' } }, route: { cluster: 'echo' } }, ...(routes.virtual_hosts[0]?.routes ?? [])],
          },
        ],
      };
      xds.publish({ ...good, routes: [badRoutes as ProtoObject] });
      try {
        const nack = await plane().waitFor(() => watching.nacks.find((n) => n.type === 'RDS'), { what: 'a NACK of the routes with (a)\\1' });
        // Envoy's detail is RE2's own ("invalid escape sequence: \1"); ours also names resource and field.
        assert.match(nack.message, /invalid escape sequence: `?\\1/);
        if (dataPlaneProgram(kind) === 'ts-proxy')
          assert.match(nack.message, /RouteConfiguration 'edge-routes': virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex/);
        const still = await get1(ports.plain, '/still');
        assert.equal(still.status, 200, 'the last good routes serve');
      } finally {
        xds.publish(good);
      }
    });
  });
}

for (const kind of DATA_PLANES) suite(kind);
