/**
 * Endpoints of a STRICT_DNS / LOGICAL_DNS cluster (Envoy's strict_dns and logical_dns clusters).
 * In: the cluster's DnsModel (names with ports, refresh rate, TTL policy, address family). Out:
 * an EndpointsModel of IP endpoints, handed to `onEndpoints` after the first resolution and
 * again whenever a later one gives different addresses. STRICT_DNS makes a host of every address
 * of every name; LOGICAL_DNS takes the first address of its one name.
 *
 * Each name is resolved again every `refreshMs` (or after the record's TTL with respect_dns_ttl,
 * when the resolver knows it). A failed resolution keeps the name's last addresses, as Envoy
 * does, and is tried again at the refresh rate.
 */
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import type { DnsLookupFamily, DnsModel } from '../config/cluster-resource.js';
import type { EndpointModel, EndpointsModel } from '../config/endpoint-resource.js';

export interface ResolvedAddress {
  readonly address: string;
  /** Seconds the record may be cached, when the resolver says. */
  readonly ttlS?: number;
}

/** Resolves a name into its addresses of `family`; rejects when the name does not resolve. */
export type DnsLookup = (name: string, family: DnsLookupFamily, withTtl: boolean) => Promise<readonly ResolvedAddress[]>;

export class DnsResolver {
  /** Addresses per endpoint (locality index, endpoint index), the last ones a resolution gave. */
  private readonly resolved = new Map<string, readonly string[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Endpoints resolved (or failed) at least once: the first hand-over waits for all of them. */
  private readonly tried = new Set<string>();
  private readonly total: number;
  private lastKey = '';
  private closed = false;

  constructor(
    private readonly model: DnsModel,
    private readonly onEndpoints: (e: EndpointsModel) => void,
    private readonly lookup: DnsLookup = systemLookup,
  ) {
    const all = model.targets.localities.flatMap((l, li) => l.endpoints.map((ep, ei) => ({ ep, key: `${li}/${ei}` })));
    this.total = all.length;
    if (all.length === 0) this.publish();
    for (const { ep, key } of all) void this.resolve(ep, key);
  }

  private async resolve(ep: EndpointModel, key: string): Promise<void> {
    let nextMs = this.model.refreshMs;
    try {
      const found = isIP(ep.address) !== 0 ? [{ address: ep.address }] : await this.lookup(ep.address, this.model.family, this.model.respectTtl);
      const addresses = found.map((a) => a.address);
      this.resolved.set(key, this.model.strict ? addresses : addresses.slice(0, 1));
      // Envoy's rule: a TTL of 0 (or none known) leaves the refresh rate in charge.
      const ttls = found.map((a) => a.ttlS ?? 0).filter((t) => t > 0);
      if (this.model.respectTtl && ttls.length > 0) nextMs = Math.min(...ttls) * 1000;
    } catch {
      // Keep the last addresses: a resolver hiccup must not empty the cluster.
    }
    if (this.closed) return;
    this.tried.add(key);
    if (this.tried.size === this.total) this.publish();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.resolve(ep, key);
    }, nextMs);
    timer.unref();
    this.timers.add(timer);
  }

  /** Hands over the endpoints when they differ from the last ones handed over. */
  private publish(): void {
    const t = this.model.targets;
    const localities = t.localities.map((l, li) =>
      Object.freeze({
        ...l,
        endpoints: Object.freeze(
          l.endpoints.flatMap((ep, ei) => (this.resolved.get(`${li}/${ei}`) ?? []).map((address) => Object.freeze({ ...ep, address, hostname: ep.address }))),
        ),
      }),
    );
    const key = JSON.stringify(localities.map((l) => l.endpoints.map((e) => `${e.address}:${e.port}`)));
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.onEndpoints(Object.freeze({ ...t, localities: Object.freeze(localities) }));
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

/**
 * The system's resolver, /etc/hosts included (getaddrinfo through dns.lookup). With a TTL asked
 * for, DNS is queried first (resolve4/resolve6 report TTLs); names it cannot answer, such as
 * /etc/hosts entries, fall back to getaddrinfo without a TTL.
 */
export async function systemLookup(name: string, family: DnsLookupFamily, withTtl: boolean): Promise<readonly ResolvedAddress[]> {
  if (withTtl) {
    const [v4, v6] = await Promise.all([
      family === 'V6_ONLY' ? [] : dns.resolve4(name, { ttl: true }).catch(() => []),
      family === 'V4_ONLY' ? [] : dns.resolve6(name, { ttl: true }).catch(() => []),
    ]);
    const picked = pickFamily(
      v4.map((r) => ({ address: r.address, ttlS: r.ttl, v6: false })),
      v6.map((r) => ({ address: r.address, ttlS: r.ttl, v6: true })),
      family,
    );
    if (picked.length > 0) return picked.map(({ address, ttlS }) => ({ address, ttlS }));
  }
  const all = await dns.lookup(name, { all: true, family: family === 'V4_ONLY' ? 4 : family === 'V6_ONLY' ? 6 : 0 });
  const picked = pickFamily(
    all.filter((a) => a.family === 4).map((a) => ({ address: a.address, v6: false })),
    all.filter((a) => a.family === 6).map((a) => ({ address: a.address, v6: true })),
    family,
  );
  if (picked.length === 0) throw new Error(`${name}: no address of family ${family}`);
  return picked.map(({ address }) => ({ address }));
}

/** Envoy's dns_lookup_family: AUTO prefers IPv6, V4_PREFERRED IPv4, ALL takes both. */
function pickFamily<T>(v4: readonly T[], v6: readonly T[], family: DnsLookupFamily): readonly T[] {
  switch (family) {
    case 'V4_ONLY':
      return v4;
    case 'V6_ONLY':
      return v6;
    case 'V4_PREFERRED':
      return v4.length > 0 ? v4 : v6;
    case 'ALL':
      return [...v4, ...v6];
    default:
      return v6.length > 0 ? v6 : v4;
  }
}
