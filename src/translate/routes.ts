/**
 * Virtual hosts -> RouteConfiguration. One RouteConfiguration per http listener, named after the
 * listener, holding the virtual hosts it serves. Each prefix becomes one route: a single cluster
 * on a prefix is a plain `cluster` action; clusters sharing a prefix become `weighted_clusters`
 * (the seed's /api 90/10). `host-header` rewrites Host; mirror, timeout and retry come from the
 * route entries (validate.ts made sure entries sharing a prefix agree). The cluster action and the
 * retry policy are shared with the gRPC route tables (grpc.ts).
 */
import type { Config, ListenerConfig, MirrorConfig, RetryConfig, VirtualHostConfig } from '../config/schema.js';
import { compare, listenerVirtualHosts, prefixRoutes, type NamedVirtualHost, type PrefixMember, type PrefixRoute } from '../config/views.js';
import type { ProtoObject } from '../xds/resources.js';

export function routeConfiguration(config: Config, listenerName: string, listener: ListenerConfig): ProtoObject {
  return {
    name: listenerName,
    virtual_hosts: listenerVirtualHosts(config, listener).map(virtualHost),
  };
}

function virtualHost({ name, vhost }: NamedVirtualHost): ProtoObject {
  return {
    name,
    // Envoy matches exact domains before wildcards regardless of order; sorted for stable output.
    domains: [...new Set(vhost.domain)].sort(compare),
    routes: prefixRoutes(vhost).map((r) => route(vhost, r)),
  };
}

function route(vhost: VirtualHostConfig, { prefix, members }: PrefixRoute): ProtoObject {
  const action = clusterAction(members);
  if (vhost['host-header'] !== undefined) action.host_rewrite_literal = vhost['host-header'];
  const timeout = members.find((m) => m.entry.timeout)?.entry.timeout;
  if (timeout) action.timeout = timeout;
  const retry = members.find((m) => m.entry.retry)?.entry.retry;
  if (retry) {
    const policy = retryPolicy(retry, retry['retry-on']);
    if (retry['per-try-timeout']) policy.per_try_timeout = retry['per-try-timeout'];
    action.retry_policy = policy;
  }
  const mirrors = new Map<string, MirrorConfig>();
  for (const m of members) if (m.entry.mirror) mirrors.set(m.entry.mirror.cluster, m.entry.mirror);
  if (mirrors.size > 0) {
    action.request_mirror_policies = [...mirrors.values()]
      .sort((a, b) => compare(a.cluster, b.cluster))
      .map((m) => ({ cluster: m.cluster, runtime_fraction: { default_value: fractionalPercent(m.percent) } }));
  }
  return { name: prefix, match: { prefix }, route: action };
}

/** Where a prefix's traffic goes: one cluster, or the weighted split of the clusters sharing it. */
export function clusterAction(members: readonly PrefixMember[]): Record<string, unknown> {
  const only = members.length === 1 ? members[0] : undefined;
  if (only) return { cluster: only.cluster };
  // A weight of 0 takes a cluster out of the split; leaving it out is what Envoy would do too.
  // No total_weight: it is deprecated and newer Envoys refuse it.
  return {
    weighted_clusters: {
      clusters: members.filter((m) => (m.entry.weight ?? 0) > 0).map((m) => ({ name: m.cluster, weight: { value: m.entry.weight } })),
    },
  };
}

/** RetryPolicy on the given conditions (deduplicated and sorted for stable bytes). */
export function retryPolicy(retry: RetryConfig, conditions: readonly string[]): Record<string, unknown> {
  return {
    retry_on: [...new Set(conditions)].sort(compare).join(','),
    num_retries: { value: retry.attempts },
  };
}

/** 10 -> 10/HUNDRED, 0.5 -> 50/TEN_THOUSAND, 0.0025 -> 25/MILLION: the coarsest exact form. */
export function fractionalPercent(percent: number): ProtoObject {
  const exact = (scale: number): number | undefined => {
    const n = Math.round(percent * scale);
    return Math.abs(percent * scale - n) < 1e-6 ? n : undefined;
  };
  const hundred = exact(1);
  if (hundred !== undefined) return { numerator: hundred, denominator: 'HUNDRED' };
  const tenThousand = exact(100);
  if (tenThousand !== undefined) return { numerator: tenThousand, denominator: 'TEN_THOUSAND' };
  return { numerator: Math.round(percent * 1e4), denominator: 'MILLION' };
}
