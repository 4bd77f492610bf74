/**
 * Make before break: clients get what a change adds before the references to it, and lose what
 * it removes only after the references to it are gone.
 *
 * In: snapshots from the publisher (`set(group, snapshot)`, `delete(group)`), and what the
 * group's connected streams have answered (ClientProgress, implemented by the server's stream
 * registry for every protocol). Out: snapshots set on the SnapshotCache, in up to three steps.
 *
 * The xDS rule: additions go CDS -> EDS -> LDS -> RDS, removals the other way, and a Cluster is
 * removed only once the routes that stopped naming it have been ACKed (or NACKed); the same for a
 * RouteConfiguration and the Listeners that stopped naming it. Sending the Cluster removal first
 * makes clients fail calls in between (grpc-go logs `resource "canary" ... has been removed`).
 * Order on one stream is not enough for additions either: Envoy routes to a Cluster only once it
 * has warmed (its ClusterLoadAssignment applied), and routes written right behind the Cluster
 * reach its workers first often enough to fail requests with 503 NC (no_cluster).
 *
 * So a snapshot `next` is reached from what the group is served now, one stage at a time:
 * 1. make: when `next` adds Clusters (or ClusterLoadAssignments) and changes Listeners or routes,
 *    the group first gets `next`'s Clusters and assignments (plus those it drops, held) with the
 *    Listeners and routes it has now; the stage is over once every stream answered its CDS and EDS.
 *    Then, when `next`'s routes send calls to clusters the routes served do not name, those routes
 *    plus a route no call matches to each such cluster (see routesNamingNew); over once every
 *    stream answered its LDS and RDS.
 * 2. break: when `next` drops Clusters, ClusterLoadAssignments or RouteConfigurations, the group
 *    gets `next` plus the dropped resources (held); over once every stream answered its LDS and RDS.
 * 3. `next` itself.
 * Every protocol serves a stage like any snapshot; a stage that changes nothing a stream holds is
 * answered at once. "Answered" means evaluated, and whatever was sent ACKed or NACKed; a stream
 * that disconnects no longer counts; one that never answers is waited for at most `timeoutMs` a stage,
 * then `next` is set as it is. A newer snapshot meanwhile starts over from what the group is
 * served then: what it drops is held with the rest (no removal lost), what it brings back is its
 * own (nothing resurrected).
 */
import { TYPE_SHORT, TypeUrl, type TypeShort, type XdsTypeUrl } from '../xds/resource-types.js';
import { silentLogger, type Logger } from '../log.js';
import { withResourcesOf, withRouteConfigurations, type Snapshot } from './snapshot.js';
import { routedClusters } from '../translate/client-split.js';
import type { ProtoObject } from '../xds/resources.js';
import type { SnapshotCache } from './snapshot-cache.js';

/** A stream that has not answered the staged snapshot yet. */
export interface WaitingStream {
  readonly streamId: number;
  readonly nodeId: string;
  /** The types it owes an answer for. */
  readonly types: readonly TypeShort[];
}

/** What the streams of a group have answered; the server's StreamRegistry implements it. */
export interface ClientProgress {
  /**
   * The streams of `group` subscribed to one of these types that have not yet evaluated its
   * version, or whose response of it is still unanswered (neither ACKed nor NACKed).
   */
  unanswered(group: string, versions: ReadonlyMap<XdsTypeUrl, string>): readonly WaitingStream[];
  /** `listener` runs after any stream ACKs, NACKs or closes; returns a function that stops it. */
  onAnswer(listener: () => void): () => void;
}

export interface MakeBeforeBreakOptions {
  readonly cache: SnapshotCache;
  /** Without it (or with timeoutMs 0) snapshots go to the cache as they come. */
  readonly progress?: ClientProgress;
  /** Longest wait for streams that do not answer (default 5000 ms; 0 turns staging off). */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
}

/** A stage being served, as /status shows it. */
export interface PendingStage {
  readonly group: string;
  /** 'make': new Clusters go out before the routes naming them; 'break': removals wait for the routes. */
  readonly stage: 'make' | 'break';
  /** What is held, per type. */
  readonly held: Readonly<Partial<Record<TypeShort, readonly string[]>>>;
  /** When the change that is being staged (or the oldest one it superseded) arrived (ISO 8601). */
  readonly since: string;
  /** When the final snapshot is set regardless (ISO 8601). */
  readonly deadline: string;
  /** The stage's versions the streams must answer (CDS/EDS for 'make', LDS/RDS for 'break'). */
  readonly versions: Readonly<Partial<Record<TypeShort, string>>>;
  readonly waitingFor: readonly WaitingStream[];
}

export const DEFAULT_STAGE_TIMEOUT_MS = 5_000;

