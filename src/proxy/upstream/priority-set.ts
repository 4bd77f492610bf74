/**
 * Priorities, localities and panic mode: which hosts a cluster's load balancer may pick from.
 * In: the cluster's hosts (with priority, locality, weight and health flags) and its lb
 * settings. Out: `pick(hash)` -> Host, following Envoy's rules:
 *
 *  - priority load: each priority's health is min(100, overprovisioning * healthy/total) percent;
 *    traffic goes to priority 0 up to its health, the remainder spills to the next priorities;
 *  - panic: a priority whose healthy (+ degraded) share of its non-excluded hosts is below the
 *    panic threshold balances over all its hosts, unhealthy and DRAINING ones included (Envoy's
 *    guard against a bad health signal emptying a cluster); a priority of DRAINING hosts only
 *    has no share at all, so it is in panic too; a threshold of 0 turns panic off;
 *  - locality weighting (common_lb_config.locality_weighted_lb_config): a locality is picked by
 *    weight x availability (its own overprovisioned healthy share), then a host inside it;
 *  - DRAINING hosts are excluded outside panic; DEGRADED hosts are used only when a priority has
 *    no healthy host.
 *
 * Everything is precomputed on rebuild (membership or health change); `pick` only draws.
 */
import type { ClusterModel } from '../config/cluster-resource.js';
import type { Host } from './host.js';
import type { LoadBalancer } from './lb/load-balancer.js';
import { createLoadBalancer, isHashBased } from './lb/policies.js';
import { EdfScheduler } from './edf-scheduler.js';

interface Locality {
  readonly weight: number;
  readonly lb: LoadBalancer;
}

interface Level {
  /** Balancer over the usable hosts (healthy, or all in panic). */
  readonly lb: LoadBalancer | undefined;
  /** Locality scheduler when locality weighting applies. */
  readonly localities: EdfScheduler<Locality> | undefined;
  readonly panic: boolean;
}

export interface PrioritySummary {
  readonly total: number;
  readonly healthy: number;
  readonly degraded: number;
  readonly excluded: number;
  readonly panic: boolean;
}

export class PrioritySet {
  private levels: Level[] = [];
  /** Cumulative priority load in percent, one entry per level. */
  private cumulative: number[] = [];
  private summary: PrioritySummary = { total: 0, healthy: 0, degraded: 0, excluded: 0, panic: false };
  /** Counts picks made in panic mode (cluster.<name>.lb_healthy_panic). */
  panicPicks = 0;

