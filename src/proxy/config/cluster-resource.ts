/**
 * Cluster (CDS) -> ClusterModel. In: a decoded envoy.config.cluster.v3.Cluster. Out: a frozen
 * model of what the proxy does with it (discovery, connect timeout, lb policy and its knobs,
 * locality weighting, panic threshold, HTTP/1.1 or HTTP/2 upstream, active health check,
 * outlier detection, circuit breakers), or a ResourceError naming the field it cannot honour.
 *
 * Supported discovery: EDS over the ADS stream, STATIC with an inline load_assignment (the
 * access-log sink's cluster), and STRICT_DNS / LOGICAL_DNS whose inline load_assignment names
 * hosts that upstream/dns-resolver.ts resolves. TLS to the hosts from transport_socket
 * (tls-context.ts). No subsets, no custom lb policies.
 */
import type { FieldReader } from './field-reader.js';
import { readLoadAssignment, type EndpointsModel } from './endpoint-resource.js';
import { SUPPORT } from './support.js';
import { readUpstreamTransportSocket, type UpstreamTlsModel } from './tls-context.js';

export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HTTP_PROTOCOL_OPTIONS_TYPE = `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS_KEY}`;

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';
export const LB_POLICIES: readonly LbPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];

export interface StatusRangeModel {
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
}

export interface HealthCheckModel {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly noTrafficIntervalMs: number;
  readonly noTrafficHealthyIntervalMs: number;
  readonly unhealthyIntervalMs: number;
  readonly unhealthyEdgeIntervalMs: number;
  readonly healthyEdgeIntervalMs: number;
  readonly initialJitterMs: number;
  readonly intervalJitterMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly reuseConnection: boolean;
  readonly kind: 'http' | 'tcp';
  /** http: Host header (the cluster name when unset, as in Envoy). */
  readonly host: string;
  readonly path: string;
  readonly method: string;
  readonly http2: boolean;
  readonly expected: readonly StatusRangeModel[];
}

export interface OutlierModel {
  readonly intervalMs: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
  readonly consecutive5xx: number;
  readonly enforcingConsecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly enforcingSuccessRate: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  readonly successRateStdevFactor: number;
  readonly enforcingFailurePercentage: number;
  readonly failurePercentageMinimumHosts: number;
  readonly failurePercentageRequestVolume: number;
  readonly failurePercentageThreshold: number;
  readonly unejectOnActiveHealthCheck: boolean;
}

