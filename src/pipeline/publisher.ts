/**
 * The one place where the model becomes a snapshot. In: the latest valid Config (from a file or
 * Consul KV) and the latest EndpointMap (static endpoints and/or Consul health). Out: a consistent
 * snapshot set on the cache, or an error that leaves the last good snapshot serving.
 *
 * Per client kind: the group's snapshot (`group`) is Envoy's and never holds an API listener;
 * when the config has `type: grpc` listeners, a second snapshot (`<group>/grpc`, see
 * cache/client-kind.ts) holds only those and the clusters they route to, for proxyless gRPC
 * clients. Both come from one translation and are set together, or neither is.
 *
 * Endpoints are judged per cluster: when a dynamic source's endpoints for one cluster would be
 * NACKed (see translate/endpoints.ts), that cluster keeps its last good endpoints and the refusal
 * is reported (status `refusedEndpoints`, a 'rejected' event), while every other cluster of the
 * group keeps getting updates. One bad registration never freezes a group's EDS.
 *
 * Changes are coalesced: a rebuild waits until its inputs have been quiet for a moment (a short
 * moment for config edits, a longer one for endpoint changes, which come in bursts when many
 * instances flap and Consul answers at most every 100 ms per watch), but never longer than
 * `maxDelayMs` after the first change. So 100 instances flapping together produce one snapshot,
 * and a lone change still reaches Envoy in well under a second.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import type { EndpointInfo, EndpointMap } from '../config/endpoints.js';
import { staticEndpoints } from '../config/static-endpoints.js';
import { endpointIssues } from '../translate/endpoints.js';
import { ConfigError } from '../errors.js';
import type { Snapshot } from '../cache/snapshot.js';
import { buildSnapshots } from './build.js';
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import type { MakeBeforeBreak, PendingStage } from '../cache/make-before-break.js';
import { grpcGroup } from '../cache/client-kind.js';
import type { Logger } from '../log.js';

export interface PublisherOptions {
  readonly cache: SnapshotCache;
  readonly logger: Logger;
  /** Snapshots go through it, so removals wait for clients to drop their references (default: straight to the cache). */
  readonly makeBeforeBreak?: MakeBeforeBreak;
  /** Node group the snapshots are for (see SnapshotCache). */
  readonly group?: string;
  /** Quiet time after a config change before rebuilding (default 20 ms). */
  readonly coalesceMs?: number;
  /** Quiet time after an endpoint change before rebuilding (default 150 ms: longer than Consul's 100 ms re-query interval). */
  readonly endpointQuietMs?: number;
  /** Upper bound on the delay of any change, however long the burst (default 500 ms). */
  readonly maxDelayMs?: number;
}

export interface PublishError {
  readonly origin: string;
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

export interface PublisherStatus {
  readonly group: string;
  readonly configOrigin?: string;
  readonly snapshotVersions?: Readonly<Record<string, string>>;
  /** Versions of the `<group>/grpc` snapshot, when the config has gRPC listeners. */
  readonly grpcSnapshotVersions?: Readonly<Record<string, string>>;
  readonly lastPublishedAt?: string;
  readonly publishes: number;
  readonly lastError?: PublishError;
  /** Clusters whose latest dynamic endpoints were refused (they serve their last good ones): cluster -> reason. */
  readonly refusedEndpoints?: Readonly<Record<string, string>>;
  /** Make before break stages in progress for this group (or its `/grpc` group): held removals, new clusters ahead of their routes. */
  readonly makeBeforeBreak?: readonly PendingStage[];
}

/** Emits 'published' (snapshot, buildMs) and 'rejected' (PublishError). */
export class Publisher extends EventEmitter {
  private readonly cache: SnapshotCache;
  private readonly makeBeforeBreak?: MakeBeforeBreak;
  private readonly logger: Logger;
  private readonly group: string;
  private readonly coalesceMs: number;
  private readonly endpointQuietMs: number;
  private readonly maxDelayMs: number;
  /** When the first change of the pending burst arrived, and when the rebuild is due. */
  private firstChangeAt = 0;
  private dueAt = 0;
  private good?: { config: Config; origin: string };
  private candidate?: { config: Config; origin: string };
  private dynamicEndpoints: EndpointMap = new Map();
  /** Per cluster, the last dynamic endpoints that passed the check, and the refusals in force. */
  private goodEndpoints = new Map<string, readonly EndpointInfo[]>();
  private refused = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private publishes = 0;
  private lastPublishedAt?: string;
  private lastError?: PublishError;
  private current?: Snapshot;
  private currentGrpc?: Snapshot;

