/**
 * `cluster.loadbalancer.<name>.hash-policy` -> RouteAction.hash_policy. Envoy (and gRPC clients)
 * read the hash inputs of ring-hash / maglev from the route, not the cluster, so every route whose
 * action sends to a cluster with a hash policy gets that policy. In: a Config and freshly built
 * (not yet frozen) route configurations, of Envoy or of gRPC clients. Out: the same objects,
 * their actions completed. validate.ts made sure clusters sharing a route agree on the policy.
 */
import type { Config, HashPolicyConfig } from '../config/schema.js';
import type { ProtoObject } from '../xds/resources.js';

interface RouteActionShape {
  cluster?: string;
  weighted_clusters?: { clusters?: ReadonlyArray<{ name?: string }> };
  hash_policy?: unknown;
}

/** Adds hash_policy to each route action of `routeConfig` that sends to a hashed cluster. */
export function addHashPolicies(config: Config, routeConfig: ProtoObject): ProtoObject {
  const vhosts = (routeConfig.virtual_hosts ?? []) as ReadonlyArray<{ routes?: ReadonlyArray<{ route?: RouteActionShape }> }>;
  for (const vh of vhosts) {
    for (const r of vh.routes ?? []) {
      const action = r.route;
      if (!action) continue;
      const targets = action.cluster !== undefined ? [action.cluster] : (action.weighted_clusters?.clusters ?? []).map((c) => c.name);
      const policy = targets.map((t) => (t === undefined ? undefined : config.cluster.loadbalancer[t]?.['hash-policy'])).find((p) => p !== undefined);
      if (policy) action.hash_policy = policy.map(hashPolicy);
    }
  }
  return routeConfig;
}

function hashPolicy(h: HashPolicyConfig): ProtoObject {
  if (h.header !== undefined) return { header: { header_name: h.header } };
  if (h.cookie !== undefined) return { cookie: { name: h.cookie.name } };
  return { connection_properties: { source_ip: true } };
}
