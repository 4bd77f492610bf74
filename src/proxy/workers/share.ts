/**
 * A worker's share of the proxy-wide limits with --concurrency N. Envoy's worker threads share one
 * count per cluster (circuit breakers) and per listener (connection_limit); our workers are
 * processes with no shared counter on the request path, so each enforces its share of the limit
 * instead. In: a model as the control plane sent it, the worker's index and N. Out: the same model
 * with each limit replaced by that worker's share (a new frozen object; the input is not touched).
 */
import type { ClusterModel, ThresholdsModel } from '../config/cluster-resource.js';
import type { ListenerModel } from '../config/listener-resource.js';

/**
 * Worker `index`'s share of `limit` over `count` workers: the shares add up to `limit`, so the
 * proxy-wide total never exceeds it, and each is at least 1, so no worker refuses everything (a
 * limit below `count` therefore allows `count` in all: one per worker). 0 stays 0 (max_retries 0:
 * no retries anywhere).
 */
export function workerShare(limit: number, index: number, count: number): number {
  if (limit === 0 || count <= 1) return limit;
  return Math.max(1, Math.floor(limit / count) + (index < limit % count ? 1 : 0));
}

function thresholdsShare(t: ThresholdsModel, index: number, count: number): ThresholdsModel {
  return Object.freeze({
    maxConnections: workerShare(t.maxConnections, index, count),
    maxPendingRequests: workerShare(t.maxPendingRequests, index, count),
    maxRequests: workerShare(t.maxRequests, index, count),
    maxRetries: workerShare(t.maxRetries, index, count),
  });
}

/** The cluster with worker `index`'s share of its circuit-breaker thresholds (both priorities). */
export function clusterShare(m: ClusterModel, index: number, count: number): ClusterModel {
  if (count <= 1) return m;
  return Object.freeze({ ...m, thresholds: thresholdsShare(m.thresholds, index, count), thresholdsHigh: thresholdsShare(m.thresholdsHigh, index, count) });
}

/** The listener with worker `index`'s share of its connection_limit filter's max_connections. */
export function listenerShare(m: ListenerModel, index: number, count: number): ListenerModel {
  const f = m.filter;
  if (count <= 1 || f.kind !== 'http' || !f.connectionLimit) return m;
  const connectionLimit = Object.freeze({ ...f.connectionLimit, maxConnections: workerShare(f.connectionLimit.maxConnections, index, count) });
  return Object.freeze({ ...m, filter: Object.freeze({ ...f, connectionLimit }) });
}
