/**
 * Transport security of one gRPC server (the xDS server or the ALS sink), in one object: the
 * rotating TLS files (tls-files.ts), the identity rule for client certificates (peer-identity.ts),
 * and the count and log of every refusal. In: the server's TLS options, its grpc-js Server (to
 * see failed handshakes) and, per stream, the call and the node id it claims. Out: credentials to
 * bind with, allow/deny answers, and a status for /status and /metrics.
 *
 * Refusals are counted by reason:
 *   tls_handshake   the TLS handshake failed: no client certificate, one from another CA,
 *                   a plaintext client (logged at warn once per error code, then at debug)
 *   no_certificate  a stream without a verified client certificate
 *   node_id         the node id is not named by the certificate
 *   group           the certificate names another node group (xDS only)
 * A refused stream is logged once (node id, SANs, peer address); the caller ends it with
 * PERMISSION_DENIED before anything is sent.
 *
 * CSDS (xDS only): with mTLS a caller reads the nodes its certificate may read (peer-identity.ts
 * readerOf) unless it holds an operator SAN (`csdsAdminSans`), which reads every node. Answers
 * whose node matchers selected nodes the caller may not read leave them out; those are counted
 * here (the CSDS service logs them, once per stream).
 */
import type { Server } from '@grpc/grpc-js';
import type { Server as NetServer } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from '../log.js';
import { DENY_REASONS, IdentityRule, describe, peerNames, type DenyReason, type Denial, type PeerNames } from './peer-identity.js';
import { TlsFiles, type TlsFilePaths, type TlsStatus } from './tls-files.js';

export type RefusalReason = DenyReason | 'tls_handshake';
export const REFUSAL_REASONS: readonly RefusalReason[] = ['tls_handshake', ...DENY_REASONS];

export interface TransportSecurityOptions {
  readonly tls: TlsFilePaths;
  /** URI SAN pattern naming the node group (xDS only); see peer-identity.ts. */
  readonly groupPattern?: string;
  /** How often the TLS files are checked for a change (ms). */
  readonly pollMs?: number;
  /** xDS only, with mTLS: a client certificate with one of these DNS or URI SANs reads every node through CSDS. */
  readonly csdsAdminSans?: readonly string[];
}

/** Which nodes a CSDS caller may read: by node id and the (base) group the node is served. */
export type CsdsReadable = (nodeId: string, group: string) => boolean;

export interface TransportSecurityStatus {
  readonly tls: TlsStatus;
  /** Whether client certificates are required and node ids checked against them. */
  readonly mtls: boolean;
  readonly groupPattern: string | null;
  readonly refused: Readonly<Record<RefusalReason, number>>;
  /** xDS with mTLS: CSDS access (operator SANs, answers that left out nodes the caller may not read). */
  readonly csds?: { readonly adminSans: readonly string[]; readonly withheld: number };
}

/** A call that can tell who is on the other end (grpc-js server calls; their AuthContext, structurally). */
export interface PeerCall {
  getAuthContext(): { readonly sslPeerCertificate?: PeerCertificate } | null;
  getPeer(): string;
}

export class TransportSecurity {
  readonly #files: TlsFiles;
  readonly #rule: IdentityRule;
  readonly #logger: Logger;
  readonly #groupPattern: string | undefined;
  readonly #refused: Record<RefusalReason, number> = { tls_handshake: 0, no_certificate: 0, node_id: 0, group: 0 };
  readonly #warnedHandshake = new Set<string>();
  readonly #watched = new WeakSet<NetServer>();
  /** The server, as named in logs: 'xds' serves CSDS too. */
  readonly #what: string;
  readonly #csdsAdminSans: readonly string[];
  #csdsWithheld = 0;

  private constructor(files: TlsFiles, rule: IdentityRule, logger: Logger, what: string, opts: TransportSecurityOptions) {
    this.#what = what;
    this.#files = files;
    this.#rule = rule;
    this.#logger = logger;
    this.#groupPattern = opts.groupPattern;
    this.#csdsAdminSans = Object.freeze([...(opts.csdsAdminSans ?? [])]);
  }

