/**
 * The protocol rules of H2ServerConnection, checked with a client that writes frames by hand
 * (RawClient in peers.ts): the preface, malformed requests (a stream error; the connection keeps
 * serving), header blocks over CONTINUATION, padding, PING, the connection errors (frames inside
 * a header block, DATA on an idle stream, oversized frames, window overflow, bad HPACK), the
 * peer's SETTINGS_INITIAL_WINDOW_SIZE applied to open streams, SETTINGS_MAX_CONCURRENT_STREAMS,
 * drain() refusing streams opened after its GOAWAY, and the two floods it ends: rapid reset and
 * PINGs whose answers are never read.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CANCEL,
  COMPRESSION_ERROR,
  ENHANCE_YOUR_CALM,
  FLOW_CONTROL_ERROR,
  FLAG_END_HEADERS as END_HEADERS,
  FLAG_END_STREAM as END_STREAM,
  FLAG_PADDED as PADDED,
  FLAG_PRIORITY as PRIORITY,
  FRAME_CONTINUATION as CONTINUATION,
  FRAME_DATA as DATA,
  FRAME_GOAWAY as GOAWAY,
  FRAME_HEADERS as HEADERS,
  FRAME_PING as PING,
  FRAME_RST_STREAM as RST,
  FRAME_SETTINGS as SETTINGS,
  FRAME_SIZE_ERROR,
  FRAME_WINDOW_UPDATE as WINDOW_UPDATE,
  NO_ERROR,
  PROTOCOL_ERROR,
  REFUSED_STREAM,
  STREAM_CLOSED,
} from '../../../../../src/proxy/codec/http2/frames.js';
import { STREAM_WINDOW } from '../../../../../src/proxy/codec/http2/connection.js';
import { type EchoServer, type Frame, RawClient, echoServer, frameBytes, pattern, u32 } from './peers.js';

const GET = (path: string): string[] => [':method', 'GET', ':scheme', 'http', ':path', path, ':authority', 'raw.test'];
const POST = (path: string): string[] => [':method', 'POST', ':scheme', 'http', ':path', path, ':authority', 'raw.test'];

const isRst = (id: number) => (f: Frame) => f.type === RST && f.id === id;
const isHeaders = (id: number) => (f: Frame) => f.type === HEADERS && f.id === id;
const isEnd = (id: number) => (f: Frame) => f.id === id && (f.type === DATA || f.type === HEADERS) && (f.flags & END_STREAM) !== 0;

/** The DATA payload bytes the server sent on stream `id` so far. */
function dataOn(c: RawClient, id: number): Buffer {
  return Buffer.concat(c.frames.filter((f) => f.type === DATA && f.id === id).map((f) => f.payload));
}

