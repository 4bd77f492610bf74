/**
 * fields.ts's request and response maps: blanks at either end of a value are dropped (Envoy 1.40
 * serves such a request; RFC 9110 5.5 leaves them out of the value), repeated fields become arrays,
 * cookies join with "; ", and what stays malformed says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestMap, responseMap } from '../../../../../src/proxy/codec/http2/fields.js';

const GET = [':method', 'GET', ':scheme', 'http', ':path', '/x', ':authority', 'a.test'];

test('drops blanks at either end of a value, keeps inner ones', () => {
  const m = requestMap([...GET, 'x-a', ' v\t', 'x-b', '\t a b ', 'x-c', 'plain']);
  assert.ok(typeof m !== 'string', String(m));
  assert.deepEqual([m['x-a'], m['x-b'], m['x-c']], ['v', 'a b', 'plain']);
  const r = responseMap([':status', '200', 'grpc-message', ' done '], true);
  assert.ok(typeof r !== 'string', String(r));
  assert.equal(r['grpc-message'], 'done');
});

test('repeats become arrays, cookies one "; "-joined value; NUL, CR and LF stay malformed', () => {
  const m = requestMap([...GET, 'x-r', '1', 'x-r', '2', 'cookie', 'a=1', 'cookie', 'b=2']);
  assert.ok(typeof m !== 'string', String(m));
  assert.deepEqual(m['x-r'], ['1', '2']);
  assert.equal(m.cookie, 'a=1; b=2');
  for (const bad of ['a\0b', 'a\rb', 'a\nb']) assert.match(String(requestMap([...GET, 'x-a', bad])), /x-a holds NUL, CR or LF/);
});