  constructor(opts: PublisherOptions) {
    super();
    this.cache = opts.cache;
    this.makeBeforeBreak = opts.makeBeforeBreak;
    this.logger = opts.logger.child({ component: 'publisher', group: opts.group ?? 'default' });
    this.group = opts.group ?? 'default';
    this.coalesceMs = opts.coalesceMs ?? 20;
    this.endpointQuietMs = opts.endpointQuietMs ?? 150;
    this.maxDelayMs = opts.maxDelayMs ?? 500;
  }

  /** A new validated config. It replaces the last good one only if it also translates cleanly. */
  setConfig(config: Config, origin: string): void {
    this.candidate = { config, origin };
    this.schedule(this.coalesceMs);
  }

  /** Endpoints from a dynamic source (Consul health). Static endpoints from the config win per cluster. */
  setEndpoints(endpoints: EndpointMap): void {
    this.dynamicEndpoints = endpoints;
    this.schedule(this.endpointQuietMs);
  }

  /**
   * A source could not produce a config (invalid YAML, a schema error, Consul unreachable): record
   * and report it; the last good snapshot keeps serving.
   */
  reject(origin: string, err: Error): void {
    this.fail(origin, err, 'config refused; last good snapshot keeps serving');
  }

  /** Build and publish right now (used at start-up and by tests). Returns the snapshot or undefined. */
  flush(): Snapshot | undefined {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.rebuild();
    return this.current;
  }

  get snapshot(): Snapshot | undefined {
    return this.current;
  }

  /** The snapshot for proxyless gRPC clients; undefined while the config has no gRPC listener. */
  get grpcSnapshot(): Snapshot | undefined {
    return this.currentGrpc;
  }

  status(): PublisherStatus {
    const groups = [this.group, grpcGroup(this.group)];
    const pending = this.makeBeforeBreak?.pending().filter((p) => groups.includes(p.group)) ?? [];
    return {
      group: this.group,
      configOrigin: this.good?.origin,
      snapshotVersions: this.current?.versions(),
      grpcSnapshotVersions: this.currentGrpc?.versions(),
      lastPublishedAt: this.lastPublishedAt,
      publishes: this.publishes,
      lastError: this.lastError,
      ...(this.refused.size > 0 && { refusedEndpoints: Object.fromEntries(this.refused) }),
      ...(pending.length > 0 && { makeBeforeBreak: pending }),
    };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** (Re)arms the rebuild timer so it fires `quietMs` after this change, capped at maxDelayMs after the burst began. */
  private schedule(quietMs: number): void {
    const now = performance.now();
    if (!this.timer) this.firstChangeAt = now;
    const due = Math.min(now + quietMs, this.firstChangeAt + this.maxDelayMs);
    if (this.timer && due <= this.dueAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.dueAt = due;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.rebuild();
      },
      Math.max(0, due - now),
    );
    this.timer.unref();
  }

