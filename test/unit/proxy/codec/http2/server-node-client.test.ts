/**
 * The server side of the own HTTP/2 codec (H2ServerConnection) against node:http2's client
 * (nghttp2, a real peer) on 127.0.0.1: concurrent streams, bodies larger than every flow-control
 * window both ways (byte for byte), trailers both ways, a client cancelling mid-body, the idle
 * timeout, and drain.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { CANCEL, REFUSED_STREAM } from '../../../../../src/proxy/codec/http2/frames.js';
import { STREAM_WINDOW } from '../../../../../src/proxy/codec/http2/connection.js';
import { type EchoServer, type SeenRequest, echoServer, pattern } from './peers.js';

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
}

/** One request on `client`; resolves with the whole response. */
function call(client: http2.ClientHttp2Session, path: string, body?: Buffer, trailers?: Record<string, string>): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const req = client.request({ ':method': 'POST', ':path': path }, { endStream: body === undefined && !trailers, waitForTrailers: trailers !== undefined });
    if (trailers) req.on('wantTrailers', () => req.sendTrailers(trailers));
    const parts: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    let tr: http2.IncomingHttpHeaders | undefined;
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (tr = t));
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('error', reject);
    req.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(parts), trailers: tr }));
    if (body !== undefined) req.end(body);
    else if (trailers) req.end();
  });
}

function connect(port: number): http2.ClientHttp2Session {
  // 15 MiB written at once is past node's default session memory cap (10 MB: ENHANCE_YOUR_CALM).
  const c = http2.connect(`http://127.0.0.1:${port}`, { maxSessionMemory: 64, settings: { maxHeaderListSize: 1 << 20 } });
  c.on('error', () => undefined);
  return c;
}

describe('H2ServerConnection against a node:http2 client', () => {
  let srv: EchoServer;
  before(async () => {
    srv = await echoServer();
  });
  after(() => srv.close());

  it('answers 100 concurrent streams on one connection, each with its own body', async () => {
    const client = connect(srv.port);
    try {
      const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => call(client, `/echo/${i}`, Buffer.from(`body ${i}`))));
      answers.forEach((a, i) => {
        assert.equal(a.status, 200);
        assert.equal(a.headers['x-path'], `/echo/${i}`);
        assert.equal(a.body.toString(), `body ${i}`);
        assert.equal(a.trailers?.['x-end'], '1');
      });
      assert.equal(srv.conns.length >= 1, true);
    } finally {
      client.close();
    }
  });

  it('carries 5 MiB each way on three streams at once (past the stream, connection and default windows), byte for byte', async () => {
    const client = connect(srv.port);
    try {
      const body = pattern(5 * 1024 * 1024);
      // Three streams: 15 MiB in each direction is past our 1 MiB stream windows, node's 64 KiB
      // default windows and (with the small echo) close to our 16 MiB connection window.
      const answers = await Promise.all([0, 1, 2].map((i) => call(client, `/big/${i}`, body)));
      for (const a of answers) {
        assert.equal(a.status, 200);
        assert.equal(a.body.length, body.length);
        assert.ok(a.body.equals(body), 'echoed body differs');
      }
      // And a second round on the same connection: the windows were credited back.
      const again = await call(client, '/big/again', body);
      assert.ok(again.body.equals(body));
    } finally {
      client.close();
    }
  });

  it('sends a response of 5 MiB to a request without a body (our send window waits for the client)', async () => {
    const client = connect(srv.port);
    try {
      const a = await call(client, `/bytes/${5 * 1024 * 1024}`);
      assert.ok(a.body.equals(pattern(5 * 1024 * 1024)));
    } finally {
      client.close();
    }
  });

  it('stops a client after one stream window while the owner is paused, and takes the rest once it resumes', async () => {
    const client = connect(srv.port);
    try {
      const body = pattern(5 * 1024 * 1024);
      const answer = call(client, '/paused/window', body);
      let seen: SeenRequest | undefined;
      while (seen === undefined) {
        seen = srv.requests.find((r) => r.path === '/paused/window');
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 300));
      const held = (seen.stream.inbox ?? []).reduce((n, b) => n + b.length, 0);
      assert.equal(seen.bytes, 0, 'DATA reached a paused owner');
      assert.ok(held > 0 && held <= STREAM_WINDOW, `held ${held} bytes, more than one stream window`);
      assert.deepEqual(seen.resets, []);
      seen.stream.resume();
      const a = await answer;
      assert.ok(a.body.equals(body));
    } finally {
      client.close();
    }
  });

  it('sends a response head larger than a frame as HEADERS and CONTINUATION', async () => {
    const client = connect(srv.port);
    try {
      const path = `/long/${'p'.repeat(40_000)}`;
      const a = await call(client, path, Buffer.from('x'));
      assert.equal(a.headers['x-path'], path);
      assert.equal(a.body.toString(), 'x');
    } finally {
      client.close();
    }
  });

  it('hands request trailers to the stream owner and sends response trailers', async () => {
    const client = connect(srv.port);
    try {
      const a = await call(client, '/trailers', undefined, { 'x-checksum': 'abc' });
      assert.equal(a.trailers?.['x-checksum'], 'abc');
      const seen = srv.requests.find((r) => r.path === '/trailers');
      assert.deepEqual(seen?.trailers, ['x-checksum', 'abc']);
      assert.equal(seen?.ended, true);
    } finally {
      client.close();
    }
  });

  it('tells the owner of a stream the client cancelled before the response ended (onReset CANCEL)', async () => {
    const client = connect(srv.port);
    // Held: node's close() ends the request body before its RST_STREAM, so an echo answering at
    // once would have finished the stream and there would be nothing left to cancel.
    let release = (): void => undefined;
    srv.hold = new Promise((r) => (release = r));
    try {
      const req = client.request({ ':method': 'POST', ':path': '/hold/cancel-me' });
      req.on('error', () => undefined);
      req.write(pattern(1000));
      await new Promise<void>((resolve) => req.once('response', () => resolve()));
      const seen = srv.requests.find((r) => r.path === '/hold/cancel-me');
      assert.ok(seen);
      req.close(http2.constants.NGHTTP2_CANCEL);
      const t0 = performance.now();
      while (seen.resets.length === 0 && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(seen.resets, [CANCEL]);
      assert.equal(seen.stream.closed, true);
      // The connection still serves.
      assert.equal((await call(client, '/after-cancel', Buffer.from('x'))).body.toString(), 'x');
    } finally {
      release();
      srv.hold = undefined;
      client.close();
    }
  });
});

