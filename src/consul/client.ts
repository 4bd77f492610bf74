/**
 * A small Consul HTTP API client. In: a ConsulConnection (address, token, datacenter, TLS). Out:
 * raw responses with their X-Consul-Index, and the few typed calls we need (KV read, KV
 * check-and-set write).
 *
 * Why not the `consul` npm package: its Watch re-queries on nextTick after every answer (no rate
 * limit on success), treats an index of 0 as a fatal error instead of using 1, emits on every index
 * bump without comparing content, and cannot abort an in-flight request. Those are exactly the
 * blocking-query rules we must follow, so the loop is ours (blocking-watch.ts) and so is the
 * transport. Why not global fetch: client certificates and a private CA need an undici
 * dispatcher, which would mean another dependency; node:http(s) with an Agent does TLS, keep-alive
 * and AbortSignal out of the box.
 *
 * The ACL token travels only in the X-Consul-Token header; error messages name the method and
 * path (which contains the KV key or service name) and never the token.
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
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

export class ConsulClient {
  readonly connection: ConsulConnection;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;

  constructor(connection: ConsulConnection) {
    this.connection = connection;
    const secure = connection.baseUrl.protocol === 'https:';
    this.transport = secure ? https : http;
    // keepAlive: a blocking loop re-queries at once after each answer; reusing the socket saves a
    // handshake per change (a TLS one, with https).
    this.agent = secure
      ? new https.Agent({
          keepAlive: true,
          ca: readPem(connection.tls.caFile, 'CA'),
          cert: readPem(connection.tls.certFile, 'client certificate'),
          key: readPem(connection.tls.keyFile, 'client key'),
          rejectUnauthorized: connection.tls.insecure !== true,
          servername: connection.tls.serverName,
        })
      : new http.Agent({ keepAlive: true });
  }

  static fromOptions(opts: ConsulOptions = {}, env: NodeJS.ProcessEnv = process.env): ConsulClient {
    return new ConsulClient(resolveConnection(opts, env));
  }

  /** The address, for messages and status (never includes the token). */
  get address(): string {
    return this.connection.baseUrl.origin;
  }

  async request(method: string, path: string, req: ConsulRequest = {}): Promise<ConsulResponse> {
    const url = new URL(this.connection.baseUrl.href);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
    if (this.connection.datacenter !== undefined) url.searchParams.set('dc', this.connection.datacenter);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const what = `consul ${method} ${path}`;

    const timeout = AbortSignal.timeout(req.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.connection.token) headers['x-consul-token'] = this.connection.token;
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));

    return new Promise<ConsulResponse>((resolve, reject) => {
      const fail = (err: unknown) => {
        if (req.signal?.aborted) reject(new ConsulError(`${what}: aborted`, { cause: err }));
        else if (timeout.aborted) reject(new ConsulError(`${what}: no answer from ${this.address} within ${req.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`, { cause: err }));
        else reject(new ConsulError(`${what}: cannot reach consul at ${this.address}: ${(err as Error).message}`, { cause: err }));
      };
      const r = this.transport.request(url, { method, headers, agent: this.agent, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const raw = res.headers['x-consul-index'];
          const index = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
          const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
          resolve({
            status: res.statusCode ?? 0,
            index,
            body: Buffer.concat(chunks).toString('utf8'),
            ...(res.headers['x-consul-results-filtered-by-acls'] === 'true' && { aclFiltered: true }),
            ...(retryAfterMs !== undefined && { retryAfterMs }),
          });
        });
      });
      r.on('error', fail);
      r.end(req.body);
    });
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
    const res = await this.request('GET', kvPath(key), { signal: opts.signal });
    if (res.status === 404) return undefined;
    return decodeKvEntry(ConsulClient.expect(res, `consul kv ${key}`), key);
  }

  /**
   * Writes a key. With `cas`, Consul writes only if the key's ModifyIndex still equals it
   * (0 = only if the key does not exist yet) and answers `false` otherwise: we return that boolean.
   */
  async kvPut(key: string, value: string, opts: { cas?: number } = {}): Promise<boolean> {
    const query = opts.cas === undefined ? undefined : { cas: String(opts.cas) };
    const res = ConsulClient.expect(await this.request('PUT', kvPath(key), { query, body: value }), `consul kv put ${key}`);
    return res.body.trim() === 'true';
  }

  /** Closes idle keep-alive sockets. In-flight requests are the callers' to abort. */
  close(): void {
    this.agent.destroy();
  }
}

export function kvPath(key: string): string {
  return `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
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
