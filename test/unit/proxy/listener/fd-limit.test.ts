/**
 * The default of the proxy's global downstream connection cap (src/proxy/listener/fd-limit.ts): the
 * soft open-file limit read from /proc/self/limits' text, and the cap derived from it (20,000, or
 * half of what the fd limit leaves after a reserve, never below 1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultMaxDownstreamConnections, DOWNSTREAM_CAP_CEILING, openFileLimit } from '../../../../src/proxy/listener/fd-limit.js';

const limits = (soft: string, hard: string): string =>
  `Limit                     Soft Limit           Hard Limit           Units     \nMax processes             63408                63408                processes \nMax open files            ${soft.padEnd(21)}${hard.padEnd(21)}files     \n`;

test('openFileLimit reads the soft limit; unlimited or missing is undefined', () => {
  assert.equal(openFileLimit(limits('1024', '524288')), 1024);
  assert.equal(openFileLimit(limits('unlimited', 'unlimited')), undefined);
  assert.equal(openFileLimit('nothing here'), undefined);
});

test('the default cap: 20,000, lower where the fd limit would run out first', () => {
  assert.equal(defaultMaxDownstreamConnections(undefined), DOWNSTREAM_CAP_CEILING);
  assert.equal(defaultMaxDownstreamConnections(1_048_576), 20_000);
  assert.equal(defaultMaxDownstreamConnections(20_000), 9_872);
  assert.equal(defaultMaxDownstreamConnections(1024), 384);
  assert.equal(defaultMaxDownstreamConnections(100), 1);
});
