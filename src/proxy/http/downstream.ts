/**
 * One request as the client sent it, whatever the codec. In: node:http's (req, res) for
 * HTTP/1.x, or an HTTP/2 stream and its headers. Out: the Downstream interface the router
 * filter (router/router.ts) works with: request head, body events, and respond / write / end /
 * reset, so one proxying code path serves both codecs. HTTP/2 responses carry trailers (gRPC
 * status) when the client announced `te: trailers`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { CANCEL, INTERNAL_ERROR, NO_ERROR } from '../codec/http2/frames.js';
import type { H2Stream, StreamHandler } from '../codec/http2/connection.js';
import { pushFields } from '../codec/http2/fields.js';
import { HOP_BY_HOP, type HeaderMap } from '../upstream/conn-pool.js';

export interface Downstream {
  readonly protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  /** The connection is TLS (the listener terminated it): x-forwarded-proto is https. */
  readonly secure: boolean;
  readonly hasBody: boolean;
  /** ip:port of the peer. */
  readonly remoteAddress: string;
  /** The peer's IP alone. */
  readonly remoteIp: string;
  readonly localAddress: string;
  readonly headersSent: boolean;
  /** One header, lower-case name; pseudo headers (':method', ':path', ...) work for every codec. */
  header(name: string): string | undefined;
  /** Forwardable request headers (no pseudo, hop-by-hop, named in `connection`, or host), copied into `into`. */
  copyHeaders(into: HeaderMap): void;
  /** Body events; call once. `onEnd` also fires at once for a request without a body. */
  readBody(onData: (chunk: Buffer) => void, onEnd: () => void): void;
  pauseBody(): void;
  resumeBody(): void;
  respond(status: number, headers: HeaderMap, endStream: boolean): void;
  /** false: wait for onDrain. */
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  end(trailers: HeaderMap | undefined): void;
  /** Abort the response (reset the stream / close the connection). */
  reset(): void;
  /** Called once if the client goes away before the response is complete. */
  onAbort(cb: () => void): void;
  /** Ask HTTP/1.1 clients to close the connection after this response (draining listeners). */
  closeAfterResponse(): void;
}

function joinValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/**
 * Header names a `connection` header nominates as hop-by-hop (RFC 9110 7.6.1), beyond the standard
 * ones; undefined when there are none (the common `keep-alive` / `close`).
 */
function nominated(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  let names: Set<string> | undefined;
  for (const part of joinValue(connection)?.split(',') ?? []) {
    const name = part.trim().toLowerCase();
    if (name !== '' && name !== 'close' && !HOP_BY_HOP.has(name)) {
      names ??= new Set();
      names.add(name);
    }
  }
  return names;
}

/**
 * `expect` is answered here, not forwarded: node's servers send the 100 Continue themselves, as
 * Envoy does by default (proxy_100_continue false). Headers named in `connection` stay here, as in
 * Envoy.
 */
function copyForwardable(src: HeaderMap, into: HeaderMap): void {
  const extra = nominated(src.connection);
  for (const k in src) {
    if (k.charCodeAt(0) === 58 /* ':' */ || k === 'host' || k === 'expect' || HOP_BY_HOP.has(k) || extra?.has(k)) continue;
    into[k] = src[k];
  }
}

export class Http1Downstream implements Downstream {
  readonly protocol: 'HTTP/1.0' | 'HTTP/1.1';
  readonly hasBody: boolean;
  private aborted = false;
  private finished = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.protocol = req.httpVersionMinor === 0 ? 'HTTP/1.0' : 'HTTP/1.1';
    const h = req.headers;
    this.hasBody = h['content-length'] !== undefined ? h['content-length'] !== '0' : h['transfer-encoding'] !== undefined;
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }
  get path(): string {
    return this.req.url ?? '/';
  }
  get authority(): string {
    return this.req.headers.host ?? '';
  }
  get scheme(): string {
    return this.secure ? 'https' : 'http';
  }
  get secure(): boolean {
    return (this.req.socket as TLSSocket).encrypted === true;
  }
  get remoteAddress(): string {
    const s = this.req.socket;
    return `${s.remoteAddress ?? ''}:${s.remotePort ?? 0}`;
  }
  get remoteIp(): string {
    return this.req.socket.remoteAddress ?? '';
  }
  get localAddress(): string {
    const s = this.req.socket;
    return `${s.localAddress ?? ''}:${s.localPort ?? 0}`;
  }
  get headersSent(): boolean {
    return this.res.headersSent;
  }

  header(name: string): string | undefined {
    if (name.charCodeAt(0) === 58) {
      if (name === ':authority') return this.authority;
      if (name === ':path') return this.path;
      if (name === ':method') return this.method;
      if (name === ':scheme') return this.scheme;
      return undefined;
    }
    return joinValue(this.req.headers[name]);
  }

  copyHeaders(into: HeaderMap): void {
    copyForwardable(this.req.headers, into);
  }

  readBody(onData: (chunk: Buffer) => void, onEnd: () => void): void {
    if (!this.hasBody) {
      onEnd();
      return;
    }
    this.req.on('data', onData);
    this.req.on('end', onEnd);
  }

  pauseBody(): void {
    this.req.pause();
  }
  resumeBody(): void {
    this.req.resume();
  }

  respond(status: number, headers: HeaderMap, endStream: boolean): void {
    const res = this.res;
    res.writeHead(status, headers as Record<string, string | string[]>);
    if (endStream) this.end();
  }

  write(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }

  onDrain(cb: () => void): void {
    this.res.once('drain', cb);
  }

  end(): void {
    // HTTP/1.1 has no trailers for a proxied response (gRPC needs HTTP/2); they are dropped.
    if (this.finished) return;
    this.finished = true;
    this.res.end();
  }

  reset(): void {
    this.finished = true;
    this.res.destroy();
  }

  onAbort(cb: () => void): void {
    this.res.once('close', () => {
      if (!this.res.writableFinished && !this.aborted) {
        this.aborted = true;
        cb();
      }
    });
  }

  closeAfterResponse(): void {
    this.res.shouldKeepAlive = false;
  }
}

