/**
 * Small hand-written Envoy v3 resources (plain fromObject objects) for cache and server tests and
 * the benchmark, independent of the YAML translator: an EDS cluster and its CLA, an HTTP listener
 * using RDS over ADS, a route configuration, and `resourceSet()` that ties them together.
 */
import type { ProtoObject, XdsResourceSet } from '../../src/xds/resources.js';

export const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

export function edsCluster(name: string, opts: { serviceName?: string; connectTimeoutS?: number } = {}): ProtoObject {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE, ...(opts.serviceName ? { service_name: opts.serviceName } : {}) },
    connect_timeout: { seconds: opts.connectTimeoutS ?? 1 },
    lb_policy: 'ROUND_ROBIN',
  };
}

export function cla(name: string, endpoints: ReadonlyArray<readonly [string, number]> = [['127.0.0.1', 8080]]): ProtoObject {
  return {
    cluster_name: name,
    endpoints: [
      {
        locality: {},
        load_balancing_weight: { value: 1 },
        lb_endpoints: endpoints.map(([address, port]) => ({
          endpoint: { address: { socket_address: { address, port_value: port } } },
          health_status: 'HEALTHY',
        })),
      },
    ],
  };
}

export function httpListener(name: string, port: number, routeConfigName: string): ProtoObject {
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_TYPE,
              stat_prefix: name,
              rds: { route_config_name: routeConfigName, config_source: ADS_SOURCE },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
            },
          },
        ],
      },
    ],
  };
}

export type RouteSpec =
  | { readonly prefix: string; readonly cluster: string; readonly mirror?: string }
  | { readonly prefix: string; readonly weighted: ReadonlyArray<readonly [string, number]> };

export function routeConfig(name: string, routes: readonly RouteSpec[], domains: readonly string[] = ['*']): ProtoObject {
  return {
    name,
    virtual_hosts: [
      {
        name: `${name}-vh`,
        domains: [...domains],
        routes: routes.map((r) => ({
          match: { prefix: r.prefix },
          route:
            'cluster' in r
              ? { cluster: r.cluster, ...(r.mirror ? { request_mirror_policies: [{ cluster: r.mirror }] } : {}) }
              : { weighted_clusters: { clusters: r.weighted.map(([c, w]) => ({ name: c, weight: { value: w } })) } },
        })),
      },
    ],
  };
}

export interface SetOptions {
  /** Number of EDS clusters c0..c{n-1}, each with a CLA. Default 2. */
  readonly clusters?: number;
  /** Port of endpoint i of every CLA is basePort + i; change it to change every CLA. */
  readonly basePort?: number;
  /** connect_timeout of every cluster (change it to change every Cluster but no CLA). */
  readonly connectTimeoutS?: number;
  /** Weight of c0 on the /api split (with c1 when there are two or more clusters). */
  readonly apiWeight?: number;
}

/** A consistent set: clusters c0.., their CLAs, listener 'http' (RDS 'routes'), route config 'routes'. */
export function resourceSet(opts: SetOptions = {}): XdsResourceSet {
  const n = opts.clusters ?? 2;
  const names = Array.from({ length: n }, (_, i) => `c${i}`);
  const w = opts.apiWeight ?? 90;
  const routes: RouteSpec[] =
    n >= 2
      ? [
          {
            prefix: '/api',
            weighted: [
              ['c0', w],
              ['c1', 100 - w],
            ],
          },
          { prefix: '/', cluster: 'c0' },
        ]
      : [{ prefix: '/', cluster: 'c0' }];
  return {
    clusters: names.map((c) => edsCluster(c, { connectTimeoutS: opts.connectTimeoutS })),
    endpoints: names.map((c, i) => cla(c, [['127.0.0.1', (opts.basePort ?? 8000) + i]])),
    listeners: [httpListener('http', 10000, 'routes')],
    routes: [routeConfig('routes', routes)],
  };
}
