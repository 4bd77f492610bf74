/**
 * One upstream endpoint of a cluster. In: an EDS endpoint (address, port, weight, health,
 * locality, priority). Out: the object the load balancers pick, carrying the health state that
 * decides whether it gets traffic (EDS status, active health check, outlier ejection), its
 * request counters (for least-request and /clusters) and its HTTP/2 connection. A Host keeps its
 * identity across EDS updates while its address:port stays, so health and counters survive.
 */
import type { EdsHealth, LocalityModel } from '../config/endpoint-resource.js';
import type { HostHttp2Pool } from './conn-pool.js';

export class Host {
  readonly key: string;
  weight: number;
  edsHealth: EdsHealth;
  locality: LocalityModel;
  localityKey: string;
  /** The EDS load_balancing_weight of this host's locality (used by locality weighting). */
  localityWeight = 0;
  priority: number;
  hostname: string;

  /** Active health check: failing (or not yet passed once). */
  failedActiveHc = false;
  /** Added with a health checker configured and not checked yet. */
  pendingActiveHc = false;
  /** Ejected by outlier detection. */
  ejected = false;
  /** Set by the cluster whenever any of the flags above change. */
  healthy = true;
  /** DRAINING hosts are excluded: never picked, not counted. */
  excluded = false;
  degraded = false;

  // Counters for /clusters and least-request.
  rqActive = 0;
  rqTotal = 0;
  rqSuccess = 0;
  rqError = 0;
  rqTimeout = 0;
  cxActive = 0;
  cxTotal = 0;
  cxConnectFail = 0;

  // Outlier detection state.
  consecutive5xx = 0;
  consecutiveGatewayFailure = 0;
  intervalSuccess = 0;
  intervalTotal = 0;
  ejectionCount = 0;
  ejectedUntil = 0;

  /** HTTP/2 connections to this host (created on first use). */
  h2: HostHttp2Pool | undefined;

  constructor(
    readonly address: string,
    readonly port: number,
  ) {
    this.key = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    this.weight = 1;
    this.edsHealth = 'HEALTHY';
    this.locality = { region: '', zone: '', subZone: '' };
    this.localityKey = '';
    this.priority = 0;
    this.hostname = '';
  }

  /** Recomputes the derived flags; returns true when `healthy` or `excluded` changed. */
  refresh(): boolean {
    const before = this.healthy;
    const beforeExcluded = this.excluded;
    const eds = this.edsHealth;
    this.excluded = eds === 'DRAINING';
    this.degraded = eds === 'DEGRADED';
    const edsOk = eds === 'HEALTHY' || eds === 'UNKNOWN' || eds === 'DEGRADED';
    this.healthy = edsOk && !this.failedActiveHc && !this.ejected;
    return before !== this.healthy || beforeExcluded !== this.excluded;
  }

  /** Envoy's /clusters health_flags text: healthy, or the reasons joined with '/'. */
  healthFlags(): string {
    const flags: string[] = [];
    if (this.failedActiveHc) flags.push('/failed_active_hc');
    if (this.pendingActiveHc) flags.push('/pending_active_hc');
    if (this.ejected) flags.push('/failed_outlier_check');
    if (this.edsHealth === 'UNHEALTHY' || this.edsHealth === 'TIMEOUT') flags.push('/failed_eds_health');
    if (this.edsHealth === 'DRAINING') flags.push('/pending_dynamic_removal');
    if (this.edsHealth === 'DEGRADED') flags.push('/degraded_eds_health');
    return flags.length === 0 ? 'healthy' : flags.join('');
  }
}
