/**
 * Our data plane's xDS behaviour against our real xDS server (test/support/xds-harness.ts):
 *  - an update it cannot honour is NACKed with an error_detail naming resource and field, while
 *    valid resources of the same update apply and the refused one keeps its last good version;
 *  - listener updates never drop in-flight requests; a removed listener drains its in-flight
 *    request and stops accepting;
 *  - when the control plane goes away, traffic keeps flowing on the last config, and the proxy
 *    reconnects (back-off) to a restarted server and applies what it serves.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { ProtoObject, XdsResourceSet } from '../../src/xds/resources.js';
import { createXdsServer, type XdsServer } from '../../src/server/index.js';
import { buildSnapshot } from '../../src/cache/snapshot.js';
import { DEFAULT_GROUP, SnapshotCache } from '../../src/cache/snapshot-cache.js';
import { silentLogger } from '../../src/log.js';
import type { NackEvent } from '../../src/server/stream-registry.js';
import { startXds, type XdsHarness } from '../support/xds-harness.js';
import { startDataplane, type DataplaneHandle } from '../support/dataplane.js';
import { listenHttp, UPSTREAM_HEADER } from '../support/upstreams.js';
import { freePort } from '../support/tmp.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ADS = { ads: {}, resource_api_version: 'V3' };

/** An upstream naming itself; `?delay=ms` holds the answer. */
async function startNamed(name: string): Promise<{ port: number; close(): Promise<void> }> {
  return listenHttp((req, res) => {
    req.resume();
    const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0);
    setTimeout(() => {
      res.setHeader(UPSTREAM_HEADER, name);
      res.end(name);
    }, delay);
  });
}

function get(port: number, path: string): Promise<{ status: number; upstream: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, upstream: String(res.headers[UPSTREAM_HEADER] ?? '') }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

interface SetOptions {
  readonly target: string;
  readonly statPrefix?: string;
  readonly listener?: boolean;
  readonly badCluster?: boolean;
  readonly connectTimeoutS?: number;
}

