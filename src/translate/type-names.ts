/**
 * Names translate writes into resources: Any type URLs of the typed configs we pack and the
 * well-known filter / extension names Envoy looks them up by. One list, so a misspelling (which
 * protobufjs would turn into an empty Any) is fixed in one place and checked by the tests.
 */
import { TYPE_PREFIX } from '../xds/resource-types.js';

export const AnyType = {
  HttpConnectionManager: `${TYPE_PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  TcpProxy: `${TYPE_PREFIX}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  Router: `${TYPE_PREFIX}envoy.extensions.filters.http.router.v3.Router`,
  HttpProtocolOptions: `${TYPE_PREFIX}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
  HttpGrpcAccessLogConfig: `${TYPE_PREFIX}envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig`,
  TcpGrpcAccessLogConfig: `${TYPE_PREFIX}envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig`,
  DownstreamTlsContext: `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  UpstreamTlsContext: `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
} as const;

export const FilterName = {
  HttpConnectionManager: 'envoy.filters.network.http_connection_manager',
  TcpProxy: 'envoy.filters.network.tcp_proxy',
  Router: 'envoy.filters.http.router',
  HttpGrpcAccessLog: 'envoy.access_loggers.http_grpc',
  TcpGrpcAccessLog: 'envoy.access_loggers.tcp_grpc',
  TlsTransportSocket: 'envoy.transport_sockets.tls',
  /** Key of typed_extension_protocol_options for upstream HTTP settings. */
  HttpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
} as const;

/** A ConfigSource that says "over the ADS stream you already have", v3 resources. */
export const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' } as const;
