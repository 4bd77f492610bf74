/**
 * StreamAccessLogsMessage bytes -> the stream identifier (if present) and one AccessRecord per
 * HTTP or TCP entry. In: the protobuf wire bytes of `envoy.service.accesslog.v3.StreamAccessLogsMessage`.
 * Out: flat records with the fields we log and aggregate; everything else is skipped unread.
 *
 * Why not protobufjs' generated decode: it materialises every field of every entry (header maps,
 * TLS properties, metadata, a Long object per uint64, an object per Duration, Timestamp and
 * Address) only for us to read a dozen values back out. This reader walks the wire format once
 * with the shared WireReader (envoy/wire-reader.ts, protobufjs' Reader underneath) and allocates
 * one record per entry, with no string for the values that differ on every entry (see
 * WireRecord); scripts/bench-als.ts compares the two.
 * Field numbers are those of envoy/data/accesslog/v3/accesslog.proto and
 * envoy/service/accesslog/v3/als.proto; test/unit/als/decode.test.ts checks this reader
 * against protobufjs on the same bytes.
 *
 * Malformed input (truncated, a length past the end, a group or unknown wire type) throws
 * AlsDecodeError; grpc-js then ends that one stream with INTERNAL.
 */
import { FLAG_CODE_BY_FIELD, PROTOCOL_BY_HTTP_VERSION, UNAUTHORIZED_FLAG_FIELD } from '../envoy/access-log-fields.js';
import { envoyRoot } from '../envoy/protos.js';
import { WireReader, WireType } from '../envoy/wire-reader.js';
import { ConsulXdsError } from '../errors.js';
import type { AccessRecord, StreamIdentity } from './access-record.js';

export class AlsDecodeError extends ConsulXdsError {
  constructor(message: string) {
    super('CXDS_ALS_DECODE', `access log message: ${message}`);
  }
}

export interface DecodedAlsMessage {
  /** Present on the first message of a stream (Envoy sends it once). */
  readonly identifier?: StreamIdentity;
  readonly records: readonly AccessRecord[];
}

let methodNames: readonly string[] | undefined;
/** core.v3.RequestMethod names by number, read from the loaded proto (not written twice). */
function methodName(n: number): string {
  if (n === 0) return '';
  if (!methodNames) {
    const names: string[] = [];
    for (const [id, name] of Object.entries(envoyRoot().lookupEnum('envoy.config.core.v3.RequestMethod').valuesById)) names[Number(id)] = name;
    methodNames = names;
  }
  return methodNames[n] ?? String(n);
}

/**
 * One record; a class so every instance has the same shape (the formatter's reads stay monomorphic).
 * The values that differ on every entry (path, request id, the downstream address) are not made
 * into strings here: the JSON line copies them from the message's own UTF-8 bytes and writes the
 * port as digits (json-line.ts). Reading `path`, `requestId` or `downstream` makes
 * the string on demand.
 */
export class WireRecord implements AccessRecord {
  kind: 'http' | 'tcp';
  /** The message bytes the raw fields below point into. */
  readonly src: Buffer;
  startMs = 0;
  method = '';
  authority = '';
  pathStart = 0;
  pathEnd = 0;
  protocol = '';
  status = 0;
  route = '';
  cluster = '';
  upstreamHost = '';
  /** The downstream address: IP (or a pipe's path) as bytes, and port, -1 when there is none (a pipe, or no address). */
  downstreamStart = 0;
  downstreamEnd = 0;
  downstreamPort = -1;
  durationMs = -1;
  lastDownstreamTxMs = -1;
  upstreamMs = -1;
  bytesIn = 0;
  bytesOut = 0;
  flags = '';
  requestIdStart = 0;
  requestIdEnd = 0;
  userAgent = '';
  details = '';
  constructor(kind: 'http' | 'tcp', src: Buffer) {
    this.kind = kind;
    this.src = src;
  }
  get path(): string {
    return this.src.toString('utf8', this.pathStart, this.pathEnd);
  }
  get requestId(): string {
    return this.src.toString('utf8', this.requestIdStart, this.requestIdEnd);
  }
  get downstream(): string {
    const host = this.src.toString('utf8', this.downstreamStart, this.downstreamEnd);
    return this.downstreamPort < 0 ? host : `${host}:${this.downstreamPort}`;
  }
}

/**
 * Short strings that repeat from entry to entry (cluster, route, authority, user agent, upstream
 * address) are looked up by their bytes instead of being decoded again: a byte loop is cheaper
 * than creating a string, and repeated values then share one string. Direct-mapped and fixed in
 * size, so it never grows; a collision simply replaces the slot.
 */
const INTERN_SLOTS = 1024;
const INTERN_MAX_BYTES = 48;
const internBytes: Array<Uint8Array | undefined> = new Array(INTERN_SLOTS);
const internStrings: string[] = new Array<string>(INTERN_SLOTS).fill('');
/** Which decoding made the slot's string: the same bytes read as another kind must not match. */
const internDecoders: Array<Decode | undefined> = new Array(INTERN_SLOTS);

