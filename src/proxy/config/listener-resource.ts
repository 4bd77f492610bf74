/**
 * Listener (LDS) -> ListenerModel. In: a decoded envoy.config.listener.v3.Listener. Out: its
 * address and its one terminal network filter: the HTTP connection manager (codec, routes from
 * RDS or inline, the router as only HTTP filter, timeouts, forwarded headers, access logs, and a
 * connection_limit filter in front of it) or the TCP proxy (cluster or weighted clusters, idle
 * timeout, connect attempts, access logs). Refused with a ResourceError naming the field: several
 * filter chains or chain matching, TLS, listener filters, other network or HTTP filters, API
 * listeners.
 */
import type { FieldReader } from './field-reader.js';
import { readSocketAddress } from './endpoint-resource.js';
import { readAdsSource } from './cluster-resource.js';
import { readRouteConfiguration, type RouteConfigModel } from './route-resource.js';
import { readAccessLogs, type AccessLogModel } from './access-log-resource.js';

const T = 'type.googleapis.com/envoy.extensions.';
export const HCM_TYPE = `${T}filters.network.http_connection_manager.v3.HttpConnectionManager`;
export const TCP_PROXY_TYPE = `${T}filters.network.tcp_proxy.v3.TcpProxy`;
const ROUTER_TYPE = `${T}filters.http.router.v3.Router`;
const CONNECTION_LIMIT_TYPE = `${T}filters.network.connection_limit.v3.ConnectionLimit`;

/** envoy.filters.network.connection_limit: connections over the cap are closed (after `delayMs`). */
export interface ConnectionLimitModel {
  readonly statPrefix: string;
  readonly maxConnections: number;
  readonly delayMs: number;
}

export interface HcmModel {
  readonly kind: 'http';
  readonly statPrefix: string;
  readonly codec: 'AUTO' | 'HTTP1' | 'HTTP2';
  /** RDS name, or undefined with `inlineRoutes` set. */
  readonly rdsName: string | undefined;
  readonly inlineRoutes: RouteConfigModel | undefined;
  /** 0 disables (every timeout here). */
  readonly requestTimeoutMs: number;
  /** From the first byte of a request's headers to the last (request_headers_timeout). */
  readonly requestHeadersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** No activity on a request in either direction (stream_idle_timeout; Envoy: 5 min). */
  readonly streamIdleTimeoutMs: number;
  /**
   * HTTP/1 vs HTTP/2 detection (codec AUTO) must see the first bytes this soon: the listener's
   * listener_filters_timeout (the sniffing is our http_inspector), Envoy's default 15 s. On expiry
   * the connection is closed, or handed to HTTP/1 with continue_on_listener_filters_timeout.
   */
  readonly sniffTimeoutMs: number;
  readonly sniffTimeoutContinue: boolean;
  readonly connectionLimit: ConnectionLimitModel | undefined;
  readonly generateRequestId: boolean;
  readonly h2MaxConcurrentStreams: number;
  readonly stripPort: 'none' | 'matching' | 'any';
  /** The data plane is the edge: append the peer to x-forwarded-for, set x-forwarded-proto itself. */
  readonly useRemoteAddress: boolean;
  readonly xffNumTrustedHops: number;
  readonly skipXffAppend: boolean;
  readonly accessLogs: readonly AccessLogModel[];
}

export interface TcpProxyModel {
  readonly kind: 'tcp';
  readonly statPrefix: string;
  readonly clusters: ReadonlyArray<{ readonly name: string; readonly weight: number }>;
  readonly totalWeight: number;
  readonly idleTimeoutMs: number;
  readonly maxConnectAttempts: number;
  readonly hashSourceIp: boolean;
  readonly accessLogs: readonly AccessLogModel[];
}

export interface ListenerModel {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly filter: HcmModel | TcpProxyModel;
}

