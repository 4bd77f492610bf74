/**
 * Rules that span sections of a schema-valid Config, the ones Envoy would NACK or that would make
 * a snapshot inconsistent: routes, mirrors and TCP listeners naming undefined clusters, weights on
 * a shared route, route entries that match nothing or rewrite a header twice, duplicate domains
 * in one route table, listener kinds and clashing addresses, health checks missing what their
 * type needs, and what proxyless gRPC clients cannot do on the virtual host a `type: grpc`
 * listener leads them to. In: a Config. Out: every issue found, each
 * with its config path (parse.ts adds line and column).
 */
import type { ClusterConfig, Config, GrpcListenerConfig, RouteEntryConfig } from './schema.js';
import { GRPC_LB_POLICIES, GRPC_RETRY_ON, UINT32_MAX } from './schema.js';
import { durationEquals } from './duration.js';
import {
  accessLogClusterName,
  DEFAULT_VHOST,
  grpcVirtualHost,
  describeRoute,
  listenerVirtualHosts,
  routedClusters,
  routeGroups,
  virtualHosts,
  type RouteMember,
} from './views.js';

export type PathSegment = string | number;

export interface PathIssue {
  readonly path: readonly PathSegment[];
  readonly message: string;
}

/** Dotted form of a config path; list indexes in brackets: `route.domain[1]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/** The first `max` names and how many more: a message gives examples, not all 20,000 of them. */
function someNames(names: readonly string[], max = 5, sep = ', '): string {
  return names.length <= max ? names.join(sep) : `${names.slice(0, max).join(sep)}${sep}and ${names.length - max} more`;
}

/**
 * Configs whose cross-section rules have been checked (by parseConfig, in this thread or the
 * parser thread). translate() re-checks only configs not in here, so a config is validated once,
 * not again on every rebuild (an endpoint flap rebuilds the snapshot from the same config).
 */
const validated = new WeakSet<object>();

export function markValidated<T extends object>(config: T): T {
  validated.add(config);
  return config;
}

export function isValidated(config: object): boolean {
  return validated.has(config);
}

