/**
 * Which next-stage resources must follow a Cluster or Listener update so the client finishes
 * warming: Envoy keeps an updated Cluster warming until a ClusterLoadAssignment arrives (even an
 * unchanged one), and a Listener using RDS waits for its RouteConfiguration (go-control-plane
 * issues 245, 583 are what happens otherwise).
 *
 * In: the type snapshot a client had and the one it is about to get. Out: the EDS/RDS names of
 * the resources that are new or changed. Memoised per pair of type snapshots, so a change fanned
 * out to 1,000 wildcard streams computes the diff once.
 */
import type { SnapshotResource, TypeSnapshot } from '../cache/snapshot.js';

const fromNothing = new WeakMap<TypeSnapshot, readonly string[]>();
const between = new WeakMap<TypeSnapshot, WeakMap<TypeSnapshot, readonly string[]>>();

/** Names warmed by the resources of `to` that differ from `from` (all of them when `from` is undefined). */
export function warmsBetween(from: TypeSnapshot | undefined, to: TypeSnapshot): readonly string[] {
  if (from === to) return [];
  if (from === undefined) {
    let all = fromNothing.get(to);
    if (!all) {
      all = warmsOf(to.list, undefined);
      fromNothing.set(to, all);
    }
    return all;
  }
  let byFrom = between.get(to);
  if (!byFrom) {
    byFrom = new WeakMap();
    between.set(to, byFrom);
  }
  let names = byFrom.get(from);
  if (!names) {
    names = warmsOf(to.list, from);
    byFrom.set(from, names);
  }
  return names;
}

/** Names warmed by those of `resources` whose version differs from `from`. */
export function warmsOf(resources: readonly SnapshotResource[], from: TypeSnapshot | undefined): readonly string[] {
  const out = new Set<string>();
  for (const r of resources) {
    if (r.warms.length === 0) continue;
    if (from !== undefined && from.resources.get(r.name)?.version === r.version) continue;
    for (const n of r.warms) out.add(n);
  }
  return Object.freeze([...out]);
}
