/**
 * One upstream cluster at run time. In: its ClusterModel (CDS) and its endpoints (EDS, the
 * inline load_assignment of a STATIC cluster, or the names of a DNS cluster, resolved by
 * dns-resolver.ts). Out: `pick()` -> Host for each request, the
 * connection pools to reach hosts (HTTP/1.1 per cluster, HTTP/2 per host), circuit-breaker
 * checks, active health checking, outlier detection and the cluster's stats.
 *
 * A cluster is "initialized" once it has endpoints (or EDS said nothing within the
 * does-not-exist timeout) and, with a health check, once every host had its first check -
 * Envoy's warming. A config update is applied in place: hosts, their health and their
 * connections survive, so an unchanged endpoint never drops traffic.
 */
import type { ClusterModel } from '../config/cluster-resource.js';
import type { EndpointsModel } from '../config/endpoint-resource.js';
import { Host } from './host.js';
import { PrioritySet } from './priority-set.js';
import { ClusterStats, type StatEmitter } from '../stats.js';
import { Http1Pool, type Http1PoolOptions } from './http1-conn-pool.js';
import { Http2HostPool } from './http2-conn-pool.js';
import { HealthChecker } from './health-checker.js';
import { OutlierDetector } from './outlier-detection.js';
import { DnsResolver } from './dns-resolver.js';
import type { HeaderMap, Http2Limits, UpstreamCallbacks, UpstreamRequest } from './conn-pool.js';
import type { ThresholdsModel } from '../config/cluster-resource.js';

/** Who checks this cluster's hosts (see UpstreamCluster.healthMode). */
export type HealthMode =
  | { readonly kind: 'run'; readonly onHostHealth?: (cluster: string, hostKey: string, failed: boolean) => void }
  | { readonly kind: 'follow' };

export class UpstreamCluster {
  readonly stats = new ClusterStats();
  private hostMap = new Map<string, Host>();
  private hostList: Host[] = [];
  private readonly prio = new PrioritySet();
  private overprovisioning = 140;
  private hasEndpoints = false;
  private initialized = false;
  private initWaiters: Array<() => void> = [];
  private readonly h1: Http1Pool;
  private healthChecker: HealthChecker | undefined;
  private outlier: OutlierDetector | undefined;
  private dns: DnsResolver | undefined;
  private closed = false;
  /** Retries in flight (circuit breaker max_retries). */
  retriesActive = 0;
  /** Version and time of the CDS / EDS resources, for /config_dump. */
  lastUpdated = new Date();

  /**
   * Health of the hosts, with --concurrency > 1 (proxy/workers/): 'run' checks them here and
   * reports every change to `onHostHealth`; 'follow' runs no checker and takes the states another
   * worker found (applyHealth), so each cluster is checked once per proxy, not once per worker.
   */
  private readonly healthMode: HealthMode;
  /** follow: the last state reported per host key (a host EDS adds later starts with it). */
  private readonly followed = new Map<string, boolean>();

  constructor(
    public model: ClusterModel,
    health: HealthMode = { kind: 'run' },
  ) {
    this.healthMode = health;
    this.h1 = new Http1Pool(this.h1Options());
    this.configure(undefined);
    if (model.staticEndpoints) this.setEndpoints(model.staticEndpoints);
    this.startDns(undefined);
  }

  /** A DNS cluster resolves its names; a change of names or settings starts over (hosts stay until then). */
  private startDns(previous: ClusterModel | undefined): void {
    const next = this.model.dns;
    if (previous && JSON.stringify(previous.dns) === JSON.stringify(next)) return;
    this.dns?.close();
    this.dns = next ? new DnsResolver(next, (e) => this.setEndpoints(e)) : undefined;
  }

  get name(): string {
    return this.model.name;
  }

  private h1Options(): Http1PoolOptions {
    const m = this.model;
    return {
      connectTimeoutMs: m.connectTimeoutMs,
      maxConnections: m.thresholds.maxConnections,
      maxRequestsPerConnection: m.maxRequestsPerConnection,
      idleTimeoutMs: m.upstreamIdleTimeoutMs,
      stats: this.stats,
      tls: m.tls,
    };
  }

  private h2Limits(): Http2Limits {
    const m = this.model;
    return {
      connectTimeoutMs: m.connectTimeoutMs,
      maxConcurrentStreams: m.h2MaxConcurrentStreams,
      maxRequestsPerConnection: m.maxRequestsPerConnection,
      idleTimeoutMs: m.upstreamIdleTimeoutMs,
      stats: this.stats,
      tls: m.tls,
    };
  }

