/**
 * The HTTP/1.1 connection pool of our proxy (src/proxy/upstream/http1-conn-pool.ts) against real
 * node:http servers on 127.0.0.1: keep-alive reuse, the cluster-wide max_connections limit with
 * its FIFO of pending requests (also across hosts), max_requests_per_connection, the silent retry
 * when the upstream closes a reused keep-alive connection, request bodies, and connect failures.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Http1Pool, type Http1PoolOptions } from '../../../../src/proxy/upstream/http1-conn-pool.js';
import { Host } from '../../../../src/proxy/upstream/host.js';
import { ClusterStats } from '../../../../src/proxy/stats.js';
import type { HeaderMap, UpstreamFailure } from '../../../../src/proxy/upstream/conn-pool.js';
import { freePort } from '../../../support/tmp.js';

interface Upstream {
  readonly host: Host;
  /** Connections accepted so far. */
  connections(): number;
  /** Most connections open at the same time. */
  peak(): number;
  close(): Promise<void>;
}

/** A keep-alive server; `handler` may answer late or not at all. */
async function upstream(handler: (req: http.IncomingMessage, res: http.ServerResponse, nthOnSocket: number) => void): Promise<Upstream> {
  let accepted = 0;
  let open = 0;
  let peak = 0;
  const perSocket = new WeakMap<Socket, number>();
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    handler(req, res, n);
  });
  server.on('connection', (s: Socket) => {
    accepted++;
    open++;
    peak = Math.max(peak, open);
    s.once('close', () => open--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: new Host('127.0.0.1', port),
    connections: () => accepted,
    peak: () => peak,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Outcome {
  readonly status: number;
  readonly body: string;
  readonly headers: HeaderMap;
  readonly failure?: UpstreamFailure;
}

function send(pool: Http1Pool, host: Host, opts: { path?: string; method?: string; body?: string } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    let status = 0;
    let headers: HeaderMap = {};
    const chunks: Buffer[] = [];
    const hasBody = opts.body !== undefined;
    const h: HeaderMap = { host: 'pool.test' };
    if (hasBody) h['content-length'] = String(Buffer.byteLength(opts.body ?? ''));
    const r = pool.request(host, opts.method ?? 'GET', opts.path ?? '/', h, hasBody, {
      onUpstreamHeaders: (s, hs) => {
        status = s;
        headers = hs;
      },
      onUpstreamData: (c) => chunks.push(c),
      onUpstreamTrailers: () => undefined,
      onUpstreamEnd: () => resolve({ status, headers, body: Buffer.concat(chunks).toString() }),
      onUpstreamError: (failure) => resolve({ status, headers, body: '', failure }),
    });
    if (hasBody) {
      r.write(Buffer.from(opts.body ?? ''));
      r.end();
    }
  });
}

function options(over: Partial<Http1PoolOptions> = {}): Http1PoolOptions {
  return { connectTimeoutMs: 1000, maxConnections: 1024, maxRequestsPerConnection: 0, idleTimeoutMs: 60_000, stats: new ClusterStats(), ...over };
}

describe('HTTP/1.1 upstream pool', () => {
  const closers: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  async function pooled(over: Partial<Http1PoolOptions> = {}): Promise<{ pool: Http1Pool; stats: ClusterStats }> {
    const o = options(over);
    const pool = new Http1Pool(o);
    closers.push(() => pool.close());
    return { pool, stats: o.stats };
  }

  it('reuses one keep-alive connection for sequential requests and counts it once', async () => {
    const up = await upstream((req, res) => res.end(`hello ${req.url}`));
    closers.push(() => up.close());
    const { pool, stats } = await pooled();
    for (let i = 0; i < 10; i++) {
      const r = await send(pool, up.host, { path: `/${i}` });
      assert.equal(r.status, 200);
      assert.equal(r.body, `hello /${i}`);
    }
    assert.equal(up.connections(), 1);
    assert.equal(stats.upstream_cx_total, 1);
    assert.equal(stats.upstream_cx_active, 1);
    assert.equal(up.host.cxActive, 1);
  });

  it('keeps to max_connections: extra requests wait as pending, then all are answered', async () => {
    const held: http.ServerResponse[] = [];
    const up = await upstream((_req, res) => held.push(res));
    closers.push(() => up.close());
    const { pool, stats } = await pooled({ maxConnections: 2 });
    const all = Array.from({ length: 5 }, (_, i) => send(pool, up.host, { path: `/${i}` }));
    while (held.length < 2) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(held.length, 2, 'only two requests reach the upstream');
    assert.equal(pool.pending(), 3);
    assert.equal(stats.upstream_cx_overflow, 3);
    // Answer as they come: each freed connection takes the next pending request.
    const answered = (async () => {
      let n = 0;
      while (n < 5) {
        const res = held.shift();
        if (res) {
          res.end('ok');
          n++;
        } else await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const results = await Promise.all(all);
    await answered;
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200, 200, 200, 200],
    );
    assert.equal(up.peak(), 2);
    assert.equal(up.connections(), 2);
    assert.equal(pool.pending(), 0);
  });

  it('applies max_connections to the cluster as a whole: a waiter for another host gets the freed slot', async () => {
    let release: (() => void) | undefined;
    const a = await upstream((_req, res) => {
      release = () => res.end('a');
    });
    const b = await upstream((_req, res) => res.end('b'));
    closers.push(
      () => a.close(),
      () => b.close(),
    );
    const { pool, stats } = await pooled({ maxConnections: 1 });
    const first = send(pool, a.host);
    while (!release) await new Promise((r) => setTimeout(r, 5));
    const second = send(pool, b.host);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(b.connections(), 0, 'host b must wait for the only connection slot');
    assert.equal(pool.pending(), 1);
    release();
    assert.equal((await first).body, 'a');
    assert.equal((await second).body, 'b');
    assert.equal(b.connections(), 1);
    // a's connection was closed to make room: at most one connection at any time.
    assert.equal(stats.upstream_cx_total, 2);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(stats.upstream_cx_active, 1);
  });

  it('closes a connection after max_requests_per_connection requests', async () => {
    const up = await upstream((_req, res) => res.end('ok'));
    closers.push(() => up.close());
    const { pool } = await pooled({ maxRequestsPerConnection: 2 });
    for (let i = 0; i < 5; i++) assert.equal((await send(pool, up.host)).status, 200);
    assert.equal(up.connections(), 3);
  });

  it('retries once, silently, on a fresh connection when the upstream drops a reused keep-alive connection', async () => {
    // The second request on every connection finds it closed, as when the upstream's idle timer fires.
    const up = await upstream((req, res, n) => {
      if (n >= 2) req.socket.destroy();
      else res.end('fresh');
    });
    closers.push(() => up.close());
    const { pool, stats } = await pooled();
    assert.equal((await send(pool, up.host)).body, 'fresh');
    const again = await send(pool, up.host);
    assert.equal(again.failure, undefined);
    assert.equal(again.body, 'fresh');
    assert.equal(up.connections(), 2);
    assert.equal(stats.upstream_cx_total, 2);
  });

  it('does not replay a request that failed on a fresh connection: reset_before_response', async () => {
    const up = await upstream((req) => req.socket.destroy());
    closers.push(() => up.close());
    const { pool } = await pooled();
    const r = await send(pool, up.host);
    assert.equal(r.failure, 'reset_before_response');
    assert.equal(up.connections(), 1);
  });

  it('streams a request body to the upstream', async () => {
    const up = await upstream((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => res.end(`${req.method} ${Buffer.concat(parts).toString()}`));
    });
    closers.push(() => up.close());
    const { pool } = await pooled();
    const r = await send(pool, up.host, { method: 'POST', body: 'x'.repeat(100_000) });
    assert.equal(r.body, `POST ${'x'.repeat(100_000)}`);
  });

  it('on close, drops idle connections at once and busy ones when their response ends', async () => {
    let finish: (() => void) | undefined;
    const up = await upstream((req, res) => {
      if (req.url === '/slow') finish = () => res.end('late');
      else res.end('ok');
    });
    closers.push(() => up.close());
    const { pool, stats } = await pooled();
    await send(pool, up.host);
    const slow = send(pool, up.host, { path: '/slow' });
    while (!finish) await new Promise((r) => setTimeout(r, 5));
    await send(pool, up.host); // a second connection, idle afterwards
    assert.equal(stats.upstream_cx_active, 2);
    pool.close();
    finish();
    assert.equal((await slow).body, 'late');
    const until = Date.now() + 2000;
    while (stats.upstream_cx_active > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(stats.upstream_cx_active, 0);
  });

  it('reports a refused connection as connect_failure on the host', async () => {
    const host = new Host('127.0.0.1', await freePort());
    const { pool, stats } = await pooled();
    const r = await send(pool, host);
    assert.equal(r.failure, 'connect_failure');
    assert.equal(host.cxConnectFail, 1);
    assert.equal(stats.upstream_cx_connect_fail, 1);
    assert.equal(stats.upstream_cx_active, 0);
  });
});
