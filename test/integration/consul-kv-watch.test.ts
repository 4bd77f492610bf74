/**
 * The KV source against a real Consul agent: blocking queries deliver a change in well under a
 * second, an index bump with the same value emits nothing, the loop is rate-limited on success,
 * stop() aborts the in-flight blocking request, and an outage is reported (error status, backoff)
 * while the last value stays, with a later change arriving after Consul restarts on the same ports.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsulKvSource } from '../../src/sources/consul-kv.js';
import { ConsulClient } from '../../src/consul/client.js';
import type { ConsulTlsOptions } from '../../src/consul/options.js';
import type { ConsulError } from '../../src/errors.js';
import { makeTlsFiles, startConsul, type ConsulAgent } from '../support/consul.js';
import { makeTempDir, waitUntil } from '../support/tmp.js';

let consul: ConsulAgent;
const sources: ConsulKvSource[] = [];

before(async () => {
  consul = await startConsul();
});

after(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await consul?.destroy();
});

interface Seen {
  values: Array<{ text: string; modifyIndex: number; at: number }>;
  errors: Array<{ err: ConsulError; at: number }>;
}

function watchKey(
  key: string,
  timing: ConstructorParameters<typeof ConsulKvSource>[0]['timing'] = {},
  client = consul.client,
): { source: ConsulKvSource; seen: Seen } {
  const seen: Seen = { values: [], errors: [] };
  const source = new ConsulKvSource({
    client,
    key,
    timing,
    onValue: (text, modifyIndex) => seen.values.push({ text, modifyIndex, at: performance.now() }),
    onError: (err) => seen.errors.push({ err, at: performance.now() }),
  }).start();
  sources.push(source);
  return { source, seen };
}

test('a KV change arrives in well under a second; the same value written again emits nothing', async () => {
  const key = 'kv-watch/basic';
  await consul.kvPut(key, 'one');
  const { source, seen } = watchKey(key);
  assert.deepEqual(await source.ready(5000), { text: 'one', modifyIndex: seen.values[0]?.modifyIndex });

  const latencies: number[] = [];
  for (const text of ['two', 'three', 'four']) {
    const t0 = performance.now();
    await consul.kvPut(key, text);
    const got = await waitUntil(() => seen.values.find((v) => v.text === text), { what: `value ${text}`, timeoutMs: 5000, intervalMs: 5 });
    latencies.push(got.at - t0);
  }
  assert.ok(Math.max(...latencies) < 500, `KV change latencies ${latencies.map((l) => l.toFixed(0)).join(', ')} ms: all well under a second`);

  // The same value again: Consul bumps the key's ModifyIndex and answers the blocking query.
  const before = seen.values.length;
  await consul.kvPut(key, 'four');
  const bumped = (await consul.client.kvGet(key))?.modifyIndex ?? 0;
  await waitUntil(() => source.status().index >= bumped, { what: 'the watch to see the re-write', timeoutMs: 5000 });
  await consul.kvPut('kv-watch/unrelated', 'x');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(seen.values.length, before, 'no emission for an unchanged value');
  assert.equal(source.current()?.text, 'four');
  assert.equal(source.current()?.modifyIndex, seen.values.at(-1)?.modifyIndex, 'current() is the last emitted value');

  // And the loop still delivers real changes afterwards.
  await consul.kvPut(key, 'five');
  await waitUntil(() => seen.values.find((v) => v.text === 'five'), { what: 'value five', timeoutMs: 5000 });
  assert.equal(seen.errors.length, 0);
});

test('the loop is rate-limited on success: a burst of writes is read at most once per minIntervalMs, ending on the last value', async () => {
  const key = 'kv-watch/burst';
  await consul.kvPut(key, 'v0');
  const { source, seen } = watchKey(key, { minIntervalMs: 300 });
  await source.ready(5000);
  const t0 = performance.now();
  for (let i = 1; i <= 20; i++) {
    await consul.kvPut(key, `v${i}`);
    await new Promise((r) => setTimeout(r, 15));
  }
  await waitUntil(() => seen.values.at(-1)?.text === 'v20', { what: 'the last value of the burst', timeoutMs: 5000 });
  const elapsed = performance.now() - t0;
  const emitted = seen.values.length - 1;
  // Without the limit every write (20) would be an answer; with it, one read per 300 ms window.
  assert.ok(emitted <= Math.ceil(elapsed / 300) + 1, `${emitted} emissions in ${elapsed.toFixed(0)} ms with a 300 ms minimum interval`);
  assert.ok(emitted < 20, `burst coalesced (${emitted} < 20)`);
});

test('a missing key is reported (naming it) and its creation arrives without backoff', async () => {
  const key = 'kv-watch/missing';
  const { source, seen } = watchKey(key);
  const err = await waitUntil(() => seen.errors[0], { what: 'a key-not-found error', timeoutMs: 5000 });
  assert.match(err.err.message, /^consul kv kv-watch\/missing: key not found/);
  assert.equal(err.err.code, 'CXDS_CONSUL');
  assert.equal(source.status().missing, true);
  assert.equal(source.status().consecutiveFailures, 0, 'a 404 is an answer, not a failure');
  await assert.rejects(source.ready(300), /consul kv kv-watch\/missing: no config within 300 ms \(the key does not exist\)/);
  const t0 = performance.now();
  await consul.kvPut(key, 'created');
  const got = await waitUntil(() => seen.values[0], { what: 'the created value', timeoutMs: 5000, intervalMs: 5 });
  assert.ok(got.at - t0 < 500, `creation seen after ${(got.at - t0).toFixed(0)} ms`);
  assert.equal(source.status().missing, false);
});

test('close() aborts the in-flight blocking request at once', async () => {
  const key = 'kv-watch/abort';
  await consul.kvPut(key, 'x');
  const { source } = watchKey(key, { waitMs: 60_000 });
  await source.ready(5000);
  await waitUntil(() => source.status().index > 0, { what: 'a blocking request in flight' });
  const t0 = performance.now();
  await source.close();
  assert.ok(performance.now() - t0 < 200, `closed in ${(performance.now() - t0).toFixed(0)} ms, not after the 60 s wait`);
});

test('the ACL token is sent as X-Consul-Token (and never appears in errors)', async () => {
  const secure = await startConsul({ aclMasterToken: 'b1946ac9-2a4d-4e1b-8d0f-s3cret0token0' });
  const withToken = ConsulClient.fromOptions({ address: secure.address, token: 'b1946ac9-2a4d-4e1b-8d0f-s3cret0token0' }, {});
  const fromEnv = ConsulClient.fromOptions({ address: secure.address }, { CONSUL_HTTP_TOKEN: 'b1946ac9-2a4d-4e1b-8d0f-s3cret0token0' });
  const without = ConsulClient.fromOptions({ address: secure.address }, {});
  const wrong = ConsulClient.fromOptions({ address: secure.address, token: 'wrong-s3cret' }, {});
  try {
    assert.equal(await withToken.kvPut('acl/key', 'v'), true);
    assert.equal((await fromEnv.kvGet('acl/key'))?.value, 'v', 'CONSUL_HTTP_TOKEN is used');
    // Default-deny: without the token, or with a wrong one, Consul refuses with 403.
    await assert.rejects(without.kvGet('acl/key'), /^ConsulError: consul kv acl\/key: consul answered 403/);
    await assert.rejects(wrong.kvPut('acl/key', 'x'), (e: unknown) => {
      const m = (e as Error).message;
      return /^consul kv put acl\/key: consul answered 403/.test(m) && /check the ACL token/.test(m) && !m.includes('s3cret');
    });
  } finally {
    for (const c of [withToken, fromEnv, without, wrong]) c.close();
    await secure.destroy();
  }
});

test('TLS: CA, client certificate and server name are used; a blocking watch works over https', async () => {
  const dir = await makeTempDir('consul-tls');
  const files = await makeTlsFiles(dir.path);
  const secure = await startConsul({ tls: files });
  const address = `https://127.0.0.1:${secure.ports.https}`;
  const clients: ConsulClient[] = [];
  const client = (tls: ConsulTlsOptions, env: NodeJS.ProcessEnv = {}) => {
    const c = ConsulClient.fromOptions({ address, tls }, env);
    clients.push(c);
    return c;
  };
  try {
    await secure.kvPut('tls/key', 'over-tls');
    const full = { caFile: files.caFile, certFile: files.clientCertFile, keyFile: files.clientKeyFile };
    assert.equal((await client(full).kvGet('tls/key'))?.value, 'over-tls');
    assert.equal(
      (await client({}, { CONSUL_CACERT: files.caFile, CONSUL_CLIENT_CERT: files.clientCertFile, CONSUL_CLIENT_KEY: files.clientKeyFile }).kvGet('tls/key'))
        ?.value,
      'over-tls',
      'CONSUL_* TLS env vars',
    );
    assert.equal((await client({ ...full, serverName: 'server.dc1.consul' }).kvGet('tls/key'))?.value, 'over-tls', 'SNI / name check against the SAN');
    await assert.rejects(
      client({ ...full, serverName: 'other.name' }).kvGet('tls/key'),
      /cannot reach consul at https:\/\/127\.0\.0\.1:\d+: .*(altnames|other\.name)/,
    );
    await assert.rejects(
      client({ certFile: files.clientCertFile, keyFile: files.clientKeyFile }).kvGet('tls/key'),
      /cannot reach consul .*(self-signed|issuer|verify)/i,
      'unknown CA refused',
    );
    assert.equal(
      (await client({ certFile: files.clientCertFile, keyFile: files.clientKeyFile, insecure: true }).kvGet('tls/key'))?.value,
      'over-tls',
      'insecure skips verification',
    );
    await assert.rejects(
      client({ caFile: files.caFile }).kvGet('tls/key'),
      /cannot reach consul/,
      'no client certificate: Consul refuses (verify_incoming_https)',
    );

    const { source, seen } = watchKey('tls/key', {}, client(full));
    await source.ready(5000);
    await secure.kvPut('tls/key', 'changed');
    await waitUntil(() => seen.values.find((v) => v.text === 'changed'), { what: 'a change over https', timeoutMs: 5000 });
    await source.close();
  } finally {
    for (const c of clients) c.close();
    await secure.destroy();
    await dir.remove();
  }
});

// Last: it stops and restarts the agent (state is lost: dev mode).
test('Consul stopped: error status with backoff, last value kept; restarted on the same ports: a later change arrives', async () => {
  const key = 'kv-watch/outage';
  await consul.kvPut(key, 'before');
  const { source, seen } = watchKey(key, { backoffBaseMs: 100, backoffMaxMs: 800 });
  await source.ready(5000);
  const stoppedAt = performance.now();
  await consul.stop();

  await waitUntil(() => source.status().consecutiveFailures >= 3, { what: 'three failed attempts', timeoutMs: 10_000 });
  const st = source.status();
  assert.match(st.lastError?.message ?? '', /consul GET \/v1\/kv\/kv-watch\/outage: cannot reach consul/);
  assert.ok(st.retryInMs !== undefined && st.retryInMs > 0, 'a retry is scheduled');
  assert.equal(source.current()?.text, 'before', 'last value kept while Consul is down');
  assert.ok(seen.errors.length >= 3 && seen.errors.every((e) => e.err.message.includes('kv-watch/outage')), 'errors name the key');
  // Backoff: with base 100 ms doubling to 800 ms, 2 s of outage allow only a handful of attempts.
  await new Promise((r) => setTimeout(r, 2000));
  const attempts = source.status().consecutiveFailures;
  const elapsed = performance.now() - stoppedAt;
  assert.ok(attempts <= Math.ceil(elapsed / 50) && attempts <= 12, `${attempts} attempts in ${elapsed.toFixed(0)} ms: backing off, not spinning`);
  assert.ok((source.status().retryInMs ?? 0) >= 400, `retry delay grew to ${source.status().retryInMs} ms`);

  await consul.start();
  // The restarted dev agent is empty: the key is gone (reported), the last value keeps serving.
  await waitUntil(() => source.status().missing, { what: 'the watch to resume and see the key missing', timeoutMs: 10_000 });
  assert.equal(source.status().consecutiveFailures, 0);
  assert.equal(source.current()?.text, 'before');
  const t0 = performance.now();
  await consul.kvPut(key, 'after');
  const got = await waitUntil(() => seen.values.find((v) => v.text === 'after'), { what: 'the change after the restart', timeoutMs: 5000, intervalMs: 5 });
  assert.ok(got.at - t0 < 1000, `change after restart seen in ${(got.at - t0).toFixed(0)} ms`);
});
