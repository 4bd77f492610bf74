/**
 * An HTTP listener (HttpConnectionManager): HTTP/1.1 and cleartext HTTP/2 (h2c with prior
 * knowledge, what gRPC clients speak) on the same port; over TLS (the listener manager did the
 * handshake) the ALPN protocol decides, and without ALPN the preface, as in cleartext. In:
 * accepted sockets from the listener manager and the HCM settings (replaced in place on a
 * listener update). Out: one RouterFilter per request; connection and request stats under
 * http.<stat_prefix>.
 *
 * Protocol detection: the first bytes of a connection are compared with the HTTP/2 client
 * preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); the socket then goes to our HTTP/2 codec
 * (codec/http2/server.ts) or to an http server that never listens itself (`emit('connection')`).
 * With codec_type HTTP1 or HTTP2 the sniffing is skipped. The codecs own the parsing; the router
 * filter owns the proxying.
 *
 * Timeouts against slow or silent clients: the sniffing must end within listener_filters_timeout
 * (else the connection is closed; counted in listener.<address>_<port>.downstream_pre_cx_timeout),
 * and each HTTP/1 request's headers must arrive within request_headers_timeout from their first
 * byte (else 408 and close; node's parser tracks it).
 *
 * Draining (listener removed or replaced): HTTP/2 connections get GOAWAY and finish their
 * streams; HTTP/1.1 connections close when idle, busy ones after their current response
 * (`connection: close`); whatever is left after the drain time is closed.
 *
 * A connection_limit filter in front of the HCM caps this listener's open connections: one over
 * the cap is closed at once (or after the filter's delay) and counted in
 * connection_limit.<prefix>.limited_connections.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { HcmModel } from '../config/listener-resource.js';
import type { RouteTable } from '../router/route-table.js';
import { ConnectionLimitStats, HttpConnManagerStats, type ListenerStats, type StatEmitter } from '../stats.js';
import { RouterFilter, type HttpRuntime } from '../router/router.js';
import { connInfo, type ConnInfo, Http1Downstream, Http2Downstream } from '../http/downstream.js';
import { H2ServerConnection } from '../codec/http2/server.js';
import type { H2Stream, StreamHandler } from '../codec/http2/connection.js';
import { requestMap } from '../codec/http2/fields.js';
import { PROTOCOL_ERROR } from '../codec/http2/frames.js';
import type { LogFn } from '../access-log/access-log-manager.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Envoy's local reply text for request headers over max_request_headers_kb. */
const HEADERS_TOO_LARGE_BODY = 'Request Header Fields Too Large';

/** Envoy's local reply text for request_headers_timeout. */
const HEADER_TIMEOUT_BODY = 'request header timeout';

/** How long a connection refused by connection_limit may take to close its side. */
const REFUSED_LINGER_MS = 1000;

/** How often node's HTTP/1 server looks for requests past their headers timeout. */
const HEADERS_CHECK_INTERVAL_MS = 250;

/** Where an HTTP listener's routes come from (RDS, updated in place, or inline). */
export interface RouteSlot {
  readonly routeTable: RouteTable | undefined;
}

interface H1Conn {
  /** Requests in flight: a drain tells each to close the connection after its response. */
  readonly inFlight: Set<Http1Downstream>;
}

export class HttpListener implements HttpRuntime {
  readonly stats = new HttpConnManagerStats();
  private readonly limitStats = new ConnectionLimitStats();
  draining = false;
  accessLog: LogFn | undefined;
  private readonly h1: http.Server;
  private readonly h1Conns = new Map<Socket, H1Conn>();
  private readonly h2Conns = new Set<H2ServerConnection>();
  /** Connections whose protocol is not known yet (no request on them): a drain closes them. */
  private readonly sniffing = new Set<Socket>();

