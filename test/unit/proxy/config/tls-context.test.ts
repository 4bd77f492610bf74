/**
 * How our data plane reads `transport_socket` (tls-context.ts), with real certificate files made
 * by openssl: what our translate() writes for the `tls` keys is accepted and read (certificates
 * loaded, client certificates required, SNI, ALPN); what the proxy cannot honour is refused with
 * the resource and field path named (SDS, another transport socket, a missing file, a key that
 * does not fit, transport_socket_matches); the bootstrap's xDS cluster likewise, as a ConfigError
 * naming the bootstrap path.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../../../src/config/parse.js';
import { staticEndpoints } from '../../../../src/config/static-endpoints.js';
import { translate } from '../../../../src/translate/index.js';
import { messageType } from '../../../../src/envoy/protos.js';
import { TypeUrl, messageNameOf, type XdsTypeUrl } from '../../../../src/xds/resource-types.js';
import type { ProtoObject } from '../../../../src/xds/resources.js';
import { decodeResource, isRejected } from '../../../../src/proxy/xds/resource-types.js';
import type { ClusterModel } from '../../../../src/proxy/config/cluster-resource.js';
import type { ListenerModel } from '../../../../src/proxy/config/listener-resource.js';
import { readBootstrapFile } from '../../../../src/proxy/config/bootstrap.js';
import { ConfigError } from '../../../../src/errors.js';
import { makeTempDir } from '../../../support/tmp.js';
import { makeCa, type CertFiles, type TestCa } from '../../../support/certs.js';

function decode(url: XdsTypeUrl, obj: ProtoObject) {
  const t = messageType(messageNameOf(url));
  return decodeResource(url, t.encode(t.fromObject(obj)).finish(), 0);
}

function refusal(url: XdsTypeUrl, obj: ProtoObject): string {
  const d = decode(url, obj);
  assert.ok(isRejected(d), `expected a refusal of ${JSON.stringify(obj).slice(0, 300)}`);
  return d.error;
}

const UPSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const DOWNSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const ADS = { ads: {}, resource_api_version: 'V3' };
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

describe('transport_socket in CDS and LDS', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let ca: TestCa;
  let server: CertFiles;
  let other: CertFiles;
  before(async () => {
    dir = await makeTempDir('tls-context');
    ca = await makeCa(dir.path, 'ca');
    server = await ca.issue('server', { dns: ['localhost'], ip: ['127.0.0.1'] });
    other = await (await makeCa(dir.path, 'other-ca')).issue('other', { dns: ['other'] });
  });
  after(async () => dir.remove());

  const file = (filename: string) => ({ filename });
  const upstream = (ctx: Record<string, unknown>): ProtoObject => ({
    name: 'c1',
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS },
    transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': UPSTREAM, ...ctx } },
  });
  const downstream = (ctx: Record<string, unknown>): ProtoObject => ({
    name: 'l1',
    address: { socket_address: { address: '127.0.0.1', port_value: 1 } },
    filter_chains: [
      {
        filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 'l1', rds: { route_config_name: 'r1', config_source: ADS } } }],
        transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': DOWNSTREAM, ...ctx } },
      },
    ],
  });

  it('accepts and reads what our translate() writes for the tls keys', () => {
    const config = parseConfig(
      `
listener:
  web: { address: "127.0.0.1", port: 10443, tls: { cert: ${server.cert}, key: ${server.key}, client-ca: ${ca.cert} } }
  db: { address: "127.0.0.1", port: 10444, type: tcp, cluster: api, tls: { cert: ${server.cert}, key: ${server.key} } }
route: { domain: ["*"], cluster: { api: { prefix: ["/"] }, h2: { prefix: ["/g"] } } }
cluster:
  loadbalancer:
    api: { tls: { ca: ${ca.cert}, sni: api.internal, cert: ${server.cert}, key: ${server.key} } }
    h2: { upstream-protocol: http2, tls: { ca: ${ca.cert} } }
endpoint: { eds: { api: { port: 1, static: [{ address: "127.0.0.1" }] }, h2: { port: 2, static: [{ address: "127.0.0.1" }] } } }
`,
      'tls.yaml',
    );
    const set = translate(config, staticEndpoints(config));
    const models = new Map<string, unknown>();
    for (const [objs, url] of [
      [set.clusters, TypeUrl.Cluster],
      [set.listeners, TypeUrl.Listener],
    ] as const) {
      for (const obj of objs) {
        const d = decode(url, obj);
        assert.ok(!isRejected(d), isRejected(d) ? d.error : '');
        models.set(String(obj.name), d.model);
      }
    }
    const api = (models.get('api') as ClusterModel).tls;
    assert.ok(api, 'cluster api has TLS');
    assert.equal(api.sni, 'api.internal');
    assert.equal(api.options.rejectUnauthorized, true);
    assert.ok(api.certChain && api.privateKey, 'client certificate loaded');
    assert.deepEqual((models.get('h2') as ClusterModel).tls?.alpn, ['h2']);
    const web = (models.get('web') as ListenerModel).tls;
    assert.ok(web, 'listener web has TLS');
    assert.equal(web.requireCert, true);
    assert.deepEqual(web.alpn, ['h2', 'http/1.1']);
    const db = (models.get('db') as ListenerModel).tls;
    assert.equal(db?.requireCert, false);
    assert.equal(db?.requestCert, false);
  });

  it('refuses SDS, naming the field', () => {
    const msg = refusal(TypeUrl.Cluster, upstream({ common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'x' }] } }));
    assert.match(msg, /^Cluster 'c1': transport_socket\.typed_config\.common_tls_context\.tls_certificate_sds_secret_configs: SDS is not implemented/);
  });

  it('refuses another transport socket, and another typed config', () => {
    const raw = upstream({});
    (raw.transport_socket as Record<string, unknown>).name = 'envoy.transport_sockets.alts';
    assert.match(refusal(TypeUrl.Cluster, raw), /transport_socket\.name: transport socket envoy\.transport_sockets\.alts is not implemented/);
    const wrongType = { ...upstream({}), transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': DOWNSTREAM } } };
    assert.match(refusal(TypeUrl.Cluster, wrongType), /transport_socket\.typed_config\.@type: expected .*UpstreamTlsContext/);
  });

  it('refuses a file it cannot read, and a key that does not fit its certificate', () => {
    const missing = refusal(TypeUrl.Cluster, upstream({ common_tls_context: { validation_context: { trusted_ca: file('/nonexistent/ca.crt') } } }));
    assert.match(missing, /validation_context\.trusted_ca\.filename: cannot read \/nonexistent\/ca\.crt: ENOENT/);
    const mismatch = refusal(
      TypeUrl.Listener,
      downstream({ common_tls_context: { tls_certificates: [{ certificate_chain: file(server.cert), private_key: file(other.key) }] } }),
    );
    assert.match(mismatch, /^Listener 'l1': filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context\.tls_certificates\[0\]: cannot load/);
  });

  it('refuses required client certificates without a CA, a listener without a certificate, inline private keys, unsupported fields', () => {
    const noCa = refusal(
      TypeUrl.Listener,
      downstream({
        require_client_certificate: { value: true },
        common_tls_context: { tls_certificates: [{ certificate_chain: file(server.cert), private_key: file(server.key) }] },
      }),
    );
    assert.match(noCa, /require_client_certificate: needs common_tls_context\.validation_context\.trusted_ca/);
    assert.match(refusal(TypeUrl.Listener, downstream({})), /typed_config\.common_tls_context: must be set/);
    const crl = refusal(TypeUrl.Cluster, upstream({ common_tls_context: { validation_context: { trusted_ca: file(ca.cert), crl: file(ca.cert) } } }));
    assert.match(crl, /validation_context\.crl: CRLs are not implemented/);
    const inlineKey = refusal(
      TypeUrl.Cluster,
      upstream({ common_tls_context: { tls_certificates: [{ certificate_chain: file(server.cert), private_key: { inline_string: 'PEM' } }] } }),
    );
    assert.match(inlineKey, /tls_certificates\[0\]\.private_key: inline private keys are not implemented \(use filename\)/);
    const matches = refusal(TypeUrl.Cluster, { ...upstream({}), transport_socket_matches: [{ name: 'm', match: {} }] });
    assert.match(matches, /transport_socket_matches: transport socket matches are not implemented/);
  });

  it('the bootstrap: TLS to the xDS server from the cluster transport_socket; an unsupported one stops the start', () => {
    const bootstrap = (ts: unknown): string => {
      const f = join(dir.path, `bootstrap-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(
        f,
        JSON.stringify({
          node: { id: 'n1', cluster: 'c' },
          dynamic_resources: { ads_config: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }] } },
          static_resources: {
            clusters: [
              {
                name: 'xds',
                load_assignment: {
                  endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 18000 } } } }] }],
                },
                transport_socket: ts,
              },
            ],
          },
        }),
      );
      return f;
    };
    const good = readBootstrapFile(
      bootstrap({
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': UPSTREAM,
          sni: 'xds.internal',
          common_tls_context: {
            tls_certificates: [{ certificate_chain: file(server.cert), private_key: file(server.key) }],
            validation_context: { trusted_ca: file(ca.cert), match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'localhost' } }] },
          },
        },
      }),
    );
    assert.equal(good.xdsTls?.sni, 'xds.internal');
    assert.ok(good.xdsTls?.ca && good.xdsTls.certChain);
    assert.equal(readBootstrapFile(bootstrap(undefined)).xdsTls, undefined, 'no transport_socket: plaintext');
    const sds = bootstrap({
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': UPSTREAM, common_tls_context: { validation_context_sds_secret_config: { name: 'ca' } } },
    });
    assert.throws(
      () => readBootstrapFile(sds),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues[0]?.path === 'static_resources.clusters[0].transport_socket.typed_config.common_tls_context.validation_context_sds_secret_config' &&
        /SDS is not implemented/.test(e.message),
    );
    const unknown = bootstrap({ name: 'envoy.transport_sockets.tls', typed_config: { '@type': UPSTREAM, sni: 'x', bogus: 1 } });
    assert.throws(
      () => readBootstrapFile(unknown),
      (e: unknown) => e instanceof ConfigError && e.issues[0]?.path === 'static_resources.clusters[0].transport_socket.typed_config.bogus',
    );
  });
});
