/**
 * Envoy's client side of TLS: a `transport_socket` with an UpstreamTlsContext from files on
 * Envoy's host. In: the YAML `tls` block (ca, optional cert+key, optional sni) of the ALS sink or
 * of a cluster, and the ALPN protocols to offer. Out: the transport socket for a cluster. The CA
 * verifies the server's chain; with `sni`, the name is sent as SNI and must also be a DNS SAN of
 * the server's certificate. gRPC (the sink) offers HTTP/2 by ALPN because Node's HTTP/2 server
 * (our gRPC servers) refuses a TLS connection that does not.
 */
import type { UpstreamTlsConfig } from '../config/schema.js';
import type { ProtoObject } from '../xds/resources.js';
import { AnyType, FilterName } from './type-names.js';

export function upstreamTlsSocket(tls: UpstreamTlsConfig, alpn: readonly string[] = ['h2']): ProtoObject {
  return {
    name: FilterName.TlsTransportSocket,
    typed_config: {
      '@type': AnyType.UpstreamTlsContext,
      ...(tls.sni !== undefined ? { sni: tls.sni } : {}),
      common_tls_context: {
        ...(alpn.length > 0 ? { alpn_protocols: [...alpn] } : {}),
        ...(tls.cert !== undefined && tls.key !== undefined
          ? { tls_certificates: [{ certificate_chain: { filename: tls.cert }, private_key: { filename: tls.key } }] }
          : {}),
        validation_context: {
          trusted_ca: { filename: tls.ca },
          ...(tls.sni !== undefined ? { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: tls.sni } }] } : {}),
        },
      },
    },
  };
}