export function validateConfig(config: Config): PathIssue[] {
  const issues: PathIssue[] = [];
  const add = (path: readonly PathSegment[], message: string): void => {
    issues.push({ path, message });
  };
  const clusters = config.cluster.loadbalancer;
  const isCluster = (name: string): boolean => Object.hasOwn(clusters, name);
  const undefinedCluster = (name: string): string => `cluster "${name}" is not defined under cluster.loadbalancer`;

  // ---- virtual hosts and their routes ----
  if (config.route && config['virtual-hosts'] && Object.hasOwn(config['virtual-hosts'], DEFAULT_VHOST)) {
    add(['virtual-hosts', DEFAULT_VHOST], `the name "${DEFAULT_VHOST}" belongs to the top-level \`route\` section; pick another name`);
  }
  for (const { vhost, path } of virtualHosts(config)) {
    for (const [cluster, entry] of Object.entries(vhost.cluster)) {
      if (!isCluster(cluster)) add([...path, 'cluster', cluster], undefinedCluster(cluster));
      if (entry.mirror && !isCluster(entry.mirror.cluster)) {
        add([...path, 'cluster', cluster, 'mirror', 'cluster'], undefinedCluster(entry.mirror.cluster));
      }
      routeEntryIssues(entry, [...path, 'cluster', cluster], add);
    }
    for (const group of routeGroups(vhost)) {
      const { members } = group;
      const what = describeRoute(group);
      const at = (cluster: string, ...rest: PathSegment[]): PathSegment[] => [...path, 'cluster', cluster, ...rest];
      const first = members[0];
      if (!first) continue;
      if (members.length > 1) {
        const missing = members.filter((m) => m.entry.weight === undefined);
        const sharing = someNames(members.map((x) => x.cluster));
        for (const m of missing) {
          add(at(m.cluster, 'weight'), `required: clusters ${sharing} share ${what}, so each needs a weight`);
        }
        const total = members.reduce((sum, m) => sum + (m.entry.weight ?? 0), 0);
        if (missing.length === 0 && total < 1)
          add(at(first.cluster, 'weight'), `the weights on ${what} add up to 0; at least one cluster must receive traffic`);
        if (total > UINT32_MAX) add(at(first.cluster, 'weight'), `the weights on ${what} add up to more than ${UINT32_MAX}`);
      } else if (first.entry.weight === 0) {
        add(at(first.cluster, 'weight'), `weight 0 on the only cluster for ${what} would still send it all traffic; remove the ${group.match.kind} instead`);
      }

      // Clusters sharing a path match and its header conditions share one Envoy route: their
      // route options must agree.
      const agree = <T>(key: 'timeout' | 'retry', get: (m: RouteMember) => T | undefined, same: (a: T, b: T) => boolean): void => {
        let base: { cluster: string; value: T } | undefined;
        for (const m of members) {
          const value = get(m);
          if (value === undefined) continue;
          if (!base) base = { cluster: m.cluster, value };
          else if (!same(base.value, value)) {
            add(
              at(m.cluster, key),
              `conflicts with ${[...path, 'cluster', base.cluster, key].join('.')}: clusters sharing ${what} share one route, so its ${key} must be set once or identically`,
            );
          }
        }
      };
      agree('timeout', (m) => m.entry.timeout, durationEquals);
      agree(
        'retry',
        (m) => m.entry.retry,
        (a, b) => JSON.stringify(a) === JSON.stringify(b),
      );
      // The route carries the hash policy of the cluster it sends to: one route, one policy.
      const hashed = members.filter((m) => clusters[m.cluster]?.['hash-policy'] !== undefined);
      const hashBase = hashed[0];
      for (const m of hashed.slice(1)) {
        if (hashBase && JSON.stringify(clusters[m.cluster]?.['hash-policy']) !== JSON.stringify(clusters[hashBase.cluster]?.['hash-policy'])) {
          add(
            ['cluster', 'loadbalancer', m.cluster, 'hash-policy'],
            `differs from cluster.loadbalancer.${hashBase.cluster}.hash-policy: clusters sharing ${what} (${[...path, 'cluster'].join('.')}) share one route, so their hash policies must be identical`,
          );
        }
      }
      const mirrors = new Map<string, { cluster: string; percent: number }>();
      for (const m of members) {
        const mirror = m.entry.mirror;
        if (!mirror) continue;
        const seen = mirrors.get(mirror.cluster);
        if (seen && seen.percent !== mirror.percent) {
          add(
            at(m.cluster, 'mirror', 'percent'),
            `conflicts with the ${seen.percent}% mirror to "${mirror.cluster}" set by route entry "${seen.cluster}" on ${what}`,
          );
        }
        if (!seen) mirrors.set(mirror.cluster, { cluster: m.cluster, percent: mirror.percent });
      }
    }
  }

  // ---- listeners ----
  const boundBy = new Map<string, string>();
  const domainOwner = new Map<string, string>();
  const all = virtualHosts(config);
  const known = new Set(all.map((v) => v.name));
  const knownNames = `known: ${someNames([...known]) || 'none'}; "${DEFAULT_VHOST}" is the top-level \`route\``;
  // Listeners serving the same virtual hosts share one route table: its domains are checked once.
  const checkedTables = new Set<string>();
  // Several gRPC listeners may share a virtual host or cluster: report each problem once.
  const reported = new Set<string>();
  const addOnce = (path: readonly PathSegment[], message: string): void => {
    const key = formatPath(path);
    if (!reported.has(key)) add(path, message);
    reported.add(key);
  };
  for (const [name, l] of Object.entries(config.listener)) {
    const at = (...rest: PathSegment[]): PathSegment[] => ['listener', name, ...rest];
    if (l.type !== 'tcp') {
      (l['virtual-hosts'] ?? []).forEach((v, i) => {
        if (!known.has(v)) add(at('virtual-hosts', i), `virtual host "${v}" is not defined (${knownNames})`);
      });
    }
    if (l.type === 'grpc') {
      grpcListenerIssues(config, name, l, addOnce);
      continue;
    }
    if (l.port !== 0) {
      const key = `${l.address}:${l.port}`;
      const other = boundBy.get(key);
      if (other !== undefined) add(at('port'), `${key} is already used by listener "${other}"`);
      else boundBy.set(key, name);
    }
    if (l['access-log']) {
      const sink = accessLogClusterName(l['access-log'].grpc);
      if (isCluster(sink)) add(at('access-log'), `the access-log sink cluster name "${sink}" clashes with a cluster of the same name`);
    }
    if (l.type === 'tcp') {
      if (l.cluster === undefined) add(at('cluster'), 'required: a tcp listener proxies to this cluster');
      else if (!isCluster(l.cluster)) add(at('cluster'), undefinedCluster(l.cluster));
      for (const key of ['virtual-hosts', 'request-timeout'] as const) {
        if (l[key] !== undefined) add(at(key), 'only applies to http listeners (this one has type: tcp)');
      }
      continue;
    }
    if (l.cluster !== undefined) add(at('cluster'), 'only applies to tcp listeners; http listeners route by virtual host (set type: tcp for a TCP proxy)');
    if (!l['virtual-hosts'] && all.length === 0) {
      add(at(), 'an http listener needs a virtual host: add a `route` section (or `virtual-hosts`), or set type: tcp');
      continue;
    }
    const table = l['virtual-hosts']?.join('\u0000') ?? '';
    if (checkedTables.has(table)) continue;
    checkedTables.add(table);
    const served = listenerVirtualHosts(config, l);
    // Envoy refuses a route table in which two virtual hosts claim the same domain.
    domainOwner.clear();
    for (const { name: vname, vhost, path } of served) {
      vhost.domain.forEach((d, i) => {
        const key = d.toLowerCase();
        const owner = domainOwner.get(key);
        if (owner !== undefined && owner !== vname) {
          add([...path, 'domain', i], `domain "${d}" is also claimed by virtual host "${owner}", and listener "${name}" serves both`);
        } else if (owner === vname) {
          add([...path, 'domain', i], `domain "${d}" is listed twice`);
        }
        domainOwner.set(key, vname);
      });
    }
  }

  // ---- clusters ----
  for (const [name, c] of Object.entries(clusters)) {
    clusterOptionIssues(config, name, c, add);
    const hc = c['health-check'];
    if (!hc) continue;
    const at = (...rest: PathSegment[]): PathSegment[] => ['cluster', 'loadbalancer', name, 'health-check', ...rest];
    if (hc.type === 'http' && hc.value === undefined) add(at('value'), 'required: the path an http health check requests');
    if (hc.type === 'tcp') {
      for (const key of ['value', 'host', 'expected'] as const) {
        if (hc[key] !== undefined) add(at(key), 'only applies to http health checks (this one has type: tcp)');
      }
    }
  }

  // ---- endpoint.eds ----
  for (const [name, eds] of Object.entries(config.endpoint.eds)) {
    if (!isCluster(name)) add(['endpoint', 'eds', name], `${undefinedCluster(name)}; endpoint.eds entries configure the endpoints of a defined cluster`);
    eds.static?.forEach((ep, i) => {
      if (ep.port === undefined && eds.port === undefined)
        add(['endpoint', 'eds', name, 'static', i, 'port'], `required: neither this endpoint nor endpoint.eds.${name}.port sets a port`);
    });
  }

  return issues;
}

