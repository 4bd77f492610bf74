/**
 * LEAST_REQUEST: "power of two choices". With equal weights, `choiceCount` hosts are drawn at
 * random and the one with the fewest active requests wins (Envoy's unweighted algorithm). With
 * unequal weights the candidates are drawn in proportion to weight and scored as Envoy weighs
 * them, weight / (active + 1)^bias; Envoy runs an EDF scheduler over those scores instead, which
 * converges to the same preference.
 */
import type { Host } from '../host.js';
import { allEqual, registerLbPolicy, type LoadBalancer } from './load-balancer.js';
import { RandomLb } from './random.js';

export class LeastRequestLb implements LoadBalancer {
  private readonly weighted: RandomLb | undefined;

  constructor(
    private readonly hosts: readonly Host[],
    weights: readonly number[],
    private readonly choiceCount: number,
    private readonly bias: number,
  ) {
    this.weighted = allEqual(weights) ? undefined : new RandomLb(hosts, weights);
  }

  pick(): Host | undefined {
    const n = this.hosts.length;
    if (n <= 1) return this.hosts[0];
    let best: Host | undefined;
    let bestScore = -Infinity;
    for (let i = 0; i < this.choiceCount; i++) {
      const h = this.weighted ? this.weighted.pick() : this.hosts[Math.floor(Math.random() * n)];
      if (!h) continue;
      const score = this.weighted ? h.weight / (h.rqActive + 1) ** this.bias : -h.rqActive;
      if (score > bestScore) {
        best = h;
        bestScore = score;
      }
    }
    return best;
  }
}

registerLbPolicy('LEAST_REQUEST', {
  hashBased: false,
  create: (model, hosts, weights) => new LeastRequestLb(hosts, weights, model.choiceCount, model.activeRequestBias),
});
