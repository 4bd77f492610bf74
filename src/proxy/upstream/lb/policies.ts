/**
 * Every load-balancing policy the proxy has, loaded so that each registers itself, and the two
 * questions the rest of the proxy asks of a cluster's lb_policy. Adding a policy: its own file
 * calling registerLbPolicy, one import line here, and its name in cluster-resource.ts.
 */
import type { Host } from '../host.js';
import type { ClusterModel, LbPolicy } from '../../config/cluster-resource.js';
import { lbPolicyFactory, type LoadBalancer } from './load-balancer.js';
import './round-robin.js';
import './least-request.js';
import './random.js';
import './ring-hash.js';
import './maglev.js';

export function createLoadBalancer(model: ClusterModel, hosts: readonly Host[], weights: readonly number[]): LoadBalancer {
  return lbPolicyFactory(model.lbPolicy).create(model, hosts, weights);
}

/** Whether the policy picks by the request's hash (RING_HASH, MAGLEV): answered here only. */
export function isHashBased(policy: LbPolicy): boolean {
  return lbPolicyFactory(policy).hashBased;
}