const DNS_ONLY = ['dns-refresh-rate', 'dns-lookup-family'] as const;

/** One cluster's own options that depend on each other: discovery and hosts, protocol, lb policy. */
function clusterOptionIssues(config: Config, name: string, c: ClusterConfig, add: (path: readonly PathSegment[], message: string) => void): void {
  const at = (...rest: PathSegment[]): PathSegment[] => ['cluster', 'loadbalancer', name, ...rest];
  if (c.discovery === 'eds') {
    if (c.hosts !== undefined) add(at('hosts'), 'only applies to discovery: strict-dns or logical-dns (this cluster takes its endpoints from EDS)');
    for (const key of DNS_ONLY) {
      if (c[key] !== undefined) add(at(key), 'only applies to discovery: strict-dns or logical-dns');
    }
  } else {
    if (c.hosts === undefined) add(at('hosts'), `required: discovery ${c.discovery} resolves these names ("name:port")`);
    else if (c.discovery === 'logical-dns' && c.hosts.length !== 1) {
      add(at('hosts'), `discovery logical-dns takes exactly one name (got ${c.hosts.length}); use strict-dns to balance over several`);
    }
    if (Object.hasOwn(config.endpoint.eds, name)) {
      add(
        ['endpoint', 'eds', name],
        `cluster "${name}" has discovery: ${c.discovery} and takes its endpoints from cluster.loadbalancer.${name}.hosts; remove this entry`,
      );
    }
  }
  if (c['max-concurrent-streams'] !== undefined && c['upstream-protocol'] !== 'http2') {
    add(at('max-concurrent-streams'), 'only applies to HTTP/2 upstreams: set upstream-protocol: http2');
  }
  c['hash-policy']?.forEach((h, i) => {
    const keys = Object.keys(h);
    if (keys.length !== 1) add(at('hash-policy', i), `expected exactly one of header, cookie, source-ip${keys.length > 1 ? ` (got ${keys.join(', ')})` : ''}`);
  });
  if (c['hash-policy'] !== undefined && c['lb-policy'] !== 'ring-hash' && c['lb-policy'] !== 'maglev') {
    add(at('hash-policy'), `only applies to lb-policy ring-hash or maglev (this cluster has ${c['lb-policy']})`);
  }
}

