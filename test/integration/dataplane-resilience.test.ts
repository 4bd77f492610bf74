/**
 * Passive health and overload protection of our data plane, from hand-written clusters served
 * by a real xDS server:
 *  - outlier detection: a host answering 500 is ejected after consecutive_5xx failures (exactly
 *    that many reach the client, then only the healthy host answers) and returns after the
 *    ejection time;
 *  - circuit breakers: with max_requests 2, a burst of 6 slow requests gets 2 answers from the
 *    upstream and 4 immediate 503s marked x-envoy-overloaded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { ProtoObject } from '../../src/xds/resources.js';
import { startXds, type XdsHarness } from '../support/xds-harness.js';
import { startDataplane, type DataplaneHandle } from '../support/dataplane.js';
import { listenHttp, UPSTREAM_HEADER } from '../support/upstreams.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ADS = { ads: {}, resource_api_version: 'V3' };

async function startFixed(name: string, status: number, delayMs = 0): Promise<{ port: number; close(): Promise<void> }> {
  return listenHttp((req, res) => {
    req.resume();
    setTimeout(() => {
      res.statusCode = status;
      res.setHeader(UPSTREAM_HEADER, name);
      res.end(name);
    }, delayMs);
  });
}

function get(port: number, path: string): Promise<{ status: number; upstream: string; overloaded: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          upstream: String(res.headers[UPSTREAM_HEADER] ?? ''),
          overloaded: res.headers['x-envoy-overloaded'] === 'true',
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

function cla(name: string, ports: readonly number[]): ProtoObject {
  return {
    cluster_name: name,
    endpoints: [
      {
        locality: {},
        load_balancing_weight: { value: 1 },
        lb_endpoints: ports.map((p) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p } } } })),
      },
    ],
  };
}

describe('our proxy: outlier detection and circuit breakers', () => {
  let xds: XdsHarness | undefined;
  let dp: DataplaneHandle | undefined;
  const ups: Array<{ port: number; close(): Promise<void> }> = [];
  let port = 0;
  let good = 0;
  let bad = 0;

  const proxy = (): DataplaneHandle => {
    assert.ok(dp);
    return dp;
  };

  before(async () => {
    const [g, b, slow] = await Promise.all([startFixed('good', 200), startFixed('bad', 500), startFixed('slow', 200, 400)]);
    ups.push(g, b, slow);
    good = g.port;
    bad = b.port;
    xds = await startXds({
      set: {
        clusters: [
          {
            name: 'od',
            type: 'EDS',
            eds_cluster_config: { eds_config: ADS },
            connect_timeout: { seconds: 1 },
            outlier_detection: {
              consecutive_5xx: { value: 3 },
              interval: { nanos: 100_000_000 },
              // Long enough that the burst below ends before the host could return, even on a loaded machine.
              base_ejection_time: { seconds: 2 },
              max_ejection_percent: { value: 50 },
            },
          },
          {
            name: 'cb',
            type: 'EDS',
            eds_cluster_config: { eds_config: ADS },
            connect_timeout: { seconds: 1 },
            circuit_breakers: { thresholds: [{ max_requests: { value: 2 } }] },
          },
        ],
        endpoints: [cla('od', [good, bad]), cla('cb', [slow.port])],
        listeners: [
          {
            name: 'edge',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            filter_chains: [
              {
                filters: [
                  {
                    name: 'hcm',
                    typed_config: {
                      '@type': HCM,
                      stat_prefix: 'edge',
                      rds: { route_config_name: 'r', config_source: ADS },
                      http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }],
                    },
                  },
                ],
              },
            ],
          },
        ],
        routes: [
          {
            name: 'r',
            virtual_hosts: [
              {
                name: 'vh',
                domains: ['*'],
                routes: [
                  { match: { prefix: '/od' }, route: { cluster: 'od' } },
                  { match: { prefix: '/cb' }, route: { cluster: 'cb' } },
                ],
              },
            ],
          },
        ],
      },
    });
    dp = await startDataplane({ xdsPort: xds.port, nodeId: 'dataplane-resilience', nodeCluster: 'edge' });
    await dp.proxy.whenLive(20_000);
    port = dp.proxy.listenerPort('edge') ?? 0;
  });

  after(async () => {
    await dp?.stop();
    await xds?.close();
    await Promise.all(ups.map((u) => u.close()));
  });

  it('ejects a host after consecutive 5xx and brings it back after the ejection time', async () => {
    const replies = [];
    for (let i = 0; i < 16; i++) replies.push(await get(port, '/od'));
    const fails = replies.filter((r) => r.status === 500).length;
    assert.equal(fails, 3, 'exactly consecutive_5xx failures reach the client before the ejection');
    assert.deepEqual([...new Set(replies.slice(-8).map((r) => r.upstream))], ['good'], 'then only the healthy host answers');
    const ejected = (await proxy().clusters()).find((h) => h.port === bad);
    assert.deepEqual(ejected?.failedFlags, ['failed_outlier_check']);
    const st = await proxy().stats('cluster\\.od\\.outlier_detection\\.');
    assert.equal(st.get('cluster.od.outlier_detection.ejections_enforced_consecutive_5xx'), 1);
    assert.equal(st.get('cluster.od.outlier_detection.ejections_active'), 1);
    await proxy().waitFor(async () => (await proxy().clusters()).find((h) => h.port === bad)?.failedFlags.length === 0, {
      what: 'the ejected host to return',
      timeoutMs: 10_000,
    });
    assert.equal((await proxy().stats('ejections_active')).get('cluster.od.outlier_detection.ejections_active'), 0);
  });

  it('refuses requests beyond max_requests with 503 x-envoy-overloaded', async () => {
    const replies = await Promise.all(Array.from({ length: 6 }, () => get(port, '/cb')));
    const served = replies.filter((r) => r.status === 200 && r.upstream === 'slow');
    const refused = replies.filter((r) => r.status === 503 && r.overloaded);
    assert.equal(served.length, 2, JSON.stringify(replies));
    assert.equal(refused.length, 4, JSON.stringify(replies));
    // max_requests refusals: Envoy 1.40's upstream_rq_active_overflow, not pending overflows.
    const st = await proxy().stats('cluster\\.cb\\.upstream_rq_(active|pending)_overflow');
    assert.equal(st.get('cluster.cb.upstream_rq_active_overflow'), 4);
    assert.equal(st.get('cluster.cb.upstream_rq_pending_overflow'), 0);
  });
});
