/**
 * HTTP/1.1 upstream connections of one cluster, pooled with keep-alive. In: a host, method,
 * path, headers and the caller's callbacks. Out: an UpstreamRequest; connection counters
 * (cx_total / cx_active / cx_destroy / cx_connect_fail / cx_connect_timeout / cx_overflow) on the
 * cluster and host.
 *
 * Each connection is one undici Client (pipelining 1: one request at a time). undici rather than
 * node:http's Agent because the proxy's CPU per request is the product here: on this machine a
 * keep-alive GET costs about 95 us of client CPU through http.request + Agent and about 38 us
 * through undici's dispatch (see docs/benchmarks.md, "TS data plane vs Envoy"). The pool
 * itself is ours so that Envoy's circuit-breaker semantics hold for the whole cluster:
 *  - max_connections caps the connections of all hosts together; beyond it a request waits
 *    "pending" (FIFO) for a connection to come free, bounded by max_pending_requests in
 *    cluster.ts;
 *  - max_requests_per_connection closes a connection after that many requests;
 *  - idle connections are reused last-in first-out, so warm ones stay warm and the others reach
 *    the idle timeout.
 *
 * A request that fails on a reused keep-alive connection before any response byte (the upstream
 * closed it idle while we picked it) is retried once on a fresh connection when it has no body,
 * like any keep-alive client must; that is not a policy retry.
 */
import { PassThrough } from 'node:stream';
import { Client, util, type Dispatcher } from 'undici';
import type { ClusterStats } from '../stats.js';
import type { UpstreamTlsModel } from '../config/tls-context.js';
import { upstreamTlsOptions } from './upstream-connect.js';
import type { Host } from './host.js';
import type { HeaderMap, UpstreamCallbacks, UpstreamFailure, UpstreamRequest } from './conn-pool.js';

export interface Http1PoolOptions {
  readonly connectTimeoutMs: number;
  readonly maxConnections: number;
  /** 0: no limit. */
  readonly maxRequestsPerConnection: number;
  /** 0: never time out. */
  readonly idleTimeoutMs: number;
  readonly stats: ClusterStats;
  /** The cluster's TLS to its hosts; undefined: plaintext. */
  readonly tls?: UpstreamTlsModel | undefined;
}

/** Over TLS, offer HTTP/1.1 by ALPN (as Envoy's HTTP/1 pools do). */
const H1_ALPN = ['http/1.1'] as const;

/** The longest timer Node allows; stands in for "no idle timeout". */
const NO_TIMEOUT_MS = 2 ** 31 - 1;

/** One upstream connection (an undici Client that only ever runs one request at a time). */
class Conn {
  /** Requests written to the current socket; > 0 when one is written means the socket is reused. */
  onSocket = 0;
  /** Requests started over the Conn's life (max_requests_per_connection). */
  served = 0;
  socketOpen = false;
  busy = false;
  closed = false;

  constructor(
    readonly client: Client,
    readonly host: Host,
    /** The TLS settings it was opened with ('' plaintext): other settings retire it. */
    readonly tlsKey: string,
  ) {}
}

export class Http1Pool {
  private options: Http1PoolOptions;
  /** Idle connections per host, most recently used last. */
  private readonly idle = new Map<Host, Conn[]>();
  /** Connections that exist (busy or idle): what max_connections limits. */
  private conns = 0;
  /** Requests waiting for a connection, oldest first. */
  private readonly waiting: Http1Request[] = [];
  private closed = false;

  constructor(options: Http1PoolOptions) {
    this.options = options;
  }

  /** New limits apply from now on; connections above a lowered limit close as they come free. */
  update(options: Http1PoolOptions): void {
    const idleChanged = options.idleTimeoutMs !== this.options.idleTimeoutMs;
    const tlsChanged = options.tls?.key !== this.options.tls?.key;
    this.options = options;
    // Idle connections carry the old idle timeout (or TLS): let them go, busy ones finish their request.
    if (idleChanged || tlsChanged) this.closeIdle();
    this.serveWaiting();
  }

  /** Requests waiting for a connection (pending, in Envoy's terms). */
  pending(): number {
    return this.waiting.length;
  }

  request(host: Host, method: string, path: string, headers: HeaderMap, hasBody: boolean, cb: UpstreamCallbacks): UpstreamRequest {
    const r = new Http1Request(this, host, method, path, headers, hasBody, cb);
    const conn = this.acquire(host);
    if (conn) r.dispatch(conn);
    else {
      // The connection circuit breaker is open: the request waits (Envoy: upstream_cx_overflow).
      this.options.stats.upstream_cx_overflow++;
      this.waiting.push(r);
    }
    return r;
  }

