/**
 * TLS for a gRPC server (the xDS server, the ALS sink) from PEM files that are rotated in place.
 * In: the paths of a certificate (chain), its private key and, for mTLS, the CA that client
 * certificates must chain to. Out: grpc-js ServerCredentials whose secure context follows the
 * files, and a status (what is served, reloads, the last failure) for /status and /metrics.
 *
 * Rotation: the files are polled (stat every `pollMs`, default 1 s; fs.watch misses renames into
 * a watched path on some filesystems, and Kubernetes swaps a symlinked directory). A change is
 * read once the files have stood still for one poll (so a cert written before its key is not
 * judged half-done), then checked: each file parses, the key belongs to the certificate, and
 * Node builds a secure context from them. A good set becomes the context of new connections
 * (grpc-js calls setSecureContext; established connections and their streams keep going); a bad
 * one is logged once, counted, shown in status, and the last good set keeps serving. At start a
 * bad set is an error naming the file.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ServerCredentials } from '@grpc/grpc-js';
import { ConsulXdsError } from '../errors.js';
import type { Logger } from '../log.js';

export interface TlsFilePaths {
  readonly cert: string;
  readonly key: string;
  /** Client certificates are required and must chain to this CA (mTLS). */
  readonly clientCa?: string;
}

export interface TlsStatus {
  readonly cert: string;
  readonly key: string;
  readonly clientCa: string | null;
  /** The certificate served to new connections. */
  readonly serial: string;
  readonly fingerprint256: string;
  readonly notAfter: string;
  readonly loadedAt: string;
  /** Good sets applied after the first one. */
  readonly reloads: number;
  /** Changed sets refused (the previous one kept serving). */
  readonly reloadFailures: number;
  /** The last refused set, while the files still hold it. */
  readonly lastError: { readonly message: string; readonly at: string } | null;
}

export const DEFAULT_TLS_POLL_MS = 1000;

/** grpc-js ServerCredentials whose context we replace; grpc-js applies it to new connections. */
class RotatingServerCredentials extends ServerCredentials {
  constructor(requireClientCert: boolean, context: SecureContextOptions) {
    super({ requestCert: requireClientCert, rejectUnauthorized: requireClientCert }, context);
  }

