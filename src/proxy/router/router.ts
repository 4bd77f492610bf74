/**
 * The router filter for one request: route it, pick the cluster and a host, forward it, stream
 * the response back. In: a Downstream (HTTP/1.x or HTTP/2) and the listener's current HTTP
 * settings (routes, stats, access loggers). Out: the client's response, cluster and listener
 * stats, outlier reports and, when configured, one access-log record.
 *
 * Behaviour follows Envoy's router: direct_response / redirect / 404 (NR) answered locally;
 * weighted_clusters drawn per request; host and path rewrites; request and response header
 * mutations of the route and the weighted cluster (header-parser.ts); route timeout (default 15 s,
 * from the end of the request body) -> 504 UT; stream_idle_timeout (nothing moved either way) ->
 * 408 SI; per-try timeout and retry_policy (5xx,
 * gateway-error, connect-failure, reset, retriable-4xx, retriable-status-codes, refused-stream,
 * gRPC statuses) with jittered exponential back-off and max_retries; circuit breakers -> 503 UO
 * with x-envoy-overloaded; no healthy host -> 503 UH; upstream connect failure -> 503 UF; request
 * mirroring fire-and-forget. Local replies to gRPC requests become trailers-only gRPC errors.
 *
 * Envoy's rooms: retry decisions in retry-state.ts, request hash keys in hash-policy.ts, mirrors
 * in shadow-writer.ts, route matching in route-table.ts; local replies and x-forwarded-* in ../http/.
 *
 * The common path (no retry, no mirror, no access log) allocates this object, the upstream
 * header map and the pool's request; nothing else per request.
 */
import { randomUUID } from 'node:crypto';
import type { Downstream } from '../http/downstream.js';
import { setForwarded } from '../http/conn-manager-utility.js';
import { sendLocalReply } from '../http/local-reply.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { UpstreamCluster } from '../upstream/cluster.js';
import type { Host } from '../upstream/host.js';
import { isHashBased } from '../upstream/lb/policies.js';
import type { RouteTable } from './route-table.js';
import { stripPort, withoutQuery } from './route-table.js';
import type { ForwardActionModel, HeaderMutationModel, RedirectActionModel, RouteModel, WeightedTarget } from '../config/route-resource.js';
import type { HcmModel } from '../config/listener-resource.js';
import type { RetryPolicyModel } from '../config/retry-policy.js';
import type { HttpConnManagerStats } from '../stats.js';
import { forwardableResponseHeaders, type HeaderMap, type UpstreamCallbacks, type UpstreamFailure, type UpstreamRequest } from '../upstream/conn-pool.js';
import { sampled, ShadowRequest } from './shadow-writer.js';
import { requestHash } from './hash-policy.js';
import { mutateRequestHeaders, mutateResponseHeaders, mutationLevels } from './header-parser.js';
import { RETRY_BUFFER_LIMIT, retriableFailure, retriableResponse, retryBackoffMs } from './retry-state.js';
import type { LogRecord } from '../access-log/formatter.js';

/** What an HTTP listener hands every request: its current settings (swapped atomically on update). */
export interface HttpRuntime {
  readonly hcm: HcmModel;
  readonly routeTable: RouteTable | undefined;
  readonly stats: HttpConnManagerStats;
  readonly clusters: ClusterManager;
  readonly listenerPort: number;
  /** Receives a record per finished request; undefined when the HCM logs nothing. */
  readonly accessLog: ((r: LogRecord) => void) | undefined;
  readonly draining: boolean;
}

