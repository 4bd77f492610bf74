/**
 * Active health checking of one cluster's hosts, as the Cluster's `health_checks[0]` asks.
 * In: the HealthCheckModel and hosts added/removed by EDS. Out: `failedActiveHc` /
 * `pendingActiveHc` flags on hosts and a callback when a host's health flips; counters
 * cluster.<name>.health_check.{attempt,success,failure,network_failure}.
 *
 * Envoy's rules, which the parity tests rely on:
 *  - a new host starts failed + pending and is checked at once; its first success makes it
 *    healthy (no healthy_threshold for the very first check);
 *  - an HTTP answer outside expected_statuses fails the host at once; timeouts and connection
 *    errors count towards unhealthy_threshold;
 *  - a failed host needs healthy_threshold consecutive successes;
 *  - until the cluster has carried traffic, checks run every no_traffic_interval (default 60 s);
 *    after a flip the next check uses the healthy/unhealthy edge interval.
 * HTTP checks send `user-agent: Envoy/HC` and the configured Host (the cluster name by default).
 * A cluster with TLS to its hosts is checked over TLS too (TCP checks: the handshake must pass).
 */
import http from 'node:http';
import https from 'node:https';
import type { HealthCheckModel } from '../config/cluster-resource.js';
import type { UpstreamTlsModel } from '../config/tls-context.js';
import { connectUpstream, connectedEvent, upstreamTlsOptions } from './upstream-connect.js';
import { H2ClientConnection } from '../codec/http2/client.js';
import { CANCEL } from '../codec/http2/frames.js';
import type { Host } from './host.js';
import type { ClusterStats } from '../stats.js';

export interface HealthCheckTarget {
  readonly stats: ClusterStats;
  /** True once the cluster has sent any request upstream. */
  hasTraffic(): boolean;
  /** A host's active-health state changed (flags already updated). */
  onHealthChanged(host: Host): void;
  /** A check passed (outlier detection may un-eject the host). */
  onHealthCheckSuccess(host: Host): void;
}

interface Session {
  readonly host: Host;
  timer: NodeJS.Timeout | undefined;
  successes: number;
  failures: number;
  /** Which edge interval applies to the next check, if any. */
  edge: 'healthy' | 'unhealthy' | undefined;
  inFlight: (() => void) | undefined;
  firstDone: boolean;
  h2: H2ClientConnection | undefined;
}

export class HealthChecker {
  private readonly sessions = new Map<Host, Session>();
  private readonly agent: http.Agent;
  private closed = false;
  private firstRoundWaiters: Array<() => void> = [];

  constructor(
    private model: HealthCheckModel,
    private readonly target: HealthCheckTarget,
    /** The cluster's TLS (fixed for this checker: other TLS settings get a new checker). */
    readonly tls: UpstreamTlsModel | undefined,
  ) {
    const agentOptions = { keepAlive: model.reuseConnection, maxSockets: 1 };
    this.agent = tls ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  update(model: HealthCheckModel): void {
    this.model = model;
  }

  addHost(host: Host): void {
    if (this.sessions.has(host)) return;
    host.failedActiveHc = true;
    host.pendingActiveHc = true;
    host.refresh();
    const s: Session = { host, timer: undefined, successes: 0, failures: 0, edge: undefined, inFlight: undefined, firstDone: false, h2: undefined };
    this.sessions.set(host, s);
    const jitter = this.model.initialJitterMs > 0 ? Math.random() * this.model.initialJitterMs : 0;
    s.timer = setTimeout(() => this.check(s), jitter);
  }

  removeHost(host: Host): void {
    const s = this.sessions.get(host);
    if (!s) return;
    this.stop(s);
    this.sessions.delete(host);
    this.notifyFirstRound();
  }

  /** Resolves when every current host has had its first check (or immediately with none). */
  firstRound(): Promise<void> {
    if (this.firstRoundDone()) return Promise.resolve();
    return new Promise((resolve) => this.firstRoundWaiters.push(resolve));
  }

  private firstRoundDone(): boolean {
    for (const s of this.sessions.values()) if (!s.firstDone) return false;
    return true;
  }

  private notifyFirstRound(): void {
    if (this.firstRoundWaiters.length === 0 || !this.firstRoundDone()) return;
    const waiters = this.firstRoundWaiters;
    this.firstRoundWaiters = [];
    for (const w of waiters) w();
  }

  close(): void {
    this.closed = true;
    for (const s of this.sessions.values()) this.stop(s);
    this.sessions.clear();
    this.agent.destroy();
    this.notifyFirstRound();
  }

  private stop(s: Session): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    s.inFlight?.();
    s.inFlight = undefined;
    s.h2?.destroy();
    s.h2 = undefined;
  }

  private nextDelay(s: Session): number {
    const m = this.model;
    let base: number;
    if (!this.target.hasTraffic()) base = s.host.failedActiveHc ? m.noTrafficIntervalMs : m.noTrafficHealthyIntervalMs;
    else if (s.edge === 'unhealthy') base = m.unhealthyEdgeIntervalMs;
    else if (s.edge === 'healthy') base = m.healthyEdgeIntervalMs;
    else base = s.host.failedActiveHc ? m.unhealthyIntervalMs : m.intervalMs;
    s.edge = undefined;
    return base + (m.intervalJitterMs > 0 ? Math.random() * m.intervalJitterMs : 0);
  }