  /** A new version of the Cluster resource: applied in place. */
  update(model: ClusterModel): void {
    const previous = this.model;
    this.model = model;
    this.lastUpdated = new Date();
    this.h1.update(this.h1Options());
    for (const h of this.hostList) h.h2?.update(this.h2Limits());
    if (previous.http2 && !model.http2) for (const h of this.hostList) h.h2?.close();
    this.configure(previous);
    if (model.staticEndpoints) this.setEndpoints(model.staticEndpoints);
    else this.rebuild();
    this.startDns(previous);
  }

  private configure(previous: ClusterModel | undefined): void {
    const m = this.model;
    if (m.healthCheck && this.healthMode.kind === 'follow') {
      for (const h of this.hostList) this.followHost(h);
    } else if (m.healthCheck) {
      const sameKind = previous?.healthCheck && previous.healthCheck.kind === m.healthCheck.kind && previous.tls?.key === m.tls?.key;
      if (this.healthChecker && sameKind) this.healthChecker.update(m.healthCheck);
      else {
        this.healthChecker?.close();
        this.healthChecker = new HealthChecker(m.healthCheck, this, m.tls);
        for (const h of this.hostList) this.healthChecker.addHost(h);
      }
    } else if (this.healthChecker || previous?.healthCheck) {
      this.healthChecker?.close();
      this.healthChecker = undefined;
      for (const h of this.hostList) {
        h.failedActiveHc = false;
        h.pendingActiveHc = false;
        h.refresh();
      }
    }
    if (m.outlier) {
      if (this.outlier) this.outlier.update(m.outlier);
      else this.outlier = new OutlierDetector(m.outlier, this);
    } else if (this.outlier) {
      this.outlier.close();
      this.outlier = undefined;
      for (const h of this.hostList) {
        if (h.ejected) {
          h.ejected = false;
          h.refresh();
        }
      }
    }
  }

  /** EDS (or the static assignment): the new host set. Hosts keep their state by address:port. */
  setEndpoints(e: EndpointsModel): void {
    const next = new Map<string, Host>();
    const list: Host[] = [];
    for (const loc of e.localities) {
      const lk = `${loc.locality.region}/${loc.locality.zone}/${loc.locality.subZone}`;
      for (const ep of loc.endpoints) {
        const probe = new Host(ep.address, ep.port);
        if (next.has(probe.key)) continue; // a duplicate endpoint counts once, as in Envoy
        const host = this.hostMap.get(probe.key) ?? probe;
        host.weight = ep.weight;
        host.edsHealth = ep.health;
        host.locality = loc.locality;
        host.localityKey = lk;
        host.localityWeight = loc.weight;
        host.priority = loc.priority;
        host.hostname = ep.hostname;
        host.refresh();
        next.set(host.key, host);
        list.push(host);
      }
    }
    let changed = next.size !== this.hostMap.size;
    for (const [key, host] of this.hostMap) {
      if (next.has(key)) continue;
      changed = true;
      this.healthChecker?.removeHost(host);
      if (host.ejected) this.stats.outlier_detection.ejections_active--;
      // Requests in flight on a removed host finish; its idle connections go.
      host.h2?.close();
    }
    for (const host of list) {
      if (!this.hostMap.has(host.key)) {
        changed = true;
        this.healthChecker?.addHost(host);
        if (this.model.healthCheck && this.healthMode.kind === 'follow') this.followHost(host);
      }
    }
    this.hostMap = next;
    this.hostList = list;
    this.overprovisioning = e.overprovisioningFactor;
    this.stats.update_success++;
    if (list.length === 0) this.stats.update_empty++;
    if (changed) this.stats.membership_change++;
    this.lastUpdated = new Date();
    this.rebuild();
    this.hasEndpoints = true;
    this.checkInitialized();
  }

  /** EDS never answered for this cluster: it initializes with no hosts (Envoy does the same). */
  endpointsDoNotExist(): void {
    if (this.hasEndpoints) return;
    this.hasEndpoints = true;
    this.checkInitialized();
  }

  private checkInitialized(): void {
    if (this.initialized || !this.hasEndpoints) return;
    const finish = (): void => {
      if (this.initialized) return;
      this.initialized = true;
      for (const w of this.initWaiters.splice(0)) w();
    };
    if (this.healthChecker) void this.healthChecker.firstRound().then(finish);
    else if (this.healthMode.kind === 'follow' && this.model.healthCheck) {
      // Warm once the checking worker reported every host (as its own first round).
      if (this.hostList.every((h) => !h.pendingActiveHc)) finish();
    } else finish();
  }

  /** follow: a host starts failed and pending (as a checker's would) until its state is known. */
  private followHost(host: Host): void {
    const failed = this.followed.get(host.key);
    host.failedActiveHc = failed ?? true;
    host.pendingActiveHc = failed === undefined;
    host.refresh();
  }

