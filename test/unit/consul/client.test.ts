/**
 * The Consul HTTP client on the `consul` package, against a scripted Consul on 127.0.0.1: what the
 * blocking-query loop and the CLI rely on from the transport. One keep-alive connection; the token
 * only in X-Consul-Token; `dc` on every call; the body as Consul sent it; 404 / 500 / 429 as
 * answers with their headers; IPv6 literal addresses; timeout, abort and a response cut mid-body
 * as prompt errors naming the request and never the token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { inspect } from 'node:util';
import { ConsulClient } from '../../../src/consul/client.js';
import { ConsulError } from '../../../src/errors.js';
import { listenHttp } from '../../support/upstreams.js';

const TOKEN = 'e2c1a7b4-6f0d-4c1e-9a55-t0p5ecret000';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly token: string | undefined;
  readonly body: string;
}

/** A Consul stand-in: `answer` decides per request; every request and its connection are recorded. */
async function scripted(answer: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const server = await listenHttp((req, res) => {
    sockets.add(req.socket);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', token: req.headers['x-consul-token'] as string | undefined, body });
      answer(req, res, body);
    });
  });
  const client = ConsulClient.fromOptions({ address: `http://127.0.0.1:${server.port}`, token: TOKEN, datacenter: 'dc2' }, {});
  return {
    seen,
    sockets,
    client,
    close: async () => {
      client.close();
      await server.close();
    },
  };
}

function assertNoToken(err: unknown): void {
  assert.ok(!inspect(err, { depth: 10 }).includes('t0p5ecret'), 'the token is not in the error or its causes');
}

test('transport: one keep-alive connection; token only in X-Consul-Token; dc and query sent; body and headers as Consul sent them', async () => {
  const raw = '[ {"Node": "n1"} ]\n';
  const consul = await scripted((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '42', 'x-consul-results-filtered-by-acls': 'true' });
    res.end(raw);
  });
  try {
    for (let i = 0; i < 5; i++) {
      const res = await consul.client.request('GET', '/v1/health/service/web', { query: { index: '7', wait: '1000ms', stale: '', skipped: undefined } });
      assert.deepEqual(res, { status: 200, index: 42, body: raw, aclFiltered: true });
    }
    assert.equal(consul.sockets.size, 1, 'five requests, one connection');
    const url = new URL(consul.seen[0]?.url ?? '', 'http://x');
    assert.equal(url.pathname, '/v1/health/service/web');
    assert.deepEqual(Object.fromEntries(url.searchParams), { dc: 'dc2', index: '7', wait: '1000ms', stale: '' });
    assert.ok(
      consul.seen.every((s) => s.token === TOKEN && !s.url.includes('t0p5ecret')),
      'the token travels in the header only',
    );
  } finally {
    await consul.close();
  }
});

test('transport: 404, 500 and 429 are answers with status, index and Retry-After; kvGet and kvPut go through the package', async () => {
  const consul = await scripted((req, res, body) => {
    const path = decodeURIComponent(new URL(req.url ?? '', 'http://x').pathname);
    if (path === '/v1/kv/app/missing') res.writeHead(404, { 'x-consul-index': '9' }).end();
    else if (path === '/v1/kv/app/config' && req.method === 'GET')
      res
        .writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '10' })
        .end(JSON.stringify([{ Key: 'app/config', Value: Buffer.from('a: 1\n').toString('base64'), ModifyIndex: 10 }]));
    else if (path === '/v1/kv/app/config') res.writeHead(200, { 'content-type': 'application/json' }).end(body === 'b: 2\n' ? 'true' : 'false');
    else if (path === '/v1/busy') res.writeHead(429, { 'retry-after': '3', 'content-type': 'text/plain' }).end('rate limit exceeded');
    else res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
  });
  try {
    assert.deepEqual(await consul.client.request('GET', '/v1/kv/app/missing'), { status: 404, index: 9, body: '' });
    assert.deepEqual(await consul.client.request('GET', '/v1/other'), { status: 500, index: undefined, body: 'boom' });
    assert.deepEqual(await consul.client.request('GET', '/v1/busy'), { status: 429, index: undefined, body: 'rate limit exceeded', retryAfterMs: 3000 });
    assert.equal(await consul.client.kvGet('app/missing'), undefined);
    assert.deepEqual(await consul.client.kvGet('app/config'), { key: 'app/config', value: 'a: 1\n', modifyIndex: 10 });
    assert.equal(await consul.client.kvPut('app/config', 'b: 2\n', { cas: 10 }), true);
    const put = consul.seen.at(-1);
    assert.equal(put?.method, 'PUT');
    assert.deepEqual(Object.fromEntries(new URL(put?.url ?? '', 'http://x').searchParams), { dc: 'dc2', cas: '10' });
    assert.ok(
      consul.seen.every((s) => s.token === TOKEN),
      'typed calls carry the token too',
    );
    assert.ok(
      consul.seen.filter((s) => s.url.includes('/kv/')).every((s) => s.url.startsWith('/v1/kv/app/')),
      'a key keeps its slashes on the wire',
    );
    await assert.rejects(
      consul.client.kvGet('app/broken'),
      (e: unknown) => e instanceof ConsulError && /^consul kv app\/broken: consul answered 500: boom$/.test(e.message),
    );
  } finally {
    await consul.close();
  }
});

