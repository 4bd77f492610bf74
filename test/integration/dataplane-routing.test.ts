/**
 * Routing features of our data plane, driven by hand-written Envoy resources from a real xDS
 * server (test/support/xds-harness.ts) so each feature is exercised exactly: direct_response,
 * redirect, header / safe_regex / exact-path matches, virtual-host domain order, prefix_rewrite,
 * retries on a flaky upstream (5xx) and on a dead endpoint (connect-failure), the route timeout
 * (504 UT), per-try timeout with previous-hosts, and request mirroring with a percentage (the
 * shadow cluster receives about that share with a `-shadow` Host; the client never sees it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProtoObject, XdsResourceSet } from '../../src/xds/resources.js';
import { startXds, type XdsHarness } from '../support/xds-harness.js';
import { startDataplane, type DataplaneHandle } from '../support/dataplane.js';
import { startUpstream, UPSTREAM_HEADER, type Upstream } from '../support/upstreams.js';
import { binomialBounds } from '../support/traffic.js';
import { freePort } from '../support/tmp.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ADS = { ads: {}, resource_api_version: 'V3' };
const HOST = 'routing.test';

interface Reply {
  status: number;
  upstream: string;
  body: string;
  headers: http.IncomingHttpHeaders;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host: HOST, ...headers }, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const u = res.headers[UPSTREAM_HEADER];
        resolve({ status: res.statusCode ?? 0, upstream: typeof u === 'string' ? u : '', body, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.end();
  });
}

async function many(port: number, path: string, n: number, concurrency = 8): Promise<Reply[]> {
  const out: Reply[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        out.push(await get(port, path));
      }
    }),
  );
  return out;
}

/**
 * An upstream the test scripts: with `failFirst`, the first attempt of every request (told apart
 * by the x-request-id the proxy adds, which retries keep) gets 503; `delayMs` holds answers.
 */
interface Scripted {
  readonly name: string;
  readonly port: number;
  hits: number;
  failFirst: boolean;
  delayMs: number;
  close(): Promise<void>;
}

async function startScripted(name: string): Promise<Scripted> {
  const s: Scripted = { name, port: 0, hits: 0, failFirst: false, delayMs: 0, close: async () => undefined };
  const seen = new Set<string>();
  const server = http.createServer((req, res) => {
    s.hits++;
    const id = String(req.headers['x-request-id'] ?? '');
    const first = !seen.has(id);
    seen.add(id);
    req.resume();
    const answer = (): void => {
      res.setHeader(UPSTREAM_HEADER, name);
      if (s.failFirst && first) {
        res.statusCode = 503;
        res.end('flaky');
      } else res.end(name);
    };
    if (s.delayMs > 0) setTimeout(answer, s.delayMs);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  Object.assign(s, {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  });
  return s;
}

function cluster(name: string, extra: Record<string, unknown> = {}): ProtoObject {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: ADS }, connect_timeout: { seconds: 1 }, lb_policy: 'ROUND_ROBIN', ...extra };
}

function endpoints(name: string, ports: readonly number[]): ProtoObject {
  return {
    cluster_name: name,
    endpoints: [
      {
        locality: {},
        load_balancing_weight: { value: 1 },
        lb_endpoints: ports.map((p) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p } } }, health_status: 'HEALTHY' })),
      },
    ],
  };
}

function listener(port: number): ProtoObject {
  return {
    name: 'edge',
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: 'edge',
              rds: { route_config_name: 'edge-routes', config_source: ADS },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  };
}

const retry5xx = { retry_on: '5xx', num_retries: { value: 3 }, retry_back_off: { base_interval: { nanos: 1_000_000 }, max_interval: { nanos: 5_000_000 } } };

