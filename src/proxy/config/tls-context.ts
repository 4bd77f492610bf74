/**
 * A `transport_socket` (envoy.transport_sockets.tls) -> the TLS the proxy speaks on a connection.
 * In: a FieldReader over a TransportSocket: on a Cluster, on a listener's filter chain, or on the
 * bootstrap's xDS cluster. Out: a frozen UpstreamTlsModel (node tls.connect options: CA, client
 * certificate, SNI, SAN checks, ALPN) or DownstreamTlsModel (tls server options: certificate,
 * client CA, whether a client certificate is required), or a ResourceError naming the field.
 *
 * Certificates come from files (DataSource filename) or inline (inline_string, inline_bytes), private
 * keys from files only;
 * they are read once, when the resource is read, so a missing file or a key that does not fit its
 * certificate rejects the resource (NACK) as in Envoy. SDS, certificate providers and everything
 * else we do not do is refused with the field named: a TLS setting is never silently dropped.
 *
 * Verification follows Envoy, not node's defaults: without `validation_context.trusted_ca` the
 * peer's certificate is not verified; with it, the chain must lead to that CA, and the peer's name
 * is checked only against `match_typed_subject_alt_names` (never against the SNI or host).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { FieldReader } from './field-reader.js';
import { readStringMatcher, type StringPredicate } from './string-matcher.js';
import { SUPPORT } from './support.js';

export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
const T = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.';
export const UPSTREAM_TLS_CONTEXT_TYPE = `${T}UpstreamTlsContext`;
export const DOWNSTREAM_TLS_CONTEXT_TYPE = `${T}DownstreamTlsContext`;

/** A certificate check that returns why it failed, or undefined when the peer is acceptable. */
export type PeerCheck = (cert: tls.PeerCertificate) => Error | undefined;

export interface UpstreamTlsModel {
  /** For tls.connect (spread; the caller adds host, port, socket and ALPN). */
  readonly options: Readonly<tls.ConnectionOptions>;
  /** A digest of the settings and certificate bytes: equal keys, interchangeable connections. */
  readonly key: string;
  /** common_tls_context.alpn_protocols; empty: the caller's protocol decides (h2 pools offer h2). */
  readonly alpn: readonly string[];
  /** CA PEM, client chain and key, for clients that take them apart (grpc-js). */
  readonly ca: Buffer | undefined;
  readonly certChain: Buffer | undefined;
  readonly privateKey: Buffer | undefined;
  readonly sni: string | undefined;
  readonly checkPeer: PeerCheck;
}

export interface DownstreamTlsModel {
  /** The server certificate, its key and the client CA as PEM (checked to load when read). */
  readonly pem: { readonly cert: Buffer; readonly key: Buffer; readonly ca: Buffer | undefined };
  /** A client certificate is asked for (a trusted CA is configured). */
  readonly requestCert: boolean;
  /** ... and must be presented (require_client_certificate). */
  readonly requireCert: boolean;
  readonly alpn: readonly string[];
  /** SAN matchers on the client certificate, when one is presented. */
  readonly checkPeer: PeerCheck;
}

/** The TLS context of an upstream TransportSocket (Cluster.transport_socket, the bootstrap's xDS cluster). */
export function readUpstreamTransportSocket(r: FieldReader): UpstreamTlsModel {
  const ctx = tlsTypedConfig(r, UPSTREAM_TLS_CONTEXT_TYPE);
  ctx.declare(SUPPORT.UpstreamTlsContext);
  const sni = ctx.string('sni') || undefined;
  const common = readCommonTlsContext(ctx);
  if (common.certs.length > 1) throw common.reader.error('tls_certificates', 'at most one client certificate is supported');
  const cert = common.certs[0];
  const ca = common.ca;
  const checkPeer = common.checkPeer;
  let secureContext: tls.SecureContext;
  try {
    secureContext = tls.createSecureContext({ ca, cert: cert?.chain, key: cert?.key });
  } catch (err) {
    throw common.reader.error(cert ? 'tls_certificates[0]' : 'validation_context', `cannot load the certificates: ${(err as Error).message}`);
  }
  const options: tls.ConnectionOptions = {
    // One context for every connection: the PEM files are parsed once, not per handshake.
    secureContext,
    servername: sni,
    // Envoy without trusted_ca accepts any server certificate; with it, the chain must verify.
    rejectUnauthorized: ca !== undefined,
    // Envoy checks names only against match_typed_subject_alt_names, never against SNI/host.
    checkServerIdentity: (_host, peer) => checkPeer(peer),
  };
  // Same settings, same key: a cluster update that keeps them keeps its connections.
  const key = createHash('sha256')
    .update(JSON.stringify(r.value()))
    .update(ca ?? '')
    .update(cert?.chain ?? '')
    .update(cert?.key ?? '')
    .digest('hex');
  return Object.freeze({
    options: Object.freeze(options),
    key,
    alpn: common.alpn,
    ca,
    certChain: cert?.chain,
    privateKey: cert?.key,
    sni,
    checkPeer,
  });
}

