/**
 * Live access-log aggregates per route (virtual host authority + route name) and per upstream
 * cluster. In: one record() per access-log entry. Out: snapshot() for /stats/access-log and the
 * Prometheus collector, and clusterCounts() (raw counts and latency bins over the last N seconds)
 * for /stats/clusters, which the canary ramp sums across the fleet (src/ramp/fleet.ts).
 *
 * Bounded: the authority comes from the client's Host header, so keys are capped. Once
 * `maxRouteKeys` (or `maxClusterKeys`) distinct keys exist, further new keys share one overflow
 * key `(other)`, and `overflowed` counts the entries that went there. Each key holds a fixed-size
 * SlidingWindow, so the worst case is (maxRouteKeys + maxClusterKeys + 2) * windowBytes(window).
 */
import { SlidingWindow, STATUS_CLASSES, windowBytes, type StatusClass, type WindowSummary } from './sliding-window.js';

export const OVERFLOW_KEY = '(other)';

export interface AggregatesOptions {
  /** Sliding window length in seconds (default 60). */
  readonly windowSeconds?: number;
  /** Distinct route keys before new ones go to the overflow key (default 200). */
  readonly maxRouteKeys?: number;
  /** Distinct cluster keys before new ones go to the overflow key (default 100). */
  readonly maxClusterKeys?: number;
}

export interface RouteStats extends WindowSummary {
  readonly vhost: string;
  readonly route: string;
}

export interface ClusterStats extends WindowSummary {
  readonly cluster: string;
}

export interface AggregatesSnapshot {
  readonly windowSeconds: number;
  readonly routes: readonly RouteStats[];
  readonly clusters: readonly ClusterStats[];
  /** Entries counted under the overflow key because the key cap was reached. */
  readonly overflowed: { readonly routes: number; readonly clusters: number };
  /** Upper bound of the memory the aggregates can ever hold, in bytes. */
  readonly maxBytes: number;
}

/**
 * One cluster's raw counts over a window, as /stats/clusters serves them: requests, per status
 * class, and the latency histogram as sparse [bin, count] pairs (bins: als/latency-histogram.ts).
 */
export interface ClusterCounts {
  readonly cluster: string;
  readonly requests: number;
  readonly classes: Readonly<Record<StatusClass, number>>;
  readonly bins: ReadonlyArray<readonly [number, number]>;
}

export interface ClusterCountsSnapshot {
  /** The window asked for, capped at the sink's own window. */
  readonly seconds: number;
  /** The sink's window: the longest span it can answer for. */
  readonly windowSeconds: number;
  readonly clusters: readonly ClusterCounts[];
}

interface RouteEntry {
  readonly vhost: string;
  readonly route: string;
  readonly window: SlidingWindow;
}

interface ClusterEntry {
  readonly cluster: string;
  readonly window: SlidingWindow;
}

export class AccessAggregates {
  readonly windowSeconds: number;
  private readonly maxRouteKeys: number;
  private readonly maxClusterKeys: number;
  /** Every route key in first-seen order (what snapshot() lists). */
  private readonly routes = new Map<string, RouteEntry>();
  /** The same entries by vhost, then route (the per-entry lookup); overflowed keys are not here. */
  private readonly routeIndex = new Map<string, Map<string, RouteEntry>>();
  private readonly clusters = new Map<string, ClusterEntry>();
  private routeOverflow = 0;
  private clusterOverflow = 0;

  constructor(opts: AggregatesOptions = {}) {
    this.windowSeconds = opts.windowSeconds ?? 60;
    this.maxRouteKeys = opts.maxRouteKeys ?? 200;
    this.maxClusterKeys = opts.maxClusterKeys ?? 100;
  }

  /**
   * Count one finished request. `vhost` is the request authority, `route` Envoy's route name
   * (either may be empty); an empty `vhost` and `route` (TCP) skips the route aggregate, an empty
   * `cluster` (no route matched) skips the cluster aggregate.
   */
  record(nowSec: number, vhost: string, route: string, cluster: string, status: number, durationMs: number): void {
    if (vhost !== '' || route !== '') this.routeFor(vhost, route).record(nowSec, status, durationMs);
    if (cluster !== '') this.clusterFor(cluster).record(nowSec, status, durationMs);
  }

