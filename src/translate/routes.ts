/**
 * Virtual hosts -> RouteConfiguration. One RouteConfiguration per http listener, named after the
 * listener, holding the virtual hosts it serves. Each path match (prefix, exact path or regex)
 * with its header conditions becomes one route, in the order views.ts `routeGroups` gives (the
 * more specific first): a single cluster on it is a plain `cluster` action; clusters sharing it
 * become `weighted_clusters` (the seed's /api 90/10). `host-header` rewrites Host; mirror,
 * timeout and retry come from the route entries (validate.ts made sure entries sharing a route
 * agree); an entry's header rewrites go with its cluster (on the route, or on its weighted
 * cluster). The match, the cluster action and the retry policy are shared with the gRPC route
 * tables (grpc.ts).
 */
import type { Config, HeaderRewriteConfig, ListenerConfig, MirrorConfig, RetryConfig, RouteEntryConfig, VirtualHostConfig } from '../config/schema.js';
import {
  compare,
  listenerVirtualHosts,
  routeGroups,
  routeName,
  type HeaderCondition,
  type NamedVirtualHost,
  type RouteGroup,
  type RouteMember,
} from '../config/views.js';
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
    routes: routeGroups(vhost).map((r) => route(vhost, r)),
  };
}

function route(vhost: VirtualHostConfig, group: RouteGroup): ProtoObject {
  const { members } = group;
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
  const only = members.length === 1 ? members[0] : undefined;
  return { name: routeName(group), match: routeMatch(group), route: action, ...(only ? headerRewrites(only.entry) : {}) };
}

/** Envoy's RouteMatch: the path specifier and one HeaderMatcher per condition. */
export function routeMatch({ match, headers }: RouteGroup): ProtoObject {
  const path: ProtoObject =
    match.kind === 'prefix' ? { prefix: match.value } : match.kind === 'path' ? { path: match.value } : { safe_regex: { regex: match.value } };
  return headers.length === 0 ? path : { ...path, headers: headers.map(headerMatcher) };
}

/** string_match, not the deprecated exact_match/prefix_match/safe_regex_match fields. */
function headerMatcher(c: HeaderCondition): ProtoObject {
  switch (c.kind) {
    case 'exact':
      return { name: c.name, string_match: { exact: c.value } };
    case 'prefix':
      return { name: c.name, string_match: { prefix: c.value } };
    case 'regex':
      return { name: c.name, string_match: { safe_regex: { regex: c.value } } };
    case 'present':
      return { name: c.name, present_match: true };
    case 'absent':
      // Not `present_match: false`, which older Envoys and gRPC clients read as "present".
      return { name: c.name, present_match: true, invert_match: true };
  }
}

/** Where a route's traffic goes: one cluster, or the weighted split of the clusters sharing it. */
export function clusterAction(members: readonly RouteMember[]): Record<string, unknown> {
  const only = members.length === 1 ? members[0] : undefined;
  if (only) return { cluster: only.cluster };
  // A weight of 0 takes a cluster out of the split; leaving it out is what Envoy would do too.
  // No total_weight: it is deprecated and newer Envoys refuse it.
  return {
    weighted_clusters: {
      clusters: members
        .filter((m) => (m.entry.weight ?? 0) > 0)
        .map((m) => ({ name: m.cluster, weight: { value: m.entry.weight }, ...headerRewrites(m.entry) })),
    },
  };
}

const APPEND_ACTION = {
  set: 'OVERWRITE_IF_EXISTS_OR_ADD',
  append: 'APPEND_IF_EXISTS_OR_ADD',
  'add-if-absent': 'ADD_IF_ABSENT',
} as const;

/**
 * A route entry's header rewrites as the fields of a Route or a ClusterWeight (both spell them the
 * same). Envoy removes before it adds. Values are literal: `%` is escaped as `%%`, since Envoy
 * reads header values as format strings (`%REQ(...)%`).
 */
export function headerRewrites(entry: RouteEntryConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const sides = [
    ['request', entry['request-headers']],
    ['response', entry['response-headers']],
  ] as const;
  for (const [side, rewrite] of sides) {
    if (!rewrite) continue;
    const add = headerValueOptions(rewrite);
    if (add.length > 0) out[`${side}_headers_to_add`] = add;
    if (rewrite.remove) out[`${side}_headers_to_remove`] = [...new Set(rewrite.remove.map((n) => n.toLowerCase()))].sort(compare);
  }
  return out;
}

function headerValueOptions(rewrite: HeaderRewriteConfig): ProtoObject[] {
  return (Object.keys(APPEND_ACTION) as (keyof typeof APPEND_ACTION)[]).flatMap((op) =>
    Object.entries(rewrite[op] ?? {})
      .map(([name, value]) => ({ header: { key: name.toLowerCase(), value: value.replaceAll('%', '%%') }, append_action: APPEND_ACTION[op] }))
      .sort((a, b) => compare(a.header.key, b.header.key)),
  );
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
