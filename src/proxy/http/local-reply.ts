/**
 * Local replies (Envoy's Http::Utility::sendLocalReply): an answer the proxy writes itself (404 NR,
 * 503 UH, direct_response, redirects, timeouts). In: the Downstream, status, body and extra
 * headers. Out: the response written; a gRPC request gets a trailers-only gRPC error instead
 * (HTTP 200, grpc-status mapped from the HTTP status, grpc-message the body).
 */
import type { HeaderMap } from '../upstream/conn-pool.js';
import type { Downstream } from './downstream.js';

/** Envoy's HTTP -> gRPC status mapping for local replies. */
function grpcStatusOf(http: number): number {
  switch (http) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

/** What was written: the status on the wire, the response headers, and body bytes sent. */
export interface LocalReplySent {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly bytesOut: number;
}

/** Writes the reply; the caller has checked that no response head went out yet. */
export function sendLocalReply(down: Downstream, status: number, body: Buffer | string | undefined, grpc: boolean, extra?: HeaderMap): LocalReplySent {
  const headers: HeaderMap = { ...extra };
  if (grpc) {
    headers['content-type'] = 'application/grpc';
    headers['grpc-status'] = String(grpcStatusOf(status));
    headers['grpc-message'] = encodeURIComponent(typeof body === 'string' ? body : (body?.toString() ?? ''));
    down.respond(200, headers, true);
    return { status: 200, headers, bytesOut: 0 };
  }
  const bytes = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
  if (bytes && bytes.length > 0) {
    headers['content-type'] ??= 'text/plain';
    headers['content-length'] = String(bytes.length);
    down.respond(status, headers, false);
    down.write(bytes);
    down.end(undefined);
    return { status, headers, bytesOut: bytes.length };
  }
  headers['content-length'] = '0';
  down.respond(status, headers, true);
  return { status, headers, bytesOut: 0 };
}
