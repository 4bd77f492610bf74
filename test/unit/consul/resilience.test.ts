/**
 * What Consul faults and bad records may not cost (issue 9), as pure rules and against a scripted
 * Consul on 127.0.0.1: the hold of a service's last instances (empty answer, index backwards),
 * per-entry parsing, weights clamped and scaled into Envoy's range, ACL-filtered answers as
 * errors (Consul 1.8.7 does not send X-Consul-Results-Filtered-By-ACLs, so the header is
 * constructed here), Retry-After / 429, stale reads and the Consul flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InstanceHold } from '../../../src/consul/instance-hold.js';
import { decodeHealthAnswer, fitWeights, parseHealthEntries, toEndpoints, type HealthInstance } from '../../../src/consul/health-entries.js';
import { ConsulClient, parseRetryAfter } from '../../../src/consul/client.js';
import { MAX_RETRY_AFTER_MS, retryDelay } from '../../../src/common/backoff.js';
import { BlockingWatch } from '../../../src/consul/blocking-watch.js';
import { consistencyQuery } from '../../../src/consul/options.js';
import { consulOptions } from '../../../src/commands/consul-flags.js';
import { ConsulHealthSource } from '../../../src/sources/consul-health.js';
import { endpointIssues, loadAssignment } from '../../../src/translate/endpoints.js';
import type { EndpointInfo, EndpointMap } from '../../../src/config/endpoints.js';
import { UINT32_MAX } from '../../../src/config/schema.js';
import { ConsulError } from '../../../src/errors.js';
import { listenHttp } from '../../support/upstreams.js';
import { waitUntil } from '../../support/tmp.js';

const inst = (serviceId: string, status: HealthInstance['status'] = 'passing', node = 'n1'): HealthInstance =>
  Object.freeze({ node, serviceId, address: '10.0.0.1', servicePort: 80, status });
const ids = (list: readonly HealthInstance[] | undefined) => list?.map((i) => `${i.serviceId}:${i.status}`);

test('hold (empty): the last instances serve through the grace; a returning instance ends it at once', () => {
  const h = new InstanceHold(30_000);
  assert.deepEqual(ids(h.answer([], false, 0)), [], 'a first answer is served as it is: no data before is not "had instances"');
  assert.deepEqual(ids(h.answer([inst('a'), inst('b')], false, 1000)), ['a:passing', 'b:passing']);
  assert.deepEqual(ids(h.answer([], false, 2000)), ['a:passing', 'b:passing'], 'empty answer: last instances held');
  assert.deepEqual(h.status(), { reason: 'empty', since: new Date(2000).toISOString(), until: new Date(32_000).toISOString(), held: ['n1/a', 'n1/b'] });
  assert.equal(h.deadline, 32_000);
  assert.equal(h.expire(31_999), undefined, 'not before the grace ends');
  // A redeploy: new instance c replaces a and b; it must win at once, not after the grace.
  assert.deepEqual(ids(h.answer([inst('c')], false, 5000)), ['c:passing']);
  assert.equal(h.status(), undefined);
  assert.equal(h.deadline, undefined);
});

test('hold (empty): a deliberate scale to zero arrives after the grace (timer, or the next answer)', () => {
  const h = new InstanceHold(30_000);
  h.answer([inst('a')], false, 0);
  assert.deepEqual(ids(h.answer([], false, 1000)), ['a:passing']);
  assert.deepEqual(ids(h.expire(31_000)), [], 'the grace is over: the empty set is served');
  assert.equal(h.status(), undefined);
  assert.deepEqual(ids(h.answer([], false, 40_000)), [], 'and stays empty, no new hold');
  const h2 = new InstanceHold(30_000);
  h2.answer([inst('a')], false, 0);
  h2.answer([], false, 1000);
  assert.deepEqual(ids(h2.answer([], false, 31_000)), [], 'an answer after the grace ends the hold too');
});

test('hold: grace 0 turns it off; a partial drop with a forward index is believed at once', () => {
  const off = new InstanceHold(0);
  off.answer([inst('a')], false, 0);
  assert.deepEqual(ids(off.answer([], false, 1)), []);
  assert.deepEqual(ids(off.answer([inst('a')], false, 2)), ['a:passing']);
  assert.deepEqual(ids(off.answer([], true, 3)), []);
  const h = new InstanceHold(30_000);
  h.answer([inst('a'), inst('b')], false, 0);
  assert.deepEqual(ids(h.answer([inst('a')], false, 1)), ['a:passing'], 'a deregistration is not a Consul fault');
  assert.equal(h.status(), undefined);
});

test('hold (index backwards): missing instances are kept until all are listed again; new ones and health changes pass', () => {
  const h = new InstanceHold(30_000);
  h.answer([inst('a'), inst('b'), inst('c')], false, 0);
  // A restarted Consul lists only a, now critical, and a new instance d.
  assert.deepEqual(ids(h.answer([inst('a', 'critical'), inst('d')], true, 1000)), ['a:critical', 'b:passing', 'c:passing', 'd:passing']);
  assert.equal(h.status()?.reason, 'index-backwards');
  assert.deepEqual(h.status()?.held, ['n1/b', 'n1/c']);
  // b returns (the index now moves forward from the new, lower sequence): c is still held.
  assert.deepEqual(ids(h.answer([inst('a'), inst('b'), inst('d')], false, 2000)), ['a:passing', 'b:passing', 'c:passing', 'd:passing']);
  assert.deepEqual(h.status()?.held, ['n1/c']);
  // Everything held is listed again: the hold ends and the answer is served as it is.
  assert.deepEqual(ids(h.answer([inst('a'), inst('b'), inst('c', 'warning')], false, 3000)), ['a:passing', 'b:passing', 'c:warning']);
  assert.equal(h.status(), undefined);
  // Backwards again, and c never comes back: after the grace the answer is believed.
  h.answer([inst('a'), inst('b')], true, 10_000);
  assert.deepEqual(h.status()?.held, ['n1/c']);
  assert.deepEqual(ids(h.expire(40_000)), ['a:passing', 'b:passing']);
  // Backwards with nothing missing holds nothing.
  h.answer([inst('a'), inst('b')], true, 50_000);
  assert.equal(h.status(), undefined);
});

test('hold (index backwards, empty): a restart that lists nothing holds everything until all are back', () => {
  const h = new InstanceHold(30_000);
  h.answer([inst('a'), inst('b')], false, 0);
  assert.deepEqual(ids(h.answer([], true, 1000)), ['a:passing', 'b:passing']);
  assert.equal(h.status()?.reason, 'index-backwards');
  assert.deepEqual(ids(h.answer([inst('a')], false, 1500)), ['a:passing', 'b:passing'], 'one re-registered instance does not end a restart hold');
  assert.deepEqual(ids(h.answer([inst('a'), inst('b')], false, 2000)), ['a:passing', 'b:passing']);
  assert.equal(h.status(), undefined);
});

interface EntryInput {
  readonly node?: string;
  readonly id?: unknown;
  readonly address?: string;
  readonly port?: unknown;
  readonly meta?: unknown;
  readonly weights?: unknown;
}

function entry(e: EntryInput): unknown {
  return {
    Node: { Node: e.node ?? 'n1', Address: '10.0.0.1', Meta: {} },
    Service: {
      ID: e.id,
      Service: 'web',
      Address: e.address ?? '10.0.0.1',
      Port: e.port ?? 80,
      Meta: e.meta ?? null,
      Weights: e.weights ?? { Passing: 1, Warning: 1 },
    },
    Checks: [{ CheckID: 'serfHealth', Status: 'passing' }],
  };
}

test('parseHealthEntries: a malformed entry costs only itself; each is reported naming the service and instance', () => {
  const answer = parseHealthEntries(
    JSON.stringify([
      entry({ id: 'good-1', address: '10.0.0.1' }),
      entry({ id: 'port-text', address: '10.0.0.2', port: '80' }),
      entry({ node: 'n2', id: undefined, address: '10.0.0.3' }),
      entry({ id: 'meta-number', address: '10.0.0.4', meta: { zone: 5 } }),
      'not an object',
      entry({ id: 'good-2', address: '10.0.0.5' }),
    ]),
    'web',
  );
  assert.deepEqual(
    answer.instances.map((i) => i.serviceId),
    ['good-1', 'good-2'],
  );
  assert.equal(answer.invalid.length, 4);
  assert.match(answer.invalid[0] ?? '', /^consul health web: entry 1 \(instance n1\/port-text\): Service\.Port: .*; skipped$/);
  assert.match(answer.invalid[1] ?? '', /^consul health web: entry 2 \(instance n2\/\?\): Service\.ID: /);
  assert.match(answer.invalid[2] ?? '', /^consul health web: entry 3 \(instance n1\/meta-number\): Service\.Meta\.zone: /);
  assert.match(answer.invalid[3] ?? '', /^consul health web: entry 4 \(instance \?\/\?\)/);
});

test('toEndpoints: a weight above uint32 is clamped and reported; the instance stays and Envoy accepts the CLA', () => {
  const { instances } = parseHealthEntries(
    JSON.stringify([
      entry({ id: 'big', address: '10.0.0.1', weights: { Passing: 2 ** 32 + 5, Warning: 1 } }),
      entry({ id: 'small', address: '10.0.0.2', weights: { Passing: 3, Warning: 1 } }),
    ]),
    'web',
  );
  const { endpoints, skipped } = toEndpoints('web', instances);
  assert.equal(endpoints.length, 2);
  assert.match(skipped.join('\n'), /consul health web: instance n1\/big: weight 4294967301 is above Envoy's maximum 4294967295; clamped to it \(kept\)/);
  assert.match(skipped.join('\n'), /consul health web: instance weights add up to more than 4294967295; all scaled down/);
  assert.deepEqual(endpointIssues('web', endpoints), []);
  assert.doesNotThrow(() => loadAssignment('web', endpoints));
});

test('fitWeights: sums past uint32 are scaled by one factor (ratios kept, each >= 1, total fits); small sums untouched', () => {
  const eps = (weights: number[]): EndpointInfo[] =>
    weights.map((weight, i) => ({ address: `10.0.0.${i + 1}`, port: 80, health: 'HEALTHY', weight, zone: i % 2 ? 'a' : 'b' }));
  const small = eps([5, 7]);
  assert.equal(fitWeights(small), small);
  const big = fitWeights(eps([UINT32_MAX, UINT32_MAX, UINT32_MAX, 2, 1]));
  const total = big.reduce((s, e) => s + (e.weight ?? 1), 0);
  assert.ok(total <= UINT32_MAX, `total ${total}`);
  assert.deepEqual(
    big.slice(3).map((e) => e.weight),
    [1, 1],
    'tiny weights stay at least 1',
  );
  assert.equal(big[0]?.weight, big[2]?.weight);
  assert.ok(Math.abs((big[0]?.weight ?? 0) - UINT32_MAX / 3) < 10, 'a third each');
  assert.deepEqual(endpointIssues('c', big), []);
});

test('decodeHealthAnswer: an answer flagged X-Consul-Results-Filtered-By-ACLs is an error naming the permission, not "no instances"', () => {
  assert.throws(
    () => decodeHealthAnswer({ status: 200, index: 7, body: '[]', aclFiltered: true }, 'web'),
    (e: unknown) =>
      e instanceof ConsulError &&
      /consul health web: .*X-Consul-Results-Filtered-By-ACLs.*\(\$CONSUL_HTTP_TOKEN or --consul-token-file\) needs service:read on 'web' and node:read/.test(
        e.message,
      ),
  );
  assert.deepEqual(decodeHealthAnswer({ status: 200, index: 7, body: '[]' }, 'web').instances, []);
});

test('ConsulClient.expect: the 403 hint names the real token settings', () => {
  assert.throws(
    () => ConsulClient.expect({ status: 403, body: 'Permission denied' }, 'consul health web'),
    (e: unknown) =>
      e instanceof ConsulError && /check the ACL token: \$CONSUL_HTTP_TOKEN or --consul-token-file\)$/.test(e.message) && !/--consul-token[^-]/.test(e.message),
  );
});

test('parseRetryAfter and retryDelay: seconds or an HTTP date; the longer of backoff and Retry-After, capped', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(['2']), 2000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(parseRetryAfter(new Date(1000).toUTCString(), 4000), 0, 'a date in the past: retry now');
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
  const policy = { baseMs: 100, maxMs: 1000 };
  assert.equal(
    retryDelay(1, policy, undefined, () => 1),
    100,
    'no Retry-After: the backoff',
  );
  assert.equal(
    retryDelay(1, policy, 5000, () => 0),
    5000,
    'Retry-After longer than the backoff wins',
  );
  assert.equal(
    retryDelay(1, policy, 5000, () => 1),
    5500,
    'plus up to 10 % jitter',
  );
  assert.equal(
    retryDelay(5, policy, 10, () => 1),
    1000,
    'a shorter Retry-After does not cut the backoff',
  );
  assert.equal(
    retryDelay(1, policy, 10 * 3_600_000, () => 0),
    MAX_RETRY_AFTER_MS,
    'an absurd Retry-After is capped',
  );
});

/** A scripted Consul on 127.0.0.1: each GET gets the next answer (the last repeats, a little later, so loops do not spin). */
async function scriptedConsul(answers: Array<{ status?: number; headers?: Record<string, string>; body: string }>) {
  const urls: string[] = [];
  let n = 0;
  const server = await listenHttp((req: IncomingMessage, res: ServerResponse) => {
    urls.push(req.url ?? '');
    const a = answers[Math.min(n, answers.length - 1)];
    const delay = n >= answers.length ? 200 : 0;
    n++;
    setTimeout(() => {
      res.writeHead(a?.status ?? 200, { 'content-type': 'application/json', 'x-consul-index': String(10 + n), ...a?.headers });
      res.end(a?.body ?? '[]');
    }, delay);
  });
  const client = ConsulClient.fromOptions({ address: `http://127.0.0.1:${server.port}` }, {});
  return {
    urls,
    client,
    close: async () => {
      client.close();
      await server.close();
    },
  };
}

