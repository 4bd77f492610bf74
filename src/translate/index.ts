/**
 * The translation stage. In: a Config and the endpoints known per cluster (static ones from the
 * config and/or Consul health). Out: the full XdsResourceSet (CDS, EDS, LDS, RDS) as protobufjs
 * `fromObject`-shaped objects, deep-frozen, in a deterministic order so the same input always
 * encodes to the same bytes (and so to the same content-hash version). The set holds the API
 * listeners of `type: grpc` listeners too; `splitForClients` (client-split.ts) divides it into
 * what Envoy is sent and what proxyless gRPC clients are sent.
 *
 * It refuses, with a ConfigError naming the config path, anything Envoy would NACK: the
 * cross-section rules of validate.ts are re-checked here for a Config that did not come through
 * parseConfig (which marks what it validated), and endpoints are checked by endpoints.ts.
 */
import type { EndpointMap } from '../config/endpoints.js';
import { deepFreeze } from '../config/deep-freeze.js';
import type { Config } from '../config/schema.js';
import { formatPath, isValidated, validateConfig } from '../config/validate.js';
import { accessLogClusterName, compare } from '../config/views.js';
import { ConfigError } from '../errors.js';
import type { ProtoObject, XdsResourceSet } from '../xds/resources.js';
import { accessLogCluster } from './access-log.js';
import { clusterResource } from './clusters.js';
import { loadAssignment } from './endpoints.js';
import { apiListener, grpcRouteConfiguration } from './grpc.js';
import { addHashPolicies } from './hash-policy.js';
import { listenerResource } from './listeners.js';
import { routeConfiguration } from './routes.js';

export { splitForClients, type ClientResourceSets } from './client-split.js';

export function translate(config: Config, endpoints: EndpointMap): XdsResourceSet {
  const problems = isValidated(config) ? [] : validateConfig(config);
  if (problems.length > 0) {
    throw new ConfigError(
      'config',
      problems.map((p) => ({ path: formatPath(p.path), message: p.message })),
    );
  }

  const clusterNames = Object.keys(config.cluster.loadbalancer).sort(compare);
  const clusters = new Map<string, ProtoObject>();
  for (const name of clusterNames) {
    const cluster = config.cluster.loadbalancer[name];
    if (cluster) clusters.set(name, clusterResource(config, name, cluster));
  }

  const listenerNames = Object.keys(config.listener).sort(compare);
  const listeners: ProtoObject[] = [];
  const routes: ProtoObject[] = [];
  for (const name of listenerNames) {
    const listener = config.listener[name];
    if (!listener) continue;
    if (listener.type === 'grpc') {
      // Served only to gRPC clients: splitForClients() keeps these out of Envoy's snapshot.
      listeners.push(apiListener(name));
      routes.push(addHashPolicies(config, grpcRouteConfiguration(config, name, listener)));
      continue;
    }
    listeners.push(listenerResource(name, listener));
    if (listener.type === 'http') routes.push(addHashPolicies(config, routeConfiguration(config, name, listener)));
    const log = listener['access-log'];
    if (log) clusters.set(accessLogClusterName(log.grpc), accessLogCluster(log));
  }

  return deepFreeze({
    clusters: [...clusters.keys()].sort(compare).map((n) => clusters.get(n) as ProtoObject),
    // Every EDS cluster gets its CLA, empty when nothing is known yet (no 15 s client stall).
    // DNS clusters carry their own load_assignment and have none.
    endpoints: clusterNames
      .filter((name) => config.cluster.loadbalancer[name]?.discovery === 'eds')
      .map((name) => loadAssignment(name, endpoints.get(name) ?? [])),
    listeners,
    routes,
  });
}
