/**
 * The client side of the own HTTP/2 codec (H2ClientConnection over net.connect) against a
 * node:http2 server on 127.0.0.1: bodies both ways past the flow-control windows, trailers, 1xx
 * heads, the server's RST_STREAM and GOAWAY, its SETTINGS_MAX_CONCURRENT_STREAMS, a connect
 * failure, and backpressure when the server stops reading.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { H2ClientConnection } from '../../../../../src/proxy/codec/http2/client.js';
import { CONNECTION_LOST, type H2Stream, type StreamHandler } from '../../../../../src/proxy/codec/http2/connection.js';
import { REFUSED_STREAM } from '../../../../../src/proxy/codec/http2/frames.js';
import { freePort } from '../../../../support/ports.js';
import { pattern } from './peers.js';

/** What one stream heard. */
class Heard implements StreamHandler {
  readonly heads: string[][] = [];
  /** Everything heard, in order: 'h' a header block, 'd' DATA, 'e' the end, 'r' a reset. */
  readonly log: string[] = [];
  readonly parts: Buffer[] = [];
  ended = false;
  reset: number | undefined;
  writable = 0;
  private readonly settled: Promise<void>;
  private settle = (): void => undefined;
  constructor() {
    this.settled = new Promise((r) => (this.settle = r));
  }
  onHeaders(fields: string[]): void {
    this.heads.push(fields);
    this.log.push('h');
  }
  onData(chunk: Buffer): void {
    this.parts.push(Buffer.from(chunk));
    if (this.log.at(-1) !== 'd') this.log.push('d');
  }
  onEnd(): void {
    this.ended = true;
    this.log.push('e');
    this.settle();
  }
  onReset(code: number): void {
    this.reset = code;
    this.log.push('r');
    this.settle();
  }
  onWritable(): void {
    this.writable++;
  }
  get body(): Buffer {
    return Buffer.concat(this.parts);
  }
  /** Resolves at onEnd or onReset (fails after 5 s). */
  done(): Promise<void> {
    return Promise.race([this.settled, new Promise<void>((_, rej) => setTimeout(() => rej(new Error('stream neither ended nor reset')), 5000).unref())]);
  }
}

const req = (path: string, method = 'POST'): string[] => [':method', method, ':scheme', 'http', ':path', path, ':authority', 'node.test'];

interface Events {
  connected: boolean;
  goaway: number;
  errors: Error[];
  closed: Promise<void>;
}

