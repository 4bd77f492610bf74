/**
 * The `tls` keys of listeners and clusters: the YAML is checked (absolute paths, cert with key,
 * no TLS on clusters proxyless gRPC clients reach; errors name path, line and column) and
 * translated to Envoy transport sockets: a DownstreamTlsContext on the listener's filter chain
 * (ALPN h2 + http/1.1 on HTTP listeners; client-ca -> required, verified client certificates) and
 * an UpstreamTlsContext on the cluster (trusted CA, SNI that the instance's certificate must name,
 * client certificate; ALPN h2 for HTTP/2 only).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { staticEndpoints } from '../../../src/config/static-endpoints.js';
import { translate } from '../../../src/translate/index.js';
import { ConfigError } from '../../../src/errors.js';
import { AnyType } from '../../../src/translate/type-names.js';

const TLS_YAML = `
listener:
  web:
    address: "127.0.0.1"
    port: 10443
    tls: { cert: /etc/tls/web.crt, key: /etc/tls/web.key }
  mtls:
    address: "127.0.0.1"
    port: 10444
    tls: { cert: /etc/tls/web.crt, key: /etc/tls/web.key, client-ca: /etc/tls/clients.crt }
  db:
    address: "127.0.0.1"
    port: 27018
    type: tcp
    cluster: mongo
    tls: { cert: /etc/tls/db.crt, key: /etc/tls/db.key }
route:
  domain: ["*"]
  cluster:
    api: { prefix: ["/"] }
    grpc: { prefix: ["/pkg.Svc/"] }
cluster:
  loadbalancer:
    api:
      tls: { ca: /etc/tls/ca.crt, sni: api.internal, cert: /etc/tls/me.crt, key: /etc/tls/me.key }
    grpc:
      upstream-protocol: http2
      tls: { ca: /etc/tls/ca.crt }
    mongo:
      lb-policy: round-robin
      tls: { ca: /etc/tls/ca.crt }
endpoint:
  eds:
    api: { port: 8443, static: [{ address: "10.0.0.1" }] }
    grpc: { port: 50051, static: [{ address: "10.0.0.2" }] }
    mongo: { port: 27017, static: [{ address: "10.0.0.3" }] }
`;

/** 1-based line of the first line containing `needle`. */
const lineOf = (text: string, needle: string): number => text.slice(0, text.indexOf(needle)).split('\n').length;

function errorsOf(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.issues.map((i) => `${i.path}: ${i.message}${i.line !== undefined ? ` (line ${i.line}, col ${i.col})` : ''}`);
  }
  assert.fail('expected the config to be refused');
}

type Obj = Record<string, unknown>;
const at = (o: unknown, ...keys: Array<string | number>): unknown => keys.reduce<unknown>((v, k) => (v as Obj | undefined)?.[k as string], o);