describe('H2ServerConnection SETTINGS_MAX_CONCURRENT_STREAMS against node:http2', () => {
  it('refuses the streams past 2 with REFUSED_STREAM; the two accepted complete', async () => {
    const srv = await echoServer({ maxConcurrentStreams: 2 });
    let release = (): void => undefined;
    srv.hold = new Promise((r) => (release = r));
    const client = connect(srv.port);
    try {
      // Submitted at once, before our SETTINGS reach nghttp2 (which assumes 100 until then).
      const outcomes = Array.from(
        { length: 5 },
        (_, i) =>
          new Promise<number | string>((resolve) => {
            const req = client.request({ ':method': 'POST', ':path': `/hold/mcs/${i}` });
            req.on('error', () => undefined);
            req.on('close', () => resolve(req.rstCode === http2.constants.NGHTTP2_NO_ERROR ? 'ok' : req.rstCode));
            req.resume();
            req.end('x');
          }),
      );
      while (srv.requests.length < 2) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 100));
      release();
      assert.deepEqual(await Promise.all(outcomes), ['ok', 'ok', REFUSED_STREAM, REFUSED_STREAM, REFUSED_STREAM]);
      assert.deepEqual(
        srv.requests.map((r) => r.path),
        ['/hold/mcs/0', '/hold/mcs/1'],
      );
    } finally {
      client.destroy();
      await srv.close();
    }
  });
});

describe('H2ServerConnection idle timeout and drain', () => {
  it('sends GOAWAY NO_ERROR and closes after idleTimeoutMs without a stream, never while one is open', async () => {
    const srv = await echoServer({ idleTimeoutMs: 200 });
    let release = (): void => undefined;
    srv.hold = new Promise((r) => (release = r));
    const client = connect(srv.port);
    try {
      let goawayAt = 0;
      let goawayCode = -1;
      client.on('goaway', (code) => {
        goawayAt = performance.now();
        goawayCode = code;
      });
      const closed = new Promise<void>((r) => client.once('close', () => r()));
      const answer = call(client, '/hold/1', Buffer.from('held'));
      // The stream is open for three idle timeouts: no GOAWAY.
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(goawayAt, 0, 'GOAWAY while a stream was open');
      const ended = performance.now();
      release();
      assert.equal((await answer).body.toString(), 'held');
      await closed;
      assert.equal(goawayCode, http2.constants.NGHTTP2_NO_ERROR);
      assert.ok(goawayAt - ended >= 150, `GOAWAY ${Math.round(goawayAt - ended)} ms after the last stream, before the idle timeout`);
    } finally {
      client.destroy();
      await srv.close();
    }
  });

  it('drain(): GOAWAY at once, the stream in flight completes, the socket closes after it', async () => {
    const srv = await echoServer();
    let release = (): void => undefined;
    srv.hold = new Promise((r) => (release = r));
    const client = connect(srv.port);
    try {
      let goaway = false;
      client.on('goaway', () => (goaway = true));
      const closed = new Promise<void>((r) => client.once('close', () => r()));
      const answer = call(client, '/hold/drain', Buffer.from('in flight'));
      while (srv.requests.find((r) => r.path === '/hold/drain') === undefined) await new Promise((r) => setTimeout(r, 5));
      srv.conns[0]!.drain();
      const t0 = performance.now();
      while (!goaway && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 5));
      assert.ok(goaway, 'no GOAWAY after drain()');
      let isClosed = false;
      void closed.then(() => (isClosed = true));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(isClosed, false, 'closed with a stream in flight');
      release();
      const a = await answer;
      assert.equal(a.body.toString(), 'in flight');
      assert.equal(a.trailers?.['x-end'], '1');
      await closed;
    } finally {
      client.destroy();
      await srv.close();
    }
  });
});
