/**
 * The ramp's gate (src/ramp/gate.ts) and spec helpers (src/ramp/spec.ts): pass, wait and breach
 * from the canary's and the baseline's figures, and the steps and flags a spec is made from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type GateInput } from '../../../src/ramp/gate.js';
import { parseDurationMs, parseRatio, rampId, rampWeights } from '../../../src/ramp/spec.js';

const spec = { max5xxRatio: 0.01, maxP99Ms: 300, minRequests: 200, everyMs: 30_000, minSidecarShare: 0.5, canary: 'go', baseline: 'perl' };
const ok = { requests: 1000, errors5xx: 0, ratio5xx: 0, p99Ms: 50 };
const input = (over: Partial<GateInput>): GateInput => ({ spec, canary: ok, baseline: ok, elapsedMs: 30_000, answered: 2, registered: 2, ...over });

test('a healthy canary passes once its window is over', () => {
  assert.equal(decide(input({})).kind, 'pass');
  assert.deepEqual(decide(input({ elapsedMs: 10_000 })), { kind: 'wait', reason: 'window not over' });
});

test('too few requests wait, never pass', () => {
  const d = decide(input({ canary: { requests: 150, errors5xx: 0, ratio5xx: 0, p99Ms: 50 } }));
  assert.deepEqual(d, { kind: 'wait', reason: 'too few requests on go: 150 < 200' });
});

test('5xx over the limit breaches, counted over at least min-requests', () => {
  const d = decide(input({ canary: { requests: 1000, errors5xx: 20, ratio5xx: 0.02, p99Ms: 50 } }));
  assert.equal(d.kind, 'breach');
  assert.match(d.reason, /go 5xx 2\.00% > 1\.00% \(20 of 1000 requests; perl 0\.00%\)/);
  // 3 errors in 50 requests: at least 1.5 % of 200, conclusive before min-requests, even mid-window.
  const early = decide(input({ canary: { requests: 50, errors5xx: 3, ratio5xx: 0.06 }, elapsedMs: 1000 }));
  assert.equal(early.kind, 'breach');
  assert.match(early.reason, /go 5xx 1\.50% > 1\.00% \(3 of 50 requests, counted over at least 200;/);
  // 2 errors in 50: 1 % of 200, not over the limit yet: wait.
  assert.equal(decide(input({ canary: { requests: 50, errors5xx: 2, ratio5xx: 0.04 } })).kind, 'wait');
});

test('a canary is judged against its peer: both over the limit is fleet-wide, a wait', () => {
  const bad = { requests: 1000, errors5xx: 30, ratio5xx: 0.03, p99Ms: 50 };
  const d = decide(input({ canary: bad, baseline: bad }));
  assert.equal(d.kind, 'wait');
  assert.match(d.reason, /fleet-wide/);
  // A baseline with too few requests does not excuse the canary.
  assert.equal(decide(input({ canary: bad, baseline: { ...bad, requests: 10, errors5xx: 1 } })).kind, 'breach');
});

test('p99 over the limit breaches unless the baseline is over it too', () => {
  const slow = { ...ok, p99Ms: 450 };
  assert.match(decide(input({ canary: slow })).reason, /go p99 450 ms > 300 ms \(perl 50 ms\)/);
  assert.equal(decide(input({ canary: slow })).kind, 'breach');
  assert.equal(decide(input({ canary: slow, baseline: slow })).kind, 'wait');
});

test('too few sidecars answering hold a step, not a rollback', () => {
  assert.deepEqual(decide(input({ answered: 1, registered: 3 })), { kind: 'wait', reason: 'only 1 of 3 sidecars answered (need 50.00%)' });
  assert.equal(decide(input({ answered: 0, registered: 0 })).kind, 'wait');
  const bad = { requests: 1000, errors5xx: 30, ratio5xx: 0.03 };
  assert.equal(decide(input({ canary: bad, answered: 1, registered: 3 })).kind, 'breach');
});

test('steps, ids and flags', () => {
  assert.deepEqual(rampWeights({ step: 10, to: 100 }), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  assert.deepEqual(rampWeights({ step: 30, to: 100 }), [30, 60, 90, 100]);
  assert.deepEqual(rampWeights({ step: 50, to: 20 }), [20]);
  assert.equal(rampId('web-api-go', '/api'), 'web-api-go_api');
  assert.equal(parseRatio('max-5xx-ratio', '1%'), 0.01);
  assert.equal(parseRatio('max-5xx-ratio', '0.02'), 0.02);
  assert.throws(() => parseRatio('max-5xx-ratio', '150%'), /--max-5xx-ratio: expected a percentage/);
  assert.equal(parseDurationMs('every', '30s'), 30_000);
  assert.equal(parseDurationMs('max-p99', '300ms'), 300);
  assert.throws(() => parseDurationMs('every', 'soon'), /--every: expected a duration/);
});
