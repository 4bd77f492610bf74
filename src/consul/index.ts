/**
 * Consul integration, public surface: options (what `serve` accepts as `consul`), the HTTP client,
 * the blocking-query loop and the health-entry mapping. The sources built on them live in
 * src/sources/consul-kv.ts and src/sources/consul-health.ts.
 */
export {
  type ConsulOptions,
  type ConsulTlsOptions,
  type ConsulWatchTiming,
  type ConsulHealthMapping,
  type ConsulConnection,
  type KvBinding,
  DEFAULT_CONSUL_ADDRESS,
  DEFAULT_CONSUL_KEY,
  DEFAULT_GROUP,
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_TIMING,
  DEFAULT_HEALTH_MAPPING,
  DEFAULT_EMPTY_GRACE_MS,
  DEFAULT_CONSISTENCY,
  type ConsulConsistency,
  consistencyQuery,
  resolveEmptyGraceMs,
  resolveConnection,
  resolveTiming,
  resolveHealthMapping,
  kvBindings,
  singleKvKey,
  checkKey,
  parseAddress,
} from './options.js';
export { ConsulClient, ConsulThrottledError, parseRetryAfter, type ConsulRequest, type ConsulResponse, type KvEntry, kvPath, decodeKvEntry } from './client.js';
export { BlockingWatch, nextIndex, type ChangeInfo, type BlockingWatchOptions, type WatchStatus, type WatchError } from './blocking-watch.js';
export { backoffDelay, retryDelay, type BackoffPolicy } from '../common/backoff.js';
export { InstanceHold, type HoldReason, type HoldStatus } from './instance-hold.js';
export {
  aggregateStatus,
  decodeHealthAnswer,
  parseHealthEntries,
  toEndpoints,
  fitWeights,
  type HealthAnswer,
  endpointHealth,
  type ConsulStatus,
  type HealthInstance,
  type ClusterEndpoints,
} from './health-entries.js';
