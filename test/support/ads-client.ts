/**
 * A small raw xDS client over real gRPC (grpc-js), SotW and delta, for tests and the fan-out
 * benchmark. It speaks the wire protocol directly (DiscoveryRequest / DiscoveryResponse bytes, and
 * their Delta* counterparts) so tests can do what a misbehaving client would: stale nonces, NACKs,
 * raw garbage.
 *
 * In: a server address. Out: AdsConnection (one HTTP/2 connection, or a shared one) and
 * AdsStream (one RPC): send/subscribe/ack/nack, and either a queue (`next()`,
 * `expectSilence()`) or a callback (`onResponse`) for received responses.
 *
 *   const conn = new AdsConnection(`127.0.0.1:${port}`);
 *   const s = conn.stream({ node: { id: 'n1' } });
 *   s.subscribe(TypeUrl.Cluster);               // wildcard CDS
 *   const r = await s.next();                   // AdsResponse
 *   s.ack(r);
 */
import { Client, credentials, type ChannelCredentials, type ChannelOptions, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import { messageType, TO_OBJECT } from '../../src/envoy/protos.js';
import { messageNameOf, TypeUrl, type XdsTypeUrl } from '../../src/xds/resource-types.js';

export const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
export const DELTA_ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

/** The per-type SotW methods. */
export const TYPE_METHOD: Readonly<Record<XdsTypeUrl, string>> = {
  [TypeUrl.Cluster]: '/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters',
  [TypeUrl.ClusterLoadAssignment]: '/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints',
  [TypeUrl.Listener]: '/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners',
  [TypeUrl.RouteConfiguration]: '/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes',
};

export interface AdsNode {
  readonly id: string;
  readonly cluster?: string;
  readonly userAgentName?: string;
  readonly userAgentVersion?: string;
  /** String-valued node metadata. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface AdsRequest {
  readonly typeUrl: string;
  readonly resourceNames?: readonly string[];
  readonly versionInfo?: string;
  readonly responseNonce?: string;
  readonly errorDetail?: { readonly code: number; readonly message: string };
  /** Sent as given; by default the stream adds its node to its first request only. */
  readonly node?: AdsNode;
}

export interface AdsResource {
  readonly typeUrl: string;
  /** The Any's value bytes. */
  readonly value: Uint8Array;
  /** Decoded (unless decodeResources is false). */
  readonly name?: string;
  readonly object?: Readonly<Record<string, unknown>>;
}

export interface AdsResponse {
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly AdsResource[];
  /** Resource names in order (empty when resources are not decoded). */
  readonly names: readonly string[];
  /** The DiscoveryResponse bytes as received. */
  readonly raw: Buffer;
  /** performance.now() at receipt. */
  readonly receivedAt: number;
}

export interface AdsStreamOptions {
  /** Default ADS; pass TYPE_METHOD[type] for a per-type service. */
  readonly method?: string;
  readonly node?: AdsNode;
  /** Envoy's default is to send the node on every request; ours is first request only. */
  readonly nodeOnEveryRequest?: boolean;
  /** Decode each resource (name, object). Default true; the benchmark turns it off. */
  readonly decodeResources?: boolean;
  /** Callback mode: responses go here instead of the `next()` queue. */
  readonly onResponse?: (response: AdsResponse, stream: AdsStream) => void;
}

export interface AdsConnectionOptions {
  /** Force a connection of its own (grpc-js otherwise shares one per target). Default false. */
  readonly separateConnection?: boolean;
  /** Default plaintext; `credentials.createSsl(ca, key, cert)` for TLS/mTLS. */
  readonly credentials?: ChannelCredentials;
  /** Extra channel options (e.g. `grpc.ssl_target_name_override`). */
  readonly channelOptions?: ChannelOptions;
}

export class AdsConnection {
  readonly client: Client;

  constructor(address: string, opts: AdsConnectionOptions = {}) {
    this.client = new Client(address, opts.credentials ?? credentials.createInsecure(), {
      ...(opts.separateConnection ? { 'grpc.use_local_subchannel_pool': 1 } : {}),
      'grpc.enable_channelz': 0,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      ...opts.channelOptions,
    });
  }

  stream(opts: AdsStreamOptions = {}): AdsStream {
    return new AdsStream(this.client, opts);
  }

  /** An incremental (delta) stream: DeltaAggregatedResources unless `method` says otherwise. */
  deltaStream(opts: DeltaStreamOptions = {}): DeltaAdsStream {
    return new DeltaAdsStream(this.client, opts);
  }

  /** Wait until the connection is up (useful before timing anything). */
  ready(timeoutMs = 5_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): void {
    this.client.close();
  }
}

let requestType: ReturnType<typeof messageType> | undefined;
let responseType: ReturnType<typeof messageType> | undefined;

export function encodeRequest(req: AdsRequest): Buffer {
  requestType ??= messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const node = req.node;
  const msg = requestType.fromObject({
    version_info: req.versionInfo ?? '',
    resource_names: [...(req.resourceNames ?? [])],
    type_url: req.typeUrl,
    response_nonce: req.responseNonce ?? '',
    ...(req.errorDetail ? { error_detail: { code: req.errorDetail.code, message: req.errorDetail.message } } : {}),
    ...(node ? { node: nodeObject(node) } : {}),
  });
  return Buffer.from(requestType.encode(msg).finish());
}

function nodeObject(node: AdsNode): Record<string, unknown> {
  return {
    id: node.id,
    cluster: node.cluster ?? '',
    user_agent_name: node.userAgentName ?? 'consul-xds-test',
    user_agent_version: node.userAgentVersion ?? '0',
    ...(node.metadata
      ? // protobufjs' bundled google.protobuf.Value has camelCase fields.
        { metadata: { fields: Object.fromEntries(Object.entries(node.metadata).map(([k, v]) => [k, { stringValue: v }])) } }
      : {}),
  };
}

/** A resource Any decoded: its name and plain object. */
function decodeAny(any: { type_url: string; value: Uint8Array }, decodeResources: boolean): AdsResource {
  if (!decodeResources) return { typeUrl: any.type_url, value: any.value };
  const type = messageType(messageNameOf(any.type_url));
  const object = type.toObject(type.decode(any.value), TO_OBJECT);
  const name = typeof object.name === 'string' ? object.name : typeof object.cluster_name === 'string' ? object.cluster_name : undefined;
  return { typeUrl: any.type_url, value: any.value, ...(name !== undefined ? { name } : {}), object };
}

export function decodeResponse(raw: Buffer, decodeResources = true): AdsResponse {
  responseType ??= messageType('envoy.service.discovery.v3.DiscoveryResponse');
  const m = responseType.decode(raw) as unknown as {
    version_info: string;
    type_url: string;
    nonce: string;
    resources: Array<{ type_url: string; value: Uint8Array }>;
  };
  const resources = m.resources.map((any) => decodeAny(any, decodeResources));
  return {
    versionInfo: m.version_info,
    typeUrl: m.type_url,
    nonce: m.nonce,
    resources,
    names: resources.flatMap((r) => (r.name !== undefined ? [r.name] : [])),
    raw,
    receivedAt: performance.now(),
  };
}

const identity = (b: Buffer): Buffer => b;

/** One xDS RPC of either protocol: the call, and received responses as a queue or a callback. */
abstract class XdsTestStream<R extends { readonly typeUrl: string; readonly nonce: string }> {
  readonly call: ClientDuplexStream<Buffer, Buffer>;
  /** Resolves with the final status (never rejects). */
  readonly status: Promise<StatusObject>;
  /** Every response received, in order (kept in queue mode only). */
  readonly received: R[] = [];
  protected readonly lastNonce = new Map<string, string>();
  readonly #onResponse: ((response: R) => void) | undefined;
  readonly #queue: R[] = [];
  readonly #waiters: Array<{ resolve: (r: R) => void; reject: (e: Error) => void }> = [];
  #ended: Error | undefined;

  constructor(client: Client, method: string, onResponse: ((response: R) => void) | undefined) {
    this.#onResponse = onResponse;
    this.call = client.makeBidiStreamRequest(method, identity, identity);
    this.status = new Promise((resolve) => this.call.on('status', resolve));
    this.call.on('error', () => undefined); // the status promise carries it
    this.call.on('data', (raw: Buffer) => this.#receive(raw));
    this.call.on('close', () => this.#fail(new Error('stream closed')));
    void this.status.then((s) => this.#fail(new Error(`stream ended: ${s.code} ${s.details}`)));
  }

  protected abstract decode(raw: Buffer): R;

  protected abstract describe(r: R): string;

  sendRaw(bytes: Uint8Array): void {
    this.call.write(Buffer.from(bytes));
  }

  /** The next response (queue mode). */
  next(timeoutMs = 5_000): Promise<R> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (r: R) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Resolves if no response arrives within `ms`; rejects with what arrived otherwise. */
  async expectSilence(ms = 150): Promise<void> {
    const first = this.#queue[0];
    if (first) throw new Error(`unexpected response: ${this.describe(first)}`);
    const r = await this.next(ms).catch(() => undefined);
    if (r) throw new Error(`unexpected response: ${this.describe(r)}`);
  }

  /** Client-side cancel (RST_STREAM). */
  cancel(): void {
    this.call.cancel();
  }

  /** Half-close; the server ends the stream with OK. */
  end(): void {
    this.call.end();
  }

  #receive(raw: Buffer): void {
    const r = this.decode(raw);
    this.lastNonce.set(r.typeUrl, r.nonce);
    if (this.#onResponse) {
      this.#onResponse(r);
      return;
    }
    this.received.push(r);
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(r);
    else this.#queue.push(r);
  }

  #fail(err: Error): void {
    this.#ended ??= err;
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}

export class AdsStream extends XdsTestStream<AdsResponse> {
  readonly #opts: AdsStreamOptions;
  readonly #names = new Map<string, readonly string[]>();
  readonly #lastGood = new Map<string, string>();
  #nodeSent = false;

  constructor(client: Client, opts: AdsStreamOptions) {
    const onResponse = opts.onResponse;
    super(client, opts.method ?? ADS_METHOD, onResponse ? (r) => onResponse(r, this) : undefined);
    this.#opts = opts;
  }

  protected decode(raw: Buffer): AdsResponse {
    return decodeResponse(raw, this.#opts.decodeResources !== false);
  }

  protected describe(r: AdsResponse): string {
    return `${r.typeUrl.slice(r.typeUrl.lastIndexOf('.') + 1)} v=${r.versionInfo} [${r.names.join(',')}]`;
  }

  /** Send a request; remembers names and nonce per type and adds the node as configured. */
  send(req: AdsRequest): void {
    const withNode =
      req.node === undefined && this.#opts.node !== undefined && (!this.#nodeSent || this.#opts.nodeOnEveryRequest === true)
        ? { ...req, node: this.#opts.node }
        : req;
    if (withNode.node !== undefined) this.#nodeSent = true;
    this.#names.set(req.typeUrl, req.resourceNames ?? []);
    this.call.write(encodeRequest(withNode));
  }

  /** (Re)subscribe to a type: names (none = wildcard for LDS/CDS), echoing the last nonce and good version. */
  subscribe(typeUrl: string, names: readonly string[] = []): void {
    this.send({ typeUrl, resourceNames: names, versionInfo: this.#lastGood.get(typeUrl) ?? '', responseNonce: this.lastNonce.get(typeUrl) ?? '' });
  }

  /** ACK a response (with the current subscription unless names are given). */
  ack(r: AdsResponse, names?: readonly string[]): void {
    this.#lastGood.set(r.typeUrl, r.versionInfo);
    this.lastNonce.set(r.typeUrl, r.nonce);
    this.send({ typeUrl: r.typeUrl, resourceNames: names ?? this.#names.get(r.typeUrl) ?? [], versionInfo: r.versionInfo, responseNonce: r.nonce });
  }

  /** NACK a response: error_detail set, version_info stays at the last good version. */
  nack(r: AdsResponse, message: string, names?: readonly string[]): void {
    this.lastNonce.set(r.typeUrl, r.nonce);
    this.send({
      typeUrl: r.typeUrl,
      resourceNames: names ?? this.#names.get(r.typeUrl) ?? [],
      versionInfo: this.#lastGood.get(r.typeUrl) ?? '',
      responseNonce: r.nonce,
      errorDetail: { code: 13, message },
    });
  }
}

// ---- Delta (incremental) xDS ----

/** The per-type delta methods. */
export const DELTA_TYPE_METHOD: Readonly<Record<XdsTypeUrl, string>> = {
  [TypeUrl.Cluster]: '/envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters',
  [TypeUrl.ClusterLoadAssignment]: '/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints',
  [TypeUrl.Listener]: '/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners',
  [TypeUrl.RouteConfiguration]: '/envoy.service.route.v3.RouteDiscoveryService/DeltaRoutes',
};

export interface DeltaRequestSpec {
  readonly typeUrl: string;
  readonly subscribe?: readonly string[];
  readonly unsubscribe?: readonly string[];
  readonly initialVersions?: Readonly<Record<string, string>>;
  readonly responseNonce?: string;
  readonly errorDetail?: { readonly code: number; readonly message: string };
  readonly node?: AdsNode;
}

export interface DeltaResource extends AdsResource {
  /** Resource.name and Resource.version as the server sent them. */
  readonly resourceName: string;
  readonly version: string;
}

export interface DeltaResponse {
  readonly systemVersionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly DeltaResource[];
  /** Resource names (Resource.name) in order. */
  readonly names: readonly string[];
  readonly removed: readonly string[];
  readonly raw: Buffer;
  readonly receivedAt: number;
}

export interface DeltaStreamOptions {
  /** Default DeltaAggregatedResources; pass DELTA_TYPE_METHOD[type] for a per-type service. */
  readonly method?: string;
  readonly node?: AdsNode;
  readonly decodeResources?: boolean;
  readonly onResponse?: (response: DeltaResponse, stream: DeltaAdsStream) => void;
}

let deltaRequestType: ReturnType<typeof messageType> | undefined;
let deltaResponseType: ReturnType<typeof messageType> | undefined;

export function encodeDeltaRequest(req: DeltaRequestSpec): Buffer {
  deltaRequestType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const msg = deltaRequestType.fromObject({
    type_url: req.typeUrl,
    resource_names_subscribe: [...(req.subscribe ?? [])],
    resource_names_unsubscribe: [...(req.unsubscribe ?? [])],
    initial_resource_versions: { ...(req.initialVersions ?? {}) },
    response_nonce: req.responseNonce ?? '',
    ...(req.errorDetail ? { error_detail: { code: req.errorDetail.code, message: req.errorDetail.message } } : {}),
    ...(req.node ? { node: nodeObject(req.node) } : {}),
  });
  return Buffer.from(deltaRequestType.encode(msg).finish());
}

export function decodeDeltaResponse(raw: Buffer, decodeResources = true): DeltaResponse {
  deltaResponseType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const m = deltaResponseType.decode(raw) as unknown as {
    system_version_info: string;
    type_url: string;
    nonce: string;
    resources: Array<{ name: string; version: string; resource?: { type_url: string; value: Uint8Array } }>;
    removed_resources: string[];
  };
  const resources = m.resources.map(
    (r): DeltaResource => ({
      ...decodeAny(r.resource ?? { type_url: '', value: new Uint8Array(0) }, decodeResources),
      resourceName: r.name,
      version: r.version,
    }),
  );
  return {
    systemVersionInfo: m.system_version_info,
    typeUrl: m.type_url,
    nonce: m.nonce,
    resources,
    names: resources.map((r) => r.resourceName),
    removed: [...m.removed_resources],
    raw,
    receivedAt: performance.now(),
  };
}

export class DeltaAdsStream extends XdsTestStream<DeltaResponse> {
  readonly #opts: DeltaStreamOptions;
  #nodeSent = false;

  constructor(client: Client, opts: DeltaStreamOptions) {
    const onResponse = opts.onResponse;
    super(client, opts.method ?? DELTA_ADS_METHOD, onResponse ? (r) => onResponse(r, this) : undefined);
    this.#opts = opts;
  }

  protected decode(raw: Buffer): DeltaResponse {
    return decodeDeltaResponse(raw, this.#opts.decodeResources !== false);
  }

  protected describe(r: DeltaResponse): string {
    return `${r.typeUrl.slice(r.typeUrl.lastIndexOf('.') + 1)} [${r.names.join(',')}] removed [${r.removed.join(',')}]`;
  }

  /** Send a request; the stream's node goes on its first request. */
  send(req: DeltaRequestSpec): void {
    const withNode = req.node === undefined && this.#opts.node !== undefined && !this.#nodeSent ? { ...req, node: this.#opts.node } : req;
    if (withNode.node !== undefined) this.#nodeSent = true;
    this.call.write(encodeDeltaRequest(withNode));
  }

  /** Subscribe to names (none on a first LDS/CDS request: the legacy wildcard). */
  subscribe(typeUrl: string, names: readonly string[] = [], initialVersions?: Readonly<Record<string, string>>): void {
    this.send({ typeUrl, subscribe: names, ...(initialVersions ? { initialVersions } : {}) });
  }

  unsubscribe(typeUrl: string, names: readonly string[]): void {
    this.send({ typeUrl, unsubscribe: names });
  }

  ack(r: DeltaResponse): void {
    this.send({ typeUrl: r.typeUrl, responseNonce: r.nonce });
  }

  nack(r: DeltaResponse, message: string): void {
    this.send({ typeUrl: r.typeUrl, responseNonce: r.nonce, errorDetail: { code: 13, message } });
  }
}