/** Cluster keys proxyless gRPC clients do not act on (they honour max-requests, and header hash policies only). */
const GRPC_IGNORED_CLUSTER_KEYS = ['max-concurrent-streams', 'max-requests-per-connection', 'outlier-detection', 'healthy-panic-threshold'] as const;
const GRPC_IGNORED_BREAKERS = ['max-connections', 'max-pending-requests', 'max-retries'] as const;

/** What a gRPC client would silently skip in a cluster it routes to: refused so the config never promises it. */
function grpcClusterIssues(cluster: string, c: ClusterConfig, user: string, add: (path: readonly PathSegment[], message: string) => void): void {
  const at = (...rest: PathSegment[]): PathSegment[] => ['cluster', 'loadbalancer', cluster, ...rest];
  if (c.discovery !== 'eds') add(at('discovery'), `${user}; they take endpoints from EDS only, not ${c.discovery}`);
  for (const key of GRPC_IGNORED_CLUSTER_KEYS) if (c[key] !== undefined) add(at(key), `${user}, and they do not act on ${key}`);
  for (const key of GRPC_IGNORED_BREAKERS)
    if (c['circuit-breakers']?.[key] !== undefined) add(at('circuit-breakers', key), `${user}, and they do not act on ${key}`);
  c['hash-policy']?.forEach((h, i) => {
    if (h.header === undefined) add(at('hash-policy', i), `${user}, and they hash on headers only`);
  });
}

/**
 * One route entry on its own: it must match something, list each header once (names are
 * case-insensitive) and not Host (domains match it), and rewrite each header once per direction.
 * Envoy refuses to rewrite Host through header rewrites (`host-header` does that).
 */
function routeEntryIssues(entry: RouteEntryConfig, at: readonly PathSegment[], add: (path: readonly PathSegment[], message: string) => void): void {
  if (!entry.prefix && !entry.path && !entry.regex) {
    add([...at, 'prefix'], 'required: at least one of prefix, path or regex (which requests go to this cluster)');
  }
  const firstName = new Map<string, string>();
  for (const name of Object.keys(entry.headers ?? {})) {
    // Envoy holds Host as :authority, so a condition on "host" would depend on the data plane.
    if (name.toLowerCase() === 'host') add([...at, 'headers', name], "the Host is matched by the virtual host's domain, not by a header condition");
    const other = firstName.get(name.toLowerCase());
    if (other !== undefined) add([...at, 'headers', name], `"${name}" is also listed as "${other}"; header names are case-insensitive, so list it once`);
    else firstName.set(name.toLowerCase(), name);
  }
  for (const side of ['request-headers', 'response-headers'] as const) {
    const rewrite = entry[side];
    if (!rewrite) continue;
    const owner = new Map<string, string>();
    const claim = (op: string, name: string, where: PathSegment[]): void => {
      const lower = name.toLowerCase();
      if (lower === 'host') add(where, "Host cannot be rewritten here (Envoy refuses it); use the virtual host's host-header");
      const other = owner.get(lower);
      if (other !== undefined) add(where, `"${name}" is also under ${side}.${other}; rewrite each header once`);
      else owner.set(lower, op);
    };
    for (const op of ['set', 'append', 'add-if-absent'] as const) {
      for (const name of Object.keys(rewrite[op] ?? {})) claim(op, name, [...at, side, op, name]);
    }
    rewrite.remove?.forEach((name, i) => {
      claim('remove', name, [...at, side, 'remove', i]);
    });
  }
}

