/**
 * The proxy's ADS client on the wire, against a scripted ADS endpoint on loopback (grpc-js), so
 * the test controls exactly what the "server" answers and sees every request the client sends:
 * node on the first request only, wildcard CDS/LDS, EDS for the names clusters reference, ACKs
 * echoing version and nonce, the 15 s does-not-exist timer (shortened) letting a cluster whose
 * endpoints never come finish warming, and a NACK at the last good version with an error_detail
 * naming the refused field.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { messageType, TO_OBJECT } from '../../../../src/envoy/protos.js';
import { TypeUrl } from '../../../../src/xds/resource-types.js';
import { startProxy, type RunningProxy } from '../../../../src/proxy/server.js';
import { nodeModel } from '../../../../src/proxy/config/bootstrap.js';
import { waitUntil } from '../../../support/tmp.js';

const REQ = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const RESP = messageType('envoy.service.discovery.v3.DiscoveryResponse');
const ADS = { ads: {}, resource_api_version: 'V3' };

interface Req {
  version_info?: string;
  resource_names?: string[];
  type_url: string;
  response_nonce?: string;
  node?: { id?: string; user_agent_name?: string };
  error_detail?: { code?: number; message?: string };
}

function response(typeUrl: string, version: string, nonce: string, resources: Record<string, unknown>[]): Record<string, unknown> {
  return { version_info: version, type_url: typeUrl, nonce, resources: resources.map((r) => ({ '@type': typeUrl, ...r })) };
}

describe('ADS client of our proxy (scripted server)', () => {
  const server = new Server();
  const requests: Req[] = [];
  let call: ServerDuplexStream<Req, Record<string, unknown>> | undefined;
  let proxy: RunningProxy | undefined;

  before(async () => {
    server.addService(
      {
        StreamAggregatedResources: {
          path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
          requestStream: true,
          responseStream: true,
          requestDeserialize: (b: Buffer) => REQ.toObject(REQ.decode(b), TO_OBJECT) as Req,
          requestSerialize: (r: Req) => Buffer.from(REQ.encode(REQ.fromObject(r)).finish()),
          responseSerialize: (r: Record<string, unknown>) => Buffer.from(RESP.encode(RESP.fromObject(r)).finish()),
          responseDeserialize: (b: Buffer) => RESP.decode(b) as unknown as Record<string, unknown>,
        },
      },
      {
        StreamAggregatedResources: (c: ServerDuplexStream<Req, Record<string, unknown>>) => {
          call = c;
          c.on('data', (r: Req) => {
            requests.push(r);
            const first = requests.filter((x) => x.type_url === r.type_url).length === 1;
            if (r.type_url === TypeUrl.Cluster && first) {
              c.write(response(TypeUrl.Cluster, '1', 'n1', [{ name: 'c1', type: 'EDS', eds_cluster_config: { eds_config: ADS } }]));
            }
            if (r.type_url === TypeUrl.Listener && first) c.write(response(TypeUrl.Listener, '1', 'n2', []));
            // EDS is never answered: the does-not-exist timer must fire.
          });
          c.on('error', () => undefined);
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    proxy = await startProxy({
      bootstrap: { xds: { host: '127.0.0.1', port }, node: nodeModel('unit-node', 'unit-cluster', { region: 'r1', zone: 'z1' }), admin: undefined },
      doesNotExistMs: 300,
    });
  });

  after(async () => {
    await proxy?.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  });

  it('sends the node first, subscribes CDS/LDS as wildcard, ACKs with version and nonce, asks EDS for referenced names', async () => {
    await waitUntil(
      () =>
        requests.some((r) => r.type_url === TypeUrl.ClusterLoadAssignment) && requests.some((r) => r.type_url === TypeUrl.Cluster && r.response_nonce === 'n1'),
      { what: 'the EDS request and the CDS ACK', timeoutMs: 5000 },
    );
    const [first, ...rest] = requests;
    assert.equal(first?.node?.id, 'unit-node');
    assert.equal(first?.node?.user_agent_name, 'consul-xds-proxy');
    assert.ok(
      rest.every((r) => r.node === undefined),
      'node only on the first request of the stream',
    );
    for (const t of [TypeUrl.Cluster, TypeUrl.Listener]) {
      const initial = requests.find((r) => r.type_url === t);
      assert.deepEqual(initial?.resource_names ?? [], [], `${t} is wildcard`);
      assert.equal(initial?.response_nonce ?? '', '');
    }
    const cdsAck = requests.find((r) => r.type_url === TypeUrl.Cluster && r.response_nonce === 'n1');
    assert.equal(cdsAck?.version_info, '1');
    assert.equal(cdsAck?.error_detail, undefined);
    assert.deepEqual(requests.find((r) => r.type_url === TypeUrl.ClusterLoadAssignment)?.resource_names, ['c1']);
  });

  it('lets a cluster whose endpoints never arrive finish warming after the does-not-exist timeout', async () => {
    const p = proxy as RunningProxy;
    assert.notEqual(p.state(), 'LIVE', 'not live while EDS is outstanding');
    await p.whenLive(5000);
    assert.equal(p.clusters.get('c1')?.isInitialized(), true);
    assert.equal(p.clusters.get('c1')?.hosts().length, 0);
  });

  it('NACKs an invalid update at the last good version, naming the field, and keeps the cluster', async () => {
    call?.write(response(TypeUrl.Cluster, '2', 'n3', [{ name: 'c1', type: 'EDS', eds_cluster_config: { eds_config: ADS }, lb_policy: 'CLUSTER_PROVIDED' }]));
    const nack = await waitUntil(() => requests.find((r) => r.type_url === TypeUrl.Cluster && r.response_nonce === 'n3'), {
      what: 'the NACK',
      timeoutMs: 5000,
    });
    assert.equal(nack.version_info, '1', 'a NACK carries the last accepted version');
    assert.match(nack.error_detail?.message ?? '', /Cluster 'c1': lb_policy: CLUSTER_PROVIDED is not supported/);
    assert.equal((proxy as RunningProxy).clusters.get('c1')?.model.lbPolicy, 'ROUND_ROBIN');
  });
});
