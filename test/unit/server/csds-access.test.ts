/**
 * Who may read what through CSDS under mTLS (src/server/csds.ts with transport-security.ts), over
 * real TLS connections with openssl certificates: a node's certificate reads that node only, a
 * whole-group certificate (`{node}` `*`) its group, an operator SAN every node; node matchers that
 * select nodes the caller may not read are answered without them, counted, and logged once per
 * stream (no certificate bytes); TLS without a client CA answers every node, as before.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { credentials, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { SnapshotCache } from '../../../src/cache/snapshot-cache.js';
import { clientKindGroupOf } from '../../../src/cache/client-kind.js';
import { TransportSecurity } from '../../../src/common/transport-security.js';
import { silentLogger } from '../../../src/log.js';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import { AdsConnection } from '../../support/ads-client.js';
import { makeCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { csdsClient, fetchClientStatus, type ClientConfig } from '../../support/csds-client.js';
import { captureLog } from '../../support/log-capture.js';
import { makeTempDir } from '../../support/tmp.js';
import { eventually, startXds, type XdsHarness } from '../../support/xds-harness.js';
import { resourceSet } from '../../support/xds-fixtures.js';

const PATTERN = 'spiffe://t/group/{group}/node/{node}';
const OPS_SAN = 'spiffe://t/ops/csds';
const TLS_OPTIONS = { 'grpc.ssl_target_name_override': 'localhost' } as const;

describe('CSDS access under mTLS', () => {
  let dir: { path: string; remove(): Promise<void> };
  let ca: TestCa;
  let security: TransportSecurity;
  let h: XdsHarness;
  const certs: Record<string, IssuedCert> = {};
  const closers: Array<{ close(): void }> = [];
  const log = captureLog();
  const creds = (c: IssuedCert) => credentials.createSsl(readFileSync(ca.cert), readFileSync(c.key), readFileSync(c.cert));
  const client = (name: string): Client => {
    const cert = certs[name];
    assert.ok(cert, name);
    const c = csdsClient(h.port, creds(cert), TLS_OPTIONS);
    closers.push(c);
    return c;
  };
  const ids = async (name: string, req: object = {}) => (await fetchClientStatus(client(name), req)).map((n) => n.node.id);
  const warnings = () => log.atLeast(40).filter((r) => String(r.msg).startsWith('CSDS answer left out'));

  before(async () => {
    dir = await makeTempDir('csds-access');
    ca = await makeCa(dir.path, 'unit');
    const server = await ca.issue('server', { dns: ['localhost'], ip: ['127.0.0.1'] });
    const issue = async (name: string, uri: string) => {
      certs[name] = await ca.issue(name, { uri: [uri] });
    };
    await issue('edge-a', 'spiffe://t/group/default/node/edge-a');
    await issue('edge-b', 'spiffe://t/group/default/node/edge-b');
    await issue('pay-1', 'spiffe://t/group/payments/node/pay-1');
    await issue('default-group', 'spiffe://t/group/default/node/*');
    await issue('ops', OPS_SAN);
    security = await TransportSecurity.open(
      { tls: { cert: server.cert, key: server.key, clientCa: ca.cert }, groupPattern: PATTERN, csdsAdminSans: [OPS_SAN] },
      log.logger,
      'xds',
    );
    h = await startXds({ set: resourceSet({ clusters: 1 }), cache: new SnapshotCache({ groupOf: clientKindGroupOf() }), security, logger: log.logger });
    h.publish(resourceSet({ clusters: 2 }), 'payments');
    for (const [node, cluster] of [
      ['edge-a', 'web'],
      ['edge-b', 'web'],
      ['pay-1', 'payments'],
    ] as const) {
      const cert = certs[node];
      assert.ok(cert);
      const conn = new AdsConnection(`127.0.0.1:${h.port}`, { credentials: creds(cert), channelOptions: TLS_OPTIONS, separateConnection: true });
      closers.push(conn);
      const s = conn.stream({ node: { id: node, cluster } });
      s.subscribe(TypeUrl.Cluster);
      await s.next();
    }
    await eventually(() => h.server.registry.nodes().length === 3, 2_000, 'three nodes connected');
  });

  after(async () => {
    for (const c of closers) c.close();
    await h?.close();
    security?.close();
    await dir?.remove();
  });

  it("a node's certificate reads its node, a whole-group certificate its group, the operator SAN every node", async () => {
    assert.deepEqual(await ids('edge-a'), ['edge-a']);
    assert.deepEqual(await ids('pay-1'), ['pay-1']);
    assert.deepEqual(await ids('default-group'), ['edge-a', 'edge-b']);
    assert.deepEqual(await ids('ops'), ['edge-a', 'edge-b', 'pay-1']);
    const own = await fetchClientStatus(client('edge-a'));
    assert.equal(own[0]?.generic_xds_configs[0]?.name, 'c0', "the node's own resources are there");
    assert.equal(security.status().csds?.withheld, 0, 'asking without matchers asks for what the caller may read: nothing counted');
    assert.equal(warnings().length, 0);
  });

  it('matchers selecting nodes the caller may not read: answered without them, counted, logged once per stream', async () => {
    const before = warnings().length;
    assert.deepEqual(await ids('edge-a', { node_matchers: [{ node_id: { exact: 'pay-1' } }] }), []);
    assert.deepEqual(
      await ids('edge-a', { node_matchers: [{ node_id: { prefix: 'edge-' } }] }),
      ['edge-a'],
      'a prefix catching others still answers the own node',
    );
    assert.deepEqual(await ids('default-group', { node_matchers: [{ node_id: { exact: 'nobody' } }] }), [], 'no such node: not counted');
    assert.equal(security.status().csds?.withheld, 2);
    assert.equal(warnings().length, before + 2, 'one per unary call');

    const call = (client('pay-1') as unknown as { StreamClientStatus(): ClientDuplexStream<object, { config: ClientConfig[] }> }).StreamClientStatus();
    const answers: string[][] = [];
    call.on('data', (r: { config: ClientConfig[] }) => answers.push(r.config.map((c) => c.node.id)));
    for (let i = 0; i < 3; i++) call.write({ node_matchers: [{ node_id: { suffix: '-a' } }, { node_id: { exact: 'pay-1' } }] });
    await eventually(() => answers.length === 3, 2_000, 'three answers');
    call.end();
    assert.deepEqual(answers, [['pay-1'], ['pay-1'], ['pay-1']]);
    assert.equal(security.status().csds?.withheld, 5);
    const lines = warnings();
    assert.equal(lines.length, before + 3, 'one line for the whole stream');
    const last = lines.at(-1);
    assert.equal(last?.rpc, 'StreamClientStatus');
    assert.equal(last?.withheld, 1);
    assert.match(String(last?.sans), /URI:spiffe:\/\/t\/group\/payments\/node\/pay-1/);
    const text = JSON.stringify(log.records);
    assert.doesNotMatch(text, /BEGIN|PRIVATE KEY/, 'no PEM in the log');
    const keyBody = readFileSync(certs['pay-1']?.key ?? '', 'utf8').split('\n')[1] ?? '';
    assert.ok(keyBody.length > 20 && !text.includes(keyBody), 'no key bytes in the log');
  });

  it('TLS without a client CA: every caller reads every node, as before', async () => {
    const server = await ca.issue('server-tls-only', { dns: ['localhost'] });
    const tlsOnly = await TransportSecurity.open({ tls: { cert: server.cert, key: server.key }, csdsAdminSans: [OPS_SAN] }, silentLogger, 'xds');
    const plain = await startXds({ set: resourceSet({ clusters: 1 }), security: tlsOnly });
    const conn = new AdsConnection(`127.0.0.1:${plain.port}`, { credentials: credentials.createSsl(readFileSync(ca.cert)), channelOptions: TLS_OPTIONS });
    const c = csdsClient(plain.port, credentials.createSsl(readFileSync(ca.cert)), TLS_OPTIONS);
    try {
      for (const id of ['x-1', 'x-2']) {
        const s = conn.stream({ node: { id } });
        s.subscribe(TypeUrl.Cluster);
        await s.next();
      }
      assert.deepEqual(
        (await fetchClientStatus(c)).map((n) => n.node.id),
        ['x-1', 'x-2'],
      );
      assert.equal(tlsOnly.status().csds, undefined);
    } finally {
      c.close();
      conn.close();
      await plain.close();
      tlsOnly.close();
    }
  });
});
