/**
 * Just enough protobuf wire format for the benchmark's simulated clients and floor peer.
 *
 * In: DiscoveryResponse bytes (and google.protobuf.Any resources inside them).
 * Out: the four things a simulated client acts on (type_url, version_info, nonce, resource
 * names) and DiscoveryRequest bytes for ACKs and subscriptions; the same for Delta
 * (DeltaDiscoveryResponse / DeltaDiscoveryRequest).
 *
 * Why not protobufjs' generated decode: the load generator runs a thousand clients on the same two
 * cores as the server under test, so every microsecond it spends decoding is taken from the
 * server. A full decode would also unpack every Any; here (on the shared lazy WireReader,
 * src/envoy/wire-reader.ts) a resource is skipped unless its name is needed, and names are taken
 * from field 1 of the packed message (Cluster.name, Listener.name, RouteConfiguration.name and
 * ClusterLoadAssignment.cluster_name are all field 1).
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import { WireReader, WireType } from '../../src/envoy/wire-reader.js';

const WIRE_LEN = WireType.Len;

/**
 * Calls `onField` with the number and value bounds of each length-delimited field of a message
 * (the only kind the benchmark reads); other fields are skipped. Stops when onField returns false.
 */
function eachLen(buf: Uint8Array, onField: (no: number, start: number, end: number) => boolean | undefined): void {
  const r = new WireReader(buf);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if ((tag & 7) !== WIRE_LEN) {
      r.skipField(tag & 7);
      continue;
    }
    const end = r.lengthEnd();
    const start = r.pos;
    r.pos = end;
    if (onField(tag >>> 3, start, end) === false) return;
  }
}

const utf8 = new TextDecoder();

function text(buf: Uint8Array, start: number, end: number): string {
  return utf8.decode(buf.subarray(start, end));
}

/** The sub-slice of field `no` (first occurrence, length-delimited) of a message, or undefined. */
function firstLen(buf: Uint8Array, no: number): Uint8Array | undefined {
  let found: Uint8Array | undefined;
  eachLen(buf, (n, start, end) => {
    if (n !== no) return true;
    found = buf.subarray(start, end);
    return false;
  });
  return found;
}

function allLen(buf: Uint8Array, no: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  eachLen(buf, (n, start, end) => {
    if (n === no) out.push(buf.subarray(start, end));
  });
  return out;
}

export interface ResponseHead {
  readonly typeUrl: string;
  readonly versionInfo: string;
  readonly nonce: string;
  readonly resourceCount: number;
}

/** DiscoveryResponse: version_info = 1, resources = 2 (only counted), type_url = 4, nonce = 5. */
export function decodeResponseHead(buf: Uint8Array): ResponseHead {
  let typeUrl = '';
  let versionInfo = '';
  let nonce = '';
  let resourceCount = 0;
  eachLen(buf, (no, start, end) => {
    if (no === 1) versionInfo = text(buf, start, end);
    else if (no === 2) resourceCount++;
    else if (no === 4) typeUrl = text(buf, start, end);
    else if (no === 5) nonce = text(buf, start, end);
  });
  return { typeUrl, versionInfo, nonce, resourceCount };
}

/** The resources of a DiscoveryResponse: each an encoded google.protobuf.Any (a view into buf). */
export function responseResources(buf: Uint8Array): Uint8Array[] {
  return allLen(buf, 2);
}

/** google.protobuf.Any: type_url = 1, value = 2. */
export function anyValue(any: Uint8Array): Uint8Array {
  return firstLen(any, 2) ?? new Uint8Array(0);
}

/** Field 1 of the packed message: the resource's name for all four xDS types. */
export function resourceName(any: Uint8Array): string {
  const name = firstLen(anyValue(any), 1);
  return name ? utf8.decode(name) : '';
}

/**
 * RouteConfiguration names a Listener uses through RDS:
 * Listener.filter_chains (3) -> FilterChain.filters (3) -> Filter.typed_config (4, an Any)
 * -> HttpConnectionManager.rds (3) -> Rds.route_config_name (2). Other filters (tcp_proxy)
 * have no field 3, so they yield nothing.
 */
export function listenerRouteNames(any: Uint8Array): string[] {
  const names: string[] = [];
  for (const chain of allLen(anyValue(any), 3)) {
    for (const filter of allLen(chain, 3)) {
      const config = firstLen(filter, 4);
      if (!config) continue;
      const rds = firstLen(anyValue(config), 3);
      const name = rds ? firstLen(rds, 2) : undefined;
      if (name) names.push(utf8.decode(name));
    }
  }
  return names;
}

