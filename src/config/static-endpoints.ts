/**
 * File mode's endpoints. In: a Config. Out: an EndpointMap with, for every cluster whose
 * `endpoint.eds.<cluster>.static` list is set (even empty), those instances. A cluster with a
 * static list is never looked up in Consul; clusters without one are absent from the map.
 */
import type { EndpointHealth, EndpointInfo, EndpointMap } from './endpoints.js';
import type { Config, StaticEndpointConfig } from './schema.js';

const HEALTH: Readonly<Record<StaticEndpointConfig['health'], EndpointHealth>> = {
  healthy: 'HEALTHY',
  unhealthy: 'UNHEALTHY',
  draining: 'DRAINING',
  degraded: 'DEGRADED',
  timeout: 'TIMEOUT',
  unknown: 'UNKNOWN',
};

export function staticEndpoints(config: Config): EndpointMap {
  const out = new Map<string, readonly EndpointInfo[]>();
  for (const [cluster, eds] of Object.entries(config.endpoint.eds)) {
    if (!eds.static) continue;
    out.set(
      cluster,
      Object.freeze(
        eds.static.map((ep, i): EndpointInfo => {
          // validate.ts guarantees one of the two ports is set.
          const port = ep.port ?? eds.port ?? 0;
          return Object.freeze({
            address: ep.address,
            port,
            health: HEALTH[ep.health],
            origin: `static:endpoint.eds.${cluster}.static[${i}]`,
            ...(ep.region !== undefined ? { region: ep.region } : {}),
            ...(ep.zone !== undefined ? { zone: ep.zone } : {}),
            ...(ep.weight !== undefined ? { weight: ep.weight } : {}),
          });
        }),
      ),
    );
  }
  return out;
}