function routes(mirrorPercent: number): ProtoObject {
  return {
    name: 'edge-routes',
    virtual_hosts: [
      {
        name: 'main',
        domains: [HOST],
        routes: [
          { name: 'direct', match: { path: '/direct' }, direct_response: { status: 200, body: { inline_string: 'hello direct' } } },
          { name: 'redirect', match: { prefix: '/old' }, redirect: { host_redirect: 'new.test', path_redirect: '/moved', response_code: 'FOUND' } },
          { match: { prefix: '/hdr', headers: [{ name: 'x-variant', string_match: { exact: 'b' } }] }, route: { cluster: 'b' } },
          { match: { prefix: '/hdr' }, route: { cluster: 'a' } },
          { match: { safe_regex: { regex: '/items/[0-9]+' } }, route: { cluster: 'b' } },
          { match: { path: '/exact' }, route: { cluster: 'b' } },
          { match: { prefix: '/rewrite/' }, route: { cluster: 'a', prefix_rewrite: '/new/' } },
          { match: { prefix: '/flaky-noretry' }, route: { cluster: 'flaky' } },
          { match: { prefix: '/flaky' }, route: { cluster: 'flaky', retry_policy: retry5xx } },
          {
            match: { prefix: '/mixed' },
            route: {
              cluster: 'mixed',
              retry_policy: {
                ...retry5xx,
                retry_on: 'connect-failure',
                retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }],
                host_selection_retry_max_attempts: 3,
              },
            },
          },
          {
            match: { prefix: '/slow-try' },
            route: {
              cluster: 'slowfast',
              timeout: { seconds: 2 },
              retry_policy: {
                ...retry5xx,
                per_try_timeout: { nanos: 150_000_000 },
                retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }],
                host_selection_retry_max_attempts: 5,
              },
            },
          },
          { match: { prefix: '/slow' }, route: { cluster: 'slow', timeout: { nanos: 100_000_000 } } },
          {
            match: { prefix: '/mirror' },
            route: {
              cluster: 'a',
              request_mirror_policies: [{ cluster: 'shadow', runtime_fraction: { default_value: { numerator: mirrorPercent, denominator: 'HUNDRED' } } }],
            },
          },
        ],
      },
      { name: 'suffix', domains: ['*.wild.test'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'suffix' } } }] },
      {
        name: 'longer-suffix',
        domains: ['*.deep.wild.test'],
        routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'longer-suffix' } } }],
      },
      { name: 'prefix', domains: ['pre.*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'prefix' } } }] },
      { name: 'port', domains: ['port.test:8080'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'port' } } }] },
      { name: 'any', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'any' } } }] },
    ],
  };
}