describe('tls keys: translate', () => {
  const config = parseConfig(TLS_YAML, 'tls.yaml');
  const set = translate(config, staticEndpoints(config));
  const listener = (name: string): Obj => set.listeners.find((l) => l.name === name) as Obj;
  const cluster = (name: string): Obj => set.clusters.find((c) => c.name === name) as Obj;
  const file = (filename: string) => ({ filename });

  it('an HTTP listener terminates TLS with its cert and key, offering h2 and http/1.1 by ALPN', () => {
    assert.deepEqual(at(listener('web'), 'filter_chains', 0, 'transport_socket'), {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': AnyType.DownstreamTlsContext,
        common_tls_context: {
          tls_certificates: [{ certificate_chain: file('/etc/tls/web.crt'), private_key: file('/etc/tls/web.key') }],
          alpn_protocols: ['h2', 'http/1.1'],
        },
      },
    });
  });

  it('client-ca requires client certificates and verifies them against that CA', () => {
    const ctx = at(listener('mtls'), 'filter_chains', 0, 'transport_socket', 'typed_config') as Obj;
    assert.deepEqual(ctx.require_client_certificate, { value: true });
    assert.deepEqual(at(ctx, 'common_tls_context', 'validation_context'), { trusted_ca: file('/etc/tls/clients.crt') });
  });

  it('a TCP listener terminates TLS without ALPN', () => {
    const ctx = at(listener('db'), 'filter_chains', 0, 'transport_socket', 'typed_config') as Obj;
    assert.equal(at(ctx, 'common_tls_context', 'alpn_protocols'), undefined);
    assert.deepEqual(at(ctx, 'common_tls_context', 'tls_certificates', 0, 'certificate_chain'), file('/etc/tls/db.crt'));
  });

  it('a cluster dials over TLS: trusted CA, SNI, client certificate; HTTP/2 clusters offer h2', () => {
    assert.deepEqual(at(cluster('api'), 'transport_socket'), {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': AnyType.UpstreamTlsContext,
        common_tls_context: {
          tls_certificates: [{ certificate_chain: file('/etc/tls/me.crt'), private_key: file('/etc/tls/me.key') }],
          // With sni, the instance's certificate must name it (as for the access-log sink).
          validation_context: {
            trusted_ca: file('/etc/tls/ca.crt'),
            match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'api.internal' } }],
          },
        },
        sni: 'api.internal',
      },
    });
    assert.deepEqual(at(cluster('grpc'), 'transport_socket', 'typed_config', 'common_tls_context', 'alpn_protocols'), ['h2']);
    assert.equal(at(cluster('mongo'), 'transport_socket', 'typed_config', 'sni'), undefined);
  });

  it('no tls key, no transport socket (plaintext as before)', () => {
    const plain = parseConfig(TLS_YAML.replace(/^ *tls: .*\n/gm, '').replace('    api:\n', '    api: {}\n'), 'plain.yaml');
    const out = translate(plain, staticEndpoints(plain));
    for (const l of out.listeners) assert.equal(at(l, 'filter_chains', 0, 'transport_socket'), undefined);
    for (const c of out.clusters) assert.equal((c as Obj).transport_socket, undefined);
  });
});

describe('tls keys: refused with path, line and column', () => {
  it('a relative file path', () => {
    const text = TLS_YAML.replace('cert: /etc/tls/web.crt, key: /etc/tls/web.key }', 'cert: web.crt, key: /etc/tls/web.key }');
    assert.deepEqual(errorsOf(text), [
      `listener.web.tls.cert: must be an absolute path (Envoy reads it on its own host) (line ${lineOf(text, 'web.crt')}, col 18)`,
    ]);
  });

  it('a listener tls without key, and an unknown key', () => {
    const text = TLS_YAML.replace('tls: { cert: /etc/tls/db.crt, key: /etc/tls/db.key }', 'tls: { cert: /etc/tls/db.crt, ca: /x }');
    const errors = errorsOf(text);
    assert.ok(
      errors.some((e) => e.startsWith('listener.db.tls.key: ')),
      errors.join('\n'),
    );
    assert.ok(
      errors.some((e) => e.startsWith('listener.db.tls.ca: unknown key')),
      errors.join('\n'),
    );
  });

  it('a cluster client cert without its key (and a key without its cert)', () => {
    const noKey = TLS_YAML.replace(', cert: /etc/tls/me.crt, key: /etc/tls/me.key }', ', cert: /etc/tls/me.crt }');
    assert.deepEqual(errorsOf(noKey), [`cluster.loadbalancer.api.tls.key: required (line ${lineOf(noKey, '/etc/tls/me.crt')}, col 7)`]);
    const noCert = TLS_YAML.replace(', cert: /etc/tls/me.crt, key: /etc/tls/me.key }', ', key: /etc/tls/me.key }');
    assert.match(errorsOf(noCert).join('\n'), /^cluster\.loadbalancer\.api\.tls\.cert: required \(line/);
  });

  it('a cluster without ca', () => {
    const text = TLS_YAML.replace('round-robin\n      tls: { ca: /etc/tls/ca.crt }', 'round-robin\n      tls: { sni: db }');
    assert.match(errorsOf(text).join('\n'), /^cluster\.loadbalancer\.mongo\.tls\.ca: /);
  });

  it('TLS on a cluster that a type: grpc listener routes to', () => {
    const text = TLS_YAML.replace('listener:\n', 'listener:\n  "greeter:50051": { type: grpc }\n').replace(
      'cluster:\n    api: { prefix: ["/"] }\n    grpc: { prefix: ["/pkg.Svc/"] }',
      'cluster:\n    grpc: { prefix: ["/"] }',
    );
    assert.match(
      errorsOf(text).join('\n'),
      /cluster\.loadbalancer\.grpc\.tls: proxyless gRPC clients do not take TLS settings from a Cluster, and listener "greeter:50051"/,
    );
  });
});
