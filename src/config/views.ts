/**
 * Derived views of a Config that both validation and translation need, written once: the
 * virtual hosts by name, which ones a listener serves, the one a gRPC client picks for its
 * target, the routes of a virtual host grouped by path match and header conditions (in the order
 * Envoy must try them), and the access-log sinks. In: a Config
 * (or parts). Out: plain read-only structures, always in a deterministic order.
 */
import { createHash } from 'node:crypto';
import type { AccessLogConfig, Config, ListenerConfig, RouteEntryConfig, VirtualHostConfig } from './schema.js';

/** The virtual host made from the seed's single `route` section. */
export const DEFAULT_VHOST = 'default';

export interface NamedVirtualHost {
  readonly name: string;
  readonly vhost: VirtualHostConfig;
  /** Config path of the section, e.g. ['route'] or ['virtual-hosts', 'admin']. */
  readonly path: readonly string[];
}

/** All virtual hosts, sorted by name: `default` (the seed's `route`) and `virtual-hosts.<name>`. */
export function virtualHosts(config: Config): readonly NamedVirtualHost[] {
  const out: NamedVirtualHost[] = [];
  if (config.route) out.push({ name: DEFAULT_VHOST, vhost: config.route, path: ['route'] });
  for (const [name, vhost] of Object.entries(config['virtual-hosts'] ?? {})) {
    // A clash with `default` is reported by validate; the seed's `route` keeps the name.
    if (name === DEFAULT_VHOST && config.route) continue;
    out.push({ name, vhost, path: ['virtual-hosts', name] });
  }
  return out.sort((a, b) => compare(a.name, b.name));
}

/** The virtual hosts a listener serves (http) or chooses from (grpc): those it names, or all of them. Unknown names are skipped. */
export function listenerVirtualHosts(config: Config, listener: ListenerConfig): readonly NamedVirtualHost[] {
  const all = virtualHosts(config);
  const wanted = listener['virtual-hosts'];
  if (!wanted) return all;
  const set = new Set(wanted);
  return all.filter((v) => set.has(v.name));
}

/** A virtual host matched against a gRPC target authority, through `domain`. */
export interface DomainMatch extends NamedVirtualHost {
  readonly domain: string;
}

export interface GrpcVirtualHostChoice {
  /** The virtual host a gRPC client dialing the listener's name uses; undefined when none matches. */
  readonly chosen?: DomainMatch;
  /** Other virtual hosts that match exactly as well as `chosen` (an ambiguity validate refuses). */
  readonly ties: readonly DomainMatch[];
}

/**
 * The virtual host a proxyless gRPC client picks for a `type: grpc` listener: the client matches
 * the listener's name (its target authority, `greeter:50051`) against every virtual host's
 * domains, case-sensitively, preferring an exact domain, then `*.suffix`, then `prefix*`, then
 * `*`, and the longer pattern within a kind. A gRPC client uses only that one virtual host.
 */
export function grpcVirtualHost(config: Config, authority: string, listener: ListenerConfig): GrpcVirtualHostChoice {
  let best: { rank: number; length: number; matches: DomainMatch[] } | undefined;
  for (const v of listenerVirtualHosts(config, listener)) {
    let own: { rank: number; domain: string } | undefined;
    for (const domain of v.vhost.domain) {
      const rank = domainMatchRank(domain, authority);
      if (rank === undefined) continue;
      if (!own || rank < own.rank || (rank === own.rank && domain.length > own.domain.length)) own = { rank, domain };
    }
    if (!own) continue;
    const match = { ...v, domain: own.domain };
    const better = !best || own.rank < best.rank || (own.rank === best.rank && own.domain.length > best.length);
    if (better) best = { rank: own.rank, length: own.domain.length, matches: [match] };
    else if (best && own.rank === best.rank && own.domain.length === best.length) best.matches.push(match);
  }
  const [chosen, ...ties] = best?.matches ?? [];
  return chosen ? { chosen, ties } : { ties: [] };
}