export function readListener(r: FieldReader): ListenerModel {
  const name = r.requiredString('name');
  const { address, port } = readSocketAddress(r.message('address'), r, 'address');
  r.ignore('stat_prefix', 'metadata', 'per_connection_buffer_limit_bytes', 'drain_type');
  const sniff: Sniff = {
    sniffTimeoutMs: r.durationMs('listener_filters_timeout') ?? 15_000,
    sniffTimeoutContinue: r.bool('continue_on_listener_filters_timeout'),
  };
  r.ignore('tcp_fast_open_queue_length', 'traffic_direction', 'connection_balance_config', 'reuse_port', 'enable_reuse_port', 'tcp_backlog_size', 'freebind');
  r.ignore('ignore_global_conn_limit', 'max_connections_to_accept_per_socket_event', 'bypass_overload_manager');
  r.refuse('additional_addresses', 'additional addresses are not implemented');
  r.refuse('filter_chain_matcher', 'filter chain matching is not implemented');
  r.refuse('default_filter_chain', 'default filter chains are not implemented');
  r.refuse('use_original_dst', 'original destination is not implemented');
  r.refuse('listener_filters', 'listener filters are not implemented');
  r.refuse('transparent', 'transparent listeners are not implemented');
  r.refuse('socket_options', 'socket options are not implemented');
  r.refuse('udp_listener_config', 'UDP is not implemented');
  r.refuse('api_listener', 'API listeners are for proxyless gRPC clients, not for a proxy');
  r.refuse('internal_listener', 'internal listeners are not implemented');
  r.refuse('access_log', 'listener-level access logs are not implemented (configure them on the HCM or TCP proxy)');
  r.refuse('enable_mptcp', 'MPTCP is not implemented');
  r.refuse('deprecated_v1', 'not implemented');
  if (r.wrappedBool('bind_to_port') === false) throw r.error('bind_to_port', 'listeners that do not bind are not implemented');
  const chains = r.list('filter_chains');
  if (chains.length !== 1) throw r.error('filter_chains', `exactly one filter chain is supported (got ${chains.length})`);
  const chain = chains[0] as FieldReader;
  chain.ignore('name', 'metadata', 'transport_socket_connect_timeout');
  const fcm = chain.message('filter_chain_match');
  if (fcm) fcm.finish();
  chain.refuse('transport_socket', 'TLS is not implemented');
  chain.refuse('use_proxy_proto', 'PROXY protocol is not implemented');
  chain.refuse('on_demand_configuration', 'not implemented');
  const filters = chain.list('filters').map((f) => {
    f.ignore('name');
    f.refuse('config_discovery', 'filter config discovery is not implemented');
    const tc = f.message('typed_config');
    if (!tc) throw f.error('typed_config', 'must be set');
    return { tc, type: tc.anyType() };
  });
  const count = filters.length;
  const limit = count === 2 && filters[0]?.type === CONNECTION_LIMIT_TYPE ? filters.shift() : undefined;
  if (filters.length !== 1) {
    throw chain.error('filters', `exactly one network filter (http_connection_manager or tcp_proxy, optionally after connection_limit) is supported (got ${count})`);
  }
  const { tc, type } = filters[0] as (typeof filters)[number];
  let filter: HcmModel | TcpProxyModel;
  if (type === HCM_TYPE) filter = readHcm(tc, sniff, limit ? readConnectionLimit(limit.tc) : undefined);
  else if (type === TCP_PROXY_TYPE) {
    if (limit) throw limit.tc.error('@type', 'connection_limit is implemented in front of http_connection_manager only');
    filter = readTcpProxy(tc);
  } else throw tc.error('@type', `network filter ${type} is not implemented`);
  return Object.freeze({ name, address, port, filter });
}

type Sniff = Pick<HcmModel, 'sniffTimeoutMs' | 'sniffTimeoutContinue'>;

/**
 * Headers must arrive within this unless request_headers_timeout says otherwise. Envoy's own
 * default is none (a client sending half a request line holds its connection until the 1 h idle
 * timeout); 10 s is the value Envoy's edge best practices recommend.
 */
const DEFAULT_REQUEST_HEADERS_TIMEOUT_MS = 10_000;

function readConnectionLimit(r: FieldReader): ConnectionLimitModel {
  const statPrefix = r.requiredString('stat_prefix');
  const maxConnections = r.wrapped('max_connections');
  if (maxConnections === undefined || maxConnections < 1) throw r.error('max_connections', 'must be set (>= 1)');
  const enabled = r.message('runtime_enabled');
  if (enabled) {
    // No runtime here: the flag's default value decides.
    enabled.ignore('runtime_key');
    if (enabled.wrappedBool('default_value') === false) throw enabled.error('default_value', 'a disabled connection_limit is not implemented (leave the filter out)');
  }
  return Object.freeze({ statPrefix, maxConnections, delayMs: r.durationMs('delay') ?? 0 });
}

