/**
 * One xDS stream, state of the world: ADS, or one of the per-type services (CDS/EDS/LDS/RDS).
 *
 * In: DiscoveryRequests from the client and change notices from the snapshot cache.
 * Out: DiscoveryResponses (pre-encoded and shared between streams, with a nonce fresh on this
 * stream; see response-cache.ts, written by response-writer.ts), and the stream's state in the
 * registry.
 *
 * Protocol rules kept here (docs/xds-server.md, "Protocol behaviour", says the same for readers):
 * - Every response carries a fresh nonce. A request whose response_nonce is not the latest one
 *   sent for its type is stale and ignored entirely. A request answering the latest nonce is an
 *   ACK, or a NACK when error_detail is set (versions are never compared to decide that).
 * - A NACKed version is recorded (per type: version, message, time, repeat count), logged once,
 *   and never sent again on this stream; the client keeps its last good config and the next
 *   response goes out only when the type moves to another version (or the client subscribes to
 *   new names, which are answered).
 * - resource_names are compared on every non-stale request, even one with the latest nonce:
 *   new names are sent even if unchanged, unsubscribed names are forgotten so a resubscribe
 *   sends them again. LDS/CDS with no names (or '*') are wildcard and always get the full set;
 *   named requests are answered promptly, with the names that exist, even when that is none.
 * - RDS/EDS responses carry only what the client does not have yet. A Cluster (Listener) that is
 *   new or changed is followed by its ClusterLoadAssignment (RouteConfiguration) even if that is
 *   unchanged, so the client finishes warming.
 * - One ordered queue per stream: CDS -> EDS -> LDS -> RDS. Everything due at one moment (a
 *   Cluster change: CDS, the EDS warming re-send, RDS) is written back to back in that order,
 *   without waiting for any ACK, and leaves in one HTTP/2 write (response-writer.ts).
 * - One response in flight per type: the next one of that type waits for the ACK or NACK. This
 *   keeps what the client holds of RDS/EDS knowable after a NACK, and merges fast successive
 *   changes for a slow client. A type whose next response waits so holds back the later types
 *   that have something to send, so routes never overtake the clusters they name.
 * - The node is taken from the first request that carries one, whatever its type. Unknown type
 *   URLs are logged once and ignored; undecodable bytes end this stream with INVALID_ARGUMENT.
 */
import { status as GrpcStatus, type ServerDuplexStream } from '@grpc/grpc-js';
import { isXdsTypeUrl, TYPE_ORDER, TYPE_SHORT, TypeUrl, type XdsTypeUrl } from '../xds/type-urls.js';
import type { Logger } from '../log.js';
import type { CacheWatch, SnapshotCache } from '../cache/snapshot-cache.js';
import type { SnapshotResource, TypeSnapshot } from '../cache/snapshot.js';
import type { NodeInfo } from '../cache/node-info.js';
import type { IncomingRequest, XdsRequest } from './discovery-codec.js';
import type { ResponseCache } from './response-cache.js';
import type { StreamRegistry } from './stream-registry.js';
import { StreamRecord, type StreamMethod, type TypeState } from './stream-state.js';
import { WILDCARD, type SubscriptionTable } from './subscriptions.js';
import { changedSince, present, resourcesOf, subscriptionChanged, withNames } from './selection.js';
import { warmsOf, warmTargets } from './warming.js';
import { ResponseWriter, type WriteCounters } from './response-writer.js';

export interface ServedMethod {
  readonly name: StreamMethod;
  /** Per-type services serve exactly this type (and accept an empty type_url for it). */
  readonly typeUrl?: XdsTypeUrl;
}

/** Counters shared by all sessions of a server. */
export interface SessionCounters extends WriteCounters {
  streamsTotal: number;
  requests: number;
  responses: number;
  acks: number;
  nacks: number;
  stale: number;
  malformed: number;
  unknownType: number;
}

export interface SessionContext {
  readonly cache: SnapshotCache;
  readonly registry: StreamRegistry;
  readonly responses: ResponseCache;
  readonly subscriptions: SubscriptionTable;
  readonly logger: Logger;
  readonly counters: SessionCounters;
  /** grpc-js's `grpc.max_send_message_length` for this server (-1: no limit). */
  readonly maxSendMessageBytes: number;
  /** Responses go straight onto the HTTP/2 stream when grpc-js allows (response-writer.ts). */
  readonly directWrites: boolean;
  /** Live sessions by record, for shutdown and for warming across per-type streams. */
  readonly sessions: Map<StreamRecord, StreamSession>;
}

export type XdsCall = ServerDuplexStream<IncomingRequest, Buffer>;