/** The TLS context of a listener filter chain's TransportSocket. */
export function readDownstreamTransportSocket(r: FieldReader): DownstreamTlsModel {
  const ctx = tlsTypedConfig(r, DOWNSTREAM_TLS_CONTEXT_TYPE);
  ctx.declare(SUPPORT.DownstreamTlsContext);
  const required = ctx.wrappedBool('require_client_certificate') ?? false;
  if (!ctx.has('common_tls_context')) throw ctx.error('common_tls_context', 'must be set (the server certificate, in tls_certificates)');
  const common = readCommonTlsContext(ctx);
  const at = common.reader;
  if (common.certs.length !== 1) throw at.error('tls_certificates', `exactly one server certificate is supported (got ${common.certs.length})`);
  if (required && common.ca === undefined) {
    throw ctx.error('require_client_certificate', 'needs common_tls_context.validation_context.trusted_ca to verify client certificates against');
  }
  const cert = common.certs[0] as CertPair;
  try {
    tls.createSecureContext({ cert: cert.chain, key: cert.key, ca: common.ca });
  } catch (err) {
    throw at.error('tls_certificates[0]', `cannot load the certificate and key: ${(err as Error).message}`);
  }
  return Object.freeze({
    pem: Object.freeze({ cert: cert.chain, key: cert.key, ca: common.ca }),
    requestCert: common.ca !== undefined,
    requireCert: required,
    alpn: common.alpn,
    checkPeer: common.checkPeer,
  });
}

/** The TransportSocket's typed_config, which must be `type` (name: envoy.transport_sockets.tls, or unset). */
function tlsTypedConfig(r: FieldReader, type: string): FieldReader {
  const name = r.string('name') ?? '';
  if (name !== '' && name !== TLS_TRANSPORT_SOCKET) throw r.error('name', `transport socket ${name} is not implemented (only ${TLS_TRANSPORT_SOCKET})`);
  const tc = r.message('typed_config');
  if (!tc) throw r.error('typed_config', `must be set (a ${type.slice(T.length)})`);
  const got = tc.anyType();
  if (got !== type) throw tc.error('@type', `expected ${type}, got ${got}`);
  return tc;
}

interface CertPair {
  readonly chain: Buffer;
  readonly key: Buffer;
}

interface CommonTls {
  /** The common_tls_context reader (for errors), or the TLS context's when absent. */
  readonly reader: FieldReader;
  readonly certs: readonly CertPair[];
  readonly ca: Buffer | undefined;
  readonly alpn: readonly string[];
  readonly checkPeer: PeerCheck;
}

const ACCEPT_ANY: PeerCheck = () => undefined;

/** `ctx.common_tls_context`; absent is allowed (no certificate, no verification), errors then name `ctx`. */
function readCommonTlsContext(ctx: FieldReader): CommonTls {
  const r = ctx.message('common_tls_context');
  if (!r) return { reader: ctx, certs: [], ca: undefined, alpn: [], checkPeer: ACCEPT_ANY };
  r.declare(SUPPORT.CommonTlsContext);
  const certs = r.list('tls_certificates').map((c) => {
    c.declare(SUPPORT.TlsCertificate);
    const chain = readDataSource(c.message('certificate_chain'), c, 'certificate_chain');
    const key = readDataSource(c.message('private_key'), c, 'private_key', true);
    return Object.freeze({ chain, key });
  });
  const alpn = Object.freeze([...r.stringList('alpn_protocols')]);
  const v = r.message('validation_context');
  let ca: Buffer | undefined;
  let checkPeer = ACCEPT_ANY;
  if (v) {
    v.declare(SUPPORT.CertificateValidationContext);
    v.enumOf('trust_chain_verification', ['VERIFY_TRUST_CHAIN'] as const, 'VERIFY_TRUST_CHAIN');
    const trusted = v.message('trusted_ca');
    if (trusted) ca = readDataSource(trusted, v, 'trusted_ca');
    const matchers = v.list('match_typed_subject_alt_names').map(readSanMatcher);
    if (matchers.length > 0) {
      if (!ca) throw v.error('match_typed_subject_alt_names', 'needs trusted_ca (names of an unverified certificate prove nothing)');
      checkPeer = (cert) => {
        const sans = parseSubjectAltNames(cert.subjectaltname);
        if (matchers.some((m) => sans.some((s) => s.type === m.type && m.match(s.value)))) return undefined;
        return new Error(`peer certificate SANs [${cert.subjectaltname ?? ''}] match no match_typed_subject_alt_names entry`);
      };
    }
  }
  return { reader: r, certs, ca, alpn, checkPeer };
}

/**
 * DataSource: a file, or inline PEM (inline_string) or bytes (inline_bytes, base64 on the wire).
 * A private key (`secret`) only from a file: inline, it would show in /config_dump, which does not
 * redact as Envoy's does.
 */
