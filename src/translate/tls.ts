/**
 * The `tls` keys -> Envoy transport sockets (envoy.transport_sockets.tls). In: a listener's
 * `tls: { cert, key, client-ca }` or a cluster's `tls: { ca, sni, cert, key }` (absolute file
 * paths, read by the data plane on its own host). Out: a TransportSocket with a
 * DownstreamTlsContext (the listener terminates TLS; with client-ca, client certificates are
 * required and verified) or an UpstreamTlsContext (the cluster's instances are dialled over TLS and
 * their certificates verified against `ca`). ALPN is named where the protocol is known (HTTP
 * listeners: h2 and http/1.1; HTTP/2 clusters: h2), so every data plane offers the same.
 */
import type { ClusterTlsConfig, ListenerTlsConfig } from '../config/schema.js';
import type { ProtoObject } from '../xds/resources.js';
import { AnyType, FilterName } from './type-names.js';

const file = (filename: string): ProtoObject => ({ filename });

function certificate(cert: string, key: string): ProtoObject {
  return { certificate_chain: file(cert), private_key: file(key) };
}

export function downstreamTlsSocket(tls: ListenerTlsConfig, alpn: readonly string[]): ProtoObject {
  const common: Record<string, unknown> = { tls_certificates: [certificate(tls.cert, tls.key)] };
  if (alpn.length > 0) common.alpn_protocols = [...alpn];
  const context: Record<string, unknown> = { '@type': AnyType.DownstreamTlsContext, common_tls_context: common };
  const clientCa = tls['client-ca'];
  if (clientCa !== undefined) {
    common.validation_context = { trusted_ca: file(clientCa) };
    context.require_client_certificate = { value: true };
  }
  return { name: FilterName.TlsTransportSocket, typed_config: context };
}

export function upstreamTlsSocket(tls: ClusterTlsConfig, alpn: readonly string[]): ProtoObject {
  const common: Record<string, unknown> = { validation_context: { trusted_ca: file(tls.ca) } };
  if (alpn.length > 0) common.alpn_protocols = [...alpn];
  if (tls.cert !== undefined && tls.key !== undefined) common.tls_certificates = [certificate(tls.cert, tls.key)];
  const context: Record<string, unknown> = { '@type': AnyType.UpstreamTlsContext, common_tls_context: common };
  if (tls.sni !== undefined) context.sni = tls.sni;
  return { name: FilterName.TlsTransportSocket, typed_config: context };
}
