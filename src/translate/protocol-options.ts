/**
 * Upstream HTTP protocol settings. Out: a Cluster's `typed_extension_protocol_options` that makes
 * Envoy speak HTTP/2 to the upstream (gRPC needs it), through HttpProtocolOptions: the
 * deprecated `Cluster.http2_protocol_options` field is refused by newer Envoys.
 */
import type { ProtoObject } from '../xds/resources.js';
import { AnyType, FilterName } from './type-names.js';

export function http2ProtocolOptions(): ProtoObject {
  return {
    [FilterName.HttpProtocolOptions]: {
      '@type': AnyType.HttpProtocolOptions,
      explicit_http_config: { http2_protocol_options: {} },
    },
  };
}
