/**
 * `cluster.loadbalancer.<name>` (plus `endpoint.eds.<name>.balancing-policy`) -> Envoy Cluster.
 * A cluster takes its endpoints from EDS over the ADS stream, or (`discovery: strict-dns` /
 * `logical-dns`) resolves the names in `hosts` itself; health checks, lb policy, locality-weighted
 * balancing, panic threshold, HTTP/2 and connection limits, circuit breakers and outlier
 * detection, and TLS to the instances (upstream-tls.ts) are set as configured. Hash policies go on
 * the routes (hash-policy.ts).
 */
import type { CircuitBreakersConfig, ClusterConfig, Config, HealthCheckConfig, OutlierDetectionConfig } from '../config/schema.js';
import type { ProtoObject } from '../xds/resources.js';
import { httpProtocolOptions } from './protocol-options.js';
import { ADS_SOURCE } from './type-names.js';
import { upstreamTlsSocket } from './upstream-tls.js';

const LB_POLICY: Readonly<Record<ClusterConfig['lb-policy'], string>> = {
  'round-robin': 'ROUND_ROBIN',
  'least-request': 'LEAST_REQUEST',
  random: 'RANDOM',
  'ring-hash': 'RING_HASH',
  maglev: 'MAGLEV',
};

export function clusterResource(config: Config, name: string, cluster: ClusterConfig): ProtoObject {
  const out: Record<string, unknown> = { name, ...discovery(name, cluster) };
  out.connect_timeout = cluster['connect-timeout'];
  out.lb_policy = LB_POLICY[cluster['lb-policy']];
  const hc = cluster['health-check'];
  if (hc) out.health_checks = [healthCheck(hc)];
  const common: Record<string, unknown> = {};
  if (config.endpoint.eds[name]?.['balancing-policy'] === 'locality') {
    // Weights come from each LocalityLbEndpoints.load_balancing_weight (see endpoints.ts).
    common.locality_weighted_lb_config = {};
  }
  const panic = cluster['healthy-panic-threshold'];
  if (panic !== undefined) common.healthy_panic_threshold = { value: panic };
  if (Object.keys(common).length > 0) out.common_lb_config = common;
  const protocol = httpProtocolOptions({
    http2: cluster['upstream-protocol'] === 'http2',
    maxConcurrentStreams: cluster['max-concurrent-streams'],
    maxRequestsPerConnection: cluster['max-requests-per-connection'],
  });
  if (protocol) out.typed_extension_protocol_options = protocol;
  const cb = cluster['circuit-breakers'];
  if (cb) out.circuit_breakers = { thresholds: [circuitBreaker(cb)] };
  const od = cluster['outlier-detection'];
  if (od) out.outlier_detection = outlierDetection(od);
  // HTTP/2 clusters offer h2 by ALPN; HTTP/1.1 and TCP clusters offer none (no mismatch with a TCP backend).
  if (cluster.tls) out.transport_socket = upstreamTlsSocket(cluster.tls, cluster['upstream-protocol'] === 'http2' ? ['h2'] : []);
  return out;
}

const DNS_TYPE = { 'strict-dns': 'STRICT_DNS', 'logical-dns': 'LOGICAL_DNS' } as const;
const DNS_LOOKUP_FAMILY: Readonly<Record<NonNullable<ClusterConfig['dns-lookup-family']>, string>> = {
  auto: 'AUTO',
  'v4-only': 'V4_ONLY',
  'v6-only': 'V6_ONLY',
  'v4-preferred': 'V4_PREFERRED',
  all: 'ALL',
};

/** EDS over ADS, or a DNS cluster whose inline load_assignment lists the names to resolve. */
function discovery(name: string, cluster: ClusterConfig): Record<string, unknown> {
  if (cluster.discovery === 'eds') return { type: 'EDS', eds_cluster_config: { eds_config: ADS_SOURCE } };
  const out: Record<string, unknown> = {
    type: DNS_TYPE[cluster.discovery],
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: (cluster.hosts ?? []).map((h) => ({
            endpoint: { address: { socket_address: { protocol: 'TCP', address: h.address, port_value: h.port } } },
          })),
        },
      ],
    },
  };
  if (cluster['dns-refresh-rate']) out.dns_refresh_rate = cluster['dns-refresh-rate'];
  const family = cluster['dns-lookup-family'];
  if (family) out.dns_lookup_family = DNS_LOOKUP_FAMILY[family];
  return out;
}

function circuitBreaker(cb: CircuitBreakersConfig): ProtoObject {
  const out: Record<string, unknown> = { priority: 'DEFAULT' };
  const set = (field: string, value: number | undefined): void => {
    if (value !== undefined) out[field] = { value };
  };
  set('max_connections', cb['max-connections']);
  set('max_pending_requests', cb['max-pending-requests']);
  set('max_requests', cb['max-requests']);
  set('max_retries', cb['max-retries']);
  return out;
}

function outlierDetection(od: OutlierDetectionConfig): ProtoObject {
  const out: Record<string, unknown> = {};
  if (od['consecutive-5xx'] !== undefined) out.consecutive_5xx = { value: od['consecutive-5xx'] };
  if (od.interval) out.interval = od.interval;
  if (od['base-ejection-time']) out.base_ejection_time = od['base-ejection-time'];
  if (od['max-ejection-percent'] !== undefined) out.max_ejection_percent = { value: od['max-ejection-percent'] };
  return out;
}

function healthCheck(hc: HealthCheckConfig): ProtoObject {
  const out: Record<string, unknown> = {
    timeout: hc.timeout,
    interval: hc.interval,
    healthy_threshold: { value: hc.healthy },
    unhealthy_threshold: { value: hc.unhealthy },
  };
  if (hc['no-traffic-interval']) out.no_traffic_interval = hc['no-traffic-interval'];
  if (hc.type === 'tcp') {
    out.tcp_health_check = {};
  } else {
    const http: Record<string, unknown> = { path: hc.value };
    if (hc.host !== undefined) http.host = hc.host;
    if (hc.expected) {
      http.expected_statuses = [...hc.expected].sort((a, b) => a.start - b.start || a.end - b.end).map((r) => ({ start: r.start, end: r.end }));
    }
    out.http_health_check = http;
  }
  return out;
}