/** 0 exact, 1 `*.suffix`, 2 `prefix*`, 3 `*`; undefined when the pattern does not match. */
function domainMatchRank(pattern: string, authority: string): number | undefined {
  if (pattern === '*') return 3;
  if (!pattern.includes('*')) return pattern === authority ? 0 : undefined;
  if (pattern.startsWith('*')) return authority.endsWith(pattern.slice(1)) ? 1 : undefined;
  if (pattern.endsWith('*')) return authority.startsWith(pattern.slice(0, -1)) ? 2 : undefined;
  return undefined;
}

/** The clusters a virtual host sends traffic to (a weight of 0 takes a cluster out), sorted. */
export function routedClusters(vhost: VirtualHostConfig): readonly string[] {
  const out = new Set<string>();
  for (const { members } of routeGroups(vhost)) {
    for (const m of members) if (members.length === 1 || (m.entry.weight ?? 0) > 0) out.add(m.cluster);
  }
  return [...out].sort(compare);
}

export interface RouteMember {
  readonly cluster: string;
  readonly entry: RouteEntryConfig;
}

/** How a route matches the path: Envoy's `path` (exact), `safe_regex` (whole path) or `prefix`. */
export interface PathMatch {
  readonly kind: 'path' | 'regex' | 'prefix';
  readonly value: string;
}

/** One header condition of a route; the name lower-cased (header names are case-insensitive). */
export interface HeaderCondition {
  readonly name: string;
  readonly kind: 'exact' | 'prefix' | 'regex' | 'present' | 'absent';
  /** '' for present/absent. */
  readonly value: string;
}

/** One Envoy route: a path match, its header conditions, and every route entry that lists both. */
export interface RouteGroup {
  readonly match: PathMatch;
  /** Sorted by name. */
  readonly headers: readonly HeaderCondition[];
  /** Sorted by cluster name. */
  readonly members: readonly RouteMember[];
}

/** A route entry's `headers` as conditions, sorted by name. */
export function headerConditions(headers: RouteEntryConfig['headers']): readonly HeaderCondition[] {
  return Object.entries(headers ?? {})
    .map(([name, m]): HeaderCondition => {
      const lower = name.toLowerCase();
      if (typeof m === 'string') return { name: lower, kind: 'exact', value: m };
      if (m.exact !== undefined) return { name: lower, kind: 'exact', value: m.exact };
      if (m.prefix !== undefined) return { name: lower, kind: 'prefix', value: m.prefix };
      if (m.regex !== undefined) return { name: lower, kind: 'regex', value: m.regex };
      return { name: lower, kind: m.present === false ? 'absent' : 'present', value: '' };
    })
    .sort((a, b) => compare(a.name, b.name));
}

/** `x-canary=true`, `x-env^=beta` (prefix), `x-id~=[0-9]+` (regex), `x-debug` (present), `!x-debug` (absent). */
export function conditionText(c: HeaderCondition): string {
  switch (c.kind) {
    case 'exact':
      return `${c.name}=${c.value}`;
    case 'prefix':
      return `${c.name}^=${c.value}`;
    case 'regex':
      return `${c.name}~=${c.value}`;
    case 'present':
      return c.name;
    case 'absent':
      return `!${c.name}`;
  }
}

/**
 * The route's name in Envoy (access logs show it as %ROUTE_NAME%): the prefix itself, `= /path`
 * for an exact path, `~ regex` for a regex (NGINX's location syntax), then ` if <conditions>`.
 */
export function routeName({ match, headers }: RouteGroup): string {
  const base = match.kind === 'prefix' ? match.value : `${match.kind === 'path' ? '=' : '~'} ${match.value}`;
  return headers.length === 0 ? base : `${base} if ${headers.map(conditionText).join(' and ')}`;
}

/** For messages: `prefix "/api"`, `path "/health" with headers x-canary=true`. */
export function describeRoute({ match, headers }: RouteGroup): string {
  const base = `${match.kind} "${match.value}"`;
  return headers.length === 0 ? base : `${base} with header${headers.length > 1 ? 's' : ''} ${headers.map(conditionText).join(' and ')}`;
}

const PATH_KIND_ORDER: Readonly<Record<PathMatch['kind'], number>> = { path: 0, regex: 1, prefix: 2 };
/** How narrow a header condition is: an exact value implies a prefix of it implies presence. */
const CONDITION_RANK: Readonly<Record<HeaderCondition['kind'], number>> = { exact: 0, regex: 1, prefix: 2, present: 3, absent: 3 };

