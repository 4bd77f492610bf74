/**
 * /config_dump in Envoy's shape. In: the resources the xDS client accepted (bytes, version, time)
 * and the listener warming state. Out: {configs: [Bootstrap, Clusters, Listeners, Routes,
 * (Endpoints with include_eds)]ConfigDump} rendered as proto3 JSON, so tools and test helpers
 * written against Envoy's dump (dynamicVersions, routeTargets) read ours unchanged.
 */
import { TypeUrl } from '../../xds/resource-types.js';
import { bytesToJson, type Json } from '../config/proto-json.js';
import type { KnownResource, XdsClient } from '../xds/ads-client.js';
import type { Bootstrap } from '../config/bootstrap.js';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

function entries(client: Pick<XdsClient, 'known'>, url: (typeof TypeUrl)[keyof typeof TypeUrl]): Array<[string, KnownResource]> {
  return [...client.known(url)].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function configDump(
  client: Pick<XdsClient, 'known' | 'status'>,
  listeners: { get(name: string): { readonly warm: boolean } | undefined },
  bootstrap: Bootstrap,
  includeEds: boolean,
): { configs: Json[] } {
  const status = new Map(client.status().map((s) => [s.type, s]));
  const configs: Json[] = [
    {
      '@type': `${ADMIN}BootstrapConfigDump`,
      bootstrap: {
        node: { id: bootstrap.node.id, cluster: bootstrap.node.cluster, user_agent_name: 'consul-xds-proxy' },
        dynamic_resources: { ads_config: { api_type: bootstrap.apiType ?? 'GRPC', target: `${bootstrap.xds.host}:${bootstrap.xds.port}` } },
      },
    },
    {
      '@type': `${ADMIN}ClustersConfigDump`,
      version_info: status.get('CDS')?.version ?? '',
      dynamic_active_clusters: entries(client, TypeUrl.Cluster).map(([, r]) => ({
        version_info: r.version,
        cluster: bytesToJson(TypeUrl.Cluster, r.bytes),
        last_updated: r.updated.toISOString(),
      })),
    },
    {
      '@type': `${ADMIN}ListenersConfigDump`,
      version_info: status.get('LDS')?.version ?? '',
      dynamic_listeners: entries(client, TypeUrl.Listener).map(([name, r]) => {
        const state = { version_info: r.version, listener: bytesToJson(TypeUrl.Listener, r.bytes), last_updated: r.updated.toISOString() };
        const warm = listeners.get(name)?.warm ?? false;
        const entry: Json = warm ? { name, active_state: state } : { name, warming_state: state };
        return entry;
      }),
    },
    {
      '@type': `${ADMIN}RoutesConfigDump`,
      dynamic_route_configs: entries(client, TypeUrl.RouteConfiguration).map(([, r]) => ({
        version_info: r.version,
        route_config: bytesToJson(TypeUrl.RouteConfiguration, r.bytes),
        last_updated: r.updated.toISOString(),
      })),
    },
  ];
  if (includeEds) {
    configs.push({
      '@type': `${ADMIN}EndpointsConfigDump`,
      dynamic_endpoint_configs: entries(client, TypeUrl.ClusterLoadAssignment).map(([, r]) => ({
        version_info: r.version,
        endpoint_config: bytesToJson(TypeUrl.ClusterLoadAssignment, r.bytes),
        last_updated: r.updated.toISOString(),
      })),
    });
  }
  return { configs };
}
