/**
 * Pure rules of the Consul integration: blocking-query index handling, retry backoff, option
 * resolution (flags over environment, TLS pairs, key bindings per node group).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextIndex } from '../../../src/consul/blocking-watch.js';
import { backoffDelay } from '../../../src/common/backoff.js';
import { kvBindings, singleKvKey, parseAddress, resolveConnection, resolveTiming, DEFAULT_TIMING } from '../../../src/consul/options.js';
import { ConsulXdsError } from '../../../src/errors.js';

test('nextIndex: follows the returned index, resets to 0 when it goes backwards, never blocks on 0', () => {
  assert.equal(nextIndex(0, 42), 42, 'first answer');
  assert.equal(nextIndex(42, 42), 42, 'timeout without change');
  assert.equal(nextIndex(42, 57), 57, 'change');
  assert.equal(nextIndex(57, 12), 0, 'backwards (restore / new cluster): plain read next');
  assert.equal(nextIndex(0, 0), 1, 'a returned 0 becomes 1 (blocking on 0 returns at once)');
  assert.equal(nextIndex(0, 1), 1);
});

test('backoffDelay: doubles from base, capped, with equal jitter (never below half)', () => {
  const policy = { baseMs: 100, maxMs: 1000 };
  assert.equal(
    backoffDelay(1, policy, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(1, policy, () => 1),
    100,
  );
  assert.equal(
    backoffDelay(2, policy, () => 1),
    200,
  );
  assert.equal(
    backoffDelay(3, policy, () => 1),
    400,
  );
  assert.equal(
    backoffDelay(5, policy, () => 1),
    1000,
    'capped',
  );
  assert.equal(
    backoffDelay(500, policy, () => 0),
    500,
    'capped, half fixed',
  );
  for (let i = 0; i < 50; i++) {
    const d = backoffDelay(4, policy);
    assert.ok(d >= 400 && d <= 800, `jittered delay ${d} within [400, 800]`);
  }
});

test('resolveConnection: options win over CONSUL_* env; token only from options/env; TLS from env', () => {
  const env = {
    CONSUL_HTTP_ADDR: '10.0.0.1:8501',
    CONSUL_HTTP_SSL: 'true',
    CONSUL_HTTP_TOKEN: 'env-secret',
    CONSUL_CACERT: '/ca.pem',
    CONSUL_HTTP_SSL_VERIFY: 'false',
  };
  const fromEnv = resolveConnection({}, env);
  assert.equal(fromEnv.baseUrl.href, 'https://10.0.0.1:8501/');
  assert.equal(fromEnv.token, 'env-secret');
  assert.equal(fromEnv.tls.caFile, '/ca.pem');
  assert.equal(fromEnv.tls.insecure, true);

  const explicit = resolveConnection({ address: 'http://127.0.0.1:9500', token: 'flag-secret', datacenter: 'dc2', tls: { insecure: false } }, env);
  assert.equal(explicit.baseUrl.href, 'http://127.0.0.1:9500/');
  assert.equal(explicit.token, 'flag-secret');
  assert.equal(explicit.datacenter, 'dc2');
  assert.equal(explicit.tls.insecure, false);

  const defaults = resolveConnection({}, {});
  assert.equal(defaults.baseUrl.href, 'http://127.0.0.1:8500/');
  assert.equal(defaults.token, undefined);
});

test('resolveConnection: a client cert needs its key; bad addresses are named', () => {
  assert.throws(
    () => resolveConnection({ tls: { certFile: '/c.pem' } }, {}),
    (e: unknown) => e instanceof ConsulXdsError && /client certificate needs its key/.test(e.message),
  );
  assert.throws(() => parseAddress('ftp://x:1'), /scheme must be http or https/);
  assert.equal(parseAddress('consul.local:8500').href, 'http://consul.local:8500/');
  assert.equal(parseAddress('https://consul.local:8501/').href, 'https://consul.local:8501/');
});

test('kvBindings: one key for group default, or prefix + group per fleet', () => {
  assert.deepEqual(kvBindings({}), [{ group: 'default', key: 'consul-xds/config' }]);
  assert.deepEqual(kvBindings({ key: '/envoy/config' }), [{ group: 'default', key: 'envoy/config' }]);
  assert.deepEqual(kvBindings({ keyPrefix: 'consul-xds/', groups: ['edge', 'internal'] }), [
    { group: 'edge', key: 'consul-xds/edge' },
    { group: 'internal', key: 'consul-xds/internal' },
  ]);
  assert.throws(() => kvBindings({ key: 'a', keyPrefix: 'b/', groups: ['x'] }), /exclusive/);
  assert.throws(() => kvBindings({ keyPrefix: 'b/' }), /at least one --consul-group/);
  assert.throws(() => kvBindings({ keyPrefix: 'b/', groups: ['x', 'x'] }), /listed twice/);
  assert.throws(() => kvBindings({ key: 'folder/' }), /must name a key/);
  assert.equal(singleKvKey({ keyPrefix: 'consul-xds/', groups: ['edge'] }, 'kv get'), 'consul-xds/edge');
  assert.throws(
    () => singleKvKey({ keyPrefix: 'consul-xds/', groups: ['edge', 'internal'] }, 'kv get'),
    /kv get: works on one key; give one --group \(got edge, internal\)/,
  );
});

test('resolveTiming: defaults, overrides, and named range errors', () => {
  assert.deepEqual(resolveTiming(), DEFAULT_TIMING);
  assert.equal(resolveTiming({ waitMs: 2000 }).waitMs, 2000);
  assert.equal(resolveTiming({ waitMs: 2000 }).minIntervalMs, DEFAULT_TIMING.minIntervalMs);
  assert.throws(() => resolveTiming({ waitMs: 10 }), /waitMs/);
  assert.throws(() => resolveTiming({ backoffBaseMs: 500, backoffMaxMs: 100 }), /backoffMaxMs must be >= backoffBaseMs/);
});
