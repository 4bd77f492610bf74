/**
 * `access-log.grpc.tls` (src/config/schema.ts, src/translate/access-log.ts, upstream-tls.ts):
 * the sink's cluster gets an UpstreamTlsContext from files (CA, optional client cert, SNI that
 * must also be the server's DNS SAN, ALPN h2); it survives the real Envoy protos; listeners that
 * reach one sink with different TLS get different clusters; bad keys are refused with their path.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { staticEndpoints } from '../../../src/config/static-endpoints.js';
import { translate } from '../../../src/translate/index.js';
import { messageType, TO_OBJECT } from '../../../src/envoy/protos.js';
import { ConfigError } from '../../../src/errors.js';
import type { ProtoObject } from '../../../src/xds/resources.js';

function yaml(tlsA: string, tlsB = ''): string {
  return `listener:
  a:
    address: "127.0.0.1"
    port: 8000
    access-log: { grpc: { address: "127.0.0.1", port: 9001${tlsA} } }
  b:
    address: "127.0.0.1"
    port: 8001
    access-log: { grpc: { address: "127.0.0.1", port: 9001${tlsB} } }
route:
  domain: ["app.test"]
  cluster:
    web: { prefix: ["/"], weight: 100 }
cluster:
  loadbalancer:
    web: { lb-policy: "round-robin", discovery: "eds" }
endpoint:
  eds:
    web:
      static: [{ address: "127.0.0.1", port: 8080 }]
`;
}

const MTLS = ', tls: { ca: "/etc/consul-xds/ca.crt", cert: "/etc/envoy/client.crt", key: "/etc/envoy/client.key", sni: "als.internal" }';

function sinks(text: string): ProtoObject[] {
  const config = parseConfig(text, 'test.yaml');
  return translate(config, staticEndpoints(config)).clusters.filter((c) => String(c.name).startsWith('consul-xds-als-'));
}

function issues(text: string): Array<{ path: string; message: string }> {
  try {
    parseConfig(text, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => ({ path: i.path, message: i.message }));
  }
  assert.fail('expected a ConfigError');
}

describe('access-log sink over TLS', () => {
  it('the sink cluster dials with an UpstreamTlsContext from files; the access log names that cluster', () => {
    const [sink, ...rest] = sinks(yaml(MTLS, MTLS));
    assert.equal(rest.length, 0, 'one cluster for equal settings');
    assert.match(String(sink?.name), /^consul-xds-als-127\.0\.0\.1-9001-tls-[0-9a-f]{8}$/);
    assert.deepEqual(sink?.transport_socket, {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni: 'als.internal',
        common_tls_context: {
          alpn_protocols: ['h2'],
          tls_certificates: [{ certificate_chain: { filename: '/etc/envoy/client.crt' }, private_key: { filename: '/etc/envoy/client.key' } }],
          validation_context: {
            trusted_ca: { filename: '/etc/consul-xds/ca.crt' },
            match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'als.internal' } }],
          },
        },
      },
    });
    const type = messageType('envoy.config.cluster.v3.Cluster');
    const back = type.toObject(type.decode(type.encode(type.fromObject(sink as ProtoObject)).finish()), TO_OBJECT) as ProtoObject;
    const ctx = (back.transport_socket as { typed_config: Record<string, unknown> }).typed_config;
    assert.equal(ctx.sni, 'als.internal', 'the Any resolves and the context survives the real protos');
    const config = parseConfig(yaml(MTLS), 'test.yaml');
    const listener = translate(config, staticEndpoints(config)).listeners.find((l) => l.name === 'a');
    assert.match(JSON.stringify(listener), new RegExp(`"cluster_name":"${String(sink?.name).replace(/\./g, '\\.')}"`));
  });

  it('CA only: no client certificate, no SNI; a plaintext listener to the same sink keeps its own cluster', () => {
    const clusters = sinks(yaml(', tls: { ca: "/ca.crt" }'));
    assert.deepEqual(clusters.map((c) => String(c.name).replace(/-tls-[0-9a-f]{8}$/, '-tls')).sort(), [
      'consul-xds-als-127.0.0.1-9001',
      'consul-xds-als-127.0.0.1-9001-tls',
    ]);
    const tls = clusters.find((c) => c.transport_socket !== undefined);
    assert.ok(tls);
    assert.deepEqual((tls.transport_socket as { typed_config: unknown }).typed_config, {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: { alpn_protocols: ['h2'], validation_context: { trusted_ca: { filename: '/ca.crt' } } },
    });
    assert.equal(clusters.find((c) => c.transport_socket === undefined)?.name, 'consul-xds-als-127.0.0.1-9001', 'unchanged without tls');
  });

  it('refuses a relative path, a cert without its key, and unknown keys, naming the path', () => {
    assert.deepEqual(issues(yaml(', tls: { ca: "ca.crt" }')), [
      { path: 'listener.a.access-log.grpc.tls.ca', message: 'must be an absolute path (Envoy reads it on its own host)' },
    ]);
    assert.deepEqual(issues(yaml(', tls: { ca: "/ca.crt", cert: "/c.crt" }')), [{ path: 'listener.a.access-log.grpc.tls.key', message: 'required' }]);
    assert.deepEqual(issues(yaml('', ', tls: { ca: "/ca.crt", key: "/c.key" }')), [{ path: 'listener.b.access-log.grpc.tls.cert', message: 'required' }]);
    assert.equal(issues(yaml(', tls: { ca: "/ca.crt", verify: false }'))[0]?.path, 'listener.a.access-log.grpc.tls.verify');
  });
});
