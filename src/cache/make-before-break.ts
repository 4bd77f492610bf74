/**
 * Make before break: removals reach clients only after the references to them are gone.
 *
 * In: snapshots from the publisher (`set(group, snapshot)`, `delete(group)`), and what the
 * group's connected streams have answered (ClientProgress, implemented by the server's stream
 * registry for every protocol). Out: snapshots set on the SnapshotCache, in two steps when a
 * snapshot removes something.
 *
 * The xDS rule: additions go CDS -> EDS -> LDS -> RDS, removals the other way, and a Cluster is
 * removed only once the routes that stopped naming it have been ACKed (or NACKed); the same for a
 * RouteConfiguration and the Listeners that stopped naming it. Sending the Cluster removal first
 * makes clients fail calls in between (grpc-go logs `resource "canary" ... has been removed`).
 *
 * So when a snapshot drops Clusters, ClusterLoadAssignments or RouteConfigurations the group's
 * clients hold, the cache first gets a staged snapshot: the new one plus the dropped resources
 * (held). Every protocol serves it like any other: the new Listeners and routes go out, the held
 * resources stay as they are. Once every stream of the group has answered the staged LDS and RDS
 * versions (evaluated them and ACKed or NACKed whatever it was sent; a stream that disconnects no
 * longer counts), the final snapshot is set, and with it the removals. A stream that never
 * answers holds them at most `timeoutMs`. A newer snapshot meanwhile is staged against what the
 * clients are served now: what it drops is held with it (no removal lost), what it brings back is
 * its own (nothing resurrected), and the wait starts over for its routes.
 */
import { TYPE_SHORT, TypeUrl, type TypeShort, type XdsTypeUrl } from '../xds/resource-types.js';
import { silentLogger, type Logger } from '../log.js';
import { withResourcesOf, type Snapshot } from './snapshot.js';
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

/** A removal being held, as /status shows it. */
export interface PendingRemoval {
  readonly group: string;
  /** What is held, per type. */
  readonly held: Readonly<Partial<Record<TypeShort, readonly string[]>>>;
  /** When the oldest held removal was staged (ISO 8601). */
  readonly since: string;
  /** When the removals go regardless (ISO 8601). */
  readonly deadline: string;
  /** The staged LDS/RDS versions the streams must answer. */
  readonly versions: Readonly<Partial<Record<TypeShort, string>>>;
  readonly waitingFor: readonly WaitingStream[];
}

export const DEFAULT_REMOVAL_TIMEOUT_MS = 5_000;

/** Resources that something else names, so their removal waits: by the types that name them. */
const HELD_TYPES: readonly XdsTypeUrl[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration];
const NAMING_TYPES: readonly XdsTypeUrl[] = [TypeUrl.Listener, TypeUrl.RouteConfiguration];

interface Pending {
  readonly final: Snapshot;
  readonly staged: Snapshot;
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
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_REMOVAL_TIMEOUT_MS;
    this.#logger = (opts.logger ?? silentLogger).child({ component: 'make-before-break' });
  }

  /** Publish `next` for `group`: at once, or staged with the removals held (see the top of this file). */
  set(group: string, next: Snapshot): void {
    const current = this.#cache.get(group);
    const previous = this.#pending.get(group);
    const held = current === undefined || this.#progress === undefined || this.#timeoutMs === 0 ? new Map() : heldNames(current, next);
    if (held.size === 0) {
      this.#settle(group);
      this.#cache.set(group, next);
      return;
    }
    // `current` is what clients are served (a staged snapshot too): its held resources are held again.
    const staged = withResourcesOf(next, current as Snapshot, held);
    if (previous) clearTimeout(previous.timer);
    const now = Date.now();
    const timer = setTimeout(() => this.#expire(group), this.#timeoutMs);
    timer.unref();
    this.#pending.set(group, {
      final: next,
      staged,
      held,
      versions: new Map(NAMING_TYPES.map((t) => [t, staged.version(t)])),
      since: previous?.since ?? now,
      deadline: now + this.#timeoutMs,
      timer,
      waiting: [],
    });
    this.#listen();
    // Streams evaluate the staged snapshot synchronously here: those with nothing new to send
    // (routes unchanged for them) have answered already.
    this.#cache.set(group, staged);
    this.#check(group);
  }

  /** Drop a group (no staging: its clients move to another group). */
  delete(group: string): boolean {
    this.#settle(group);
    return this.#cache.delete(group);
  }

  /** The removals held now, per group. */
  pending(): PendingRemoval[] {
    return [...this.#pending].map(([group, p]) =>
      Object.freeze({
        group,
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
    if (p.waiting.length === 0) this.#release(group, 'answered');
  }

  #expire(group: string): void {
    const p = this.#pending.get(group);
    if (p === undefined) return;
    this.#check(group);
    if (!this.#pending.has(group)) return;
    this.#logger.warn(
      { group, waitedMs: Date.now() - p.since, waitingFor: p.waiting.map((w) => ({ node: w.nodeId, stream: w.streamId, types: w.types })) },
      'make before break: streams did not answer the new routes in time; removing the held resources anyway',
    );
    this.#release(group, 'timeout');
  }

  /** Set the final snapshot: the held resources go. */
  #release(group: string, reason: 'answered' | 'timeout'): void {
    const p = this.#pending.get(group);
    if (p === undefined) return;
    this.#settle(group);
    this.#logger.info({ group, reason, held: heldLog(p.held), waitedMs: Date.now() - p.since }, 'make before break: held resources removed');
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

  /** While something is held, hear of every answer; check once per burst, after the streams have flushed. */
  #listen(): void {
    if (this.#stopListening !== undefined || this.#progress === undefined) return;
    this.#stopListening = this.#progress.onAnswer(() => {
      if (this.#checkScheduled) return;
      this.#checkScheduled = true;
      setImmediate(() => {
        this.#checkScheduled = false;
        for (const group of [...this.#pending.keys()]) this.#check(group);
      });
    });
  }
}

/** Per held type, the names `current` has and `next` lacks. */
function heldNames(current: Snapshot, next: Snapshot): Map<XdsTypeUrl, readonly string[]> {
  const held = new Map<XdsTypeUrl, readonly string[]>();
  for (const t of HELD_TYPES) {
    if (current.version(t) === next.version(t)) continue;
    const keep = next.type(t).resources;
    const gone = current.names(t).filter((n) => !keep.has(n));
    if (gone.length > 0) held.set(t, Object.freeze(gone));
  }
  return held;
}

function heldLog(held: ReadonlyMap<XdsTypeUrl, readonly string[]>): Partial<Record<TypeShort, readonly string[]>> {
  return Object.fromEntries([...held].map(([t, names]) => [TYPE_SHORT[t], names]));
}
