/**
 * Who is asking: the parts of an xDS request's `core.v3.Node` that decide which snapshot a client
 * gets (group) and that operators see in status output. The server fills it from the first
 * request that carries a node; the cache's `groupOf` reads it.
 */

/** JSON value of a google.protobuf.Struct field (node metadata). */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

export interface NodeInfo {
  /** node.id; '' when the client sent no node (it should: Envoy requires one). */
  readonly id: string;
  /** node.cluster (Envoy's --service-cluster); '' when absent. */
  readonly cluster: string;
  /** node.user_agent_name, e.g. 'envoy' or 'grpc-node-js'. */
  readonly userAgentName: string;
  /** node.user_agent_version, or the build version rendered as 'major.minor.patch'. */
  readonly userAgentVersion: string;
  readonly locality?: { readonly region?: string; readonly zone?: string; readonly sub_zone?: string };
  /** node.metadata as plain JSON (Struct decoded). */
  readonly metadata: { readonly [key: string]: JsonValue };
}
