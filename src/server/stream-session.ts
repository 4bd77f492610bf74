/**
 * One xDS stream, whatever its protocol: the gRPC call's lifecycle, the node, the snapshot-cache
 * watch, the registry bookkeeping and the response writer. A protocol (sotw/sotw-stream.ts,
 * delta/delta-stream.ts) extends StreamSession with its rules: what a request means and
 * what is due to be sent.
 *
 * In: decoded requests from the call and change notices from the cache. Out: the protocol's
 * `request()` and `flush()` calls, and what happens on the stream reported to a StreamObserver.
 *
 * Rules kept here, the same for every protocol:
 * - The node is taken from the first request that carries one, whatever its type; a watch
 *   started before it was known is restarted, as the node may belong to another group.
 * - Requests for a type this stream does not serve are counted, logged once per type URL, and
 *   ignored; undecodable bytes (or an undecodable node) end this stream with INVALID_ARGUMENT.
 * - An exception while handling a request or a snapshot ends this stream with INTERNAL, never
 *   the server.
 * - With mTLS (ctx.security), the first request must carry a node its client certificate names
 *   (and, with a group pattern, the certificate must name the node's group); otherwise the stream
 *   ends with PERMISSION_DENIED before anything is sent. Should the node's group change later (a
 *   group named like its node.cluster appears), it is checked again.
 * - A snapshot change marks the changed types this stream subscribed to as due, then flushes.
 * - One ordered queue per stream: a flush evaluates the due types in CDS -> EDS -> LDS -> RDS
 *   order and everything it sends (a Cluster change: CDS, the EDS warming re-send, RDS) is
 *   written back to back, without waiting for any ACK, in one HTTP/2 write (response-writer.ts).
 *   A type whose response is in flight holds back the later ones: a route must not reach the
 *   client before the clusters it names.
 * - Warming re-sends (a Cluster's ClusterLoadAssignment, a Listener's RouteConfigurations) go to
 *   this ADS stream's next stage, or to the node's per-type stream of the same protocol.
 */
import { status as GrpcStatus, type ServerDuplexStream } from '@grpc/grpc-js';
import { isXdsTypeUrl, TYPE_ORDER, type XdsTypeUrl } from '../xds/resource-types.js';
import type { Logger } from '../log.js';
import type { CacheWatch, SnapshotCache } from '../cache/snapshot-cache.js';
import type { Snapshot, TypeSnapshot } from '../cache/snapshot.js';
import type { NodeInfo } from '../cache/node-info.js';
import type { StreamObserver } from './stream-observer.js';
import { StreamRecord, type StreamMethod, type StreamProtocol, type TypeState } from './stream-state.js';
import type { SubscriptionTable } from './subscriptions.js';
import { ResponseWriter, type WriteCounters } from './response-writer.js';
import type { TransportSecurity } from '../common/transport-security.js';
import type { PeerNames } from '../common/peer-identity.js';
import { baseGroup } from '../cache/client-kind.js';

export interface ServedMethod {
  readonly name: StreamMethod;
  readonly protocol: StreamProtocol;
  /** Per-type services serve exactly this type (and accept an empty type_url for it). */
  readonly typeUrl?: XdsTypeUrl;
}

/** What every protocol's request decoder gives the stream. */
export interface StreamRequest {
  readonly typeUrl: string;
  readonly hasNode: boolean;
  /** The node, decoded on demand (undefined when the request has none). */
  node(): NodeInfo | undefined;
}

/** Undecodable bytes: the decoder reports them instead of throwing (the stream decides the cost). */
export interface MalformedRequest {
  readonly malformed: string;
}

/** Counters shared by all streams of a server. */
export interface SessionCounters extends WriteCounters {
  streamsTotal: number;
  requests: number;
  responses: number;
  acks: number;
  nacks: number;
  stale: number;
  malformed: number;
  unknownType: number;
  overLimit: number;
}

export interface SessionContext {
  readonly cache: SnapshotCache;
  readonly observer: StreamObserver;
  readonly subscriptions: SubscriptionTable;
  readonly logger: Logger;
  readonly counters: SessionCounters;
  /** grpc-js's `grpc.max_send_message_length` for this server (-1: no limit). */
  readonly maxSendMessageBytes: number;
  /** resource_names one request may carry (the protocol enforces it). */
  readonly maxResourceNames: number;
  /** With mTLS: who may speak for which node (transport-security.ts). */
  readonly security?: TransportSecurity;
  /** Responses go straight onto the HTTP/2 stream when grpc-js allows (response-writer.ts). */
  readonly directWrites: boolean;
  /** Live sessions by record, for shutdown. */
  readonly sessions: Map<StreamRecord, StreamSession>;
  /** The live sessions of a node (to forward warming between its per-type streams). */
  sessionsOf(nodeId: string): Iterable<StreamSession>;
}

