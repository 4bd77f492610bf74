/**
 * Which next-stage resources must follow a Cluster or Listener update so the client finishes
 * warming: Envoy keeps an updated Cluster warming until a ClusterLoadAssignment arrives (even an
 * unchanged one), and a Listener using RDS waits for its RouteConfiguration (go-control-plane
 * issues 245, 583 are what happens otherwise).
 *
 * In: the type snapshot a client had and the resources it is about to get. Out: the EDS/RDS names
 * of the resources that are new or changed, and which of those a stream subscribed to. Memoised
 * (see selection.ts), so a change fanned out to 1,000 streams computes each list once.
 */
import type { SnapshotResource, TypeSnapshot } from '../../cache/snapshot.js';
import { WILDCARD, type Subscription } from '../subscriptions.js';

const NONE: readonly string[] = Object.freeze([]);
const NOTHING: object = Object.freeze({});

const warmsMemo = new WeakMap<readonly SnapshotResource[], WeakMap<object, readonly string[]>>();
const targetsMemo = new WeakMap<readonly string[], WeakMap<Subscription, readonly string[]>>();

/** Names warmed by those of `resources` that are new or differ from `from`. */
export function warmsOf(resources: readonly SnapshotResource[], from: TypeSnapshot | undefined): readonly string[] {
  let byFrom = warmsMemo.get(resources);
  if (byFrom === undefined) {
    byFrom = new WeakMap();
    warmsMemo.set(resources, byFrom);
  }
  let names = byFrom.get(from ?? NOTHING);
  if (names === undefined) {
    const out = new Set<string>();
    for (const r of resources) {
      if (r.warms.length === 0) continue;
      if (from !== undefined && from.resources.get(r.name)?.version === r.version) continue;
      for (const n of r.warms) out.add(n);
    }
    names = out.size === 0 ? NONE : Object.freeze([...out]);
    byFrom.set(from ?? NOTHING, names);
  }
  return names;
}

/** The warmed names a stream subscribed to (all of them for a wildcard stream). */
export function warmTargets(sub: Subscription, warms: readonly string[]): readonly string[] {
  if (sub === WILDCARD || warms.length === 0) return warms;
  let bySub = targetsMemo.get(warms);
  if (bySub === undefined) {
    bySub = new WeakMap();
    targetsMemo.set(warms, bySub);
  }
  let targets = bySub.get(sub);
  if (targets === undefined) {
    const t = warms.filter((n) => sub.names.has(n));
    targets = t.length === 0 ? NONE : Object.freeze(t);
    bySub.set(sub, targets);
  }
  return targets;
}
