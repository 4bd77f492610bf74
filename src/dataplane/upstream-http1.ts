/**
 * HTTP/1.1 upstream connections of one cluster, pooled with keep-alive (node:http Agent, LIFO so
 * warm connections are reused first). In: a host, method, path, headers and the caller's
 * callbacks. Out: an UpstreamRequest; connection counters (cx_total / cx_active / connect_fail /
 * connect_timeout) on the cluster and host; max_connections enforced as the Agent's socket limit
 * (requests beyond it wait as "pending", bounded by max_pending_requests in exchange.ts).
 *
 * A request that fails on a reused keep-alive socket before any response byte (the upstream
 * closed it idle while we picked it) is retried once on a fresh connection when it has no body,
 * like any keep-alive client must; that is not a policy retry.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { ClusterStats } from './stats.js';
import type { Host } from './host.js';
import type { HeaderMap, UpstreamCallbacks, UpstreamFailure, UpstreamRequest } from './upstream.js';

export interface Http1PoolOptions {
  readonly connectTimeoutMs: number;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly stats: ClusterStats;
}

class ConnectTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
}

/** Counts connections on the cluster and host as the Agent opens them. */
class CountingAgent extends http.Agent {
  constructor(
    opts: http.AgentOptions,
    private readonly stats: ClusterStats,
  ) {
    super(opts);
  }

  override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, s: Socket) => void): Socket {
    const host = (options as { _host?: Host })._host;
    // eslint-disable-next-line @typescript-eslint/no-unsafe-call
    const socket = (http.Agent.prototype as unknown as { createConnection: (o: unknown, c?: unknown) => Socket }).createConnection.call(this, options, cb);
    const stats = this.stats;
    stats.upstream_cx_total++;
    stats.upstream_cx_active++;
    if (host) {
      host.cxTotal++;
      host.cxActive++;
    }
    socket.setNoDelay(true);
    socket.once('close', () => {
      stats.upstream_cx_active--;
      stats.upstream_cx_destroy++;
      if (host) host.cxActive--;
    });
    return socket;
  }
}

export class Http1Pool {
  private agent: CountingAgent;
  private options: Http1PoolOptions;

  constructor(options: Http1PoolOptions) {
    this.options = options;
    this.agent = this.makeAgent();
  }

  private makeAgent(): CountingAgent {
    const o = this.options;
    return new CountingAgent(
      {
        keepAlive: true,
        keepAliveMsecs: 1000,
        maxSockets: Infinity,
        maxTotalSockets: o.maxConnections,
        maxFreeSockets: Math.min(o.maxConnections, 1024),
        scheduling: 'lifo',
        timeout: o.idleTimeoutMs,
      },
      o.stats,
    );
  }

  /** New limits apply to connections made from now on (existing ones finish their requests). */
  update(options: Http1PoolOptions): void {
    const o = this.options;
    this.options = options;
    if (o.maxConnections !== options.maxConnections || o.idleTimeoutMs !== options.idleTimeoutMs) {
      const old = this.agent;
      this.agent = this.makeAgent();
      // Let the old agent's busy sockets finish; drop its idle ones.
      setImmediate(() => old.destroy());
    }
  }

  /** Requests waiting for a socket (the Agent's queue). */
  pending(): number {
    let n = 0;
    for (const q of Object.values(this.agent.requests)) n += q?.length ?? 0;
    return n;
  }

  request(host: Host, method: string, path: string, headers: HeaderMap, hasBody: boolean, cb: UpstreamCallbacks): UpstreamRequest {
    return new Http1Request(this, host, method, path, headers, hasBody, cb);
  }

  /** @internal */
  send(host: Host, method: string, path: string, headers: HeaderMap): http.ClientRequest {
    return http.request({
      host: host.address,
      port: host.port,
      method,
      path,
      headers: headers as http.OutgoingHttpHeaders,
      agent: this.agent,
      setHost: false,
      _host: host,
    } as http.RequestOptions);
  }

  get connectTimeoutMs(): number {
    return this.options.connectTimeoutMs;
  }

  close(): void {
    this.agent.destroy();
  }
}

class Http1Request implements UpstreamRequest {
  private req: http.ClientRequest;
  private res: http.IncomingMessage | undefined;
  private done = false;
  private connected = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private replayed = false;

  constructor(
    private readonly pool: Http1Pool,
    private readonly host: Host,
    private readonly method: string,
    private readonly path: string,
    private readonly headers: HeaderMap,
    private readonly hasBody: boolean,
    private readonly cb: UpstreamCallbacks,
  ) {
    this.req = this.start();
    if (!hasBody) this.req.end();
  }

  private start(): http.ClientRequest {
    const req = this.pool.send(this.host, this.method, this.path, this.headers);
    req.on('socket', (socket: Socket) => {
      if (socket.connecting) {
        this.connectTimer = setTimeout(() => req.destroy(new ConnectTimeoutError('connect timeout')), this.pool.connectTimeoutMs);
        socket.once('connect', () => {
          this.connected = true;
          if (this.connectTimer) clearTimeout(this.connectTimer);
        });
      } else {
        this.connected = true;
      }
    });
    req.on('response', (res) => this.onResponse(res));
    req.on('error', (err) => this.onError(req, err));
    return req;
  }

  private onResponse(res: http.IncomingMessage): void {
    if (this.done) {
      res.resume();
      return;
    }
    this.res = res;
    const cb = this.cb;
    res.on('data', (chunk: Buffer) => {
      if (!this.done) cb.onUpstreamData(chunk);
    });
    res.on('end', () => {
      if (this.done) return;
      this.done = true;
      if (res.rawTrailers.length > 0) cb.onUpstreamTrailers(res.trailers);
      cb.onUpstreamEnd();
    });
    res.on('aborted', () => this.fail('reset_after_response', undefined));
    res.on('error', (err) => this.fail('reset_after_response', err));
    cb.onUpstreamHeaders(res.statusCode ?? 502, res.headers, false);
  }

  private onError(req: http.ClientRequest, err: Error & { code?: string }): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.done || req !== this.req) return;
    if (this.res) {
      this.fail('reset_after_response', err);
      return;
    }
    // A keep-alive socket the upstream closed under us: one silent retry on a new connection.
    if (req.reusedSocket && !this.hasBody && !this.replayed && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
      this.replayed = true;
      this.req = this.start();
      this.req.end();
      return;
    }
    let failure: UpstreamFailure;
    if (err instanceof ConnectTimeoutError) failure = 'connect_timeout';
    else if (!this.connected) failure = 'connect_failure';
    else failure = 'reset_before_response';
    if (failure !== 'reset_before_response') this.host.cxConnectFail++;
    this.fail(failure, err);
  }

  private fail(failure: UpstreamFailure, err: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    this.cb.onUpstreamError(failure, err);
  }

  write(chunk: Buffer): boolean {
    return this.req.write(chunk);
  }

  end(): void {
    if (this.hasBody) this.req.end();
  }

  abort(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    const wasDone = this.done;
    this.done = true;
    // A finished response leaves the socket in the pool; anything else must not be reused.
    if (!wasDone || !this.res?.complete) this.req.destroy();
  }

  pause(): void {
    this.res?.pause();
  }

  resume(): void {
    this.res?.resume();
  }

  onDrain(cb: () => void): void {
    this.req.once('drain', cb);
  }
}