export type XdsCall<Req extends StreamRequest = StreamRequest> = ServerDuplexStream<Req | MalformedRequest, Buffer>;

const MAX_WARNED_TYPE_URLS = 16;

let streamSeq = 0;

export abstract class StreamSession<Req extends StreamRequest = StreamRequest, S extends TypeState = TypeState> {
  readonly record: StreamRecord<S>;
  protected readonly method: ServedMethod;
  protected readonly ctx: SessionContext;
  protected readonly writer: ResponseWriter;
  protected log: Logger;
  readonly #call: XdsCall<Req>;
  #watch: CacheWatch | undefined;
  #closed = false;
  #warnedTypeUrls: Set<string> | undefined;
  /** mTLS: the client certificate's names, read once; and the group the node was allowed. */
  readonly #peerNames: PeerNames | undefined;
  #allowedGroup: string | undefined;

  constructor(call: XdsCall<Req>, method: ServedMethod, ctx: SessionContext, newState: (typeUrl: XdsTypeUrl) => S) {
    this.#call = call;
    this.method = method;
    this.ctx = ctx;
    this.writer = new ResponseWriter(call, ctx.counters, { direct: ctx.directWrites, maxMessageBytes: ctx.maxSendMessageBytes });
    const id = ++streamSeq;
    this.log = ctx.logger.child({ stream: id });
    this.record = new StreamRecord(id, method.name, method.protocol, call.getPeer(), () => this.#watch?.group ?? ctx.cache.groupOf(this.record.node), newState);
    this.#peerNames = ctx.security?.checksIdentity ? ctx.security.peerOf(call) : undefined;
    ctx.sessions.set(this.record, this);
    ctx.observer.onConnect(this.record);
    ctx.counters.streamsTotal++;
    call.on('data', (msg: Req | MalformedRequest) => this.#onMessage(msg));
    // The client half-closed: finish our side (OK status) and forget the stream.
    call.on('end', () => this.#finish());
    call.on('cancelled', () => this.#dispose());
    call.on('error', () => this.#dispose());
    call.on('close', () => this.#dispose());
  }

  /** A request for `typeUrl`, a type this stream serves; its node and watch are set up. */
  protected abstract request(typeUrl: XdsTypeUrl, req: Req): void;

  /** Decide what a due type sends against `ts`, and write it (flush() has it leave). */
  protected abstract evaluate(st: S, ts: TypeSnapshot): void;

  /** Send what is due (after a request, a snapshot change, or a warming hand-over), in type order. */
  flush(): void {
    if (this.#closed) return;
    const snapshot = this.snapshot;
    if (snapshot === undefined) return; // nothing to serve yet: requests wait for the first snapshot
    try {
      for (const t of TYPE_ORDER) {
        const st = this.record.types.get(t);
        if (st === undefined || !st.dirty || !st.subscribed) continue;
        // Its next response waits for the ACK of the one in flight, and nothing overtakes it.
        if (st.outstanding) break;
        st.dirty = false;
        this.evaluate(st, snapshot.type(t));
      }
    } finally {
      this.writer.flush();
    }
  }

  /** Make the next stage re-send `names` (on this ADS stream, or the node's per-type stream). */
  protected warm(type: XdsTypeUrl, names: readonly string[]): void {
    if (this.method.typeUrl === undefined) {
      this.#acceptWarm(type, names);
      return;
    }
    if (this.record.nodeId === '') return;
    for (const other of this.ctx.sessionsOf(this.record.nodeId)) {
      if (other === this || other.method.protocol !== this.method.protocol) continue;
      if (other.#acceptWarm(type, names)) other.flush();
    }
  }

  /** Returns whether the type was marked for a re-send. */
  #acceptWarm(type: XdsTypeUrl, names: readonly string[]): boolean {
    const st = this.record.types.get(type);
    if (st === undefined || !st.subscribed) return false;
    st.warms = st.warms === undefined ? names : Object.freeze([...new Set([...st.warms, ...names])]);
    st.dirty = true;
    return true;
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  /** What the stream is served from now; undefined until the cache has a snapshot for it. */
  protected get snapshot(): Snapshot | undefined {
    return this.#watch?.snapshot;
  }

  /** End the stream with a status (e.g. UNAVAILABLE at shutdown); the client reconnects elsewhere. */
  close(code: GrpcStatus, details: string): void {
    if (this.#closed) return;
    this.#dispose();
    // grpc-js turns an 'error' on a server stream into the call's status and ends it.
    this.#call.emit('error', { code, details, message: details });
  }

  #finish(): void {
    if (this.#closed) return;
    this.#dispose();
    this.#call.end();
  }

  #dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.cancel();
    this.#watch = undefined;
    for (const st of this.record.types.values()) this.ctx.subscriptions.release(st.sub);
    this.ctx.observer.onClose(this.record);
    this.ctx.sessions.delete(this.record);
  }

  #onMessage(msg: Req | MalformedRequest): void {
    if (this.#closed) return;
    try {
      this.#handle(msg);
    } catch (err) {
      this.log.error({ err: (err as Error).stack ?? String(err) }, 'xDS request handling failed; closing this stream');
      this.close(GrpcStatus.INTERNAL, 'internal error handling the request');
    }
  }

  #handle(msg: Req | MalformedRequest): void {
    const counters = this.ctx.counters;
    if ('malformed' in msg) {
      counters.malformed++;
      this.log.warn({ peer: this.record.peer, err: msg.malformed }, 'malformed DiscoveryRequest; closing this stream');
      this.close(GrpcStatus.INVALID_ARGUMENT, `malformed DiscoveryRequest: ${msg.malformed}`);
      return;
    }
    counters.requests++;
    // The node first: a client that sends it only once may send it with a type we do not serve.
    if (this.record.node === undefined && msg.hasNode) {
      let node: NodeInfo | undefined;
      try {
        node = msg.node();
      } catch (err) {
        counters.malformed++;
        this.log.warn({ peer: this.record.peer, err: (err as Error).message }, 'undecodable node in DiscoveryRequest; closing this stream');
        this.close(GrpcStatus.INVALID_ARGUMENT, `malformed DiscoveryRequest node: ${(err as Error).message}`);
        return;
      }
      if (node !== undefined) this.#identify(node);
    }
    if (this.ctx.security?.checksIdentity && this.#allowedGroup === undefined && !this.#authorize()) return;
    const typeUrl = msg.typeUrl === '' ? this.method.typeUrl : msg.typeUrl;
    if (typeUrl === undefined || !isXdsTypeUrl(typeUrl) || (this.method.typeUrl !== undefined && typeUrl !== this.method.typeUrl)) {
      this.#unknownType(msg.typeUrl);
      return;
    }
    if (this.#watch === undefined) this.#startWatch();
    this.request(typeUrl, msg);
  }

  #identify(node: NodeInfo): void {
    this.record.node = node;
    this.log = this.log.child({ node: node.id });
    // A watch started before the node was known may follow the wrong group.
    this.#watch?.cancel();
    this.#watch = undefined;
  }

  /** The identity rule for this stream's node and the group it is served; false: the stream is ended. */
  #authorize(): boolean {
    const security = this.ctx.security;
    if (security === undefined) return true;
    const group = baseGroup(this.#watch?.group ?? this.ctx.cache.groupOf(this.record.node));
    const denial = security.authorize(this.#peerNames, this.record.node?.id ?? '', this.record.peer, security.checksGroup ? group : undefined);
    if (denial !== undefined) {
      this.close(GrpcStatus.PERMISSION_DENIED, denial.message);
      return false;
    }
    this.#allowedGroup = group;
    return true;
  }

  #startWatch(): void {
    this.#watch = this.ctx.cache.watch(this.record.node, (_snapshot, changed) => this.#onSnapshot(changed));
    this.ctx.observer.onOpen(this.record);
    for (const st of this.record.types.values()) if (st.subscribed) st.dirty = true;
  }

  #onSnapshot(changed: ReadonlySet<XdsTypeUrl>): void {
    if (this.#closed) return;
    const group = this.#watch?.group;
    if (this.ctx.security?.checksGroup && group !== undefined && baseGroup(group) !== this.#allowedGroup && !this.#authorize()) return;
    try {
      for (const t of changed) {
        const st = this.record.types.get(t);
        if (st?.subscribed) st.dirty = true;
      }
      this.flush();
    } catch (err) {
      this.log.error({ err: (err as Error).stack ?? String(err) }, 'pushing a snapshot failed; closing this stream');
      this.close(GrpcStatus.INTERNAL, 'internal error pushing a snapshot');
    }
  }

  #unknownType(typeUrl: string): void {
    this.ctx.counters.unknownType++;
    this.#warnedTypeUrls ??= new Set();
    if (this.#warnedTypeUrls.has(typeUrl) || this.#warnedTypeUrls.size >= MAX_WARNED_TYPE_URLS) return;
    this.#warnedTypeUrls.add(typeUrl);
    this.log.warn({ method: this.method.name, typeUrl }, 'request for a type this stream does not serve; ignored');
  }
}