  private rebuild(): void {
    const next = this.candidate ?? this.good;
    if (!next) return; // no config yet: nothing to serve
    const started = performance.now();
    try {
      const statics = staticEndpoints(next.config);
      const { accepted, refused } = this.screen(this.dynamicEndpoints, statics);
      const endpoints = mergeEndpoints(accepted, statics);
      const { envoy: snapshot, grpc: grpcSnapshot } = buildSnapshots(next.config, endpoints);
      const buildMs = performance.now() - started;
      this.good = next;
      this.candidate = undefined;
      this.goodEndpoints = new Map(accepted);
      this.reportRefusals(refused);
      this.current = snapshot;
      this.currentGrpc = grpcSnapshot;
      const target = this.makeBeforeBreak ?? this.cache;
      target.set(this.group, snapshot);
      if (grpcSnapshot) target.set(grpcGroup(this.group), grpcSnapshot);
      else target.delete(grpcGroup(this.group));
      this.publishes++;
      this.lastPublishedAt = new Date().toISOString();
      const grpcVersions = grpcSnapshot ? { grpcVersions: grpcSnapshot.versions() } : {};
      this.logger.info({ origin: next.origin, versions: snapshot.versions(), ...grpcVersions, buildMs: Math.round(buildMs * 10) / 10 }, 'snapshot published');
      this.emit('published', snapshot, buildMs);
    } catch (err) {
      const refusedConfig = this.candidate !== undefined;
      // A refused config is dropped: rebuilds (endpoint changes) go on from the last good one.
      this.candidate = undefined;
      this.fail(
        next.origin,
        err as Error,
        refusedConfig ? 'config refused; last good snapshot keeps serving' : 'snapshot rebuild failed; last good snapshot keeps serving',
      );
    }
  }

  /**
   * Splits the dynamic endpoints into those Envoy accepts and refusals (cluster -> error); a
   * refused cluster keeps its last good endpoints (none yet: it is left out, so its CLA is empty).
   * Clusters with static endpoints are not looked at: the config's list wins there.
   */
  private screen(dynamic: EndpointMap, statics: EndpointMap): { accepted: EndpointMap; refused: Map<string, ConfigError> } {
    const accepted = new Map<string, readonly EndpointInfo[]>();
    const refused = new Map<string, ConfigError>();
    for (const [cluster, eps] of dynamic) {
      if (statics.has(cluster)) continue;
      const issues = endpointIssues(cluster, eps);
      if (issues.length === 0) {
        accepted.set(cluster, eps);
        continue;
      }
      refused.set(cluster, new ConfigError(`endpoints of cluster ${cluster}`, issues));
      const last = this.goodEndpoints.get(cluster);
      if (last) accepted.set(cluster, last);
    }
    return { accepted, refused };
  }

  /** Reports each refusal once (while it stays the same), and forgets those resolved. */
  private reportRefusals(refused: ReadonlyMap<string, ConfigError>): void {
    for (const [cluster, err] of refused) {
      if (this.refused.get(cluster) === err.message) continue;
      this.fail(`endpoints of cluster ${cluster}`, err, 'endpoints refused; the cluster keeps its last good endpoints, other clusters update');
    }
    for (const cluster of this.refused.keys()) if (!refused.has(cluster)) this.logger.info({ cluster }, 'endpoints accepted again');
    this.refused = new Map([...refused].map(([cluster, err]) => [cluster, err.message]));
  }

  private fail(origin: string, err: Error, msg: string): void {
    const code = (err as { code?: string }).code ?? 'CXDS_INTERNAL';
    this.lastError = { origin, code, message: err.message, at: new Date().toISOString() };
    this.logger.error({ origin, code, err: err.message }, msg);
    this.emit('rejected', this.lastError);
  }
}

/** Static endpoints (declared in the config) take precedence over dynamic ones for the same cluster. */
function mergeEndpoints(dynamic: EndpointMap, statics: EndpointMap): EndpointMap {
  if (statics.size === 0) return dynamic;
  if (dynamic.size === 0) return statics;
  const merged = new Map(dynamic);
  for (const [cluster, eps] of statics) merged.set(cluster, eps);
  return merged;
}
