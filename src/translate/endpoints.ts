/**
 * Endpoints -> ClusterLoadAssignment, one per EDS cluster, always: a cluster with no data gets
 * `endpoints: []`, so Envoy and gRPC clients finish warming at once instead of waiting 15 s.
 * Endpoints are grouped by (region, zone); each group carries a `locality` (`{}` when unknown)
 * and a weight >= 1 (the sum of its endpoint weights), which gRPC clients require and
 * locality-weighted balancing uses. In: a cluster name and its endpoints. Out: the CLA, or a
 * ConfigError naming the endpoint when Envoy would NACK it. `endpointIssues` gives the same
 * verdict without throwing, so the publisher can refuse one cluster's endpoints and still
 * publish the others.
 */
import { isIP } from 'node:net';
import type { EndpointInfo } from '../config/endpoints.js';
import { UINT32_MAX } from '../config/schema.js';
import { compare } from '../config/views.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import type { ProtoObject } from '../xds/resources.js';

export function loadAssignment(cluster: string, endpoints: readonly EndpointInfo[]): ProtoObject {
  checkEndpoints(cluster, endpoints);
  const groups = new Map<string, { region: string; zone: string; members: EndpointInfo[] }>();
  for (const ep of endpoints) {
    const region = ep.region ?? '';
    const zone = ep.zone ?? '';
    const key = JSON.stringify([region, zone]);
    const group = groups.get(key) ?? { region, zone, members: [] };
    group.members.push(ep);
    groups.set(key, group);
  }
  const localities = [...groups.values()]
    .sort((a, b) => compare(a.region, b.region) || compare(a.zone, b.zone))
    .map((g) => {
      const locality: Record<string, string> = {};
      if (g.region) locality.region = g.region;
      if (g.zone) locality.zone = g.zone;
      const members = [...g.members].sort((a, b) => compare(a.address, b.address) || a.port - b.port);
      return {
        locality,
        load_balancing_weight: { value: members.reduce((sum, ep) => sum + (ep.weight ?? 1), 0) },
        lb_endpoints: members.map((ep) => ({
          endpoint: { address: { socket_address: { protocol: 'TCP', address: ep.address, port_value: ep.port } } },
          health_status: ep.health,
          load_balancing_weight: { value: ep.weight ?? 1 },
        })),
      };
    });
  return { cluster_name: cluster, endpoints: localities };
}

function checkEndpoints(cluster: string, endpoints: readonly EndpointInfo[]): void {
  const issues = endpointIssues(cluster, endpoints);
  if (issues.length > 0) throw new ConfigError(`endpoints of cluster ${cluster}`, issues);
}

/** What Envoy's EDS validation refuses: non-IP addresses, bad ports, weights < 1, weight sums beyond uint32. */
export function endpointIssues(cluster: string, endpoints: readonly EndpointInfo[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const sums = new Map<string, number>();
  let total = 0;
  endpoints.forEach((ep, i) => {
    const path = `${cluster}[${i}]`;
    const who = `${ep.address}:${ep.port}${ep.origin ? ` from ${ep.origin}` : ''}`;
    if (isIP(ep.address) === 0) issues.push({ path: `${path}.address`, message: `${who}: EDS endpoints need an IP address` });
    if (!Number.isInteger(ep.port) || ep.port < 1 || ep.port > 65535) issues.push({ path: `${path}.port`, message: `${who}: port must be 1-65535` });
    const w = ep.weight ?? 1;
    if (!Number.isInteger(w) || w < 1 || w > UINT32_MAX) issues.push({ path: `${path}.weight`, message: `${who}: weight must be an integer 1-${UINT32_MAX}` });
    const key = JSON.stringify([ep.region ?? '', ep.zone ?? '']);
    sums.set(key, (sums.get(key) ?? 0) + w);
    total += w;
  });
  if (total > UINT32_MAX || [...sums.values()].some((s) => s > UINT32_MAX)) {
    issues.push({ path: cluster, message: `the endpoint weights add up to more than ${UINT32_MAX}` });
  }
  return issues;
}