// ---- encoding ----

function varint(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A length-delimited field: tag, length, payload (as parts, joined once by the caller). */
function lenField(no: number, payload: Uint8Array, out: Uint8Array[]): void {
  out.push(varint(no * 8 + WIRE_LEN), varint(payload.length), payload);
}

function stringField(no: number, value: string, out: Uint8Array[]): void {
  if (value !== '') lenField(no, Buffer.from(value, 'utf8'), out);
}

/**
 * DiscoveryRequest.resource_names (field 3), encoded once per subscription: a client repeats the
 * same names in every ACK, and re-encoding a hundred strings per ACK would be load-generator CPU
 * taken from the server under test. Also DeltaDiscoveryRequest.resource_names_subscribe (3) and
 * _unsubscribe (4), given `field`.
 */
export function encodeResourceNames(names: readonly string[], field = 3): Buffer {
  const parts: Uint8Array[] = [];
  for (const name of names) stringField(field, name, parts);
  return Buffer.concat(parts);
}

export interface RequestFields {
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly responseNonce: string;
  /** From encodeResourceNames; empty for a wildcard subscription. */
  readonly resourceNames: Buffer;
  /** Only on a stream's first request, as Envoy does. */
  readonly node?: { readonly id: string; readonly cluster: string };
}

/**
 * DiscoveryRequest: version_info = 1, node = 2 (Node.id = 1, Node.cluster = 2),
 * resource_names = 3, type_url = 4, response_nonce = 5.
 */
export function encodeRequest(r: RequestFields): Buffer {
  const parts: Uint8Array[] = [];
  stringField(1, r.versionInfo, parts);
  if (r.node) nodeField(2, r.node, parts);
  parts.push(r.resourceNames);
  stringField(4, r.typeUrl, parts);
  stringField(5, r.responseNonce, parts);
  return Buffer.concat(parts);
}

function nodeField(no: number, node: { readonly id: string; readonly cluster: string }, out: Uint8Array[]): void {
  const fields: Uint8Array[] = [];
  stringField(1, node.id, fields);
  stringField(2, node.cluster, fields);
  lenField(no, Buffer.concat(fields), out);
}

export interface DeltaRequestFields {
  readonly typeUrl: string;
  /** The nonce of the response this request ACKs; empty for a subscription change. */
  readonly responseNonce: string;
  /** From encodeResourceNames(names, 3) and (names, 4); empty buffers when unchanged. */
  readonly subscribe: Buffer;
  readonly unsubscribe: Buffer;
  /** Only on a stream's first request, as Envoy does. */
  readonly node?: { readonly id: string; readonly cluster: string };
}

/**
 * DeltaDiscoveryRequest: node = 1, type_url = 2, resource_names_subscribe = 3,
 * resource_names_unsubscribe = 4, response_nonce = 6.
 */
export function encodeDeltaRequest(r: DeltaRequestFields): Buffer {
  const parts: Uint8Array[] = [];
  if (r.node) nodeField(1, r.node, parts);
  stringField(2, r.typeUrl, parts);
  parts.push(r.subscribe, r.unsubscribe);
  stringField(6, r.responseNonce, parts);
  return Buffer.concat(parts);
}

export interface DeltaResponseHead {
  readonly typeUrl: string;
  readonly nonce: string;
  /** Each an encoded discovery.v3.Resource (a view into the response). */
  readonly resources: readonly Uint8Array[];
  readonly removed: readonly string[];
}

/** DeltaDiscoveryResponse: resources = 2, type_url = 4, nonce = 5, removed_resources = 6. */
export function decodeDeltaResponseHead(buf: Uint8Array): DeltaResponseHead {
  let typeUrl = '';
  let nonce = '';
  const resources: Uint8Array[] = [];
  const removed: string[] = [];
  eachLen(buf, (no, start, end) => {
    if (no === 2) resources.push(buf.subarray(start, end));
    else if (no === 4) typeUrl = text(buf, start, end);
    else if (no === 5) nonce = text(buf, start, end);
    else if (no === 6) removed.push(text(buf, start, end));
  });
  return { typeUrl, nonce, resources, removed };
}

/** discovery.v3.Resource: name = 3. */
export function deltaResourceName(resource: Uint8Array): string {
  const name = firstLen(resource, 3);
  return name ? utf8.decode(name) : '';
}

/** discovery.v3.Resource: resource = 2, the encoded google.protobuf.Any. */
export function deltaResourceAny(resource: Uint8Array): Uint8Array {
  return firstLen(resource, 2) ?? new Uint8Array(0);
}

const identity = (b: Buffer): Buffer => b;

/**
 * A bidirectional-streaming gRPC method whose messages grpc-js passes through as bytes: the
 * benchmark's servers encode and decode them with the functions above.
 */
export function rawStreamingMethod(path: string): MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** gRPC length-prefixed message: 1 byte "compressed" flag (0), 4 bytes big-endian length. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * Splits a byte stream into gRPC messages. A message that spans several chunks (HTTP/2 DATA
 * frames carry at most 16 KB) is kept as a list of chunks and copied once, when its last byte
 * arrives, as grpc-js's own decoder does; messages inside one chunk are views, never copied.
 * (Joining the pending bytes with every new chunk instead would copy a message once per frame it
 * spans, load-generator CPU that grows with message size and is taken from the server under test.)
 */
export class GrpcMessageReader {
  /** Chunks of a message not complete yet (the first one starts at its 5-byte prefix). */
  #chunks: Buffer[] = [];
  #buffered = 0;

  /** Feed a chunk; returns the complete messages it finished. */
  push(chunk: Buffer): Buffer[] {
    const messages: Buffer[] = [];
    let buf = chunk;
    if (this.#chunks.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      const first = this.#headOfPending();
      if (first === undefined) return messages;
      const need = 5 + this.#lengthOf(first);
      if (this.#buffered < need) return messages;
      // The message is complete: one copy of exactly its bytes; the rest of the last chunk is a view.
      const whole = Buffer.concat(this.#chunks, need);
      this.#chunks = [];
      const rest = this.#buffered - need;
      this.#buffered = 0;
      messages.push(whole.subarray(5));
      buf = chunk.subarray(chunk.length - rest);
    }
    while (buf.length >= 5) {
      const length = this.#lengthOf(buf);
      if (buf.length < 5 + length) break;
      messages.push(buf.subarray(5, 5 + length));
      buf = buf.subarray(5 + length);
    }
    if (buf.length > 0) {
      this.#chunks.push(buf);
      this.#buffered = buf.length;
    }
    return messages;
  }

  /** The pending bytes' first chunk, joined with the next ones if the 5-byte prefix spans them. */
  #headOfPending(): Buffer | undefined {
    if (this.#buffered < 5) return undefined;
    let first = this.#chunks[0];
    if (first !== undefined && first.length < 5) {
      first = Buffer.concat(this.#chunks);
      this.#chunks = [first];
    }
    return first;
  }

  #lengthOf(buf: Buffer): number {
    if (buf[0] !== 0) throw new Error('compressed gRPC messages are not supported');
    return buf.readUInt32BE(1);
  }
}

export interface RequestHead {
  readonly typeUrl: string;
  readonly versionInfo: string;
  readonly responseNonce: string;
  /** error_detail is set: the client rejected the response it names. */
  readonly nack: boolean;
}

/** DiscoveryRequest: version_info = 1, type_url = 4, response_nonce = 5, error_detail = 6. */
export function decodeRequestHead(buf: Uint8Array): RequestHead {
  let typeUrl = '';
  let versionInfo = '';
  let responseNonce = '';
  let nack = false;
  eachLen(buf, (no, start, end) => {
    if (no === 1) versionInfo = text(buf, start, end);
    else if (no === 4) typeUrl = text(buf, start, end);
    else if (no === 5) responseNonce = text(buf, start, end);
    else if (no === 6) nack = true;
  });
  return { typeUrl, versionInfo, responseNonce, nack };
}

/** DiscoveryResponse with version_info = 1, resources = 2 (encoded Any each), type_url = 4, nonce = 5. */
export function encodeResponse(versionInfo: string, typeUrl: string, nonce: string, resources: readonly Uint8Array[]): Buffer {
  const parts: Uint8Array[] = [];
  stringField(1, versionInfo, parts);
  for (const any of resources) lenField(2, any, parts);
  stringField(4, typeUrl, parts);
  stringField(5, nonce, parts);
  return Buffer.concat(parts);
}
