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
import { CANCEL, PROTOCOL_ERROR, REFUSED_STREAM } from '../codec/http2/frames.js';
import { H2ClientConnection } from '../codec/http2/client.js';
import { CONNECTION_LOST, type H2Stream, type StreamHandler } from '../codec/http2/connection.js';
import { pushFields, responseMap } from '../codec/http2/fields.js';
import type { Host } from './host.js';
import { connectedEvent, connectUpstream } from './upstream-connect.js';
import type { HeaderMap, HostHttp2Pool, Http2Limits, UpstreamCallbacks, UpstreamFailure, UpstreamRequest } from './conn-pool.js';

interface Conn {
  readonly session: H2ClientConnection;
  connected: boolean;
  goingAway: boolean;
  active: number;
  /** Streams started over the connection's life (max_requests_per_connection). */
  started: number;
  /** Reached max_requests_per_connection: close when the last stream ends. */
  spent: boolean;
  /** Armed while no stream is active: closes the connection after idle_timeout (Envoy counts it from the last stream's end). */
  idleTimer: NodeJS.Timeout | undefined;
  readonly idleTimeoutMs: number;
}

/** Over TLS the server must agree to HTTP/2 (Envoy's HTTP/2 pools offer h2 likewise). */
const H2_ALPN = ['h2'] as const;
/** Request pseudo-header fields in the order they are sent. */
const REQUEST_PSEUDO = [':method', ':scheme', ':authority', ':path'] as const;

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
    return Math.min(c.session.remoteMaxConcurrentStreams, this.limits.maxConcurrentStreams);
  }

  private connection(): Conn {
    for (const c of this.conns) {
      if (!c.goingAway && c.session.usable && c.active < this.capacity(c)) return c;
    }
    return this.connect();
  }

  private connect(): Conn {
    const { stats, connectTimeoutMs, idleTimeoutMs } = this.limits;
    const host = this.host;
    // Our own socket, so Nagle is off from the first byte (small gRPC frames must not wait).
    const socket = connectUpstream(host.address, host.port, this.limits.tls, H2_ALPN);
    let conn: Conn | undefined;
    const timer = setTimeout(() => {
      if (conn && !conn.connected) {
        stats.upstream_cx_connect_timeout++;
        conn.session.destroy();
      }
    }, connectTimeoutMs);
    const session = new H2ClientConnection(socket, connectedEvent(socket), {
      onConnect: () => {
        if (conn) conn.connected = true;
        clearTimeout(timer);
      },
      onError: () => {
        if (conn && !conn.connected) {
          stats.upstream_cx_connect_fail++;
          host.cxConnectFail++;
        }
      },
      onGoaway: () => {
        if (conn) conn.goingAway = true;
      },
      onClose: () => {
        clearTimeout(timer);
        if (!conn) return;
        if (conn.idleTimer) clearTimeout(conn.idleTimer);
        conn.goingAway = true;
        stats.upstream_cx_active--;
        stats.upstream_cx_destroy++;
        host.cxActive--;
        this.conns = this.conns.filter((c) => c !== conn);
      },
    });
    conn = { session, connected: false, goingAway: false, active: 0, started: 0, spent: false, idleTimer: undefined, idleTimeoutMs };
    this.conns.push(conn);
    stats.upstream_cx_total++;
    stats.upstream_cx_active++;
    host.cxTotal++;
    host.cxActive++;
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

/** The request's header block: pseudo-header fields first, then the rest. */
function requestFields(headers: HeaderMap): string[] {
  const fields: string[] = [];
  for (const k of REQUEST_PSEUDO) {
    const v = headers[k];
    if (v !== undefined) fields.push(k, String(v));
  }
  pushFields(fields, headers);
  return fields;
}

class Http2Request implements UpstreamRequest, StreamHandler {
  private readonly stream: H2Stream;
  private done = false;
  private gotHeaders = false;
  private released = false;
  private drainCb: (() => void) | undefined;

  constructor(
    private readonly conn: Conn,
    headers: HeaderMap,
    endStream: boolean,
    private readonly cb: UpstreamCallbacks,
  ) {
    conn.active++;
    if (conn.active === 1) {
      conn.session.ref();
      if (conn.idleTimer) {
        clearTimeout(conn.idleTimer);
        conn.idleTimer = undefined;
      }
    }
    this.stream = conn.session.request(requestFields(headers), endStream, this);
  }

  onHeaders(fields: string[], endStream: boolean): void {
    if (this.done) return;
    if (this.gotHeaders) {
      // Trailers: the second block, which must end the stream.
      const t = responseMap(fields, false);
      if (typeof t === 'string' || !endStream) {
        this.stream.reset(PROTOCOL_ERROR);
        this.fail('reset_after_response');
        return;
      }
      this.cb.onUpstreamTrailers(t);
      return;
    }
    const h = responseMap(fields, true);
    if (typeof h === 'string') {
      this.stream.reset(PROTOCOL_ERROR);
      this.fail('reset_before_response');
      return;
    }
    const status = Number(h[':status']);
    if (status >= 100 && status < 200) return;
    this.gotHeaders = true;
    this.cb.onUpstreamHeaders(status, h, endStream);
  }

  onData(chunk: Buffer): void {
    if (!this.done) this.cb.onUpstreamData(chunk);
  }

  onEnd(): void {
    if (this.done) return;
    if (!this.gotHeaders) {
      this.fail('reset_before_response');
      return;
    }
    this.done = true;
    this.release();
    this.cb.onUpstreamEnd();
  }

  onReset(code: number): void {
    if (this.done) {
      this.release();
      return;
    }
    let failure: UpstreamFailure;
    if (this.gotHeaders) failure = 'reset_after_response';
    else if (code === CONNECTION_LOST && !this.conn.connected) failure = 'connect_failure';
    else if (code === REFUSED_STREAM) failure = 'refused_stream';
    else failure = 'reset_before_response';
    this.fail(failure);
  }

  onWritable(): void {
    const cb = this.drainCb;
    this.drainCb = undefined;
    cb?.();
  }

  private fail(failure: UpstreamFailure): void {
    this.done = true;
    this.release();
    this.cb.onUpstreamError(failure, undefined);
  }

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
    this.stream.reset(CANCEL);
    this.release();
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  onDrain(cb: () => void): void {
    this.drainCb = cb;
  }
}