export class RouterFilter implements UpstreamCallbacks {
  private readonly startMs = Date.now();
  private readonly startTick = performance.now();
  private route: RouteModel | undefined;
  /** Header mutations of the route and the chosen weighted cluster, in the order they run. */
  private mutations: readonly HeaderMutationModel[] = [];
  private action: ForwardActionModel | undefined;
  private cluster: UpstreamCluster | undefined;
  private clusterName = '';
  private method = '';
  private upstreamPath = '';
  private upstreamHeaders: HeaderMap | undefined;
  private requestId = '';
  private host: Host | undefined;
  private upstream: UpstreamRequest | undefined;
  private attemptStatus = 0;
  private attempts = 0;
  private retry: RetryPolicyModel | undefined;
  private tried: Set<Host> | undefined;
  private inRetry = false;
  private body: Buffer[] | undefined;
  private bodyBytes = 0;
  private replayable = true;
  private bodyEnded = false;
  private shadows: ShadowRequest[] | undefined;
  private globalTimer: NodeJS.Timeout | undefined;
  private tryTimer: NodeJS.Timeout | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private requestTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** performance.now() of the last byte or header moved in either direction. */
  private lastActivity = this.startTick;
  private trailers: HeaderMap | undefined;
  private respHeaders: HeaderMap | undefined;
  private done = false;
  private status = 0;
  private flags = '';
  private details = '';
  private bytesOut = 0;
  private upstreamMs = -1;
  private hashValue: number | undefined;
  private hashDone = false;

  constructor(
    private readonly rt: HttpRuntime,
    private readonly down: Downstream,
  ) {}

  // ---- RoutableRequest ----

  get authority(): string {
    const a = this.down.authority;
    const strip = this.rt.hcm.stripPort;
    if (strip === 'none') return a;
    const bare = stripPort(a);
    if (strip === 'any' || a === `${bare}:${this.rt.listenerPort}`) return bare;
    return a;
  }

  get path(): string {
    return this.down.path;
  }

  header(name: string): string | undefined {
    return this.down.header(name);
  }

  // ---- flow ----

  start(): void {
    const rt = this.rt;
    const stats = rt.stats;
    stats.downstream_rq_total++;
    stats.rq_total++;
    stats.downstream_rq_active++;
    if (this.down.protocol === 'HTTP/2') stats.downstream_rq_http2_total++;
    else stats.downstream_rq_http1_total++;
    this.method = this.down.method;
    this.down.onAbort(() => this.onDownstreamAbort());
    // HCM request_timeout: the whole request must have arrived in time.
    if (rt.hcm.requestTimeoutMs > 0) this.requestTimer = setTimeout(() => this.onRequestTimeout(), rt.hcm.requestTimeoutMs);
    // HCM stream_idle_timeout: one timer per request, re-armed lazily from lastActivity.
    const idleMs = rt.hcm.streamIdleTimeoutMs;
    if (idleMs > 0) this.idleTimer = setTimeout(() => this.onStreamIdle(idleMs), idleMs);
    const route = rt.routeTable?.match(this);
    if (!route) {
      stats.no_route++;
      this.localReply(404, 'NR', 'route_not_found', undefined);
      return;
    }
    this.route = route;
    // Route-level until forward() picks a weighted cluster; local replies get the response side too.
    if (route.headerMutations) this.mutations = [route.headerMutations];
    const action = route.action;
    if (action.kind === 'direct') {
      stats.rq_direct_response++;
      this.localReply(action.status, '', 'direct_response', action.body, true);
    } else if (action.kind === 'redirect') {
      stats.rq_redirect++;
      this.redirect(action);
    } else {
      this.forward(action);
    }
  }

  private pickClusterName(a: ForwardActionModel): { name: string; target: WeightedTarget | undefined } {
    if (a.cluster !== undefined) return { name: a.cluster, target: undefined };
    if (a.clusterHeader !== undefined) return { name: this.down.header(a.clusterHeader) ?? '', target: undefined };
    const targets = a.weighted ?? [];
    let r = Math.random() * a.totalWeight;
    for (const t of targets) {
      r -= t.weight;
      if (r < 0) return { name: t.name, target: t };
    }
    const last = targets[targets.length - 1];
    return { name: last?.name ?? '', target: last };
  }

