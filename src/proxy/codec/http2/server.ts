/**
 * The server side of the own HTTP/2 codec: one downstream client's connection (cleartext h2c with
 * prior knowledge, or h2 after ALPN). In: the socket (possibly with bytes already read while
 * sniffing the protocol) and the listener's settings. Out: each well-formed request as a new
 * stream handed to `onRequest`, which returns the stream's owner.
 *
 * Refused here, as nghttp2 refuses them: a stream over SETTINGS_MAX_CONCURRENT_STREAMS
 * (RST_STREAM REFUSED_STREAM, safe for the client to retry), a malformed request (RST_STREAM
 * PROTOCOL_ERROR), and after our GOAWAY any new stream (not processed, the client retries it
 * elsewhere). A connection with no stream for the idle timeout gets GOAWAY and closes, as Envoy's
 * HttpConnectionManager idle_timeout does.
 */
import type { Socket } from 'node:net';
import { CLIENT_PREFACE, ENHANCE_YOUR_CALM, H2ConnectionError, INTERNAL_ERROR, PROTOCOL_ERROR, REFUSED_STREAM } from './frames.js';
import { H2Connection, type H2Stream, type StreamHandler } from './connection.js';

export interface ServerOptions {
  /** Our SETTINGS_MAX_CONCURRENT_STREAMS; 2^31-1 or more: not announced. */
  readonly maxConcurrentStreams: number;
  /**
   * A request whose header list (RFC 9113 6.5.2: name + value + 32 per field) is larger is reset
   * with INTERNAL_ERROR before it reaches `onRequest`, as Envoy answers max_request_headers_kb.
   */
  readonly maxHeaderListBytes: number;
  /** GOAWAY after this long without a stream; 0: never. */
  idleTimeoutMs: number;
  /** A new request: returns its owner, or undefined after resetting the stream itself. */
  readonly onRequest: (stream: H2Stream, fields: string[], endStream: boolean) => StreamHandler | undefined;
  /** The connection is gone. */
  readonly onClose: (conn: H2ServerConnection) => void;
  /** The connection is being closed for too many premature resets (rapid reset). */
  readonly onPrematureResets?: () => void;
}

/**
 * Rapid reset (CVE-2023-44487), as Envoy's HttpConnectionManager guards against it: a stream the
 * client resets within PREMATURE_RESET_MS of opening it, before our response ended, is premature.
 * Once the connection has opened PREMATURE_RESET_MIN_STREAMS streams, premature resets of half
 * of them or more end it (GOAWAY ENHANCE_YOUR_CALM). Envoy's defaults: 1 s and 500 streams.
 */
const PREMATURE_RESET_MS = 1000;
const PREMATURE_RESET_MIN_STREAMS = 500;

const UNLIMITED = 2 ** 31 - 1;

export class H2ServerConnection extends H2Connection {
  private prefaceSeen = 0;
  private opened = 0;
  private premature = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    socket: Socket,
    private readonly opts: ServerOptions,
  ) {
    super(socket, { maxConcurrentStreams: opts.maxConcurrentStreams < UNLIMITED ? opts.maxConcurrentStreams : undefined });
  }

  /** Starts the connection; `head` holds bytes already read from the socket (the sniffed preface). */
  start(head: Buffer | undefined): void {
    this.sendPreamble();
    this.armIdle();
    this.socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    if (head) this.onSocketData(head);
    this.socket.resume();
  }

  private onSocketData(chunk: Buffer): void {
    if (this.prefaceSeen < CLIENT_PREFACE.length) {
      const n = Math.min(CLIENT_PREFACE.length - this.prefaceSeen, chunk.length);
      if (chunk.compare(CLIENT_PREFACE, this.prefaceSeen, this.prefaceSeen + n, 0, n) !== 0) {
        this.fail(PROTOCOL_ERROR, 'not the HTTP/2 client preface');
        return;
      }
      this.prefaceSeen += n;
      if (n === chunk.length) return;
      chunk = chunk.subarray(n);
    }
    this.onBytes(chunk);
  }

  protected isIdle(id: number): boolean {
    return (id & 1) === 0 || id > this.lastPeerStreamId;
  }

  protected onHeaderBlock(id: number, fields: string[], endStream: boolean, stream: H2Stream | undefined): void {
    if (stream !== undefined) {
      // Request trailers: they end the request; their fields are not forwarded.
      if (!endStream) {
        stream.reset(PROTOCOL_ERROR);
        stream.handler?.onReset(PROTOCOL_ERROR);
        return;
      }
      this.headersOnStream(stream, fields, endStream);
      return;
    }
    if ((id & 1) === 0) throw new H2ConnectionError(PROTOCOL_ERROR, `a client opened even stream ${id}`);
    // A stream we already closed (reset) may still see its trailers: ignored.
    if (id <= this.lastPeerStreamId) return;
    this.lastPeerStreamId = id;
    // After our GOAWAY new streams are not processed.
    if (this.goawaySent) return;
    this.clearIdle();
    const s = this.newStream(id, true);
    s.openedAt = Date.now();
    this.opened++;
    if (this.activeStreams > this.opts.maxConcurrentStreams) {
      s.reset(REFUSED_STREAM);
      return;
    }
    if (this.headerListSize > this.opts.maxHeaderListBytes) {
      s.reset(INTERNAL_ERROR);
      return;
    }
    const handler = this.opts.onRequest(s, fields, endStream);
    if (handler === undefined || s.closed) return;
    s.handler = handler;
    if (endStream) this.remoteEnd(s);
  }

  protected override onPeerReset(s: H2Stream): void {
    if (s.localEnded || Date.now() - s.openedAt >= PREMATURE_RESET_MS) return;
    this.premature++;
    if (this.opened >= PREMATURE_RESET_MIN_STREAMS && this.premature * 2 >= this.opened) {
      this.opts.onPrematureResets?.();
      throw new H2ConnectionError(
        ENHANCE_YOUR_CALM,
        `${this.premature} of ${this.opened} streams reset by the client within ${PREMATURE_RESET_MS} ms of opening`,
      );
    }
  }

  protected override onIdle(): void {
    if (this.goawaySent) this.endSocket();
    else this.armIdle();
  }

  protected override onClosed(): void {
    this.clearIdle();
    this.opts.onClose(this);
  }

  private armIdle(): void {
    const ms = this.opts.idleTimeoutMs;
    if (ms <= 0 || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.activeStreams === 0) this.close();
    }, ms);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  /** Drain: GOAWAY now; streams in flight finish, then the connection closes. */
  drain(): void {
    this.clearIdle();
    this.close();
  }
}
