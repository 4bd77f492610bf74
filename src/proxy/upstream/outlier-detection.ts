/**
 * Passive health: outlier detection of one cluster, as its `outlier_detection` asks. In: the
 * result of every upstream request (status, or a local failure such as a refused connection).
 * Out: hosts ejected (`host.ejected`) for base_ejection_time x number of ejections (capped by
 * max_ejection_time), never more than max_ejection_percent of the hosts (but always at least
 * one, as Envoy does); counters cluster.<name>.outlier_detection.*.
 *
 * Detectors: consecutive 5xx (local failures count as 503), consecutive gateway failures
 * (502/503/504 and local failures), success rate (mean - stdev_factor x stdev over hosts with
 * enough requests) and failure percentage, each with its enforcement percentage. Ejected hosts
 * return when their time is up (checked every `interval`) or, by default, when an active health
 * check succeeds.
 */
import type { OutlierModel } from '../config/cluster-resource.js';
import type { Host } from './host.js';
import type { ClusterStats } from '../stats.js';

export interface OutlierTarget {
  readonly stats: ClusterStats;
  hosts(): readonly Host[];
  onHealthChanged(host: Host): void;
}

type Detector = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'success_rate' | 'failure_percentage';

export class OutlierDetector {
  private timer: NodeJS.Timeout;

  constructor(
    private model: OutlierModel,
    private readonly target: OutlierTarget,
  ) {
    this.timer = this.startTimer();
  }

  private startTimer(): NodeJS.Timeout {
    const t = setInterval(() => this.onInterval(), this.model.intervalMs);
    t.unref();
    return t;
  }

  update(model: OutlierModel): void {
    const restart = model.intervalMs !== this.model.intervalMs;
    this.model = model;
    if (restart) {
      clearInterval(this.timer);
      this.timer = this.startTimer();
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** One finished upstream request. `status` is the HTTP status, or 0 for a local failure. */
  report(host: Host, status: number): void {
    host.intervalTotal++;
    const local = status === 0;
    const is5xx = local || status >= 500;
    if (!is5xx) {
      host.intervalSuccess++;
      host.consecutive5xx = 0;
      host.consecutiveGatewayFailure = 0;
      return;
    }
    const gateway = local || status === 502 || status === 503 || status === 504;
    host.consecutive5xx++;
    if (gateway) host.consecutiveGatewayFailure++;
    else host.consecutiveGatewayFailure = 0;
    const m = this.model;
    if (host.ejected) return;
    if (m.consecutive5xx > 0 && host.consecutive5xx >= m.consecutive5xx) {
      this.tryEject(host, 'consecutive_5xx', m.enforcingConsecutive5xx);
    } else if (gateway && m.consecutiveGatewayFailure > 0 && host.consecutiveGatewayFailure >= m.consecutiveGatewayFailure) {
      this.tryEject(host, 'consecutive_gateway_failure', m.enforcingConsecutiveGatewayFailure);
    }
  }

  /** An active health check passed: Envoy un-ejects the host unless configured otherwise. */
  onActiveHealthy(host: Host): void {
    if (host.ejected && this.model.unejectOnActiveHealthCheck) this.uneject(host);
  }

  private tryEject(host: Host, detector: Detector, enforcing: number): void {
    const od = this.target.stats.outlier_detection;
    od[`ejections_detected_${detector}`]++;
    if (Math.random() * 100 >= enforcing) return;
    const hosts = this.target.hosts();
    const ejected = hosts.filter((h) => h.ejected).length;
    if (ejected > 0 && ((ejected + 1) * 100) / hosts.length > this.model.maxEjectionPercent) {
      od.ejections_overflow++;
      return;
    }
    host.ejectionCount++;
    const ms = Math.min(this.model.baseEjectionMs * host.ejectionCount, this.model.maxEjectionMs);
    host.ejectedUntil = Date.now() + ms;
    host.ejected = true;
    host.consecutive5xx = 0;
    host.consecutiveGatewayFailure = 0;
    od.ejections_active++;
    od.ejections_total++;
    od.ejections_enforced_total++;
    od[`ejections_enforced_${detector}`]++;
    this.target.onHealthChanged(host);
  }

  private uneject(host: Host): void {
    host.ejected = false;
    host.ejectedUntil = 0;
    this.target.stats.outlier_detection.ejections_active--;
    this.target.onHealthChanged(host);
  }

  private onInterval(): void {
    const now = Date.now();
    const hosts = this.target.hosts();
    for (const h of hosts) {
      if (h.ejected && now >= h.ejectedUntil) this.uneject(h);
      else if (!h.ejected && h.ejectionCount > 0 && now >= h.ejectedUntil + this.model.baseEjectionMs) {
        // A host that stayed in for a while earns back a shorter next ejection (Envoy decrements too).
        h.ejectionCount--;
      }
    }
    this.statistical(hosts);
    for (const h of hosts) {
      h.intervalSuccess = 0;
      h.intervalTotal = 0;
    }
  }

  private statistical(hosts: readonly Host[]): void {
    const m = this.model;
    if (m.enforcingSuccessRate > 0) {
      const eligible = hosts.filter((h) => !h.ejected && h.intervalTotal >= m.successRateRequestVolume);
      if (eligible.length >= m.successRateMinimumHosts && eligible.length > 0) {
        const rates = eligible.map((h) => (100 * h.intervalSuccess) / h.intervalTotal);
        const mean = rates.reduce((s, r) => s + r, 0) / rates.length;
        const sd = Math.sqrt(rates.reduce((s, r) => s + (r - mean) ** 2, 0) / rates.length);
        const threshold = mean - m.successRateStdevFactor * sd;
        eligible.forEach((h, i) => {
          if ((rates[i] ?? 100) < threshold) this.tryEject(h, 'success_rate', m.enforcingSuccessRate);
        });
      }
    }
    if (m.enforcingFailurePercentage > 0) {
      const eligible = hosts.filter((h) => !h.ejected && h.intervalTotal >= m.failurePercentageRequestVolume);
      if (eligible.length >= m.failurePercentageMinimumHosts) {
        for (const h of eligible) {
          const failed = (100 * (h.intervalTotal - h.intervalSuccess)) / h.intervalTotal;
          if (failed >= m.failurePercentageThreshold) this.tryEject(h, 'failure_percentage', m.enforcingFailurePercentage);
        }
      }
    }
  }
}
