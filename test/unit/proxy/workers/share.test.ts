/**
 * A worker's share of the proxy-wide limits (src/proxy/workers/share.ts): the shares of N workers
 * add up to the configured limit (never more when it is at least N), each is at least 1, 0 stays
 * 0; a decoded Cluster's circuit breakers and a Listener's connection_limit become the share.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { messageType } from '../../../../src/envoy/protos.js';
import { TypeUrl, messageNameOf, type XdsTypeUrl } from '../../../../src/xds/resource-types.js';
import type { ProtoObject } from '../../../../src/xds/resources.js';
import { decodeResource, isRejected, type ModelOf } from '../../../../src/proxy/xds/resource-types.js';
import { clusterShare, listenerShare, workerShare } from '../../../../src/proxy/workers/share.js';

function decode<T extends XdsTypeUrl>(url: T, obj: ProtoObject): ModelOf[T] {
  const t = messageType(messageNameOf(url));
  const d = decodeResource(url, t.encode(t.fromObject(obj)).finish(), 0);
  assert.ok(!isRejected(d), isRejected(d) ? d.error : '');
  return d.model as ModelOf[T];
}

const shares = (limit: number, count: number): number[] => Array.from({ length: count }, (_, i) => workerShare(limit, i, count));
const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

describe('workerShare', () => {
  it('splits a limit so the shares add up to it: the lower workers take the remainder', () => {
    assert.deepEqual(shares(2, 2), [1, 1]);
    assert.deepEqual(shares(5, 2), [3, 2]);
    assert.deepEqual(shares(1024, 3), [342, 341, 341]);
    assert.deepEqual(shares(4294967295, 2), [2147483648, 2147483647]);
    for (const count of [2, 3, 4, 7, 16])
      for (const limit of [count, count + 1, 100, 1024]) assert.equal(sum(shares(limit, count)), limit, `${limit} over ${count}`);
  });

  it('gives every worker at least 1, so a limit below the worker count allows one per worker', () => {
    assert.deepEqual(shares(1, 2), [1, 1]);
    assert.deepEqual(shares(3, 8), [1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('keeps 0 (max_retries 0: no retries in any worker) and leaves a single process alone', () => {
    assert.deepEqual(shares(0, 4), [0, 0, 0, 0]);
    assert.deepEqual(shares(7, 1), [7]);
  });
});

describe('clusterShare / listenerShare', () => {
  const ADS = { ads: {}, resource_api_version: 'V3' };
  const cluster = decode(TypeUrl.Cluster, {
    name: 'c1',
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS },
    circuit_breakers: {
      thresholds: [
        { max_connections: { value: 8 }, max_pending_requests: { value: 3 }, max_requests: { value: 2 }, max_retries: { value: 0 } },
        { priority: 'HIGH', max_requests: { value: 5 } },
      ],
    },
  } as ProtoObject);

  it("a cluster's circuit-breaker thresholds of both priorities become the worker's share; the rest is the same", () => {
    const [w0, w1] = [clusterShare(cluster, 0, 2), clusterShare(cluster, 1, 2)];
    assert.deepEqual(w0.thresholds, { maxConnections: 4, maxPendingRequests: 2, maxRequests: 1, maxRetries: 0 });
    assert.deepEqual(w1.thresholds, { maxConnections: 4, maxPendingRequests: 1, maxRequests: 1, maxRetries: 0 });
    assert.equal(w0.thresholdsHigh.maxRequests + w1.thresholdsHigh.maxRequests, 5);
    assert.deepEqual({ ...w1, thresholds: cluster.thresholds, thresholdsHigh: cluster.thresholdsHigh }, cluster);
    assert.equal(cluster.thresholds.maxRequests, 2, 'the decoded model is not changed');
    assert.ok(Object.isFrozen(w0) && Object.isFrozen(w0.thresholds));
    assert.equal(clusterShare(cluster, 0, 1), cluster);
  });

  it("a listener's connection_limit max_connections becomes the worker's share", () => {
    const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
    const LIMIT = 'type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit';
    const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
    const listener = decode(TypeUrl.Listener, {
      name: 'l1',
      address: { socket_address: { address: '127.0.0.1', port_value: 1 } },
      filter_chains: [
        {
          filters: [
            { name: 'envoy.filters.network.connection_limit', typed_config: { '@type': LIMIT, stat_prefix: 'capped', max_connections: { value: 3 } } },
            {
              name: 'hcm',
              typed_config: {
                '@type': HCM,
                stat_prefix: 'l1',
                rds: { route_config_name: 'r1', config_source: ADS },
                http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
              },
            },
          ],
        },
      ],
    } as ProtoObject);
    const limitOf = (i: number): number | undefined => {
      const f = listenerShare(listener, i, 2).filter;
      return f.kind === 'http' ? f.connectionLimit?.maxConnections : undefined;
    };
    assert.deepEqual([limitOf(0), limitOf(1)], [2, 1]);
    assert.equal(listener.filter.kind === 'http' && listener.filter.connectionLimit?.maxConnections, 3, 'the decoded model is not changed');
  });
});
