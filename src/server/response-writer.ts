/**
 * Puts a stream's pre-encoded DiscoveryResponses on the wire.
 *
 * In: the grpc-js call of one xDS stream, and responses (sotw/response-cache.ts) in the order the
 * protocol decided (CDS -> EDS -> LDS -> RDS). Out: bytes on that stream's HTTP/2 stream.
 *
 * Why not just `call.write()`: grpc-js's server stream is an object-mode Writable that hands
 * grpc-js one message at a time and takes the next only after the previous one's HTTP/2 write
 * has completed, and it copies every message into a fresh buffer to put the 5-byte gRPC length
 * prefix in front. A Cluster change sends three responses per client (CDS, the warming re-send
 * of EDS, RDS), so 1,000 clients cost 3,000 buffer copies (40 MB) and three event-loop rounds
 * per stream before the last response leaves, with every client's ACKs queued in between.
 *
 * The fast path writes the shared, already framed response (the same Buffer for every stream)
 * straight onto the call's HTTP/2 stream, corked for the duration of one flush, so one change is
 * one writev per stream and no copy at all. grpc-js still owns the call: it sends the response
 * headers (asked for explicitly before the first write), reads requests, and ends the call with
 * its trailers, which the HTTP/2 stream sends after everything written here. grpc-js never
 * compresses responses, so the uncompressed prefix written here is what it would write.
 *
 * Getting there needs grpc-js's innermost server call (BaseServerInterceptingCall), which a
 * server interceptor is handed through the public interceptor API, and its `stream` field, which
 * is not public. The field's shape is checked once per call; if a grpc-js release changes it the
 * writer falls back to `call.write()`, and `XdsServerStats.grpcWrites` counts those writes (a
 * unit test asserts the fast path is taken with the installed grpc-js).
 */
import { Duplex } from 'node:stream';
import { Metadata, ServerInterceptingCall, type ServerDuplexStream, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';

/** The part of node:http2's ServerHttp2Stream the fast path uses. */
interface FrameSink {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly closed: boolean;
  cork(): void;
  uncork(): void;
  write(chunk: Buffer): boolean;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** A response as the protocol encoded it (e.g. sotw/response-cache.ts). */
export interface FramedResponse {
  /** The message behind gRPC's length prefix: what goes on the HTTP/2 stream, as is. */
  readonly frame: Buffer;
  /** The message alone (a view into `frame`), for grpc-js to frame itself. */
  readonly bytes: Buffer;
}

/** The part of the grpc-js call the writer uses. */
type ResponseCall = Pick<ServerDuplexStream<unknown, Buffer>, 'write' | 'metadata'>;

export interface WriteCounters {
  /** Responses written as shared framed bytes straight onto the HTTP/2 stream. */
  directWrites: number;
  /** Responses written through grpc-js (the fallback). */
  grpcWrites: number;
}

/** The innermost grpc-js call of each xDS call, by its request metadata (the handler's key to it). */
const innerCalls = new WeakMap<Metadata, ServerInterceptingCallInterface>();

/**
 * Installed as the server's only interceptor. The first interceptor is handed grpc-js's own call
 * object; remember it under the request metadata, which grpc-js passes on to the handler as
 * `call.metadata`. Nothing is changed on the way through.
 */
export const innerCallInterceptor: ServerInterceptor = (_method, inner) =>
  new ServerInterceptingCall(inner, {
    start: (next) =>
      next({
        onReceiveMetadata: (metadata, pass) => {
          innerCalls.set(metadata, inner);
          pass(metadata);
        },
      }),
  });

const ignore = (): void => {};

export class ResponseWriter {
  readonly #call: ResponseCall;
  readonly #counters: WriteCounters;
  readonly #maxMessageBytes: number;
  readonly #inner: ServerInterceptingCallInterface | undefined;
  readonly #sink: FrameSink | undefined;
  #corked = false;

  /**
   * `direct`: use the fast path when grpc-js allows it (default true). `maxMessageBytes`: grpc-js's
   * `grpc.max_send_message_length` (-1: no limit); a larger message goes through grpc-js, which
   * ends the call with RESOURCE_EXHAUSTED.
   */
  constructor(call: ResponseCall, counters: WriteCounters, opts: { readonly direct?: boolean; readonly maxMessageBytes?: number } = {}) {
    this.#call = call;
    this.#counters = counters;
    this.#maxMessageBytes = opts.maxMessageBytes ?? -1;
    this.#inner = opts.direct === false ? undefined : innerCalls.get(call.metadata);
    this.#sink = this.#inner === undefined ? undefined : frameSinkOf(this.#inner);
    // grpc-js listens for one 'error' of the HTTP/2 stream; a second one must not go unhandled.
    // Either one is followed by 'close', which grpc-js turns into the call's 'cancelled'.
    this.#sink?.on('error', ignore);
  }

  /** Whether responses go straight onto the HTTP/2 stream. */
  get direct(): boolean {
    return this.#sink !== undefined;
  }

  /** Send a response after the ones written before it; it leaves at the latest at `flush()`. */
  write(res: FramedResponse): void {
    const sink = this.#sink;
    const inner = this.#inner;
    if (sink === undefined || inner === undefined) {
      this.#counters.grpcWrites++;
      this.#call.write(res.bytes);
      return;
    }
    if (sink.destroyed || sink.closed) return; // grpc-js reports the end of the call
    if (!sink.headersSent) {
      inner.sendMetadata(new Metadata());
      if (!sink.headersSent) return; // cancelled meanwhile
    }
    if (!this.#corked) {
      sink.cork();
      this.#corked = true;
    }
    if (this.#maxMessageBytes >= 0 && res.bytes.length > this.#maxMessageBytes) {
      // grpc-js answers this with RESOURCE_EXHAUSTED; same HTTP/2 stream, so still in order.
      this.#counters.grpcWrites++;
      inner.sendMessage(res.bytes, ignore);
      return;
    }
    this.#counters.directWrites++;
    sink.write(res.frame);
  }

  /** Everything written since the last flush leaves together (one writev on the HTTP/2 stream). */
  flush(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#sink?.uncork();
  }
}

function frameSinkOf(inner: ServerInterceptingCallInterface): FrameSink | undefined {
  const stream = (inner as unknown as { readonly stream?: unknown }).stream;
  if (!(stream instanceof Duplex)) return undefined;
  const s = stream as Duplex & { readonly headersSent?: unknown; readonly respond?: unknown; readonly sendTrailers?: unknown };
  if (typeof s.headersSent !== 'boolean' || typeof s.respond !== 'function' || typeof s.sendTrailers !== 'function') return undefined;
  return s as Duplex & FrameSink;
}
