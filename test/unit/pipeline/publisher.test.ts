/**
 * The publisher: coalescing of bursts into one snapshot, bounded delay, and "last good keeps
 * serving" per cluster when one cluster's endpoints are refused.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../../src/config/parse.js';
import type { EndpointInfo, EndpointMap } from '../../../src/config/endpoints.js';
import { SnapshotCache } from '../../../src/cache/snapshot-cache.js';
import { Publisher } from '../../../src/pipeline/publisher.js';
import { silentLogger } from '../../../src/log.js';
import { TypeUrl } from '../../../src/xds/resource-types.js';

const seed = parseConfig(readFileSync(new URL('../../../../examples/seed-001.yaml', import.meta.url), 'utf8'), 'seed-001.yaml');

function endpoints(healthyCount: number, address = '10.0.0.'): EndpointMap {
  const eps: EndpointInfo[] = [];
  for (let i = 0; i < 100; i++) eps.push({ address: `${address}${i + 1}`, port: 80, zone: 'a', health: i < healthyCount ? 'HEALTHY' : 'UNHEALTHY' });
  return new Map([['web-api-perl', eps]]);
}

function setup(opts: { endpointQuietMs?: number; maxDelayMs?: number } = {}) {
  const cache = new SnapshotCache();
  const publisher = new Publisher({ cache, logger: silentLogger, ...opts });
  const published: number[] = [];
  publisher.on('published', () => published.push(performance.now()));
  publisher.setConfig(seed, 'seed');
  assert.ok(publisher.flush(), 'the seed config publishes');
  published.length = 0;
  return { cache, publisher, published };
}

/**
 * A clock the test moves by hand: the publisher's timers (setTimeout) and its reading of the time
 * (performance.now) advance together, so the timing rules are checked exactly, whatever the load
 * on the machine (a real 150 ms timer fired 494 ms late once on a loaded CI box).
 */
function manualClock(t: TestContext): { now(): number; advance(ms: number): void } {
  let clock = 1_000_000; // whole milliseconds: no float drift between the timers and the reading
  t.mock.timers.enable({ apis: ['setTimeout'] });
  t.mock.method(performance, 'now', () => clock);
  return {
    now: () => clock,
    advance(ms: number) {
      for (let i = 0; i < ms; i++) {
        clock += 1;
        t.mock.timers.tick(1);
      }
    },
  };
}

test('a burst of health changes spread over 250 ms becomes one snapshot', (t) => {
  const { publisher, published, cache } = setup();
  const time = manualClock(t);
  const before = cache.get('default')?.version(TypeUrl.ClusterLoadAssignment);
  // Consul answers a watch at most every 100 ms: 100 flaps arrive as a few updates ~100 ms apart.
  for (let step = 0; step < 3; step++) {
    publisher.setEndpoints(endpoints(100 - (step + 1) * 30));
    time.advance(100);
  }
  assert.equal(published.length, 0, 'nothing while changes keep coming within the quiet time');
  time.advance(400);
  assert.equal(published.length, 1, 'one snapshot for the whole burst');
  assert.notEqual(cache.get('default')?.version(TypeUrl.ClusterLoadAssignment), before);
  publisher.close();
});

test('a lone endpoint change is published after the quiet time, not later', (t) => {
  const { publisher, published } = setup({ endpointQuietMs: 150 });
  const time = manualClock(t);
  const t0 = time.now();
  publisher.setEndpoints(endpoints(50));
  time.advance(149);
  assert.equal(published.length, 0, 'not before the quiet time');
  time.advance(1);
  assert.deepEqual(
    published.map((at) => at - t0),
    [150],
    'published exactly when the quiet time ends',
  );
  publisher.close();
});

test('a never-ending burst still publishes within maxDelayMs', (t) => {
  const { publisher, published } = setup({ endpointQuietMs: 150, maxDelayMs: 300 });
  const time = manualClock(t);
  const t0 = time.now();
  for (let i = 0; i < 20; i++) {
    publisher.setEndpoints(endpoints(i % 2 ? 10 : 90));
    time.advance(50);
  }
  assert.ok(published.length >= 3, `published ${published.length} times during a 1 s burst`);
  assert.equal((published[0] ?? Number.NaN) - t0, 300, 'the first publish comes maxDelayMs after the burst began');
  publisher.close();
});

/** The ClusterLoadAssignment of `cluster` in the group's current snapshot, as the client receives it. */
function cla(cache: SnapshotCache, cluster: string): unknown {
  return cache.get('default')?.type(TypeUrl.ClusterLoadAssignment).resources.get(cluster)?.object;
}

test('endpoints Envoy would refuse for one cluster: that cluster keeps its last good ones, the refusal is reported', async () => {
  const { publisher, published, cache } = setup({ endpointQuietMs: 10 });
  const goodCla = cla(cache, 'web-api-perl');
  const rejected: Array<{ code: string; message: string }> = [];
  publisher.on('rejected', (e: { code: string; message: string }) => rejected.push(e));
  // Envoy needs IP literals; a hostname endpoint must not reach a snapshot.
  publisher.setEndpoints(new Map([['web-api-perl', [{ address: 'not-an-ip.example', port: 80, health: 'HEALTHY' }]]]));
  await sleep(100);
  assert.equal(rejected.length, 1);
  assert.match(rejected[0]?.message ?? '', /web-api-perl/);
  assert.deepEqual(cla(cache, 'web-api-perl'), goodCla, 'the refused cluster keeps its last good endpoints');
  assert.equal(publisher.status().lastError?.code, rejected[0]?.code);
  assert.match(publisher.status().refusedEndpoints?.['web-api-perl'] ?? '', /not-an-ip\.example:80: EDS endpoints need an IP address/);
  // The next good input publishes again and clears the refusal.
  const before = published.length;
  publisher.setEndpoints(endpoints(100));
  await sleep(100);
  assert.equal(published.length, before + 1);
  assert.equal(publisher.status().refusedEndpoints, undefined);
  assert.notDeepEqual(cla(cache, 'web-api-perl'), goodCla);
  publisher.close();
});

test("one cluster's refused endpoints never block another cluster's updates (per cluster, not per group)", async () => {
  const { publisher, cache } = setup({ endpointQuietMs: 10 });
  const go = (address: string): EndpointInfo[] => [{ address, port: 80, health: 'HEALTHY' }];
  publisher.setEndpoints(
    new Map([
      ['web-api-perl', endpoints(100).get('web-api-perl') ?? []],
      ['web-api-go', go('10.9.0.1')],
    ]),
  );
  await sleep(100);
  const perlGood = cla(cache, 'web-api-perl');
  // web-api-perl turns bad (weight beyond uint32); web-api-go changes at the same time, and again later.
  const bad: EndpointInfo[] = [{ address: '10.0.0.1', port: 80, health: 'HEALTHY', weight: 2 ** 32 + 5 }];
  for (const address of ['10.9.0.2', '10.9.0.3']) {
    publisher.setEndpoints(
      new Map([
        ['web-api-perl', bad],
        ['web-api-go', go(address)],
      ]),
    );
    await sleep(100);
    assert.match(JSON.stringify(cla(cache, 'web-api-go')), new RegExp(address.replace(/\./g, '\\.')), `web-api-go's change to ${address} published`);
    assert.deepEqual(cla(cache, 'web-api-perl'), perlGood, 'web-api-perl keeps its last good endpoints');
  }
  assert.match(publisher.status().refusedEndpoints?.['web-api-perl'] ?? '', /weight must be an integer/);
  publisher.close();
});
