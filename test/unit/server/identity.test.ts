/**
 * The identity rule inside the xDS server (stream-session.ts with transport-security.ts), over a
 * real mTLS connection with openssl certificates: a node whose certificate names its group is
 * served; when the node's group changes under it (a group named like its node.cluster appears)
 * the stream is checked again and ended with PERMISSION_DENIED, and nothing of the new group is
 * sent; a first request without a node is refused; a gRPC client's `<group>/grpc` counts as its
 * group; delta streams are held to the same rule.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { credentials, status as GrpcStatus } from '@grpc/grpc-js';
import { SnapshotCache } from '../../../src/cache/snapshot-cache.js';
import { clientKindGroupOf } from '../../../src/cache/client-kind.js';
import { TransportSecurity } from '../../../src/common/transport-security.js';
import { silentLogger } from '../../../src/log.js';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import { AdsConnection } from '../../support/ads-client.js';
import { makeCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { makeTempDir } from '../../support/tmp.js';
import { startXds, type XdsHarness } from '../../support/xds-harness.js';
import { resourceSet } from '../../support/xds-fixtures.js';

describe('xDS identity rule', () => {
  let dir: { path: string; remove(): Promise<void> };
  let ca: TestCa;
  let security: TransportSecurity;
  let h: XdsHarness;
  let edge: IssuedCert;
  const conns: AdsConnection[] = [];
  const connect = (client: IssuedCert) => {
    const c = new AdsConnection(`127.0.0.1:${h.port}`, {
      credentials: credentials.createSsl(readFileSync(ca.cert), readFileSync(client.key), readFileSync(client.cert)),
      channelOptions: { 'grpc.ssl_target_name_override': 'localhost' },
      separateConnection: true,
    });
    conns.push(c);
    return c;
  };

  before(async () => {
    dir = await makeTempDir('xds-identity');
    ca = await makeCa(dir.path, 'unit');
    const server = await ca.issue('server', { dns: ['localhost'], ip: ['127.0.0.1'] });
    edge = await ca.issue('edge-1', { uri: ['spiffe://t/group/default/node/edge-1'] });
    security = await TransportSecurity.open(
      { tls: { cert: server.cert, key: server.key, clientCa: ca.cert }, groupPattern: 'spiffe://t/group/{group}/node/{node}' },
      silentLogger,
      'xds',
    );
    h = await startXds({ set: resourceSet({ clusters: 2 }), cache: new SnapshotCache({ groupOf: clientKindGroupOf() }), security });
  });

  after(async () => {
    for (const c of conns) c.close();
    await h?.close();
    security?.close();
    await dir?.remove();
  });

  it('serves the group the certificate names; re-checks when the node moves to another group', async () => {
    const s = connect(edge).stream({ node: { id: 'edge-1', cluster: 'payments' } });
    s.subscribe(TypeUrl.Cluster);
    assert.deepEqual((await s.next()).names, ['c0', 'c1'], "no 'payments' group yet: served 'default', which the certificate names");
    s.ack(s.received[0]!);
    h.publish(resourceSet({ clusters: 3 }), 'payments');
    const st = await s.status;
    assert.equal(st.code, GrpcStatus.PERMISSION_DENIED);
    assert.match(st.details, /node 'edge-1' would be served node group 'payments', but its certificate names group\(s\) 'default'/);
    assert.equal(s.received.length, 1, "nothing of 'payments' was sent");
    assert.equal(security.status().refused.group, 1);
    h.cache.delete('payments');
  });

  it('a gRPC client is served <group>/grpc under a certificate naming <group>; a request without a node is refused', async () => {
    h.publish(resourceSet({ clusters: 1 }), 'default/grpc');
    const grpcClient = connect(edge).stream({ node: { id: 'edge-1', cluster: 'default', userAgentName: 'gRPC Node Pure JS' } });
    grpcClient.subscribe(TypeUrl.Cluster);
    assert.deepEqual((await grpcClient.next()).names, ['c0']);
    grpcClient.cancel();

    const anonymous = connect(edge).stream({});
    anonymous.subscribe(TypeUrl.Cluster);
    const st = await anonymous.status;
    assert.equal(st.code, GrpcStatus.PERMISSION_DENIED);
    assert.match(st.details, /node id '' is not a DNS or URI SAN/);
    assert.equal(anonymous.received.length, 0);
  });

  it('delta streams follow the same rule: served under a certificate naming the node, refused for another node', async () => {
    const ok = connect(edge).deltaStream({ node: { id: 'edge-1', cluster: 'default' } });
    ok.subscribe(TypeUrl.Cluster);
    assert.deepEqual((await ok.next()).names, ['c0', 'c1']);
    ok.cancel();
    const impostor = connect(edge).deltaStream({ node: { id: 'edge-2', cluster: 'default' } });
    impostor.subscribe(TypeUrl.Cluster);
    const st = await impostor.status;
    assert.equal(st.code, GrpcStatus.PERMISSION_DENIED);
    assert.equal(impostor.received.length, 0);
  });
});
