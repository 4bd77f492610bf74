/**
 * StreamAccessLogsMessage bytes -> the stream identifier (if present) and one AccessRecord per
 * HTTP or TCP entry. In: the protobuf wire bytes of `envoy.service.accesslog.v3.StreamAccessLogsMessage`.
 * Out: flat records with the fields we log and aggregate; everything else is skipped unread.
 *
 * Why not protobufjs' generated decode: it materialises every field of every entry (header maps,
 * TLS properties, metadata, a Long object per uint64, an object per Duration, Timestamp and
 * Address) only for us to read a dozen values back out. This reader walks the wire format once
 * and allocates one record and its strings per entry; scripts/bench-als.ts compares the two.
 * Field numbers are those of envoy/data/accesslog/v3/accesslog.proto and
 * envoy/service/accesslog/v3/als.proto; test/unit/sidecar-als-decode.test.ts checks this reader
 * against protobufjs on the same bytes.
 *
 * Malformed input (truncated, a length past the end, a group or unknown wire type) throws
 * AlsDecodeError; grpc-js then ends that one stream with INTERNAL.
 */
import { envoyRoot } from '../envoy/protos.js';
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

/** Envoy's %RESPONSE_FLAGS% short codes by ResponseFlags field number (accesslog.proto). */
const FLAG_BY_FIELD: readonly string[] = [
  '', 'LH', 'UH', 'UT', 'LR', 'UR', 'UF', 'UC', 'UO', 'NR', 'DI', 'FI', 'RL', 'UAEX', 'RLSE', 'DC', 'URX', 'SI', 'IH', 'DPE',
  'UMSDR', 'RFCF', 'NFCF', 'DT', 'UPE', 'NC', 'OM', 'DF', 'DR',
];

