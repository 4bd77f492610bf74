/**
 * The client side of the own HTTP/2 codec: one connection to an upstream host. In: a socket
 * being connected (plaintext or TLS, see upstream-connect.ts) and the event that says it carries
 * bytes. Out: streams for requests (`request`), and the connection's life as the pool needs it:
 * connected, going away (the peer's GOAWAY, or no stream ids left), closed.
 *
 * Streams the peer's GOAWAY leaves unprocessed (ids above its last-stream-id) are reset with
 * REFUSED_STREAM, which the router treats as safe to retry, as Envoy does.
 */
import type { Socket } from 'node:net';
import { CLIENT_PREFACE, H2ConnectionError, PROTOCOL_ERROR, REFUSED_STREAM } from './frames.js';
import { H2Connection, type H2Stream, type StreamHandler } from './connection.js';

export interface ClientEvents {
  /** The socket carries bytes (after the TLS handshake for TLS). */
  onConnect(): void;
  /** The socket failed before or after connecting. */
  onError(err: Error): void;
  /** The peer said GOAWAY (or the stream ids ran out): no new streams here. */
  onGoaway(): void;
  onClose(): void;
}

const LAST_STREAM_ID = 2 ** 31 - 1;

export class H2ClientConnection extends H2Connection {
  private nextStreamId = 1;
  connected = false;

  constructor(
    socket: Socket,
    connectEvent: 'connect' | 'secureConnect',
    private readonly events: ClientEvents,
  ) {
    super(socket, { disablePush: true });
    socket.on('error', (err: Error) => events.onError(err));
    socket.once(connectEvent, () => {
      this.connected = true;
      events.onConnect();
    });
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    this.writer.raw(CLIENT_PREFACE);
    this.sendPreamble();
  }

  /** Whether a new stream may start here (not going away, ids left, under the peer's stream limit). */
  get usable(): boolean {
    return !this.destroyed && !this.goawaySent && !this.goawayReceived && this.nextStreamId <= LAST_STREAM_ID;
  }

  /** A new stream with the request's header block; `handler` hears the response. */
  request(fields: string[], endStream: boolean, handler: StreamHandler): H2Stream {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const s = this.newStream(id, false);
    s.handler = handler;
    s.sendHeaders(fields, endStream);
    if (this.nextStreamId > LAST_STREAM_ID) this.events.onGoaway();
    return s;
  }

  protected isIdle(id: number): boolean {
    return (id & 1) === 0 || id >= this.nextStreamId;
  }

  protected onHeaderBlock(id: number, fields: string[], endStream: boolean, stream: H2Stream | undefined): void {
    if (stream !== undefined) {
      this.headersOnStream(stream, fields, endStream);
      return;
    }
    if (this.isIdle(id)) throw new H2ConnectionError(PROTOCOL_ERROR, `HEADERS on stream ${id}, which was never opened`);
    // A stream we reset or finished: late frames are ignored.
  }

  protected override onGoaway(lastStreamId: number): void {
    this.refuseAbove(lastStreamId, REFUSED_STREAM);
    this.events.onGoaway();
    if (this.activeStreams === 0) this.close();
  }

  protected override onIdle(): void {
    if (this.goawaySent || this.goawayReceived) this.close();
  }

  protected override onClosed(): void {
    this.events.onClose();
  }

  ref(): void {
    this.socket.ref();
  }

  unref(): void {
    this.socket.unref();
  }
}