  private forward(a: ForwardActionModel): void {
    const rt = this.rt;
    const down = this.down;
    const { name, target } = this.pickClusterName(a);
    if (target?.headerMutations) {
      this.mutations = mutationLevels(target.headerMutations, this.route?.headerMutations, rt.routeTable?.config.mostSpecificHeaderMutationsWins ?? false);
    }
    this.clusterName = name;
    const cluster = rt.clusters.get(name);
    if (!cluster) {
      rt.stats.no_cluster++;
      this.localReply(a.notFoundStatus, 'NC', 'cluster_not_found', undefined);
      return;
    }
    this.action = a;
    this.cluster = cluster;
    this.retry = a.retry;

    // Path and authority as the upstream sees them.
    let path = down.path;
    let rewritten = false;
    if (a.prefixRewrite !== undefined && this.route) {
      const m = this.route.match;
      const matched = m.kind === 'regex' ? withoutQuery(path).length : m.value.length;
      path = a.prefixRewrite + path.slice(matched);
      if (path === '' || path.charCodeAt(0) !== 47) path = `/${path}`;
      rewritten = true;
    } else if (a.regexRewrite) {
      const only = withoutQuery(path);
      path = a.regexRewrite(only) + path.slice(only.length);
      rewritten = true;
    }
    this.upstreamPath = path;
    let authority = this.authority;
    const rewrite = target?.hostRewrite ?? a.hostRewrite;
    if (rewrite !== undefined) authority = rewrite;
    else if (a.hostRewriteHeader !== undefined) authority = down.header(a.hostRewriteHeader) ?? authority;

    const h2 = cluster.model.http2;
    const headers: HeaderMap = h2
      ? { ':method': this.method, ':path': path, ':authority': authority, ':scheme': cluster.model.tls ? 'https' : 'http' }
      : { host: authority };
    down.copyHeaders(headers);
    setForwarded(rt.hcm, down, headers);
    const id = down.header('x-request-id');
    if (id !== undefined) this.requestId = id;
    else if (rt.hcm.generateRequestId) headers['x-request-id'] = this.requestId = randomUUID();
    if (rewritten) headers['x-envoy-original-path'] = down.path;
    if (this.mutations.length > 0) mutateRequestHeaders(headers, this.mutations);
    this.upstreamHeaders = headers;

    if (a.mirrors.length > 0) this.startShadows(a, path, authority, headers);
    if (this.retry) this.body = [];
    down.readBody(
      (chunk) => this.onBodyData(chunk),
      () => this.onBodyEnd(),
    );
    if (this.done) return;
    this.attempt();
  }

  private startShadows(a: ForwardActionModel, path: string, authority: string, headers: HeaderMap): void {
    for (const m of a.mirrors) {
      if (!sampled(m)) continue;
      const s = ShadowRequest.start(this.rt.clusters, m, this.method, path, authority, headers, this.down.hasBody, a.timeoutMs);
      if (s) {
        this.shadows ??= [];
        this.shadows.push(s);
      }
    }
  }

  private onBodyData(chunk: Buffer): void {
    if (this.done) return;
    this.lastActivity = performance.now();
    if (this.body) {
      this.bodyBytes += chunk.length;
      if (this.bodyBytes <= RETRY_BUFFER_LIMIT) this.body.push(chunk);
      else {
        this.body = undefined;
        this.replayable = false;
      }
    } else {
      this.bodyBytes += chunk.length;
    }
    if (this.shadows) for (const s of this.shadows) s.write(chunk);
    const up = this.upstream;
    if (up && !up.write(chunk)) {
      this.down.pauseBody();
      up.onDrain(() => this.down.resumeBody());
    }
  }

  private onBodyEnd(): void {
    if (this.done) return;
    this.bodyEnded = true;
    if (this.requestTimer) {
      clearTimeout(this.requestTimer);
      this.requestTimer = undefined;
    }
    if (this.shadows) for (const s of this.shadows) s.end();
    if (this.down.hasBody) this.upstream?.end();
    const timeout = this.action?.timeoutMs ?? 0;
    if (timeout > 0) this.globalTimer = setTimeout(() => this.onGlobalTimeout(), timeout);
  }

  /** The request's hash key for hash-based policies, computed once per request (retries reuse it). */
  private requestHash(): number | undefined {
    if (this.hashDone) return this.hashValue;
    this.hashDone = true;
    this.hashValue = requestHash(this.action?.hashPolicies ?? [], this.down);
    return this.hashValue;
  }

