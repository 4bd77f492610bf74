/**
 * Encode-once fan-out: the shared part of a DiscoveryResponse (version, resources, type_url) is
 * built once per (type snapshot, selection of resources) and handed to every stream that sends
 * the same thing; only the nonce is per stream (see discovery-codec.ts).
 *
 * In: a TypeSnapshot and the resources a stream is about to send. Out: the shared body bytes.
 * Entries hang off the TypeSnapshot (WeakMap), so they go away with the snapshot; each type
 * snapshot keeps at most `maxPerType` selections (many different partial RDS/EDS selections
 * then fall back to building per stream, still without re-encoding any resource).
 */
import type { SnapshotResource, TypeSnapshot } from '../cache/snapshot.js';
import { encodeSharedResponse } from './discovery-codec.js';

export class ResponseCache {
  readonly #byType = new WeakMap<TypeSnapshot, Map<string, Buffer>>();
  readonly #maxPerType: number;
  /** Shared bodies built (a miss); the encode-once test and the benchmark read it. */
  builds = 0;
  hits = 0;

  constructor(maxPerType = 256) {
    this.#maxPerType = maxPerType;
  }

  /** `selected` must be in snapshot order (ascending index) so equal selections share a key. */
  shared(ts: TypeSnapshot, selected: readonly SnapshotResource[]): Buffer {
    const key = selected.length === ts.list.length ? '*' : selectionKey(selected);
    let entries = this.#byType.get(ts);
    if (!entries) {
      entries = new Map();
      this.#byType.set(ts, entries);
    }
    const hit = entries.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    const body = encodeSharedResponse(ts.version, ts.typeUrl, selected);
    this.builds++;
    if (entries.size < this.#maxPerType) entries.set(key, body);
    return body;
  }
}

function selectionKey(selected: readonly SnapshotResource[]): string {
  let key = '';
  for (const r of selected) key += `${r.index},`;
  return key;
}
