/**
 * Peers for the HTTP/2 codec tests: an echo server built on H2ServerConnection (what the tests
 * of the server side talk to), and a raw frame client that writes frames by hand and records
 * every frame the server sends (for the protocol-rule tests). Both on 127.0.0.1, port 0.
 */
import net, { type AddressInfo } from 'node:net';
import { FRAME_HEADERS, FrameReader } from '../../../../../src/proxy/codec/http2/frames.js';
import { CLIENT_PREFACE, PROTOCOL_ERROR } from '../../../../../src/proxy/codec/http2/frames.js';
import { H2ServerConnection } from '../../../../../src/proxy/codec/http2/server.js';
import type { H2Stream, StreamHandler } from '../../../../../src/proxy/codec/http2/connection.js';
import { requestMap } from '../../../../../src/proxy/codec/http2/fields.js';
import { HpackDecoder, HpackEncoder } from '../../../../../src/proxy/codec/http2/hpack.js';

/** What the echo server saw of one request. */
export interface SeenRequest {
  readonly path: string;
  readonly stream: H2Stream;
  bytes: number;
  trailers: string[] | undefined;
  ended: boolean;
  resets: number[];
}

export interface EchoServer {
  readonly port: number;
  readonly conns: H2ServerConnection[];
  readonly requests: SeenRequest[];
  /** Requests whose path starts with /hold wait until this resolves before they answer. */
  hold: Promise<void> | undefined;
  close(): Promise<void>;
}

/**
 * An H2ServerConnection per accepted socket. A request is checked as the listener does
 * (requestMap; malformed: RST_STREAM PROTOCOL_ERROR). `/bytes/N` answers N bytes (byte i is i%251);
 * /paused... streams stay paused until the test resumes them;
 * any other path answers 200 and echoes the body back as it arrives (pausing the request when
 * the response cannot be written), then ends with trailers: the request's trailers back, or x-end: 1.
 */
export async function echoServer(opts: { maxConcurrentStreams?: number; idleTimeoutMs?: number; maxHeaderListBytes?: number } = {}): Promise<EchoServer> {
  const conns: H2ServerConnection[] = [];
  const requests: SeenRequest[] = [];
  const state = { hold: undefined as Promise<void> | undefined };
  const server = net.createServer((socket) => {
    const conn = new H2ServerConnection(socket, {
      maxConcurrentStreams: opts.maxConcurrentStreams ?? 2 ** 31 - 1,
      maxHeaderListBytes: opts.maxHeaderListBytes ?? 60 * 1024,
      idleTimeoutMs: opts.idleTimeoutMs ?? 0,
      onRequest: (stream, fields) => {
        const map = requestMap(fields);
        if (typeof map === 'string') {
          stream.reset(PROTOCOL_ERROR);
          return undefined;
        }
        const path = String(map[':path']);
        const seen: SeenRequest = { path, stream, bytes: 0, trailers: undefined, ended: false, resets: [] };
        requests.push(seen);
        const sized = /^\/bytes\/(\d+)$/.exec(path);
        const handler: StreamHandler = {
          onHeaders: (t) => (seen.trailers = t),
          onData: (chunk) => {
            seen.bytes += chunk.length;
            if (!sized && !stream.write(chunk)) stream.pause();
          },
          onEnd: () => {
            seen.ended = true;
            const finish = (): void => {
              if (sized) {
                stream.sendHeaders([':status', '200'], false);
                stream.write(pattern(Number(sized[1])));
                stream.end();
              } else stream.end(seen.trailers ?? ['x-end', '1']);
            };
            if (path.startsWith('/hold') && state.hold) void state.hold.then(finish);
            else finish();
          },
          onReset: (code) => seen.resets.push(code),
          onWritable: () => stream.resume(),
        };
        if (!sized) stream.sendHeaders([':status', '200', 'x-path', path], false);
        stream.handler = handler;
        // /paused...: the test resumes the stream itself.
        if (!path.startsWith('/paused')) stream.resume();
        return handler;
      },
      onClose: () => undefined,
    });
    conns.push(conn);
    conn.start(undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const es: EchoServer = {
    port: (server.address() as AddressInfo).port,
    conns,
    requests,
    get hold() {
      return state.hold;
    },
    set hold(p) {
      state.hold = p;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.destroy();
        server.close(() => resolve());
      }),
  };
  return es;
}

/** n bytes, byte i = i % 251 (a period that does not divide frame or window sizes). */
export function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly id: number;
  readonly payload: Buffer;
  /** HEADERS (with END_HEADERS): the decoded fields. */
  readonly fields?: string[];
}

export function frameBytes(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(id, 5);
  return Buffer.concat([h, payload]);
}

export function u32(...v: number[]): Buffer {
  const b = Buffer.alloc(v.length * 4);
  for (const [i, x] of v.entries()) b.writeUInt32BE(x, i * 4);
  return b;
}

/** A client that speaks frames by hand; every frame from the server lands in `frames`. */
export class RawClient {
  readonly frames: Frame[] = [];
  readonly encoder = new HpackEncoder();
  private readonly decoder = new HpackDecoder();
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    const reader = new FrameReader((type, flags, id, payload) => {
      const p = Buffer.from(payload);
      const fields = type === FRAME_HEADERS ? this.decoder.decode(p, 0, p.length) : undefined;
      this.frames.push({ type, flags, id, payload: p, ...(fields ? { fields } : {}) });
      this.wake();
    }, 1 << 24);
    socket.on('data', (c: Buffer) => reader.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async connect(port: number, preface: Buffer | undefined = Buffer.concat([CLIENT_PREFACE, frameBytes(0x4, 0, 0)])): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawClient(socket);
    if (preface) socket.write(preface);
    return c;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** A HEADERS frame (END_HEADERS) with `fields` encoded by our encoder. */
  headers(id: number, fields: string[], endStream: boolean): Buffer {
    return frameBytes(0x1, 0x4 | (endStream ? 1 : 0), id, this.encoder.encode(fields));
  }

  /** Waits for the first frame matching `pred` (already received or to come). */
  async next(pred: (f: Frame) => boolean, what: string, timeoutMs = 3000): Promise<Frame> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; frames: ${this.frames.map((x) => `${x.type}/${x.flags}/${x.id}`).join(' ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves when the server closed the connection. */
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (!this.closed && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }

  /** The GOAWAY's error code (after waiting for it). */
  async goawayCode(): Promise<number> {
    const g = await this.next((f) => f.type === 0x7, 'GOAWAY');
    return g.payload.readUInt32BE(4);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
