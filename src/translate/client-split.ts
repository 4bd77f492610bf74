/**
 * One translated config, two kinds of client. In: the full XdsResourceSet from translate(). Out:
 * the set for Envoy (every listener that binds a socket, its routes, every cluster) and, when the
 * config has `type: grpc` listeners, the set for proxyless gRPC clients: only the API listeners,
 * their route tables, and the clusters (with their assignments) those route tables send to.
 *
 * Envoy drops a Listener with `api_listener` sent over LDS (with a warning, not a NACK), and a
 * gRPC client has no use for socket listeners, so each kind gets a snapshot of its own (see
 * pipeline/publisher.ts and cache/client-kind.ts). Keeping the gRPC side to what it routes to
 * means it encodes only those clusters a second time, an Envoy-only cluster change does not wake
 * gRPC clients, and a cluster gRPC could not use (least-request, the access-log sink) is not in
 * its snapshot at all. Resource objects are shared between the two sets, never copied.
 */
import type { ProtoObject, XdsResourceSet } from '../xds/resources.js';

export interface ClientResourceSets {
  readonly envoy: XdsResourceSet;
  /** Undefined when the config has no API listener: no gRPC snapshot is needed. */
  readonly grpc?: XdsResourceSet;
}

export function splitForClients(set: XdsResourceSet): ClientResourceSets {
  const api = set.listeners.filter(isApiListener);
  if (api.length === 0) return { envoy: set };
  const apiRouteNames = new Set(api.map(apiRouteName).filter((n): n is string => n !== undefined));
  const apiRoutes = set.routes.filter((r) => apiRouteNames.has(String(r.name)));
  const routed = new Set(apiRoutes.flatMap(routedClusters));
  return {
    envoy: Object.freeze({
      clusters: set.clusters,
      endpoints: set.endpoints,
      listeners: Object.freeze(set.listeners.filter((l) => !isApiListener(l))),
      routes: Object.freeze(set.routes.filter((r) => !apiRouteNames.has(String(r.name)))),
    }),
    grpc: Object.freeze({
      // translate names every ClusterLoadAssignment after its cluster (no eds service_name).
      clusters: Object.freeze(set.clusters.filter((c) => routed.has(String(c.name)))),
      endpoints: Object.freeze(set.endpoints.filter((e) => routed.has(String(e.cluster_name)))),
      listeners: Object.freeze(api),
      routes: Object.freeze(apiRoutes),
    }),
  };
}

function isApiListener(listener: ProtoObject): boolean {
  return listener.api_listener !== undefined;
}

/** The RDS name an API listener's HttpConnectionManager asks for. */
function apiRouteName(listener: ProtoObject): string | undefined {
  const outer = listener.api_listener as { api_listener?: { rds?: { route_config_name?: unknown } } } | undefined;
  const name = outer?.api_listener?.rds?.route_config_name;
  return typeof name === 'string' ? name : undefined;
}

interface RouteShape {
  readonly virtual_hosts?: ReadonlyArray<{
    readonly routes?: ReadonlyArray<{
      readonly route?: { readonly cluster?: string; readonly weighted_clusters?: { readonly clusters?: ReadonlyArray<{ readonly name?: string }> } };
    }>;
  }>;
}

/** Every cluster a route table sends to (plain and weighted routes; gRPC tables have no mirrors). */
export function routedClusters(routeConfig: ProtoObject): string[] {
  const out: string[] = [];
  for (const vh of (routeConfig as RouteShape).virtual_hosts ?? []) {
    for (const r of vh.routes ?? []) {
      if (r.route?.cluster !== undefined) out.push(r.route.cluster);
      for (const wc of r.route?.weighted_clusters?.clusters ?? []) if (wc.name !== undefined) out.push(wc.name);
    }
  }
  return out;
}
