/**
 * The xDS server stage: snapshots in (from the cache), State-of-the-World xDS streams out, and a
 * registry of connected clients for admin, metrics and health. See xds-server.ts.
 *
 * Layout: the per-stream machinery every protocol shares sits here (stream-session.ts: the call's
 * lifecycle, node, watch; stream-state.ts: what a stream holds per type; stream-observer.ts: how a
 * stream reports to the registry; subscriptions.ts; response-writer.ts). Each protocol's rules
 * sit in their own folder: sotw/ (State of the World); delta/ goes beside it.
 */
export { createXdsServer, DEFAULT_XDS_LIMITS, type XdsLimits, type XdsServer, type XdsServerOptions, type XdsServerStats } from './xds-server.js';
export {
  StreamRegistry,
  type NodeStatus,
  type NodeTypeStatus,
  type RegistryEvents,
  type ResponseEvent,
  type NackEvent,
  type XdsEvent,
} from './stream-registry.js';
export type { StreamStatus, TypeStatus, NackRecord, StreamMethod } from './stream-state.js';
export type { StreamObserver } from './stream-observer.js';