  snapshot(nowSec: number = Math.floor(Date.now() / 1000)): AggregatesSnapshot {
    const routes: RouteStats[] = [];
    for (const e of this.routes.values()) routes.push({ vhost: e.vhost, route: e.route, ...e.window.summary(nowSec) });
    const clusters: ClusterStats[] = [];
    for (const e of this.clusters.values()) clusters.push({ cluster: e.cluster, ...e.window.summary(nowSec) });
    return {
      windowSeconds: this.windowSeconds,
      routes,
      clusters,
      overflowed: { routes: this.routeOverflow, clusters: this.clusterOverflow },
      maxBytes: (this.maxRouteKeys + this.maxClusterKeys + 2) * windowBytes(this.windowSeconds),
    };
  }

  /** Every cluster's counts over the last `seconds` seconds (capped at the window). */
  clusterCounts(seconds: number, nowSec: number = Math.floor(Date.now() / 1000)): ClusterCountsSnapshot {
    const clusters: ClusterCounts[] = [];
    const span = Math.min(Math.max(1, Math.floor(seconds)), this.windowSeconds);
    for (const e of this.clusters.values()) {
      const c = e.window.counts(nowSec, span);
      const classes = {} as Record<StatusClass, number>;
      STATUS_CLASSES.forEach((name, i) => {
        classes[name] = c.classes[i]!;
      });
      const bins: Array<readonly [number, number]> = [];
      c.bins.forEach((n, i) => {
        if (n > 0) bins.push([i, n]);
      });
      clusters.push({ cluster: e.cluster, requests: c.requests, classes, bins });
    }
    return { seconds: span, windowSeconds: this.windowSeconds, clusters };
  }

  private routeFor(vhost: string, route: string): SlidingWindow {
    // Looked up by vhost, then route: no key string is built per entry (the decoder hands out
    // one shared string per repeated value, so these lookups hit V8's cached hashes).
    const byRoute = this.routeIndex.get(vhost);
    const hit = byRoute?.get(route);
    if (hit) return hit.window;
    const key = `${vhost}\n${route}`;
    const found = this.routes.get(key);
    if (found) return found.window;
    if (this.routes.size >= this.maxRouteKeys) {
      this.routeOverflow++;
      return this.overflowRoute();
    }
    const entry: RouteEntry = { vhost, route, window: new SlidingWindow(this.windowSeconds) };
    this.routes.set(key, entry);
    if (byRoute) byRoute.set(route, entry);
    else this.routeIndex.set(vhost, new Map([[route, entry]]));
    return entry.window;
  }

  private clusterFor(cluster: string): SlidingWindow {
    const found = this.clusters.get(cluster);
    if (found) return found.window;
    if (this.clusters.size >= this.maxClusterKeys) {
      this.clusterOverflow++;
      return this.overflowCluster();
    }
    const entry: ClusterEntry = { cluster, window: new SlidingWindow(this.windowSeconds) };
    this.clusters.set(cluster, entry);
    return entry.window;
  }

  // The overflow keys are created on first use, once the map is already full, and are stored in
  // the maps so snapshot() lists them like any other key.
  private routeOverflowEntry?: RouteEntry;
  private clusterOverflowEntry?: ClusterEntry;

  private overflowRoute(): SlidingWindow {
    if (!this.routeOverflowEntry) {
      this.routeOverflowEntry = { vhost: OVERFLOW_KEY, route: OVERFLOW_KEY, window: new SlidingWindow(this.windowSeconds) };
      this.routes.set(`${OVERFLOW_KEY}\n${OVERFLOW_KEY}`, this.routeOverflowEntry);
    }
    return this.routeOverflowEntry.window;
  }

  private overflowCluster(): SlidingWindow {
    if (!this.clusterOverflowEntry) {
      this.clusterOverflowEntry = { cluster: OVERFLOW_KEY, window: new SlidingWindow(this.windowSeconds) };
      this.clusters.set(OVERFLOW_KEY, this.clusterOverflowEntry);
    }
    return this.clusterOverflowEntry.window;
  }
}
