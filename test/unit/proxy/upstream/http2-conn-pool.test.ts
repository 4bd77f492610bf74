/**
 * The HTTP/2 upstream pool of our proxy (src/proxy/upstream/http2-conn-pool.ts) against a real
 * node:http2 server on 127.0.0.1: streams share one connection, max_requests_per_connection
 * moves new streams to a fresh connection and closes the spent one, and a connection at its
 * stream limit (max_concurrent_streams) makes the pool open another (seed 002), and idle_timeout
 * closes a connection only once no stream is active.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Http2HostPool } from '../../../../src/proxy/upstream/http2-conn-pool.js';
import { Host } from '../../../../src/proxy/upstream/host.js';
import { ClusterStats } from '../../../../src/proxy/stats.js';
import { freePort } from '../../../support/ports.js';

describe('HTTP/2 upstream pool', () => {
  let sessions = 0;
  const server = http2.createServer();
  server.on('session', () => sessions++);
  /** Streams held open by the server until the test releases them (0: answer at once). */
  let holdUntil: Promise<void> | undefined;
  server.on('stream', (stream) => {
    const answer = (): void => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200 });
      stream.end('ok');
    };
    if (holdUntil) void holdUntil.then(answer);
    else answer();
  });
  const ready = new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** One GET through the pool; resolves with the status. */
  const get = (pool: Http2HostPool): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      let s = 0;
      pool.request({ ':method': 'GET', ':path': '/', ':authority': 'h2.test', ':scheme': 'http' }, true, {
        onUpstreamHeaders: (st) => (s = st),
        onUpstreamData: () => undefined,
        onUpstreamTrailers: () => undefined,
        onUpstreamEnd: () => resolve(s),
        onUpstreamError: (f) => reject(new Error(f)),
      });
    });

  async function run(limit: number, n: number): Promise<{ sessions: number; stats: ClusterStats }> {
    const host = new Host('127.0.0.1', await ready);
    const stats = new ClusterStats();
    const pool = new Http2HostPool(host, { connectTimeoutMs: 1000, maxConcurrentStreams: 100, maxRequestsPerConnection: limit, idleTimeoutMs: 60_000, stats });
    const before = sessions;
    for (let i = 0; i < n; i++) {
      assert.equal(await get(pool), 200);
    }
    pool.destroy();
    return { sessions: sessions - before, stats };
  }

  it('carries sequential requests on one connection', async () => {
    assert.equal((await run(0, 5)).sessions, 1);
  });

  it('opens a new connection after max_requests_per_connection streams', async () => {
    const r = await run(2, 5);
    assert.equal(r.sessions, 3);
    assert.equal(r.stats.upstream_cx_total, 3);
  });

  it('opens another connection when one reaches max_concurrent_streams', async () => {
    const host = new Host('127.0.0.1', await ready);
    const stats = new ClusterStats();
    const pool = new Http2HostPool(host, { connectTimeoutMs: 1000, maxConcurrentStreams: 2, maxRequestsPerConnection: 0, idleTimeoutMs: 60_000, stats });
    let release = (): void => undefined;
    holdUntil = new Promise((resolve) => (release = resolve));
    const before = sessions;
    try {
      const answers = Array.from({ length: 7 }, () => get(pool));
      // 7 streams in flight, 2 per connection: 4 connections.
      assert.equal(stats.upstream_cx_total, 4);
      release();
      assert.deepEqual(await Promise.all(answers), [200, 200, 200, 200, 200, 200, 200]);
      assert.equal(sessions - before, 4);
    } finally {
      holdUntil = undefined;
      pool.destroy();
    }
  });

  it('idle_timeout: keeps a connection whose stream outlasts it, closes it once no stream is active', async () => {
    const host = new Host('127.0.0.1', await ready);
    const stats = new ClusterStats();
    const pool = new Http2HostPool(host, { connectTimeoutMs: 1000, maxConcurrentStreams: 100, maxRequestsPerConnection: 0, idleTimeoutMs: 150, stats });
    let release = (): void => undefined;
    holdUntil = new Promise((resolve) => (release = resolve));
    try {
      const answer = get(pool);
      // The server holds the response for three idle timeouts: the connection must stay.
      await new Promise((r) => setTimeout(r, 450));
      assert.equal(stats.upstream_cx_destroy, 0);
      release();
      assert.equal(await answer, 200);
      const ended = performance.now();
      while (stats.upstream_cx_destroy === 0 && performance.now() - ended < 5000) await new Promise((r) => setTimeout(r, 10));
      assert.equal(stats.upstream_cx_destroy, 1, 'closed after idle_timeout with no stream active');
      assert.ok(performance.now() - ended >= 140, 'not before idle_timeout');
      // A later request opens a new connection.
      assert.equal(await get(pool), 200);
      assert.equal(stats.upstream_cx_total, 2);
    } finally {
      holdUntil = undefined;
      pool.destroy();
    }
  });
});

