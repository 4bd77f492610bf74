/**
 * Every connected xDS stream, for the admin status page, metrics and the sidecar health endpoint.
 *
 * In: what the streams report through the StreamObserver interface (stream-observer.ts). Out: frozen status objects
 * (`list()`, `get(id)`, `nodeStatus(nodeId)`, `toJSON()`), and events.
 *
 * Events (a typed node:events EventEmitter; emitted synchronously on the protocol path, so
 * listeners must be quick; payloads are frozen plain objects, built only when someone listens):
 *   'stream-open'  (StreamStatus)  a stream sent its first request (its node is known)
 *   'stream-close' (StreamStatus)  a stream that had opened is gone; its last state
 *   'response'     (ResponseEvent) a DiscoveryResponse was written
 *   'ack'          (XdsEvent)      the client accepted the response with `nonce`
 *   'nack'         (NackEvent)     the client rejected it; `repeated` when the same version and
 *                                  message were rejected just before (logged once, not per retry)
 *
 * `nodeStatus(nodeId)` answers "is node X on the latest version, ACKed? was its last response
 * NACKed?" over all of that node's live streams. State lives with the streams: once a node's last
 * stream closes, it is forgotten (no growth with node churn).
 */
import { EventEmitter } from 'node:events';
import { TYPE_ORDER, TYPE_SHORT, type TypeShort, type XdsTypeUrl } from '../xds/resource-types.js';
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import type { ClientProgress, WaitingStream } from '../cache/make-before-break.js';
import type { NackRecord, StreamRecord, StreamStatus, TypeState, TypeStatus } from './stream-state.js';
import type { StreamObserver } from './stream-observer.js';

export interface XdsEvent {
  readonly streamId: number;
  readonly nodeId: string;
  readonly typeUrl: XdsTypeUrl;
  readonly type: TypeShort;
  readonly version: string;
  readonly nonce: string;
}

export interface ResponseEvent extends XdsEvent {
  /** Resources in the response. */
  readonly resources: number;
  /** Size of the response body without the nonce. */
  readonly bytes: number;
}

export interface NackEvent extends XdsEvent {
  readonly code: number;
  readonly message: string;
  readonly repeated: boolean;
}

export type RegistryEvents = {
  'stream-open': [StreamStatus];
  'stream-close': [StreamStatus];
  response: [ResponseEvent];
  ack: [XdsEvent];
  nack: [NackEvent];
};

export interface NodeTypeStatus extends TypeStatus {
  /** The stream this type is served on (the most recent one, if several). */
  readonly streamId: number;
  /** What the cache holds for this type in the node's group right now. */
  readonly currentVersion?: string;
  /** Evaluated against currentVersion, nothing pending or unanswered, and not NACKed. */
  readonly upToDate: boolean;
}

export interface NodeStatus {
  readonly nodeId: string;
  readonly group: string;
  readonly streams: number;
  readonly types: Readonly<Partial<Record<TypeShort, NodeTypeStatus>>>;
  /** Every subscribed type is up to date. */
  readonly upToDate: boolean;
  /** Some type's latest answered response was NACKed. */
  readonly nacked: boolean;
}

export class StreamRegistry extends EventEmitter<RegistryEvents> implements StreamObserver, ClientProgress {
  readonly #streams = new Map<number, StreamRecord>();
  readonly #byNode = new Map<string, Set<StreamRecord>>();
  readonly #indexedAs = new Map<StreamRecord, string>();
  readonly #cache: SnapshotCache;

  constructor(cache: SnapshotCache) {
    super();
    this.#cache = cache;
  }

  /** Connected streams (including ones that have not sent a request yet). */
  get size(): number {
    return this.#streams.size;
  }

  /** Distinct node ids with at least one identified stream. */
  get nodeCount(): number {
    return this.#byNode.size;
  }

