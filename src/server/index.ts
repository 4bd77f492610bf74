/**
 * The xDS server stage: snapshots in (from the cache), State-of-the-World xDS streams out, and a
 * registry of connected clients for admin, metrics and health. See xds-server.ts.
 */
export { createXdsServer, type XdsServer, type XdsServerOptions, type XdsServerStats } from './xds-server.js';
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
