/**
 * One translated config, two kinds of client. In: the full XdsResourceSet from translate(). Out:
 * the set for Envoy (every listener that binds a socket, and its routes) and, when the config has
 * `type: grpc` listeners, the set for proxyless gRPC clients (only the API listeners and their
 * routes). Envoy refuses a Listener with `api_listener` sent over LDS, and a gRPC client has no use
 * for socket listeners, so each kind gets a snapshot of its own (see pipeline/publisher.ts and
 * cache/client-kind.ts). Both keep every cluster and endpoint assignment: clients fetch those
 * they route to by name, and the resources are the same objects in both sets.
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
  const apiRoutes = new Set(api.map(apiRouteName).filter((n): n is string => n !== undefined));
  return {
    envoy: Object.freeze({
      clusters: set.clusters,
      endpoints: set.endpoints,
      listeners: Object.freeze(set.listeners.filter((l) => !isApiListener(l))),
      routes: Object.freeze(set.routes.filter((r) => !apiRoutes.has(String(r.name)))),
    }),
    grpc: Object.freeze({
      clusters: set.clusters,
      endpoints: set.endpoints,
      listeners: Object.freeze(api),
      routes: Object.freeze(set.routes.filter((r) => apiRoutes.has(String(r.name)))),
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
