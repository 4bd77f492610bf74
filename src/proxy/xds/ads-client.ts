/**
 * The proxy's ADS client (one grpc-js bidi stream to the control plane), State of the World or,
 * when the bootstrap says `api_type: DELTA_GRPC`, incremental (delta) xDS.
 * In: the server address, our node, and the watcher that applies updates. Out: validated
 * resource updates delivered in order per type, ACK/NACK to the server, and status for the admin
 * server.
 *
 * Protocol (docs/xds-server.md, the server's side of it): LDS and CDS are wildcard; EDS and RDS follow the names the watcher
 * subscribes to (what clusters and listeners reference). Each response is decoded resource by
 * resource: valid ones are applied, invalid ones keep their last good version and the response
 * is NACKed with an error_detail naming each rejected resource and field, at the last accepted
 * version. LDS/CDS responses are the full set (a missing name is removed); EDS/RDS responses may
 * carry only some names. A named subscription that gets no resource within 15 s is reported as
 * does-not-exist (the timers only run while connected). On a broken stream the proxy keeps its
 * config and traffic, reconnects with jittered exponential back-off and sends its last versions
 * with an empty nonce. Over TLS when the bootstrap's xDS cluster has a transport_socket.
 *
 * Delta (same rules, other messages): subscriptions go out as diffs (`resource_names_subscribe` /
 * `_unsubscribe`), a reconnect names what the proxy holds in `initial_resource_versions` (so the
 * server sends only what changed), ACK/NACK carry just the nonce (and error_detail), and removals
 * come explicitly in `removed_resources`: removed clusters and listeners are taken out, a removed
 * endpoint or route name that is still subscribed is reported as does-not-exist at once.
 */