describe('H2ServerConnection protocol rules (raw frame client)', () => {
  let srv: EchoServer;
  const clients: RawClient[] = [];
  const open = async (): Promise<RawClient> => {
    const c = await RawClient.connect(srv.port);
    clients.push(c);
    return c;
  };
  before(async () => {
    srv = await echoServer();
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await srv.close();
  });

  it('answers a bad preface with GOAWAY PROTOCOL_ERROR and closes', async () => {
    const c = await RawClient.connect(srv.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    clients.push(c);
    assert.equal(await c.goawayCode(), PROTOCOL_ERROR);
    assert.ok(await c.closedWithin(2000), 'still open');
  });

  it('sends its SETTINGS, acknowledges ours, and answers a GET', async () => {
    const c = await open();
    await c.next((f) => f.type === SETTINGS && f.flags === 0, 'server SETTINGS');
    await c.next((f) => f.type === SETTINGS && f.flags === 1, 'SETTINGS ACK');
    c.send(c.headers(1, GET('/bytes/10'), true));
    assert.deepEqual((await c.next(isHeaders(1), 'response')).fields, [':status', '200']);
    await c.next(isEnd(1), 'end of stream 1');
    assert.ok(dataOn(c, 1).equals(pattern(10)));
  });

  const malformed: [string, string[]][] = [
    ['an upper-case field name', [...GET('/m'), 'X-Upper', 'v']],
    ['a connection header', [...GET('/m'), 'connection', 'keep-alive']],
    ['te: gzip', [...GET('/m'), 'te', 'gzip']],
    ['no :path', [':method', 'GET', ':scheme', 'http', ':authority', 'raw.test']],
    ['a pseudo-header field after a regular one', [':method', 'GET', ':scheme', 'http', 'x-a', '1', ':path', '/m']],
    ['an unknown pseudo-header field', [...GET('/m'), ':status', '200']],
    ['a value holding a NUL', [...GET('/m'), 'x-a', 'a\0b']],
    ['a value holding a CR', [...GET('/m'), 'x-a', 'a\rb']],
  ];
  for (const [what, fields] of malformed) {
    it(`resets a request with ${what} (RST_STREAM PROTOCOL_ERROR) and keeps the connection`, async () => {
      const c = await open();
      c.send(c.headers(1, fields, true));
      assert.equal((await c.next(isRst(1), 'RST_STREAM')).payload.readUInt32BE(0), PROTOCOL_ERROR);
      c.send(c.headers(3, GET('/bytes/3'), true));
      assert.deepEqual((await c.next(isHeaders(3), 'next response')).fields, [':status', '200']);
      await c.next(isEnd(3), 'end of stream 3');
      assert.equal(
        c.frames.some((f) => f.type === GOAWAY),
        false,
      );
    });
  }

  it('takes a header block split over HEADERS and two CONTINUATION frames', async () => {
    const c = await open();
    const block = c.encoder.encode([...GET('/bytes/5'), 'x-long', 'y'.repeat(300)]);
    const a = block.subarray(0, 10);
    const b = block.subarray(10, 100);
    const rest = block.subarray(100);
    c.send(frameBytes(HEADERS, END_STREAM, 1, a), frameBytes(CONTINUATION, 0, 1, b), frameBytes(CONTINUATION, END_HEADERS, 1, rest));
    assert.deepEqual((await c.next(isHeaders(1), 'response')).fields, [':status', '200']);
    await c.next(isEnd(1), 'end');
    assert.ok(dataOn(c, 1).equals(pattern(5)));
  });

  it('strips padding from HEADERS (with PRIORITY) and DATA, and credits the padding back', async () => {
    const c = await open();
    const block = c.encoder.encode(POST('/padded'));
    const headersPayload = Buffer.concat([Buffer.from([7]), u32(0), Buffer.from([16]), block, Buffer.alloc(7)]);
    c.send(frameBytes(HEADERS, END_HEADERS | PADDED | PRIORITY, 1, headersPayload));
    const body = Buffer.from('padded body');
    c.send(frameBytes(DATA, PADDED | END_STREAM, 1, Buffer.concat([Buffer.from([200]), body, Buffer.alloc(200)])));
    await c.next(isEnd(1), 'end');
    assert.equal(dataOn(c, 1).toString(), 'padded body');
    const end = c.frames.find(isEnd(1))!;
    assert.deepEqual(end.fields, ['x-end', '1']);
  });

  it('answers PING with a PING ACK carrying the same 8 bytes', async () => {
    const c = await open();
    const opaque = Buffer.from('8bytes!!');
    c.send(frameBytes(PING, 0, 0, opaque));
    const ack = await c.next((f) => f.type === PING, 'PING ACK');
    assert.equal(ack.flags, 1);
    assert.ok(ack.payload.equals(opaque));
  });

  it('tells the owner of a stream reset mid-body (RST_STREAM CANCEL) and serves the next stream', async () => {
    const c = await open();
    c.send(c.headers(1, POST('/midbody'), false), frameBytes(DATA, 0, 1, Buffer.from('part')));
    await c.next(isHeaders(1), 'response head');
    c.send(frameBytes(RST, 0, 1, u32(CANCEL)));
    const t0 = performance.now();
    const seen = srv.requests.find((r) => r.path === '/midbody')!;
    while (seen.resets.length === 0 && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(seen.resets, [CANCEL]);
    assert.equal(seen.ended, false);
    c.send(c.headers(3, GET('/bytes/1'), true));
    await c.next(isEnd(3), 'end of stream 3');
  });

  const connectionErrors: [string, number, (c: RawClient) => Buffer[]][] = [
    [
      'a PING inside a header block',
      PROTOCOL_ERROR,
      (c) => [frameBytes(HEADERS, END_STREAM, 1, c.encoder.encode(GET('/x'))), frameBytes(PING, 0, 0, Buffer.alloc(8))],
    ],
    [
      'a CONTINUATION for another stream',
      PROTOCOL_ERROR,
      (c) => [frameBytes(HEADERS, END_STREAM, 1, c.encoder.encode(GET('/x'))), frameBytes(CONTINUATION, END_HEADERS, 3, Buffer.alloc(0))],
    ],
    ['DATA on an idle stream', PROTOCOL_ERROR, () => [frameBytes(DATA, 0, 5, Buffer.from('x'))]],
    ['a frame larger than 16384 bytes', FRAME_SIZE_ERROR, () => [frameBytes(DATA, 0, 1, Buffer.alloc(16385))]],
    ['a connection WINDOW_UPDATE past 2^31-1', FLOW_CONTROL_ERROR, () => [frameBytes(WINDOW_UPDATE, 0, 0, u32(2 ** 31 - 1))]],
    ['a header block HPACK cannot decode', COMPRESSION_ERROR, () => [frameBytes(HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from([0x80]))]],
    ['an even stream id', PROTOCOL_ERROR, (c) => [c.headers(2, GET('/x'), true)]],
  ];
  for (const [what, code, frames] of connectionErrors) {
    it(`ends the connection on ${what} (GOAWAY ${code})`, async () => {
      const c = await open();
      await c.next((f) => f.type === SETTINGS && f.flags === 0, 'server SETTINGS');
      c.send(...frames(c));
      assert.equal(await c.goawayCode(), code);
      assert.ok(await c.closedWithin(2000), 'still open after GOAWAY');
    });
  }

  it('ends a header block that never ends (CONTINUATION flood) before it holds more than 1 MiB', async () => {
    const c = await open();
    const start = c.encoder.encode(GET('/flood'));
    c.send(frameBytes(HEADERS, END_STREAM, 1, start));
    // 70 full CONTINUATION frames (1.1 MiB) and never END_HEADERS.
    const filler = frameBytes(CONTINUATION, 0, 1, Buffer.alloc(16384, 0x40));
    for (let i = 0; i < 70 && !c.closed; i++) c.send(filler);
    const g = await c.next((f) => f.type === GOAWAY, 'GOAWAY');
    assert.equal(g.payload.readUInt32BE(4), ENHANCE_YOUR_CALM);
  });

  it('ends a header block of endless empty CONTINUATION frames too', async () => {
    const c = await open();
    c.send(frameBytes(HEADERS, END_STREAM, 1, c.encoder.encode(GET('/flood0'))));
    // Each empty frame is 9 bytes on the wire and would be one more array entry held.
    const empties = Buffer.concat(Array.from({ length: 10_000 }, () => frameBytes(CONTINUATION, 0, 1)));
    for (let i = 0; i < 15 && !c.closed; i++) c.send(empties);
    const g = await c.next((f) => f.type === GOAWAY, 'GOAWAY');
    assert.equal(g.payload.readUInt32BE(4), ENHANCE_YOUR_CALM);
  });

  it('resets a stream whose WINDOW_UPDATE takes its window past 2^31-1 (RST_STREAM FLOW_CONTROL_ERROR)', async () => {
    const c = await open();
    c.send(c.headers(1, POST('/wu'), false));
    await c.next(isHeaders(1), 'response head');
    c.send(frameBytes(WINDOW_UPDATE, 0, 1, u32(2 ** 31 - 1)));
    assert.equal((await c.next(isRst(1), 'RST_STREAM')).payload.readUInt32BE(0), FLOW_CONTROL_ERROR);
    const seen = srv.requests.find((r) => r.path === '/wu')!;
    assert.deepEqual(seen.resets, [FLOW_CONTROL_ERROR]);
    assert.equal(
      c.frames.some((f) => f.type === GOAWAY),
      false,
    );
  });

  it('resets a stream that gets DATA after its END_STREAM (RST_STREAM STREAM_CLOSED)', async () => {
    const c = await open();
    let release = (): void => undefined;
    srv.hold = new Promise((r) => (release = r));
    try {
      c.send(c.headers(1, POST('/hold/closed'), true));
      await c.next(isHeaders(1), 'response head');
      c.send(frameBytes(DATA, 0, 1, Buffer.from('late')));
      assert.equal((await c.next(isRst(1), 'RST_STREAM')).payload.readUInt32BE(0), STREAM_CLOSED);
      assert.deepEqual(srv.requests.find((r) => r.path === '/hold/closed')?.resets, [STREAM_CLOSED]);
    } finally {
      release();
      srv.hold = undefined;
    }
  });

  it('resets a stream sent more DATA than its window while its owner is paused (RST_STREAM FLOW_CONTROL_ERROR)', async () => {
    const c = await open();
    c.send(c.headers(1, POST('/paused/overflow'), false));
    await c.next(isHeaders(1), 'response head');
    const full = frameBytes(DATA, 0, 1, Buffer.alloc(16384));
    // One stream window (1 MiB) is taken and held; one frame more is past it.
    for (let i = 0; i < STREAM_WINDOW / 16384; i++) c.send(full);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(
      c.frames.some((f) => f.type === RST && f.id === 1),
      false,
      'reset within the window',
    );
    c.send(full);
    assert.equal((await c.next(isRst(1), 'RST_STREAM')).payload.readUInt32BE(0), FLOW_CONTROL_ERROR);
    assert.equal(
      c.frames.some((f) => f.type === GOAWAY),
      false,
    );
  });

  it('resets a stream whose second header block does not end it (RST_STREAM PROTOCOL_ERROR); the owner hears it', async () => {
    const c = await open();
    c.send(c.headers(1, POST('/trailers-open'), false), frameBytes(DATA, 0, 1, Buffer.from('b')), c.headers(1, ['x-t', '1'], false));
    assert.equal((await c.next(isRst(1), 'RST_STREAM')).payload.readUInt32BE(0), PROTOCOL_ERROR);
    assert.deepEqual(srv.requests.find((r) => r.path === '/trailers-open')?.resets, [PROTOCOL_ERROR]);
  });

  it('applies a new SETTINGS_INITIAL_WINDOW_SIZE to open streams: a blocked response continues', async () => {
    const c = await open();
    // Our stream window is 100 bytes; the response is 1000.
    c.send(frameBytes(SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0, 0, 100])));
    c.send(c.headers(1, GET('/bytes/1000'), true));
    await c.next(isHeaders(1), 'response head');
    const t0 = performance.now();
    while (dataOn(c, 1).length < 100 && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(dataOn(c, 1).length, 100, 'sent past the stream window');
    c.send(frameBytes(SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0, 0x10, 0])));
    await c.next(isEnd(1), 'end of the response');
    assert.ok(dataOn(c, 1).equals(pattern(1000)));
  });

  it('refuses streams past SETTINGS_MAX_CONCURRENT_STREAMS with RST_STREAM REFUSED_STREAM', async () => {
    const limited = await echoServer({ maxConcurrentStreams: 2 });
    const c = await RawClient.connect(limited.port);
    let release = (): void => undefined;
    limited.hold = new Promise((r) => (release = r));
    try {
      const settings = await c.next((f) => f.type === SETTINGS && f.flags === 0, 'server SETTINGS');
      assert.ok(settings.payload.includes(Buffer.from([0, 3, 0, 0, 0, 2])), 'SETTINGS_MAX_CONCURRENT_STREAMS 2 announced');
      for (const id of [1, 3, 5, 7, 9]) c.send(c.headers(id, POST(`/hold/${id}`), false));
      for (const id of [5, 7, 9]) assert.equal((await c.next(isRst(id), `RST_STREAM on ${id}`)).payload.readUInt32BE(0), REFUSED_STREAM);
      assert.deepEqual(
        limited.requests.map((r) => r.path),
        ['/hold/1', '/hold/3'],
      );
      // The two accepted ones complete; then a new stream is accepted again.
      release();
      for (const id of [1, 3]) c.send(frameBytes(DATA, END_STREAM, id, Buffer.alloc(0)));
      for (const id of [1, 3]) await c.next(isEnd(id), `end of ${id}`);
      c.send(c.headers(11, GET('/bytes/2'), true));
      await c.next(isEnd(11), 'end of 11');
    } finally {
      c.destroy();
      await limited.close();
    }
  });

  it('ends a connection whose client resets half or more of 500 streams right after opening them (rapid reset): GOAWAY ENHANCE_YOUR_CALM', async () => {
    const c = await open();
    const frames: Buffer[] = [];
    for (let i = 0; i < 500; i++) {
      const id = 1 + 2 * i;
      frames.push(c.headers(id, POST('/rapid'), false), frameBytes(RST, 0, id, u32(CANCEL)));
    }
    c.send(...frames);
    assert.equal(await c.goawayCode(), ENHANCE_YOUR_CALM);
    assert.ok(await c.closedWithin(3000), 'the connection closed');
  });

  it('keeps a connection that resets fewer than half of its streams (400 answered, 200 reset of 600)', async () => {
    const c = await open();
    const frames: Buffer[] = [];
    for (let i = 0; i < 600; i++) {
      const id = 1 + 2 * i;
      if (i % 3 === 2) frames.push(c.headers(id, POST('/reset'), false), frameBytes(RST, 0, id, u32(CANCEL)));
      else frames.push(c.headers(id, GET(`/ok${i}`), true));
    }
    c.send(...frames);
    await c.next(isEnd(1 + 2 * 598), 'the answer to the last GET');
    c.send(c.headers(1201, GET('/after'), true));
    await c.next(isEnd(1201), 'an answer on the same connection afterwards');
    assert.equal(c.frames.filter((f) => f.type === GOAWAY).length, 0, 'no GOAWAY');
  });

  it('ends a connection that floods PINGs without reading the answers', async () => {
    const c = await open();
    await c.next((f) => f.type === SETTINGS, "the server's SETTINGS");
    c.socket.pause();
    const conn = srv.conns[srv.conns.length - 1]!;
    const ping = frameBytes(PING, 0, 0, Buffer.alloc(8, 7));
    // 1.2 million PINGs (20 MiB): their answers overflow the socket buffers of both sides.
    const batch = Buffer.concat(Array.from({ length: 10_000 }, () => ping));
    for (let i = 0; i < 120 && !conn.destroyed; i++) {
      if (!c.socket.write(batch)) await new Promise((r) => c.socket.once('drain', r));
    }
    const deadline = performance.now() + 10_000;
    while (!conn.destroyed && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(conn.destroyed, 'the server ended the connection');
    c.destroy();
  });

  it('drain(): a stream opened after the GOAWAY is not processed; the one in flight completes; then the socket closes', async () => {
    const own = await echoServer();
    const c = await RawClient.connect(own.port);
    try {
      c.send(c.headers(1, POST('/inflight'), false));
      await c.next(isHeaders(1), 'response head');
      own.conns[0]!.drain();
      const g = await c.next((f) => f.type === GOAWAY, 'GOAWAY');
      assert.equal(g.payload.readUInt32BE(4), NO_ERROR);
      assert.equal(g.payload.readUInt32BE(0), 1, 'last stream id');
      c.send(c.headers(3, GET('/bytes/1'), true));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(
        own.requests.some((r) => r.path === '/bytes/1'),
        false,
        'a stream above the last id was processed',
      );
      assert.equal(c.closed, false, 'closed with a stream in flight');
      c.send(frameBytes(DATA, END_STREAM, 1, Buffer.from('last')));
      await c.next(isEnd(1), 'end of the stream in flight');
      assert.equal(dataOn(c, 1).toString(), 'last');
      assert.ok(await c.closedWithin(2000), 'not closed after the last stream');
    } finally {
      c.destroy();
      await own.close();
    }
  });
});