  private attempt(): void {
    const cluster = this.cluster as UpstreamCluster;
    const high = this.action?.highPriority ?? false;
    const cs = cluster.stats;
    const overflow = cluster.overflow(high);
    if (overflow) {
      // Envoy 1.40 counts max_requests refusals apart from max_pending_requests ones.
      if (overflow === 'rq') cs.upstream_rq_active_overflow++;
      else cs.upstream_rq_pending_overflow++;
      this.localReply(503, 'UO', 'overflow', 'upstream connect error or disconnect/reset before headers. reset reason: overflow', false, {
        'x-envoy-overloaded': 'true',
      });
      return;
    }
    const hash = isHashBased(cluster.model.lbPolicy) ? this.requestHash() : undefined;
    const host = cluster.pick(hash, this.tried, this.retry?.hostSelectionMaxAttempts);
    if (!host) {
      cs.upstream_cx_none_healthy++;
      this.localReply(503, 'UH', 'no_healthy_upstream', 'no healthy upstream');
      return;
    }
    this.host = host;
    this.attempts++;
    this.attemptStatus = 0;
    if (this.retry?.avoidPreviousHosts) {
      this.tried ??= new Set();
      this.tried.add(host);
    }
    host.rqActive++;
    host.rqTotal++;
    cs.upstream_rq_total++;
    cs.upstream_rq_active++;
    const down = this.down;
    const up = cluster.request(host, this.method, this.upstreamPath, this.upstreamHeaders as HeaderMap, down.hasBody, this);
    this.upstream = up;
    if (this.attempts > 1 && this.body) {
      for (const c of this.body) up.write(c);
    }
    if (this.bodyEnded && down.hasBody) up.end();
    const perTry = this.retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0) this.tryTimer = setTimeout(() => this.onPerTryTimeout(), perTry);
  }

  /** Ends the bookkeeping of the current attempt. `status` 0: local failure (outlier-wise a 5xx). */
  private endAttempt(status: number, charged: number, report = true): void {
    const host = this.host;
    const cluster = this.cluster;
    if (!host || !cluster || !this.upstream) return;
    this.upstream = undefined;
    if (this.tryTimer) {
      clearTimeout(this.tryTimer);
      this.tryTimer = undefined;
    }
    if (this.inRetry) {
      this.inRetry = false;
      cluster.retriesActive--;
      if (status > 0 && status < 500) cluster.stats.upstream_rq_retry_success++;
    }
    host.rqActive--;
    const cs = cluster.stats;
    cs.upstream_rq_active--;
    cs.upstream_rq_completed++;
    if (charged > 0) cs.rq.add(charged);
    if (status > 0 && status < 500) host.rqSuccess++;
    else host.rqError++;
    if (report) cluster.report(host, status);
  }

  /** Whether another attempt is allowed now (policy, attempts left, retry budget, replayable body). */
  private mayRetry(): boolean {
    const r = this.retry;
    const cluster = this.cluster;
    if (!r || !cluster || this.down.headersSent || !this.replayable) return false;
    if (this.attempts > r.numRetries) {
      cluster.stats.upstream_rq_retry_limit_exceeded++;
      this.flags = 'URX';
      return false;
    }
    if (!cluster.canRetry(this.action?.highPriority ?? false)) {
      cluster.stats.upstream_rq_retry_overflow++;
      return false;
    }
    return true;
  }

  /** Starts the back-off before the next attempt (call after mayRetry()). */
  private scheduleRetry(): void {
    const r = this.retry as RetryPolicyModel;
    const cluster = this.cluster as UpstreamCluster;
    cluster.stats.upstream_rq_retry++;
    cluster.retriesActive++;
    this.inRetry = true;
    this.backoffTimer = setTimeout(
      () => {
        this.backoffTimer = undefined;
        if (this.done) return;
        this.attempt();
      },
      retryBackoffMs(r, this.attempts),
    );
  }

  private onPerTryTimeout(): void {
    this.tryTimer = undefined;
    const cluster = this.cluster;
    if (this.done || !cluster || !this.upstream) return;
    cluster.stats.upstream_rq_per_try_timeout++;
    if (this.host) this.host.rqTimeout++;
    const up = this.upstream;
    this.endAttempt(0, 504);
    up.abort();
    if (this.down.headersSent) {
      this.resetDownstream('UT');
      return;
    }
    if (retriableFailure(this.retry, 'per_try_timeout') && this.mayRetry()) {
      this.scheduleRetry();
      return;
    }
    this.localReply(504, this.flags ? `UT,${this.flags}` : 'UT', 'upstream_per_try_timeout', 'upstream request timeout');
  }

  private onRequestTimeout(): void {
    this.requestTimer = undefined;
    if (this.done) return;
    this.rt.stats.downstream_rq_timeout++;
    const up = this.upstream;
    if (up) {
      this.endAttempt(this.attemptStatus, 0, false);
      up.abort();
    }
    this.localReply(408, '', 'request_overall_timeout', 'request timeout');
  }

  /** Nothing moved either way for stream_idle_timeout: 408 (SI) before the response started, else a reset. */
  private onStreamIdle(idleMs: number): void {
    this.idleTimer = undefined;
    if (this.done) return;
    const left = this.lastActivity + idleMs - performance.now();
    if (left >= 1) {
      this.idleTimer = setTimeout(() => this.onStreamIdle(idleMs), left);
      return;
    }
    this.rt.stats.downstream_rq_idle_timeout++;
    const up = this.upstream;
    if (up) {
      this.endAttempt(this.attemptStatus, 0, false);
      up.abort();
    }
    // The rest of a stalled request body would be read as the next request: close after the reply.
    if (!this.bodyEnded) this.down.closeAfterResponse();
    this.localReply(408, 'SI', 'stream_idle_timeout', 'stream timeout');
  }

  private onGlobalTimeout(): void {
    this.globalTimer = undefined;
    if (this.done) return;
    const cluster = this.cluster;
    if (cluster) cluster.stats.upstream_rq_timeout++;
    if (this.host) this.host.rqTimeout++;
    const up = this.upstream;
    if (up) {
      this.endAttempt(0, 504);
      up.abort();
    }
    if (this.down.headersSent) this.resetDownstream('UT');
    else this.localReply(504, 'UT', 'response_timeout', 'upstream request timeout');
  }

  // ---- UpstreamCallbacks ----

  onUpstreamHeaders(status: number, headers: HeaderMap, endStream: boolean): void {
    if (this.done) return;
    this.lastActivity = performance.now();
    this.attemptStatus = status;
    if (this.upstreamMs < 0) this.upstreamMs = performance.now() - this.startTick;
    if (this.retry && retriableResponse(this.retry, status, headers) && this.mayRetry()) {
      const up = this.upstream;
      this.endAttempt(status, status);
      up?.abort();
      this.scheduleRetry();
      return;
    }
    const out = forwardableResponseHeaders(headers, this.down.protocol === 'HTTP/2');
    if (this.mutations.length > 0) mutateResponseHeaders(out, this.mutations);
    this.respHeaders = out;
    if (this.rt.draining) this.down.closeAfterResponse();
    this.status = status;
    this.details = 'via_upstream';
    this.down.respond(status, out, endStream);
    if (endStream) {
      this.endAttempt(status, status);
      this.complete();
    }
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.done) return;
    this.lastActivity = performance.now();
    this.bytesOut += chunk.length;
    if (!this.down.write(chunk)) {
      const up = this.upstream;
      if (up) {
        up.pause();
        this.down.onDrain(() => up.resume());
      }
    }
  }

  onUpstreamTrailers(trailers: HeaderMap): void {
    this.trailers = trailers;
  }

  onUpstreamEnd(): void {
    if (this.done) return;
    this.endAttempt(this.attemptStatus, this.attemptStatus);
    this.down.end(this.trailers ? forwardableResponseHeaders(this.trailers, false) : undefined);
    this.complete();
  }

  onUpstreamError(failure: UpstreamFailure, err: Error | undefined): void {
    if (this.done) return;
    const cs = this.cluster?.stats;
    // Connect failures are counted by the pools, per connection; resets here, per request.
    if (cs && failure !== 'connect_failure' && failure !== 'connect_timeout') cs.upstream_rq_rx_reset++;
    const started = this.down.headersSent;
    this.endAttempt(0, started ? 0 : 503);
    if (started) {
      this.resetDownstream('UR');
      return;
    }
    if (retriableFailure(this.retry, failure) && this.mayRetry()) {
      this.scheduleRetry();
      return;
    }
    const connect = failure === 'connect_failure' || failure === 'connect_timeout';
    const reason = connect ? 'connection failure' : failure === 'refused_stream' ? 'remote refused stream reset' : 'connection termination';
    const flag = connect ? 'UF' : 'UC';
    const detail = connect ? 'upstream_reset_before_response_started{connection_failure}' : 'upstream_reset_before_response_started{connection_termination}';
    void err;
    this.localReply(
      503,
      this.flags ? `${flag},${this.flags}` : flag,
      detail,
      `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`,
    );
  }

  // ---- endings ----

  private onDownstreamAbort(): void {
    if (this.done) return;
    this.rt.stats.downstream_rq_rx_reset++;
    const up = this.upstream;
    if (up && this.cluster) {
      this.cluster.stats.upstream_rq_cancelled++;
      // The client left: not the upstream's fault, so no outlier report.
      this.endAttempt(this.attemptStatus, 0, false);
      up.abort();
    }
    this.flags = this.flags ? `DC,${this.flags}` : 'DC';
    this.finish();
  }

  private resetDownstream(flag: string): void {
    this.flags = this.flags ? `${flag},${this.flags}` : flag;
    this.rt.stats.downstream_rq_tx_reset++;
    this.down.reset();
    this.finish();
  }

  private redirect(a: RedirectActionModel): void {
    const down = this.down;
    let path = down.path;
    if (a.path !== undefined) path = a.path;
    else if (a.prefixRewrite !== undefined && this.route) path = a.prefixRewrite + path.slice(this.route.match.value.length);
    if (a.stripQuery) path = withoutQuery(path);
    let host = a.host ?? stripPort(down.authority);
    if (a.port !== undefined) host = `${host}:${a.port}`;
    else if (a.host === undefined && a.scheme === undefined) host = down.authority;
    const location = `${a.scheme ?? down.scheme}://${host}${path}`;
    this.localReply(a.status, '', 'direct_response', undefined, true, { location });
  }

  private localReply(status: number, flags: string, details: string, body: Buffer | string | undefined, direct = false, extra?: HeaderMap): void {
    if (this.done) return;
    this.flags = flags;
    this.details = details;
    this.status = status;
    const down = this.down;
    if (down.headersSent) {
      this.resetDownstream(flags || 'LR');
      return;
    }
    const grpc = !direct && (down.header('content-type') ?? '').startsWith('application/grpc');
    if (this.rt.draining) down.closeAfterResponse();
    let headers = extra;
    if (this.mutations.length > 0) {
      headers = { ...extra };
      mutateResponseHeaders(headers, this.mutations);
    }
    const sent = sendLocalReply(down, status, body, grpc, headers);
    this.respHeaders = sent.headers;
    this.status = sent.status;
    this.bytesOut += sent.bytesOut;
    this.finish();
  }

  /** The upstream response finished normally. */
  private complete(): void {
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.globalTimer) clearTimeout(this.globalTimer);
    if (this.tryTimer) clearTimeout(this.tryTimer);
    if (this.requestTimer) clearTimeout(this.requestTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.backoffTimer) {
      clearTimeout(this.backoffTimer);
      if (this.inRetry && this.cluster) {
        this.inRetry = false;
        this.cluster.retriesActive--;
      }
    }
    const stats = this.rt.stats;
    stats.downstream_rq_active--;
    stats.rq.add(this.status);
    const log = this.rt.accessLog;
    if (log) log(this.record());
  }

  private record(): LogRecord {
    const down = this.down;
    const resp = this.respHeaders;
    return {
      kind: 'http',
      startMs: this.startMs,
      method: this.method || down.method,
      path: down.path,
      authority: down.authority,
      protocol: down.protocol,
      status: this.status,
      flags: this.flags,
      details: this.details,
      bytesIn: this.bodyBytes,
      bytesOut: this.bytesOut,
      durationMs: performance.now() - this.startTick,
      upstreamMs: this.upstreamMs,
      upstreamHost: this.host?.key ?? '',
      cluster: this.clusterName,
      routeName: this.route?.name ?? '',
      downstreamRemote: down.remoteAddress,
      downstreamLocal: down.localAddress,
      requestId: this.requestId,
      userAgent: down.header('user-agent') ?? '',
      forwardedFor: down.header('x-forwarded-for') ?? '',
      reqHeader: (n) => down.header(n),
      respHeader: (n) => {
        const v = resp?.[n];
        return Array.isArray(v) ? v.join(',') : v;
      },
    };
  }
}
