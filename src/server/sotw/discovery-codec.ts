/**
 * Wire format of the SotW discovery messages, kept out of the protocol logic.
 *
 * Requests: a lean DiscoveryRequest reader on the shared WireReader (envoy/wire-reader.ts). It
 * reads the scalars, keeps the node
 * and the resource names as byte ranges and decodes them only on demand: Envoy repeats its node
 * and its full subscription (hundreds of EDS names) in every ACK, and the session only needs them
 * when they changed, which it sees by comparing the names' raw bytes. Undecodable bytes give a
 * MalformedRequest marker instead of an exception, so the session decides what a bad message
 * costs (that stream, never the server).
 *
 * Responses: version_info + the snapshot's cached Any bytes + type_url + nonce, encoded once and
 * written as is to every stream that sends the same thing (see response-cache.ts). No resource is
 * ever protobuf-encoded here.
 */
import protobuf from 'protobufjs';
import { messageType } from '../../envoy/protos.js';
import { WireReader, WireType } from '../../envoy/wire-reader.js';
import type { NodeInfo } from '../../cache/node-info.js';
import { TypeUrl } from '../../xds/resource-types.js';
import type { MalformedRequest, StreamRequest } from '../stream-session.js';
import { nodeInfoOf } from '../node-codec.js';

export interface XdsRequest extends StreamRequest {
  readonly versionInfo: string;
  readonly responseNonce: string;
  /** Set on a NACK. */
  readonly errorDetail: { readonly code: number; readonly message: string } | undefined;
  /** The encoded resource_names fields (a view into the message; copy it to keep it), or undefined if not contiguous. */
  readonly namesRaw: Buffer | undefined;
  /** resource_names, decoded on demand. */
  resourceNames(): string[];
}

export type IncomingRequest = XdsRequest | MalformedRequest;

const EMPTY = Buffer.alloc(0);

/** DiscoveryRequest.resource_names: field 3, length-delimited. */
const NAME_TAG = (3 << 3) | WireType.Len;

class DecodedRequest implements XdsRequest {
  constructor(
    private readonly buf: Buffer,
    readonly typeUrl: string,
    readonly responseNonce: string,
    readonly errorDetail: { readonly code: number; readonly message: string } | undefined,
    readonly namesRaw: Buffer | undefined,
    private readonly versionStart: number,
    private readonly versionEnd: number,
    private readonly nodeStart: number,
    private readonly nodeEnd: number,
  ) {}

  get versionInfo(): string {
    return this.versionStart < 0 ? '' : this.buf.toString('utf8', this.versionStart, this.versionEnd);
  }

  get hasNode(): boolean {
    return this.nodeStart >= 0;
  }

  resourceNames(): string[] {
    const names: string[] = [];
    const r = new WireReader(this.buf);
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === NAME_TAG) names.push(r.string());
      else r.skipField(tag & 7);
    }
    return names;
  }

  node(): NodeInfo | undefined {
    return this.nodeStart < 0 ? undefined : nodeInfoOf(this.buf.subarray(this.nodeStart, this.nodeEnd));
  }
}

/** The type URLs we serve, as bytes: a request's type_url is matched without decoding it. */
const KNOWN_TYPE_URLS: ReadonlyArray<readonly [Buffer, string]> = Object.values(TypeUrl).map((u) => [Buffer.from(u), u] as const);

/**
 * The method's request deserializer: one pass over the fields; only the nonce is decoded as a
 * string (the type URL is matched against the known ones), everything else is kept as offsets.
 */
export function decodeRequest(buf: Buffer): IncomingRequest {
  try {
    let typeUrl = '';
    let nonce = '';
    let errorDetail: { code: number; message: string } | undefined;
    let versionStart = -1;
    let versionEnd = -1;
    let nodeStart = -1;
    let nodeEnd = -1;
    let namesStart = -1;
    let namesEnd = -1;
    let contiguous = true;
    new WireReader(buf).lenFields((field, start, end, tagStart) => {
      switch (field) {
        case 1:
          versionStart = start;
          versionEnd = end;
          break;
        case 2:
          nodeStart = start;
          nodeEnd = end;
          break;
        case 3:
          if (namesStart < 0) namesStart = tagStart;
          else if (namesEnd !== tagStart) contiguous = false;
          namesEnd = end;
          break;
        case 4:
          typeUrl = typeUrlOf(buf, start, end);
          break;
        case 5:
          nonce = buf.toString('utf8', start, end);
          break;
        case 6:
          errorDetail = decodeStatus(buf.subarray(start, end));
          break;
        default:
          break;
      }
    });
    const namesRaw = namesStart < 0 ? EMPTY : contiguous ? buf.subarray(namesStart, namesEnd) : undefined;
    return new DecodedRequest(buf, typeUrl, nonce, errorDetail, namesRaw, versionStart, versionEnd, nodeStart, nodeEnd);
  } catch (err) {
    return { malformed: (err as Error).message };
  }
}

function typeUrlOf(buf: Buffer, start: number, end: number): string {
  for (const [bytes, url] of KNOWN_TYPE_URLS) {
    if (bytes.length === end - start && buf.compare(bytes, 0, bytes.length, start, end) === 0) return url;
  }
  return buf.toString('utf8', start, end);
}

let statusType: protobuf.Type | undefined;

/** google.rpc.Status, the error_detail of a NACK (in both protocols' requests). */
export function decodeStatus(bytes: Buffer): { code: number; message: string } {
  statusType ??= messageType('google.rpc.Status');
  const s = statusType.decode(bytes) as unknown as { code: number; message: string };
  return { code: s.code, message: s.message };
}

/**
 * DiscoveryResponse minus its nonce: field 1 version_info, field 2 (repeated) the resources'
 * cached Any bytes, field 4 type_url.
 */
export function encodeResponseBody(versionInfo: string, typeUrl: string, resources: readonly { readonly bytes: Uint8Array }[]): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(0x0a).string(versionInfo);
  for (const r of resources) w.uint32(0x12).bytes(r.bytes);
  w.uint32(0x22).string(typeUrl);
  const out = w.finish();
  return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** Nonces we make are short ASCII, so field 5 is: tag, one length byte, the characters. */
const NONCE_TAG = 0x2a;

/** gRPC's length prefix: a compressed flag (0) and the message length, big-endian. */
export const GRPC_FRAME_HEADER = 5;

/**
 * A complete DiscoveryResponse (the body with field 5, the nonce, appended) behind gRPC's 5-byte
 * length prefix: the exact bytes of one message on an HTTP/2 stream, so the same Buffer can be
 * written to every stream as it is (../response-writer.ts). `.subarray(GRPC_FRAME_HEADER)` is the
 * bare message, for grpc-js to frame itself.
 */
export function framedWithNonce(body: Buffer, nonce: string): Buffer {
  const n = nonce.length;
  if (n > 127) throw new RangeError(`nonce too long (${n})`);
  const size = body.length + 2 + n;
  const out = Buffer.allocUnsafe(GRPC_FRAME_HEADER + size);
  out[0] = 0; // not compressed
  out.writeUInt32BE(size, 1);
  body.copy(out, GRPC_FRAME_HEADER);
  out[GRPC_FRAME_HEADER + body.length] = NONCE_TAG;
  out[GRPC_FRAME_HEADER + body.length + 1] = n;
  out.write(nonce, GRPC_FRAME_HEADER + body.length + 2, 'latin1');
  return out;
}

/** A complete DiscoveryResponse: the body with field 5 (nonce) appended. */
export function withNonce(body: Buffer, nonce: string): Buffer {
  return framedWithNonce(body, nonce).subarray(GRPC_FRAME_HEADER);
}
