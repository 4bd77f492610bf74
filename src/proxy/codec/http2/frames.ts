/**
 * HTTP/2 framing (RFC 9113 4, 6): the constants, a reader that cuts a byte stream into frames,
 * and a writer that batches outgoing frames into one socket write per turn of the event loop.
 *
 * The reader hands each frame's payload on as a view of the socket's chunk (no copy), so DATA
 * reaches the other side of the proxy as the bytes that arrived. The writer copies frame headers
 * and small payloads into a slab shared by all connections, keeps large payloads by reference,
 * and flushes once per microtask for all connections: a gRPC call's HEADERS, DATA and trailers
 * that are produced by one socket read leave in one write.
 */
import type { Socket } from 'node:net';

export const FRAME_DATA = 0x0;
export const FRAME_HEADERS = 0x1;
export const FRAME_PRIORITY = 0x2;
export const FRAME_RST_STREAM = 0x3;
export const FRAME_SETTINGS = 0x4;
export const FRAME_PUSH_PROMISE = 0x5;
export const FRAME_PING = 0x6;
export const FRAME_GOAWAY = 0x7;
export const FRAME_WINDOW_UPDATE = 0x8;
export const FRAME_CONTINUATION = 0x9;

export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

export const NO_ERROR = 0x0;
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FLOW_CONTROL_ERROR = 0x3;
export const STREAM_CLOSED = 0x5;
export const FRAME_SIZE_ERROR = 0x6;
export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const COMPRESSION_ERROR = 0x9;
export const ENHANCE_YOUR_CALM = 0xb;

export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** The largest flow-control window (RFC 9113 6.9.1) and the default one. */
export const MAX_WINDOW = 2 ** 31 - 1;
export const DEFAULT_WINDOW = 65535;
export const DEFAULT_MAX_FRAME_SIZE = 16384;

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A connection error (RFC 9113 5.4.1): the connection ends with GOAWAY carrying `code`. */
export class H2ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export type FrameHandler = (type: number, flags: number, streamId: number, payload: Buffer) => void;

/**
 * Cuts the bytes of one connection into frames. A frame longer than `maxFrameSize` (our
 * SETTINGS_MAX_FRAME_SIZE) is a FRAME_SIZE_ERROR; a partial frame waits for the next chunk.
 */
export class FrameReader {
  private rest: Buffer | undefined;
  /** Set by the connection when it stops reading (a connection error, or the socket is gone). */
  stopped = false;

  constructor(
    private readonly onFrame: FrameHandler,
    private readonly maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
  ) {}

  push(chunk: Buffer): void {
    let data = chunk;
    if (this.rest) {
      data = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    let off = 0;
    const n = data.length;
    while (n - off >= 9 && !this.stopped) {
      const len = (data[off]! << 16) | (data[off + 1]! << 8) | data[off + 2]!;
      if (len > this.maxFrameSize)
        throw new H2ConnectionError(FRAME_SIZE_ERROR, `a frame of ${len} bytes is larger than SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`);
      const end = off + 9 + len;
      if (end > n) break;
      const type = data[off + 3]!;
      const flags = data[off + 4]!;
      const id = data.readUInt32BE(off + 5) & 0x7fffffff;
      off = end;
      this.onFrame(type, flags, id, data.subarray(end - len, end));
    }
    if (off < n && !this.stopped) this.rest = data.subarray(off);
  }
}

/** Payloads up to this size are copied next to their frame header; larger ones are written by reference. */
const COPY_LIMIT = 1024;
const SLAB_SIZE = 64 * 1024;
/** Queued bytes up to this are joined into one buffer for the socket; beyond it, a corked writev. */
const JOIN_LIMIT = 64 * 1024;

/**
 * One slab shared by every connection's writer: frame headers and small payloads are copied in
 * at its cursor, which only moves forward (bytes handed to a socket are never overwritten; a full
 * slab is replaced, and the old one lives while a write still holds a view of it). An idle
 * connection therefore holds no buffer of its own.
 */
let slab = Buffer.allocUnsafe(SLAB_SIZE);
let cursor = 0;

/** Writers with frames queued this turn, flushed together by one microtask. */
let dirty: FrameWriter[] = [];
let flushQueued = false;

function flushDirty(): void {
  flushQueued = false;
  const writers = dirty;
  dirty = [];
  for (const w of writers) w.flush();
}

/**
 * Outgoing frames of one connection. Frames queue until the end of the current turn (one
 * microtask for all connections), then leave in one write (or one corked writev when large
 * payloads are among them).
 */
export class FrameWriter {
  /** The slab view being extended, [runStart, runEnd) of runSlab. */
  private runSlab: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;
  private parts: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(private readonly socket: Socket) {}

