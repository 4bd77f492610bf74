/**
 * Interned subscriptions: streams that subscribe to the same resource names share one frozen
 * Subscription object. Envoys of one fleet ask for the same EDS/RDS names, so per-change work
 * that depends only on (subscription, snapshots) is computed once and shared (selection.ts,
 * warming.ts), instead of walking hundreds of names per stream.
 *
 * In: names from a request (only when they changed). Out: a Subscription, reference-counted so
 * the table holds nothing once no stream uses it.
 */

export interface Subscription {
  readonly names: ReadonlySet<string>;
  /** The names, sorted (for status output). */
  readonly list: readonly string[];
}

/** No explicit names (wildcard streams and fresh type states). Not counted. */
export const NO_NAMES: Subscription = Object.freeze({ names: Object.freeze(new Set<string>()), list: Object.freeze([]) });

interface Interned {
  readonly sub: Subscription;
  refs: number;
}

export class SubscriptionTable {
  readonly #byKey = new Map<string, Interned>();
  readonly #keys = new WeakMap<Subscription, string>();

  /** Distinct subscriptions in use. */
  get size(): number {
    return this.#byKey.size;
  }

  /** The shared Subscription for these names ('*' excluded by the caller); release it when done. */
  acquire(names: Iterable<string>): Subscription {
    const list = [...new Set(names)].sort();
    if (list.length === 0) return NO_NAMES;
    const key = JSON.stringify(list);
    let interned = this.#byKey.get(key);
    if (interned === undefined) {
      const sub: Subscription = Object.freeze({ names: Object.freeze(new Set(list)), list: Object.freeze(list) });
      interned = { sub, refs: 0 };
      this.#byKey.set(key, interned);
      this.#keys.set(sub, key);
    }
    interned.refs++;
    return interned.sub;
  }

  release(sub: Subscription): void {
    const key = this.#keys.get(sub);
    if (key === undefined) return;
    const interned = this.#byKey.get(key);
    if (interned === undefined || --interned.refs > 0) return;
    this.#byKey.delete(key);
  }
}

/** Stands for a wildcard subscription (every resource of the type) in memo keys. */
export const WILDCARD: Subscription = Object.freeze({ names: Object.freeze(new Set<string>()), list: Object.freeze([]) });