/** Resources that something else names: they come before, and go after, what names them. */
const HELD_TYPES: readonly XdsTypeUrl[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration];
const CLUSTER_TYPES: readonly XdsTypeUrl[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment];
const NAMING_TYPES: readonly XdsTypeUrl[] = [TypeUrl.Listener, TypeUrl.RouteConfiguration];

/** One step towards a snapshot: what to serve, and the types every stream must answer before the next step. */
interface Stage {
  readonly kind: 'make' | 'break';
  readonly snapshot: Snapshot;
  readonly held: ReadonlyMap<XdsTypeUrl, readonly string[]>;
  readonly waitFor: readonly XdsTypeUrl[];
}

interface Pending {
  readonly final: Snapshot;
  readonly stage: Stage['kind'];
  readonly held: ReadonlyMap<XdsTypeUrl, readonly string[]>;
  readonly versions: ReadonlyMap<XdsTypeUrl, string>;
  readonly since: number;
  readonly deadline: number;
  readonly timer: NodeJS.Timeout;
  waiting: readonly WaitingStream[];
}

export class MakeBeforeBreak {
  readonly #cache: SnapshotCache;
  readonly #progress: ClientProgress | undefined;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #pending = new Map<string, Pending>();
  #stopListening: (() => void) | undefined;
  #checkScheduled = false;

  constructor(opts: MakeBeforeBreakOptions) {
    this.#cache = opts.cache;
    this.#progress = opts.progress;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_STAGE_TIMEOUT_MS;
    this.#logger = (opts.logger ?? silentLogger).child({ component: 'make-before-break' });
  }

  /** Publish `next` for `group`: at once, or in stages (see the top of this file). */
  set(group: string, next: Snapshot): void {
    this.#advance(group, next, this.#pending.get(group)?.since ?? Date.now());
  }

