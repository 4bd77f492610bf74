/**
 * Upstream HTTP protocol settings. Out: a Cluster's `typed_extension_protocol_options`, through
 * HttpProtocolOptions (the deprecated `Cluster.http2_protocol_options` and
 * `max_requests_per_connection` fields are refused by newer Envoys): HTTP/2 to the upstream (gRPC
 * needs it) with an optional stream limit per connection, and an optional request limit per
 * connection for either protocol.
 */
import type { ProtoObject } from '../xds/resources.js';
import { AnyType, FilterName } from './type-names.js';

export interface UpstreamHttpOptions {
  readonly http2: boolean;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS towards the upstream; Envoy opens another connection beyond it. */
  readonly maxConcurrentStreams?: number;
  readonly maxRequestsPerConnection?: number;
}

/** Undefined when nothing differs from Envoy's default (HTTP/1.1, no limits). */
export function httpProtocolOptions(opts: UpstreamHttpOptions): ProtoObject | undefined {
  const { http2, maxConcurrentStreams, maxRequestsPerConnection } = opts;
  if (!http2 && maxRequestsPerConnection === undefined) return undefined;
  const options: Record<string, unknown> = {
    '@type': AnyType.HttpProtocolOptions,
    // HttpProtocolOptions requires its protocol choice, HTTP/1.1 included.
    explicit_http_config: http2
      ? { http2_protocol_options: maxConcurrentStreams === undefined ? {} : { max_concurrent_streams: { value: maxConcurrentStreams } } }
      : { http_protocol_options: {} },
  };
  if (maxRequestsPerConnection !== undefined) options.common_http_protocol_options = { max_requests_per_connection: { value: maxRequestsPerConnection } };
  return { [FilterName.HttpProtocolOptions]: options };
}

export function http2ProtocolOptions(): ProtoObject {
  return httpProtocolOptions({ http2: true }) as ProtoObject;
}