import { Client, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { messageType } from '../../envoy/protos.js';
import { TYPE_ORDER, TYPE_SHORT, isFullStateType, isXdsTypeUrl, type XdsTypeUrl } from '../../xds/resource-types.js';
import { backoffDelay, type BackoffPolicy } from '../../common/backoff.js';
import { silentLogger, type Logger } from '../../log.js';
import type { Endpoint, NodeModel } from '../config/bootstrap.js';
import { decodeResource, isRejected, type DecodedResource } from './resource-types.js';
import { XdsTypeStats } from '../stats.js';
import { grpcCredentials, type UpstreamTlsModel } from '../config/tls-context.js';

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const DELTA_ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';
/** google.rpc.Code INVALID_ARGUMENT. */
const NACK_CODE = 3;

export interface XdsUpdate {
  readonly typeUrl: XdsTypeUrl;
  readonly version: string;
  readonly upserts: readonly DecodedResource[];
  /** Full-state types only: names no longer in the set. */
  readonly removals: readonly string[];
}

export interface ApplyError {
  readonly name: string;
  readonly message: string;
}

export interface XdsWatcher {
  /** Applies an update; returns the resources it could not apply, with why (-> NACK). */
  onUpdate(update: XdsUpdate): Promise<readonly ApplyError[]> | readonly ApplyError[];
  /** A named subscription got no resource within the does-not-exist timeout. */
  onDoesNotExist(typeUrl: XdsTypeUrl, name: string): void;
  onConnection?(connected: boolean): void;
  /** A response of this type was ACKed or NACKed (also an empty one, which calls no onUpdate). */
  onAnswered?(typeUrl: XdsTypeUrl): void;
}

export interface KnownResource {
  readonly version: string;
  readonly bytes: Uint8Array;
  readonly updated: Date;
}

export interface TypeStatus {
  readonly type: 'CDS' | 'EDS' | 'LDS' | 'RDS';
  readonly version: string;
  readonly nonce: string;
  readonly names: readonly string[] | '*';
  readonly resources: number;
  readonly lastError: { readonly message: string; readonly version: string; readonly at: string } | undefined;
}

interface TypeState {
  readonly url: XdsTypeUrl;
  readonly wildcard: boolean;
  names: Set<string>;
  version: string;
  nonce: string;
  /** A request was sent on the current stream. */
  requested: boolean;
  known: Map<string, KnownResource>;
  dne: Map<string, NodeJS.Timeout>;
  lastError: { message: string; version: string; at: string } | undefined;
  readonly stats: XdsTypeStats;
}

interface RawAny {
  type_url: string;
  value: Uint8Array;
}

interface RawResponse {
  version_info: string;
  resources: RawAny[];
  type_url: string;
  nonce: string;
}

interface RawDeltaResponse {
  system_version_info: string;
  resources: Array<{ name: string; version: string; resource?: RawAny }>;
  type_url: string;
  nonce: string;
  removed_resources: string[];
}

/** A response of either protocol, as process() takes it. */
interface Received {
  readonly typeUrl: string;
  readonly version: string;
  readonly nonce: string;
  readonly resources: readonly RawAny[];
  /** Delta only: each resource's own version, and the names the server removed. */
  readonly delta?: { readonly versions: readonly string[]; readonly removed: readonly string[] };
}

const EMPTY_ANY: RawAny = { type_url: '', value: new Uint8Array(0) };

function fromSotw(r: RawResponse): Received {
  return { typeUrl: r.type_url, version: r.version_info, nonce: r.nonce, resources: r.resources ?? [] };
}

function fromDelta(r: RawDeltaResponse): Received {
  const resources = r.resources ?? [];
  return {
    typeUrl: r.type_url,
    version: r.system_version_info,
    nonce: r.nonce,
    resources: resources.map((x) => x.resource ?? EMPTY_ANY),
    delta: { versions: resources.map((x) => x.version), removed: r.removed_resources ?? [] },
  };
}

export interface XdsClientOptions {
  readonly server: Endpoint;
  /** TLS to the server (the bootstrap's transport_socket); undefined: plaintext. */
  readonly tls?: UpstreamTlsModel | undefined;
  readonly node: NodeModel;
  readonly watcher: XdsWatcher;
  readonly logger?: Logger;
  readonly backoff?: BackoffPolicy;
  readonly doesNotExistMs?: number;
  /** Speak incremental (delta) xDS instead of State of the World (bootstrap `api_type: DELTA_GRPC`). */
  readonly delta?: boolean;
}

export class XdsClient {
  private readonly client: Client;
  private readonly states = new Map<XdsTypeUrl, TypeState>();
  private readonly logger: Logger;
  private readonly backoff: BackoffPolicy;
  private readonly dneMs: number;
  private readonly reqType: protobuf.Type = messageType('envoy.service.discovery.v3.DiscoveryRequest');
  private readonly respType: protobuf.Type = messageType('envoy.service.discovery.v3.DiscoveryResponse');
  private readonly deltaReqType: protobuf.Type = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  private readonly deltaRespType: protobuf.Type = messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  private readonly delta: boolean;
  private call: ClientDuplexStream<Record<string, unknown>, Received> | undefined;
  private sentNode = false;
  private failures = 0;
  private gotResponse = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  connected = false;
  /** Streams opened (1 + reconnects). */
  streams = 0;

  constructor(private readonly opts: XdsClientOptions) {
    this.logger = opts.logger ?? silentLogger;
    this.backoff = opts.backoff ?? { baseMs: 500, maxMs: 30_000 };
    this.dneMs = opts.doesNotExistMs ?? 15_000;
    this.delta = opts.delta === true;
    this.client = new Client(`${opts.server.host.includes(':') ? `[${opts.server.host}]` : opts.server.host}:${opts.server.port}`, grpcCredentials(opts.tls), {
      ...(opts.tls?.sni ? { 'grpc.ssl_target_name_override': opts.tls.sni } : {}),
      'grpc.keepalive_time_ms': 30_000,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5_000,
      'grpc.enable_channelz': 0,
    });
    for (const url of TYPE_ORDER) {
      this.states.set(url, {
        url,
        wildcard: isFullStateType(url),
        names: new Set(),
        version: '',
        nonce: '',
        requested: false,
        known: new Map(),
        dne: new Map(),
        lastError: undefined,
        stats: new XdsTypeStats(),
      });
    }
  }

  private state(url: XdsTypeUrl): TypeState {
    return this.states.get(url) as TypeState;
  }

  start(): void {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.reconnectTimer = undefined;
    this.sentNode = false;
    this.gotResponse = false;
    this.streams++;
    const [reqType, respType] = this.delta ? [this.deltaReqType, this.deltaRespType] : [this.reqType, this.respType];
    const call = this.client.makeBidiStreamRequest<Record<string, unknown>, Received>(
      this.delta ? DELTA_ADS_METHOD : ADS_METHOD,
      (req) => Buffer.from(reqType.encode(reqType.fromObject(req)).finish()),
      (buf) => (this.delta ? fromDelta(respType.decode(buf) as unknown as RawDeltaResponse) : fromSotw(respType.decode(buf) as unknown as RawResponse)),
    );
    this.call = call;
    call.on('data', (resp: Received) => {
      if (!this.connected) this.setConnected(true);
      this.gotResponse = true;
      this.queue = this.queue
        .then(() => this.process(call, resp))
        .catch((err: unknown) => {
          this.logger.error({ err: (err as Error).message }, 'xDS: failed to apply a response');
        });
    });
    call.on('error', () => undefined);
    call.on('status', (s: StatusObject) => this.onStreamEnd(call, s));
    for (const st of this.states.values()) {
      st.nonce = '';
      st.requested = false;
      if (!st.wildcard && st.names.size === 0) continue;
      if (this.delta) {
        // What we hold goes along, so the server sends only what changed while we were away.
        const initial = Object.fromEntries([...st.known].map(([name, k]) => [name, k.version]));
        this.sendDelta(st, { resource_names_subscribe: st.wildcard ? [] : [...st.names].sort(), initial_resource_versions: initial });
      } else this.send(st);
    }
    // The call is "connected" for our purposes once the server answers; grpc-js queues writes meanwhile.
  }

  private setConnected(up: boolean): void {
    this.connected = up;
    this.opts.watcher.onConnection?.(up);
  }

  private onStreamEnd(call: ClientDuplexStream<Record<string, unknown>, Received>, s: StatusObject): void {
    if (call !== this.call) return;
    this.call = undefined;
    if (this.connected) this.setConnected(false);
    for (const st of this.states.values()) {
      for (const t of st.dne.values()) clearTimeout(t);
      st.dne.clear();
    }
    if (this.closed) return;
    this.failures = this.gotResponse ? 1 : this.failures + 1;
    const delay = backoffDelay(this.failures, this.backoff);
    this.logger.warn({ code: s.code, details: s.details, retryInMs: delay }, 'xDS stream closed; keeping the last config and reconnecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Sets the names of a named type (EDS, RDS); sends a request when they changed. */
  subscribe(url: XdsTypeUrl, names: Iterable<string>): void {
    const st = this.state(url);
    if (st.wildcard) return;
    const next = new Set(names);
    if (next.size === st.names.size && [...next].every((n) => st.names.has(n))) return;
    const added = [...next].filter((n) => !st.names.has(n)).sort();
    const dropped = [...st.names].filter((n) => !next.has(n)).sort();
    st.names = next;
    // Forget what is no longer wanted, so a later re-subscription is treated as new.
    for (const n of [...st.known.keys()]) if (!next.has(n)) st.known.delete(n);
    for (const [n, t] of st.dne) {
      if (!next.has(n)) {
        clearTimeout(t);
        st.dne.delete(n);
      }
    }
    // Nothing subscribed and never asked: no request needed (an empty list is a wildcard to some servers).
    if (next.size === 0 && !st.requested) return;
    if (!this.call) return;
    if (this.delta) this.sendDelta(st, { resource_names_subscribe: added, resource_names_unsubscribe: dropped });
    else this.send(st);
  }

  /** A DeltaDiscoveryRequest for a type: subscription changes, or an ACK/NACK (`fields` says which). */
  private sendDelta(st: TypeState, fields: Record<string, unknown>): void {
    const call = this.call;
    if (!call) return;
    const req: Record<string, unknown> = { type_url: st.url, ...fields };
    if (!this.sentNode) {
      req.node = this.opts.node.proto;
      this.sentNode = true;
    }
    st.requested = true;
    call.write(req);
    if (!st.wildcard) this.armTimers(st);
  }

  /** ACK (no error) or NACK the response of `st.nonce`. */
  private answer(st: TypeState, error?: string): void {
    if (!this.delta) {
      this.send(st, error);
      return;
    }
    this.sendDelta(st, { response_nonce: st.nonce, ...(error !== undefined ? { error_detail: { code: NACK_CODE, message: error } } : {}) });
  }

  private send(st: TypeState, error?: string): void {
    const call = this.call;
    if (!call) return;
    const req: Record<string, unknown> = {
      version_info: st.version,
      resource_names: st.wildcard ? [] : [...st.names].sort(),
      type_url: st.url,
      response_nonce: st.nonce,
    };
    if (!this.sentNode) {
      req.node = this.opts.node.proto;
      this.sentNode = true;
    }
    if (error !== undefined) req.error_detail = { code: NACK_CODE, message: error };
    st.requested = true;
    call.write(req);
    if (!st.wildcard) this.armTimers(st);
  }

  private armTimers(st: TypeState): void {
    for (const name of st.names) {
      if (st.known.has(name) || st.dne.has(name)) continue;
      const t = setTimeout(() => {
        st.dne.delete(name);
        if (!st.names.has(name) || st.known.has(name)) return;
        st.stats.init_fetch_timeout++;
        this.logger.warn({ type: TYPE_SHORT[st.url], name }, 'xDS: resource does not exist (no answer in time)');
        this.opts.watcher.onDoesNotExist(st.url, name);
      }, this.dneMs);
      t.unref();
      st.dne.set(name, t);
    }
  }

  private async process(call: ClientDuplexStream<Record<string, unknown>, Received>, resp: Received): Promise<void> {
    const url = resp.typeUrl;
    if (!isXdsTypeUrl(url)) {
      this.logger.warn({ typeUrl: url }, 'xDS: response of a type we did not ask for; ignored');
      return;
    }
    const st = this.state(url);
    st.nonce = resp.nonce;
    st.stats.update_attempt++;
    const errors: string[] = [];
    const decoded = new Map<string, DecodedResource>();
    /** Delta: each decoded resource's own version (SotW: the response's). */
    const versions = new Map<string, string>();
    const rejected = new Set<string>();
    resp.resources.forEach((any, i) => {
      if (any.type_url !== url) {
        errors.push(`resource index ${i}: type ${any.type_url} in a response of type ${url}`);
        return;
      }
      const d = decodeResource(url, any.value, i);
      if (isRejected(d)) {
        errors.push(d.error);
        if (d.name !== undefined) rejected.add(d.name);
        return;
      }
      if (decoded.has(d.name)) {
        errors.push(`${TYPE_SHORT[url]} '${d.name}': listed twice in one response`);
        return;
      }
      // SotW servers may send names we did not ask for; Envoy ignores them, so do we.
      if (!st.wildcard && !st.names.has(d.name)) return;
      decoded.set(d.name, d);
      versions.set(d.name, resp.delta?.versions[i] ?? resp.version);
    });
    const upserts: DecodedResource[] = [];
    for (const d of decoded.values()) {
      const known = st.known.get(d.name);
      if (!known || !sameBytes(known.bytes, d.bytes)) upserts.push(d);
    }
    const removals: string[] = [];
    /** Delta: subscribed EDS/RDS names the server says do not exist (or no longer do). */
    const gone: string[] = [];
    if (resp.delta !== undefined) {
      for (const name of resp.delta.removed) {
        if (st.wildcard) {
          if (st.known.has(name)) removals.push(name);
        } else if (st.names.has(name)) gone.push(name);
      }
    } else if (st.wildcard) {
      for (const name of st.known.keys()) if (!decoded.has(name) && !rejected.has(name)) removals.push(name);
    }
    const failedNames = new Set<string>();
    if (upserts.length > 0 || removals.length > 0) {
      const failed = await this.opts.watcher.onUpdate({ typeUrl: url, version: resp.version, upserts, removals });
      for (const f of failed) {
        failedNames.add(f.name);
        errors.push(f.message);
      }
    }
    const now = new Date();
    for (const d of upserts) {
      if (!failedNames.has(d.name)) st.known.set(d.name, { version: versions.get(d.name) ?? resp.version, bytes: d.bytes, updated: now });
    }
    for (const name of removals) st.known.delete(name);
    for (const name of gone) {
      st.known.delete(name);
      clearTimeout(st.dne.get(name));
      st.dne.delete(name);
      this.logger.warn({ type: TYPE_SHORT[url], name }, 'xDS: resource does not exist (removed by the server)');
      this.opts.watcher.onDoesNotExist(url, name);
    }
    for (const name of decoded.keys()) {
      const t = st.dne.get(name);
      if (t) {
        clearTimeout(t);
        st.dne.delete(name);
      }
    }
    if (resp.resources.length === 0) st.stats.update_empty++;
    if (errors.length === 0) {
      st.version = resp.version;
      st.stats.update_success++;
      st.stats.version_text = resp.version;
      st.lastError = undefined;
      if (call === this.call) this.answer(st);
    } else {
      st.stats.update_rejected++;
      const message = errors.join('; ');
      st.lastError = { message, version: resp.version, at: now.toISOString() };
      this.logger.warn({ type: TYPE_SHORT[url], version: resp.version, error: message }, 'xDS: NACK');
      if (call === this.call) this.answer(st, message);
    }
    this.opts.watcher.onAnswered?.(url);
  }

  /** Accepted resources of a type (for /config_dump). */
  known(url: XdsTypeUrl): ReadonlyMap<string, KnownResource> {
    return this.state(url).known;
  }

  typeStats(url: XdsTypeUrl): XdsTypeStats {
    return this.state(url).stats;
  }

  status(): TypeStatus[] {
    return TYPE_ORDER.map((url) => {
      const st = this.state(url);
      return {
        type: TYPE_SHORT[url],
        version: st.version,
        nonce: st.nonce,
        names: st.wildcard ? '*' : [...st.names].sort(),
        resources: st.known.size,
        lastError: st.lastError,
      };
    });
  }

  /** Resolves when every response received so far has been applied (tests). */
  idle(): Promise<void> {
    return this.queue;
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    for (const st of this.states.values()) for (const t of st.dne.values()) clearTimeout(t);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    this.client.close();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