/** The connection's addresses, computed once for all its streams. */
export interface ConnInfo {
  readonly secure: boolean;
  readonly remoteAddress: string;
  readonly remoteIp: string;
  readonly localAddress: string;
}

export function connInfo(socket: Socket): ConnInfo {
  return {
    secure: (socket as TLSSocket).encrypted === true,
    remoteAddress: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
    remoteIp: socket.remoteAddress ?? '',
    localAddress: `${socket.localAddress ?? ''}:${socket.localPort ?? 0}`,
  };
}

/** One request on an HTTP/2 connection of the own codec (codec/http2/server.ts). */
export class Http2Downstream implements Downstream, StreamHandler {
  readonly protocol = 'HTTP/2' as const;
  readonly hasBody: boolean;
  private readonly wantsTrailers: boolean;
  private sent = false;
  private ended = false;
  private aborted = false;
  private onBodyData: ((chunk: Buffer) => void) | undefined;
  private onBodyEnd: (() => void) | undefined;
  private drainCb: (() => void) | undefined;
  private abortCb: (() => void) | undefined;

  constructor(
    private readonly stream: H2Stream,
    private readonly headers: HeaderMap,
    endStream: boolean,
    private readonly info: ConnInfo,
  ) {
    this.hasBody = !endStream;
    this.wantsTrailers = headers.te === 'trailers';
  }

  get method(): string {
    return (this.headers[':method'] as string | undefined) ?? 'GET';
  }
  get path(): string {
    return (this.headers[':path'] as string | undefined) ?? '/';
  }
  get authority(): string {
    return (this.headers[':authority'] as string | undefined) ?? joinValue(this.headers.host) ?? '';
  }
  get scheme(): string {
    return (this.headers[':scheme'] as string | undefined) ?? (this.secure ? 'https' : 'http');
  }
  get secure(): boolean {
    return this.info.secure;
  }
  get remoteAddress(): string {
    return this.info.remoteAddress;
  }
  get remoteIp(): string {
    return this.info.remoteIp;
  }
  get localAddress(): string {
    return this.info.localAddress;
  }
  get headersSent(): boolean {
    return this.sent;
  }

  header(name: string): string | undefined {
    if (name === ':authority') return this.authority;
    return joinValue(this.headers[name]);
  }

  copyHeaders(into: HeaderMap): void {
    copyForwardable(this.headers, into);
    // The one TE value HTTP/2 allows; gRPC servers insist on it.
    if (this.wantsTrailers) into.te = 'trailers';
  }

  readBody(onData: (chunk: Buffer) => void, onEnd: () => void): void {
    if (!this.hasBody) {
      onEnd();
      return;
    }
    this.onBodyData = onData;
    this.onBodyEnd = onEnd;
    // The stream held what arrived before now.
    this.stream.resume();
  }

  pauseBody(): void {
    this.stream.pause();
  }
  resumeBody(): void {
    if (this.onBodyData) this.stream.resume();
  }

  respond(status: number, headers: HeaderMap, endStream: boolean): void {
    if (this.stream.closed || this.ended) return;
    this.sent = true;
    const fields: string[] = [':status', String(status)];
    pushFields(fields, headers);
    if (endStream) {
      this.ended = true;
      this.stream.sendHeaders(fields, true);
      this.stopRequest();
      return;
    }
    this.stream.sendHeaders(fields, false);
  }

  write(chunk: Buffer): boolean {
    if (this.stream.closed || this.ended) return true;
    return this.stream.write(chunk);
  }

  onDrain(cb: () => void): void {
    this.drainCb = cb;
  }

  end(trailers: HeaderMap | undefined): void {
    if (this.ended || this.stream.closed) return;
    this.ended = true;
    let fields: string[] | undefined;
    if (this.wantsTrailers && trailers) {
      fields = [];
      pushFields(fields, trailers);
    }
    this.stream.end(fields);
    this.stopRequest();
  }

  /**
   * A complete response before the whole request: ask the client to stop sending (RST_STREAM
   * NO_ERROR, RFC 9113 8.1), as Envoy does, instead of leaving the stream half open.
   */
  private stopRequest(): void {
    const s = this.stream;
    if (this.hasBody && !s.remoteEnded && !s.closed) {
      if (s.localEnded) s.reset(NO_ERROR);
      else s.stopAfterEnd = true;
    }
  }

  reset(): void {
    this.ended = true;
    this.stream.reset(this.sent ? INTERNAL_ERROR : CANCEL);
  }

  onAbort(cb: () => void): void {
    this.abortCb = cb;
  }

  closeAfterResponse(): void {
    // HTTP/2 draining is per connection (GOAWAY), done by the listener.
  }

  // StreamHandler: what the connection reports for this stream.

  onHeaders(): void {
    // Request trailers: not forwarded (the end of the request follows as onEnd).
  }

  onData(chunk: Buffer): void {
    this.onBodyData?.(chunk);
  }

  onEnd(): void {
    this.onBodyEnd?.();
  }

  onReset(): void {
    if (this.aborted) return;
    // The client reset the stream, or the connection went, before our response was complete.
    if (!this.ended || !this.stream.localEnded) {
      this.aborted = true;
      this.abortCb?.();
    }
  }

  onWritable(): void {
    const cb = this.drainCb;
    this.drainCb = undefined;
    cb?.();
  }
}