/**
 * Routes of a virtual host, one per (path match, header conditions). Envoy takes the first route
 * that matches, so the order puts the more specific first, whatever the order in the file:
 *  1. by path: exact paths, then regexes (in the order the file lists them), then prefixes,
 *     longest first (`/api/foobar` before `/api`);
 *  2. on the same path match: more header conditions first (a route with none, the catch-all of
 *     that path, comes last), then narrower conditions (exact before regex before prefix before
 *     presence; a longer prefix first).
 * So a condition set that implies another's always comes first, and no route is hidden behind
 * one that matches every request it would. Ties sort by text, for stable output.
 */
export function routeGroups(vhost: VirtualHostConfig): readonly RouteGroup[] {
  const groups = new Map<string, { match: PathMatch; headers: readonly HeaderCondition[]; members: RouteMember[]; clusters: Set<string> }>();
  // Regexes cannot be ranked by what they match: they keep the order the file lists them in.
  const regexOrder = new Map<string, number>();
  for (const [cluster, entry] of Object.entries(vhost.cluster)) {
    const headers = headerConditions(entry.headers);
    const conditions = headers.map(conditionText).join('\u0000');
    const matches: PathMatch[] = [
      ...(entry.path ?? []).map((value) => ({ kind: 'path' as const, value })),
      ...(entry.regex ?? []).map((value) => ({ kind: 'regex' as const, value })),
      ...(entry.prefix ?? []).map((value) => ({ kind: 'prefix' as const, value })),
    ];
    for (const match of matches) {
      const key = `${match.kind}\u0000${match.value}\u0000${conditions}`;
      const group = groups.get(key) ?? { match, headers, members: [], clusters: new Set<string>() };
      if (match.kind === 'regex' && !regexOrder.has(match.value)) regexOrder.set(match.value, regexOrder.size);
      // An entry listing the same path twice is one member, not two (a set: 20,000 entries may share "/").
      if (!group.clusters.has(cluster)) {
        group.clusters.add(cluster);
        group.members.push({ cluster, entry });
      }
      groups.set(key, group);
    }
  }
  return [...groups.values()]
    .sort((a, b) => comparePath(a.match, b.match, regexOrder) || compareConditions(a.headers, b.headers))
    .map(({ match, headers, members }) => ({ match, headers, members: members.sort((x, y) => compare(x.cluster, y.cluster)) }));
}

function comparePath(a: PathMatch, b: PathMatch, regexOrder: ReadonlyMap<string, number>): number {
  const kind = PATH_KIND_ORDER[a.kind] - PATH_KIND_ORDER[b.kind];
  if (kind !== 0 || a.value === b.value) return kind;
  if (a.kind === 'regex') return (regexOrder.get(a.value) ?? 0) - (regexOrder.get(b.value) ?? 0);
  return b.value.length - a.value.length || compare(a.value, b.value);
}

function compareConditions(a: readonly HeaderCondition[], b: readonly HeaderCondition[]): number {
  const rank = (cs: readonly HeaderCondition[]): number => cs.reduce((n, c) => n + CONDITION_RANK[c.kind], 0);
  const prefixLength = (cs: readonly HeaderCondition[]): number => cs.reduce((n, c) => n + (c.kind === 'prefix' ? c.value.length : 0), 0);
  return (
    b.length - a.length ||
    rank(a) - rank(b) ||
    prefixLength(b) - prefixLength(a) ||
    compare(a.map(conditionText).join('\u0000'), b.map(conditionText).join('\u0000'))
  );
}

/** Name of the STATIC cluster translate adds for a gRPC access-log sink. */
export function accessLogClusterName(grpc: AccessLogConfig['grpc']): string {
  const plain = `consul-xds-als-${grpc.address}-${grpc.port}`;
  if (grpc.tls === undefined) return plain;
  // Listeners that reach one sink with different TLS settings need different clusters.
  const t = grpc.tls;
  const digest = createHash('sha256')
    .update(JSON.stringify([t.ca, t.cert ?? '', t.key ?? '', t.sni ?? '']))
    .digest('hex')
    .slice(0, 8);
  return `${plain}-tls-${digest}`;
}

/** Code-point order, independent of the process locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
