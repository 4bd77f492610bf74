/**
 * ListenerManager on shutdown: a listener whose bind was still in progress when drainAll() began
 * (an LDS update racing SIGTERM) must not be left listening once the bind completes; every
 * listener refuses new connections after the drain began.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { messageType } from '../../../../src/envoy/protos.js';
import { TypeUrl, messageNameOf } from '../../../../src/xds/resource-types.js';
import type { ProtoObject } from '../../../../src/xds/resources.js';
import { decodeResource, isRejected } from '../../../../src/proxy/xds/resource-types.js';
import type { ListenerModel } from '../../../../src/proxy/config/listener-resource.js';
import { ListenerManager } from '../../../../src/proxy/listener/listener-manager.js';
import { ClusterManager } from '../../../../src/proxy/upstream/cluster-manager.js';
import { RouteStore } from '../../../../src/proxy/router/route-store.js';
import { AccessLogService } from '../../../../src/proxy/access-log/access-log-manager.js';
import { silentLogger } from '../../../../src/log.js';
import { freePort } from '../../../support/ports.js';

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

function tcpListener(port: number): { model: ListenerModel; bytes: Uint8Array } {
  const t = messageType(messageNameOf(TypeUrl.Listener));
  const bytes = t
    .encode(
      t.fromObject({
        name: 'l1',
        address: { socket_address: { address: '127.0.0.1', port_value: port } },
        filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: 'l1', cluster: 'c1' } }] }],
      } as ProtoObject),
    )
    .finish();
  const d = decodeResource(TypeUrl.Listener, bytes, 0);
  assert.ok(!isRejected(d), isRejected(d) ? d.error : '');
  return { model: d.model as ListenerModel, bytes };
}

function connectCode(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('ListenerManager.drainAll', () => {
  it('a listener still binding when the drain began is closed once bound: new connections are refused', async () => {
    const clusters = new ClusterManager();
    const node = { id: 'n', cluster: 'c', locality: { region: '', zone: '', subZone: '' }, proto: {} };
    const manager = new ListenerManager({
      clusters,
      routes: new RouteStore(),
      accessLogs: new AccessLogService(clusters, node, silentLogger),
      logger: silentLogger,
      drainTimeMs: 1_000,
      maxDownstreamConnections: 0,
    });
    const port = await freePort();
    const { model, bytes } = tcpListener(port);
    try {
      const applying = manager.apply([{ name: 'l1', model, version: '1', bytes }], []);
      await manager.drainAll();
      assert.deepEqual(await applying, []);
      assert.equal(await connectCode(port), 'ECONNREFUSED');
    } finally {
      await manager.close();
    }
  });
});
