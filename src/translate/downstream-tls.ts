/**
 * Envoy's server side of TLS: a listener's `tls: { cert, key, client-ca }` (absolute file paths,
 * read by the data plane on its own host) -> a TransportSocket with a DownstreamTlsContext for the
 * listener's filter chain: the listener terminates TLS; with client-ca, client certificates are
 * required and verified against it. The ALPN protocols to offer are the caller's (HTTP listeners:
 * h2 and http/1.1), so every data plane offers the same. The client side is upstream-tls.ts.
 */
import type { ListenerTlsConfig } from '../config/schema.js';
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