  get connectTimeoutMs(): number {
    return this.options.connectTimeoutMs;
  }

  /** An idle connection to `host`, or a new one while under max_connections. */
  private acquire(host: Host): Conn | undefined {
    const list = this.idle.get(host);
    const conn = list?.pop();
    if (conn) return conn;
    return this.conns < this.options.maxConnections ? this.open(host) : undefined;
  }

  private open(host: Host): Conn {
    const o = this.options;
    const idleMs = o.idleTimeoutMs > 0 ? Math.min(o.idleTimeoutMs, NO_TIMEOUT_MS) : NO_TIMEOUT_MS;
    const tls = o.tls;
    const client = new Client(`${tls ? 'https' : 'http'}://${host.key}`, {
      pipelining: 1,
      connect: { timeout: o.connectTimeoutMs, ...(tls ? upstreamTlsOptions(tls, host.address, host.port, H1_ALPN) : {}) },
      // The router owns request timeouts (route timeout, per-try timeout).
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: idleMs,
      keepAliveMaxTimeout: idleMs,
    });
    const conn = new Conn(client, host, tls?.key ?? '');
    this.conns++;
    const stats = o.stats;
    client.on('connect', () => {
      conn.socketOpen = true;
      conn.onSocket = 0;
      stats.upstream_cx_total++;
      stats.upstream_cx_active++;
      host.cxTotal++;
      host.cxActive++;
    });
    client.on('disconnect', () => {
      if (conn.socketOpen) {
        conn.socketOpen = false;
        stats.upstream_cx_active--;
        stats.upstream_cx_destroy++;
        host.cxActive--;
      }
      // An idle connection the upstream (or our idle timeout) closed gives its slot back.
      if (!conn.busy) this.discard(conn);
    });
    // Counted per connection attempt, as Envoy does (however many requests were waiting on it).
    client.on('connectionError', (_origin: unknown, _targets: unknown, err: Error & { code?: string }) => {
      stats.upstream_cx_connect_fail++;
      if (err.code === 'UND_ERR_CONNECT_TIMEOUT') stats.upstream_cx_connect_timeout++;
      host.cxConnectFail++;
    });
    return conn;
  }

  /** The request on `conn` is over; `reusable`: it ended cleanly with a complete response. */
  release(conn: Conn, reusable: boolean): void {
    conn.busy = false;
    const o = this.options;
    const spent = (o.maxRequestsPerConnection > 0 && conn.served >= o.maxRequestsPerConnection) || conn.tlsKey !== (o.tls?.key ?? '');
    if (!reusable || spent || !conn.socketOpen || this.closed || this.conns > o.maxConnections) {
      this.discard(conn);
      return;
    }
    const next = this.waiting[0];
    if (next) {
      if (next.host === conn.host) {
        this.waiting.shift();
        next.dispatch(conn);
      } else {
        // The oldest waiter is for another host: it gets this connection's slot.
        this.discard(conn);
      }
      return;
    }
    let list = this.idle.get(conn.host);
    if (!list) {
      list = [];
      this.idle.set(conn.host, list);
    }
    list.push(conn);
  }

  /** Closes a connection and frees its slot for whoever waits. */
  private discard(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    this.conns--;
    const list = this.idle.get(conn.host);
    if (list) {
      const i = list.indexOf(conn);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.idle.delete(conn.host);
    }
    void conn.client.destroy().catch(() => undefined);
    this.serveWaiting();
  }

  /** Hands free slots to waiting requests. */
  private serveWaiting(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0] as Http1Request;
      const conn = this.acquire(next.host);
      if (!conn) return;
      this.waiting.shift();
      next.dispatch(conn);
    }
  }

  /** Runs `r` again on a new connection (its reused one broke before the response). */
  retryFresh(r: Http1Request): void {
    if (this.conns < this.options.maxConnections) r.dispatch(this.open(r.host));
    else this.waiting.unshift(r);
  }

  /** A waiting request gave up before it got a connection. */
  cancel(r: Http1Request): void {
    const i = this.waiting.indexOf(r);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  private closeIdle(): void {
    for (const list of [...this.idle.values()]) for (const c of [...list]) this.discard(c);
  }

  /** Cluster removed: idle connections close now, busy ones when their request ends. */
  close(): void {
    this.closed = true;
    this.waiting.length = 0;
    this.closeIdle();
  }
}