  constructor(
    public hcm: HcmModel,
    private slot: RouteSlot,
    readonly clusters: ClusterManager,
    readonly listenerPort: number,
    accessLog: LogFn | undefined,
    /** The listener's own stats (listener.<address>_<port>.*): the sniff timeout counts there. */
    private readonly listenerStats: ListenerStats,
  ) {
    this.accessLog = accessLog;
    // requestTimeout 0: the HCM's request_timeout is the router filter's; headersTimeout stays node's job.
    this.h1 = http.createServer(
      {
        requestTimeout: 0,
        headersTimeout: Math.ceil(hcm.requestHeadersTimeoutMs),
        // max_request_headers_kb; node counts the request line too. Fixed per listener object: an
        // update in place keeps the limit it started with.
        maxHeaderSize: hcm.maxRequestHeadersBytes,
        keepAliveTimeout: hcm.idleTimeoutMs,
        connectionsCheckingInterval: HEADERS_CHECK_INTERVAL_MS,
      },
      (req, res) => this.onH1Request(req, res),
    );
    this.h1.keepAliveTimeout = hcm.idleTimeoutMs;
    // node starts its headers-timeout sweep on 'listening'; this server never listens itself
    // (sockets arrive by emit('connection')), so say it is.
    this.h1.emit('listening');
    this.h1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (!socket.writable) socket.destroy();
      else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        this.stats.downstream_rq_header_timeout++;
        socket.end(
          `HTTP/1.1 408 Request Timeout\r\ncontent-length: ${HEADER_TIMEOUT_BODY.length}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${HEADER_TIMEOUT_BODY}`,
        );
      } else if (err.code === 'HPE_HEADER_OVERFLOW') {
        socket.end(
          `HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: ${HEADERS_TOO_LARGE_BODY.length}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${HEADERS_TOO_LARGE_BODY}`,
        );
      } else socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
  }

  get routeTable(): RouteTable | undefined {
    return this.slot.routeTable;
  }

  /** A new version of the HCM (same listener): new requests use it, in-flight ones finish as they are. */
  update(hcm: HcmModel, slot: RouteSlot, accessLog: LogFn | undefined): void {
    this.hcm = hcm;
    this.slot = slot;
    this.accessLog = accessLog;
    this.h1.keepAliveTimeout = hcm.idleTimeoutMs;
    this.h1.headersTimeout = Math.ceil(hcm.requestHeadersTimeoutMs);
  }

  handleConnection(socket: Socket): void {
    if (!this.admit(socket)) return;
    socket.setNoDelay(true);
    const codec = this.hcm.codec;
    if (codec === 'HTTP1') {
      this.toH1(socket, undefined);
      return;
    }
    if (codec === 'HTTP2') {
      this.toH2(socket, undefined);
      return;
    }
    // Over TLS the client and we agreed on the protocol by ALPN; without ALPN, sniff as in cleartext.
    const alpn = (socket as TLSSocket).alpnProtocol;
    if (alpn === 'h2') {
      this.toH2(socket, undefined);
      return;
    }
    if (alpn === 'http/1.1') {
      this.toH1(socket, undefined);
      return;
    }
    let buf: Buffer | undefined;
    let timer: NodeJS.Timeout | undefined;
    this.sniffing.add(socket);
    const stop = (): void => {
      if (timer) clearTimeout(timer);
      this.sniffing.delete(socket);
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', stop);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      const n = Math.min(buf.length, PREFACE.length);
      const match = buf.compare(PREFACE, 0, n, 0, n) === 0;
      if (match && buf.length < PREFACE.length) return;
      stop();
      socket.pause();
      if (match) this.toH2(socket, buf);
      else this.toH1(socket, buf);
    };
    const onError = (): void => {
      stop();
      socket.destroy();
    };
    socket.on('error', onError);
    socket.on('data', onData);
    socket.once('close', stop);
    const sniffMs = this.hcm.sniffTimeoutMs;
    if (sniffMs > 0) {
      timer = setTimeout(() => {
        stop();
        this.listenerStats.downstream_pre_cx_timeout++;
        if (!this.hcm.sniffTimeoutContinue) socket.destroy();
        else {
          socket.pause();
          this.toH1(socket, buf);
        }
      }, sniffMs);
    }
  }

  /** The connection_limit filter: false (and the socket closed) when the listener is full. */
  private admit(socket: Socket): boolean {
    const limit = this.hcm.connectionLimit;
    if (!limit) return true;
    const ls = this.limitStats;
    if (ls.active_connections >= limit.maxConnections) {
      ls.limited_connections++;
      socket.on('error', () => undefined);
      // FIN, not RST: whatever the client sent is read and dropped, then the socket goes.
      const close = (): void => {
        socket.resume();
        socket.end();
        setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
      };
      // A delay slows down a client retrying at once; nothing it sends is read meanwhile.
      if (limit.delayMs > 0) {
        socket.pause();
        setTimeout(close, limit.delayMs).unref();
      } else close();
      return false;
    }
    ls.active_connections++;
    socket.once('close', () => ls.active_connections--);
    return true;
  }

  private toH1(socket: Socket, head: Buffer | undefined): void {
    const stats = this.stats;
    stats.downstream_cx_total++;
    stats.downstream_cx_active++;
    stats.downstream_cx_http1_total++;
    stats.downstream_cx_http1_active++;
    this.h1Conns.set(socket, { inFlight: new Set() });
    socket.once('close', () => {
      stats.downstream_cx_active--;
      stats.downstream_cx_http1_active--;
      stats.downstream_cx_destroy++;
      this.h1Conns.delete(socket);
    });
    if (head) socket.unshift(head);
    this.h1.emit('connection', socket);
    // node's HTTP/1 server reads from the JS stream: let the unshifted bytes flow.
    socket.resume();
  }

  private toH2(socket: Socket, head: Buffer | undefined): void {
    const stats = this.stats;
    stats.downstream_cx_total++;
    stats.downstream_cx_active++;
    stats.downstream_cx_http2_total++;
    stats.downstream_cx_http2_active++;
    socket.once('close', () => {
      stats.downstream_cx_active--;
      stats.downstream_cx_http2_active--;
      stats.downstream_cx_destroy++;
    });
    const info = connInfo(socket);
    const conn = new H2ServerConnection(socket, {
      maxConcurrentStreams: this.hcm.h2MaxConcurrentStreams,
      maxHeaderListBytes: this.hcm.maxRequestHeadersBytes,
      idleTimeoutMs: this.hcm.idleTimeoutMs,
      onRequest: (stream, fields, endStream) => this.onH2Request(stream, fields, endStream, info),
      onClose: (c) => this.h2Conns.delete(c),
      onPrematureResets: () => stats.downstream_rq_too_many_premature_resets++,
    });
    this.h2Conns.add(conn);
    conn.start(head);
    if (this.draining) conn.drain();
  }

  private onH1Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const down = new Http1Downstream(req, res);
    const conn = this.h1Conns.get(req.socket);
    if (conn) {
      conn.inFlight.add(down);
      res.once('close', () => {
        conn.inFlight.delete(down);
        if (this.draining && conn.inFlight.size === 0) req.socket.end();
      });
    }
    if (this.draining) down.closeAfterResponse();
    new RouterFilter(this, down).start();
  }

  private onH2Request(stream: H2Stream, fields: string[], endStream: boolean, info: ConnInfo): StreamHandler | undefined {
    const headers = requestMap(fields);
    if (typeof headers === 'string') {
      // Malformed (RFC 9113 8.1.1): the stream is reset, as nghttp2 and Envoy do.
      stream.reset(PROTOCOL_ERROR);
      return undefined;
    }
    const down = new Http2Downstream(stream, headers, endStream, info);
    stream.handler = down;
    new RouterFilter(this, down).start();
    return down;
  }

  /**
   * Stop taking new requests: GOAWAY to HTTP/2 clients, close idle HTTP/1.1 connections and
   * those that sent no request yet, and `connection: close` on responses in flight (when their
   * headers are not sent yet).
   */
  drain(): void {
    this.draining = true;
    for (const s of this.sniffing) s.destroy();
    this.sniffing.clear();
    for (const c of this.h2Conns) c.drain();
    for (const [socket, c] of this.h1Conns) {
      if (c.inFlight.size === 0) socket.end();
      else for (const d of c.inFlight) d.closeAfterResponse();
    }
  }

  /** Connections still open. */
  connections(): number {
    return this.h1Conns.size + this.h2Conns.size;
  }

  destroy(): void {
    // Stops node's headers-timeout sweep (started by the 'listening' above); nothing listens.
    this.h1.close();
    for (const c of this.h2Conns) c.destroy();
    for (const socket of this.h1Conns.keys()) socket.destroy();
  }

  emitStats(emit: StatEmitter): void {
    this.stats.emit(this.hcm.statPrefix, emit);
    if (this.hcm.connectionLimit) this.limitStats.emit(this.hcm.connectionLimit.statPrefix, emit);
  }
}
