/**
 * HTTP/2 upstream connections of one host (clusters whose HttpProtocolOptions ask for HTTP/2,
 * e.g. gRPC). In: request headers (pseudo headers included) and the caller's callbacks. Out: one
 * stream per request on a shared connection; a second connection opens only when the first has
 * no stream capacity left (the peer's SETTINGS_MAX_CONCURRENT_STREAMS or the cluster's limit) or
 * is going away.
 *
 * Balancing happens before this: the cluster's load balancer picks a host for every request,
 * and the request becomes a stream on that host's connection. A downstream connection carrying
 * many gRPC calls is therefore spread over all hosts (seed 003), never pinned to one.
 */
import http2 from 'node:http2';
import type { Host } from './host.js';
import { connectUpstream } from './upstream-connect.js';
import type { HeaderMap, HostHttp2Pool, Http2Limits, UpstreamCallbacks, UpstreamFailure, UpstreamRequest } from './conn-pool.js';

interface Conn {
  readonly session: http2.ClientHttp2Session;
  connected: boolean;
  goingAway: boolean;
  active: number;
  /** Streams started over the connection's life (max_requests_per_connection). */
  started: number;
  /** Reached max_requests_per_connection: close when the last stream ends. */
  spent: boolean;
  /**
   * Armed while no stream is active: closes the connection after idle_timeout (Envoy counts it
   * from the last stream's end). Not session.setTimeout: node refreshes that timer on every frame
   * of every stream, a timer-list insert per read and write under load.
   */
  idleTimer: NodeJS.Timeout | undefined;
  readonly idleTimeoutMs: number;
}

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;
/** Over TLS the server must agree to HTTP/2 (Envoy's HTTP/2 pools offer h2 likewise). */
const H2_ALPN = ['h2'] as const;

export class Http2HostPool implements HostHttp2Pool {
  private conns: Conn[] = [];

  constructor(
    private readonly host: Host,
    private limits: Http2Limits,
  ) {}

  update(limits: Http2Limits): void {
    const tlsChanged = limits.tls?.key !== this.limits.tls?.key;
    this.limits = limits;
    // Other TLS settings: connections made with the old ones take no new streams and close when done.
    if (tlsChanged) {
      for (const c of this.conns) {
        c.goingAway = true;
        c.spent = true;
        if (c.active === 0) c.session.close();
      }
    }
  }

  private capacity(c: Conn): number {
    const remote = c.session.remoteSettings?.maxConcurrentStreams ?? 2 ** 31 - 1;
    return Math.min(remote, this.limits.maxConcurrentStreams);
  }

  private connection(): Conn {
    for (const c of this.conns) {
      if (!c.goingAway && !c.session.destroyed && c.active < this.capacity(c)) return c;
    }
    return this.connect();
  }

  private connect(): Conn {
    const { stats, connectTimeoutMs, idleTimeoutMs } = this.limits;
    const host = this.host;
    const tls = this.limits.tls;
    const session = http2.connect(`${tls ? 'https' : 'http'}://${host.key}`, {
      settings: { enablePush: false },
      // Our own socket, so Nagle is off from the first byte (small gRPC frames must not wait).
      createConnection: () => connectUpstream(host.address, host.port, tls, H2_ALPN),
    });
    const conn: Conn = { session, connected: false, goingAway: false, active: 0, started: 0, spent: false, idleTimer: undefined, idleTimeoutMs };
    this.conns.push(conn);
    stats.upstream_cx_total++;
    stats.upstream_cx_active++;
    host.cxTotal++;
    host.cxActive++;
    const timer = setTimeout(() => {
      if (!conn.connected) {
        stats.upstream_cx_connect_timeout++;
        session.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
      }
    }, connectTimeoutMs);
    session.once('connect', () => {
      conn.connected = true;
      clearTimeout(timer);
    });
    session.on('error', () => {
      if (!conn.connected) {
        stats.upstream_cx_connect_fail++;
        host.cxConnectFail++;
      }
    });
    session.on('goaway', () => {
      conn.goingAway = true;
    });
    session.once('close', () => {
      clearTimeout(timer);
      if (conn.idleTimer) clearTimeout(conn.idleTimer);
      conn.goingAway = true;
      stats.upstream_cx_active--;
      stats.upstream_cx_destroy++;
      host.cxActive--;
      this.conns = this.conns.filter((c) => c !== conn);
    });
    // Unreferenced while idle: a pooled connection alone does not keep the process alive.
    session.unref();
    return conn;
  }