  private schedule(s: Session): void {
    if (this.closed || this.sessions.get(s.host) !== s) return;
    s.timer = setTimeout(() => this.check(s), this.nextDelay(s));
    s.timer.unref();
  }

  private check(s: Session): void {
    s.timer = undefined;
    if (this.closed) return;
    const stats = this.target.stats;
    stats.health_check.attempt++;
    let settled = false;
    const settle = (result: 'success' | 'failure' | 'network'): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      s.inFlight = undefined;
      this.record(s, result);
      this.schedule(s);
    };
    const timeout = setTimeout(() => {
      cancel();
      settle('network');
    }, this.model.timeoutMs);
    let cancel: () => void;
    if (this.model.kind === 'tcp') cancel = this.tcpCheck(s, settle);
    else if (this.model.http2) cancel = this.http2Check(s, settle);
    else cancel = this.httpCheck(s, settle);
    s.inFlight = () => {
      settled = true;
      clearTimeout(timeout);
      cancel();
    };
  }

  private expected(status: number): boolean {
    for (const r of this.model.expected) if (status >= r.start && status < r.end) return true;
    return false;
  }

  private httpCheck(s: Session, settle: (r: 'success' | 'failure' | 'network') => void): () => void {
    const m = this.model;
    const tls = this.tls;
    const where = tls ? upstreamTlsOptions(tls, s.host.address, s.host.port, ['http/1.1']) : { host: s.host.address, port: s.host.port };
    const req = (tls ? https : http).request({
      ...where,
      method: m.method,
      path: m.path,
      headers: { host: m.host, 'user-agent': 'Envoy/HC' },
      agent: m.reuseConnection ? this.agent : false,
      setHost: false,
    });
    req.on('response', (res) => {
      res.resume();
      const ok = this.expected(res.statusCode ?? 0);
      res.on('end', () => settle(ok ? 'success' : 'failure'));
      res.on('error', () => settle('network'));
    });
    req.on('error', () => settle('network'));
    req.end();
    return () => req.destroy();
  }

  private http2Check(s: Session, settle: (r: 'success' | 'failure' | 'network') => void): () => void {
    const m = this.model;
    const tls = this.tls;
    if (!s.h2?.usable) {
      const socket = connectUpstream(s.host.address, s.host.port, tls, ['h2']);
      s.h2 = new H2ClientConnection(socket, connectedEvent(socket), { onConnect: noop, onError: noop, onGoaway: noop, onClose: noop });
      s.h2.unref();
    }
    const conn = s.h2;
    let status = 0;
    const fields = [':method', m.method, ':scheme', tls ? 'https' : 'http', ':path', m.path, ':authority', m.host, 'user-agent', 'Envoy/HC'];
    const stream = conn.request(fields, true, {
      onHeaders: (h) => {
        // The first head with a final status; 1xx heads and trailers leave it.
        const st = h[0] === ':status' ? Number(h[1]) : 0;
        if (status === 0 && st >= 200) status = st;
      },
      onData: noop,
      onEnd: () => settle(status === 0 ? 'network' : this.expected(status) ? 'success' : 'failure'),
      onReset: () => settle('network'),
      onWritable: noop,
    });
    return () => {
      stream.reset(CANCEL);
      if (!m.reuseConnection) conn.close();
    };
  }

  private tcpCheck(s: Session, settle: (r: 'success' | 'failure' | 'network') => void): () => void {
    const socket = connectUpstream(s.host.address, s.host.port, this.tls, []);
    socket.once(connectedEvent(socket), () => {
      socket.end();
      settle('success');
    });
    socket.once('error', () => settle('network'));
    return () => socket.destroy();
  }

  private record(s: Session, result: 'success' | 'failure' | 'network'): void {
    const host = s.host;
    const m = this.model;
    const stats = this.target.stats;
    let changed = false;
    const wasPending = host.pendingActiveHc;
    host.pendingActiveHc = false;
    if (result === 'success') {
      stats.health_check.success++;
      this.target.onHealthCheckSuccess(host);
      s.failures = 0;
      if (host.failedActiveHc) {
        s.successes++;
        if (wasPending || s.successes >= m.healthyThreshold) {
          host.failedActiveHc = false;
          s.successes = 0;
          s.edge = 'healthy';
          changed = true;
        }
      }
    } else {
      if (result === 'network') stats.health_check.network_failure++;
      stats.health_check.failure++;
      s.successes = 0;
      s.failures++;
      // An unexpected HTTP status fails at once; network errors and timeouts need the threshold.
      if (!host.failedActiveHc && (result === 'failure' || s.failures >= m.unhealthyThreshold)) {
        host.failedActiveHc = true;
        s.edge = 'unhealthy';
        changed = true;
      }
    }
    if (!s.firstDone) {
      s.firstDone = true;
      this.notifyFirstRound();
    }
    if (changed || wasPending) this.target.onHealthChanged(host);
  }
}

function noop(): void {}
