/**
 * The load-balancer contract and the factory by lb_policy. In: the hosts eligible in one
 * priority (or locality) and their weights. Out: a picker whose `pick(hash)` returns a host per
 * request (hash-based policies use `hash`; the others ignore it). Pickers are rebuilt whenever
 * membership or health changes, so `pick` does no filtering of its own.
 */
import type { Host } from '../host.js';
import type { ClusterModel } from '../../config/cluster-resource.js';
import { RoundRobinLb } from './round-robin.js';
import { LeastRequestLb } from './least-request.js';
import { RandomLb } from './random.js';
import { RingHashLb } from './ring-hash.js';
import { MaglevLb } from './maglev.js';

export interface LoadBalancer {
  /** `hash`: the request's hash key (ring hash / maglev); undefined picks at random there. */
  pick(hash: number | undefined): Host | undefined;
}

export function createLoadBalancer(model: ClusterModel, hosts: readonly Host[], weights: readonly number[]): LoadBalancer {
  switch (model.lbPolicy) {
    case 'LEAST_REQUEST':
      return new LeastRequestLb(hosts, weights, model.choiceCount, model.activeRequestBias);
    case 'RANDOM':
      return new RandomLb(hosts, weights);
    case 'RING_HASH':
      return new RingHashLb(hosts, weights, model.ringMinSize, model.ringMaxSize);
    case 'MAGLEV':
      return new MaglevLb(hosts, weights, model.maglevTableSize);
    default:
      return new RoundRobinLb(hosts, weights);
  }
}

export function allEqual(weights: readonly number[]): boolean {
  for (let i = 1; i < weights.length; i++) if (weights[i] !== weights[0]) return false;
  return true;
}