function readDataSource(r: FieldReader | undefined, parent: FieldReader, key: string, secret = false): Buffer {
  if (!r) throw parent.error(key, 'must be set');
  if (secret && (r.has('inline_string') || r.has('inline_bytes'))) throw r.error('', 'inline private keys are not implemented (use filename)');
  const file = r.string('filename');
  const text = r.string('inline_string');
  const bytes = r.string('inline_bytes');
  if (file) {
    try {
      return readFileSync(file);
    } catch (err) {
      throw r.error('filename', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (text) return Buffer.from(text, 'utf8');
  if (bytes) return Buffer.from(bytes, 'base64');
  throw r.error('', 'needs filename, inline_string or inline_bytes');
}

type SanType = 'DNS' | 'URI' | 'IP_ADDRESS' | 'EMAIL';

interface SanMatcher {
  readonly type: SanType;
  readonly match: StringPredicate;
}

function readSanMatcher(r: FieldReader): SanMatcher {
  const type = r.enumOf('san_type', ['DNS', 'URI', 'IP_ADDRESS', 'EMAIL'] as const, 'DNS');
  if (!r.has('san_type')) throw r.error('san_type', 'must be set');
  const m = r.message('matcher');
  if (!m) throw r.error('matcher', 'must be set');
  return { type, match: readStringMatcher(m) };
}

/** node's `subjectaltname` ("DNS:a, URI:spiffe://x, IP Address:127.0.0.1") as typed values. */
function parseSubjectAltNames(text: string | undefined): Array<{ type: SanType; value: string }> {
  if (!text) return [];
  const out: Array<{ type: SanType; value: string }> = [];
  for (const part of text.split(', ')) {
    const i = part.indexOf(':');
    const kind = part.slice(0, i);
    const value = part.slice(i + 1);
    const type: SanType | undefined =
      kind === 'DNS' ? 'DNS' : kind === 'URI' ? 'URI' : kind === 'IP Address' ? 'IP_ADDRESS' : kind === 'email' ? 'EMAIL' : undefined;
    if (type) out.push({ type, value });
  }
  return out;
}

/** Why a downstream handshake was refused, by Envoy's ssl.* counter names. */
export type TlsRefusal = 'connection_error' | 'fail_verify_no_cert' | 'fail_verify_error' | 'fail_verify_san';

/**
 * A TLS server for one listener's accepted sockets: `accept(socket)` runs the handshake as `model`
 * says and hands the secure socket to `onSecure` once it is done (within `timeoutMs`; 0: node's
 * 120 s) and the client certificate passed. A node tls.Server that never listens does the work, so
 * ALPN and HTTP/2 over the secure socket behave as on any node TLS server. The client certificate
 * is checked here, not by OpenSSL, so each refusal is counted under Envoy's name (`onRefused`).
 */
export function tlsTerminator(
  model: DownstreamTlsModel,
  timeoutMs: number,
  onSecure: (s: tls.TLSSocket) => void,
  onRefused: (why: TlsRefusal) => void,
): (socket: Socket) => void {
  const { cert, key, ca } = model.pem;
  // tls.Server builds its context from PEM (it ignores a `secureContext` option).
  const server = tls.createServer({
    cert,
    key,
    ...(ca ? { ca } : {}),
    requestCert: model.requestCert,
    rejectUnauthorized: false,
    ...(model.alpn.length > 0 ? { ALPNProtocols: [...model.alpn] } : {}),
    ...(timeoutMs > 0 ? { handshakeTimeout: timeoutMs } : {}),
  });
  server.on('tlsClientError', (_err, socket) => {
    onRefused('connection_error');
    socket.destroy();
  });
  server.on('secureConnection', (secure: tls.TLSSocket) => {
    const why = model.requestCert ? clientCertProblem(model, secure) : undefined;
    if (why) {
      onRefused(why);
      secure.on('error', () => undefined);
      secure.destroy();
      return;
    }
    onSecure(secure);
  });
  return (socket) => server.emit('connection', socket);
}

/** A presented certificate must verify and match; none is a refusal only when one is required. */
function clientCertProblem(model: DownstreamTlsModel, secure: tls.TLSSocket): TlsRefusal | undefined {
  const peer = secure.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return model.requireCert ? 'fail_verify_no_cert' : undefined;
  if (!secure.authorized) return 'fail_verify_error';
  return model.checkPeer(peer) === undefined ? undefined : 'fail_verify_san';
}

/** grpc-js channel credentials for `model` (insecure without): CA, client certificate, Envoy's verification rules. */
export function grpcCredentials(model: UpstreamTlsModel | undefined): ChannelCredentials {
  if (!model) return credentials.createInsecure();
  return credentials.createSsl(model.ca ?? null, model.privateKey ?? null, model.certChain ?? null, {
    rejectUnauthorized: model.ca !== undefined,
    checkServerIdentity: (_host, peer) => model.checkPeer(peer),
  });
}
