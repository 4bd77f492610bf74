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
import { memo2, NOTHING, type Memo2 } from './selection.js';

const NONE: readonly string[] = Object.freeze([]);

const warmsMemo: Memo2<readonly SnapshotResource[], object, readonly string[]> = new WeakMap();
const targetsMemo: Memo2<readonly string[], Subscription, readonly string[]> = new WeakMap();

/** Names warmed by those of `resources` that are new or differ from `from`. */
export function warmsOf(resources: readonly SnapshotResource[], from: TypeSnapshot | undefined): readonly string[] {
  return memo2(warmsMemo, resources, from ?? NOTHING, () => {
    const out = new Set<string>();
    for (const r of resources) {
      if (r.warms.length === 0) continue;
      if (from !== undefined && from.resources.get(r.name)?.version === r.version) continue;
      for (const n of r.warms) out.add(n);
    }
    return out.size === 0 ? NONE : Object.freeze([...out]);
  });
}

/** The warmed names a stream subscribed to (all of them for a wildcard stream). */
export function warmTargets(sub: Subscription, warms: readonly string[]): readonly string[] {
  if (sub === WILDCARD || warms.length === 0) return warms;
  return memo2(targetsMemo, warms, sub, () => {
    const t = warms.filter((n) => sub.names.has(n));
    return t.length === 0 ? NONE : Object.freeze(t);
  });
}