  rebuild(model: ClusterModel, hosts: readonly Host[], overprovisioning: number): void {
    // Every host of a priority, excluded ones too: panic mode balances over them all (Envoy's hosts()).
    const byPriority: Host[][] = [];
    let excluded = 0;
    for (const h of hosts) {
      if (h.excluded) excluded++;
      const atPriority = byPriority[h.priority];
      if (atPriority) atPriority.push(h);
      else byPriority[h.priority] = [h];
    }
    const factor = overprovisioning / 100;
    const levels: Level[] = [];
    const health: number[] = [];
    let total = 0;
    let healthyCount = 0;
    let degradedCount = 0;
    let anyPanic = false;
    const candidates: Array<{ every: Host[]; counted: Host[]; healthy: Host[]; degraded: Host[]; share: number }> = [];
    for (let p = 0; p < byPriority.length; p++) {
      const every = byPriority[p] ?? [];
      const counted = every.filter((h) => !h.excluded);
      const healthy = counted.filter((h) => h.healthy && !h.degraded);
      const degraded = counted.filter((h) => h.healthy && h.degraded);
      total += counted.length;
      healthyCount += healthy.length;
      degradedCount += degraded.length;
      const share = counted.length === 0 ? 0 : (100 * healthy.length) / counted.length;
      health.push(Math.min(100, share * factor));
      candidates.push({ every, counted, healthy, degraded, share });
    }
    // Envoy's panic rule: a priority whose healthy + degraded share is below the threshold is in
    // panic; with nothing available anywhere, every priority is, unless the threshold is 0
    // (panic mode off: no host at all, so "no healthy upstream").
    const nothingAvailable = health.every((h) => h === 0) && degradedCount === 0;
    for (const { every, counted, healthy, degraded, share } of candidates) {
      const available = counted.length === 0 ? 0 : share + (100 * degraded.length) / counted.length;
      const panic = every.length > 0 && model.panicThreshold > 0 && (nothingAvailable || available < model.panicThreshold);
      anyPanic ||= panic;
      const usable = panic ? every : healthy.length > 0 ? healthy : degraded;
      levels.push(this.level(model, usable, counted, panic, factor));
    }
    // Priority load (Envoy's normalized total health): scale healths so they add up to 100.
    const sum = Math.min(
      100,
      health.reduce((s, h) => s + h, 0),
    );
    const cumulative: number[] = [];
    if (sum === 0) {
      // Nothing healthy anywhere: everything to priority 0 (in panic).
      for (let i = 0; i < levels.length; i++) cumulative.push(100);
    } else {
      let remaining = 100;
      let acc = 0;
      for (const h of health) {
        const load = Math.min(remaining, Math.round((h * 100) / sum));
        remaining -= load;
        acc += load;
        cumulative.push(acc);
      }
      if (cumulative.length > 0) cumulative[cumulative.length - 1] = 100;
    }
    this.levels = levels;
    this.cumulative = cumulative;
    this.summary = { total: total + excluded, healthy: healthyCount, degraded: degradedCount, excluded, panic: anyPanic };
  }

  private level(model: ClusterModel, usable: Host[], all: Host[], panic: boolean, factor: number): Level {
    const hashBased = isHashBased(model.lbPolicy);
    if (!model.localityWeighted || panic || usable.length === 0) {
      return {
        lb: usable.length
          ? createLoadBalancer(
              model,
              usable,
              usable.map((h) => h.weight),
            )
          : undefined,
        localities: undefined,
        panic,
      };
    }
    // Group by locality; the locality weight comes from EDS (the same on every host of it).
    const groups = new Map<string, { hosts: Host[]; total: number; weight: number }>();
    for (const h of all) {
      const g = groups.get(h.localityKey) ?? { hosts: [], total: 0, weight: h.localityWeight };
      g.total++;
      if (usable.includes(h)) g.hosts.push(h);
      groups.set(h.localityKey, g);
    }
    if (hashBased) {
      // Hash tables span the whole priority; locality weight scales each host's share.
      const weights = usable.map((h) => {
        const g = groups.get(h.localityKey);
        return h.weight * (g ? g.weight : 1);
      });
      return { lb: createLoadBalancer(model, usable, weights), localities: undefined, panic };
    }
    const entries: Locality[] = [];
    const effective: number[] = [];
    for (const g of groups.values()) {
      if (g.hosts.length === 0 || g.weight === 0) continue;
      const availability = Math.min(1, (factor * g.hosts.length) / g.total);
      entries.push({
        weight: g.weight,
        lb: createLoadBalancer(
          model,
          g.hosts,
          g.hosts.map((h) => h.weight),
        ),
      });
      effective.push(g.weight * availability);
    }
    if (entries.length === 0) return { lb: undefined, localities: undefined, panic };
    return { lb: undefined, localities: new EdfScheduler(entries, effective), panic };
  }

  pick(hash: number | undefined): Host | undefined {
    const levels = this.levels;
    let level = levels[0];
    if (levels.length > 1) {
      const r = Math.random() * 100;
      for (let i = 0; i < levels.length; i++) {
        if (r < (this.cumulative[i] ?? 100)) {
          level = levels[i];
          break;
        }
      }
    }
    if (!level) return undefined;
    if (level.panic) this.panicPicks++;
    if (level.lb) return level.lb.pick(hash);
    return level.localities?.next()?.lb.pick(hash);
  }

  stats(): PrioritySummary {
    return this.summary;
  }
}