  /** follow: the checking worker found `hostKey` healthy (failed false) or failing. */
  applyHealth(hostKey: string, failed: boolean): void {
    this.followed.set(hostKey, failed);
    const host = this.hostMap.get(hostKey);
    if (!host || !this.model.healthCheck) return;
    host.failedActiveHc = failed;
    host.pendingActiveHc = false;
    this.onHealthChanged(host);
    this.checkInitialized();
  }

  whenInitialized(): Promise<void> {
    if (this.initialized) return Promise.resolve();
    return new Promise((resolve) => this.initWaiters.push(resolve));
  }

  isInitialized(): boolean {
    return this.initialized;
  }

  /** Health or membership changed: recompute the pick tables and membership gauges. */
  private rebuild(): void {
    this.prio.rebuild(this.model, this.hostList, this.overprovisioning);
    const s = this.prio.stats();
    this.stats.membership_total = s.total;
    this.stats.membership_healthy = s.healthy;
    this.stats.membership_degraded = s.degraded;
    this.stats.membership_excluded = s.excluded;
    this.stats.health_check.healthy = this.hostList.filter((h) => !h.failedActiveHc).length;
  }

  // ---- HealthCheckTarget / OutlierTarget ----

  hasTraffic(): boolean {
    return this.stats.upstream_rq_total > 0 || this.stats.upstream_cx_total > 0;
  }

  hosts(): readonly Host[] {
    return this.hostList;
  }

  onHealthChanged(host: Host): void {
    host.refresh();
    if (this.closed) return;
    this.rebuild();
    if (this.healthMode.kind === 'run' && !host.pendingActiveHc) this.healthMode.onHostHealth?.(this.name, host.key, host.failedActiveHc);
  }

  onHealthCheckSuccess(host: Host): void {
    this.outlier?.onActiveHealthy(host);
  }

  // ---- per request ----

  /** Picks a host; `avoid` (retry previous_hosts) is honoured for up to `attempts` draws. */
  pick(hash: number | undefined, avoid?: ReadonlySet<Host>, attempts = 1): Host | undefined {
    let host = this.prio.pick(hash);
    if (avoid && host && avoid.has(host)) {
      for (let i = 0; i < attempts && host && avoid.has(host); i++) host = this.prio.pick(hash);
    }
    return host;
  }

  thresholds(high: boolean): ThresholdsModel {
    return high ? this.model.thresholdsHigh : this.model.thresholds;
  }

  /** Whether a new request must be refused (max_requests / max_pending_requests). */
  overflow(high: boolean): 'rq' | 'pending' | undefined {
    const t = this.thresholds(high);
    if (this.stats.upstream_rq_active >= t.maxRequests) return 'rq';
    // Pending only exists once every allowed connection is busy; the queue length is read only then.
    if (!this.model.http2 && this.stats.upstream_rq_active >= t.maxConnections && this.h1.pending() >= t.maxPendingRequests) return 'pending';
    return undefined;
  }

  canRetry(high: boolean): boolean {
    return this.retriesActive < this.thresholds(high).maxRetries;
  }

  /** Starts an upstream request on `host`. HTTP/1.1 takes method/path/headers; HTTP/2 takes pseudo headers in `headers`. */
  request(host: Host, method: string, path: string, headers: HeaderMap, hasBody: boolean, cb: UpstreamCallbacks): UpstreamRequest {
    if (this.model.http2) {
      host.h2 ??= new Http2HostPool(host, this.h2Limits());
      return host.h2.request(headers, !hasBody, cb);
    }
    return this.h1.request(host, method, path, headers, hasBody, cb);
  }

  /** Outcome of one upstream attempt, for outlier detection (status 0: local failure). */
  report(host: Host, status: number): void {
    this.outlier?.report(host, status);
  }

  get panicPicks(): number {
    return this.prio.panicPicks;
  }

  emitStats(emit: StatEmitter): void {
    this.stats.lb_healthy_panic = this.prio.panicPicks;
    this.stats.upstream_rq_pending_active = this.model.http2 ? 0 : this.h1.pending();
    const t = this.model.thresholds;
    this.stats.emit(this.name, emit, {
      cx: this.stats.upstream_cx_active >= t.maxConnections,
      pending: this.stats.upstream_rq_pending_active >= t.maxPendingRequests,
      rq: this.stats.upstream_rq_active >= t.maxRequests,
      retry: this.retriesActive >= t.maxRetries,
    });
  }

  close(): void {
    this.closed = true;
    this.dns?.close();
    this.healthChecker?.close();
    this.outlier?.close();
    this.h1.close();
    for (const h of this.hostList) h.h2?.close();
    for (const w of this.initWaiters.splice(0)) w();
  }
}
