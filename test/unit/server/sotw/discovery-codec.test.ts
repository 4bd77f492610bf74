/**
 * The lean DiscoveryRequest reader and the response encoder against protobufjs' own codec:
 * every field read back, names decoded on demand (also when not contiguous), the node only when
 * asked, malformed bytes reported instead of thrown, responses that decode as DiscoveryResponse.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { messageType } from '../../../../src/envoy/protos.js';
import { decodeRequest, encodeResponseBody, withNonce, type XdsRequest } from '../../../../src/server/sotw/discovery-codec.js';
import { buildSnapshot } from '../../../../src/cache/snapshot.js';
import { TypeUrl } from '../../../../src/xds/resource-types.js';
import { encodeRequest } from '../../../support/ads-client.js';
import { resourceSet } from '../../../support/xds-fixtures.js';

function decoded(bytes: Buffer): XdsRequest {
  const r = decodeRequest(bytes);
  assert.ok(!('malformed' in r), 'malformed' in r ? r.malformed : '');
  return r;
}

test('reads every field of a DiscoveryRequest, names and node on demand', () => {
  const bytes = encodeRequest({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['web', 'api', 'ünïcode'],
    versionInfo: 'v1',
    responseNonce: '7',
    errorDetail: { code: 13, message: 'bad thing' },
    node: { id: 'envoy-1', cluster: 'edge', userAgentName: 'envoy', userAgentVersion: '1.31.0', metadata: { role: 'gateway' } },
  });
  const r = decoded(bytes);
  assert.equal(r.typeUrl, TypeUrl.ClusterLoadAssignment);
  assert.equal(r.versionInfo, 'v1');
  assert.equal(r.responseNonce, '7');
  assert.deepEqual(r.errorDetail, { code: 13, message: 'bad thing' });
  assert.deepEqual(r.resourceNames(), ['web', 'api', 'ünïcode']);
  assert.equal(r.hasNode, true);
  assert.deepEqual(r.node(), { id: 'envoy-1', cluster: 'edge', userAgentName: 'envoy', userAgentVersion: '1.31.0', metadata: { role: 'gateway' } });
  // The raw names are exactly the three field-3 entries.
  const again = decoded(encodeRequest({ typeUrl: TypeUrl.Cluster, resourceNames: ['web', 'api', 'ünïcode'] }));
  assert.ok(r.namesRaw && again.namesRaw && r.namesRaw.equals(again.namesRaw));
});

test('an ACK without names, node or error', () => {
  const r = decoded(encodeRequest({ typeUrl: TypeUrl.Cluster, versionInfo: 'abc', responseNonce: '1' }));
  assert.deepEqual(r.resourceNames(), []);
  assert.equal(r.namesRaw?.length, 0);
  assert.equal(r.hasNode, false);
  assert.equal(r.node(), undefined);
  assert.equal(r.errorDetail, undefined);
});

test('names interleaved with other fields are still read (no raw fast path)', () => {
  const w = protobuf.Writer.create();
  w.uint32(0x1a).string('a');
  w.uint32(0x22).string(TypeUrl.ClusterLoadAssignment);
  w.uint32(0x1a).string('b');
  w.uint32(0x38).uint32(5); // an unknown varint field is skipped
  const r = decoded(Buffer.from(w.finish()));
  assert.equal(r.namesRaw, undefined);
  assert.deepEqual(r.resourceNames(), ['a', 'b']);
  assert.equal(r.typeUrl, TypeUrl.ClusterLoadAssignment);
});

test('malformed bytes are reported, not thrown', () => {
  for (const bad of [Buffer.from('not a protobuf message at all'), Buffer.from([0x0a, 0x05, 0x61]), Buffer.from([0x7f]), Buffer.from([0x00])]) {
    const r = decodeRequest(bad);
    assert.ok('malformed' in r, `accepted ${bad.toString('hex')}`);
  }
});

test('a response is a DiscoveryResponse carrying the snapshot bytes and the nonce', () => {
  const s = buildSnapshot(resourceSet({ clusters: 3 }));
  const ts = s.type(TypeUrl.Cluster);
  const bytes = withNonce(encodeResponseBody(ts.version, ts.typeUrl, ts.list), 'z9');
  const m = messageType('envoy.service.discovery.v3.DiscoveryResponse').decode(bytes) as unknown as {
    version_info: string;
    type_url: string;
    nonce: string;
    resources: Array<{ type_url: string; value: Uint8Array }>;
  };
  assert.equal(m.version_info, ts.version);
  assert.equal(m.type_url, TypeUrl.Cluster);
  assert.equal(m.nonce, 'z9');
  const any = messageType('google.protobuf.Any');
  assert.deepEqual(
    m.resources.map((r) => Buffer.from(any.encode(r).finish())),
    ts.list.map((r) => Buffer.from(r.bytes)),
  );
  assert.throws(() => withNonce(Buffer.alloc(0), 'x'.repeat(128)), RangeError);
});
