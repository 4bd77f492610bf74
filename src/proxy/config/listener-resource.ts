/**
 * Listener (LDS) -> ListenerModel. In: a decoded envoy.config.listener.v3.Listener. Out: its
 * address and its one terminal network filter: the HTTP connection manager (codec, routes from
 * RDS or inline, the router as only HTTP filter, timeouts, forwarded headers, access logs, and a
 * connection_limit filter in front of it) or the TCP proxy (cluster or weighted clusters, idle
 * timeout, connect attempts, access logs). Refused with a ResourceError naming the field: several
 * filter chains or chain matching, listener filters, other network or HTTP filters, API
 * listeners. The filter chain's transport_socket terminates TLS (tls-context.ts).
 */
import type { FieldReader } from './field-reader.js';
import { readSocketAddress } from './endpoint-resource.js';
import { readAdsSource } from './cluster-resource.js';
import { readRouteConfiguration, type RouteConfigModel } from './route-resource.js';
import { readAccessLogs, type AccessLogModel } from './access-log-resource.js';
import { SUPPORT } from './support.js';
import { readDownstreamTransportSocket, type DownstreamTlsModel } from './tls-context.js';

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
  /**
   * max_request_headers_kb (Envoy: 60, at most 8192) in bytes: larger request headers get 431 over
   * HTTP/1 and RST_STREAM INTERNAL_ERROR over HTTP/2, as from Envoy.
   */
  readonly maxRequestHeadersBytes: number;
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
  /** TLS terminated on accepted connections (the filter chain's transport_socket); undefined: plaintext. */
  readonly tls: DownstreamTlsModel | undefined;
  /** transport_socket_connect_timeout: the TLS handshake must end within it; 0 = no limit (Envoy's default). */
  readonly tlsHandshakeTimeoutMs: number;
}

export function readListener(r: FieldReader): ListenerModel {
  const name = r.requiredString('name');
  const { address, port } = readSocketAddress(r.message('address'), r, 'address');
  r.declare(SUPPORT.Listener);
  const sniff: Sniff = {
    sniffTimeoutMs: r.durationMs('listener_filters_timeout') ?? 15_000,
    sniffTimeoutContinue: r.bool('continue_on_listener_filters_timeout'),
  };
  if (r.wrappedBool('bind_to_port') === false) throw r.error('bind_to_port', 'listeners that do not bind are not implemented');
  const chains = r.list('filter_chains');
  if (chains.length !== 1) throw r.error('filter_chains', `exactly one filter chain is supported (got ${chains.length})`);
  const chain = chains[0] as FieldReader;
  chain.declare(SUPPORT['Listener.filter_chains']);
  const fcm = chain.message('filter_chain_match');
  if (fcm) fcm.finish();
  const ts = chain.message('transport_socket');
  const tls = ts ? readDownstreamTransportSocket(ts) : undefined;
  const tlsHandshakeTimeoutMs = chain.durationMs('transport_socket_connect_timeout') ?? 0;
  const filters = chain.list('filters').map((f) => {
    f.declare(SUPPORT['Listener.filter_chains.filters']);
    const tc = f.message('typed_config');
    if (!tc) throw f.error('typed_config', 'must be set');
    return { tc, type: tc.anyType() };
  });
  const count = filters.length;
  const limit = count === 2 && filters[0]?.type === CONNECTION_LIMIT_TYPE ? filters.shift() : undefined;
  if (filters.length !== 1) {
    throw chain.error(
      'filters',
      `exactly one network filter (http_connection_manager or tcp_proxy, optionally after connection_limit) is supported (got ${count})`,
    );
  }
  const { tc, type } = filters[0] as (typeof filters)[number];
  let filter: HcmModel | TcpProxyModel;
  if (type === HCM_TYPE) filter = readHcm(tc, sniff, limit ? readConnectionLimit(limit.tc) : undefined);
  else if (type === TCP_PROXY_TYPE) {
    if (limit) throw limit.tc.error('@type', 'connection_limit is implemented in front of http_connection_manager only');
    filter = readTcpProxy(tc);
  } else throw tc.error('@type', `network filter ${type} is not implemented`);
  return Object.freeze({ name, address, port, filter, tls, tlsHandshakeTimeoutMs });
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
    enabled.declare(SUPPORT['ConnectionLimit.runtime_enabled']);
    if (enabled.wrappedBool('default_value') === false)
      throw enabled.error('default_value', 'a disabled connection_limit is not implemented (leave the filter out)');
  }
  return Object.freeze({ statPrefix, maxConnections, delayMs: r.durationMs('delay') ?? 0 });
}

