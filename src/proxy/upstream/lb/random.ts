/** RANDOM: a host drawn at random in proportion to its weight (binary search over cumulative weights). */
import type { Host } from '../host.js';
import { allEqual, registerLbPolicy, type LoadBalancer } from './load-balancer.js';

export class RandomLb implements LoadBalancer {
  private readonly cumulative: Float64Array | undefined;
  private readonly total: number;

  constructor(
    private readonly hosts: readonly Host[],
    weights: readonly number[],
  ) {
    if (allEqual(weights)) {
      this.cumulative = undefined;
      this.total = hosts.length;
    } else {
      const cumulative = new Float64Array(hosts.length);
      let sum = 0;
      weights.forEach((w, i) => {
        sum += w;
        cumulative[i] = sum;
      });
      this.cumulative = cumulative;
      this.total = sum;
    }
  }

  pick(): Host | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (!this.cumulative) return this.hosts[Math.floor(Math.random() * n)];
    const r = Math.random() * this.total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return this.hosts[lo];
  }
}

registerLbPolicy('RANDOM', { hashBased: false, create: (_model, hosts, weights) => new RandomLb(hosts, weights) });
