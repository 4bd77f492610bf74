/**
 * Load balancing of our data plane, as pure logic: weighted round robin (EDF interleaving),
 * random and least-request preferences, ring-hash and maglev consistency (same key -> same host,
 * little movement when a host leaves, shares that follow weights), and the priority set rules
 * (DRAINING excluded, panic below the threshold, spill-over to the next priority, locality
 * weighting by weight x availability).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from '../../../../src/proxy/upstream/host.js';
import { RoundRobinLb } from '../../../../src/proxy/upstream/lb/round-robin.js';
import { RandomLb } from '../../../../src/proxy/upstream/lb/random.js';
import { LeastRequestLb } from '../../../../src/proxy/upstream/lb/least-request.js';
import { RingHashLb } from '../../../../src/proxy/upstream/lb/ring-hash.js';
import { MaglevLb } from '../../../../src/proxy/upstream/lb/maglev.js';
import { PrioritySet } from '../../../../src/proxy/upstream/priority-set.js';
import { hash32 } from '../../../../src/proxy/common/hash.js';
import type { ClusterModel, LbPolicy } from '../../../../src/proxy/config/cluster-resource.js';
import { registerLbPolicy, type LoadBalancer } from '../../../../src/proxy/upstream/lb/load-balancer.js';
import { createLoadBalancer, isHashBased } from '../../../../src/proxy/upstream/lb/policies.js';
import { LB_POLICIES } from '../../../../src/proxy/config/cluster-resource.js';

function hosts(n: number, weights?: number[]): Host[] {
  return Array.from({ length: n }, (_, i) => {
    const h = new Host('10.0.0.1', 8000 + i);
    h.weight = weights?.[i] ?? 1;
    return h;
  });
}

function tally(lb: LoadBalancer, n: number, hash?: (i: number) => number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = lb.pick(hash ? hash(i) : undefined);
    assert.ok(h, 'a host is picked');
    out.set(h.key, (out.get(h.key) ?? 0) + 1);
  }
  return out;
}

function model(policy: LbPolicy, extra: Partial<ClusterModel> = {}): ClusterModel {
  return {
    name: 'c',
    discovery: 'EDS',
    edsName: 'c',
    staticEndpoints: undefined,
    dns: undefined,
    connectTimeoutMs: 1000,
    lbPolicy: policy,
    ringMinSize: 1024,
    ringMaxSize: 8 * 1024 * 1024,
    maglevTableSize: 65537,
    choiceCount: 2,
    activeRequestBias: 1,
    localityWeighted: false,
    panicThreshold: 50,
    http2: false,
    h2MaxConcurrentStreams: 100,
    upstreamIdleTimeoutMs: 60_000,
    maxRequestsPerConnection: 0,
    healthCheck: undefined,
    outlier: undefined,
    thresholds: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
    thresholdsHigh: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
    tls: undefined,
    ...extra,
  };
}

describe('round robin', () => {
  it('rotates over equal hosts exactly', () => {
    const hs = hosts(3);
    const t = tally(new RoundRobinLb(hs, [1, 1, 1]), 300);
    assert.deepEqual([...t.values()], [100, 100, 100]);
  });

  it('honours weights and interleaves them smoothly (3:1 -> a a b a, not a a a b)', () => {
    const hs = hosts(2, [3, 1]);
    const lb = new RoundRobinLb(hs, [3, 1]);
    const t = tally(lb, 400);
    assert.equal(t.get(hs[0]!.key), 300);
    assert.equal(t.get(hs[1]!.key), 100);
    const seq = Array.from({ length: 8 }, () => lb.pick()?.port);
    let run = 0;
    let longest = 0;
    for (const p of seq) {
      run = p === hs[0]!.port ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    assert.ok(longest <= 3, `the heavy host never runs more than its weight in a row: ${seq.join(',')}`);
  });
});

describe('random and least request', () => {
  it('random follows weights', () => {
    const hs = hosts(2, [9, 1]);
    const t = tally(new RandomLb(hs, [9, 1]), 10_000);
    const share = (t.get(hs[1]!.key) ?? 0) / 10_000;
    assert.ok(share > 0.08 && share < 0.12, `light host share ${share}`);
  });

  it('least request avoids the busy host (P2C with two hosts always compares both when they differ)', () => {
    const hs = hosts(2);
    hs[0]!.rqActive = 50;
    const lb = new LeastRequestLb(hs, [1, 1], 2, 1);
    const t = tally(lb, 1000);
    // P2C draws 2 of 2 with replacement: the idle host wins unless both draws hit the busy one (1/4).
    const idle = t.get(hs[1]!.key) ?? 0;
    assert.ok(idle > 650 && idle < 850, `idle host got ${idle}/1000`);
    const many = new LeastRequestLb(hs, [1, 1], 10, 1);
    assert.ok((tally(many, 1000).get(hs[1]!.key) ?? 0) > 990, 'more choices, stronger preference');
  });
});

describe('consistent hashing', () => {
  // Survivors' keys may move a little: ring hash gives each survivor more points on a ring of fixed
  // minimum size (as Envoy's does), maglev refills the freed table slots with small disruption.
  for (const [name, make, maxMoved] of [
    ['ring hash', (hs: Host[], w: number[]) => new RingHashLb(hs, w, 1024, 8 << 20), 0.2],
    ['maglev', (hs: Host[], w: number[]) => new MaglevLb(hs, w, 65537), 0.1],
  ] as const) {
    it(`${name}: same key -> same host; a removed host moves only its own keys`, () => {
      const hs = hosts(5);
      const lb = make(hs, [1, 1, 1, 1, 1]);
      const keys = Array.from({ length: 2000 }, (_, i) => hash32(`user-${i}`));
      const first = keys.map((k) => lb.pick(k)?.key);
      assert.deepEqual(
        keys.map((k) => lb.pick(k)?.key),
        first,
        'stable',
      );
      const counts = new Map<string, number>();
      for (const k of first) counts.set(k ?? '', (counts.get(k ?? '') ?? 0) + 1);
      for (const c of counts.values()) assert.ok(c > 250 && c < 550, `each host gets about a fifth: ${[...counts.values()]}`);
      const gone = hs[2]!;
      const rest = hs.filter((h) => h !== gone);
      const lb2 = make(rest, [1, 1, 1, 1]);
      let moved = 0;
      keys.forEach((k, i) => {
        const now = lb2.pick(k)?.key;
        if (first[i] !== gone.key && now !== first[i]) moved++;
      });
      assert.ok(moved < keys.length * maxMoved, `${moved} keys of surviving hosts moved`);
    });

    it(`${name}: shares follow weights`, () => {
      const hs = hosts(2, [3, 1]);
      const lb = make(hs, [3, 1]);
      const t = tally(lb, 8000, (i) => hash32(`k${i}`));
      const heavy = (t.get(hs[0]!.key) ?? 0) / 8000;
      assert.ok(heavy > 0.68 && heavy < 0.82, `heavy host share ${heavy}`);
    });
  }
});

describe('priority set', () => {
  const build = (hs: Host[], m = model('ROUND_ROBIN')): PrioritySet => {
    for (const h of hs) h.refresh();
    const p = new PrioritySet();
    p.rebuild(m, hs, 140);
    return p;
  };

  it('never picks DRAINING or unhealthy hosts while enough are healthy', () => {
    const hs = hosts(4);
    hs[0]!.edsHealth = 'DRAINING';
    hs[1]!.edsHealth = 'UNHEALTHY';
    const p = build(hs);
    const picked = new Set(Array.from({ length: 100 }, () => p.pick(undefined)?.port));
    assert.deepEqual([...picked].sort(), [8002, 8003]);
    assert.equal(p.stats().excluded, 1);
    assert.equal(p.stats().healthy, 2);
  });

  it('panics below the threshold: balances over all hosts', () => {
    const hs = hosts(3);
    hs[0]!.failedActiveHc = true;
    hs[1]!.failedActiveHc = true;
    const p = build(hs);
    assert.equal(p.stats().panic, true);
    const picked = new Set(Array.from({ length: 30 }, () => p.pick(undefined)?.port));
    assert.equal(picked.size, 3);
    const noPanic = build(
      hosts(3).map((h, i) => Object.assign(h, { failedActiveHc: i < 2 })),
      model('ROUND_ROBIN', { panicThreshold: 0 }),
    );
    assert.deepEqual(new Set(Array.from({ length: 30 }, () => noPanic.pick(undefined)?.port)), new Set([8002]));
  });

  it('all DRAINING: panic (as Envoy) sends them traffic at the default threshold, none at threshold 0', () => {
    const draining = (): Host[] => hosts(2).map((h) => Object.assign(h, { edsHealth: 'DRAINING' as const }));
    const p = build(draining());
    assert.equal(p.stats().panic, true);
    assert.deepEqual(new Set(Array.from({ length: 30 }, () => p.pick(undefined)?.port)), new Set([8000, 8001]));
    const off = build(draining(), model('ROUND_ROBIN', { panicThreshold: 0 }));
    assert.equal(off.stats().panic, false);
    assert.equal(off.pick(undefined), undefined, 'threshold 0: no host, so "no healthy upstream"');
  });

  it('threshold 0: the only unhealthy host gets nothing; panic otherwise includes DRAINING hosts', () => {
    const lone = hosts(1).map((h) => Object.assign(h, { edsHealth: 'UNHEALTHY' as const }));
    assert.equal(build(lone, model('ROUND_ROBIN', { panicThreshold: 0 })).pick(undefined), undefined);
    // 1 healthy of 3 counted (33% < 50%): panic over all four, the DRAINING one too (Envoy's hosts()).
    const hs = hosts(4);
    hs[1]!.edsHealth = 'UNHEALTHY';
    hs[2]!.edsHealth = 'UNHEALTHY';
    hs[3]!.edsHealth = 'DRAINING';
    const p = build(hs);
    assert.equal(p.stats().panic, true);
    assert.equal(new Set(Array.from({ length: 40 }, () => p.pick(undefined)?.port)).size, 4);
  });

  it('spills over to priority 1 as priority 0 loses health (overprovisioning 1.4)', () => {
    const hs = hosts(4);
    hs[2]!.priority = 1;
    hs[3]!.priority = 1;
    hs[0]!.edsHealth = 'UNHEALTHY';
    // P0: 1 of 2 healthy -> health min(100, 1.4 x 50) = 70% of the traffic; P1 gets 30%.
    const p = build(hs, model('ROUND_ROBIN', { panicThreshold: 0 }));
    let p1 = 0;
    for (let i = 0; i < 10_000; i++) if ((p.pick(undefined)?.priority ?? 0) === 1) p1++;
    assert.ok(p1 > 2700 && p1 < 3300, `priority 1 share ${p1 / 100}%`);
  });

  it('weights localities by weight x availability', () => {
    const hs = hosts(4);
    const zone = (h: Host, z: string, w: number): void => {
      h.localityKey = z;
      h.localityWeight = w;
    };
    zone(hs[0]!, 'a', 3);
    zone(hs[1]!, 'a', 3);
    zone(hs[2]!, 'b', 1);
    zone(hs[3]!, 'b', 1);
    const m = model('ROUND_ROBIN', { localityWeighted: true });
    const count = (p: PrioritySet): number => {
      let b = 0;
      for (let i = 0; i < 4000; i++) if (['b'].includes(p.pick(undefined)?.localityKey ?? '')) b++;
      return b;
    };
    assert.equal(count(build(hs, m)), 1000, 'zone b gets 1/4 (EDF is exact)');
    // Half of zone a fails: availability min(1, 1.4 x 1/2) = 0.7 -> effective 2.1 vs 1.
    hs[0]!.failedActiveHc = true;
    const b = count(build(hs, m));
    assert.ok(Math.abs(b - 4000 / 3.1) <= 2, `zone b share after zone a lost half: ${b}`);
  });
});

describe('lb policy registry', () => {
  it('every lb_policy the cluster reader accepts has a registered load balancer of its kind', () => {
    const kinds = { ROUND_ROBIN: RoundRobinLb, LEAST_REQUEST: LeastRequestLb, RANDOM: RandomLb, RING_HASH: RingHashLb, MAGLEV: MaglevLb };
    for (const policy of LB_POLICIES) {
      assert.ok(createLoadBalancer(model(policy), hosts(3), [1, 1, 1]) instanceof kinds[policy], policy);
    }
  });

  it('hash-based is answered by the registry: RING_HASH and MAGLEV only', () => {
    assert.deepEqual(LB_POLICIES.filter(isHashBased), ['RING_HASH', 'MAGLEV']);
  });

  it('a policy registers once', () => {
    assert.throws(() => registerLbPolicy('RANDOM', { hashBased: false, create: (_m, h, w) => new RandomLb(h, w) }), /RANDOM is registered twice/);
  });
});
