/**
 * The Consul HTTP client. In: a ConsulConnection (address, token, datacenter, TLS). Out: raw
 * responses with their status, X-Consul-Index and the headers the blocking-query loop needs, and
 * the few typed calls we make (KV read, KV check-and-set write).
 *
 * The transport is the `consul` package: its kv calls build KV requests (key escaping, `cas`),
 * its HTTP layer (papi) carries every request with our TLS options, its keep-alive agent, a
 * per-request timeout and cancellation (`ctx`). Its Watch is not used: it re-queries without a
 * rate limit, treats index 0 as fatal, emits on every index bump and cannot abort a request, and
 * those are the blocking-query rules our loop follows (blocking-watch.ts). An onResponse
 * extension hands us each exchange before the package reads it, so a 404 or a 429 stays an
 * answer with its status and headers, and our zod schemas parse Consul's JSON once (the package
 * would parse it and decode KV values in place); an onRequest extension closes two gaps of the
 * package's (IPv6 literal addresses, a response cut mid-body).
 *
 * The ACL token travels only in the X-Consul-Token header; error messages name the method and
 * path (which contains the KV key or service name) and never the token. A package error that
 * holds a response (whose request holds the headers) never leaves this file: any response is
 * turned into a ConsulResponse here.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import Consul from 'consul';
import { z } from 'zod';
import { ConsulError, ConsulXdsError } from '../errors.js';
import { resolveConnection, type ConsulConnection, type ConsulOptions } from './options.js';

export interface ConsulRequest {
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly body?: string;
  readonly signal?: AbortSignal;
  /** Abort after this long (default 10 s; blocking queries pass wait + Consul's jitter + margin). */
  readonly timeoutMs?: number;
}

export interface ConsulResponse {
  readonly status: number;
  /** X-Consul-Index, when the endpoint sends one (every blocking endpoint does, also on 404). */
  readonly index?: number;
  readonly body: string;
  /**
   * X-Consul-Results-Filtered-By-ACLs: true. The token may not read some of the results, so the
   * answer is incomplete (Consul 1.11+; 1.8.7 filters silently).
   */
  readonly aclFiltered?: boolean;
  /** Retry-After, in ms, when Consul sent one (with 429 or 503). */
  readonly retryAfterMs?: number;
}

/** Consul asked us to slow down (429, or a 503 with Retry-After): the watch waits at least `retryAfterMs`. */
export class ConsulThrottledError extends ConsulError {
  readonly retryAfterMs?: number;
  constructor(message: string, retryAfterMs: number | undefined) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

export interface KvEntry {
  readonly key: string;
  /** The value decoded as UTF-8 (configs are text). */
  readonly value: string;
  readonly modifyIndex: number;
}

const kvEntrySchema = z.array(
  z.object({
    Key: z.string(),
    Value: z.string().nullable(),
    ModifyIndex: z.number().int().nonnegative(),
  }),
);

const DEFAULT_TIMEOUT_MS = 10_000;

/** Where the token comes from, for hints (the flag is in src/commands/consul-flags.ts). */
export const TOKEN_SETTING = '$CONSUL_HTTP_TOKEN or --consul-token-file';

/**
 * Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date. Out: milliseconds from `nowMs`,
 * at least 0; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, nowMs: number = Date.now()): number | undefined {
  const v = (typeof value === 'string' ? value : value?.[0])?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * One request as the package's HTTP layer (papi) ends it: a response (any status; complete only
 * when its whole body arrived), an error, or both (a response cut short, a non-2xx status).
 */
interface Exchange {
  readonly res?: IncomingMessage & { body?: unknown };
  readonly err?: Error & { readonly isTimeout?: boolean };
  /** The node:http(s) module papi sends with; see the onRequest extension. */
  transport: { request(options: RequestOptions): ClientRequest };
}

/** The options every package call takes: datacenter, cancellation and timeout (README "Common Method Call Options"). */
interface CallOptions {
  readonly dc?: string;
  readonly ctx: EventEmitter;
  readonly timeout: number;
}

/** The parts of the package we call. Its typings omit papi's request layer and the per-call ctx/timeout options. */
interface ConsulTransport {
  readonly kv: {
    get(opts: CallOptions & { key: KeyParam }): Promise<unknown>;
    set(opts: CallOptions & { key: KeyParam; value: string; cas?: number }): Promise<unknown>;
  };
  _request(opts: CallOptions & { method: string; path: string; query: Record<string, string>; body?: Buffer }): Promise<unknown>;
  _ext(event: 'onRequest' | 'onResponse', fn: (exchange: Exchange, next: (err?: false, value?: Exchange) => void) => void): void;
  destroy(): void;
}

/** A path parameter papi sends as given (`encode: false`), for a key escaped per segment by escapeKey. */
interface KeyParam {
  readonly encode: false;
  toString(): string;
}

/** The package's paths are relative to its base URL, which ends in the API version. */
const API_PREFIX = '/v1';

/** Consul's JSON stays text: our zod schemas parse it once (health-entries.ts, decodeKvEntry). */
const keepText = (data: Buffer | string): string => (Buffer.isBuffer(data) ? data.toString('utf8') : data);

export class ConsulClient {
  readonly connection: ConsulConnection;
  private readonly consul: ConsulTransport;

