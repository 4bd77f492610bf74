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
  resolveConnection,
  resolveTiming,
  resolveHealthMapping,
  kvBindings,
  singleKvKey,
  checkKey,
  parseAddress,
} from './options.js';
export { ConsulClient, type ConsulRequest, type ConsulResponse, type KvEntry, kvPath, decodeKvEntry } from './client.js';
export { BlockingWatch, nextIndex, type BlockingWatchOptions, type WatchStatus, type WatchError } from './blocking-watch.js';
export { backoffDelay, type BackoffPolicy } from './backoff.js';
export { aggregateStatus, parseHealthEntries, toEndpoints, endpointHealth, type ConsulStatus, type HealthInstance, type ClusterEndpoints } from './health-entries.js';
export { checkConfigText, planKvWrite, planWeightEdit, applyKvWrite, previewKvWrite, resourceDiff, type CheckedConfig, type KvWritePlan } from './kv-config.js';
export { unifiedDiff } from './text-diff.js';
