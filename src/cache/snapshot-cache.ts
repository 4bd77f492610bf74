/**
 * The current snapshot per node group, and the watches the xDS server holds on them.
 *
 * In: snapshots from the publisher (`set(group, snapshot)`).
 * Out: change notifications to watchers (one per connected stream), naming only the types whose
 * version changed, so an unchanged type is never pushed.
 *
 * Groups let different nodes get different resources (e.g. Envoys vs proxyless gRPC clients).
 * By default a node is served the group named like its `node.cluster` when such a snapshot
 * exists, else the group 'default'. Pass `groupOf` to choose otherwise (metadata, user agent).
 * When a group appears or disappears every watch is re-resolved, and a watch that moves is told
 * which types differ between the snapshot it had and the one it gets now.
 */
import { TYPE_ORDER, type XdsTypeUrl } from '../xds/resource-types.js';
import { silentLogger, type Logger } from '../log.js';
import type { Snapshot } from './snapshot.js';
import type { NodeInfo } from './node-info.js';

export const DEFAULT_GROUP = 'default';

/** Picks a node's group. `has(group)` tells whether a snapshot for that group exists. */
export type GroupOf = (node: NodeInfo | undefined, has: (group: string) => boolean) => string;

export const defaultGroupOf: GroupOf = (node, has) => (node !== undefined && node.cluster !== '' && has(node.cluster) ? node.cluster : DEFAULT_GROUP);

/** Called synchronously from set()/delete(); must not throw (errors are logged and swallowed). */
export type WatchListener = (snapshot: Snapshot, changed: ReadonlySet<XdsTypeUrl>) => void;

export interface CacheWatch {
  /** The group this watch currently follows. */
  readonly group: string;
  /** The snapshot of that group, or undefined while none has been set. */
  readonly snapshot: Snapshot | undefined;
  /** Stop watching; idempotent. */
  cancel(): void;
}

export interface SnapshotCacheOptions {
  readonly groupOf?: GroupOf;
  readonly logger?: Logger;
}

const NO_CHANGE: ReadonlySet<XdsTypeUrl> = Object.freeze(new Set<XdsTypeUrl>());

export class SnapshotCache {
  readonly #snapshots = new Map<string, Snapshot>();
  readonly #watches = new Map<string, Set<Watch>>();
  readonly #groupOf: GroupOf;
  readonly #logger: Logger;
  readonly #has = (group: string): boolean => this.#snapshots.has(group);
  #watchers = 0;

  constructor(opts: SnapshotCacheOptions = {}) {
    this.#groupOf = opts.groupOf ?? defaultGroupOf;
    this.#logger = opts.logger ?? silentLogger;
  }

  /** The group a node is served from right now. */
  groupOf(node: NodeInfo | undefined): string {
    return this.#groupOf(node, this.#has);
  }

  get(group: string): Snapshot | undefined {
    return this.#snapshots.get(group);
  }

  groups(): string[] {
    return [...this.#snapshots.keys()];
  }

  /** Number of live watches (one per connected stream that has sent a request). */
  get watcherCount(): number {
    return this.#watchers;
  }

  /**
   * Replace a group's snapshot and notify its watchers of the types whose version changed.
   * Returns those types (empty when nothing changed).
   */
  set(group: string, snapshot: Snapshot): ReadonlySet<XdsTypeUrl> {
    const prev = this.#snapshots.get(group);
    if (prev === snapshot) return NO_CHANGE;
    this.#snapshots.set(group, snapshot);
    const changed = typesChanged(prev, snapshot);
    if (prev === undefined) {
      this.#regroup(group, undefined);
    } else if (changed.size > 0) {
      const watches = this.#watches.get(group);
      if (watches) this.#notifyAll([...watches], snapshot, changed);
    }
    return changed;
  }

  /** Drop a group; its watchers move to whatever group they resolve to now. */
  delete(group: string): boolean {
    const prev = this.#snapshots.get(group);
    if (prev === undefined) return false;
    this.#snapshots.delete(group);
    this.#regroup(group, prev);
    return true;
  }

  /** Watch the snapshot a node is served. The listener only hears of changes; read `snapshot` for the current one. */
  watch(node: NodeInfo | undefined, listener: WatchListener): CacheWatch {
    const watch = new Watch(this, node, this.groupOf(node), listener);
    this.#add(watch);
    return watch;
  }

  /** @internal used by Watch */
  _snapshotOf(group: string): Snapshot | undefined {
    return this.#snapshots.get(group);
  }

  /** @internal used by Watch */
  _remove(watch: Watch): void {
    const set = this.#watches.get(watch.group);
    if (!set?.delete(watch)) return;
    this.#watchers--;
    if (set.size === 0) this.#watches.delete(watch.group);
  }

  #add(watch: Watch): void {
    let set = this.#watches.get(watch.group);
    if (!set) {
      set = new Set();
      this.#watches.set(watch.group, set);
    }
    set.add(watch);
    this.#watchers++;
  }

  /** The set of groups changed: re-resolve every watch. `changedGroup` held `before` until now. */
  #regroup(changedGroup: string, before: Snapshot | undefined): void {
    const all: Watch[] = [];
    for (const set of this.#watches.values()) for (const w of set) all.push(w);
    for (const w of all) {
      if (!w.active) continue;
      const oldSnapshot = w.group === changedGroup ? before : this.#snapshots.get(w.group);
      const group = this.groupOf(w.node);
      if (group !== w.group) {
        this._remove(w);
        w.group = group;
        this.#add(w);
      }
      const now = this.#snapshots.get(group);
      if (now === undefined) continue; // nothing to serve yet: the client keeps what it has
      const changed = typesChanged(oldSnapshot, now);
      if (changed.size > 0) this.#notify(w, now, changed);
    }
  }

  #notifyAll(watches: readonly Watch[], snapshot: Snapshot, changed: ReadonlySet<XdsTypeUrl>): void {
    for (const w of watches) if (w.active) this.#notify(w, snapshot, changed);
  }

  #notify(w: Watch, snapshot: Snapshot, changed: ReadonlySet<XdsTypeUrl>): void {
    try {
      w.listener(snapshot, changed);
    } catch (err) {
      this.#logger.error({ group: w.group, node: w.node?.id, err: (err as Error).message }, 'snapshot watcher failed');
    }
  }
}

class Watch implements CacheWatch {
  active = true;
  constructor(
    private readonly cache: SnapshotCache,
    readonly node: NodeInfo | undefined,
    public group: string,
    readonly listener: WatchListener,
  ) {}

  get snapshot(): Snapshot | undefined {
    return this.cache._snapshotOf(this.group);
  }

  cancel(): void {
    if (!this.active) return;
    this.active = false;
    this.cache._remove(this);
  }
}

function typesChanged(prev: Snapshot | undefined, next: Snapshot): ReadonlySet<XdsTypeUrl> {
  const changed = new Set<XdsTypeUrl>();
  for (const t of TYPE_ORDER) if (prev === undefined || prev.version(t) !== next.version(t)) changed.add(t);
  return changed;
}