  /** Bytes queued and not yet handed to the socket. */
  get queued(): number {
    return this.bytes;
  }

  /** n bytes at the shared slab's cursor, appended to this writer's current run when adjacent. */
  private reserve(n: number): [Buffer, number] {
    if (cursor + n > slab.length) {
      slab = Buffer.allocUnsafe(Math.max(SLAB_SIZE, n));
      cursor = 0;
    }
    const at = cursor;
    cursor += n;
    if (this.runSlab === slab && this.runEnd === at) this.runEnd += n;
    else {
      this.closeRun();
      this.runSlab = slab;
      this.runStart = at;
      this.runEnd = at + n;
    }
    this.bytes += n;
    if (!this.scheduled) {
      this.scheduled = true;
      dirty.push(this);
      if (!flushQueued) {
        flushQueued = true;
        queueMicrotask(flushDirty);
      }
    }
    return [slab, at];
  }

  private closeRun(): void {
    if (this.runSlab !== undefined && this.runEnd > this.runStart) this.parts.push(this.runSlab.subarray(this.runStart, this.runEnd));
    this.runSlab = undefined;
  }

  /** Raw bytes (the client preface). */
  raw(bytes: Buffer): void {
    const [buf, at] = this.reserve(bytes.length);
    bytes.copy(buf, at);
  }

  /** One frame; `payload` may be a view of a larger buffer and is not modified. */
  frame(type: number, flags: number, streamId: number, payload: Uint8Array | undefined): void {
    const len = payload ? payload.length : 0;
    const copy = len <= COPY_LIMIT;
    const [buf, at] = this.header(type, flags, streamId, len, copy ? len : 0);
    if (payload && len > 0) {
      if (copy) buf.set(payload, at + 9);
      else {
        this.closeRun();
        this.parts.push(payload instanceof Buffer ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
        this.bytes += len;
      }
    }
  }

  /** A frame whose payload the caller fills in place: returns the slab and the payload's offset. */
  frameInPlace(type: number, flags: number, streamId: number, len: number): [Buffer, number] {
    const [buf, at] = this.header(type, flags, streamId, len, len);
    return [buf, at + 9];
  }

  /** The 9-byte frame header, plus `room` bytes after it in the slab. */
  private header(type: number, flags: number, streamId: number, len: number, room: number): [Buffer, number] {
    const [s, at] = this.reserve(9 + room);
    s[at] = len >>> 16;
    s[at + 1] = (len >>> 8) & 0xff;
    s[at + 2] = len & 0xff;
    s[at + 3] = type;
    s[at + 4] = flags;
    s.writeUInt32BE(streamId, at + 5);
    return [s, at];
  }

  flush(): void {
    this.scheduled = false;
    this.closeRun();
    const parts = this.parts;
    if (parts.length === 0) return;
    const bytes = this.bytes;
    this.parts = [];
    this.bytes = 0;
    const socket = this.socket;
    if (socket.destroyed) return;
    if (parts.length === 1) socket.write(parts[0]!);
    // Pieces of the shared slab (other connections wrote between them) or small payloads: one
    // copy into one buffer is cheaper than a write() per piece.
    else if (bytes <= JOIN_LIMIT) socket.write(Buffer.concat(parts, bytes));
    else {
      socket.cork();
      for (const p of parts) socket.write(p);
      socket.uncork();
    }
  }
}