function readHcm(r: FieldReader, sniff: Sniff, connectionLimit: ConnectionLimitModel | undefined): HcmModel {
  const statPrefix = r.requiredString('stat_prefix');
  const codec = r.enumOf('codec_type', ['AUTO', 'HTTP1', 'HTTP2'] as const, 'AUTO');
  const rds = r.message('rds');
  const rc = r.message('route_config');
  r.declare(SUPPORT.HttpConnectionManager);
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
    hf.declare(SUPPORT['HttpConnectionManager.http_filters']);
    const tc = hf.message('typed_config');
    const type = tc?.anyType();
    if (type !== ROUTER_TYPE && !(type === undefined && (name === 'envoy.filters.http.router' || name === 'envoy.router'))) {
      throw hf.error('', `HTTP filter ${name}${type ? ` (${type})` : ''} is not implemented; the router is the only HTTP filter`);
    }
    tc?.declare(SUPPORT.Router);
    if (i !== filters.length - 1) throw hf.error('', 'the router must be the last HTTP filter');
  });
  let idleTimeoutMs = 3_600_000;
  const common = r.message('common_http_protocol_options');
  if (common) {
    idleTimeoutMs = common.durationMs('idle_timeout') ?? idleTimeoutMs;
    common.declare(SUPPORT['HttpConnectionManager.common_http_protocol_options']);
  }
  let h2MaxConcurrentStreams = 2147483647;
  const h2 = r.message('http2_protocol_options');
  if (h2) {
    h2MaxConcurrentStreams = h2.wrapped('max_concurrent_streams') ?? h2MaxConcurrentStreams;
    h2.declare(SUPPORT['HttpConnectionManager.http2_protocol_options']);
  }
  if (r.wrappedBool('normalize_path') === true) throw r.error('normalize_path', 'path normalisation is not implemented');
  if (r.bool('merge_slashes')) throw r.error('merge_slashes', 'not implemented');
  for (const u of r.list('upgrade_configs')) {
    u.requiredString('upgrade_type');
    if (u.wrappedBool('enabled') !== false) throw u.error('', 'protocol upgrades (WebSocket) are not implemented');
    u.declare(SUPPORT['HttpConnectionManager.upgrade_configs']);
  }
  const stripPort = r.bool('strip_any_host_port') ? 'any' : r.bool('strip_matching_host_port') ? 'matching' : 'none';
  const headersKb = r.wrapped('max_request_headers_kb') ?? 60;
  if (!Number.isInteger(headersKb) || headersKb < 1 || headersKb > 8192) throw r.error('max_request_headers_kb', `${headersKb}: expected 1 to 8192`);
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
    maxRequestHeadersBytes: headersKb * 1024,
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
  r.declare(SUPPORT.TcpProxy);
  let clusters: Array<{ name: string; weight: number }>;
  if (cluster) {
    if (wc) throw r.error('weighted_clusters', 'cannot be combined with cluster');
    clusters = [{ name: cluster, weight: 1 }];
  } else if (wc) {
    clusters = wc.list('clusters').map((c) => {
      c.declare(SUPPORT['TcpProxy.weighted_clusters.clusters']);
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
    h.declare(SUPPORT['TcpProxy.hash_policy']);
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