function dial(port: number): { conn: H2ClientConnection; ev: Events } {
  let closed = (): void => undefined;
  const ev: Events = { connected: false, goaway: 0, errors: [], closed: new Promise<void>((r) => (closed = r)) };
  const socket = net.connect(port, '127.0.0.1');
  const conn = new H2ClientConnection(socket, 'connect', {
    onConnect: () => (ev.connected = true),
    onError: (e) => ev.errors.push(e),
    onGoaway: () => ev.goaway++,
    onClose: () => closed(),
  });
  return { conn, ev };
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('H2ClientConnection against a node:http2 server', () => {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 7 } });
  const sessions: http2.ServerHttp2Session[] = [];
  const streams = new Map<string, http2.ServerHttp2Stream>();
  let release = (): void => undefined;
  let hold: Promise<void> = Promise.resolve();
  let port = 0;
  server.on('session', (s) => sessions.push(s));
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    streams.set(path, stream);
    stream.on('error', () => undefined);
    if (path === '/early') {
      stream.additionalHeaders({ ':status': 103, link: '</a.css>; rel=preload' });
      stream.respond({ ':status': 200 });
      stream.end('after 103');
      return;
    }
    if (path === '/refuse') {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (path.startsWith('/paused')) {
      // Reads nothing until the test resumes it.
      stream.pause();
      let n = 0;
      stream.on('data', (c: Buffer) => (n += c.length));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(String(n));
      });
      return;
    }
    // Echo: the body back as it arrives, then trailers saying what arrived.
    stream.respond({ ':status': 200, 'x-path': path }, { waitForTrailers: true });
    let reqTrailers: http2.IncomingHttpHeaders = {};
    stream.on('trailers', (t) => (reqTrailers = t));
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-req-trailer': String(reqTrailers['x-sum'] ?? 'none') }));
    stream.on('data', (c: Buffer) => {
      if (!stream.write(c)) stream.pause();
    });
    stream.on('drain', () => stream.resume());
    stream.on('end', () => {
      if (path.startsWith('/hold')) void hold.then(() => stream.end());
      else stream.end();
    });
  });
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('sends 5 MiB and receives the 5 MiB echo on two streams at once, byte for byte, with trailers both ways', async () => {
    const { conn, ev } = dial(port);
    try {
      const body = pattern(5 * 1024 * 1024);
      const heard = [new Heard(), new Heard()];
      const streams2 = heard.map((h, i) => conn.request(req(`/echo/${i}`), false, h));
      // Write in 64 KiB pieces, waiting for onWritable whenever write() says to.
      await Promise.all(
        streams2.map(async (s, i) => {
          for (let off = 0; off < body.length; off += 65536) {
            if (!s.write(body.subarray(off, off + 65536)))
              await until(() => heard[i]!.writable > 0 || s.closed, 'onWritable', 10_000).then(() => (heard[i]!.writable = 0));
          }
          s.end(['x-sum', `sum-${i}`]);
        }),
      );
      await Promise.all(heard.map((h) => h.done()));
      heard.forEach((h, i) => {
        assert.equal(h.reset, undefined);
        assert.equal(h.body.length, body.length);
        assert.ok(h.body.equals(body), 'echo differs');
        assert.deepEqual(h.heads[0]?.slice(0, 2), [':status', '200']);
        assert.deepEqual(h.heads[1], ['x-req-trailer', `sum-${i}`]);
      });
      assert.equal(ev.connected, true);
      assert.equal(conn.remoteMaxConcurrentStreams, 7, "the server's SETTINGS_MAX_CONCURRENT_STREAMS");
    } finally {
      conn.destroy();
    }
  });

  it('hands DATA held for a paused owner over before the trailers that followed it', async () => {
    const { conn } = dial(port);
    try {
      const h = new Heard();
      const s = conn.request(req('/echo/paused-owner'), false, h);
      s.pause();
      s.write(pattern(100_000));
      s.end(['x-sum', 'p']);
      // A body sent while paused: the response's DATA and trailers all arrive and wait.
      await new Promise((r) => setTimeout(r, 200));
      s.resume();
      await h.done();
      assert.deepEqual(h.log, ['h', 'd', 'h', 'e']);
    } finally {
      conn.destroy();
    }
  });

  it('hands a 103 head and then the 200 head to the owner, in order', async () => {
    const { conn } = dial(port);
    try {
      const h = new Heard();
      conn.request(req('/early', 'GET'), true, h);
      await h.done();
      assert.equal(h.heads.length, 2);
      assert.deepEqual(h.heads[0]!.slice(0, 2), [':status', '103']);
      assert.deepEqual(h.heads[1]!.slice(0, 2), [':status', '200']);
      assert.equal(h.body.toString(), 'after 103');
    } finally {
      conn.destroy();
    }
  });

  it("reports the server's RST_STREAM REFUSED_STREAM as onReset(REFUSED_STREAM); the connection keeps serving", async () => {
    const { conn } = dial(port);
    try {
      const h = new Heard();
      conn.request(req('/refuse', 'GET'), true, h);
      await h.done();
      assert.equal(h.reset, REFUSED_STREAM);
      const ok = new Heard();
      conn.request(req('/echo/after'), true, ok);
      await ok.done();
      assert.equal(ok.ended, true);
    } finally {
      conn.destroy();
    }
  });

  it('on GOAWAY refuses the streams above its last id and lets the ones below complete', async () => {
    hold = new Promise((r) => (release = r));
    const { conn, ev } = dial(port);
    try {
      const heard = [new Heard(), new Heard(), new Heard()];
      for (const [i, h] of heard.entries()) conn.request(req(`/hold/goaway/${i}`), true, h);
      await until(() => streams.has('/hold/goaway/2'), 'the three streams at the server');
      const session = sessions.at(-1)!;
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, 3);
      await heard[2]!.done();
      assert.equal(heard[2]!.reset, REFUSED_STREAM);
      await until(() => ev.goaway > 0, 'onGoaway');
      assert.equal(conn.usable, false);
      release();
      await Promise.all([heard[0]!.done(), heard[1]!.done()]);
      assert.equal(heard[0]!.ended, true);
      assert.equal(heard[1]!.ended, true);
      // The last stream done, the connection closes.
      await ev.closed;
    } finally {
      release();
      hold = Promise.resolve();
      conn.destroy();
    }
  });

  it('when the server stops reading, write() returns false, and onWritable follows once it reads again', async () => {
    const { conn } = dial(port);
    try {
      const h = new Heard();
      const s: H2Stream = conn.request(req('/paused/1'), false, h);
      let sent = 0;
      const chunk = pattern(16384);
      while (s.write(chunk)) {
        sent += chunk.length;
        assert.ok(sent < 64 * 1024 * 1024, 'write() never said to wait');
      }
      sent += chunk.length;
      await until(() => streams.has('/paused/1'), 'the stream at the server');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(h.writable, 0, 'onWritable while the server reads nothing');
      streams.get('/paused/1')!.resume();
      await until(() => h.writable > 0, 'onWritable');
      s.end();
      await h.done();
      assert.equal(h.body.toString(), String(sent));
    } finally {
      conn.destroy();
    }
  });
});

describe('H2ClientConnection connect failure', () => {
  it('resets its streams with CONNECTION_LOST and is not connected when nothing listens', async () => {
    const { conn, ev } = dial(await freePort());
    const h = new Heard();
    conn.request(req('/x', 'GET'), true, h);
    await h.done();
    assert.equal(h.reset, CONNECTION_LOST);
    assert.equal(conn.connected, false);
    assert.equal(ev.connected, false);
    assert.ok(ev.errors.length > 0);
    await ev.closed;
  });
});

describe("H2ClientConnection and the server's stream limit", () => {
  it('assumes 100 concurrent streams until the SETTINGS arrive, and no limit when they do not name one', async () => {
    let serverSocket: net.Socket | undefined;
    const server = net.createServer((s) => {
      serverSocket = s;
      s.on('data', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { conn, ev } = dial((server.address() as AddressInfo).port);
    try {
      await until(() => ev.connected && serverSocket !== undefined, 'the connection');
      assert.equal(conn.remoteMaxConcurrentStreams, 100, 'before any SETTINGS');
      // An empty SETTINGS frame: no SETTINGS_MAX_CONCURRENT_STREAMS, so no limit (RFC 9113 6.5.2).
      serverSocket!.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
      await until(() => conn.remoteSettingsReceived, "the server's SETTINGS");
      assert.equal(conn.remoteMaxConcurrentStreams, 2 ** 31 - 1);
    } finally {
      conn.destroy();
      serverSocket?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
