/**
 * What the Consul health watcher must follow. In: a Config. Out: for every cluster that takes its
 * endpoints from Consul (`discovery: eds` without an `endpoint.eds.<cluster>.static` list), the Consul service
 * to watch (`endpoint.eds.<cluster>.service`, else the cluster name, as in seed 001) and the port
 * that overrides Consul's Service.Port when the config sets `endpoint.eds.<cluster>.port`.
 * Sorted by cluster name. Several clusters may watch the same service.
 */
import type { Config } from './schema.js';
import { compare } from './views.js';

export interface EdsService {
  /** Cluster (= EndpointMap key) the instances belong to. */
  readonly cluster: string;
  /** Consul service name to watch. */
  readonly service: string;
  /** Port to use instead of Service.Port. */
  readonly port?: number;
}

export function edsServices(config: Config): ReadonlyArray<EdsService> {
  return Object.freeze(
    Object.keys(config.cluster.loadbalancer)
      .sort(compare)
      .flatMap((cluster): EdsService[] => {
        const eds = config.endpoint.eds[cluster];
        // DNS clusters resolve their `hosts` in the data plane; static endpoints need no watch.
        if (eds?.static || config.cluster.loadbalancer[cluster]?.discovery !== 'eds') return [];
        return [
          Object.freeze({
            cluster,
            service: eds?.service ?? cluster,
            ...(eds?.port !== undefined ? { port: eds.port } : {}),
          }),
        ];
      }),
  );
}
