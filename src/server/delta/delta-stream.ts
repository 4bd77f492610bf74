/**
 * The incremental (delta) xDS rules of one stream: `DeltaAggregatedResources` on ADS, or one of
 * the per-type delta services (DeltaClusters, DeltaEndpoints, DeltaListeners, DeltaRoutes). The
 * stream's lifecycle, node, watch and registry bookkeeping are the protocol-neutral
 * StreamSession's (../stream-session.ts); this file decides what a request means and what is sent.
 *
 * In: DeltaDiscoveryRequests (delta-codec.ts) and change notices from the snapshot cache, the same
 * snapshots SotW streams are served from. Out: DeltaDiscoveryResponses (bodies shared between
 * streams, a nonce fresh on this stream), written by ../response-writer.ts.
 *
 * Protocol rules (docs/xds-server.md, "Delta xDS", says the same for readers):
 * - Per-resource versions are the snapshot's content hashes; `system_version_info` is the type's
 *   version. The server knows, per stream and type, the version of every name the client holds
 *   (the type snapshot it was last brought to, plus the few exceptions: rejected versions, names
 *   given in initial_resource_versions; delta-type-state.ts), and sends a resource only when the
 *   client does not hold its current version. Subscribed resources that disappear go in
 *   `removed_resources`.
 * - Subscriptions: `resource_names_subscribe` / `_unsubscribe` change the set incrementally and
 *   are applied from every request, whatever its nonce (a lost diff could not be recovered). The
 *   first LDS/CDS request without names is a wildcard subscription (the spec's legacy wildcard),
 *   which lasts until the client unsubscribes '*'; subscribing to '*' makes any type wildcard. A
 *   newly subscribed name that does not exist is answered at once in `removed_resources`, so no
 *   client waits for a does-not-exist timeout.
 * - `initial_resource_versions` (first request of a type on a new stream): those names count as
 *   held at those versions, so a reconnecting client is sent only what changed meanwhile. The
 *   first request of a type is always answered, if need be with an empty response.
 * - Nonces: every response has a fresh nonce. A request echoing the latest nonce is an ACK, or a
 *   NACK when error_detail is set; one echoing an older nonce acknowledges nothing.
 * - NACK: every resource version in the rejected response is recorded on this stream and never
 *   sent to it again (the client keeps its last good one); the stream goes on serving every other
 *   change, and the name again as soon as its version moves on (a rollback included).
 * - Ordering and warming as in SotW (../sotw/sotw-stream.ts): one ordered queue per stream, CDS ->
 *   EDS -> LDS -> RDS, everything due at one moment in one HTTP/2 write; one response in flight
 *   per type, a type waiting for its ACK holds back the later ones; a Cluster (Listener) sent is
 *   followed by its ClusterLoadAssignment (RouteConfiguration) even when the client holds it, so
 *   the client finishes warming.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { resourceType, TYPE_SHORT, type XdsTypeUrl } from '../../xds/resource-types.js';
import type { SnapshotResource, TypeSnapshot } from '../../cache/snapshot.js';
import { StreamSession, type ServedMethod, type SessionContext, type XdsCall } from '../stream-session.js';
import { WILDCARD, type Subscription } from '../subscriptions.js';
import { framedWithNonce, GRPC_FRAME_HEADER } from '../sotw/discovery-codec.js';
import { changedSince, memo2, resourcesOf, withNames, type Memo2 } from '../sotw/selection.js';
import { warmTargets } from '../sotw/warming.js';
import { encodeDeltaBody, type DeltaRequest } from './delta-codec.js';
import { DeltaTypeState, UNKNOWN_VERSION } from './delta-type-state.js';

const newState = (typeUrl: XdsTypeUrl): DeltaTypeState => new DeltaTypeState(typeUrl);

const NONE: readonly string[] = Object.freeze([]);

export class DeltaStream extends StreamSession<DeltaRequest, DeltaTypeState> {
  #nonceSeq = 0;

  constructor(call: XdsCall<DeltaRequest>, method: ServedMethod, ctx: SessionContext) {
    super(call, method, ctx, newState);
  }

  protected request(typeUrl: XdsTypeUrl, msg: DeltaRequest): void {
    const st = this.record.state(typeUrl);
    const nonce = msg.responseNonce;
    if (nonce !== '') {
      if (nonce !== st.nonce) this.ctx.counters.stale++;
      else if (st.outstanding) {
        if (msg.errorDetail) this.#nack(st, msg.errorDetail);
        else this.#ack(st);
      }
    }
    if (!this.#subscribe(st, msg)) return;
    this.flush();
  }

  /** Applies the request's subscription changes; false when they go over the limit and the stream is ended. */
  #subscribe(st: DeltaTypeState, req: DeltaRequest): boolean {
    if (req.subscribe.length > this.ctx.maxResourceNames) return this.#overLimit(st, req.subscribe.length);
    let changed = false;
    if (!st.subscribed) {
      st.subscribed = true;
      st.answerDue = true;
      // Legacy wildcard: the first LDS/CDS request without names.
      st.wildcard = st.wildcardByDefault && req.subscribe.length === 0;
      for (const [name, version] of req.initialVersions) st.overlay.set(name, version);
      changed = true;
    }
    let names: Set<string> | undefined;
    for (const n of req.subscribe) {
      if (n === '*') {
        if (!st.wildcard) {
          // Back to wildcard: of the names it did not subscribe to, the client holds nothing.
          for (const name of [...st.overlay.keys()]) if (!st.sub.names.has(name)) st.overlay.delete(name);
          for (const r of st.base?.list ?? []) if (!st.sub.names.has(r.name)) st.added.add(r.name);
          changed = true;
        }
        st.wildcard = true;
        continue;
      }
      names ??= new Set(st.sub.list);
      if (names.has(n)) continue;
      names.add(n);
      st.added.add(n);
    }
    for (const n of req.unsubscribe) {
      if (n === '*') {
        changed ||= st.wildcard;
        st.wildcard = false;
        continue;
      }
      names ??= new Set(st.sub.list);
      if (!names.delete(n)) continue;
      // Forgotten: a later subscribe sends it again.
      st.added.delete(n);
      st.overlay.delete(n);
      st.rejected.delete(n);
    }
    if (names !== undefined && (names.size !== st.sub.names.size || [...names].some((n) => !st.sub.names.has(n)))) {
      // A delta subscription grows request by request: the limit is on what it adds up to.
      if (names.size > this.ctx.maxResourceNames) return this.#overLimit(st, names.size);
      const prev = st.sub;
      st.sub = this.ctx.subscriptions.acquire(names);
      this.ctx.subscriptions.release(prev);
      changed = true;
    }
    if (changed || st.added.size > 0) st.dirty = true;
    return true;
  }

  /** A client subscribing to that many names is misconfigured or hostile: end its stream, naming the count. */
  #overLimit(st: DeltaTypeState, count: number): false {
    this.ctx.counters.overLimit++;
    const message = `${TYPE_SHORT[st.typeUrl]} subscription names ${count} resources; the limit is ${this.ctx.maxResourceNames} (--xds-max-resource-names)`;
    this.log.warn({ peer: this.record.peer, type: TYPE_SHORT[st.typeUrl], names: count, limit: this.ctx.maxResourceNames }, `${message}; closing this stream`);
    this.close(GrpcStatus.INVALID_ARGUMENT, message);
    return false;
  }

  #ack(st: DeltaTypeState): void {
    st.acked();
    st.lastSent = NONE;
    this.ctx.counters.acks++;
    this.ctx.observer.onAck(this.record, st);
  }

  #nack(st: DeltaTypeState, detail: { readonly code: number; readonly message: string }): void {
    const record = st.nacked(detail);
    // The client keeps what it had for these names (or applied some of them): not knowable, but
    // the versions it was sent are the ones never to send again.
    for (const name of st.lastSent) {
      const version = st.holds(name);
      if (version !== undefined && version !== UNKNOWN_VERSION) st.rejected.set(name, version);
      st.overlay.set(name, UNKNOWN_VERSION);
    }
    this.ctx.counters.nacks++;
    if (record.count === 1) {
      this.log.warn(
        { type: TYPE_SHORT[st.typeUrl], rejected: record.version, resources: st.lastSent, code: detail.code, error: detail.message },
        'NACK (delta): client rejected these resource versions and keeps its last good ones; they will not be re-sent',
      );
    }
    this.ctx.observer.onNack(this.record, st, record);
  }

  protected evaluate(st: DeltaTypeState, ts: TypeSnapshot): void {
    const sub = st.wildcard ? WILDCARD : st.sub;
    let upserts: readonly SnapshotResource[];
    let removed: readonly string[];
    if (st.overlay.size === 0 && st.rejected.size === 0 && (st.added.size === 0 || st.base === undefined)) {
      // The client holds exactly `base` of what it subscribed to (nothing at all before the first
      // answer): a diff shared by every stream in the same situation (memoised), so a change
      // fanned out to 1,000 streams, or 1,000 streams connecting, is computed and encoded once.
      upserts = changedSince(ts, st.base, sub);
      if (st.warms !== undefined) upserts = withNames(ts, upserts, warmTargets(sub, st.warms));
      removed = st.base === undefined ? missingFrom(ts, st.sub) : removedSince(ts, st.base, sub);
    } else {
      [upserts, removed] = this.#compare(st, ts, sub);
    }
    if (upserts.length > 0 || removed.length > 0 || st.answerDue) this.#send(st, ts, upserts, removed);
    // The client now holds `ts` of every subscribed name, except the versions it rejected.
    st.base = ts;
    st.overlay.clear();
    for (const name of st.rejected.keys()) st.overlay.set(name, UNKNOWN_VERSION);
    st.answerDue = false;
    st.added.clear();
    st.warms = undefined;
    st.evaluatedVersion = ts.version;
  }

  /** Name by name: what the client lacks, and what it holds that is gone (or never existed). */
  #compare(st: DeltaTypeState, ts: TypeSnapshot, sub: Subscription): [readonly SnapshotResource[], readonly string[]] {
    const warm = st.warms === undefined ? undefined : new Set(warmTargets(sub, st.warms));
    const due: string[] = [];
    const removed: string[] = [];
    const seen = new Set<string>();
    const consider = (name: string): void => {
      if (seen.has(name)) return;
      seen.add(name);
      const r = ts.resources.get(name);
      const rejected = st.rejected.get(name);
      if (rejected !== undefined && rejected !== r?.version) st.rejected.delete(name);
      const held = st.holds(name);
      if (r === undefined) {
        // Gone (or never there: a new subscription is told at once that it does not exist).
        if (held !== undefined || st.added.has(name)) removed.push(name);
        return;
      }
      if (rejected === r.version) return;
      if (held !== r.version || warm?.has(name) === true) due.push(name);
    };
    for (const name of st.sub.list) consider(name);
    for (const name of st.overlay.keys()) if (sub === WILDCARD || st.sub.names.has(name)) consider(name);
    if (sub === WILDCARD) {
      for (const r of ts.list) consider(r.name);
      for (const r of st.base?.list ?? []) consider(r.name);
    }
    return [resourcesOf(ts, due), removed.length === 0 ? NONE : removed.sort()];
  }

  #send(st: DeltaTypeState, ts: TypeSnapshot, upserts: readonly SnapshotResource[], removed: readonly string[]): void {
    const body = encodeDeltaBody(ts, upserts, removed);
    const seq = ++this.#nonceSeq;
    const nonce = seq.toString(36);
    const frame = framedWithNonce(body, nonce);
    st.sent(ts.version, nonce, seq);
    st.lastSent = upserts.length === 0 ? NONE : namesOf(upserts);
    this.ctx.counters.responses++;
    this.writer.write({ frame, bytes: frame.subarray(GRPC_FRAME_HEADER) });
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ type: TYPE_SHORT[st.typeUrl], version: ts.version, nonce, resources: upserts.length, removed: removed.length }, 'delta response sent');
    }
    this.ctx.observer.onResponse(this.record, st, upserts.length, body.length);
    const next = resourceType(st.typeUrl).warms;
    if (next !== undefined && upserts.length > 0) {
      const warms = warmsOf(upserts);
      if (warms.length > 0) this.warm(next, warms);
    }
  }
}