  constructor(connection: ConsulConnection) {
    this.connection = connection;
    const { tls } = connection;
    const tlsOptions =
      connection.baseUrl.protocol === 'https:'
        ? {
            ca: readPem(tls.caFile, 'CA'),
            cert: readPem(tls.certFile, 'client certificate'),
            key: readPem(tls.keyFile, 'client key'),
            rejectUnauthorized: tls.insecure !== true,
            servername: tls.serverName,
          }
        : {};
    // The package creates a keep-alive agent for the base URL's scheme: a blocking loop re-queries
    // at once after each answer, and reusing the socket saves a handshake (a TLS one, with https).
    const consul = new Consul({
      baseUrl: `${connection.baseUrl.origin}${connection.baseUrl.pathname.replace(/\/+$/, '')}${API_PREFIX}`,
      headers: { accept: 'application/json', ...(connection.token && { 'x-consul-token': connection.token }) },
      decoders: { 'application/json': keepText, 'text/json': keepText },
      ...Object.fromEntries(Object.entries(tlsOptions).filter(([, v]) => v !== undefined)),
    } as ConstructorParameters<typeof Consul>[0]) as unknown as ConsulTransport;
    // Two gaps of papi's, closed where it sends: it passes an IPv6 literal's brackets on to DNS
    // (`[::1]`), and it waits for a response's 'end' only, so a connection lost mid-body would
    // hang until the timeout; it fails at once instead, as a refused connection does.
    consul._ext('onRequest', (exchange, next) => {
      const { transport } = exchange;
      exchange.transport = {
        request(options) {
          const req = transport.request({ ...options, hostname: options.hostname?.replace(/^\[(.*)\]$/, '$1') });
          req.on('response', (res: IncomingMessage) => res.on('error', (err) => req.emit('error', err)));
          return req;
        },
      };
      next();
    });
    // Every exchange ends here, before the package's own handling: see the header comment.
    consul._ext('onResponse', (exchange, next) => next(false, exchange));
    this.consul = consul;
  }

  static fromOptions(opts: ConsulOptions = {}, env: NodeJS.ProcessEnv = process.env): ConsulClient {
    return new ConsulClient(resolveConnection(opts, env));
  }

  /** The address, for messages and status (never includes the token). */
  get address(): string {
    return this.connection.baseUrl.origin;
  }

  /** Any API call by path (`/v1/...`): what the blocking-query loop and the tests use. */
  async request(method: string, path: string, req: ConsulRequest = {}): Promise<ConsulResponse> {
    const what = `consul ${method} ${path}`;
    if (!path.startsWith(`${API_PREFIX}/`)) throw new ConsulError(`${what}: not a Consul API path (${API_PREFIX}/...)`);
    const query: Record<string, string> = this.connection.datacenter === undefined ? {} : { dc: this.connection.datacenter };
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) query[k] = v;
    // By path on the package's request layer: the loop is given a path; typed agent/catalog calls rebuild bodies (dropping Weights).
    return this.send(what, req, (common) =>
      this.consul._request({ ...common, method, path: path.slice(API_PREFIX.length), query, ...(req.body !== undefined && { body: Buffer.from(req.body) }) }),
    );
  }

  /** Throws a ConsulError naming the request unless the status is one of `ok`. */
  static expect(res: ConsulResponse, what: string, ok: readonly number[] = [200]): ConsulResponse {
    if (ok.includes(res.status)) return res;
    const detail = res.body.trim().slice(0, 300) || '(empty body)';
    const hint = res.status === 403 ? ` (check the ACL token: ${TOKEN_SETTING})` : '';
    const message = `${what}: consul answered ${res.status}: ${detail}${hint}`;
    if (res.status === 429 || res.retryAfterMs !== undefined) throw new ConsulThrottledError(message, res.retryAfterMs);
    throw new ConsulError(message);
  }