const webBody = JSON.stringify([entry({ id: 'web-1', address: '10.0.0.1' })]);

test('over the wire: an ACL-filtered empty answer keeps the last endpoints and reports the missing permission', async () => {
  const consul = await scriptedConsul([{ body: webBody }, { body: '[]', headers: { 'x-consul-results-filtered-by-acls': 'true' } }]);
  const maps: EndpointMap[] = [];
  const errors: string[] = [];
  const source = new ConsulHealthSource({
    client: consul.client,
    emptyGraceMs: 0,
    onChange: (m) => maps.push(m),
    onError: (e) => errors.push(e.message),
    timing: { minIntervalMs: 10, backoffBaseMs: 50, backoffMaxMs: 100 },
  });
  try {
    source.setServices([{ cluster: 'web', service: 'web' }]);
    await waitUntil(() => errors.length >= 2, { what: 'the filtered answers to be reported', timeoutMs: 5000 });
    assert.deepEqual(
      maps
        .at(-1)
        ?.get('web')
        ?.map((e) => e.origin),
      ['n1/web-1'],
      'the last endpoints keep serving (grace is off: not the hold)',
    );
    assert.match(errors[0] ?? '', /service:read on 'web'/);
    assert.match(source.status().services[0]?.lastError?.message ?? '', /X-Consul-Results-Filtered-By-ACLs/);
  } finally {
    await source.close();
    await consul.close();
  }
});

