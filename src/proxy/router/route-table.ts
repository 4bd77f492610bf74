/**
 * Request -> route, for one RouteConfiguration. In: a RouteConfigModel. Out: `match(request)`:
 * the virtual host chosen by the authority and the first route of it whose match holds, or
 * undefined (404 in the caller).
 *
 * Virtual hosts follow Envoy's order, regardless of their order in the config: an exact domain,
 * then the longest `*.suffix` wildcard, then the longest `prefix*` wildcard, then `*`. The full
 * authority (port included) is matched, so `example.com:8080` only matches a domain that names
 * the port, unless ignore_port_in_host_matching is set (or the HCM strips the port). Exact
 * authorities seen before are cached, so steady traffic does one Map lookup per request.
 */
import type { HeaderSource, RouteConfigModel, RouteModel, VirtualHostModel } from '../config/route-resource.js';

/** What matching needs from a request. */
export interface RoutableRequest extends HeaderSource {
  readonly authority: string;
  /** The :path, query string included. */
  readonly path: string;
}

interface CompiledVhost {
  readonly model: VirtualHostModel;
}

const CACHE_LIMIT = 4096;

export class RouteTable {
  private readonly exact = new Map<string, CompiledVhost>();
  private readonly suffixes: Array<[string, CompiledVhost]> = [];
  private readonly prefixes: Array<[string, CompiledVhost]> = [];
  private readonly any: CompiledVhost | undefined;
  private readonly cache = new Map<string, CompiledVhost | null>();

  constructor(readonly config: RouteConfigModel) {
    let any: CompiledVhost | undefined;
    for (const model of config.virtualHosts) {
      const vh: CompiledVhost = { model };
      for (const d of model.domains) {
        if (d === '*') any = vh;
        else if (d.startsWith('*')) this.suffixes.push([d.slice(1), vh]);
        else if (d.endsWith('*')) this.prefixes.push([d.slice(0, -1), vh]);
        else this.exact.set(d, vh);
      }
    }
    this.any = any;
    // Longest wildcard first: `*.api.example.com` wins over `*.example.com`.
    this.suffixes.sort((a, b) => b[0].length - a[0].length);
    this.prefixes.sort((a, b) => b[0].length - a[0].length);
  }

  virtualHost(authority: string): VirtualHostModel | undefined {
    let vh = this.cache.get(authority);
    if (vh === undefined) {
      vh = this.lookup(authority) ?? null;
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(authority, vh);
    }
    return vh?.model;
  }

  private lookup(authority: string): CompiledVhost | undefined {
    let host = authority.toLowerCase();
    if (this.config.ignorePortInHostMatching) host = stripPort(host);
    const exact = this.exact.get(host);
    if (exact) return exact;
    for (const [suffix, vh] of this.suffixes) if (host.length > suffix.length && host.endsWith(suffix)) return vh;
    for (const [prefix, vh] of this.prefixes) if (host.length > prefix.length && host.startsWith(prefix)) return vh;
    return this.any;
  }

  match(req: RoutableRequest): RouteModel | undefined {
    const vh = this.virtualHost(req.authority);
    if (!vh) return undefined;
    const path = req.path;
    let pathOnly: string | undefined;
    let lower: string | undefined;
    let query: URLSearchParams | undefined;
    for (const route of vh.routes) {
      const m = route.match;
      switch (m.kind) {
        case 'prefix':
          if (m.caseSensitive) {
            if (!path.startsWith(m.value)) continue;
          } else {
            lower ??= path.toLowerCase();
            if (!lower.startsWith(m.value)) continue;
          }
          break;
        case 'path': {
          pathOnly ??= withoutQuery(path);
          if (m.caseSensitive ? pathOnly !== m.value : pathOnly.toLowerCase() !== m.value) continue;
          break;
        }
        case 'separated': {
          pathOnly ??= withoutQuery(path);
          const p = m.caseSensitive ? pathOnly : pathOnly.toLowerCase();
          if (!(p === m.value || (p.startsWith(m.value) && p.charCodeAt(m.value.length) === 47))) continue;
          break;
        }
        case 'regex':
          pathOnly ??= withoutQuery(path);
          if (!m.regex?.testExact(pathOnly)) continue;
          break;
      }
      if (m.headers.length > 0 && !m.headers.every((h) => h.test(req.header(h.name)))) continue;
      if (m.grpcOnly && !(req.header('content-type') ?? '').startsWith('application/grpc')) continue;
      if (m.query.length > 0) {
        query ??= new URLSearchParams(queryOf(path));
        const q = query;
        if (!m.query.every((qm) => (q.has(qm.name) ? (qm.test ? qm.test(q.get(qm.name) ?? '') : true) : false))) continue;
      }
      if (m.fraction && Math.random() * m.fraction.denominator >= m.fraction.numerator) continue;
      return route;
    }
    return undefined;
  }
}

export function withoutQuery(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

function queryOf(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? '' : path.slice(q + 1);
}

/** `host:port` -> `host`; IPv6 literals keep their brackets. */
export function stripPort(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end < 0 ? authority : authority.slice(0, end + 1);
  }
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}