  /** Reads a key; undefined when it does not exist. */
  async kvGet(key: string, opts: { signal?: AbortSignal } = {}): Promise<KvEntry | undefined> {
    const res = await this.send(`consul GET ${kvPath(key)}`, opts, (common) => this.consul.kv.get({ ...common, key: keyParam(key) }));
    if (res.status === 404) return undefined;
    return decodeKvEntry(ConsulClient.expect(res, `consul kv ${key}`), key);
  }

  /**
   * Writes a key. With `cas`, Consul writes only if the key's ModifyIndex still equals it
   * (0 = only if the key does not exist yet) and answers `false` otherwise: we return that boolean.
   */
  async kvPut(key: string, value: string, opts: { cas?: number } = {}): Promise<boolean> {
    const res = await this.send(`consul PUT ${kvPath(key)}`, {}, (common) =>
      this.consul.kv.set({ ...common, key: keyParam(key), value, ...(opts.cas !== undefined && { cas: opts.cas }) }),
    );
    return ConsulClient.expect(res, `consul kv put ${key}`).body.trim() === 'true';
  }

  /** Closes idle keep-alive sockets. In-flight requests are the callers' to abort. */
  close(): void {
    this.consul.destroy();
  }

  /**
   * Runs one package call with the caller's signal and timeout, and turns its outcome into a
   * ConsulResponse (any status) or a ConsulError naming `what`: aborted, timed out, or unreachable.
   */
  private async send(what: string, req: Pick<ConsulRequest, 'signal' | 'timeoutMs'>, call: (common: CallOptions) => Promise<unknown>): Promise<ConsulResponse> {
    const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (req.signal?.aborted) throw new ConsulError(`${what}: aborted`);
    const ctx = new EventEmitter();
    const cancel = () => ctx.emit('cancel');
    req.signal?.addEventListener('abort', cancel, { once: true });
    let exchange: Exchange;
    try {
      exchange = (await call({ dc: this.connection.datacenter, ctx, timeout: timeoutMs })) as Exchange;
    } catch (err) {
      // The package refused to build the request (e.g. an empty key); no response, no headers.
      throw new ConsulError(`${what}: ${(err as Error).message}`, { cause: err });
    } finally {
      req.signal?.removeEventListener('abort', cancel);
    }
    const { res, err } = exchange;
    if (res?.complete) return toResponse(res);
    if (req.signal?.aborted) throw new ConsulError(`${what}: aborted`, { cause: err });
    if (err?.isTimeout) throw new ConsulError(`${what}: no answer from ${this.address} within ${timeoutMs} ms`, { cause: err });
    throw new ConsulError(`${what}: cannot reach consul at ${this.address}: ${err?.message ?? 'no response'}`, { cause: err });
  }
}

/** A finished HTTP response -> ConsulResponse (status, body text, the headers the loop reads). */
function toResponse(res: IncomingMessage & { body?: unknown }): ConsulResponse {
  const raw = res.headers['x-consul-index'];
  const index = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
  const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
  const body = res.body === undefined ? '' : Buffer.isBuffer(res.body) ? res.body.toString('utf8') : String(res.body);
  return {
    status: res.statusCode ?? 0,
    index,
    body,
    ...(res.headers['x-consul-results-filtered-by-acls'] === 'true' && { aclFiltered: true }),
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  };
}

export function kvPath(key: string): string {
  return `${API_PREFIX}/kv/${escapeKey(key)}`;
}

/** Each segment escaped, the slashes kept: the package would send them as %2F, which a proxy in front of Consul may refuse. */
function escapeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

function keyParam(key: string): KeyParam {
  return { encode: false, toString: () => escapeKey(key) };
}

/** The body of a 200 from GET /v1/kv/<key> -> KvEntry (Value is base64, null for an empty value). */
export function decodeKvEntry(res: ConsulResponse, key: string): KvEntry {
  let json: unknown;
  try {
    json = JSON.parse(res.body);
  } catch {
    throw new ConsulError(`consul kv ${key}: answer is not JSON`);
  }
  const parsed = kvEntrySchema.safeParse(json);
  const entry = parsed.success ? parsed.data[0] : undefined;
  if (!entry) throw new ConsulError(`consul kv ${key}: unexpected answer shape`);
  return Object.freeze({
    key: entry.Key,
    value: entry.Value === null ? '' : Buffer.from(entry.Value, 'base64').toString('utf8'),
    modifyIndex: entry.ModifyIndex,
  });
}

function readPem(file: string | undefined, what: string): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConsulXdsError('CXDS_USAGE', `consul TLS ${what} '${file}': ${(err as Error).message}`);
  }
}