test('over the wire: 429 with Retry-After makes the watch wait as long as Consul asked; reads are stale by default', async () => {
  const consul = await scriptedConsul([{ status: 429, headers: { 'retry-after': '2' }, body: 'rate limit exceeded' }, { body: '[]' }]);
  const errors: string[] = [];
  const watch = new BlockingWatch({
    client: consul.client,
    name: 'consul health web',
    path: '/v1/health/service/web',
    query: consistencyQuery(),
    decode: (res) => decodeHealthAnswer(res, 'web'),
    onChange: () => undefined,
    onError: (e) => errors.push(e.message),
    timing: { backoffBaseMs: 10, backoffMaxMs: 50 },
  });
  try {
    watch.start();
    await waitUntil(() => errors.length === 1, { what: 'the 429', timeoutMs: 2000 });
    const st = watch.status();
    assert.ok((st.retryInMs ?? 0) >= 2000, `retry in ${st.retryInMs} ms, Consul asked for 2000 (backoff alone: <= 50)`);
    assert.match(errors[0] ?? '', /consul answered 429: rate limit exceeded/);
    assert.equal(consul.urls.length, 1, 'no retry before the Retry-After');
    assert.match(consul.urls[0] ?? '', /[?&]stale(=|&|$)/, 'stale reads by default');
  } finally {
    await watch.stop();
    await consul.close();
  }
});

test('consistencyQuery and the Consul flags: grace and read mode, named errors', () => {
  assert.deepEqual(consistencyQuery(), { stale: '' });
  assert.deepEqual(consistencyQuery('default'), {});
  assert.deepEqual(consistencyQuery('consistent'), { consistent: '' });
  assert.deepEqual(consulOptions({ 'consul-empty-grace-ms': '0', 'consul-consistency': 'default' }), { emptyGraceMs: 0, consistency: 'default' });
  assert.deepEqual(consulOptions({ 'consul-empty-grace-ms': '45000' }), { emptyGraceMs: 45_000 });
  assert.throws(() => consulOptions({ 'consul-empty-grace-ms': '30s' }), /--consul-empty-grace-ms: expected milliseconds/);
  assert.throws(() => consulOptions({ 'consul-empty-grace-ms': '99999999' }), /--consul-empty-grace-ms, emptyGraceMs\) '99999999'/);
  assert.throws(() => consulOptions({ 'consul-consistency': 'eventual' }), /--consul-consistency: expected one of stale, default, consistent, got 'eventual'/);
});
