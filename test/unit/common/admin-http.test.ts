/**
 * The HTTP convention both admin servers share (src/common/admin-http.ts): replies with content
 * type, length and no-store, HEAD without a body, a reason phrase Node has no name for, 404 with
 * the paths, 405 with `allow`, 400 for a bad query, 500 logged; every error a JSON
 * `{"error": ...}` body. Then the proxy's admin server (src/proxy/admin/admin-server.ts) on it:
 * its unknown paths, methods and bad filters answer the same way, and POST /quitquitquit quits
 * after its reply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminHttpServer, BadRequestError, errorReply, jsonReply, reply, type Route } from '../../../src/common/admin-http.js';
import { startAdminServer, type AdminSource } from '../../../src/proxy/admin/admin-server.js';
import { silentLogger } from '../../../src/log.js';
import { captureLog } from '../../support/log-capture.js';

async function call(
  base: string,
  path: string,
  method = 'GET',
): Promise<{ status: number; statusText: string; type: string; cache: string; allow: string; body: string }> {
  const res = await fetch(`${base}${path}`, { method });
  const h = res.headers;
  return {
    status: res.status,
    statusText: res.statusText,
    type: h.get('content-type') ?? '',
    cache: h.get('cache-control') ?? '',
    allow: h.get('allow') ?? '',
    body: await res.text(),
  };
}

test('routes, methods and errors follow one convention', async (t) => {
  const log = captureLog();
  const routes = new Map<string, Route>([
    ['/text', { handle: () => reply('hello\n') }],
    ['/json', { handle: (url) => jsonReply({ q: url.searchParams.get('q') }) }],
    ['/maintenance', { handle: () => ({ ...reply('MAINTENANCE'), status: 599, reason: 'MAINTENANCE' }) }],
    ['/post-only', { methods: ['POST'], handle: () => reply('done\n') }],
    [
      '/bad',
      {
        handle: () => {
          throw new BadRequestError('q: not a number');
        },
      },
    ],
    [
      '/boom',
      {
        handle: async () => {
          throw new Error('broken handler');
        },
      },
    ],
    ['/gone', { handle: () => errorReply(404, 'nothing here', { why: 'test' }) }],
  ]);
  const server = new AdminHttpServer(routes, log.logger);
  const base = `http://127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
  t.after(() => server.close());

  assert.deepEqual(await call(base, '/text'), {
    status: 200,
    statusText: 'OK',
    type: 'text/plain; charset=UTF-8',
    cache: 'no-store',
    allow: '',
    body: 'hello\n',
  });
  assert.deepEqual(JSON.parse((await call(base, '/json?q=1')).body), { q: '1' });
  assert.equal((await call(base, '/json')).type, 'application/json');
  const head = await fetch(`${base}/text`, { method: 'HEAD' });
  assert.deepEqual([head.status, head.headers.get('content-length'), await head.text()], [200, '6', '']);
  const m = await call(base, '/maintenance');
  assert.deepEqual([m.status, m.statusText, m.body], [599, 'MAINTENANCE', 'MAINTENANCE']);

  const notFound = await call(base, '/nope');
  assert.deepEqual([notFound.status, notFound.type], [404, 'application/json']);
  assert.deepEqual(JSON.parse(notFound.body), {
    error: 'no such path: /nope',
    endpoints: ['/bad', '/boom', '/gone', '/json', '/maintenance', '/post-only', '/text'],
  });
  const getPost = await call(base, '/post-only');
  assert.deepEqual([getPost.status, getPost.allow, JSON.parse(getPost.body)], [405, 'POST', { error: 'method GET not allowed' }]);
  assert.equal((await call(base, '/post-only', 'POST')).body, 'done\n');
  const postGet = await call(base, '/text', 'POST');
  assert.deepEqual([postGet.status, postGet.allow], [405, 'GET, HEAD']);
  const bad = await call(base, '/bad');
  assert.deepEqual([bad.status, bad.type, JSON.parse(bad.body)], [400, 'application/json', { error: 'q: not a number' }]);
  const boom = await call(base, '/boom');
  assert.deepEqual([boom.status, JSON.parse(boom.body)], [500, { error: 'broken handler' }]);
  const line = await log.waitFor((r) => r.msg === 'admin request failed', { what: 'the 500 to be logged' });
  assert.deepEqual([line.path, line.err], ['/boom', 'broken handler']);
  assert.deepEqual(JSON.parse((await call(base, '/gone')).body), { error: 'nothing here', why: 'test' });
});

test("the proxy's admin answers errors by the same convention and quits after its reply", async (t) => {
  let quits = 0;
  const src = {
    state: () => 'LIVE',
    collectStats: (emit: (name: string, value: number) => void) => {
      emit('cluster.a.upstream_rq_total', 3);
      emit(`${'a'.repeat(40)}!`, 1);
    },
    serverInfo: () => ({ state: 'LIVE' }),
    quit: () => void quits++,
  } as unknown as AdminSource;
  const admin = await startAdminServer(src, '127.0.0.1', 0, silentLogger);
  const base = `http://127.0.0.1:${admin.port}`;
  t.after(() => admin.close());

  const ready = await call(base, '/ready');
  assert.deepEqual([ready.status, ready.type, ready.body], [200, 'text/plain; charset=UTF-8', 'LIVE\n']);
  // Envoy's admin takes POST on an endpoint that only reads, and so does ours.
  assert.equal((await call(base, '/stats?filter=upstream_rq', 'POST')).body, 'cluster.a.upstream_rq_total: 3\n');
  assert.equal((await call(base, '/stats?filter=%5Ea%2B!%24')).body, `${'a'.repeat(40)}!: 1\n`);

  const notFound = await call(base, '/nope');
  assert.equal(notFound.status, 404);
  assert.deepEqual(JSON.parse(notFound.body), {
    error: 'no such path: /nope',
    endpoints: ['/', '/clusters', '/config_dump', '/listeners', '/quitquitquit', '/ready', '/server_info', '/stats'],
  });
  const bad = await call(base, '/stats?filter=(');
  assert.equal(bad.status, 400);
  assert.match((JSON.parse(bad.body) as { error: string }).error, /^filter: .*missing closing \)/);
  // RE2, as Envoy's admin: a back-reference (fine for a JS RegExp) is refused, and a pattern that
  // backtracks for minutes in a JS RegExp against the stat named below answers at once.
  const backref = await call(base, `/stats?filter=${encodeURIComponent('(a)\\1')}`);
  assert.equal(backref.status, 400);
  const slow = await call(base, `/stats?filter=${encodeURIComponent('^(a+)+$')}`);
  assert.deepEqual([slow.status, slow.body], [200, '']);

  const get = await call(base, '/quitquitquit');
  assert.deepEqual([get.status, get.allow, JSON.parse(get.body)], [405, 'POST', { error: 'method GET not allowed' }]);
  assert.equal(quits, 0);
  const post = await call(base, '/quitquitquit', 'POST');
  assert.deepEqual([post.status, post.body], [200, 'OK\n']);
  await new Promise((r) => setImmediate(r));
  assert.equal(quits, 1);
});
