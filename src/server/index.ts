/**
 * The xDS server stage: snapshots in (from the cache), xDS streams out (State of the World and
 * incremental/delta, on one port), and a registry of connected clients for admin, metrics and
 * health. See xds-server.ts.
 *
 * Layout: the per-stream machinery every protocol shares sits here (stream-session.ts: the call's
 * lifecycle, node, watch, ordered flush, warming hand-over; stream-state.ts: what a stream holds
 * per type; stream-observer.ts: how a stream reports to the registry; subscriptions.ts;
 * response-writer.ts). Each protocol's rules sit in their own folder: sotw/ (State of the World)
 * and delta/ (incremental).
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
export type { StreamStatus, TypeStatus, NackRecord, StreamMethod, StreamProtocol } from './stream-state.js';
export type { StreamObserver } from './stream-observer.js';