const namesMemo = new WeakMap<readonly SnapshotResource[], readonly string[]>();
const warmsMemo = new WeakMap<readonly SnapshotResource[], readonly string[]>();

function namesOf(resources: readonly SnapshotResource[]): readonly string[] {
  let names = namesMemo.get(resources);
  if (names === undefined) {
    names = Object.freeze(resources.map((r) => r.name));
    namesMemo.set(resources, names);
  }
  return names;
}

/** The next-stage names of resources being sent (every one of them is new or changed to the client). */
function warmsOf(resources: readonly SnapshotResource[]): readonly string[] {
  let warms = warmsMemo.get(resources);
  if (warms === undefined) {
    const out = new Set<string>();
    for (const r of resources) for (const n of r.warms) out.add(n);
    warms = out.size === 0 ? NONE : Object.freeze([...out]);
    warmsMemo.set(resources, warms);
  }
  return warms;
}

const missingMemo = new WeakMap<TypeSnapshot, WeakMap<Subscription, readonly string[]>>();

/** Subscribed names that `ts` does not have (a first answer names them as removed: they do not exist). */
function missingFrom(ts: TypeSnapshot, sub: Subscription): readonly string[] {
  if (sub.list.length === 0) return NONE;
  return memo2(missingMemo, ts, sub, () => {
    const gone = sub.list.filter((n) => !ts.resources.has(n));
    return gone.length === 0 ? NONE : Object.freeze(gone);
  });
}

const removedMemo = new WeakMap<TypeSnapshot, Memo2<TypeSnapshot, Subscription, readonly string[]>>();

/** Subscribed names in `base` that are not in `ts`, sorted. */
function removedSince(ts: TypeSnapshot, base: TypeSnapshot | undefined, sub: Subscription): readonly string[] {
  if (base === undefined || base === ts) return NONE;
  let inner = removedMemo.get(ts);
  if (inner === undefined) {
    inner = new WeakMap();
    removedMemo.set(ts, inner);
  }
  return memo2(inner, base, sub, () => {
    const names = sub === WILDCARD ? base.list.map((r) => r.name) : sub.list.filter((n) => base.resources.has(n));
    const gone = names.filter((n) => !ts.resources.has(n));
    return gone.length === 0 ? NONE : Object.freeze(gone);
  });
}