type Decode = (buf: Buffer, start: number, end: number) => string;

const utf8: Decode = (buf, start, end) => buf.toString('utf8', start, end);

/** The string `decode` makes of buf[start, end), from the table when these bytes were seen. */
function intern(buf: Buffer, start: number, end: number, decode: Decode): string {
  const n = end - start;
  if (n > INTERN_MAX_BYTES) return decode(buf, start, end);
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  const slot = (h >>> 0) & (INTERN_SLOTS - 1);
  const known = internBytes[slot];
  if (known !== undefined && known.length === n && internDecoders[slot] === decode) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (known[i] !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return internStrings[slot]!;
  }
  const s = decode(buf, start, end);
  internBytes[slot] = Uint8Array.prototype.slice.call(buf, start, end);
  internStrings[slot] = s;
  internDecoders[slot] = decode;
  return s;
}

const WIRE_VARINT = WireType.Varint;
const WIRE_LEN = WireType.Len;

/** A length-delimited field whose values repeat, decoded by `decode` (see intern). */
function common(r: WireReader, decode: Decode = utf8): string {
  const stop = r.lengthEnd();
  const start = r.pos;
  r.pos = stop;
  return intern(r.buf, start, stop, decode);
}

export function decodeAlsMessage(bytes: Uint8Array): DecodedAlsMessage {
  const r = new WireReader(bytes);
  let identifier: StreamIdentity | undefined;
  const records: AccessRecord[] = [];
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wt = tag & 7;
      if (wt === WIRE_LEN && field === 1) identifier = readIdentifier(r);
      else if (wt === WIRE_LEN && (field === 2 || field === 3)) readEntries(r, field === 2 ? 'http' : 'tcp', records);
      else r.skipField(wt);
    }
  } catch (err) {
    if (err instanceof RangeError) throw new AlsDecodeError(err.message);
    throw err;
  }
  return identifier ? { identifier, records } : { records };
}

// Each reader below starts at a length prefix, reads its message up to `end`, and checks that it
// ended there (a field that ran past it means the lengths lie).

/** LogEntriesIdentifier {1: node {1: id, 2: cluster}, 2: log_name}. */
function readIdentifier(r: WireReader): StreamIdentity {
  let node = '';
  let cluster = '';
  let logName = '';
  const end = r.lengthEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 0x0a) {
      const nodeEnd = r.lengthEnd();
      while (r.pos < nodeEnd) {
        const t = r.uint32();
        if (t === 0x0a) node = r.string();
        else if (t === 0x12) cluster = r.string();
        else r.skipField(t & 7);
      }
      r.endsAt(nodeEnd);
    } else if (tag === 0x12) logName = r.string();
    else r.skipField(tag & 7);
  }
  r.endsAt(end);
  return Object.freeze({ node, cluster, logName });
}

/** HTTPAccessLogEntries / TCPAccessLogEntries: field 1, repeated entries. */
function readEntries(r: WireReader, kind: 'http' | 'tcp', out: AccessRecord[]): void {
  const end = r.lengthEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 0x0a) out.push(readEntry(r, kind));
    else r.skipField(tag & 7);
  }
  r.endsAt(end);
}

function readEntry(r: WireReader, kind: 'http' | 'tcp'): WireRecord {
  const rec = new WireRecord(kind, r.buf);
  const end = r.lengthEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === WIRE_LEN) readCommon(r, rec);
    else if (kind === 'http' && field === 2 && wt === WIRE_VARINT) rec.protocol = PROTOCOL_BY_HTTP_VERSION[r.uint53()] ?? '';
    else if (kind === 'http' && field === 3 && wt === WIRE_LEN) readRequest(r, rec);
    else if (kind === 'http' && field === 4 && wt === WIRE_LEN) readResponse(r, rec);
    else if (kind === 'tcp' && field === 2 && wt === WIRE_LEN) readConnection(r, rec);
    else r.skipField(wt);
  }
  r.endsAt(end);
  if (rec.durationMs < 0) rec.durationMs = Math.max(rec.lastDownstreamTxMs, 0);
  return rec;
}

/** AccessLogCommon. */
function readCommon(r: WireReader, rec: WireRecord): void {
  const end = r.lengthEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    const wt = tag & 7;
    if (wt !== WIRE_LEN) {
      r.skipField(wt);
      continue;
    }
    switch (tag >>> 3) {
      case 2: {
        const end = r.lengthEnd();
        readAddressFields(r, end);
        r.endsAt(end);
        rec.downstreamStart = addressStart;
        rec.downstreamEnd = addressEnd;
        rec.downstreamPort = addressPort;
        break;
      }
      case 5:
        rec.startMs = readTimeMs(r, true);
        break;
      case 9:
        rec.upstreamMs = readTimeMs(r, false);
        break;
      case 12:
        rec.lastDownstreamTxMs = readTimeMs(r, false);
        break;
      case 13:
        rec.upstreamHost = common(r, addressOf);
        break;
      case 15:
        rec.cluster = common(r);
        break;
      case 16:
        rec.flags = readFlags(r);
        break;
      case 19:
        rec.route = common(r);
        break;
      case 23:
        rec.durationMs = readTimeMs(r, false);
        break;
      default:
        r.skipField(wt);
    }
  }
  r.endsAt(end);
}

