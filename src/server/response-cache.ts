/**
 * Encode-once fan-out: a whole DiscoveryResponse (version, resources, type_url and nonce) is built
 * once per (type snapshot, selection of resources) and the very same bytes are written to every
 * stream that sends it; grpc-js's serializer is the identity.
 *
 * Nonces only have to be fresh per stream, so a shared response carries one nonce for all its
 * streams (go-control-plane's per-stream counters also give every stream the same nonces). Each
 * body gets a number from a counter that only grows; a stream takes the shared bytes only if that
 * number is above the last nonce it got for the type, otherwise (a body built earlier, e.g. a
 * warming re-send of something it had) it gets a copy with a fresh nonce. So nonces strictly grow
 * per stream and type, and are never repeated.
 *
 * In: a TypeSnapshot, the resources a stream is about to send, the stream's last nonce number.
 * Out: the response bytes and their nonce. Entries hang off the TypeSnapshot and the selection
 * arrays (WeakMaps), so they go away with the snapshot; each type snapshot keeps at most
 * `maxPerType` selections.
 */
import type { SnapshotResource, TypeSnapshot } from '../cache/snapshot.js';
import { encodeResponseBody, withNonce } from './discovery-codec.js';

export interface EncodedResponse {
  readonly bytes: Buffer;
  readonly nonce: string;
  /** The nonce's number (nonces grow per stream and type). */
  readonly seq: number;
  /** Size of the body without the nonce. */
  readonly bodySize: number;
}

interface Entry extends EncodedResponse {
  readonly body: Buffer;
}

export class ResponseCache {
  readonly #byKey = new WeakMap<TypeSnapshot, Map<string, Entry>>();
  /** Selections memoised in selection.ts are shared arrays: find their entry without a key. */
  readonly #bySelection = new WeakMap<readonly SnapshotResource[], Entry>();
  readonly #maxPerType: number;
  #seq = 0;
  /** Bodies encoded (a miss); the encode-once test and the benchmark read it. */
  builds = 0;
  /** Responses handed out as already encoded shared bytes. */
  hits = 0;
  /** Responses that needed a per-stream copy for a fresh nonce. */
  copies = 0;

  constructor(maxPerType = 256) {
    this.#maxPerType = maxPerType;
  }

  /** `selected` must be in snapshot order (ascending index) so equal selections share an entry. */
  response(ts: TypeSnapshot, selected: readonly SnapshotResource[], lastSeq: number): EncodedResponse {
    const entry = this.#entry(ts, selected);
    if (entry.seq > lastSeq) {
      this.hits++;
      return entry;
    }
    this.copies++;
    const seq = ++this.#seq;
    const nonce = seq.toString(36);
    return { bytes: withNonce(entry.body, nonce), nonce, seq, bodySize: entry.bodySize };
  }

  #entry(ts: TypeSnapshot, selected: readonly SnapshotResource[]): Entry {
    // Empty selections are one shared constant across snapshots: never look them up by identity.
    const byIdentity = selected.length > 0;
    const known = byIdentity ? this.#bySelection.get(selected) : undefined;
    if (known !== undefined) return known;
    const key = selected.length === ts.list.length ? '*' : selectionKey(selected);
    let entries = this.#byKey.get(ts);
    if (!entries) {
      entries = new Map();
      this.#byKey.set(ts, entries);
    }
    let entry = entries.get(key);
    if (entry === undefined) {
      const body = encodeResponseBody(ts.version, ts.typeUrl, selected);
      const seq = ++this.#seq;
      const nonce = seq.toString(36);
      entry = { body, bytes: withNonce(body, nonce), nonce, seq, bodySize: body.length };
      this.builds++;
      if (entries.size < this.#maxPerType) entries.set(key, entry);
    }
    if (byIdentity) this.#bySelection.set(selected, entry);
    return entry;
  }
}

function selectionKey(selected: readonly SnapshotResource[]): string {
  let key = '';
  for (const r of selected) key += `${r.index},`;
  return key;
}
