/**
 * One HTTP/2 connection of the TS data plane's own codec (RFC 9113), the part the server side
 * (downstream clients) and the client side (upstream hosts) share: frames in and out, SETTINGS,
 * PING, GOAWAY, RST_STREAM, header blocks through HPACK, and flow control in both directions.
 * In: a connected socket. Out: streams (H2Stream) whose owner hears header blocks, DATA, end and
 * reset through a StreamHandler; the server and client subclasses decide what a header block
 * means (a new request, a response, trailers).
 *
 * Why not node:http2: every stream there is a Duplex with its own events, header objects are
 * converted twice across the nghttp2 boundary, and a proxied gRPC call cost about twice Envoy's
 * CPU. Here a stream is a small object, a header block is one HPACK pass, DATA payloads pass
 * through as views of the bytes that arrived, and a turn's frames leave in one socket write.
 *
 * Flow control: we announce a large stream window (STREAM_WINDOW) and connection window
 * (CONNECTION_WINDOW). The connection window is credited as bytes arrive; a stream's window only
 * as its owner takes the bytes, so a paused owner (backpressure from the other side of the proxy)
 * stops its peer after one window. Outgoing DATA waits for the peer's windows in the stream.
 */
import type { Socket } from 'node:net';
import {
  COMPRESSION_ERROR,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ENHANCE_YOUR_CALM,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PADDED,
  FLAG_PRIORITY,
  FLOW_CONTROL_ERROR,
  FRAME_CONTINUATION,
  FRAME_DATA,
  FRAME_GOAWAY,
  FRAME_HEADERS,
  FRAME_PING,
  FRAME_PRIORITY,
  FRAME_PUSH_PROMISE,
  FRAME_RST_STREAM,
  FRAME_SETTINGS,
  FRAME_SIZE_ERROR,
  FRAME_WINDOW_UPDATE,
  FrameReader,
  FrameWriter,
  H2ConnectionError,
  MAX_WINDOW,
  NO_ERROR,
  PROTOCOL_ERROR,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  STREAM_CLOSED,
} from './frames.js';
import { HpackDecoder, HpackEncoder, HpackError } from './hpack.js';

/** The stream window we announce (SETTINGS_INITIAL_WINDOW_SIZE). */
export const STREAM_WINDOW = 1024 * 1024;
/** The connection window we grant at start. */
export const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** Largest decoded header list we take from a peer (name + value + 32 per field). */
const MAX_HEADER_LIST = 256 * 1024;
/**
 * Largest header block we buffer across HEADERS and CONTINUATION frames, each frame counted with
 * its 9-byte header (so empty CONTINUATION frames count too). Huffman codes a byte in 30 bits at
 * most, so a block within MAX_HEADER_LIST decoded is within 4x that encoded.
 */
const MAX_HEADER_BLOCK = 4 * MAX_HEADER_LIST;
/** Socket bytes queued beyond this make write() say "wait for drain". */
const SOCKET_HIGH_WATER = 1024 * 1024;

/** Unsent bytes past which a PING or SETTINGS to answer ends the connection (a control frame flood). */
const CONTROL_FLOOD_BYTES = 4 * 1024 * 1024;
const INITIAL_PEER_STREAMS = 100;

/** A stream reset by the connection going away (no RST_STREAM code). */
export const CONNECTION_LOST = -1;

/** What the owner of a stream hears. */
export interface StreamHandler {
  /** A header block on this stream after the first (response head, 1xx, trailers), or the first on client streams. */
  onHeaders(fields: string[], endStream: boolean): void;
  onData(chunk: Buffer): void;
  /** The peer ended its side; after the last onData / onHeaders. */
  onEnd(): void;
  /** The stream ended abnormally: the peer's RST_STREAM code, or CONNECTION_LOST. Not called after a local reset. */
  onReset(code: number): void;
  /** Room again after write() returned false. */
  onWritable(): void;
}

