/**
 * ClusterLoadAssignment (EDS) -> EndpointsModel. In: a decoded CLA (or a STATIC cluster's inline
 * load_assignment). Out: frozen localities with their priority, weight and endpoints (IP, port,
 * weight, health), or a ResourceError naming the field the proxy cannot honour.
 *
 * Refused: hostnames instead of IP literals (except in the load_assignment of a STRICT_DNS /
 * LOGICAL_DNS cluster, whose names upstream/dns-resolver.ts resolves), named ports, pipes,
 * drop_overloads (would drop traffic we do not drop), per-endpoint health-check overrides.
 */
import { isIP } from 'node:net';
import type { FieldReader } from './field-reader.js';
import { SUPPORT } from './support.js';

export type EdsHealth = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';
const HEALTH: readonly EdsHealth[] = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'];

export interface LocalityModel {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

export interface EndpointModel {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly health: EdsHealth;
  readonly hostname: string;
}

export interface LocalityEndpointsModel {
  readonly locality: LocalityModel;
  /** load_balancing_weight of the locality; 0 when unset (the locality then gets no traffic under locality weighting). */
  readonly weight: number;
  readonly priority: number;
  readonly endpoints: readonly EndpointModel[];
}

export interface EndpointsModel {
  readonly clusterName: string;
  readonly localities: readonly LocalityEndpointsModel[];
  /** Envoy's overprovisioning factor in percent (default 140). */
  readonly overprovisioningFactor: number;
}

export function readLocality(r: FieldReader | undefined): LocalityModel {
  if (!r) return { region: '', zone: '', subZone: '' };
  return Object.freeze({ region: r.string('region') ?? '', zone: r.string('zone') ?? '', subZone: r.string('sub_zone') ?? '' });
}

/**
 * Reads a ClusterLoadAssignment; `requireName` is false for a Cluster's inline load_assignment,
 * `names` is true for a DNS cluster's (its addresses are names to resolve).
 */
export function readLoadAssignment(r: FieldReader, requireName: boolean, names = false): EndpointsModel {
  const clusterName = requireName ? r.requiredString('cluster_name') : (r.string('cluster_name') ?? '');
  const localities = r.list('endpoints').map((l) => readLocalityEndpoints(l, names));
  const policy = r.message('policy');
  let overprovisioningFactor = 140;
  if (policy) {
    policy.declare(SUPPORT['ClusterLoadAssignment.policy']);
    overprovisioningFactor = policy.wrapped('overprovisioning_factor') ?? 140;
    if (overprovisioningFactor < 1) throw policy.error('overprovisioning_factor', 'must be >= 1');
  }
  r.declare(SUPPORT.ClusterLoadAssignment);
  // Priorities must be contiguous from 0 (Envoy's rule).
  const prios = [...new Set(localities.map((l) => l.priority))].sort((a, b) => a - b);
  prios.forEach((p, i) => {
    if (p !== i) throw r.error('endpoints', `priorities must be contiguous from 0; found ${prios.join(', ')}`);
  });
  return Object.freeze({ clusterName, localities: Object.freeze(localities), overprovisioningFactor });
}

function readLocalityEndpoints(r: FieldReader, names: boolean): LocalityEndpointsModel {
  const locality = readLocality(r.message('locality'));
  const weight = r.wrapped('load_balancing_weight') ?? 0;
  if (r.has('load_balancing_weight') && weight < 1) throw r.error('load_balancing_weight', 'must be >= 1');
  const priority = r.number('priority') ?? 0;
  r.declare(SUPPORT['ClusterLoadAssignment.endpoints']);
  const endpoints = r.list('lb_endpoints').map((e) => readLbEndpoint(e, names));
  return Object.freeze({ locality, weight, priority, endpoints: Object.freeze(endpoints) });
}

function readLbEndpoint(r: FieldReader, names: boolean): EndpointModel {
  r.declare(SUPPORT['ClusterLoadAssignment.endpoints.lb_endpoints']);
  const health = r.enumOf('health_status', HEALTH, 'UNKNOWN');
  const weight = r.wrapped('load_balancing_weight') ?? 1;
  if (weight < 1) throw r.error('load_balancing_weight', 'must be >= 1');
  const ep = r.message('endpoint');
  if (!ep) throw r.error('endpoint', 'must be set');
  const { address, port } = readSocketAddress(ep.message('address'), ep, 'address', names);
  ep.declare(SUPPORT['ClusterLoadAssignment.endpoints.lb_endpoints.endpoint']);
  const hostname = ep.string('hostname') ?? '';
  return Object.freeze({ address, port, weight, health, hostname });
}

/** core.v3.Address with a socket_address of an IP literal (or, with `names`, a DNS name) and a numeric port. */
export function readSocketAddress(addr: FieldReader | undefined, parent: FieldReader, key: string, names = false): { address: string; port: number } {
  if (!addr) throw parent.error(key, 'must be set');
  addr.declare(SUPPORT.Address);
  const sa = addr.message('socket_address');
  if (!sa) throw addr.error('socket_address', 'must be set');
  sa.enumOf('protocol', ['TCP'] as const, 'TCP');
  const address = sa.requiredString('address');
  if (!names && isIP(address) === 0)
    throw sa.error('address', `'${address}' is not an IP literal (names are resolved only for STRICT_DNS and LOGICAL_DNS clusters)`);
  sa.declare(SUPPORT['Address.socket_address']);
  const port = sa.number('port_value') ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw sa.error('port_value', 'must be 0-65535');
  return { address, port };
}
