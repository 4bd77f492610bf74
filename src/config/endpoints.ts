/**
 * The endpoint half of the model: which instances back a cluster, where they are and how healthy
 * they are. Filled from the config's static endpoints (file mode) or from Consul service health;
 * translate turns it into ClusterLoadAssignments.
 */

/** Envoy's core.v3.HealthStatus names, as translate writes them. */
export type EndpointHealth = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';

export interface EndpointInfo {
  /** IP literal (or hostname for Envoy STRICT_DNS-free EDS; IPs preferred, gRPC clients need them). */
  readonly address: string;
  readonly port: number;
  readonly region?: string;
  readonly zone?: string;
  readonly health: EndpointHealth;
  /** load_balancing_weight, >= 1; absent means Envoy's default of 1. */
  readonly weight?: number;
  /** Where this came from, for operators (Consul node/service id, or `static`). */
  readonly origin?: string;
}

/** Endpoints per cluster (= Consul service) name. A cluster absent from the map has no data yet. */
export type EndpointMap = ReadonlyMap<string, readonly EndpointInfo[]>;
