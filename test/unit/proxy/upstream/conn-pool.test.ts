/**
 * The response headers the router forwards (src/proxy/upstream/conn-pool.ts): an upstream's
 * header object goes on as it is when it holds nothing to strip (the gRPC path: no copy per
 * response), and is copied without hop-by-hop and pseudo headers otherwise.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forwardableResponseHeaders, type HeaderMap } from '../../../../src/proxy/upstream/conn-pool.js';

describe('forwardableResponseHeaders', () => {
  it('hands on an HTTP/2 upstream response to an HTTP/2 downstream as it is (that side overwrites :status)', () => {
    const h: HeaderMap = { ':status': '200', 'content-type': 'application/grpc', 'grpc-accept-encoding': 'identity' };
    assert.equal(forwardableResponseHeaders(h, true), h);
  });

  it('hands on trailers with nothing to strip as they are', () => {
    const t: HeaderMap = { 'grpc-status': '0', 'grpc-message': '' };
    assert.equal(forwardableResponseHeaders(t, false), t);
  });

  it('copies without :status for an HTTP/1 downstream', () => {
    const h: HeaderMap = { ':status': '200', 'content-type': 'text/plain' };
    const out = forwardableResponseHeaders(h, false);
    assert.notEqual(out, h);
    assert.deepEqual(out, { 'content-type': 'text/plain' });
  });

  it('copies without hop-by-hop headers, leaving the upstream object untouched', () => {
    const h: HeaderMap = { connection: 'keep-alive', 'keep-alive': 'timeout=5', 'content-length': '2', te: 'trailers' };
    const out = forwardableResponseHeaders(h, true);
    assert.deepEqual(out, { 'content-length': '2' });
    assert.equal(h.connection, 'keep-alive');
  });
});