  list(): StreamStatus[] {
    return [...this.#streams.values()].map((r) => r.status());
  }

  get(id: number): StreamStatus | undefined {
    return this.#streams.get(id)?.status();
  }

  nodes(): string[] {
    return [...this.#byNode.keys()];
  }

  toJSON(): { streams: StreamStatus[] } {
    return { streams: this.list() };
  }

  nodeStatus(nodeId: string): NodeStatus | undefined {
    const records = this.#byNode.get(nodeId);
    if (!records || records.size === 0) return undefined;
    const types: Partial<Record<TypeShort, NodeTypeStatus>> = {};
    let group = '';
    for (const r of records) {
      group = r.group;
      const snapshot = this.#cache.get(r.group);
      for (const t of TYPE_ORDER) {
        const st = r.types.get(t);
        if (!st?.subscribed) continue;
        const currentVersion = snapshot?.version(t);
        types[TYPE_SHORT[t]] = Object.freeze({
          ...st.status(),
          streamId: r.id,
          ...(currentVersion !== undefined ? { currentVersion } : {}),
          upToDate: st.upToDate(currentVersion),
        });
      }
    }
    const all = Object.values(types);
    return Object.freeze({
      nodeId,
      group,
      streams: records.size,
      types: Object.freeze(types),
      upToDate: all.every((s) => s.upToDate),
      nacked: all.some((s) => s.lastResponseNacked),
    });
  }

  /** Live records of a node (to forward warming between its per-type streams). */
  streamsOf(nodeId: string): Iterable<StreamRecord> {
    return this.#byNode.get(nodeId) ?? [];
  }

  // ---- ClientProgress: what make before break waits for ----

  unanswered(group: string, versions: ReadonlyMap<XdsTypeUrl, string>): WaitingStream[] {
    const out: WaitingStream[] = [];
    for (const r of this.#streams.values()) {
      if (r.types.size === 0 || r.group !== group) continue;
      const types: TypeShort[] = [];
      for (const [t, version] of versions) {
        const st = r.types.get(t);
        if (st?.subscribed && !st.answered(version)) types.push(TYPE_SHORT[t]);
      }
      if (types.length > 0) out.push(Object.freeze({ streamId: r.id, nodeId: r.nodeId, types: Object.freeze(types) }));
    }
    return out;
  }

  onAnswer(listener: () => void): () => void {
    const events = ['ack', 'nack', 'stream-close'] as const;
    for (const e of events) this.on(e, listener);
    return () => {
      for (const e of events) this.off(e, listener);
    };
  }

  // ---- StreamObserver: reported by the streams ----

  onConnect(record: StreamRecord): void {
    this.#streams.set(record.id, record);
  }

  /** Index the stream under its node and announce it. */
  onOpen(record: StreamRecord): void {
    const previous = this.#indexedAs.get(record);
    if (previous === record.nodeId) return;
    if (previous !== undefined) this.#unindex(record, previous);
    let set = this.#byNode.get(record.nodeId);
    if (!set) {
      set = new Set();
      this.#byNode.set(record.nodeId, set);
    }
    set.add(record);
    this.#indexedAs.set(record, record.nodeId);
    if (previous === undefined && this.listenerCount('stream-open') > 0) this.emit('stream-open', record.status());
  }

  onClose(record: StreamRecord): void {
    if (!this.#streams.delete(record.id)) return;
    const indexed = this.#indexedAs.get(record);
    if (indexed === undefined) return;
    this.#unindex(record, indexed);
    if (this.listenerCount('stream-close') > 0) this.emit('stream-close', record.status());
  }

  onResponse(record: StreamRecord, st: TypeState, resources: number, bytes: number): void {
    if (this.listenerCount('response') === 0) return;
    this.emit('response', Object.freeze({ ...base(record, st, st.sentVersion ?? ''), resources, bytes }));
  }

  onAck(record: StreamRecord, st: TypeState): void {
    if (this.listenerCount('ack') === 0) return;
    this.emit('ack', Object.freeze(base(record, st, st.ackedVersion ?? '')));
  }

  onNack(record: StreamRecord, st: TypeState, nack: NackRecord): void {
    if (this.listenerCount('nack') === 0) return;
    this.emit('nack', Object.freeze({ ...base(record, st, nack.version), code: nack.code, message: nack.message, repeated: nack.count > 1 }));
  }

  #unindex(record: StreamRecord, nodeId: string): void {
    this.#indexedAs.delete(record);
    const set = this.#byNode.get(nodeId);
    if (!set) return;
    set.delete(record);
    if (set.size === 0) this.#byNode.delete(nodeId);
  }
}

function base(record: StreamRecord, st: TypeState, version: string): XdsEvent {
  return { streamId: record.id, nodeId: record.nodeId, typeUrl: st.typeUrl, type: TYPE_SHORT[st.typeUrl], version, nonce: st.nonce ?? '' };
}
