/**
 * The load-balancer contract and the lb_policy registry. In: the hosts eligible in one priority
 * (or locality) and their weights. Out: a picker whose `pick(hash)` returns a host per request
 * (hash-based policies use `hash`; the others ignore it). Pickers are rebuilt whenever
 * membership or health changes, so `pick` does no filtering of its own.
 *
 * Each policy registers itself here from its own file (as Envoy's load_balancing_policies
 * extensions do); `policies.ts` loads them all. Callers go through `policies.ts`.
 */
import type { Host } from '../host.js';
import type { ClusterModel, LbPolicy } from '../../config/cluster-resource.js';

export interface LoadBalancer {
  /** `hash`: the request's hash key (ring hash / maglev); undefined picks at random there. */
  pick(hash: number | undefined): Host | undefined;
}

/** What a policy registers: how to build its picker, and whether it wants the request hash. */
export interface LbPolicyFactory {
  /** The router computes a request hash (hash_policy) only for these; priority sets span localities with one table. */
  readonly hashBased: boolean;
  create(model: ClusterModel, hosts: readonly Host[], weights: readonly number[]): LoadBalancer;
}

const registry = new Map<LbPolicy, LbPolicyFactory>();

export function registerLbPolicy(policy: LbPolicy, factory: LbPolicyFactory): void {
  if (registry.has(policy)) throw new Error(`lb_policy ${policy} is registered twice`);
  registry.set(policy, factory);
}

/** The registered factory of `policy` (cluster-resource.ts accepts only names that have one). */
export function lbPolicyFactory(policy: LbPolicy): LbPolicyFactory {
  const f = registry.get(policy);
  if (!f) throw new Error(`lb_policy ${policy} has no registered load balancer`);
  return f;
}

export function allEqual(weights: readonly number[]): boolean {
  for (let i = 1; i < weights.length; i++) if (weights[i] !== weights[0]) return false;
  return true;
}