function readHcm(r: FieldReader, sniff: Sniff, connectionLimit: ConnectionLimitModel | undefined): HcmModel {
  const statPrefix = r.requiredString('stat_prefix');
  const codec = r.enumOf('codec_type', ['AUTO', 'HTTP1', 'HTTP2'] as const, 'AUTO');
  const rds = r.message('rds');
  const rc = r.message('route_config');
  r.refuse('scoped_routes', 'scoped routes are not implemented');
  let rdsName: string | undefined;
  let inlineRoutes: RouteConfigModel | undefined;
  if (rds) {
    const source = rds.message('config_source');
    if (!source) throw rds.error('config_source', 'must be set');
    readAdsSource(source);
    rdsName = rds.requiredString('route_config_name');
  } else if (rc) {
    inlineRoutes = readRouteConfiguration(rc);
  } else {
    throw r.error('rds', 'the HTTP connection manager needs rds or route_config');
  }
  const filters = r.list('http_filters');
  filters.forEach((hf, i) => {
    const name = hf.requiredString('name');
    hf.ignore('is_optional', 'disabled');
    hf.refuse('config_discovery', 'filter config discovery is not implemented');
    const tc = hf.message('typed_config');
    const type = tc?.anyType();
    if (type !== ROUTER_TYPE && !(type === undefined && (name === 'envoy.filters.http.router' || name === 'envoy.router'))) {
      throw hf.error('', `HTTP filter ${name}${type ? ` (${type})` : ''} is not implemented; the router is the only HTTP filter`);
    }
    tc?.ignore('dynamic_stats', 'start_child_span', 'suppress_envoy_headers', 'suppress_grpc_request_failure_code_stats');
    tc?.refuse('upstream_log', 'upstream access logs are not implemented');
    tc?.refuse('upstream_http_filters', 'upstream HTTP filters are not implemented');
    tc?.refuse('strict_check_headers', 'not implemented');
    tc?.refuse('respect_expected_rq_timeout', 'not implemented');
    if (i !== filters.length - 1) throw hf.error('', 'the router must be the last HTTP filter');
  });
  let idleTimeoutMs = 3_600_000;
  const common = r.message('common_http_protocol_options');
  if (common) {
    idleTimeoutMs = common.durationMs('idle_timeout') ?? idleTimeoutMs;
    common.ignore('max_connection_duration', 'max_headers_count', 'headers_with_underscores_action', 'max_requests_per_connection', 'max_response_headers_kb');
    common.refuse('max_stream_duration', 'not implemented');
  }
  let h2MaxConcurrentStreams = 2147483647;
  const h2 = r.message('http2_protocol_options');
  if (h2) {
    h2MaxConcurrentStreams = h2.wrapped('max_concurrent_streams') ?? h2MaxConcurrentStreams;
    h2.ignore('initial_stream_window_size', 'initial_connection_window_size', 'hpack_table_size', 'connection_keepalive', 'max_outbound_frames', 'max_outbound_control_frames');
    h2.ignore('max_consecutive_inbound_frames_with_empty_payload', 'max_inbound_priority_frames_per_stream', 'max_inbound_window_update_frames_per_data_frame_sent');
    h2.ignore('override_stream_error_on_invalid_http_message', 'stream_error_on_invalid_http_messaging');
    h2.refuse('allow_connect', 'CONNECT is not implemented');
  }
  r.ignore('http_protocol_options', 'add_user_agent', 'tracing', 'server_name', 'server_header_transformation', 'scheme_header_transformation');
  r.ignore('max_request_headers_kb', 'drain_timeout', 'delayed_close_timeout');
  r.ignore('internal_address_config', 'via', 'preserve_external_request_id', 'always_set_request_id_in_response', 'forward_client_cert_details');
  r.ignore('set_current_client_cert_details', 'proxy_100_continue', 'represent_ipv4_remote_address_as_ipv4_mapped_ipv6', 'request_id_extension');
  r.ignore('stream_error_on_invalid_http_message', 'proxy_status_config', 'append_x_forwarded_port', 'add_proxy_protocol_connection_state');
  r.ignore('strip_trailing_host_dot', 'append_local_overload');
  r.refuse('original_ip_detection_extensions', 'not implemented');
  r.refuse('early_header_mutation_extensions', 'not implemented');
  r.refuse('local_reply_config', 'local reply mapping is not implemented');
  r.refuse('typed_header_validation_config', 'not implemented');
  r.refuse('path_with_escaped_slashes_action', 'not implemented');
  r.refuse('http3_protocol_options', 'HTTP/3 is not implemented');
  if (r.wrappedBool('normalize_path') === true) throw r.error('normalize_path', 'path normalisation is not implemented');
  if (r.bool('merge_slashes')) throw r.error('merge_slashes', 'not implemented');
  for (const u of r.list('upgrade_configs')) {
    u.requiredString('upgrade_type');
    if (u.wrappedBool('enabled') !== false) throw u.error('', 'protocol upgrades (WebSocket) are not implemented');
    u.refuse('filters', 'not implemented');
  }
  const stripPort = r.bool('strip_any_host_port') ? 'any' : r.bool('strip_matching_host_port') ? 'matching' : 'none';
  return Object.freeze({
    kind: 'http' as const,
    statPrefix,
    codec,
    rdsName,
    inlineRoutes,
    requestTimeoutMs: r.durationMs('request_timeout') ?? 0,
    requestHeadersTimeoutMs: r.durationMs('request_headers_timeout') ?? DEFAULT_REQUEST_HEADERS_TIMEOUT_MS,
    idleTimeoutMs,
    streamIdleTimeoutMs: r.durationMs('stream_idle_timeout') ?? 300_000,
    ...sniff,
    connectionLimit,
    generateRequestId: r.wrappedBool('generate_request_id') ?? true,
    h2MaxConcurrentStreams,
    stripPort,
    useRemoteAddress: r.wrappedBool('use_remote_address') ?? false,
    xffNumTrustedHops: r.number('xff_num_trusted_hops') ?? 0,
    skipXffAppend: r.bool('skip_xff_append'),
    accessLogs: Object.freeze(readAccessLogs(r, 'access_log', 'http')),
  });
}

