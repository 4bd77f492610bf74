/**
 * RING_HASH (Ketama-style consistent hashing). In: hosts and weights, ring size bounds. Out: a
 * ring of points (each host gets points in proportion to its weight, at least min size in
 * total); a request hash maps to the first point at or after it. Without a request hash (no
 * hash_policy matched) the pick is random, as in Envoy.
 */
import type { Host } from '../host.js';
import { hash32 } from '../../common/hash.js';
import { registerLbPolicy, type LoadBalancer } from './load-balancer.js';

export class RingHashLb implements LoadBalancer {
  private readonly points: Uint32Array;
  private readonly owners: Host[];

  constructor(
    private readonly hosts: readonly Host[],
    weights: readonly number[],
    minSize: number,
    maxSize: number,
  ) {
    const total = weights.reduce((s, w) => s + w, 0);
    const entries: Array<[number, Host]> = [];
    if (total > 0) {
      const minNormalized = Math.min(...weights.map((w) => w / total));
      // Enough points that the lightest host still gets at least one (Envoy's scale rule).
      const scale = Math.min(Math.ceil(minNormalized * minSize) / minNormalized, maxSize);
      let target = 0;
      let current = 0;
      hosts.forEach((h, i) => {
        target += ((weights[i] ?? 0) / total) * scale;
        const count = Math.floor(target) - current;
        for (let k = 0; k < count; k++) entries.push([hash32(`${h.key}_${k}`), h]);
        current += count;
      });
    }
    entries.sort((a, b) => a[0] - b[0]);
    this.points = Uint32Array.from(entries.map((e) => e[0]));
    this.owners = entries.map((e) => e[1]);
  }

  pick(hash: number | undefined): Host | undefined {
    const n = this.points.length;
    if (n === 0) return undefined;
    if (hash === undefined) return this.hosts[Math.floor(Math.random() * this.hosts.length)];
    const h = hash >>> 0;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === n ? 0 : lo];
  }
}

registerLbPolicy('RING_HASH', { hashBased: true, create: (model, hosts, weights) => new RingHashLb(hosts, weights, model.ringMinSize, model.ringMaxSize) });