  /** Loads the TLS files (an error names the bad file or pattern); `what` names the server in logs. */
  static async open(opts: TransportSecurityOptions, logger: Logger, what: string): Promise<TransportSecurity> {
    const rule = new IdentityRule(opts.groupPattern);
    const files = await TlsFiles.open(opts.tls, { logger, what, ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}) });
    return new TransportSecurity(files, rule, logger.child({ tls: what }), what, opts);
  }

  get credentials() {
    return this.#files.credentials;
  }

  /** mTLS: every stream's node id is checked against its client certificate. */
  get checksIdentity(): boolean {
    return this.#files.requiresClientCert;
  }

  get checksGroup(): boolean {
    return this.checksIdentity && this.#rule.checksGroup;
  }

  peerOf(call: PeerCall): PeerNames | undefined {
    return peerNames(call.getAuthContext());
  }

  /**
   * Whether the peer may speak for `nodeId` (and be served `group`); a refusal is counted and
   * logged here, once per call of this method: the caller ends the stream.
   */
  authorize(peer: PeerNames | undefined, nodeId: string, peerAddress: string, group?: string): Denial | undefined {
    if (!this.checksIdentity) return undefined;
    const denial = this.#rule.check(peer, nodeId, group);
    if (denial === undefined) return undefined;
    this.#refused[denial.reason]++;
    this.#logger.warn(
      { node: nodeId, sans: peer ? describe(peer) : null, peer: peerAddress, reason: denial.reason, ...(group !== undefined ? { group } : {}) },
      `stream refused (PERMISSION_DENIED): ${denial.message}`,
    );
    return denial;
  }

  /** CSDS: what `peer` may read; undefined: every node (no mTLS, or an operator SAN). */
  csdsReadable(peer: PeerNames | undefined): CsdsReadable | undefined {
    if (!this.checksIdentity) return undefined;
    if (peer !== undefined && this.#csdsAdminSans.some((san) => peer.dns.includes(san) || peer.uri.includes(san))) return undefined;
    return this.#rule.readerOf(peer);
  }

  /** A CSDS answer left out nodes its matchers selected that the caller may not read. */
  countCsdsWithheld(): void {
    this.#csdsWithheld++;
  }

  /**
   * Counts failed TLS handshakes of `server` (bound already). grpc-js keeps its HTTP/2 servers
   * private; if a release renames the field, handshake failures go uncounted (still refused).
   */
  watchHandshakes(server: Server): void {
    const servers = (server as unknown as { http2Servers?: Map<NetServer, unknown> }).http2Servers;
    if (!(servers instanceof Map)) {
      this.#logger.warn('cannot see grpc-js HTTP/2 servers: failed TLS handshakes will not be counted');
      return;
    }
    for (const s of servers.keys()) {
      if (this.#watched.has(s)) continue;
      this.#watched.add(s);
      s.on('tlsClientError', (err: NodeJS.ErrnoException, socket: { remoteAddress?: string; remotePort?: number }) => {
        this.#refused.tls_handshake++;
        const code = err.code ?? 'unknown';
        const fields = { peer: `${socket.remoteAddress}:${socket.remotePort}`, code, err: err.message };
        if (this.#warnedHandshake.has(code) || this.#warnedHandshake.size >= 32) this.#logger.debug(fields, 'TLS handshake failed');
        else {
          this.#warnedHandshake.add(code);
          this.#logger.warn(
            fields,
            'TLS handshake failed (a client without a valid certificate, or plaintext); further ones with this code are logged at debug',
          );
        }
      });
    }
  }

  status(): TransportSecurityStatus {
    return Object.freeze({
      tls: this.#files.status(),
      mtls: this.checksIdentity,
      groupPattern: this.#groupPattern ?? null,
      refused: Object.freeze({ ...this.#refused }),
      ...(this.checksIdentity && this.#what === 'xds' ? { csds: Object.freeze({ adminSans: this.#csdsAdminSans, withheld: this.#csdsWithheld }) } : {}),
    });
  }

  /** Check the files now (tests; the timer does it every poll interval). */
  poll(): Promise<void> {
    return this.#files.poll();
  }

  close(): void {
    this.#files.close();
  }
}
