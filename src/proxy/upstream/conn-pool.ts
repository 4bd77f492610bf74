/**
 * The contract between a request being proxied (the router filter, the shadow writer, the
 * health checker) and the connection pools (http1-conn-pool.ts, http2-conn-pool.ts). In: a
 * host, request head and body chunks. Out: callbacks for the response head, body, trailers, end, or a classified
 * failure (connect failure / timeout, reset before or after the response started) that retry
 * and outlier logic act on.
 */
import type { ClusterStats } from '../stats.js';
import type { UpstreamTlsModel } from '../config/tls-context.js';

/** Response or request headers as a plain object with lower-case names. */
export type HeaderMap = Record<string, string | string[] | undefined>;

export type UpstreamFailure =
  /** TCP connect refused / unreachable. */
  | 'connect_failure'
  | 'connect_timeout'
  /** The connection or stream broke before response headers. */
  | 'reset_before_response'
  /** The HTTP/2 peer refused the stream (REFUSED_STREAM): safe to retry. */
  | 'refused_stream'
  /** Broke after response headers were received. */
  | 'reset_after_response'
  /** Circuit breaker: too many pending requests for a connection. */
  | 'overflow';

export interface UpstreamCallbacks {
  onUpstreamHeaders(status: number, headers: HeaderMap, endStream: boolean): void;
  onUpstreamData(chunk: Buffer): void;
  onUpstreamTrailers(trailers: HeaderMap): void;
  onUpstreamEnd(): void;
  onUpstreamError(failure: UpstreamFailure, err: Error | undefined): void;
}

export interface UpstreamRequest {
  /** false: wait for onDrain before writing more. */
  write(chunk: Buffer): boolean;
  end(): void;
  /** Stop the request; no further callbacks. */
  abort(): void;
  /** Response-side flow control. */
  pause(): void;
  resume(): void;
  onDrain(cb: () => void): void;
}

export interface Http2Limits {
  readonly connectTimeoutMs: number;
  readonly maxConcurrentStreams: number;
  /** 0: no limit; otherwise the connection takes no new streams after this many and then closes. */
  readonly maxRequestsPerConnection: number;
  readonly idleTimeoutMs: number;
  readonly stats: ClusterStats;
  /** The cluster's TLS to its hosts; undefined: plaintext (h2c). */
  readonly tls?: UpstreamTlsModel | undefined;
}

/**
 * A host's HTTP/2 connections (Http2HostPool in http2-conn-pool.ts) as the host holds them and
 * its cluster drives them. Declared here, not there, so host.ts and the pool do not import
 * each other.
 */
export interface HostHttp2Pool {
  update(limits: Http2Limits): void;
  request(headers: HeaderMap, endStream: boolean, cb: UpstreamCallbacks): UpstreamRequest;
  close(): void;
}

/** Headers that describe one connection and are never forwarded (RFC 9110 7.6.1, RFC 9113 8.2.2). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'te',
]);

/**
 * The upstream's response headers or trailers as they may be forwarded: `src` itself when it holds
 * nothing to strip, else a filtered copy (responseHeaders). Reusing the object saves a copy per
 * response on the gRPC path: an HTTP/2 upstream's headers never hold hop-by-hop fields (nghttp2
 * refuses them) and their one pseudo header, ':status', an HTTP/2 downstream overwrites anyway
 * (`pseudoOk`); for an HTTP/1 downstream a ':status' key must go, so that takes the copy.
 */
export function forwardableResponseHeaders(src: HeaderMap, pseudoOk: boolean): HeaderMap {
  if (!pseudoOk && src[':status'] !== undefined) return responseHeaders(src);
  for (const k of HOP_BY_HOP) if (src[k] !== undefined) return responseHeaders(src);
  return src;
}

/** Copies forwardable response headers (no hop-by-hop, no pseudo headers). */
export function responseHeaders(src: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  for (const k in src) {
    if (k.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(k)) continue;
    out[k] = src[k];
  }
  return out;
}