export class H2Stream {
  handler: StreamHandler | undefined;
  sendWindow: number;
  recvWindow = STREAM_WINDOW;
  recvUnacked = 0;
  /** We sent END_STREAM or RST_STREAM. */
  localEnded = false;
  /** The peer sent END_STREAM. */
  remoteEnded = false;
  closed = false;
  /** The RST_STREAM code that closed it (ours or the peer's), or CONNECTION_LOST; 0 otherwise. */
  rstCode = 0;
  /** Outgoing DATA waiting for window. */
  pending: Buffer[] | undefined;
  /** After the pending DATA: END_STREAM, with these trailers when set. */
  pendingEnd = false;
  pendingTrailers: string[] | undefined;
  needDrain = false;
  /** When our END_STREAM is out and the peer is still sending: RST_STREAM NO_ERROR (RFC 9113 8.1). */
  stopAfterEnd = false;
  /** When the stream opened (Date.now()); the server counts resets soon after it. */
  openedAt = 0;
  /** Incoming DATA held while the owner is paused (or not listening yet). */
  paused: boolean;
  inbox: Buffer[] | undefined;
  inboxEnd = false;
  /** Trailers that arrived behind held DATA: handed over after it. */
  inboxTrailers: string[] | undefined;

  constructor(
    readonly id: number,
    readonly conn: H2Connection,
    sendWindow: number,
    paused: boolean,
  ) {
    this.sendWindow = sendWindow;
    this.paused = paused;
  }

  sendHeaders(fields: string[], endStream: boolean): void {
    this.conn.sendHeaders(this, fields, endStream);
  }

  /** false: the peer's window or the socket is full; the handler's onWritable follows. */
  write(chunk: Buffer): boolean {
    return this.conn.sendData(this, chunk);
  }

  /** END_STREAM, with trailers when given, after any DATA still waiting. */
  end(trailers?: string[]): void {
    this.conn.endStream(this, trailers);
  }

  reset(code: number): void {
    this.conn.resetStream(this, code);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.conn.deliverInbox(this);
  }
}

export interface LocalSettings {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we announce; undefined: none (unlimited). */
  readonly maxConcurrentStreams?: number | undefined;
  /** Clients say they take no server push. */
  readonly disablePush?: boolean;
}

export abstract class H2Connection {
  protected readonly streams = new Map<number, H2Stream>();
  protected readonly writer: FrameWriter;
  private readonly reader: FrameReader;
  private readonly decoder = new HpackDecoder();
  private readonly encoder = new HpackEncoder();
  /**
   * The peer's SETTINGS_MAX_CONCURRENT_STREAMS. Until its SETTINGS arrive, 100 (RFC 9113 6.5.2
   * advises at least that; nghttp2 assumes it too): a burst on a new connection does not meet
   * REFUSED_STREAM from a server with a lower limit it has not announced yet.
   */
  remoteMaxConcurrentStreams = INITIAL_PEER_STREAMS;
  remoteSettingsReceived = false;
  private remoteInitialWindow = DEFAULT_WINDOW;
  private remoteMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private sendWindow = DEFAULT_WINDOW;
  private recvWindow = CONNECTION_WINDOW;
  private recvUnacked = 0;
  /** Streams with DATA waiting for window. */
  private readonly blocked = new Set<H2Stream>();
  /** Streams told to wait for the socket to drain. */
  private readonly drainWaiters = new Set<H2Stream>();
  /** A header block in progress (HEADERS without END_HEADERS, then CONTINUATION). */
  private hbStream = 0;
  private hbFlags = 0;
  private hbParts: Buffer[] | undefined;
  private hbBytes = 0;
  /** The highest stream id the peer opened (the server's GOAWAY carries it). */
  protected lastPeerStreamId = 0;
  goawaySent = false;
  goawayReceived = false;
  destroyed = false;

  constructor(
    readonly socket: Socket,
    protected readonly local: LocalSettings,
  ) {
    this.writer = new FrameWriter(socket);
    this.reader = new FrameReader((t, f, id, p) => this.onFrame(t, f, id, p));
    this.decoder.maxHeaderListSize = MAX_HEADER_LIST;
    socket.on('drain', () => this.onSocketDrain());
    socket.on('error', () => this.destroy());
    socket.once('close', () => this.onSocketClose());
  }