/** undici errors that mean "the connection broke", as opposed to a refused or slow connect. */
function isSocketReset(err: Error & { code?: string }): boolean {
  return err.code === 'UND_ERR_SOCKET' || err.code === 'ECONNRESET' || err.code === 'EPIPE';
}

class Http1Request implements UpstreamRequest, Dispatcher.DispatchHandler {
  private conn: Conn | undefined;
  private body: PassThrough | undefined;
  private abortFn: ((err?: Error) => void) | undefined;
  private resumeFn: (() => void) | undefined;
  /** The socket is connected and the request is being written (undici called onConnect). */
  private connected = false;
  private reused = false;
  private replayed = false;
  private gotHeaders = false;
  private paused = false;
  private done = false;

  constructor(
    private readonly pool: Http1Pool,
    readonly host: Host,
    private readonly method: string,
    private readonly path: string,
    private readonly headers: HeaderMap,
    private readonly hasBody: boolean,
    private readonly cb: UpstreamCallbacks,
  ) {
    if (hasBody) this.body = new PassThrough();
  }

  /** Runs the request on `conn` (called at once, or when a connection comes free). */
  dispatch(conn: Conn): void {
    this.conn = conn;
    conn.busy = true;
    conn.served++;
    this.reused = false;
    this.connected = false;
    conn.client.dispatch(
      {
        method: this.method as Dispatcher.HttpMethod,
        path: this.path,
        headers: this.headers as Record<string, string | string[]>,
        body: this.body ?? null,
      },
      this,
    );
  }

  // ---- undici's handler ----

  onConnect(abort: (err?: Error) => void): void {
    if (this.done) {
      abort();
      return;
    }
    this.abortFn = abort;
    this.connected = true;
    const conn = this.conn;
    if (conn) this.reused = conn.onSocket++ > 0;
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    if (this.done) return false;
    // 1xx interim responses (100 Continue) are not forwarded.
    if (statusCode < 200) return true;
    this.gotHeaders = true;
    this.resumeFn = resume;
    this.cb.onUpstreamHeaders(statusCode, util.parseHeaders(raw), false);
    return !this.paused;
  }

  onData(chunk: Buffer): boolean {
    if (this.done) return false;
    this.cb.onUpstreamData(chunk);
    return !this.paused;
  }

  onComplete(trailers: string[] | null): void {
    if (this.done) return;
    this.done = true;
    const conn = this.conn as Conn;
    this.conn = undefined;
    this.pool.release(conn, true);
    if (trailers && trailers.length > 0) this.cb.onUpstreamTrailers(util.parseHeaders(trailers));
    this.cb.onUpstreamEnd();
  }

  onError(err: Error & { code?: string }): void {
    const conn = this.conn;
    if (conn) {
      this.conn = undefined;
      this.pool.release(conn, false);
    }
    if (this.done) return;
    if (this.gotHeaders) {
      this.fail('reset_after_response', err);
      return;
    }
    // A keep-alive socket the upstream closed under us: one silent retry on a new connection.
    if (this.reused && !this.hasBody && !this.replayed && isSocketReset(err)) {
      this.replayed = true;
      this.abortFn = undefined;
      this.pool.retryFresh(this);
      return;
    }
    let failure: UpstreamFailure;
    if (err.code === 'UND_ERR_INVALID_ARG' || err.code === 'UND_ERR_NOT_SUPPORTED') failure = 'reset_before_response';
    else if (err.code === 'UND_ERR_CONNECT_TIMEOUT') failure = 'connect_timeout';
    else if (!this.connected) failure = 'connect_failure';
    else failure = 'reset_before_response';
    this.fail(failure, err);
  }

  private fail(failure: UpstreamFailure, err: Error | undefined): void {
    this.done = true;
    this.cb.onUpstreamError(failure, err);
  }

  // ---- UpstreamRequest ----

  write(chunk: Buffer): boolean {
    return this.body ? this.body.write(chunk) : true;
  }

  end(): void {
    this.body?.end();
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    if (!this.conn) this.pool.cancel(this);
    // Aborted while connecting or waiting: the connection is of no further use to this request.
    // Before onConnect there is nothing to abort yet; onConnect aborts as soon as it comes.
    this.abortFn?.(new Error('request aborted'));
    this.body?.destroy();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeFn?.();
  }

  onDrain(cb: () => void): void {
    if (this.body) this.body.once('drain', cb);
    else cb();
  }
}
