/**
 * MAGLEV consistent hashing (Google's Maglev paper, weighted as Envoy does it). In: hosts,
 * weights and a prime table size. Out: a lookup table filled by each host's permutation in turns
 * proportional to its weight; a request hash picks table[hash % size]. Random without a hash.
 */
import type { Host } from '../host.js';
import { hash32 } from '../../common/hash.js';
import { registerLbPolicy, type LoadBalancer } from './load-balancer.js';

export class MaglevLb implements LoadBalancer {
  private readonly table: Int32Array;

  constructor(
    private readonly hosts: readonly Host[],
    weights: readonly number[],
    private readonly size: number,
  ) {
    this.table = new Int32Array(size).fill(-1);
    const n = hosts.length;
    if (n === 0) return;
    const maxWeight = Math.max(...weights);
    const offset = hosts.map((h) => hash32(h.key, 0x9e3779b9) % size);
    const skip = hosts.map((h) => (hash32(h.key, 0x85ebca6b) % (size - 1)) + 1);
    const next = new Array<number>(n).fill(0);
    const count = new Array<number>(n).fill(0);
    let filled = 0;
    for (let iteration = 1; filled < size; iteration++) {
      for (let i = 0; i < n && filled < size; i++) {
        const w = (weights[i] ?? 0) / maxWeight;
        // A host takes a turn only while its share of entries lags its normalised weight.
        if (iteration * w < count[i]!) continue;
        let c: number;
        do {
          c = (offset[i]! + next[i]! * skip[i]!) % size;
          next[i]!++;
        } while (this.table[c] !== -1);
        this.table[c] = i;
        count[i]!++;
        filled++;
      }
    }
  }

  pick(hash: number | undefined): Host | undefined {
    if (this.hosts.length === 0) return undefined;
    if (hash === undefined) return this.hosts[Math.floor(Math.random() * this.hosts.length)];
    return this.hosts[this.table[(hash >>> 0) % this.size]!];
  }
}

registerLbPolicy('MAGLEV', { hashBased: true, create: (model, hosts, weights) => new MaglevLb(hosts, weights, model.maglevTableSize) });