/** The type whose resources a Cluster / Listener update must be followed by. */
const NEXT_STAGE: Partial<Record<XdsTypeUrl, XdsTypeUrl>> = {
  [TypeUrl.Cluster]: TypeUrl.ClusterLoadAssignment,
  [TypeUrl.Listener]: TypeUrl.RouteConfiguration,
};

const MAX_WARNED_TYPE_URLS = 16;

let streamSeq = 0;

export class StreamSession {
  readonly record: StreamRecord;
  readonly #call: XdsCall;
  readonly #method: ServedMethod;
  readonly #ctx: SessionContext;
  #log: Logger;
  #watch: CacheWatch | undefined;
  #closed = false;
  #warnedTypeUrls: Set<string> | undefined;
  readonly #writer: ResponseWriter;

  constructor(call: XdsCall, method: ServedMethod, ctx: SessionContext) {
    this.#call = call;
    this.#method = method;
    this.#ctx = ctx;
    this.#writer = new ResponseWriter(call, ctx.counters, { direct: ctx.directWrites, maxMessageBytes: ctx.maxSendMessageBytes });
    const id = ++streamSeq;
    this.#log = ctx.logger.child({ stream: id });
    this.record = new StreamRecord(id, method.name, call.getPeer(), () => this.#watch?.group ?? ctx.cache.groupOf(this.record.node));
    ctx.sessions.set(this.record, this);
    ctx.registry._add(this.record);
    ctx.counters.streamsTotal++;
    call.on('data', (msg: IncomingRequest) => this.#onMessage(msg));
    // The client half-closed: finish our side (OK status) and forget the stream.
    call.on('end', () => this.#finish());
    call.on('cancelled', () => this.#dispose());
    call.on('error', () => this.#dispose());
    call.on('close', () => this.#dispose());
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
    for (const st of this.record.types.values()) this.#ctx.subscriptions.release(st.sub);
    this.#ctx.registry._remove(this.record);
    this.#ctx.sessions.delete(this.record);
  }

  #onMessage(msg: IncomingRequest): void {
    if (this.#closed) return;
    try {
      this.#handle(msg);
    } catch (err) {
      this.#log.error({ err: (err as Error).stack ?? String(err) }, 'xDS request handling failed; closing this stream');
      this.close(GrpcStatus.INTERNAL, 'internal error handling the request');
    }
  }

  #handle(msg: IncomingRequest): void {
    const counters = this.#ctx.counters;
    if ('malformed' in msg) {
      counters.malformed++;
      this.#log.warn({ peer: this.record.peer, err: msg.malformed }, 'malformed DiscoveryRequest; closing this stream');
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
        this.#log.warn({ peer: this.record.peer, err: (err as Error).message }, 'undecodable node in DiscoveryRequest; closing this stream');
        this.close(GrpcStatus.INVALID_ARGUMENT, `malformed DiscoveryRequest node: ${(err as Error).message}`);
        return;
      }
      if (node !== undefined) this.#identify(node);
    }
    const typeUrl = msg.typeUrl === '' ? this.#method.typeUrl : msg.typeUrl;
    if (typeUrl === undefined || !isXdsTypeUrl(typeUrl) || (this.#method.typeUrl !== undefined && typeUrl !== this.#method.typeUrl)) {
      this.#unknownType(msg.typeUrl);
      return;
    }
    if (this.#watch === undefined) this.#startWatch();

    const st = this.record.state(typeUrl);
    const nonce = msg.responseNonce;
    if (nonce !== '' && st.nonce !== undefined && nonce !== st.nonce) {
      counters.stale++;
      return;
    }
    if (nonce !== '' && nonce === st.nonce && st.outstanding) {
      st.outstanding = false;
      if (msg.errorDetail) this.#nack(st, msg.errorDetail);
      else this.#ack(st);
    }
    this.#subscribe(st, msg);
    this.#flush();
  }

  #identify(node: NodeInfo): void {
    this.record.node = node;
    this.#log = this.#log.child({ node: node.id });
    // A watch started before the node was known may follow the wrong group.
    this.#watch?.cancel();
    this.#watch = undefined;
  }

  #startWatch(): void {
    this.#watch = this.#ctx.cache.watch(this.record.node, (_snapshot, changed) => this.#onSnapshot(changed));
    this.#ctx.registry._identify(this.record);
    for (const st of this.record.types.values()) if (st.subscribed) st.dirty = true;
  }

  #onSnapshot(changed: ReadonlySet<XdsTypeUrl>): void {
    if (this.#closed) return;
    try {
      for (const t of changed) {
        const st = this.record.types.get(t);
        if (st?.subscribed) st.dirty = true;
      }
      this.#flush();
    } catch (err) {
      this.#log.error({ err: (err as Error).stack ?? String(err) }, 'pushing a snapshot failed; closing this stream');
      this.close(GrpcStatus.INTERNAL, 'internal error pushing a snapshot');
    }
  }

  #subscribe(st: TypeState, req: XdsRequest): void {
    const first = !st.subscribed;
    st.subscribed = true;
    const raw = req.namesRaw;
    // Envoy repeats its whole subscription in every request: same bytes, nothing to do.
    if (!first && raw !== undefined && st.namesRaw !== undefined && raw.equals(st.namesRaw)) {
      if (st.answerDue) st.dirty = true;
      return;
    }
    // A copy: the request's bytes may be a view into a larger read buffer.
    st.namesRaw = raw === undefined ? undefined : Buffer.from(raw);
    const names = req.resourceNames();
    // Legacy wildcard: LDS/CDS with no names on the first request stay wildcard while names stay empty.
    const wildcard = names.length === 0 ? st.full && (first || st.wildcard) : names.includes('*');
    if (wildcard && !st.wildcard) st.answerDue = true;
    st.wildcard = wildcard;
    const prev = st.sub;
    const next = this.#ctx.subscriptions.acquire(names.filter((n) => n !== '*'));
    if (next !== prev) {
      for (const n of next.list) if (!prev.names.has(n)) st.added.add(n);
      for (const n of prev.list) {
        if (next.names.has(n)) continue;
        // Unsubscribed: a later resubscribe is a new name again, sent even if unchanged.
        st.added.delete(n);
        st.stale?.delete(n);
      }
      st.sub = next;
    }
    this.#ctx.subscriptions.release(prev);
    if (first || st.added.size > 0) st.answerDue = true;
    if (st.answerDue) st.dirty = true;
  }

  #ack(st: TypeState): void {
    st.acks++;
    st.ackedVersion = st.sentVersion;
    if (st.full) st.acked = st.base;
    st.nackedVersion = undefined;
    st.lastResponseNacked = false;
    this.#ctx.counters.acks++;
    this.#ctx.registry._ack(this.record, st);
  }

  #nack(st: TypeState, detail: { readonly code: number; readonly message: string }): void {
    const version = st.sentVersion ?? '';
    const prev = st.lastNack;
    const repeated = prev !== undefined && prev.version === version && prev.message === detail.message;
    const record = Object.freeze({ version, code: detail.code, message: detail.message, at: new Date().toISOString(), count: repeated ? prev.count + 1 : 1 });
    st.lastNack = record;
    st.nacks++;
    st.lastResponseNacked = true;
    st.nackedVersion = version;
    // The client keeps its last good config: our picture of what it holds goes back to that.
    if (st.full) {
      st.base = st.acked;
    } else {
      st.stale ??= new Set();
      for (const r of st.lastSent) st.stale.add(r.name);
    }
    this.#ctx.counters.nacks++;
    if (!repeated) {
      this.#log.warn(
        { type: TYPE_SHORT[st.typeUrl], rejected: version, kept: st.ackedVersion ?? null, code: detail.code, error: detail.message },
        'NACK: client rejected a config and keeps its last good one; this version will not be re-sent',
      );
    }
    this.#ctx.registry._nack(this.record, st, record);
  }

