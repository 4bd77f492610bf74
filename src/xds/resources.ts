/**
 * What translate hands to the snapshot cache: plain objects in protobufjs `fromObject` shape
 * (snake_case field names, Durations as {seconds, nanos}, Any as {'@type': url, ...fields}),
 * one list per resource type. Every object has a non-empty `name` (or `cluster_name` for CLAs).
 */
export type ProtoObject = { readonly [field: string]: unknown };

export interface XdsResourceSet {
  /** envoy.config.cluster.v3.Cluster */
  readonly clusters: readonly ProtoObject[];
  /** envoy.config.endpoint.v3.ClusterLoadAssignment */
  readonly endpoints: readonly ProtoObject[];
  /** envoy.config.listener.v3.Listener */
  readonly listeners: readonly ProtoObject[];
  /** envoy.config.route.v3.RouteConfiguration */
  readonly routes: readonly ProtoObject[];
}
