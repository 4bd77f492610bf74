/**
 * Which resources a stream is sent, as pure functions of immutable inputs (type snapshots,
 * interned subscriptions, warming name lists), memoised in WeakMaps. When a change fans out to
 * 1,000 streams in the same situation, the first one computes the selection and the others get
 * the same frozen array, which response-cache.ts also recognises by identity: per stream the
 * work is a few map lookups, not a walk over hundreds of names.
 *
 * In: the type snapshot to serve, `base` (the type snapshot whose content the client holds for
 * its subscribed names; undefined when it holds nothing), the subscription. Out: resources in
 * snapshot order.
 */
import type { SnapshotResource, TypeSnapshot } from '../../cache/snapshot.js';
import { WILDCARD, type Subscription } from '../subscriptions.js';

export const EMPTY_SELECTION: readonly SnapshotResource[] = Object.freeze([]);

/** Memo key standing for "no base": the client holds nothing of this type yet. */
export const NOTHING: object = Object.freeze({});

export type Memo2<A extends object, B extends object, V> = WeakMap<A, WeakMap<B, V>>;
type Memo3<A extends object, B extends object, C extends object, V> = WeakMap<A, Memo2<B, C, V>>;

/** `compute()`, remembered per (a, b) for as long as both are alive. */
export function memo2<A extends object, B extends object, V>(m: Memo2<A, B, V>, a: A, b: B, compute: () => V): V {
  let inner = m.get(a);
  if (inner === undefined) {
    inner = new WeakMap();
    m.set(a, inner);
  }
  let v = inner.get(b);
  if (v === undefined) {
    v = compute();
    inner.set(b, v);
  }
  return v;
}

function memo3<A extends object, B extends object, C extends object, V>(m: Memo3<A, B, C, V>, a: A, b: B, c: C, compute: () => V): V {
  let inner = m.get(a);
  if (inner === undefined) {
    inner = new WeakMap();
    m.set(a, inner);
  }
  return memo2(inner, b, c, compute);
}

const presentMemo: Memo2<TypeSnapshot, Subscription, readonly SnapshotResource[]> = new WeakMap();
const changedMemo: Memo3<TypeSnapshot, object, Subscription, readonly SnapshotResource[]> = new WeakMap();
const subChangedMemo: Memo3<TypeSnapshot, object, Subscription, { readonly changed: boolean }> = new WeakMap();
const withNamesMemo: Memo3<TypeSnapshot, readonly SnapshotResource[], readonly string[], readonly SnapshotResource[]> = new WeakMap();

/** The subscribed resources that exist, in snapshot order. */
export function present(ts: TypeSnapshot, sub: Subscription): readonly SnapshotResource[] {
  if (sub === WILDCARD) return ts.list;
  return memo2(presentMemo, ts, sub, () => resourcesOf(ts, sub.list));
}

/** Subscribed resources whose content differs from `base` (all of them when there is no base). */
export function changedSince(ts: TypeSnapshot, base: TypeSnapshot | undefined, sub: Subscription): readonly SnapshotResource[] {
  if (base === ts) return EMPTY_SELECTION;
  return memo3(changedMemo, ts, base ?? NOTHING, sub, () => {
    const all = present(ts, sub);
    if (base === undefined) return all;
    const out = all.filter((r) => base.resources.get(r.name)?.version !== r.version);
    return out.length === 0 ? EMPTY_SELECTION : Object.freeze(out);
  });
}

/** LDS/CDS: did anything the client subscribed to change, appear or disappear since `base`? */
export function subscriptionChanged(ts: TypeSnapshot, base: TypeSnapshot | undefined, sub: Subscription): boolean {
  if (base === ts) return false;
  if (base === undefined) return true;
  if (sub === WILDCARD) return base.version !== ts.version;
  return memo3(subChangedMemo, ts, base, sub, () => ({
    changed: sub.list.some((name) => base.resources.get(name)?.version !== ts.resources.get(name)?.version),
  })).changed;
}

/** `selected` plus the resources named in `names` that exist, in snapshot order. */
export function withNames(ts: TypeSnapshot, selected: readonly SnapshotResource[], names: readonly string[]): readonly SnapshotResource[] {
  if (names.length === 0) return selected;
  return memo3(withNamesMemo, ts, selected, names, () => {
    const set = new Set<string>(names);
    for (const r of selected) set.add(r.name);
    return resourcesOf(ts, set);
  });
}

/** The resources of these names that exist in `ts`, in snapshot order, frozen. */
export function resourcesOf(ts: TypeSnapshot, names: Iterable<string>): readonly SnapshotResource[] {
  const out: SnapshotResource[] = [];
  for (const name of names) {
    const r = ts.resources.get(name);
    if (r !== undefined) out.push(r);
  }
  if (out.length === 0) return EMPTY_SELECTION;
  if (out.length > 1) out.sort((a, b) => a.index - b.index);
  return Object.freeze(out);
}