describe('our proxy: NACKs, listener updates, control-plane outage', () => {
  let xds: XdsHarness | undefined;
  let restarted: XdsServer | undefined;
  let dp: DataplaneHandle | undefined;
  let a: Awaited<ReturnType<typeof startNamed>>;
  let b: Awaited<ReturnType<typeof startNamed>>;
  let port = 0;
  let xdsPort = 0;
  const nacks: NackEvent[] = [];

  const proxy = (): DataplaneHandle => {
    assert.ok(dp);
    return dp;
  };

  const set = (o: SetOptions): XdsResourceSet => {
    const cluster = (name: string, bad = false): ProtoObject => ({
      name,
      type: 'EDS',
      eds_cluster_config: { eds_config: ADS },
      connect_timeout: { seconds: o.connectTimeoutS ?? 1 },
      ...(bad ? { lb_subset_config: { fallback_policy: 'ANY_ENDPOINT' } } : {}),
    });
    const cla = (name: string, p: number): ProtoObject => ({
      cluster_name: name,
      endpoints: [
        {
          locality: {},
          load_balancing_weight: { value: 1 },
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p } } } }],
        },
      ],
    });
    return {
      clusters: [cluster('a', o.badCluster), cluster('b')],
      endpoints: [cla('a', a.port), cla('b', b.port)],
      listeners:
        o.listener === false
          ? []
          : [
              {
                name: 'edge',
                address: { socket_address: { address: '127.0.0.1', port_value: port } },
                filter_chains: [
                  {
                    filters: [
                      {
                        name: 'hcm',
                        typed_config: {
                          '@type': HCM,
                          stat_prefix: o.statPrefix ?? 'edge',
                          rds: { route_config_name: 'routes', config_source: ADS },
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
          name: 'routes',
          virtual_hosts: [
            {
              name: 'vh',
              domains: ['*'],
              routes: [
                { match: { prefix: '/a' }, route: { cluster: 'a' } },
                { match: { prefix: '/' }, route: { cluster: o.target } },
              ],
            },
          ],
        },
      ],
    };
  };

  const waitTarget = (target: string): Promise<true> =>
    proxy().waitFor(async () => (await get(port, '/x')).upstream === target, { what: `traffic to reach ${target}` });

  before(async () => {
    [a, b] = await Promise.all([startNamed('a'), startNamed('b')]);
    port = await freePort();
    xds = await startXds();
    xdsPort = xds.port;
    xds.server.registry.on('nack', (e: NackEvent) => nacks.push(e));
    xds.publish(set({ target: 'a' }));
    dp = await startDataplane({ xdsPort, nodeId: 'dataplane-xds', nodeCluster: 'edge', backoff: { baseMs: 100, maxMs: 500 }, drainTimeMs: 3000 });
    await dp.proxy.whenLive(20_000);
  });

  after(async () => {
    await dp?.stop();
    await xds?.close();
    await restarted?.close();
    await Promise.all([a?.close(), b?.close()]);
  });

  it('NACKs a cluster it cannot honour, naming the field; applies the rest; keeps the last good cluster', async () => {
    (xds as XdsHarness).publish(set({ target: 'b', badCluster: true }));
    const nack = await proxy().waitFor(() => nacks.find((n) => n.typeUrl.endsWith('Cluster')), { what: 'a CDS NACK' });
    assert.match(nack.message, /Cluster 'a': lb_subset_config: subset load balancing is not implemented/);
    const cds = proxy()
      .proxy.xds.status()
      .find((s) => s.type === 'CDS');
    assert.match(cds?.lastError?.message ?? '', /lb_subset_config/);
    // The route update in the same snapshot was valid and applies; cluster a keeps serving as before.
    await waitTarget('b');
    assert.equal((await get(port, '/a')).upstream, 'a');
    // The fix (a new version: the old good one is what the proxy still holds) is ACKed.
    (xds as XdsHarness).publish(set({ target: 'b', connectTimeoutS: 2 }));
    await proxy().waitFor(
      () =>
        proxy()
          .proxy.xds.status()
          .find((s) => s.type === 'CDS')?.lastError === undefined,
      { what: 'the fixed CDS to be ACKed' },
    );
    assert.equal(proxy().proxy.clusters.get('a')?.model.connectTimeoutMs, 2000);
  });

  it('keeps in-flight requests across a listener update, and new requests use the new config', async () => {
    const slow = get(port, '/x?delay=600');
    await new Promise((r) => setTimeout(r, 100));
    (xds as XdsHarness).publish(set({ target: 'a', statPrefix: 'edge_v2' }));
    await waitTarget('a');
    const r = await slow;
    assert.equal(r.status, 200);
    assert.equal(r.upstream, 'b', 'the in-flight request finished where it started');
    const st = await proxy().stats('^http\\.edge_v2\\.downstream_rq_total$');
    assert.ok((st.get('http.edge_v2.downstream_rq_total') ?? 0) > 0, 'the listener now counts under its new stat_prefix');
  });

  it('drains a removed listener: its in-flight request completes, new connections are refused', async () => {
    const slow = get(port, '/x?delay=600');
    await new Promise((r) => setTimeout(r, 100));
    (xds as XdsHarness).publish(set({ target: 'a', listener: false }));
    await proxy().waitFor(
      async () =>
        get(port, '/x').then(
          () => false,
          (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED',
        ),
      { what: 'the listener to stop accepting' },
    );
    const r = await slow;
    assert.equal(r.status, 200, 'the request in flight when the listener was removed completed');
    (xds as XdsHarness).publish(set({ target: 'a' }));
    await waitTarget('a');
  });

  it('keeps serving when the control plane goes away, and picks up a restarted one', async () => {
    const streamsBefore = proxy().proxy.xds.streams;
    await (xds as XdsHarness).close();
    xds = undefined;
    for (let i = 0; i < 5; i++) assert.equal((await get(port, '/x')).upstream, 'a', 'traffic flows on the last config');
    assert.equal((await proxy().admin('/ready')).trim(), 'LIVE');
    const cache = new SnapshotCache();
    cache.set(DEFAULT_GROUP, buildSnapshot(set({ target: 'b' })));
    restarted = createXdsServer({ cache, logger: silentLogger, shutdownGraceMs: 200 });
    await restarted.listen('127.0.0.1', xdsPort);
    await waitTarget('b');
    assert.ok(proxy().proxy.xds.streams > streamsBefore, 'a new ADS stream was opened');
  });
});
