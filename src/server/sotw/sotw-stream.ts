/**
 * The State-of-the-World rules of one xDS stream: ADS, or one of the per-type services
 * (CDS/EDS/LDS/RDS). The stream's lifecycle, node, watch and registry bookkeeping are the
 * protocol-neutral StreamSession's (../stream-session.ts); this file decides what a request
 * means and what is sent.
 *
 * In: DiscoveryRequests (discovery-codec.ts) and change notices from the snapshot cache.
 * Out: DiscoveryResponses (pre-encoded and shared between streams, with a nonce fresh on this
 * stream; see response-cache.ts, written by ../response-writer.ts).
 *
 * Protocol rules (docs/xds-server.md, "Protocol behaviour", says the same for readers):
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
 *   A request naming more than maxResourceNames (default 10,000) ends the stream with
 *   INVALID_ARGUMENT, naming the count and the limit: a client that big is misconfigured or
 *   hostile, and a NACK-like reply would leave it re-sending the same request.
 * - RDS/EDS responses carry only what the client does not have yet. A Cluster (Listener) that is
 *   new or changed is followed by its ClusterLoadAssignment (RouteConfiguration) even if that is
 *   unchanged, so the client finishes warming.
 * - One ordered queue per stream: CDS -> EDS -> LDS -> RDS. Everything due at one moment (a
 *   Cluster change: CDS, the EDS warming re-send, RDS) is written back to back in that order,
 *   without waiting for any ACK, and leaves in one HTTP/2 write (../response-writer.ts).
 * - One response in flight per type: the next one of that type waits for the ACK or NACK. This
 *   keeps what the client holds of RDS/EDS knowable after a NACK, and merges fast successive
 *   changes for a slow client. A type whose next response waits so holds back the later types
 *   that have something to send, so routes never overtake the clusters they name.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { resourceType, TYPE_SHORT, type XdsTypeUrl } from '../../xds/resource-types.js';
import type { SnapshotResource, TypeSnapshot } from '../../cache/snapshot.js';
import { StreamSession, type ServedMethod, type SessionContext, type XdsCall } from '../stream-session.js';
import { WILDCARD } from '../subscriptions.js';
import type { XdsRequest } from './discovery-codec.js';
import type { ResponseCache } from './response-cache.js';
import { changedSince, present, resourcesOf, subscriptionChanged, withNames } from './selection.js';
import { SotwTypeState } from './sotw-type-state.js';
import { warmsOf, warmTargets } from './warming.js';

export interface SotwContext extends SessionContext {
  readonly responses: ResponseCache;
}

const newState = (typeUrl: XdsTypeUrl): SotwTypeState => new SotwTypeState(typeUrl);

export class SotwStream extends StreamSession<XdsRequest, SotwTypeState> {
  readonly #responses: ResponseCache;

  constructor(call: XdsCall<XdsRequest>, method: ServedMethod, ctx: SotwContext) {
    super(call, method, ctx, newState);
    this.#responses = ctx.responses;
  }

  protected request(typeUrl: XdsTypeUrl, msg: XdsRequest): void {
    const st = this.record.state(typeUrl);
    const nonce = msg.responseNonce;
    if (nonce !== '' && st.nonce !== undefined && nonce !== st.nonce) {
      this.ctx.counters.stale++;
      return;
    }
    if (nonce !== '' && nonce === st.nonce && st.outstanding) {
      if (msg.errorDetail) this.#nack(st, msg.errorDetail);
      else this.#ack(st);
    }
    if (!this.#subscribe(st, msg)) return;
    this.flush();
  }

  /** Applies the request's resource_names; false when they are over the limit and the stream is ended. */
  #subscribe(st: SotwTypeState, req: XdsRequest): boolean {
    const first = !st.subscribed;
    st.subscribed = true;
    const raw = req.namesRaw;
    // Envoy repeats its whole subscription in every request: same bytes, nothing to do.
    if (!first && raw !== undefined && st.namesRaw !== undefined && raw.equals(st.namesRaw)) {
      if (st.answerDue) st.dirty = true;
      return true;
    }
    const names = req.resourceNames();
    if (names.length > this.ctx.maxResourceNames) {
      this.ctx.counters.overLimit++;
      const message = `${TYPE_SHORT[st.typeUrl]} request names ${names.length} resources; the limit is ${this.ctx.maxResourceNames} (--xds-max-resource-names)`;
      this.log.warn(
        { peer: this.record.peer, type: TYPE_SHORT[st.typeUrl], names: names.length, limit: this.ctx.maxResourceNames },
        `${message}; closing this stream`,
      );
      this.close(GrpcStatus.INVALID_ARGUMENT, message);
      return false;
    }
    // A copy: the request's bytes may be a view into a larger read buffer.
    st.namesRaw = raw === undefined ? undefined : Buffer.from(raw);
    // Legacy wildcard: LDS/CDS with no names on the first request stay wildcard while names stay empty.
    const wildcard = names.length === 0 ? st.full && (first || st.wildcard) : names.includes('*');
    if (wildcard && !st.wildcard) st.answerDue = true;
    st.wildcard = wildcard;
    const prev = st.sub;
    const next = this.ctx.subscriptions.acquire(names.filter((n) => n !== '*'));
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
    this.ctx.subscriptions.release(prev);
    if (first || st.added.size > 0) st.answerDue = true;
    if (st.answerDue) st.dirty = true;
    return true;
  }

  #ack(st: SotwTypeState): void {
    st.acked();
    if (st.full) st.ackedBase = st.base;
    st.nackedVersion = undefined;
    this.ctx.counters.acks++;
    this.ctx.observer.onAck(this.record, st);
  }

  #nack(st: SotwTypeState, detail: { readonly code: number; readonly message: string }): void {
    const record = st.nacked(detail);
    st.nackedVersion = record.version;
    // The client keeps its last good config: our picture of what it holds goes back to that.
    if (st.full) {
      st.base = st.ackedBase;
    } else {
      st.stale ??= new Set();
      for (const r of st.lastSent) st.stale.add(r.name);
    }
    this.ctx.counters.nacks++;
    if (record.count === 1) {
      this.log.warn(
        { type: TYPE_SHORT[st.typeUrl], rejected: record.version, kept: st.ackedVersion ?? null, code: detail.code, error: detail.message },
        'NACK: client rejected a config and keeps its last good one; this version will not be re-sent',
      );
    }
    this.ctx.observer.onNack(this.record, st, record);
  }

  /** Full-state (LDS/CDS) and partial (RDS/EDS) types follow different rules. */
  protected evaluate(st: SotwTypeState, ts: TypeSnapshot): void {
    if (st.full) this.#evaluateFull(st, ts);
    else this.#evaluatePartial(st, ts);
  }

  /** LDS/CDS: every response is the full (subscribed) set; a missing name means deleted. */
  #evaluateFull(st: SotwTypeState, ts: TypeSnapshot): void {
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
    const next = resourceType(st.typeUrl).warms;
    if (next !== undefined && warms.length > 0) this.warm(next, warms);
  }

  /**
   * RDS/EDS: send what the client does not hold (changed since its base, warming re-sends, newly
   * subscribed names, names it rejected), and answer named requests even when none exist.
   */
  #evaluatePartial(st: SotwTypeState, ts: TypeSnapshot): void {
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

  #send(st: SotwTypeState, ts: TypeSnapshot, selected: readonly SnapshotResource[]): void {
    const res = this.#responses.response(ts, selected, st.nonceSeq);
    st.sent(ts.version, res.nonce, res.seq);
    st.lastSent = selected;
    settle(st, ts);
    this.ctx.counters.responses++;
    this.writer.write(res);
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ type: TYPE_SHORT[st.typeUrl], version: ts.version, nonce: res.nonce, resources: selected.length }, 'response sent');
    }
    this.ctx.observer.onResponse(this.record, st, selected.length, res.bodySize);
  }
}

/** Done evaluating a type against `ts`: what was due has been sent (or nothing was). */
function settle(st: SotwTypeState, ts: TypeSnapshot): void {
  st.answerDue = false;
  st.added.clear();
  st.warms = undefined;
  st.evaluatedVersion = ts.version;
}
