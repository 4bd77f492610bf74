/**
 * ROUND_ROBIN: plain rotation when all weights are equal (starting at a random host, as Envoy
 * does, so a fleet of proxies does not hit host 0 together); earliest-deadline-first by weight
 * otherwise, which interleaves smoothly.
 */
import type { Host } from '../host.js';
import { EdfScheduler } from '../edf-scheduler.js';
import { allEqual, registerLbPolicy, type LoadBalancer } from './load-balancer.js';

export class RoundRobinLb implements LoadBalancer {
  private index: number;
  private readonly edf: EdfScheduler<Host> | undefined;

  constructor(
    private readonly hosts: readonly Host[],
    weights: readonly number[],
  ) {
    this.index = Math.floor(Math.random() * Math.max(1, hosts.length));
    this.edf = allEqual(weights) ? undefined : new EdfScheduler(hosts, weights);
  }

  pick(): Host | undefined {
    if (this.edf) return this.edf.next();
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (this.index >= n) this.index = 0;
    return this.hosts[this.index++];
  }
}

registerLbPolicy('ROUND_ROBIN', { hashBased: false, create: (_model, hosts, weights) => new RoundRobinLb(hosts, weights) });
