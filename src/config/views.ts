/**
 * Derived views of a Config that both validation and translation need, written once: the
 * virtual hosts by name, which ones a listener serves, the one a gRPC client picks for its
 * target, the routes of a virtual host grouped by prefix, and the access-log sinks. In: a Config
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
  for (const { members } of prefixRoutes(vhost)) {
    for (const m of members) if (members.length === 1 || (m.entry.weight ?? 0) > 0) out.add(m.cluster);
  }
  return [...out].sort(compare);
}

export interface PrefixMember {
  readonly cluster: string;
  readonly entry: RouteEntryConfig;
}

/** One Envoy route: a prefix and every `route.cluster.<name>` entry that lists it. */
export interface PrefixRoute {
  readonly prefix: string;
  /** Sorted by cluster name. */
  readonly members: readonly PrefixMember[];
}

/**
 * Routes of a virtual host, one per prefix. Envoy takes the first route that matches, so longer
 * prefixes come first (`/api/foobar` before `/api`); equal lengths sort by text for stable output.
 */
export function prefixRoutes(vhost: VirtualHostConfig): readonly PrefixRoute[] {
  const byPrefix = new Map<string, PrefixMember[]>();
  for (const [cluster, entry] of Object.entries(vhost.cluster)) {
    for (const prefix of new Set(entry.prefix)) {
      const members = byPrefix.get(prefix) ?? [];
      members.push({ cluster, entry });
      byPrefix.set(prefix, members);
    }
  }
  return [...byPrefix.entries()]
    .map(([prefix, members]) => ({ prefix, members: members.sort((a, b) => compare(a.cluster, b.cluster)) }))
    .sort((a, b) => b.prefix.length - a.prefix.length || compare(a.prefix, b.prefix));
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