  /**
   * Send what is due, in CDS -> EDS -> LDS -> RDS order. Everything one flush sends (a Cluster
   * change: CDS, then the EDS warming re-send, then RDS) is written back to back, without waiting
   * for any ACK, and leaves in one HTTP/2 write (response-writer.ts).
   */
  #flush(): void {
    if (this.#closed) return;
    const snapshot = this.#watch?.snapshot;
    if (snapshot === undefined) return; // nothing to serve yet: requests wait for the first snapshot
    try {
      for (const t of TYPE_ORDER) {
        const st = this.record.types.get(t);
        if (st === undefined || !st.dirty || !st.subscribed) continue;
        // Its next response waits for the ACK of the one in flight, and nothing overtakes it: a
        // route must not reach the client before the clusters it names.
        if (st.outstanding) break;
        st.dirty = false;
        const ts = snapshot.type(t);
        if (st.full) this.#evaluateFull(st, ts);
        else this.#evaluatePartial(st, ts);
      }
    } finally {
      this.#writer.flush();
    }
  }

  /** LDS/CDS: every response is the full (subscribed) set; a missing name means deleted. */
  #evaluateFull(st: TypeState, ts: TypeSnapshot): void {
    const sub = st.wildcard ? WILDCARD : st.sub;
    const suppressed = ts.version === st.nackedVersion;
    if (!st.answerDue && (suppressed || !subscriptionChanged(ts, st.base, sub))) {
      if (!suppressed) {
        st.base = ts;
        // The client already holds everything current (e.g. a rollback to the version it kept
        // after a NACK): that NACK no longer describes its state.
        st.lastResponseNacked = false;
      }
      settle(st, ts);
      return;
    }
    const selected = present(ts, sub);
    const warms = warmsOf(selected, st.base);
    this.#send(st, ts, selected);
    st.base = ts;
    const next = NEXT_STAGE[st.typeUrl];
    if (next !== undefined && warms.length > 0) this.#warm(next, warms);
  }

  /**
   * RDS/EDS: send what the client does not hold (changed since its base, warming re-sends, newly
   * subscribed names, names it rejected), and answer named requests even when none exist.
   */
  #evaluatePartial(st: TypeState, ts: TypeSnapshot): void {
    const sub = st.wildcard ? WILDCARD : st.sub;
    const suppressed = ts.version === st.nackedVersion;
    let selected: readonly SnapshotResource[];
    if (!suppressed && st.stale === undefined && (st.added.size === 0 || st.base === undefined)) {
      // The common case, shared by every stream in the same situation (memoised).
      selected = changedSince(ts, st.base, sub);
      if (st.warms !== undefined) selected = withNames(ts, selected, warmTargets(sub, st.warms));
    } else {
      // After a NACK or a subscription change: this stream's own mix.
      const due = new Set<string>(st.added);
      if (st.warms !== undefined) for (const n of warmTargets(sub, st.warms)) due.add(n);
      if (!suppressed) {
        for (const r of changedSince(ts, st.base, sub)) due.add(r.name);
        if (st.stale !== undefined) for (const n of st.stale) if (sub === WILDCARD || sub.names.has(n)) due.add(n);
      }
      selected = resourcesOf(ts, due);
    }
    if (selected.length === 0 && !st.answerDue) {
      if (!suppressed) st.base = ts;
      settle(st, ts);
      return;
    }
    this.#send(st, ts, selected);
    if (suppressed) {
      // Sent at a version the client rejected: what it holds for these names is not certain.
      st.stale ??= new Set();
      for (const r of selected) st.stale.add(r.name);
    } else {
      st.base = ts;
      st.stale = undefined;
    }
  }

  #send(st: TypeState, ts: TypeSnapshot, selected: readonly SnapshotResource[]): void {
    const res = this.#ctx.responses.response(ts, selected, st.nonceSeq);
    st.nonce = res.nonce;
    st.nonceSeq = res.seq;
    st.outstanding = true;
    st.sentVersion = ts.version;
    st.lastSent = selected;
    st.responses++;
    settle(st, ts);
    this.#ctx.counters.responses++;
    this.#writer.write(res);
    if (this.#log.isLevelEnabled('debug')) {
      this.#log.debug({ type: TYPE_SHORT[st.typeUrl], version: ts.version, nonce: res.nonce, resources: selected.length }, 'response sent');
    }
    this.#ctx.registry._response(this.record, st, selected.length, res.bodySize);
  }

  /** Make the next stage re-send `names` (on this ADS stream, or the node's per-type stream). */
  #warm(type: XdsTypeUrl, names: readonly string[]): void {
    if (this.#method.typeUrl === undefined) {
      this.#acceptWarm(type, names);
      return;
    }
    if (this.record.nodeId === '') return;
    for (const other of this.#ctx.registry._streamsOf(this.record.nodeId)) {
      if (other === this.record) continue;
      const session = this.#ctx.sessions.get(other);
      if (session !== undefined && session.#acceptWarm(type, names)) session.#flush();
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

  #unknownType(typeUrl: string): void {
    this.#ctx.counters.unknownType++;
    this.#warnedTypeUrls ??= new Set();
    if (this.#warnedTypeUrls.has(typeUrl) || this.#warnedTypeUrls.size >= MAX_WARNED_TYPE_URLS) return;
    this.#warnedTypeUrls.add(typeUrl);
    this.#log.warn({ method: this.#method.name, typeUrl }, 'request for a type this stream does not serve; ignored');
  }
}

/** Done evaluating a type against `ts`: what was due has been sent (or nothing was). */
function settle(st: TypeState, ts: TypeSnapshot): void {
  st.answerDue = false;
  st.added.clear();
  st.warms = undefined;
  st.evaluatedVersion = ts.version;
}