/** google.protobuf.Duration or Timestamp {1: seconds, 2: nanos} in ms (a Timestamp to whole ms). */
function readTimeMs(r: WireReader, wholeMs: boolean): number {
  let seconds = 0;
  let nanos = 0;
  const end = r.lengthEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 0x08) seconds = r.uint53();
    else if (tag === 0x10) nanos = r.uint53();
    else r.skipField(tag & 7);
  }
  r.endsAt(end);
  return seconds * 1000 + (wholeMs ? Math.floor(nanos / 1e6) : nanos / 1e6);
}

// What readAddressFields read last (module state rather than an object per address).
let addressStart = 0;
let addressEnd = 0;
let addressPort = -1;

/**
 * core.v3.Address fields up to `end`: socket_address (1) {address 2, port_value 3}, or pipe (2)
 * {path 1} with port -1, into where the address's bytes are and the port. The last one present
 * wins; none leaves an empty address and -1.
 */
function readAddressFields(r: WireReader, end: number): void {
  addressStart = addressEnd = 0;
  addressPort = -1;
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if ((tag & 7) !== WIRE_LEN || (field !== 1 && field !== 2)) {
      r.skipField(tag & 7);
      continue;
    }
    const inner = r.lengthEnd();
    addressStart = addressEnd = 0;
    let port = 0;
    while (r.pos < inner) {
      const t = r.uint32();
      if ((t === 0x12 && field === 1) || (t === 0x0a && field === 2)) {
        addressEnd = r.lengthEnd();
        addressStart = r.pos;
        r.pos = addressEnd;
      } else if (t === 0x18 && field === 1) port = r.uint53();
      else r.skipField(t & 7);
    }
    r.endsAt(inner);
    addressPort = field === 1 ? port : -1;
  }
}

/** An Address message on its own as "ip:port" or the pipe's path (for intern: the upstream host repeats, so it is looked up whole). */
const addressOf: Decode = (buf, start, end) => {
  const r = new WireReader(buf);
  r.pos = start;
  readAddressFields(r, end);
  r.endsAt(end);
  const host = buf.toString('utf8', addressStart, addressEnd);
  return addressPort < 0 ? host : `${host}:${addressPort}`;
};

/** ResponseFlags: bools by field number (13 is a message: present means UAEX). */
function readFlags(r: WireReader): string {
  let out = '';
  const end = r.lengthEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    let set: boolean;
    if ((tag & 7) === WIRE_VARINT) set = r.uint53() !== 0;
    else {
      r.skipField(tag & 7);
      set = field === UNAUTHORIZED_FLAG_FIELD;
    }
    const code = set ? FLAG_CODE_BY_FIELD[field] : undefined;
    if (code) out = out === '' ? code : `${out},${code}`;
  }
  r.endsAt(end);
  return out;
}

/** HTTPRequestProperties. */
function readRequest(r: WireReader, rec: WireRecord): void {
  const end = r.lengthEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 0x08:
        rec.method = methodName(r.uint53());
        break; // 1 request_method
      case 0x1a:
        rec.authority = common(r);
        break; // 3 authority
      case 0x2a: {
        // 5 path
        rec.pathEnd = r.lengthEnd();
        rec.pathStart = r.pos;
        r.pos = rec.pathEnd;
        break;
      }
      case 0x32:
        rec.userAgent = common(r);
        break; // 6 user_agent
      case 0x4a: {
        // 9 request_id
        rec.requestIdEnd = r.lengthEnd();
        rec.requestIdStart = r.pos;
        r.pos = rec.requestIdEnd;
        break;
      }
      case 0x60:
        rec.bytesIn = r.uint53();
        break; // 12 request_body_bytes
      default:
        r.skipField(tag & 7);
    }
  }
  r.endsAt(end);
}

/** HTTPResponseProperties. */
function readResponse(r: WireReader, rec: WireRecord): void {
  const end = r.lengthEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 0x0a: {
        // 1 response_code (UInt32Value {1: value})
        const inner = r.lengthEnd();
        while (r.pos < inner) {
          const t = r.uint32();
          if (t === 0x08) rec.status = r.uint53();
          else r.skipField(t & 7);
        }
        r.endsAt(inner);
        break;
      }
      case 0x18:
        rec.bytesOut = r.uint53();
        break; // 3 response_body_bytes
      case 0x32:
        rec.details = common(r);
        break; // 6 response_code_details
      default:
        r.skipField(tag & 7);
    }
  }
  r.endsAt(end);
}

/** TCP ConnectionProperties {1: received_bytes, 2: sent_bytes}. */
function readConnection(r: WireReader, rec: WireRecord): void {
  const end = r.lengthEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 0x08) rec.bytesIn = r.uint53();
    else if (tag === 0x10) rec.bytesOut = r.uint53();
    else r.skipField(tag & 7);
  }
  r.endsAt(end);
}