  request(headers: HeaderMap, endStream: boolean, cb: UpstreamCallbacks): UpstreamRequest {
    const conn = this.connection();
    const limit = this.limits.maxRequestsPerConnection;
    // Spent: no new streams; it closes once the ones in flight are done (Http2Request.release).
    if (limit > 0 && ++conn.started >= limit) {
      conn.goingAway = true;
      conn.spent = true;
    }
    return new Http2Request(conn, headers, endStream, cb);
  }

  close(): void {
    for (const c of this.conns) c.session.close();
    this.conns = [];
  }

  destroy(): void {
    for (const c of this.conns) c.session.destroy();
    this.conns = [];
  }
}

class Http2Request implements UpstreamRequest {
  private readonly stream: http2.ClientHttp2Stream;
  private done = false;
  private gotHeaders = false;

  constructor(
    private readonly conn: Conn,
    headers: HeaderMap,
    endStream: boolean,
    cb: UpstreamCallbacks,
  ) {
    conn.active++;
    if (conn.active === 1) {
      conn.session.ref();
      if (conn.idleTimer) {
        clearTimeout(conn.idleTimer);
        conn.idleTimer = undefined;
      }
    }
    const stream = conn.session.request(headers as http2.OutgoingHttpHeaders, { endStream });
    this.stream = stream;
    stream.on('response', (h, flags) => {
      if (this.done) return;
      const status = Number(h[':status'] ?? 502);
      if (status >= 100 && status < 200) return;
      this.gotHeaders = true;
      cb.onUpstreamHeaders(status, h as HeaderMap, (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0);
    });
    stream.on('data', (chunk: Buffer) => {
      if (!this.done) cb.onUpstreamData(chunk);
    });
    stream.on('trailers', (t) => {
      if (!this.done) cb.onUpstreamTrailers(t as HeaderMap);
    });
    stream.on('end', () => {
      if (this.done) return;
      if (!this.gotHeaders) return; // 'close' reports the failure
      this.finish();
      cb.onUpstreamEnd();
    });
    stream.on('error', () => {
      /* classified on 'close' */
    });
    stream.on('close', () => {
      this.release();
      if (this.done) return;
      this.finish();
      const code = stream.rstCode;
      let failure: UpstreamFailure;
      if (this.gotHeaders) failure = 'reset_after_response';
      else if (!conn.connected) failure = 'connect_failure';
      else if (code === NGHTTP2_REFUSED_STREAM) failure = 'refused_stream';
      else failure = 'reset_before_response';
      cb.onUpstreamError(failure, undefined);
    });
  }

  private finish(): void {
    this.done = true;
  }

  private released = false;

  private release(): void {
    if (this.released) return;
    this.released = true;
    const conn = this.conn;
    conn.active--;
    if (conn.active === 0 && !conn.session.destroyed) {
      if (conn.spent) conn.session.close();
      else {
        conn.session.unref();
        const session = conn.session;
        conn.idleTimer = setTimeout(() => {
          conn.idleTimer = undefined;
          if (conn.active === 0) session.close();
        }, conn.idleTimeoutMs);
        conn.idleTimer.unref();
      }
    }
  }

  write(chunk: Buffer): boolean {
    return this.stream.write(chunk);
  }

  end(): void {
    this.stream.end();
  }

  abort(): void {
    // After a complete response there is nothing to cancel.
    if (this.done) return;
    this.done = true;
    if (!this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  onDrain(cb: () => void): void {
    this.stream.once('drain', cb);
  }
}
