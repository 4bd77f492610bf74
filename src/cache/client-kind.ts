/**
 * Which kind of xDS client a node is, and so which snapshot of its group it is served. In: the
 * node (NodeInfo). Out: `envoy` or `grpc`, and a GroupOf for SnapshotCache that sends gRPC
 * clients to `<group>/grpc` (the publisher's snapshot holding only API listeners) and everything
 * else to `<group>` (no API listeners: Envoy refuses them over LDS).
 *
 * The kind comes from node metadata `consul-xds.kind: envoy|grpc` when set (an operator's
 * override), else from `user_agent_name`: gRPC libraries send "gRPC Node Pure JS", "gRPC Go",
 * "gRPC Java", "gRPC C-core ..."; Envoy sends "envoy". Anything else is served like Envoy, which
 * is what every node got before gRPC clients were served.
 */
import { defaultGroupOf, type GroupOf } from './snapshot-cache.js';
import type { NodeInfo } from './node-info.js';

export type ClientKind = 'envoy' | 'grpc';

/** Node metadata key that overrides the user agent: `consul-xds.kind: grpc`. */
export const CLIENT_KIND_METADATA_KEY = 'consul-xds.kind';

const GRPC_SUFFIX = '/grpc';
const GRPC_USER_AGENT = /^grpc\b/i;

export function clientKindOf(node: NodeInfo | undefined): ClientKind {
  if (node === undefined) return 'envoy';
  const declared = node.metadata[CLIENT_KIND_METADATA_KEY];
  if (declared === 'envoy' || declared === 'grpc') return declared;
  return GRPC_USER_AGENT.test(node.userAgentName) ? 'grpc' : 'envoy';
}

/** The group holding a group's gRPC snapshot: `default` -> `default/grpc`. */
export function grpcGroup(group: string): string {
  return `${group}${GRPC_SUFFIX}`;
}

export function isGrpcGroup(group: string): boolean {
  return group.endsWith(GRPC_SUFFIX);
}

/** The group a `/grpc` snapshot belongs to (`default/grpc` -> `default`); others as they are. */
export function baseGroup(group: string): string {
  return isGrpcGroup(group) ? group.slice(0, -GRPC_SUFFIX.length) : group;
}

/**
 * Wraps a GroupOf (by default: `node.cluster` when such a group exists, else `default`). The base
 * never sees the `/grpc` groups, so no Envoy can land on API listeners. A gRPC client gets the
 * base group's `/grpc` snapshot when one exists, else the base group itself (whose LDS has no
 * API listener, so the client reports the listener as missing instead of hanging).
 */
export function clientKindGroupOf(base: GroupOf = defaultGroupOf): GroupOf {
  return (node, has) => {
    const group = base(node, (g) => !isGrpcGroup(g) && has(g));
    if (clientKindOf(node) !== 'grpc') return group;
    const grpc = grpcGroup(group);
    return has(grpc) ? grpc : group;
  };
}