test('transport: timeout, abort and a response cut mid-body fail at once, naming the request and never the token', async () => {
  const consul = await scripted((req, res) => {
    if (req.url?.startsWith('/v1/cut')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100', 'x-consul-index': '5' });
      res.write('[{"Ke');
      setTimeout(() => res.socket?.destroy(), 20);
    }
    // Anything else: never answered (a blocking query that does not return).
  });
  const timed = async (p: Promise<unknown>): Promise<{ err: unknown; ms: number }> => {
    const t0 = performance.now();
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    return { err, ms: performance.now() - t0 };
  };
  try {
    const timeout = await timed(consul.client.request('GET', '/v1/kv/slow', { timeoutMs: 200 }));
    assert.match(String(timeout.err), /^ConsulError: consul GET \/v1\/kv\/slow: no answer from http:\/\/127\.0\.0\.1:\d+ within 200 ms$/);
    assert.ok(timeout.ms < 1500, `timed out after ${timeout.ms.toFixed(0)} ms`);
    assertNoToken(timeout.err);

    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const aborted = await timed(consul.client.request('GET', '/v1/kv/slow', { signal: ac.signal, timeoutMs: 10_000 }));
    assert.match(String(aborted.err), /^ConsulError: consul GET \/v1\/kv\/slow: aborted$/);
    assert.ok(aborted.ms < 1000, `aborted after ${aborted.ms.toFixed(0)} ms`);
    await assert.rejects(
      consul.client.kvGet('slow', { signal: ac.signal }),
      /^ConsulError: consul GET \/v1\/kv\/slow: aborted$/,
      'an aborted signal sends nothing',
    );

    // Without care this would wait out the timeout and then pass as an empty 200 answer.
    const cut = await timed(consul.client.request('GET', '/v1/cut', { timeoutMs: 10_000 }));
    assert.match(String(cut.err), /^ConsulError: consul GET \/v1\/cut: cannot reach consul at http:\/\/127\.0\.0\.1:\d+: aborted$/);
    assert.ok(cut.ms < 1000, `cut noticed after ${cut.ms.toFixed(0)} ms`);
    assertNoToken(cut.err);
  } finally {
    await consul.close();
  }
});

test('transport: an IPv6 literal address works (IPv4-mapped, so the traffic stays on 127.0.0.1)', async () => {
  const consul = await scripted((_req, res) => res.writeHead(200, { 'x-consul-index': '3' }).end('[]'));
  const v6 = ConsulClient.fromOptions({ address: `http://[::ffff:127.0.0.1]:${new URL(consul.client.address).port}` }, {});
  try {
    assert.deepEqual(await v6.request('GET', '/v1/health/service/web'), { status: 200, index: 3, body: '[]' });
  } finally {
    v6.close();
    await consul.close();
  }
});

test('transport: unreachable Consul names the address and the request, never the token', async () => {
  const gone = await scripted(() => undefined);
  const { client } = gone;
  const port = new URL(client.address).port;
  await gone.close();
  const reopened = ConsulClient.fromOptions({ address: `http://127.0.0.1:${port}`, token: TOKEN }, {});
  try {
    const err = await reopened.kvPut('app/config', 'x').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.match(
      String(err),
      new RegExp(`^ConsulError: consul PUT /v1/kv/app/config: cannot reach consul at http://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`),
    );
    assertNoToken(err);
  } finally {
    reopened.close();
  }
});
