/**
 * Wire format of the incremental (delta) discovery messages, kept out of the protocol logic.
 *
 * Requests: DeltaDiscoveryRequest read in one pass on the shared WireReader. Unlike SotW, a delta
 * request carries only what changed (names subscribed and unsubscribed), so everything is decoded
 * at once except the node, which stays a byte range until the session asks for it. Undecodable
 * bytes give a MalformedRequest marker instead of an exception (the session ends that stream).
 *
 * Responses: DeltaDiscoveryResponse = system_version_info + one `Resource {version, resource (the
 * snapshot's cached Any bytes), name}` per resource + type_url + removed_resources. Each Resource
 * message is encoded once per snapshot resource and each body once per (type snapshot, resources,
 * removals), then shared by every stream that sends the same thing; only the nonce (field 5, as
 * in SotW) differs per stream.
 */
import protobuf from 'protobufjs';
import { WireReader, WireType } from '../../envoy/wire-reader.js';
import type { NodeInfo } from '../../cache/node-info.js';
import type { SnapshotResource, TypeSnapshot } from '../../cache/snapshot.js';
import type { MalformedRequest, StreamRequest } from '../stream-session.js';
import { nodeInfoOf } from '../node-codec.js';
import { memo2, type Memo2 } from '../sotw/selection.js';
import { decodeStatus } from '../sotw/discovery-codec.js';

export interface DeltaRequest extends StreamRequest {
  readonly subscribe: readonly string[];
  readonly unsubscribe: readonly string[];
  /** name -> version the client already holds (first request of a type on a new stream). */
  readonly initialVersions: ReadonlyMap<string, string>;
  readonly responseNonce: string;
  /** Set on a NACK. */
  readonly errorDetail: { readonly code: number; readonly message: string } | undefined;
}

const NO_NAMES: readonly string[] = Object.freeze([]);
const NO_VERSIONS: ReadonlyMap<string, string> = new Map();

class DecodedDeltaRequest implements DeltaRequest {
  constructor(
    private readonly buf: Buffer,
    private readonly nodeStart: number,
    private readonly nodeEnd: number,
    readonly typeUrl: string,
    readonly subscribe: readonly string[],
    readonly unsubscribe: readonly string[],
    readonly initialVersions: ReadonlyMap<string, string>,
    readonly responseNonce: string,
    readonly errorDetail: { readonly code: number; readonly message: string } | undefined,
  ) {}

  get hasNode(): boolean {
    return this.nodeStart >= 0;
  }

  node(): NodeInfo | undefined {
    return this.nodeStart < 0 ? undefined : nodeInfoOf(this.buf.subarray(this.nodeStart, this.nodeEnd));
  }
}

/** The delta methods' request deserializer. */
export function decodeDeltaRequest(buf: Buffer): DeltaRequest | MalformedRequest {
  try {
    let typeUrl = '';
    let nonce = '';
    let errorDetail: { code: number; message: string } | undefined;
    let nodeStart = -1;
    let nodeEnd = -1;
    let subscribe: string[] | undefined;
    let unsubscribe: string[] | undefined;
    let initial: Map<string, string> | undefined;
    new WireReader(buf).lenFields((field, start, end) => {
      switch (field) {
        case 1:
          nodeStart = start;
          nodeEnd = end;
          break;
        case 2:
          typeUrl = buf.toString('utf8', start, end);
          break;
        case 3:
          subscribe ??= [];
          subscribe.push(buf.toString('utf8', start, end));
          break;
        case 4:
          unsubscribe ??= [];
          unsubscribe.push(buf.toString('utf8', start, end));
          break;
        case 5: {
          const [name, version] = mapEntry(buf.subarray(start, end));
          initial ??= new Map();
          initial.set(name, version);
          break;
        }
        case 6:
          nonce = buf.toString('utf8', start, end);
          break;
        case 7:
          errorDetail = decodeStatus(buf.subarray(start, end));
          break;
        default:
          break;
      }
    });
    return new DecodedDeltaRequest(
      buf,
      nodeStart,
      nodeEnd,
      typeUrl,
      subscribe ?? NO_NAMES,
      unsubscribe ?? NO_NAMES,
      initial ?? NO_VERSIONS,
      nonce,
      errorDetail,
    );
  } catch (err) {
    return { malformed: (err as Error).message };
  }
}

/** A map<string, string> entry: key is field 1, value field 2. */
function mapEntry(bytes: Buffer): [string, string] {
  let key = '';
  let value = '';
  const r = new WireReader(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WireType.Len)) key = r.string();
    else if (tag === ((2 << 3) | WireType.Len)) value = r.string();
    else r.skipField(tag & 7);
  }
  return [key, value];
}

/** `Resource {version: 1, resource: 2, name: 3}` of each snapshot resource, encoded once. */
const resourceBytes = new WeakMap<SnapshotResource, Uint8Array>();

function encodedResource(r: SnapshotResource): Uint8Array {
  let bytes = resourceBytes.get(r);
  if (bytes === undefined) {
    bytes = protobuf.Writer.create().uint32(0x0a).string(r.version).uint32(0x12).bytes(r.bytes).uint32(0x1a).string(r.name).finish();
    resourceBytes.set(r, bytes);
  }
  return bytes;
}

const bodies: WeakMap<TypeSnapshot, Memo2<readonly SnapshotResource[], readonly string[], Buffer>> = new WeakMap();

/**
 * DeltaDiscoveryResponse minus its nonce: field 1 system_version_info (the type's version), field
 * 2 the Resources, field 4 type_url, field 6 removed_resources. Memoised per (ts, upserts,
 * removed) by identity, so streams given the same (memoised) arrays share one body.
 */
export function encodeDeltaBody(ts: TypeSnapshot, upserts: readonly SnapshotResource[], removed: readonly string[]): Buffer {
  let byUpserts = bodies.get(ts);
  if (byUpserts === undefined) {
    byUpserts = new WeakMap();
    bodies.set(ts, byUpserts);
  }
  return memo2(byUpserts, upserts, removed, () => {
    const w = protobuf.Writer.create();
    w.uint32(0x0a).string(ts.version);
    for (const r of upserts) w.uint32(0x12).bytes(encodedResource(r));
    w.uint32(0x22).string(ts.typeUrl);
    for (const name of removed) w.uint32(0x32).string(name);
    const out = w.finish();
    return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  });
}