describe('our proxy: routing, retries, timeouts, mirroring', () => {
  let xds: XdsHarness | undefined;
  let dp: DataplaneHandle | undefined;
  let a: Upstream;
  let b: Upstream;
  let shadow: Upstream;
  let flaky: Scripted;
  let slow: Scripted;
  let port = 0;
  let set: (mirror: number) => XdsResourceSet;

  const proxy = (): DataplaneHandle => {
    assert.ok(dp, 'proxy not started');
    return dp;
  };

  before(async () => {
    [a, b, shadow] = await Promise.all([startUpstream('a'), startUpstream('b'), startUpstream('shadow')]);
    [flaky, slow] = await Promise.all([startScripted('flaky'), startScripted('slow')]);
    const dead = await freePort();
    set = (mirror) => ({
      // Retries run concurrently here; Envoy's default retry budget (max_retries 3) would turn some into 503s.
      clusters: ['a', 'b', 'shadow', 'flaky', 'slow', 'slowfast', 'mixed'].map((n) =>
        cluster(n, { circuit_breakers: { thresholds: [{ max_retries: { value: 100 } }] } }),
      ),
      endpoints: [
        endpoints('a', [a.port]),
        endpoints('b', [b.port]),
        endpoints('shadow', [shadow.port]),
        endpoints('flaky', [flaky.port]),
        endpoints('slow', [slow.port]),
        endpoints('slowfast', [slow.port, a.port]),
        endpoints('mixed', [dead, a.port]),
      ],
      listeners: [listener(0)],
      routes: [routes(mirror)],
    });
    xds = await startXds({ set: set(25) });
    dp = await startDataplane({ xdsPort: xds.port, nodeId: 'dataplane-routing', nodeCluster: 'edge' });
    await dp.proxy.whenLive(20_000);
    port = dp.proxy.listenerPort('edge') ?? 0;
  });

  after(async () => {
    agent.destroy();
    await dp?.stop();
    await xds?.close();
    await Promise.all([a?.close(), b?.close(), shadow?.close(), flaky?.close(), slow?.close()]);
  });

  it('answers direct_response and redirect routes itself', async () => {
    const d = await get(port, '/direct');
    assert.equal(d.status, 200);
    assert.equal(d.body, 'hello direct');
    const r = await get(port, '/old/page');
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, 'http://new.test/moved');
  });

  it('matches headers, safe_regex and exact paths in route order', async () => {
    assert.equal((await get(port, '/hdr', { 'x-variant': 'b' })).upstream, 'b');
    assert.equal((await get(port, '/hdr', { 'x-variant': 'c' })).upstream, 'a');
    assert.equal((await get(port, '/items/42')).upstream, 'b');
    // safe_regex must match the whole path (query excluded); no route of the virtual host matches -> 404.
    assert.equal((await get(port, '/items/42x')).status, 404);
    assert.equal((await get(port, '/exact?q=1')).upstream, 'b');
    assert.equal((await get(port, '/exact/more')).status, 404);
  });

  it('picks virtual hosts like Envoy: exact, longest *.suffix, prefix.*, port-aware, then *', async () => {
    const body = async (host: string): Promise<string> => (await get(port, '/', { host })).body;
    assert.equal(await body('x.wild.test'), 'suffix');
    assert.equal(await body('x.deep.wild.test'), 'longer-suffix');
    assert.equal(await body('pre.anything'), 'prefix');
    assert.equal(await body('port.test:8080'), 'port');
    assert.equal(await body('port.test'), 'any');
    assert.equal(await body('elsewhere.test'), 'any');
  });

  it('rewrites the path prefix and tells the upstream the original path', async () => {
    a.reset();
    const r = await get(port, '/rewrite/thing?x=1');
    assert.equal(r.status, 200);
    assert.equal(a.requests.at(-1)?.path, '/new/thing?x=1');
  });

  it('retries 5xx from a flaky upstream: the client sees only 200s', async () => {
    flaky.failFirst = true;
    flaky.hits = 0;
    const replies = await many(port, '/flaky', 100);
    assert.deepEqual([...new Set(replies.map((r) => r.status))], [200], 'every request succeeded after one retry');
    const st = await proxy().stats('cluster\\.flaky\\.');
    assert.equal(st.get('cluster.flaky.upstream_rq_retry'), 100, 'one retry per request');
    assert.equal(st.get('cluster.flaky.upstream_rq_retry_success'), 100);
    assert.equal(st.get('cluster.flaky.upstream_rq_503'), 100, 'the failed attempts are counted per attempt');
    assert.equal(st.get('cluster.flaky.upstream_rq_200'), 100);
    assert.equal(flaky.hits, 200, 'one upstream hit per attempt');
    // The same upstream without a retry policy: its 503s reach the client.
    const plain = await many(port, '/flaky-noretry', 40);
    assert.deepEqual([...new Set(plain.map((r) => r.status))], [503], 'without retries the 503s pass through');
    assert.deepEqual([...new Set(plain.map((r) => r.body))], ['flaky'], "the client gets the upstream's own 503");
    flaky.failFirst = false;
  });

  it('retries connect failures on another endpoint (connect-failure)', async () => {
    const replies = await many(port, '/mixed', 40);
    assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
    assert.deepEqual([...new Set(replies.map((r) => r.upstream))], ['a']);
    const st = await proxy().stats('cluster\\.mixed\\.');
    assert.ok((st.get('cluster.mixed.upstream_cx_connect_fail') ?? 0) > 0, JSON.stringify([...st]));
    assert.ok((st.get('cluster.mixed.upstream_rq_retry') ?? 0) > 0);
  });

  it('ends a request at the route timeout with 504 (UT)', async () => {
    slow.delayMs = 400;
    const started = Date.now();
    const r = await get(port, '/slow');
    const took = Date.now() - started;
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.ok(took < 350, `answered at the 100 ms timeout, not after the upstream's 400 ms (${took} ms)`);
    assert.ok(((await proxy().stats('cluster\\.slow\\.upstream_rq_timeout')).get('cluster.slow.upstream_rq_timeout') ?? 0) >= 1);
  });

  it('retries a per-try timeout on a different host (previous_hosts)', async () => {
    slow.delayMs = 1000;
    const replies = await many(port, '/slow-try', 10, 2);
    assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
    assert.deepEqual([...new Set(replies.map((r) => r.upstream))], ['a']);
    const st = await proxy().stats('cluster\\.slowfast\\.');
    assert.ok((st.get('cluster.slowfast.upstream_rq_per_try_timeout') ?? 0) >= 1, JSON.stringify([...st]));
    slow.delayMs = 0;
  });

  it('mirrors about 25% of requests to the shadow cluster with a -shadow Host; the client never sees them', async () => {
    shadow.reset();
    const n = 800;
    const replies = await many(port, '/mirror/x', n);
    assert.equal(replies.filter((r) => r.status === 200 && r.upstream === 'a').length, n, 'every reply came from the primary');
    // Shadows are fire-and-forget: wait until none is in flight.
    await proxy().waitFor(async () => (await proxy().stats('cluster\\.shadow\\.upstream_rq_active')).get('cluster.shadow.upstream_rq_active') === 0, {
      what: 'shadow requests to finish',
    });
    const got = shadow.requests.length;
    const { low, high } = binomialBounds(n, 0.25);
    assert.ok(got >= low && got <= high, `shadow received ${got}/${n}, expected within [${low.toFixed(0)}, ${high.toFixed(0)}]`);
    for (const r of shadow.requests) assert.equal(r.host, `${HOST}-shadow`);
  });
});
