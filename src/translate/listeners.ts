/**
 * `listener.<name>` of type http or tcp -> Envoy Listener (`type: grpc` is grpc.ts). An http
 * listener runs the HTTP connection manager with its routes from RDS over ADS (RouteConfiguration
 * named after the listener) and the router filter last; a tcp listener runs tcp_proxy to its
 * cluster. Either may stream access logs to our gRPC sink, and terminate TLS (downstream-tls.ts).
 */
import type { SocketListenerConfig } from '../config/schema.js';
import type { ProtoObject } from '../xds/resources.js';
import { accessLogEntry } from './access-log.js';
import { downstreamTlsSocket } from './downstream-tls.js';
import { ADS_SOURCE, AnyType, FilterName } from './type-names.js';

export function listenerResource(name: string, listener: SocketListenerConfig): ProtoObject {
  const statPrefix = listener['stat-prefix'] ?? name;
  const filter = listener.type === 'tcp' ? tcpProxy(name, statPrefix, listener) : httpConnectionManager(name, statPrefix, listener);
  const chain: Record<string, unknown> = { filters: [filter] };
  // HTTP listeners offer HTTP/2 and HTTP/1.1 by ALPN; a TCP proxy passes whatever runs inside.
  if (listener.tls) chain.transport_socket = downstreamTlsSocket(listener.tls, listener.type === 'tcp' ? [] : ['h2', 'http/1.1']);
  return {
    name,
    address: { socket_address: { protocol: 'TCP', address: listener.address, port_value: listener.port } },
    filter_chains: [chain],
  };
}

function httpConnectionManager(name: string, statPrefix: string, listener: SocketListenerConfig): ProtoObject {
  const hcm: Record<string, unknown> = {
    '@type': AnyType.HttpConnectionManager,
    stat_prefix: statPrefix,
    codec_type: 'AUTO',
    rds: { route_config_name: name, config_source: ADS_SOURCE },
    // The router must be the last HTTP filter; it is the only one we install.
    http_filters: [{ name: FilterName.Router, typed_config: { '@type': AnyType.Router } }],
  };
  if (listener['access-log']) hcm.access_log = [accessLogEntry(listener['access-log'], name, 'http')];
  if (listener['request-timeout']) hcm.request_timeout = listener['request-timeout'];
  if (listener['idle-timeout']) hcm.common_http_protocol_options = { idle_timeout: listener['idle-timeout'] };
  return { name: FilterName.HttpConnectionManager, typed_config: hcm };
}

function tcpProxy(name: string, statPrefix: string, listener: SocketListenerConfig): ProtoObject {
  const proxy: Record<string, unknown> = {
    '@type': AnyType.TcpProxy,
    stat_prefix: statPrefix,
    cluster: listener.cluster,
  };
  if (listener['idle-timeout']) proxy.idle_timeout = listener['idle-timeout'];
  if (listener['access-log']) proxy.access_log = [accessLogEntry(listener['access-log'], name, 'tcp')];
  return { name: FilterName.TcpProxy, typed_config: proxy };
}
