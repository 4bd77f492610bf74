/**
 * gRPC access logging (Envoy's ALS) to our sink. In: a listener's `access-log` setting. Out: the
 * AccessLog entry for the HCM (http_grpc) or the TCP proxy (tcp_grpc), and the HTTP/2 cluster
 * that reaches the sink (STATIC for an IP address, STRICT_DNS for a host name such as a compose
 * service), so no hand-written Envoy bootstrap is needed for it; over TLS when the setting has
 * `tls` (upstream-tls.ts).
 */
import { isIP } from 'node:net';
import type { AccessLogConfig } from '../config/schema.js';
import { accessLogClusterName } from '../config/views.js';
import type { ProtoObject } from '../xds/resources.js';
import { AnyType, FilterName } from './type-names.js';
import { http2ProtocolOptions } from './protocol-options.js';
import { upstreamTlsSocket } from './upstream-tls.js';

export function accessLogEntry(config: AccessLogConfig, defaultLogName: string, kind: 'http' | 'tcp'): ProtoObject {
  const grpc = config.grpc;
  const common: Record<string, unknown> = {
    log_name: grpc['log-name'] ?? defaultLogName,
    grpc_service: { envoy_grpc: { cluster_name: accessLogClusterName(grpc) } },
    transport_api_version: 'V3',
  };
  if (grpc['buffer-size-bytes'] !== undefined) common.buffer_size_bytes = { value: grpc['buffer-size-bytes'] };
  if (grpc['flush-interval'] !== undefined) common.buffer_flush_interval = grpc['flush-interval'];
  return {
    name: kind === 'http' ? FilterName.HttpGrpcAccessLog : FilterName.TcpGrpcAccessLog,
    typed_config: {
      '@type': kind === 'http' ? AnyType.HttpGrpcAccessLogConfig : AnyType.TcpGrpcAccessLogConfig,
      common_config: common,
    },
  };
}

/** The sink's cluster: HTTP/2 (gRPC) to the address, or to every address its host name resolves to. */
export function accessLogCluster(config: AccessLogConfig): ProtoObject {
  const grpc = config.grpc;
  const name = accessLogClusterName(grpc);
  return {
    name,
    type: isIP(grpc.address) !== 0 ? 'STATIC' : 'STRICT_DNS',
    // `localhost` and most compose networks resolve IPv4 first; Envoy's AUTO would try IPv6 first.
    ...(isIP(grpc.address) !== 0 ? {} : { dns_lookup_family: 'V4_PREFERRED' }),
    connect_timeout: { seconds: 1, nanos: 0 },
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          locality: {},
          lb_endpoints: [{ endpoint: { address: { socket_address: { protocol: 'TCP', address: grpc.address, port_value: grpc.port } } } }],
        },
      ],
    },
    typed_extension_protocol_options: http2ProtocolOptions(),
    ...(grpc.tls !== undefined ? { transport_socket: upstreamTlsSocket(grpc.tls) } : {}),
  };
}
