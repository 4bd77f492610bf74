/**
 * Derived views of a Config that both validation and translation need, written once: the
 * virtual hosts by name, which ones a listener serves, the routes of a virtual host grouped by
 * prefix, and the access-log sinks. In: a Config (or parts). Out: plain read-only structures,
 * always in a deterministic order.
 */
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

/** The virtual hosts an http listener serves: those it names, or all of them. Unknown names are skipped. */
export function listenerVirtualHosts(config: Config, listener: ListenerConfig): readonly NamedVirtualHost[] {
  const all = virtualHosts(config);
  const wanted = listener['virtual-hosts'];
  if (!wanted) return all;
  const set = new Set(wanted);
  return all.filter((v) => set.has(v.name));
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
  return `consul-xds-als-${grpc.address}-${grpc.port}`;
}

/** Code-point order, independent of the process locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