/**
 * A `type: grpc` listener: its name must lead a gRPC client to exactly one virtual host, and that
 * virtual host must not ask for what the client cannot do. grpc-js-xds NACKs clusters with other
 * lb policies and endpoint lists naming one address twice; it silently ignores host rewrites,
 * header rewrites, mirrors and retries on non-gRPC conditions, and never matches `-bin` headers,
 * which would make the config promise what never happens. `add` reports a problem shared by several gRPC listeners once.
 */
function grpcListenerIssues(config: Config, name: string, listener: GrpcListenerConfig, add: (path: readonly PathSegment[], message: string) => void): void {
  const at: PathSegment[] = ['listener', name];
  const { chosen, ties } = grpcVirtualHost(config, name, listener);
  if (!chosen) {
    const candidates = someNames(
      listenerVirtualHosts(config, listener).map((v) => `${v.name} [${someNames(v.vhost.domain)}]`),
      5,
      '; ',
    );
    add(
      at,
      `no virtual host matches the gRPC target authority "${name}": a client dialing xds:///${name} needs a virtual host with the domain "${name}", a wildcard matching it, or "*" (domains are compared case-sensitively; candidates: ${candidates || 'none'})`,
    );
    return;
  }
  if (ties.length > 0) {
    const all = [chosen, ...ties].map((v) => `"${v.name}" (domain "${v.domain}")`).join(', ');
    add(
      at,
      `virtual hosts ${all} match the gRPC target authority "${name}" equally well; make one domain more specific, or list only one of them in virtual-hosts`,
    );
  }
  const user = `listener "${name}" (type: grpc) leads gRPC clients to this virtual host`;
  const { vhost, path } = chosen;
  if (vhost['host-header'] !== undefined)
    add([...path, 'host-header'], `${user}, and they cannot rewrite the authority; serve gRPC from a virtual host without host-header`);
  for (const [cluster, entry] of Object.entries(vhost.cluster)) {
    if (entry.mirror) add([...path, 'cluster', cluster, 'mirror'], `${user}, and they do not mirror requests; serve gRPC from a virtual host without mirrors`);
    for (const side of ['request-headers', 'response-headers'] as const) {
      if (entry[side]) add([...path, 'cluster', cluster, side], `${user}, and they do not rewrite headers; serve gRPC from a virtual host without ${side}`);
    }
    for (const name of Object.keys(entry.headers ?? {})) {
      if (name.toLowerCase().endsWith('-bin'))
        add([...path, 'cluster', cluster, 'headers', name], `${user}, and they never match binary (-bin) metadata, so this route would never be taken`);
    }
    const retryOn = entry.retry?.['retry-on'];
    if (retryOn && !retryOn.some((c) => (GRPC_RETRY_ON as readonly string[]).includes(c))) {
      add(
        [...path, 'cluster', cluster, 'retry', 'retry-on'],
        `${user}, and they retry only on ${GRPC_RETRY_ON.join(', ')}; none of ${retryOn.join(', ')} is one of them`,
      );
    }
  }
  for (const cluster of routedClusters(vhost)) {
    const settings = config.cluster.loadbalancer[cluster];
    if (settings) grpcClusterIssues(cluster, settings, `listener "${name}" (type: grpc) routes to this cluster`, add);
    const policy = settings?.['lb-policy'];
    if (policy !== undefined && !(GRPC_LB_POLICIES as readonly string[]).includes(policy)) {
      add(
        ['cluster', 'loadbalancer', cluster, 'lb-policy'],
        `"${policy}" is not supported by proxyless gRPC clients (only ${GRPC_LB_POLICIES.join(', ')}), and listener "${name}" (type: grpc) routes to this cluster`,
      );
    }
    if (config.cluster.loadbalancer[cluster]?.tls) {
      add(
        ['cluster', 'loadbalancer', cluster, 'tls'],
        `proxyless gRPC clients do not take TLS settings from a Cluster, and listener "${name}" (type: grpc) routes to this cluster`,
      );
    }
    const eds = config.endpoint.eds[cluster];
    const first = new Map<string, number>();
    eds?.static?.forEach((ep, i) => {
      const key = `${ep.address}:${ep.port ?? eds.port ?? ''}`;
      const j = first.get(key);
      if (j === undefined) first.set(key, i);
      else
        add(
          ['endpoint', 'eds', cluster, 'static', i],
          `${key} is already listed at static[${j}]; gRPC clients refuse endpoints that list one address twice, and listener "${name}" (type: grpc) routes to this cluster`,
        );
    });
  }
}
