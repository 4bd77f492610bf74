/**
 * `cluster.loadbalancer.<name>` (plus `endpoint.eds.<name>.balancing-policy`) -> Envoy Cluster.
 * Every cluster takes its endpoints from EDS over the ADS stream; health checks, lb policy,
 * locality-weighted balancing, HTTP/2 and TLS to the instances (tls.ts) are set as configured.
 */
import type { ClusterConfig, Config, HealthCheckConfig } from '../config/schema.js';
import type { ProtoObject } from '../xds/resources.js';
import { http2ProtocolOptions } from './protocol-options.js';
import { ADS_SOURCE } from './type-names.js';
import { upstreamTlsSocket } from './tls.js';

const LB_POLICY: Readonly<Record<ClusterConfig['lb-policy'], string>> = {
  'round-robin': 'ROUND_ROBIN',
  'least-request': 'LEAST_REQUEST',
  random: 'RANDOM',
  'ring-hash': 'RING_HASH',
  maglev: 'MAGLEV',
};

export function clusterResource(config: Config, name: string, cluster: ClusterConfig): ProtoObject {
  const out: Record<string, unknown> = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE },
    connect_timeout: cluster['connect-timeout'],
    lb_policy: LB_POLICY[cluster['lb-policy']],
  };
  const hc = cluster['health-check'];
  if (hc) out.health_checks = [healthCheck(hc)];
  if (config.endpoint.eds[name]?.['balancing-policy'] === 'locality') {
    // Weights come from each LocalityLbEndpoints.load_balancing_weight (see endpoints.ts).
    out.common_lb_config = { locality_weighted_lb_config: {} };
  }
  if (cluster['upstream-protocol'] === 'http2') out.typed_extension_protocol_options = http2ProtocolOptions();
  if (cluster.tls) out.transport_socket = upstreamTlsSocket(cluster.tls, cluster['upstream-protocol'] === 'http2' ? ['h2'] : []);
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