  replace(context: SecureContextOptions): void {
    this.updateSecureContextOptions(context);
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

interface Loaded {
  readonly context: SecureContextOptions;
  readonly cert: X509Certificate;
}

/** A PEM file's bytes; an error names `what` and the path (never the content). */
export async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ConsulXdsError('CXDS_TLS_FILES', `${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads and checks a set; the error names the file at fault. */
async function load(paths: TlsFilePaths): Promise<Loaded> {
  const [certPem, keyPem, caPem] = await Promise.all([
    readPem(paths.cert, 'certificate'),
    readPem(paths.key, 'key'),
    paths.clientCa !== undefined ? readPem(paths.clientCa, 'client CA') : undefined,
  ]);
  const fail = (message: string, cause?: unknown) => new ConsulXdsError('CXDS_TLS_FILES', message, { cause });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw fail(`certificate ${paths.cert}: not a PEM certificate (${(err as Error).message})`, err);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    // The key's text must never reach a log: only the path and the parser's verdict.
    throw fail(`key ${paths.key}: not a PEM private key`);
  }
  if (!cert.checkPrivateKey(key)) throw fail(`key ${paths.key} does not belong to certificate ${paths.cert}`);
  if (caPem !== undefined) {
    try {
      new X509Certificate(caPem);
    } catch (err) {
      throw fail(`client CA ${paths.clientCa}: not a PEM certificate (${(err as Error).message})`, err);
    }
  }
  const context: SecureContextOptions = { cert: certPem, key: keyPem, ...(caPem !== undefined ? { ca: caPem } : {}) };
  try {
    createSecureContext(context);
  } catch (err) {
    throw fail(`${paths.cert} + ${paths.key}${paths.clientCa ? ` + ${paths.clientCa}` : ''}: ${(err as Error).message}`);
  }
  return { context, cert };
}

/** The files' identity for change detection: mtime, size and inode of each (or why stat failed). */
async function signature(paths: TlsFilePaths): Promise<string> {
  const files = [paths.cert, paths.key, ...(paths.clientCa !== undefined ? [paths.clientCa] : [])];
  const parts = await Promise.all(
    files.map((f) =>
      stat(f).then(
        (s) => `${s.mtimeMs}:${s.size}:${s.ino}`,
        (err: NodeJS.ErrnoException) => `error:${err.code}`,
      ),
    ),
  );
  return parts.join('|');
}

export class TlsFiles {
  readonly credentials: ServerCredentials;
  readonly #creds: RotatingServerCredentials;
  readonly #paths: TlsFilePaths;
  readonly #logger: Logger;
  readonly #timer: NodeJS.Timeout;
  #current: Loaded;
  #loadedAt = new Date();
  /** The signature whose content is applied (or was judged and refused). */
  #judged: string;
  /** A changed signature seen on the last poll, waiting to stand still. */
  #seen: string | undefined;
  #polling = false;
  #reloads = 0;
  #failures = 0;
  #lastError: { message: string; at: string } | null = null;

  private constructor(paths: TlsFilePaths, loaded: Loaded, sig: string, logger: Logger, pollMs: number) {
    this.#paths = paths;
    this.#current = loaded;
    this.#judged = sig;
    this.#logger = logger;
    this.#creds = new RotatingServerCredentials(paths.clientCa !== undefined, loaded.context);
    this.credentials = this.#creds;
    this.#timer = setInterval(() => void this.poll(), pollMs);
    this.#timer.unref();
  }

  /** Loads the files (an error names the bad one) and starts watching them. `what` names the server in logs. */
  static async open(paths: TlsFilePaths, opts: { readonly logger: Logger; readonly what: string; readonly pollMs?: number }): Promise<TlsFiles> {
    const sig = await signature(paths);
    const loaded = await load(paths).catch((err: Error) => {
      throw new ConsulXdsError('CXDS_TLS_FILES', `${opts.what} TLS: ${err.message}`, { cause: err });
    });
    const logger = opts.logger.child({ tls: opts.what });
    logger.info(
      { cert: paths.cert, serial: loaded.cert.serialNumber, notAfter: loaded.cert.validTo, mtls: paths.clientCa !== undefined },
      'TLS certificate loaded',
    );
    return new TlsFiles(paths, loaded, sig, logger, opts.pollMs ?? DEFAULT_TLS_POLL_MS);
  }

  get requiresClientCert(): boolean {
    return this.#paths.clientCa !== undefined;
  }

  status(): TlsStatus {
    const cert = this.#current.cert;
    return Object.freeze({
      cert: this.#paths.cert,
      key: this.#paths.key,
      clientCa: this.#paths.clientCa ?? null,
      serial: cert.serialNumber,
      fingerprint256: cert.fingerprint256,
      notAfter: new Date(cert.validTo).toISOString(),
      loadedAt: this.#loadedAt.toISOString(),
      reloads: this.#reloads,
      reloadFailures: this.#failures,
      lastError: this.#lastError,
    });
  }

  /** One poll: exported for tests that do not want to wait for the timer. */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const sig = await signature(this.#paths);
      if (sig === this.#judged) {
        this.#seen = undefined;
        return;
      }
      if (sig !== this.#seen) {
        this.#seen = sig; // changed: judge it once it stands still
        return;
      }
      this.#judged = sig;
      this.#seen = undefined;
      await this.#reload();
    } finally {
      this.#polling = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #reload(): Promise<void> {
    let next: Loaded;
    try {
      next = await load(this.#paths);
    } catch (err) {
      this.#failures++;
      this.#lastError = { message: (err as Error).message, at: new Date().toISOString() };
      this.#logger.error(
        { err: (err as Error).message, serving: this.#current.cert.serialNumber },
        'TLS files changed but cannot be used; the previous certificate keeps serving',
      );
      return;
    }
    if (next.cert.fingerprint256 === this.#current.cert.fingerprint256 && this.#sameContext(next.context)) {
      this.#lastError = null; // touched, or a bad set put back right: nothing to apply
      return;
    }
    this.#creds.replace(next.context);
    const previous = this.#current.cert.serialNumber;
    this.#current = next;
    this.#loadedAt = new Date();
    this.#reloads++;
    this.#lastError = null;
    this.#logger.info({ serial: next.cert.serialNumber, previous, notAfter: next.cert.validTo }, 'TLS certificate reloaded; new connections get it');
  }

  #sameContext(next: SecureContextOptions): boolean {
    const cur = this.#current.context;
    const eq = (a: unknown, b: unknown) => (Buffer.isBuffer(a) && Buffer.isBuffer(b) ? a.equals(b) : a === b);
    return eq(cur.key, next.key) && eq(cur.ca, next.ca);
  }
}