export interface ThresholdsModel {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

export type DnsLookupFamily = 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';
const DNS_LOOKUP_FAMILIES: readonly DnsLookupFamily[] = ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'];

/** A STRICT_DNS / LOGICAL_DNS cluster: the names to resolve and how often. */
export interface DnsModel {
  /** Every host of a STRICT_DNS cluster takes every address its name resolves to; LOGICAL_DNS the first one. */
  readonly strict: boolean;
  /** The inline load_assignment; its endpoint addresses are names (or IP literals). */
  readonly targets: EndpointsModel;
  readonly refreshMs: number;
  /** respect_dns_ttl: re-resolve after the record's TTL, when the resolver reports one. */
  readonly respectTtl: boolean;
  readonly family: DnsLookupFamily;
}

export interface ClusterModel {
  readonly name: string;
  readonly discovery: 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS';
  /** The EDS resource name (eds_cluster_config.service_name, else the cluster name). */
  readonly edsName: string;
  readonly staticEndpoints: EndpointsModel | undefined;
  readonly dns: DnsModel | undefined;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: LbPolicy;
  readonly ringMinSize: number;
  readonly ringMaxSize: number;
  readonly maglevTableSize: number;
  readonly choiceCount: number;
  readonly activeRequestBias: number;
  readonly localityWeighted: boolean;
  /** Percent of healthy hosts below which a priority balances over all its hosts (Envoy: 50). */
  readonly panicThreshold: number;
  readonly http2: boolean;
  readonly h2MaxConcurrentStreams: number;
  readonly upstreamIdleTimeoutMs: number;
  readonly maxRequestsPerConnection: number;
  readonly healthCheck: HealthCheckModel | undefined;
  readonly outlier: OutlierModel | undefined;
  readonly thresholds: ThresholdsModel;
  readonly thresholdsHigh: ThresholdsModel;
  /** TLS to every host (requests, TCP proxying, health checks); undefined: plaintext. */
  readonly tls: UpstreamTlsModel | undefined;
}

const DEFAULT_THRESHOLDS: ThresholdsModel = Object.freeze({ maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 });

export function readCluster(r: FieldReader): ClusterModel {
  const name = r.requiredString('name');
  r.declare(SUPPORT.Cluster);

  const type = r.enumOf('type', ['STATIC', 'EDS', 'STRICT_DNS', 'LOGICAL_DNS'] as const, 'STATIC');
  let edsName = name;
  let staticEndpoints: EndpointsModel | undefined;
  let dns: DnsModel | undefined;
  const eds = r.message('eds_cluster_config');
  // Read on every cluster (Envoy accepts them anywhere); only DNS clusters use them.
  const refreshMs = r.durationMs('dns_refresh_rate') ?? 5000;
  if (refreshMs <= 0) throw r.error('dns_refresh_rate', 'must be > 0');
  const respectTtl = r.bool('respect_dns_ttl');
  const family = r.enumOf('dns_lookup_family', DNS_LOOKUP_FAMILIES, 'AUTO');
  if (type === 'STRICT_DNS' || type === 'LOGICAL_DNS') {
    if (eds) throw r.error('eds_cluster_config', 'only valid with type EDS');
    const la = r.message('load_assignment');
    if (!la) throw r.error('load_assignment', `a ${type} cluster needs load_assignment`);
    const targets = readLoadAssignment(la, false, true);
    const count = targets.localities.reduce((n, l) => n + l.endpoints.length, 0);
    if (type === 'LOGICAL_DNS' && count !== 1) throw r.error('load_assignment', `a LOGICAL_DNS cluster takes exactly one endpoint (got ${count})`);
    dns = Object.freeze({ strict: type === 'STRICT_DNS', targets, refreshMs, respectTtl, family });
  } else if (type === 'EDS') {
    if (eds) {
      const source = eds.message('eds_config');
      if (source) readAdsSource(source);
      edsName = eds.string('service_name') || name;
    }
    r.refuse('load_assignment', 'an EDS cluster takes its endpoints from EDS, not load_assignment');
  } else {
    if (eds) throw r.error('eds_cluster_config', 'only valid with type EDS');
    const la = r.message('load_assignment');
    if (!la) throw r.error('load_assignment', 'a STATIC cluster needs load_assignment');
    staticEndpoints = readLoadAssignment(la, false);
  }

  const connectTimeoutMs = r.durationMs('connect_timeout') ?? 5000;
  if (connectTimeoutMs <= 0) throw r.error('connect_timeout', 'must be > 0');
  const lbPolicy = r.enumOf('lb_policy', LB_POLICIES, 'ROUND_ROBIN');

  let ringMinSize = 1024;
  let ringMaxSize = 8 * 1024 * 1024;
  const ring = r.message('ring_hash_lb_config');
  if (ring) {
    ringMinSize = ring.wrapped('minimum_ring_size') ?? ringMinSize;
    ringMaxSize = ring.wrapped('maximum_ring_size') ?? ringMaxSize;
    ring.declare(SUPPORT['Cluster.ring_hash_lb_config']);
    if (ringMinSize > ringMaxSize) throw ring.error('minimum_ring_size', 'greater than maximum_ring_size');
  }
  let maglevTableSize = 65537;
  const maglev = r.message('maglev_lb_config');
  if (maglev) {
    maglevTableSize = maglev.wrapped('table_size') ?? maglevTableSize;
    if (!isPrime(maglevTableSize)) throw maglev.error('table_size', 'must be a prime number');
  }
  let choiceCount = 2;
  let activeRequestBias = 1;
  const lr = r.message('least_request_lb_config');
  if (lr) {
    choiceCount = lr.wrapped('choice_count') ?? 2;
    if (choiceCount < 2) throw lr.error('choice_count', 'must be >= 2');
    const bias = lr.message('active_request_bias');
    if (bias) {
      activeRequestBias = bias.number('default_value') ?? 0;
      bias.declare(SUPPORT['Cluster.least_request_lb_config.active_request_bias']);
    }
    lr.declare(SUPPORT['Cluster.least_request_lb_config']);
  }
  const rr = r.message('round_robin_lb_config');
  rr?.declare(SUPPORT['Cluster.round_robin_lb_config']);

  let localityWeighted = false;
  let panicThreshold = 50;
  const common = r.message('common_lb_config');
  if (common) {
    const panic = common.message('healthy_panic_threshold');
    if (panic) panicThreshold = panic.number('value') ?? 0;
    localityWeighted = common.message('locality_weighted_lb_config') !== undefined;
    common.declare(SUPPORT['Cluster.common_lb_config']);
  }

  const proto = readProtocol(r);
  const healthChecks = r.list('health_checks');
  if (healthChecks.length > 1) throw r.error('health_checks', 'at most one health check per cluster is supported');
  const hc = healthChecks[0];
  const healthCheck = hc ? readHealthCheck(hc, name) : undefined;
  const od = r.message('outlier_detection');
  const outlier = od ? readOutlier(od) : undefined;
  const { thresholds, thresholdsHigh } = readCircuitBreakers(r.message('circuit_breakers'));
  const ts = r.message('transport_socket');
  const tls = ts ? readUpstreamTransportSocket(ts) : undefined;

  return Object.freeze({
    name,
    discovery: type,
    edsName,
    staticEndpoints,
    dns,
    connectTimeoutMs,
    lbPolicy,
    ringMinSize,
    ringMaxSize,
    maglevTableSize,
    choiceCount,
    activeRequestBias,
    localityWeighted,
    panicThreshold,
    ...proto,
    healthCheck,
    outlier,
    thresholds,
    thresholdsHigh,
    tls,
  });
}

/** A ConfigSource must say "over ADS": the only transport this proxy has. */
export function readAdsSource(r: FieldReader): void {
  r.enumOf('resource_api_version', ['V3'] as const, 'V3');
  if (!r.message('ads')) throw r.error('', 'only `ads: {}` config sources are supported');
  r.declare(SUPPORT.ConfigSource);
}

function readProtocol(r: FieldReader): Pick<ClusterModel, 'http2' | 'h2MaxConcurrentStreams' | 'upstreamIdleTimeoutMs' | 'maxRequestsPerConnection'> {
  let http2 = false;
  let h2MaxConcurrentStreams = 2147483647;
  let upstreamIdleTimeoutMs = 3_600_000;
  let maxRequestsPerConnection = r.wrapped('max_requests_per_connection') ?? 0;
  const readH2 = (h2: FieldReader): void => {
    http2 = true;
    h2MaxConcurrentStreams = h2.wrapped('max_concurrent_streams') ?? h2MaxConcurrentStreams;
    h2.declare(SUPPORT['Cluster.http2_protocol_options']);
  };
  const readCommon = (c: FieldReader): void => {
    upstreamIdleTimeoutMs = c.durationMs('idle_timeout') ?? upstreamIdleTimeoutMs;
    maxRequestsPerConnection = c.wrapped('max_requests_per_connection') ?? maxRequestsPerConnection;
    c.declare(SUPPORT['Cluster.common_http_protocol_options']);
  };
  const legacyH2 = r.message('http2_protocol_options');
  if (legacyH2) readH2(legacyH2);
  const legacyCommon = r.message('common_http_protocol_options');
  if (legacyCommon) readCommon(legacyCommon);
  for (const [key, opt] of r.map('typed_extension_protocol_options')) {
    if (key !== HTTP_PROTOCOL_OPTIONS_KEY) throw r.error(`typed_extension_protocol_options["${key}"]`, 'unsupported extension');
    const t = opt.anyType();
    if (t !== HTTP_PROTOCOL_OPTIONS_TYPE) throw opt.error('@type', `expected ${HTTP_PROTOCOL_OPTIONS_TYPE}, got ${t}`);
    const explicit = opt.message('explicit_http_config');
    if (explicit) {
      const h2 = explicit.message('http2_protocol_options');
      if (h2) readH2(h2);
      explicit.declare(SUPPORT['HttpProtocolOptions.explicit_http_config']);
    }
    opt.declare(SUPPORT.HttpProtocolOptions);
    const common = opt.message('common_http_protocol_options');
    if (common) readCommon(common);
  }
  return { http2, h2MaxConcurrentStreams, upstreamIdleTimeoutMs, maxRequestsPerConnection };
}

function readHealthCheck(r: FieldReader, clusterName: string): HealthCheckModel {
  const timeoutMs = r.durationMs('timeout');
  const intervalMs = r.durationMs('interval');
  if (!timeoutMs) throw r.error('timeout', 'must be set and > 0');
  if (!intervalMs) throw r.error('interval', 'must be set and > 0');
  const unhealthyThreshold = r.wrapped('unhealthy_threshold');
  const healthyThreshold = r.wrapped('healthy_threshold');
  if (unhealthyThreshold === undefined) throw r.error('unhealthy_threshold', 'must be set');
  if (healthyThreshold === undefined) throw r.error('healthy_threshold', 'must be set');
  const noTrafficIntervalMs = r.durationMs('no_traffic_interval') ?? 60_000;
  const noTrafficHealthyIntervalMs = r.durationMs('no_traffic_healthy_interval') ?? noTrafficIntervalMs;
  const unhealthyIntervalMs = r.durationMs('unhealthy_interval') ?? intervalMs;
  const unhealthyEdgeIntervalMs = r.durationMs('unhealthy_edge_interval') ?? unhealthyIntervalMs;
  const healthyEdgeIntervalMs = r.durationMs('healthy_edge_interval') ?? intervalMs;
  const initialJitterMs = r.durationMs('initial_jitter') ?? 0;
  const intervalJitterMs = r.durationMs('interval_jitter') ?? 0;
  r.declare(SUPPORT['Cluster.health_checks']);
  const reuseConnection = r.wrappedBool('reuse_connection') ?? true;
  const http = r.message('http_health_check');
  const tcp = r.message('tcp_health_check');
  const base = {
    timeoutMs,
    intervalMs,
    noTrafficIntervalMs,
    noTrafficHealthyIntervalMs,
    unhealthyIntervalMs,
    unhealthyEdgeIntervalMs,
    healthyEdgeIntervalMs,
    initialJitterMs,
    intervalJitterMs,
    healthyThreshold,
    unhealthyThreshold,
    reuseConnection,
  };
  if (http) {
    const path = http.requiredString('path');
    const host = http.string('host') || clusterName;
    const expected = http.list('expected_statuses').map((s) => {
      const start = s.number('start') ?? 0;
      const end = s.number('end') ?? 0;
      if (start < 100 || end > 600 || start >= end) throw s.error('', 'expected_statuses ranges must be half-open within [100, 600)');
      return Object.freeze({ start, end });
    });
    const codec = http.enumOf('codec_client_type', ['HTTP1', 'HTTP2'] as const, 'HTTP1');
    const method = http.enumOf('method', ['METHOD_UNSPECIFIED', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH'] as const, 'GET');
    http.declare(SUPPORT['Cluster.health_checks.http_health_check']);
    return Object.freeze({
      ...base,
      kind: 'http' as const,
      host,
      path,
      method: method === 'METHOD_UNSPECIFIED' ? 'GET' : method,
      http2: codec === 'HTTP2',
      expected: Object.freeze(expected.length > 0 ? expected : [{ start: 200, end: 201 }]),
    });
  }
  if (tcp) {
    tcp.declare(SUPPORT['Cluster.health_checks.tcp_health_check']);
    return Object.freeze({ ...base, kind: 'tcp' as const, host: '', path: '', method: '', http2: false, expected: Object.freeze([]) });
  }
  throw r.error('', 'needs http_health_check or tcp_health_check');
}

function readOutlier(r: FieldReader): OutlierModel {
  const pct = (key: string, def: number): number => {
    const v = r.wrapped(key) ?? def;
    if (v > 100) throw r.error(key, 'a percentage must be <= 100');
    return v;
  };
  if (r.bool('split_external_local_origin_errors')) throw r.error('split_external_local_origin_errors', 'not implemented');
  r.declare(SUPPORT['Cluster.outlier_detection']);
  const baseEjectionMs = r.durationMs('base_ejection_time') ?? 30_000;
  return Object.freeze({
    intervalMs: r.durationMs('interval') ?? 10_000,
    baseEjectionMs,
    maxEjectionMs: Math.max(r.durationMs('max_ejection_time') ?? 300_000, baseEjectionMs),
    maxEjectionPercent: pct('max_ejection_percent', 10),
    consecutive5xx: r.wrapped('consecutive_5xx') ?? 5,
    enforcingConsecutive5xx: pct('enforcing_consecutive_5xx', 100),
    consecutiveGatewayFailure: r.wrapped('consecutive_gateway_failure') ?? 5,
    enforcingConsecutiveGatewayFailure: pct('enforcing_consecutive_gateway_failure', 0),
    enforcingSuccessRate: pct('enforcing_success_rate', 100),
    successRateMinimumHosts: r.wrapped('success_rate_minimum_hosts') ?? 5,
    successRateRequestVolume: r.wrapped('success_rate_request_volume') ?? 100,
    successRateStdevFactor: (r.wrapped('success_rate_stdev_factor') ?? 1900) / 1000,
    enforcingFailurePercentage: pct('enforcing_failure_percentage', 0),
    failurePercentageMinimumHosts: r.wrapped('failure_percentage_minimum_hosts') ?? 5,
    failurePercentageRequestVolume: r.wrapped('failure_percentage_request_volume') ?? 50,
    failurePercentageThreshold: pct('failure_percentage_threshold', 85),
    unejectOnActiveHealthCheck: r.wrappedBool('successful_active_health_check_uneject_host') ?? true,
  });
}

function readCircuitBreakers(r: FieldReader | undefined): { thresholds: ThresholdsModel; thresholdsHigh: ThresholdsModel } {
  let thresholds = DEFAULT_THRESHOLDS;
  let thresholdsHigh = DEFAULT_THRESHOLDS;
  if (!r) return { thresholds, thresholdsHigh };
  r.declare(SUPPORT['Cluster.circuit_breakers']);
  for (const t of r.list('thresholds')) {
    const priority = t.enumOf('priority', ['DEFAULT', 'HIGH'] as const, 'DEFAULT');
    t.declare(SUPPORT['Cluster.circuit_breakers.thresholds']);
    const model = Object.freeze({
      maxConnections: t.wrapped('max_connections') ?? DEFAULT_THRESHOLDS.maxConnections,
      maxPendingRequests: t.wrapped('max_pending_requests') ?? DEFAULT_THRESHOLDS.maxPendingRequests,
      maxRequests: t.wrapped('max_requests') ?? DEFAULT_THRESHOLDS.maxRequests,
      maxRetries: t.wrapped('max_retries') ?? DEFAULT_THRESHOLDS.maxRetries,
    });
    if (priority === 'DEFAULT') thresholds = model;
    else thresholdsHigh = model;
  }
  return { thresholds, thresholdsHigh };
}

function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}