/** HTTPAccessLogEntry.HTTPVersion by number. */
const PROTOCOLS: readonly string[] = ['', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2', 'HTTP/3'];

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

/** One record; a class so every instance has the same shape (the formatter's reads stay monomorphic). */
class Rec implements AccessRecord {
  kind: 'http' | 'tcp';
  startMs = 0;
  method = '';
  authority = '';
  path = '';
  protocol = '';
  status = 0;
  route = '';
  cluster = '';
  upstreamHost = '';
  downstream = '';
  durationMs = -1;
  lastDownstreamTxMs = -1;
  upstreamMs = -1;
  bytesIn = 0;
  bytesOut = 0;
  flags = '';
  requestId = '';
  userAgent = '';
  details = '';
  constructor(kind: 'http' | 'tcp') {
    this.kind = kind;
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

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** A cursor over the bytes; every nested message is read up to its own `end`. */
class Wire {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  /** A varint as a double: exact up to 2^53, which covers every counter, time and enum we read. */
  varint(end: number): number {
    const buf = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw new AlsDecodeError(`truncated varint at byte ${this.pos}`);
      const b = buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new AlsDecodeError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** A length-delimited field: returns its end offset (the cursor is at its first byte). */
  len(end: number): number {
    const n = this.varint(end);
    const stop = this.pos + n;
    if (stop > end) throw new AlsDecodeError(`length ${n} at byte ${this.pos} runs past its message`);
    return stop;
  }

  string(end: number): string {
    const stop = this.len(end);
    const s = this.buf.toString('utf8', this.pos, stop);
    this.pos = stop;
    return s;
  }

  /** A length-delimited field whose values repeat, decoded by `decode` (see intern). */
  common(end: number, decode: Decode = utf8): string {
    const stop = this.len(end);
    const start = this.pos;
    this.pos = stop;
    return intern(this.buf, start, stop, decode);
  }

  skip(wireType: number, end: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint(end);
        return;
      case WIRE_I64:
        this.pos += 8;
        break;
      case WIRE_LEN:
        this.pos = this.len(end);
        return;
      case WIRE_I32:
        this.pos += 4;
        break;
      default:
        throw new AlsDecodeError(`unsupported wire type ${wireType} at byte ${this.pos}`);
    }
    if (this.pos > end) throw new AlsDecodeError(`fixed-size field runs past its message at byte ${this.pos}`);
  }
}

export function decodeAlsMessage(bytes: Uint8Array): DecodedAlsMessage {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const w = new Wire(buf);
  const end = buf.length;
  let identifier: StreamIdentity | undefined;
  const records: AccessRecord[] = [];
  while (w.pos < end) {
    const tag = w.varint(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (wt === WIRE_LEN && field === 1) identifier = readIdentifier(w, w.len(end));
    else if (wt === WIRE_LEN && (field === 2 || field === 3)) readEntries(w, w.len(end), field === 2 ? 'http' : 'tcp', records);
    else w.skip(wt, end);
  }
  return identifier ? { identifier, records } : { records };
}

function readIdentifier(w: Wire, end: number): StreamIdentity {
  let node = '';
  let cluster = '';
  let logName = '';
  while (w.pos < end) {
    const tag = w.varint(end);
    const wt = tag & 7;
    if (tag >>> 3 === 1 && wt === WIRE_LEN) {
      const nodeEnd = w.len(end);
      while (w.pos < nodeEnd) {
        const t = w.varint(nodeEnd);
        if (t >>> 3 === 1 && (t & 7) === WIRE_LEN) node = w.string(nodeEnd);
        else if (t >>> 3 === 2 && (t & 7) === WIRE_LEN) cluster = w.string(nodeEnd);
        else w.skip(t & 7, nodeEnd);
      }
    } else if (tag >>> 3 === 2 && wt === WIRE_LEN) logName = w.string(end);
    else w.skip(wt, end);
  }
  return Object.freeze({ node, cluster, logName });
}

/** HTTPAccessLogEntries / TCPAccessLogEntries: field 1, repeated entries. */
function readEntries(w: Wire, end: number, kind: 'http' | 'tcp', out: AccessRecord[]): void {
  while (w.pos < end) {
    const tag = w.varint(end);
    if (tag >>> 3 === 1 && (tag & 7) === WIRE_LEN) out.push(readEntry(w, w.len(end), kind));
    else w.skip(tag & 7, end);
  }
}

function readEntry(w: Wire, end: number, kind: 'http' | 'tcp'): Rec {
  const r = new Rec(kind);
  while (w.pos < end) {
    const tag = w.varint(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === WIRE_LEN) readCommon(w, w.len(end), r);
    else if (kind === 'http' && field === 2 && wt === WIRE_VARINT) r.protocol = PROTOCOLS[w.varint(end)] ?? '';
    else if (kind === 'http' && field === 3 && wt === WIRE_LEN) readRequest(w, w.len(end), r);
    else if (kind === 'http' && field === 4 && wt === WIRE_LEN) readResponse(w, w.len(end), r);
    else if (kind === 'tcp' && field === 2 && wt === WIRE_LEN) readConnection(w, w.len(end), r);
    else w.skip(wt, end);
  }
  if (r.durationMs < 0) r.durationMs = r.lastDownstreamTxMs >= 0 ? r.lastDownstreamTxMs : 0;
  return r;
}

/** AccessLogCommon. */
function readCommon(w: Wire, end: number, r: Rec): void {
  while (w.pos < end) {
    const tag = w.varint(end);
    const wt = tag & 7;
    if (wt !== WIRE_LEN) {
      w.skip(wt, end);
      continue;
    }
    switch (tag >>> 3) {
      case 2: r.downstream = readAddress(w, w.len(end)); break;
      case 5: r.startMs = readTimeMs(w, w.len(end), true); break;
      case 9: r.upstreamMs = readTimeMs(w, w.len(end), false); break;
      case 12: r.lastDownstreamTxMs = readTimeMs(w, w.len(end), false); break;
      case 13: r.upstreamHost = w.common(end, addressOf); break;
      case 15: r.cluster = w.common(end); break;
      case 16: r.flags = readFlags(w, w.len(end)); break;
      case 19: r.route = w.common(end); break;
      case 23: r.durationMs = readTimeMs(w, w.len(end), false); break;
      default: w.skip(wt, end);
    }
  }
}

/** google.protobuf.Duration or Timestamp {1: seconds, 2: nanos} in ms (a Timestamp to whole ms). */
function readTimeMs(w: Wire, end: number, wholeMs: boolean): number {
  let seconds = 0;
  let nanos = 0;
  while (w.pos < end) {
    const tag = w.varint(end);
    if (tag === 0x08) seconds = w.varint(end);
    else if (tag === 0x10) nanos = w.varint(end);
    else w.skip(tag & 7, end);
  }
  return seconds * 1000 + (wholeMs ? Math.floor(nanos / 1e6) : nanos / 1e6);
}

/** core.v3.Address: socket_address (1) {address 2, port_value 3} as "ip:port", or pipe (2) {path 1}. */
function readAddress(w: Wire, end: number): string {
  let out = '';
  while (w.pos < end) {
    const tag = w.varint(end);
    const field = tag >>> 3;
    if ((tag & 7) !== WIRE_LEN || (field !== 1 && field !== 2)) {
      w.skip(tag & 7, end);
      continue;
    }
    const inner = w.len(end);
    let address = '';
    let port = 0;
    while (w.pos < inner) {
      const t = w.varint(inner);
      if (t === 0x12 && field === 1) address = w.common(inner);
      else if (t === 0x18 && field === 1) port = w.varint(inner);
      else if (t === 0x0a && field === 2) address = w.string(inner);
      else w.skip(t & 7, inner);
    }
    out = field === 1 ? `${address}:${port}` : address;
  }
  return out;
}

/** An Address message on its own (for intern: the upstream host repeats, so it is looked up whole). */
const addressOf: Decode = (buf, start, end) => {
  const w = new Wire(buf);
  w.pos = start;
  return readAddress(w, end);
};

/** ResponseFlags: bools by field number (13 is a message: present means UAEX). */
function readFlags(w: Wire, end: number): string {
  let out = '';
  while (w.pos < end) {
    const tag = w.varint(end);
    const field = tag >>> 3;
    let set: boolean;
    if ((tag & 7) === WIRE_VARINT) set = w.varint(end) !== 0;
    else {
      w.skip(tag & 7, end);
      set = field === 13;
    }
    const code = set ? FLAG_BY_FIELD[field] : undefined;
    if (code) out = out === '' ? code : `${out},${code}`;
  }
  return out;
}

/** HTTPRequestProperties. */
function readRequest(w: Wire, end: number, r: Rec): void {
  while (w.pos < end) {
    const tag = w.varint(end);
    switch (tag) {
      case 0x08: r.method = methodName(w.varint(end)); break; // 1 request_method
      case 0x1a: r.authority = w.common(end); break; // 3 authority
      case 0x2a: r.path = w.string(end); break; // 5 path
      case 0x32: r.userAgent = w.common(end); break; // 6 user_agent
      case 0x4a: r.requestId = w.string(end); break; // 9 request_id
      case 0x60: r.bytesIn = w.varint(end); break; // 12 request_body_bytes
      default: w.skip(tag & 7, end);
    }
  }
}

/** HTTPResponseProperties. */
function readResponse(w: Wire, end: number, r: Rec): void {
  while (w.pos < end) {
    const tag = w.varint(end);
    switch (tag) {
      case 0x0a: { // 1 response_code (UInt32Value {1: value})
        const inner = w.len(end);
        while (w.pos < inner) {
          const t = w.varint(inner);
          if (t === 0x08) r.status = w.varint(inner);
          else w.skip(t & 7, inner);
        }
        break;
      }
      case 0x18: r.bytesOut = w.varint(end); break; // 3 response_body_bytes
      case 0x32: r.details = w.common(end); break; // 6 response_code_details
      default: w.skip(tag & 7, end);
    }
  }
}

/** TCP ConnectionProperties {1: received_bytes, 2: sent_bytes}. */
function readConnection(w: Wire, end: number, r: Rec): void {
  while (w.pos < end) {
    const tag = w.varint(end);
    if (tag === 0x08) r.bytesIn = w.varint(end);
    else if (tag === 0x10) r.bytesOut = w.varint(end);
    else w.skip(tag & 7, end);
  }
}