  /** Serve the next stage towards `next` (from what the group is served now), or `next` itself. */
  #advance(group: string, next: Snapshot, since: number): void {
    const current = this.#cache.get(group);
    const stage = current === undefined || this.#progress === undefined || this.#timeoutMs === 0 ? undefined : nextStage(current, next);
    this.#settle(group);
    if (stage === undefined) {
      this.#cache.set(group, next);
      return;
    }
    const now = Date.now();
    const timer = setTimeout(() => this.#expire(group), this.#timeoutMs);
    timer.unref();
    this.#pending.set(group, {
      final: next,
      stage: stage.kind,
      held: stage.held,
      versions: new Map(stage.waitFor.map((t) => [t, stage.snapshot.version(t)])),
      since,
      deadline: now + this.#timeoutMs,
      timer,
      waiting: [],
    });
    this.#listen();
    // Streams evaluate the stage synchronously here: those it sends nothing have answered already.
    this.#cache.set(group, stage.snapshot);
    this.#check(group);
  }

  /** Drop a group (no staging: its clients move to another group). */
  delete(group: string): boolean {
    this.#settle(group);
    return this.#cache.delete(group);
  }

  /** The stages served now, per group (what is held, since when, waiting for which streams). */
  pending(): PendingStage[] {
    return [...this.#pending].map(([group, p]) =>
      Object.freeze({
        group,
        stage: p.stage,
        held: Object.freeze(heldLog(p.held)),
        since: new Date(p.since).toISOString(),
        deadline: new Date(p.deadline).toISOString(),
        versions: Object.freeze(Object.fromEntries([...p.versions].map(([t, v]) => [TYPE_SHORT[t], v]))),
        waitingFor: p.waiting,
      }),
    );
  }

  /** Stop the timers (shutdown); what the cache holds stays. */
  close(): void {
    for (const group of [...this.#pending.keys()]) this.#settle(group);
  }

  #check(group: string): void {
    const p = this.#pending.get(group);
    if (p === undefined || this.#progress === undefined) return;
    p.waiting = Object.freeze(this.#progress.unanswered(group, p.versions));
    if (p.waiting.length > 0) return;
    this.#logger.debug({ group, stage: p.stage, held: heldLog(p.held), waitedMs: Date.now() - p.since }, 'make before break: stage answered');
    if (p.stage === 'make') {
      this.#advance(group, p.final, p.since);
      return;
    }
    this.#settle(group);
    this.#cache.set(group, p.final);
  }

  #expire(group: string): void {
    const p = this.#pending.get(group);
    if (p === undefined) return;
    this.#check(group);
    if (!this.#pending.has(group)) return;
    this.#logger.warn(
      { group, stage: p.stage, waitedMs: Date.now() - p.since, waitingFor: p.waiting.map((w) => ({ node: w.nodeId, stream: w.streamId, types: w.types })) },
      'make before break: streams did not answer in time; serving the new snapshot as it is',
    );
    this.#settle(group);
    this.#cache.set(group, p.final);
  }

  /** Forget the group's pending removal (superseded, released or deleted). */
  #settle(group: string): void {
    const p = this.#pending.get(group);
    if (p === undefined) return;
    clearTimeout(p.timer);
    this.#pending.delete(group);
    if (this.#pending.size === 0) {
      this.#stopListening?.();
      this.#stopListening = undefined;
    }
  }

  /**
   * While a stage is served, hear of every answer and check once the stream has flushed: in a
   * microtask, so the next stage is set before any other I/O (a /status/clients request) can see
   * the stage as current and its streams as up to date.
   */
  #listen(): void {
    if (this.#stopListening !== undefined || this.#progress === undefined) return;
    this.#stopListening = this.#progress.onAnswer(() => {
      if (this.#checkScheduled) return;
      this.#checkScheduled = true;
      queueMicrotask(() => {
        this.#checkScheduled = false;
        for (const group of [...this.#pending.keys()]) this.#check(group);
      });
    });
  }
}

/** The stage to serve next on the way from `current` to `next`; undefined: `next` itself. */
function nextStage(current: Snapshot, next: Snapshot): Stage | undefined {
  const held = namesOnlyIn(current, next, HELD_TYPES);
  const routesChange = NAMING_TYPES.some((t) => current.version(t) !== next.version(t));
  if (routesChange && namesOnlyIn(next, current, CLUSTER_TYPES).size > 0) {
    // The Listeners and routes stay as served: they name no cluster that is not there.
    return { kind: 'make', snapshot: withResourcesOf(next, current, held, NAMING_TYPES), held, waitFor: CLUSTER_TYPES };
  }
  const routes = routesNamingNew(current, next);
  if (routes !== undefined) {
    // Clusters as in the make stage; the Listeners as served, the routes as served plus the naming routes.
    const base = withResourcesOf(next, current, held, NAMING_TYPES);
    return { kind: 'make', snapshot: withRouteConfigurations(base, routes), held, waitFor: NAMING_TYPES };
  }
  if (held.size === 0) return undefined;
  return { kind: 'break', snapshot: withResourcesOf(next, current, held), held, waitFor: NAMING_TYPES };
}

/** A route no call matches (a runtime fraction of 0%): it only names the clusters it routes to. */
const NAMING_ROUTE_MATCH = Object.freeze({
  prefix: '',
  runtime_fraction: { default_value: { numerator: 0, denominator: 'HUNDRED' }, runtime_key: 'consul_xds.make_before_break' },
});

/**
 * `current`'s RouteConfigurations, each of whose counterpart in `next` sends calls to clusters it
 * does not, with a route to each such cluster in every virtual host that no call matches;
 * undefined when there are none. grpc-go's xds_cluster_manager has a child (a picker) for a
 * cluster only once a route names it, and its resolver hands RPCs the new routes before the
 * cluster manager has the child: calls picking the cluster in between fail with "unknown cluster
 * selected for RPC". Named first by a route no call takes, the cluster has its child before the
 * route that sends calls to it arrives (the client applies route updates in order).
 */
function routesNamingNew(current: Snapshot, next: Snapshot): ProtoObject[] | undefined {
  if (current.version(TypeUrl.RouteConfiguration) === next.version(TypeUrl.RouteConfiguration)) return undefined;
  const nextRoutes = next.type(TypeUrl.RouteConfiguration).resources;
  let changed = false;
  const routes = current.type(TypeUrl.RouteConfiguration).list.map((r) => {
    const after = nextRoutes.get(r.name);
    if (after === undefined) return r.object;
    const named = new Set(routedClusters(r.object));
    const fresh = [...new Set(routedClusters(after.object))].filter((c) => !named.has(c));
    if (fresh.length === 0) return r.object;
    changed = true;
    const extra = fresh.map((cluster) => ({ match: NAMING_ROUTE_MATCH, route: { cluster } }));
    const hosts = (r.object.virtual_hosts ?? []) as ReadonlyArray<ProtoObject & { routes?: readonly unknown[] }>;
    return { ...r.object, virtual_hosts: hosts.map((vh) => ({ ...vh, routes: [...(vh.routes ?? []), ...extra] })) };
  });
  return changed ? routes : undefined;
}

/** Per type, the names `a` has and `b` lacks. */
function namesOnlyIn(a: Snapshot, b: Snapshot, types: readonly XdsTypeUrl[]): Map<XdsTypeUrl, readonly string[]> {
  const out = new Map<XdsTypeUrl, readonly string[]>();
  for (const t of types) {
    if (a.version(t) === b.version(t)) continue;
    const has = b.type(t).resources;
    const names = a.names(t).filter((n) => !has.has(n));
    if (names.length > 0) out.set(t, Object.freeze(names));
  }
  return out;
}

function heldLog(held: ReadonlyMap<XdsTypeUrl, readonly string[]>): Partial<Record<TypeShort, readonly string[]>> {
  return Object.fromEntries([...held].map(([t, names]) => [TYPE_SHORT[t], names]));
}