  /** Active streams (open or half closed). */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Our SETTINGS and the connection window; the client writes its preface before this. */
  protected sendPreamble(): void {
    const entries: [number, number][] = [[SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW]];
    if (this.local.maxConcurrentStreams !== undefined) entries.push([SETTINGS_MAX_CONCURRENT_STREAMS, this.local.maxConcurrentStreams]);
    if (this.local.disablePush) entries.push([SETTINGS_ENABLE_PUSH, 0]);
    const [buf, at] = this.writer.frameInPlace(FRAME_SETTINGS, 0, 0, entries.length * 6);
    entries.forEach(([id, v], i) => {
      buf.writeUInt16BE(id, at + i * 6);
      buf.writeUInt32BE(v, at + i * 6 + 2);
    });
    this.windowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW);
  }

  /** Bytes read from the socket. */
  protected onBytes(chunk: Buffer): void {
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (err instanceof H2ConnectionError) this.fail(err.code, err.message);
      else if (err instanceof HpackError) this.fail(COMPRESSION_ERROR, err.message);
      else throw err;
    }
  }

  /** A header block that opens a stream or belongs to one; `stream` is the open stream with that id, if any. */
  protected abstract onHeaderBlock(id: number, fields: string[], endStream: boolean, stream: H2Stream | undefined): void;
  /** The peer's GOAWAY was handled (streams it will not process are reset). */
  protected onGoaway(_lastStreamId: number, _code: number): void {}
  /** No stream is active any more. */
  protected onIdle(): void {}
  /** The socket closed; every stream has heard onReset. */
  protected onClosed(): void {}
  /** The peer's first SETTINGS arrived. */
  protected onRemoteSettings(): void {}

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.hbParts !== undefined && type !== FRAME_CONTINUATION)
      throw new H2ConnectionError(PROTOCOL_ERROR, `a ${type} frame arrived inside the header block of stream ${this.hbStream}`);
    switch (type) {
      case FRAME_DATA:
        this.onData(flags, id, payload);
        return;
      case FRAME_HEADERS:
        this.onHeadersFrame(flags, id, payload);
        return;
      case FRAME_CONTINUATION:
        if (this.hbParts === undefined || id !== this.hbStream)
          throw new H2ConnectionError(PROTOCOL_ERROR, `a CONTINUATION frame on stream ${id} without a header block in progress`);
        this.hbBytes += 9 + payload.length;
        if (this.hbBytes > MAX_HEADER_BLOCK)
          throw new H2ConnectionError(ENHANCE_YOUR_CALM, `the header block of stream ${id} is over ${MAX_HEADER_BLOCK} bytes`);
        if (payload.length > 0) this.hbParts.push(payload);
        if (flags & FLAG_END_HEADERS) {
          const block = Buffer.concat(this.hbParts);
          this.hbParts = undefined;
          this.headerBlock(this.hbStream, this.hbFlags, block);
        }
        return;
      case FRAME_PRIORITY:
        if (id === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'PRIORITY frame not 5 bytes long');
        return;
      case FRAME_RST_STREAM:
        if (id === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'RST_STREAM on stream 0');
        if (payload.length !== 4) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'RST_STREAM frame not 4 bytes long');
        this.onRst(id, payload.readUInt32BE(0));
        return;
      case FRAME_SETTINGS:
        this.onSettings(flags, id, payload);
        return;
      case FRAME_PUSH_PROMISE:
        throw new H2ConnectionError(PROTOCOL_ERROR, 'PUSH_PROMISE received; push is not accepted');
      case FRAME_PING:
        if (id !== 0) throw new H2ConnectionError(PROTOCOL_ERROR, `PING on stream ${id}`);
        if (payload.length !== 8) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'PING frame not 8 bytes long');
        if ((flags & FLAG_ACK) === 0) {
          this.checkControlFlood('PING');
          this.writer.frame(FRAME_PING, FLAG_ACK, 0, payload);
        }
        return;
      case FRAME_GOAWAY: {
        if (id !== 0) throw new H2ConnectionError(PROTOCOL_ERROR, `GOAWAY on stream ${id}`);
        if (payload.length < 8) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'GOAWAY frame shorter than 8 bytes');
        this.goawayReceived = true;
        this.onGoaway(payload.readUInt32BE(0) & 0x7fffffff, payload.readUInt32BE(4));
        return;
      }
      case FRAME_WINDOW_UPDATE:
        this.onWindowUpdate(id, payload);
        return;
      default:
        // Unknown frame types are ignored (RFC 9113 4.1).
        return;
    }
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'DATA on stream 0');
    const len = payload.length;
    this.recvWindow -= len;
    if (this.recvWindow < 0) throw new H2ConnectionError(FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.recvUnacked += len;
    if (this.recvUnacked >= CONNECTION_WINDOW / 2) {
      this.windowUpdate(0, this.recvUnacked);
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
    let data = payload;
    if (flags & FLAG_PADDED) {
      const pad = len > 0 ? payload[0]! : 0;
      if (len === 0 || pad >= len) throw new H2ConnectionError(PROTOCOL_ERROR, `DATA on stream ${id} with more padding than payload`);
      data = payload.subarray(1, len - pad);
    }
    const s = this.streams.get(id);
    if (!s) {
      this.unknownStream(id, 'DATA');
      return;
    }
    if (s.remoteEnded) {
      this.abortStream(s, STREAM_CLOSED);
      return;
    }
    s.recvWindow -= len;
    if (s.recvWindow < 0) {
      this.abortStream(s, FLOW_CONTROL_ERROR);
      return;
    }
    // Padding is taken at once; the data when its owner takes it.
    if (len > data.length) this.consumed(s, len - data.length);
    if (data.length > 0) {
      if (s.paused || s.inbox !== undefined) {
        if (s.inbox === undefined) s.inbox = [data];
        else s.inbox.push(data);
      } else {
        s.handler?.onData(data);
        this.consumed(s, data.length);
      }
    }
    if (flags & FLAG_END_STREAM) this.remoteEnd(s);
  }

  /** A frame for a stream we do not hold: closed ones are ignored, idle ones are a protocol error. */
  private unknownStream(id: number, what: string): void {
    if (this.isIdle(id)) throw new H2ConnectionError(PROTOCOL_ERROR, `${what} on idle stream ${id}`);
  }

  /** Whether `id` is a stream that was never opened (by either side). */
  protected abstract isIdle(id: number): boolean;

  private consumed(s: H2Stream, n: number): void {
    if (s.remoteEnded || s.closed) return;
    s.recvUnacked += n;
    if (s.recvUnacked >= STREAM_WINDOW / 2) {
      this.windowUpdate(s.id, s.recvUnacked);
      s.recvWindow += s.recvUnacked;
      s.recvUnacked = 0;
    }
  }

  /** Hands held DATA (and the end) to a resumed owner. */
  deliverInbox(s: H2Stream): void {
    const inbox = s.inbox;
    if (inbox === undefined) return;
    // A stream closed normally (both ends done) still hands over what it holds; a reset one does not.
    while (inbox.length > 0 && !s.paused && s.rstCode === 0) {
      const chunk = inbox.shift()!;
      s.handler?.onData(chunk);
      this.consumed(s, chunk.length);
    }
    if (inbox.length > 0 || s.paused) return;
    s.inbox = undefined;
    const trailers = s.inboxTrailers;
    if (trailers !== undefined) {
      s.inboxTrailers = undefined;
      if (s.rstCode === 0) s.handler?.onHeaders(trailers, true);
    }
    if (s.inboxEnd) {
      s.inboxEnd = false;
      if (s.rstCode === 0) s.handler?.onEnd();
    }
  }

  protected remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    if (s.inbox !== undefined) s.inboxEnd = true;
    else s.handler?.onEnd();
    if (s.localEnded) this.forget(s);
  }

  private onHeadersFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'HEADERS on stream 0');
    let start = 0;
    let end = payload.length;
    if (flags & FLAG_PADDED) {
      if (end === 0) throw new H2ConnectionError(PROTOCOL_ERROR, `HEADERS on stream ${id} too short for its padding`);
      end -= payload[0]!;
      start = 1;
    }
    if (flags & FLAG_PRIORITY) start += 5;
    if (end < start) throw new H2ConnectionError(PROTOCOL_ERROR, `HEADERS on stream ${id} with more padding than payload`);
    const block = payload.subarray(start, end);
    if (flags & FLAG_END_HEADERS) this.headerBlock(id, flags, block);
    else {
      this.hbStream = id;
      this.hbFlags = flags;
      this.hbParts = [block];
      this.hbBytes = payload.length + 9;
    }
  }

  /** The size of the header list just decoded (for the block being handed to onHeaderBlock). */
  protected get headerListSize(): number {
    return this.decoder.lastListSize;
  }

  private headerBlock(id: number, flags: number, block: Buffer): void {
    // Decoded even for a stream about to be refused: the HPACK state must stay in step.
    const fields = this.decoder.decode(block, 0, block.length);
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    const s = this.streams.get(id);
    if (s?.remoteEnded) {
      this.abortStream(s, STREAM_CLOSED);
      return;
    }
    this.onHeaderBlock(id, fields, endStream, s);
  }

  /** A header block on a stream already open: handed to its owner. */
  protected headersOnStream(s: H2Stream, fields: string[], endStream: boolean): void {
    // Trailers behind DATA held for a paused owner wait for it: the owner must hear the body first.
    if (endStream && s.inbox !== undefined) {
      s.inboxTrailers = fields;
      this.remoteEnd(s);
      return;
    }
    s.handler?.onHeaders(fields, endStream);
    if (endStream && !s.closed) this.remoteEnd(s);
  }

  /**
   * A peer that sends PINGs or SETTINGS but does not read our answers would grow our socket's
   * queue without bound (nghttp2 and Envoy cap queued control frames likewise): past
   * CONTROL_FLOOD_BYTES unsent, the connection ends with ENHANCE_YOUR_CALM.
   */
  private checkControlFlood(what: string): void {
    if (this.socket.writableLength + this.writer.queued > CONTROL_FLOOD_BYTES)
      throw new H2ConnectionError(ENHANCE_YOUR_CALM, `${what} from a peer that does not read: ${this.socket.writableLength} bytes unsent`);
  }

  private onRst(id: number, code: number): void {
    const s = this.streams.get(id);
    if (!s) {
      this.unknownStream(id, 'RST_STREAM');
      return;
    }
    s.rstCode = code;
    this.forget(s);
    s.handler?.onReset(code);
    this.onPeerReset(s);
  }

  /** The peer reset `s` (after its owner heard it); may end the connection by throwing H2ConnectionError. */
  protected onPeerReset(_s: H2Stream): void {}

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new H2ConnectionError(PROTOCOL_ERROR, `SETTINGS on stream ${id}`);
    if (flags & FLAG_ACK) {
      if (payload.length !== 0) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'SETTINGS payload not a multiple of 6 bytes');
    // The first SETTINGS replace the assumed stream limit; without SETTINGS_MAX_CONCURRENT_STREAMS there is none.
    if (!this.remoteSettingsReceived) this.remoteMaxConcurrentStreams = MAX_WINDOW;
    for (let i = 0; i < payload.length; i += 6) {
      const key = payload.readUInt16BE(i);
      const v = payload.readUInt32BE(i + 2);
      switch (key) {
        case SETTINGS_HEADER_TABLE_SIZE:
          this.encoder.setPeerMaxTableSize(v);
          break;
        case SETTINGS_ENABLE_PUSH:
          if (v > 1) throw new H2ConnectionError(PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${v}`);
          break;
        case SETTINGS_MAX_CONCURRENT_STREAMS:
          this.remoteMaxConcurrentStreams = v;
          break;
        case SETTINGS_INITIAL_WINDOW_SIZE: {
          if (v > MAX_WINDOW) throw new H2ConnectionError(FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${v}`);
          const delta = v - this.remoteInitialWindow;
          this.remoteInitialWindow = v;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) throw new H2ConnectionError(FLOW_CONTROL_ERROR, `stream ${s.id}'s window above 2^31-1`);
          }
          if (delta > 0) for (const s of [...this.blocked]) this.flushPending(s);
          break;
        }
        case SETTINGS_MAX_FRAME_SIZE:
          if (v < DEFAULT_MAX_FRAME_SIZE || v > 16777215) throw new H2ConnectionError(PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${v}`);
          this.remoteMaxFrameSize = v;
          break;
        default:
          break;
      }
    }
    this.checkControlFlood('SETTINGS');
    this.writer.frame(FRAME_SETTINGS, FLAG_ACK, 0, undefined);
    if (!this.remoteSettingsReceived) {
      this.remoteSettingsReceived = true;
      this.onRemoteSettings();
    }
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'WINDOW_UPDATE frame not 4 bytes long');
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
      this.sendWindow += inc;
      if (this.sendWindow > MAX_WINDOW) throw new H2ConnectionError(FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      for (const s of [...this.blocked]) {
        if (this.sendWindow <= 0) break;
        this.flushPending(s);
      }
      return;
    }
    const s = this.streams.get(id);
    if (!s) {
      this.unknownStream(id, 'WINDOW_UPDATE');
      return;
    }
    if (inc === 0) {
      this.abortStream(s, PROTOCOL_ERROR);
      return;
    }
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) {
      this.abortStream(s, FLOW_CONTROL_ERROR);
      return;
    }
    if (s.pending !== undefined) this.flushPending(s);
  }

  private windowUpdate(id: number, inc: number): void {
    const [buf, at] = this.writer.frameInPlace(FRAME_WINDOW_UPDATE, 0, id, 4);
    buf.writeUInt32BE(inc, at);
  }

  // ---- sending ----

  /** A stream this side opens (client) or the peer opened (server). */
  protected newStream(id: number, paused: boolean): H2Stream {
    const s = new H2Stream(id, this, this.remoteInitialWindow, paused);
    this.streams.set(id, s);
    return s;
  }

  sendHeaders(s: H2Stream, fields: string[], endStream: boolean): void {
    if (s.localEnded || s.closed || this.destroyed) return;
    const block = this.encoder.encode(fields);
    const max = this.remoteMaxFrameSize;
    const es = endStream ? FLAG_END_STREAM : 0;
    if (block.length <= max) this.writer.frame(FRAME_HEADERS, FLAG_END_HEADERS | es, s.id, block);
    else {
      this.writer.frame(FRAME_HEADERS, es, s.id, block.subarray(0, max));
      for (let off = max; off < block.length; off += max) {
        const last = off + max >= block.length;
        this.writer.frame(FRAME_CONTINUATION, last ? FLAG_END_HEADERS : 0, s.id, block.subarray(off, Math.min(off + max, block.length)));
      }
    }
    if (endStream) this.localEnd(s);
  }

  sendData(s: H2Stream, chunk: Buffer): boolean {
    if (s.localEnded || s.closed || this.destroyed) return true;
    if (s.pending !== undefined) {
      s.pending.push(chunk);
      s.needDrain = true;
      return false;
    }
    const sent = this.sendWithinWindow(s, chunk, 0);
    if (sent < chunk.length) {
      s.pending = [sent === 0 ? chunk : chunk.subarray(sent)];
      s.needDrain = true;
      this.blocked.add(s);
      return false;
    }
    if (this.socket.writableLength + this.writer.queued > SOCKET_HIGH_WATER) {
      this.drainWaiters.add(s);
      return false;
    }
    return true;
  }

  /** DATA frames from chunk[from..] as far as both windows allow; returns the offset reached. */
  private sendWithinWindow(s: H2Stream, chunk: Buffer, from: number): number {
    let off = from;
    const max = this.remoteMaxFrameSize;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, s.sendWindow, this.sendWindow, max);
      if (n <= 0) break;
      this.writer.frame(FRAME_DATA, 0, s.id, off === 0 && n === chunk.length ? chunk : chunk.subarray(off, off + n));
      s.sendWindow -= n;
      this.sendWindow -= n;
      off += n;
    }
    return off;
  }

  private flushPending(s: H2Stream): void {
    const pending = s.pending;
    if (pending === undefined || s.localEnded) return;
    while (pending.length > 0) {
      const chunk = pending[0]!;
      const sent = this.sendWithinWindow(s, chunk, 0);
      if (sent < chunk.length) {
        pending[0] = chunk.subarray(sent);
        return;
      }
      pending.shift();
    }
    s.pending = undefined;
    this.blocked.delete(s);
    if (s.pendingEnd) {
      s.pendingEnd = false;
      this.finishStream(s, s.pendingTrailers);
      s.pendingTrailers = undefined;
    }
    if (s.needDrain) {
      s.needDrain = false;
      s.handler?.onWritable();
    }
  }

  endStream(s: H2Stream, trailers: string[] | undefined): void {
    if (s.localEnded || s.closed || this.destroyed) return;
    if (s.pending !== undefined) {
      s.pendingEnd = true;
      s.pendingTrailers = trailers;
      return;
    }
    this.finishStream(s, trailers);
  }

  private finishStream(s: H2Stream, trailers: string[] | undefined): void {
    if (trailers !== undefined && trailers.length > 0) this.sendHeaders(s, trailers, true);
    else {
      this.writer.frame(FRAME_DATA, FLAG_END_STREAM, s.id, undefined);
      this.localEnd(s);
    }
  }

  resetStream(s: H2Stream, code: number): void {
    if (s.closed || this.destroyed) return;
    const [buf, at] = this.writer.frameInPlace(FRAME_RST_STREAM, 0, s.id, 4);
    buf.writeUInt32BE(code, at);
    s.rstCode = code;
    s.localEnded = true;
    this.forget(s);
  }

  /** A reset the connection decides on (the peer broke a stream rule): the owner hears it. */
  private abortStream(s: H2Stream, code: number): void {
    this.resetStream(s, code);
    s.handler?.onReset(code);
  }

  private localEnd(s: H2Stream): void {
    s.localEnded = true;
    if (s.remoteEnded) this.forget(s);
    else if (s.stopAfterEnd) this.resetStream(s, NO_ERROR);
  }

  private forget(s: H2Stream): void {
    if (s.closed) return;
    s.closed = true;
    s.pending = undefined;
    this.blocked.delete(s);
    this.drainWaiters.delete(s);
    this.streams.delete(s.id);
    if (this.streams.size === 0) this.onIdle();
  }

  private onSocketDrain(): void {
    if (this.drainWaiters.size === 0) return;
    const waiters = [...this.drainWaiters];
    this.drainWaiters.clear();
    for (const s of waiters) if (!s.closed) s.handler?.onWritable();
  }

  /** GOAWAY with `code` (graceful with NO_ERROR: streams in flight finish, then the socket closes). */
  goaway(code: number, lastStreamId = this.lastPeerStreamId, debug?: string): void {
    if (this.destroyed) return;
    this.goawaySent = true;
    const d = debug ? Buffer.from(debug) : undefined;
    const [buf, at] = this.writer.frameInPlace(FRAME_GOAWAY, 0, 0, 8 + (d?.length ?? 0));
    buf.writeUInt32BE(lastStreamId, at);
    buf.writeUInt32BE(code, at + 4);
    d?.copy(buf, at + 8);
  }

  /** A connection error: GOAWAY with the code, then the connection ends. */
  protected fail(code: number, message: string): void {
    if (this.destroyed) return;
    this.reader.stopped = true;
    this.goaway(code, this.lastPeerStreamId, message);
    this.writer.flush();
    // The streams go now; the socket after its GOAWAY is written (destroying it at once could drop it).
    this.destroyed = true;
    this.resetAll();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Graceful close: GOAWAY NO_ERROR, no new streams, the socket ends when the last stream does. */
  close(): void {
    if (this.destroyed) return;
    if (!this.goawaySent) this.goaway(NO_ERROR);
    if (this.streams.size === 0) this.endSocket();
  }

  protected endSocket(): void {
    this.writer.flush();
    this.socket.end();
    // A peer that never closes its side does not hold the connection open.
    setTimeout(() => this.destroy(), 1000).unref();
  }

  /** Closes at once; every open stream hears onReset(CONNECTION_LOST). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.reader.stopped = true;
    this.resetAll();
    if (!this.socket.destroyed) this.socket.destroy();
  }

  private resetAll(): void {
    const open = [...this.streams.values()];
    for (const s of open) {
      s.rstCode = CONNECTION_LOST;
      this.forget(s);
    }
    for (const s of open) s.handler?.onReset(CONNECTION_LOST);
  }

  private onSocketClose(): void {
    this.destroyed = true;
    this.reader.stopped = true;
    this.resetAll();
    this.onClosed();
  }

  /** Resets every stream above `lastStreamId` that this side opened (the peer's GOAWAY says it will not process them). */
  protected refuseAbove(lastStreamId: number, code: number): void {
    const refused = [...this.streams.values()].filter((s) => s.id > lastStreamId);
    for (const s of refused) {
      s.rstCode = code;
      this.forget(s);
    }
    for (const s of refused) s.handler?.onReset(code);
  }
}
