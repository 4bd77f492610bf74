/**
 * Live access-log aggregates: latency bins and percentiles, the per-second sliding window, status
 * classes, lifetime totals, and the key cap with its overflow key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BIN_COUNT, binOf, binValueMs, percentileOf } from '../../../src/als/latency-histogram.js';
import { SlidingWindow, statusClassIndex, windowBytes } from '../../../src/als/sliding-window.js';
import { AccessAggregates, OVERFLOW_KEY } from '../../../src/als/aggregates.js';

test('latency bins report every sample within 10 % of its value', () => {
  for (let ms = 0.11; ms < 100_000; ms *= 1.07) {
    const v = binValueMs(binOf(ms));
    assert.ok(Math.abs(v - ms) / ms < 0.1, `${ms} ms reported as ${v} ms`);
  }
  assert.equal(binOf(0), 0);
  assert.equal(binOf(-5), 0);
  assert.equal(binOf(Number.NaN), 0);
  assert.equal(binOf(1e12), BIN_COUNT - 1, 'huge durations land in the top bin');
});

test('percentiles use nearest rank over the bins', () => {
  const bins = new Array<number>(BIN_COUNT).fill(0);
  // 90 samples at 1 ms, 9 at 10 ms, 1 at 1000 ms.
  bins[binOf(1)] = 90;
  bins[binOf(10)] = 9;
  bins[binOf(1000)] = 1;
  const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) / b < 0.1;
  assert.ok(near(percentileOf(bins, 100, 0.5), 1));
  assert.ok(near(percentileOf(bins, 100, 0.9), 1), 'the 90th sample is still 1 ms');
  assert.ok(near(percentileOf(bins, 100, 0.91), 10));
  assert.ok(near(percentileOf(bins, 100, 0.99), 10));
  assert.ok(near(percentileOf(bins, 100, 1), 1000));
  assert.equal(percentileOf(bins, 0, 0.5), undefined);
});

test('status classes', () => {
  assert.deepEqual([0, 101, 200, 204, 302, 404, 503, 599, 600, 42].map(statusClassIndex), [0, 1, 2, 2, 3, 4, 5, 5, 0, 0]);
});

test('the sliding window forgets seconds older than the window but totals keep them', () => {
  const w = new SlidingWindow(10);
  w.record(1000, 200, 5);
  w.record(1000, 503, 50);
  w.record(1005, 404, 5);
  let s = w.summary(1005);
  assert.equal(s.window.requests, 3);
  assert.deepEqual(s.window.classes, { none: 0, '1xx': 0, '2xx': 1, '3xx': 0, '4xx': 1, '5xx': 1 });
  s = w.summary(1009);
  assert.equal(s.window.requests, 3, 'second 1000 is still inside a 10 s window at 1009');
  s = w.summary(1010);
  assert.equal(s.window.requests, 1, 'second 1000 left the window at 1010');
  assert.deepEqual(s.window.classes, { none: 0, '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 1, '5xx': 0 });
  assert.equal(s.total.requests, 3);
  assert.equal(s.total.classes['5xx'], 1);
  // The slot of second 1000 is reused (1010 % 10 == 1000 % 10): it must be zeroed, not added to.
  w.record(1010, 200, 1);
  s = w.summary(1010);
  assert.equal(s.window.requests, 2);
  assert.equal(s.window.classes['5xx'], 0);
  assert.equal(s.total.requests, 4);
});

test('window percentiles follow the recorded latencies', () => {
  const w = new SlidingWindow(60);
  for (let i = 0; i < 1000; i++) w.record(500 + (i % 60), 200, i < 980 ? 2 : 400);
  const s = w.summary(559);
  assert.equal(s.window.requests, 1000);
  assert.ok(Math.abs(s.window.p50_ms! - 2) < 0.2, `p50 ${s.window.p50_ms}`);
  assert.ok(Math.abs(s.window.p90_ms! - 2) < 0.2, `p90 ${s.window.p90_ms}`);
  assert.ok(Math.abs(s.window.p99_ms! - 400) < 40, `p99 ${s.window.p99_ms}`);
  assert.equal(s.window.rps, 16.67);
});

test('aggregates key routes by authority + route name and clusters by name', () => {
  const a = new AccessAggregates({ windowSeconds: 60 });
  a.record(100, 'www.example.com', 'api', 'web-api-perl', 200, 3);
  a.record(100, 'www.example.com', 'api', 'web-api-go', 500, 3);
  a.record(100, 'www.example.com', 'asset', 'web-asset', 200, 1);
  a.record(100, '', '', 'mongo', 0, 1000); // TCP: cluster only
  a.record(100, 'www.example.com', '', '', 404, 0.2); // no route matched: route key only
  const s = a.snapshot(100);
  const routes = Object.fromEntries(s.routes.map((r) => [`${r.vhost} ${r.route}`, r.window.requests]));
  assert.deepEqual(routes, { 'www.example.com api': 2, 'www.example.com asset': 1, 'www.example.com ': 1 });
  const clusters = Object.fromEntries(s.clusters.map((c) => [c.cluster, c.window.classes]));
  assert.equal(clusters['web-api-go']?.['5xx'], 1);
  assert.equal(clusters['web-api-perl']?.['2xx'], 1);
  assert.equal(clusters.mongo?.none, 1);
  assert.equal(s.clusters.length, 4);
});

test('distinct keys are capped; the rest share the overflow key', () => {
  const a = new AccessAggregates({ windowSeconds: 5, maxRouteKeys: 3, maxClusterKeys: 2 });
  for (let i = 0; i < 1000; i++) a.record(7, `host-${i}.example`, 'r', `c${i}`, 200, 1);
  const s = a.snapshot(7);
  assert.equal(s.routes.length, 4, '3 keys + overflow');
  assert.equal(s.clusters.length, 3, '2 keys + overflow');
  const other = s.routes.find((r) => r.vhost === OVERFLOW_KEY);
  assert.equal(other?.window.requests, 997);
  assert.equal(s.overflowed.routes, 997);
  assert.equal(s.overflowed.clusters, 998);
  assert.equal(
    s.routes.reduce((n, r) => n + r.total.requests, 0),
    1000,
    'no entry is lost from the counts',
  );
  assert.equal(s.maxBytes, (3 + 2 + 2) * windowBytes(5));
});

test('clusterCounts: raw counts and sparse latency bins over the last N seconds, which add up across sidecars', () => {
  const a = new AccessAggregates({ windowSeconds: 10 });
  const b = new AccessAggregates({ windowSeconds: 10 });
  a.record(100, 'h', 'r', 'go', 200, 5);
  a.record(104, 'h', 'r', 'go', 503, 5);
  a.record(105, 'h', 'r', 'go', 200, 500);
  b.record(105, 'h', 'r', 'go', 503, 500);
  const last2 = a.clusterCounts(2, 105);
  assert.equal(last2.seconds, 2);
  assert.deepEqual(last2.clusters, [
    {
      cluster: 'go',
      requests: 2,
      classes: { none: 0, '1xx': 0, '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 1 },
      bins: [
        [binOf(5), 1],
        [binOf(500), 1],
      ],
    },
  ]);
  assert.equal(a.clusterCounts(60, 105).seconds, 10, 'capped at the window');
  assert.equal(a.clusterCounts(60, 105).clusters[0]?.requests, 3);
  // Two sidecars' bins summed give the fleet's percentile, which averaging p99s would not.
  const bins = new Array<number>(BIN_COUNT).fill(0);
  for (const s of [a.clusterCounts(10, 105), b.clusterCounts(10, 105)]) for (const [i, n] of s.clusters[0]!.bins) bins[i]! += n;
  assert.ok(Math.abs(percentileOf(bins, 4, 0.5)! - 5) / 5 < 0.1, 'median of 5, 5, 500, 500 is the 2nd sample: 5 ms');
});