function readTcpProxy(r: FieldReader): TcpProxyModel {
  const statPrefix = r.requiredString('stat_prefix');
  const cluster = r.string('cluster') || undefined;
  const wc = r.message('weighted_clusters');
  r.refuse('on_demand', 'on-demand clusters are not implemented');
  r.refuse('metadata_match', 'subset load balancing is not implemented');
  r.refuse('tunneling_config', 'tunneling is not implemented');
  r.refuse('max_downstream_connection_duration', 'not implemented');
  r.refuse('downstream_idle_timeout', 'not implemented');
  r.refuse('upstream_idle_timeout', 'not implemented');
  r.ignore('access_log_flush_interval', 'access_log_options', 'backoff_options', 'flush_access_log_on_connected');
  let clusters: Array<{ name: string; weight: number }>;
  if (cluster) {
    if (wc) throw r.error('weighted_clusters', 'cannot be combined with cluster');
    clusters = [{ name: cluster, weight: 1 }];
  } else if (wc) {
    clusters = wc.list('clusters').map((c) => {
      c.refuse('metadata_match', 'subset load balancing is not implemented');
      return { name: c.requiredString('name'), weight: c.number('weight') ?? 0 };
    });
    clusters = clusters.filter((c) => c.weight > 0);
    if (clusters.length === 0) throw wc.error('clusters', 'needs a cluster with weight >= 1');
  } else {
    throw r.error('cluster', 'the TCP proxy needs cluster or weighted_clusters');
  }
  const hashPolicies = r.list('hash_policy');
  let hashSourceIp = false;
  for (const h of hashPolicies) {
    const sip = h.message('source_ip');
    h.refuse('filter_state', 'not implemented');
    if (sip) hashSourceIp = true;
  }
  const attempts = r.wrapped('max_connect_attempts') ?? 1;
  return Object.freeze({
    kind: 'tcp' as const,
    statPrefix,
    clusters: Object.freeze(clusters.map((c) => Object.freeze(c))),
    totalWeight: clusters.reduce((s, c) => s + c.weight, 0),
    idleTimeoutMs: r.has('idle_timeout') ? (r.durationMs('idle_timeout') ?? 0) : 3_600_000,
    maxConnectAttempts: Math.max(1, attempts),
    hashSourceIp,
    accessLogs: Object.freeze(readAccessLogs(r, 'access_log', 'tcp')),
  });
}
