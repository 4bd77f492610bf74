/**
 * Encode-once fan-out: a whole DiscoveryResponse (version, resources, type_url and nonce) is built
 * once per (type snapshot, selection of resources) and the very same bytes are written to every
 * stream that sends it, gRPC length prefix included (../response-writer.ts).
 *
 * Nonces only have to be fresh per stream, so a shared response carries one nonce for all its
 * streams (go-control-plane's per-stream counters also give every stream the same nonces). Each
 * body gets a number from a counter that only grows; a stream takes the shared bytes only if that
 * number is above the last nonce it got for the type. Otherwise (a body built earlier and sent to
 * it before, e.g. the warming re-send of an unchanged ClusterLoadAssignment after every Cluster
 * change) the shared response is renewed: the same body with a new, higher nonce, which then
 * serves every other stream of that fan-out too. So nonces strictly grow per stream and type, are
 * never repeated, and a fan-out costs one copy, not one per stream.
 *
 * In: a TypeSnapshot, the resources a stream is about to send, the stream's last nonce number.
 * Out: the response bytes and their nonce. Entries hang off the TypeSnapshot and the selection
 * arrays (WeakMaps), so they go away with the snapshot; each type snapshot keeps at most
 * `maxPerType` selections.
 */
import type { SnapshotResource, TypeSnapshot } from '../../cache/snapshot.js';
import { encodeResponseBody, framedWithNonce, GRPC_FRAME_HEADER } from './discovery-codec.js';

export interface EncodedResponse {
  /** The message behind gRPC's length prefix: what goes on the HTTP/2 stream, as is. */
  readonly frame: Buffer;
  /** The DiscoveryResponse alone (a view into `frame`), for grpc-js to frame itself. */
  readonly bytes: Buffer;
  readonly nonce: string;
  /** The nonce's number (nonces grow per stream and type). */
  readonly seq: number;
  /** Size of the body without the nonce. */
  readonly bodySize: number;
}

/** One (type snapshot, selection): its body, and the response currently shared for it. */
interface Slot {
  readonly body: Buffer;
  current: EncodedResponse;
}

export class ResponseCache {
  readonly #byKey = new WeakMap<TypeSnapshot, Map<string, Slot>>();
  /** Selections memoised in selection.ts are shared arrays: find their slot without a key. */
  readonly #bySelection = new WeakMap<readonly SnapshotResource[], Slot>();
  readonly #maxPerType: number;
  #seq = 0;
  /** Bodies encoded (a miss); the encode-once test and the benchmark read it. */
  builds = 0;
  /** Responses handed out as already encoded shared bytes. */
  hits = 0;
  /** Shared responses renewed with a fresh nonce (one copy of the body each). */
  copies = 0;

  constructor(maxPerType = 256) {
    this.#maxPerType = maxPerType;
  }

  /** `selected` must be in snapshot order (ascending index) so equal selections share an entry. */
  response(ts: TypeSnapshot, selected: readonly SnapshotResource[], lastSeq: number): EncodedResponse {
    const slot = this.#slot(ts, selected);
    if (slot.current.seq > lastSeq) {
      this.hits++;
      return slot.current;
    }
    this.copies++;
    slot.current = this.#stamp(slot.body);
    return slot.current;
  }

  #stamp(body: Buffer): EncodedResponse {
    const seq = ++this.#seq;
    const nonce = seq.toString(36);
    const frame = framedWithNonce(body, nonce);
    return { frame, bytes: frame.subarray(GRPC_FRAME_HEADER), nonce, seq, bodySize: body.length };
  }

  #slot(ts: TypeSnapshot, selected: readonly SnapshotResource[]): Slot {
    // Empty selections are one shared constant across snapshots: never look them up by identity.
    const byIdentity = selected.length > 0;
    const known = byIdentity ? this.#bySelection.get(selected) : undefined;
    if (known !== undefined) return known;
    const key = selected.length === ts.list.length ? '*' : selectionKey(selected);
    let slots = this.#byKey.get(ts);
    if (!slots) {
      slots = new Map();
      this.#byKey.set(ts, slots);
    }
    let slot = slots.get(key);
    if (slot === undefined) {
      const body = encodeResponseBody(ts.version, ts.typeUrl, selected);
      slot = { body, current: this.#stamp(body) };
      this.builds++;
      if (slots.size < this.#maxPerType) slots.set(key, slot);
    }
    if (byIdentity) this.#bySelection.set(selected, slot);
    return slot;
  }
}

function selectionKey(selected: readonly SnapshotResource[]): string {
  let key = '';
  for (const r of selected) key += `${r.index},`;
  return key;
}
