/**
 * Wire format of the SotW discovery messages, kept out of the protocol logic.
 *
 * In (requests): the bytes grpc-js hands the method's deserializer. Out: an XdsRequest, or a
 * MalformedRequest marker instead of an exception, so the session decides what a bad message
 * costs (that stream, never the server).
 *
 * In (responses): a shared body (version_info + the snapshot's cached Any bytes + type_url),
 * encoded once per (type version, resource selection) and reused by every stream, plus a
 * per-stream nonce. Out: the DiscoveryResponse bytes: the shared body with field 5 (nonce)
 * appended. No resource is ever protobuf-encoded here.
 */
import protobuf from 'protobufjs';
import { messageType, TO_OBJECT } from '../envoy/protos.js';
import type { JsonValue, NodeInfo } from '../cache/node-info.js';

export interface XdsRequest {
  readonly versionInfo: string;
  /** The raw core.v3.Node; only converted (nodeInfoOf) when the stream has no node yet. */
  readonly node: protobuf.Message | undefined;
  readonly resourceNames: readonly string[];
  readonly typeUrl: string;
  readonly responseNonce: string;
  /** Set on a NACK. */
  readonly errorDetail: { readonly code: number; readonly message: string } | undefined;
}

export interface MalformedRequest {
  readonly malformed: string;
}

export type IncomingRequest = XdsRequest | MalformedRequest;

/** What the session writes to the call; the method's serializer turns it into bytes. */
export interface OutgoingResponse {
  readonly shared: Buffer;
  readonly nonce: string;
}

let requestType: protobuf.Type | undefined;

interface DecodedRequest {
  version_info: string;
  node: protobuf.Message | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail: { code: number; message: string } | null;
}

export function decodeRequest(bytes: Buffer): IncomingRequest {
  requestType ??= messageType('envoy.service.discovery.v3.DiscoveryRequest');
  let m: DecodedRequest;
  try {
    m = requestType.decode(bytes) as unknown as DecodedRequest;
  } catch (err) {
    return { malformed: (err as Error).message };
  }
  return {
    versionInfo: m.version_info,
    node: m.node ?? undefined,
    resourceNames: m.resource_names,
    typeUrl: m.type_url,
    responseNonce: m.response_nonce,
    errorDetail: m.error_detail ? { code: m.error_detail.code, message: m.error_detail.message } : undefined,
  };
}

let nodeType: protobuf.Type | undefined;

/** core.v3.Node -> NodeInfo (metadata Struct as plain JSON). */
export function nodeInfoOf(node: protobuf.Message): NodeInfo {
  nodeType ??= messageType('envoy.config.core.v3.Node');
  const o = nodeType.toObject(node, TO_OBJECT) as {
    id?: string;
    cluster?: string;
    user_agent_name?: string;
    user_agent_version?: string;
    user_agent_build_version?: { version?: { major_number?: number; minor_number?: number; patch?: number } };
    locality?: { region?: string; zone?: string; sub_zone?: string };
    metadata?: StructObject;
  };
  const build = o.user_agent_build_version?.version;
  return Object.freeze({
    id: o.id ?? '',
    cluster: o.cluster ?? '',
    userAgentName: o.user_agent_name ?? '',
    userAgentVersion: o.user_agent_version ?? (build ? `${build.major_number ?? 0}.${build.minor_number ?? 0}.${build.patch ?? 0}` : ''),
    ...(o.locality ? { locality: Object.freeze({ ...o.locality }) } : {}),
    metadata: Object.freeze(structToJson(o.metadata)),
  });
}

interface StructObject {
  fields?: Record<string, ValueObject>;
}
interface ValueObject {
  null_value?: unknown;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: StructObject;
  list_value?: { values?: ValueObject[] };
}

function structToJson(s: StructObject | undefined): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: ValueObject): JsonValue {
  if (v.string_value !== undefined) return v.string_value;
  if (v.number_value !== undefined) return v.number_value;
  if (v.bool_value !== undefined) return v.bool_value;
  if (v.struct_value !== undefined) return structToJson(v.struct_value);
  if (v.list_value !== undefined) return (v.list_value.values ?? []).map(valueToJson);
  return null;
}

/**
 * DiscoveryResponse minus its nonce: field 1 version_info, field 2 (repeated) the resources'
 * cached Any bytes, field 4 type_url. Encoded once, shared by every stream.
 */
export function encodeSharedResponse(versionInfo: string, typeUrl: string, resources: readonly { readonly bytes: Uint8Array }[]): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(0x0a).string(versionInfo);
  for (const r of resources) w.uint32(0x12).bytes(r.bytes);
  w.uint32(0x22).string(typeUrl);
  const out = w.finish();
  return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** Nonces we make are short ASCII, so field 5 is: tag, one length byte, the characters. */
const NONCE_TAG = 0x2a;

/** The method's response serializer: shared body + this stream's nonce. */
export function serializeResponse(r: OutgoingResponse): Buffer {
  const n = r.nonce.length;
  if (n > 127) throw new RangeError(`nonce too long (${n})`);
  const base = r.shared.length;
  const out = Buffer.allocUnsafe(base + 2 + n);
  r.shared.copy(out, 0);
  out[base] = NONCE_TAG;
  out[base + 1] = n;
  out.write(r.nonce, base + 2, 'latin1');
  return out;
}