/**
 * How the pool names what went wrong (the router's retry_on and its stats hang on these): a
 * refused connect, the server's REFUSED_STREAM (safe to retry), a reset or a lost connection
 * before the response head, and a reset after it. Also what reaches the router of a good
 * response: 1xx heads dropped, trailers passed on.
 */
describe('HTTP/2 upstream pool: failure classification and response parts', () => {
  const server = http2.createServer();
  const sessions: http2.ServerHttp2Session[] = [];
  server.on('session', (s) => sessions.push(s));
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    switch (headers[':path']) {
      case '/refuse':
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      case '/reset-before':
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        return;
      case '/reset-after':
        stream.respond({ ':status': 200 });
        // destroy(err): RST_STREAM INTERNAL_ERROR with the body unfinished (close() would end it first).
        stream.write('part', () => stream.destroy(new Error('server gives up')));
        return;
      case '/lost-after':
        stream.respond({ ':status': 200 });
        stream.write('part', () => stream.session?.destroy());
        return;
      case '/lost-before':
        stream.session?.destroy();
        return;
      default:
        stream.additionalHeaders({ ':status': 100 });
        stream.respond({ ':status': 201, 'x-h': 'v' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end('body');
    }
  });
  const ready = new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  after(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  );

  interface Outcome {
    statuses: number[];
    body: string;
    trailers: Record<string, unknown> | undefined;
    failure: string | undefined;
  }

  async function exchange(port: number, path: string): Promise<{ outcome: Outcome; stats: ClusterStats }> {
    const stats = new ClusterStats();
    const pool = new Http2HostPool(new Host('127.0.0.1', port), {
      connectTimeoutMs: 2000,
      maxConcurrentStreams: 100,
      maxRequestsPerConnection: 0,
      idleTimeoutMs: 60_000,
      stats,
    });
    try {
      const outcome = await new Promise<Outcome>((resolve) => {
        const o: Outcome = { statuses: [], body: '', trailers: undefined, failure: undefined };
        pool.request({ ':method': 'GET', ':path': path, ':authority': 'h2.test', ':scheme': 'http' }, true, {
          onUpstreamHeaders: (st) => o.statuses.push(st),
          onUpstreamData: (c) => (o.body += c.toString()),
          onUpstreamTrailers: (t) => (o.trailers = { ...t }),
          onUpstreamEnd: () => resolve(o),
          onUpstreamError: (f) => {
            o.failure = f;
            resolve(o);
          },
        });
      });
      return { outcome, stats };
    } finally {
      pool.destroy();
    }
  }

  it('connect_failure when nothing listens (and upstream_cx_connect_fail counts it)', async () => {
    const { outcome, stats } = await exchange(await freePort(), '/');
    assert.equal(outcome.failure, 'connect_failure');
    assert.equal(stats.upstream_cx_connect_fail, 1);
  });

  it("refused_stream on the server's RST_STREAM REFUSED_STREAM", async () => {
    assert.equal((await exchange(await ready, '/refuse')).outcome.failure, 'refused_stream');
  });

  it('reset_before_response on another RST_STREAM before the head, and on a connection lost after connecting', async () => {
    assert.equal((await exchange(await ready, '/reset-before')).outcome.failure, 'reset_before_response');
    assert.equal((await exchange(await ready, '/lost-before')).outcome.failure, 'reset_before_response');
  });

  it('reset_after_response on a RST_STREAM, or a connection lost, after the head', async () => {
    for (const path of ['/reset-after', '/lost-after']) {
      const { outcome } = await exchange(await ready, path);
      assert.deepEqual(outcome.statuses, [200], path);
      assert.equal(outcome.failure, 'reset_after_response', path);
    }
  });

  it('drops a 100 head, passes the final head, the body and the trailers', async () => {
    const { outcome } = await exchange(await ready, '/ok');
    assert.equal(outcome.failure, undefined);
    assert.deepEqual(outcome.statuses, [201]);
    assert.equal(outcome.body, 'body');
    assert.deepEqual(outcome.trailers, { 'grpc-status': '0' });
  });
});
