/**
 * AccessRecord -> one JSON line (with its trailing newline), written as UTF-8 bytes straight into
 * a LineBuffer. Hand-rolled because this runs once per access-log entry: a fixed field order,
 * field names and repeated values as precomputed bytes, numbers as digits, the wire reader's
 * per-entry values (path, request id, downstream address) copied from the message's own bytes
 * while they are plain ASCII, and everything else escaped exactly as JSON.stringify does. Writing bytes (not building a
 * string and encoding it) writes each byte once and leaves no intermediate strings behind.
 * scripts/bench-als.ts measures it against pino on the same records (see docs/benchmarks.md);
 * test/unit/als/json-line.test.ts holds it byte for byte to a JSON.stringify-based line.
 *
 * Empty strings and "not applicable" numbers are left out, so a TCP line carries no HTTP fields.
 * Field names: time (ISO, request start), type, node, log_name, method, authority, path,
 * protocol, status, route, upstream_cluster, upstream_host, downstream, duration_ms, upstream_ms,
 * bytes_in, bytes_out, flags, request_id, user_agent, details.
 */
import type { AccessRecord, StreamIdentity } from './access-record.js';
import { WireRecord } from './decode.js';

// Anything JSON must escape, plus lone surrogates (JSON.stringify writes them as \uXXXX).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what JSON must escape
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A JSON string literal for `s`, as JSON.stringify writes it. */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

const INITIAL_BYTES = 64 * 1024;
/** A buffer that grew past this for one huge message goes back to the initial size once it is emptied. */
const KEEP_BYTES = 1024 * 1024;

/**
 * Precomputed bytes (field names, cached values), held as little-endian 32-bit words: a line is
 * mostly such fragments, and copying them four bytes at a time through a DataView measured 2.4x
 * faster than a byte loop or TypedArray#set (whose call costs more than the copy at this size).
 */
export interface Fragment {
  readonly words: Int32Array;
  /** Bytes; the last word is padded with zeros past it. */
  readonly length: number;
}

function fragment(text: string): Fragment {
  const bytes = Buffer.from(text, 'utf8');
  const padded = Buffer.alloc(Math.ceil(bytes.length / 4) * 4);
  bytes.copy(padded);
  const words = new Int32Array(padded.length / 4);
  for (let i = 0; i < words.length; i++) words[i] = padded.readInt32LE(i * 4);
  return { words, length: bytes.length };
}

/**
 * Whether all four bytes of little-endian word `w` are plain printable ASCII (0x20-0x7e, not `"`
 * or `\\`), by the exact word-at-a-time tests of "Bit Twiddling Hacks" (hasless, hasmore, haszero).
 * JS bit operators work modulo 2^32, so the sums may leave the int32 range.
 */
function plainWord(w: number): boolean {
  const below20 = (w - 0x20202020) & ~w;
  const above7e = (w + 0x01010101) | w;
  const q = w ^ 0x22222222;
  const quote = (q - 0x01010101) & ~q;
  const b = w ^ 0x5c5c5c5c;
  const backslash = (b - 0x01010101) & ~b;
  return ((below20 | above7e | quote | backslash) & 0x80808080) === 0;
}

// A DataView of the message the current record's bytes are in (every record of a message shares
// it; the last message stays referenced until the next one).
let viewSource: Uint8Array | undefined;
let sourceView: DataView = new DataView(new ArrayBuffer(0));

function viewOf(src: Uint8Array): DataView {
  if (src !== viewSource) {
    sourceView = new DataView(src.buffer, src.byteOffset, src.byteLength);
    viewSource = src;
  }
  return sourceView;
}

/**
 * Growable scratch bytes the lines of one message are written into (then copied to the writer
 * at once). Writers call room(n) before writing up to n bytes at `pos`; only [0, pos) is ever
 * read, so a fragment's padding may land past `pos` (the next write covers it).
 */
export class LineBuffer {
  buf: Buffer = Buffer.allocUnsafe(INITIAL_BYTES);
  private view: DataView = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  pos = 0;

  /** Empties the buffer for the next message. */
  reset(): void {
    this.pos = 0;
    if (this.buf.length > KEEP_BYTES) this.use(Buffer.allocUnsafe(INITIAL_BYTES));
  }

  /** Makes room for `n` more bytes at `pos`. */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.use(bigger);
  }

  private use(buf: Buffer): void {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  }

  bytes(f: Fragment): void {
    const words = f.words;
    const n = words.length;
    this.room(n * 4);
    const view = this.view;
    let p = this.pos;
    this.pos = p + f.length;
    for (let i = 0; i < n; i++, p += 4) view.setInt32(p, words[i]!, true);
  }

  /** Text as UTF-8, unescaped (numbers' String() and our own fixed values). */
  text(s: string): void {
    this.room(s.length * 3);
    this.pos += this.buf.write(s, this.pos);
  }

  /** `s` as a JSON string literal, exactly as jsonString() writes it. */
  jsonString(s: string): void {
    const n = s.length;
    // JSON.stringify writes at most 6 bytes per UTF-16 unit (\u001f, \udc00), plus the quotes.
    this.room(n * 6 + 2);
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    buf[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // Plain printable ASCII is its own UTF-8 and needs no escape; anything else takes the
      // general path (rare in access logs: a quote, a backslash, a control or non-ASCII char).
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
        this.pos = start + buf.write(jsonString(s), start);
        return;
      }
      buf[p++] = c;
    }
    buf[p++] = 0x22;
    this.pos = p;
  }

  /**
   * UTF-8 bytes src[start, end), followed by `:port` unless port is -1, as a JSON string literal,
   * exactly as jsonString() writes the string Buffer#toString makes of them: copied while they are
   * plain printable ASCII; anything else (escapes, multi-byte or invalid UTF-8) goes through that
   * string.
   */
  jsonStringOfUtf8(src: Uint8Array, start: number, end: number, port: number): void {
    const n = end - start;
    // No more UTF-16 units than bytes come out of decoding them, each at most 6 bytes escaped.
    this.room(n * 6 + 2);
    const buf = this.buf;
    const view = this.view;
    const from = viewOf(src);
    let p = this.pos;
    buf[p++] = 0x22;
    let i = start;
    // Four bytes at a time while they are all plain; any other byte sends the whole value down
    // the general path, so where it is does not matter.
    for (; i + 4 <= end; i += 4, p += 4) {
      const w = from.getInt32(i, true);
      if (!plainWord(w)) return this.jsonStringOf(src, start, end, port);
      view.setInt32(p, w, true);
    }
    for (; i < end; i++) {
      const c = src[i]!;
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return this.jsonStringOf(src, start, end, port);
      buf[p++] = c;
    }
    if (port >= 0) {
      buf[p++] = 0x3a;
      this.pos = p;
      this.digits(port, 0);
      this.room(1);
      p = this.pos;
    }
    this.buf[p++] = 0x22;
    this.pos = p;
  }

  /** jsonStringOfUtf8's general path: through the string the bytes decode to. */
  private jsonStringOf(src: Uint8Array, start: number, end: number, port: number): void {
    const s = Buffer.prototype.toString.call(src, 'utf8', start, end);
    this.jsonString(port < 0 ? s : `${s}:${port}`);
  }

  /** A number as JSON writes it (String(n)); non-negative safe integers as digits directly. */
  number(v: number): void {
    if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Number.isInteger(v))) {
      this.text(String(v));
      return;
    }
    this.digits(v, 0);
  }

  /** Non-negative integer `v`, left-padded with zeros to `width` digits. */
  digits(v: number, width: number): void {
    let len = 1;
    for (let t = 10; t <= v; t *= 10) len++;
    if (len < width) len = width;
    this.room(len);
    const buf = this.buf;
    let p = this.pos + len;
    this.pos = p;
    for (let i = 0; i < len; i++) {
      // Integer division where the value fits 31 bits (every time, status, port, most sizes).
      const q = v < 0x80000000 ? (v / 10) | 0 : Math.floor(v / 10);
      buf[--p] = 0x30 + (v - q * 10);
      v = q;
    }
  }

  /**
   * Milliseconds rounded to microseconds, as String(Math.round(v * 1000) / 1000) writes them:
   * whole part, then up to three decimals without trailing zeros. Below 1e12 ms every multiple of
   * 0.001 is the shortest form of its double, so the digits are exact; larger or odd values go
   * through String().
   */
  millis(v: number): void {
    const k = Math.round(v * 1000);
    if (!(k >= 0 && k < 1e15)) {
      this.text(String(k / 1000));
      return;
    }
    let frac = k % 1000;
    this.digits((k - frac) / 1000, 0);
    if (frac === 0) return;
    let width = 3;
    while (frac % 10 === 0) {
      frac /= 10;
      width--;
    }
    this.room(1);
    this.buf[this.pos++] = 0x2e;
    this.digits(frac, width);
  }

  /** The bytes written so far, as text (tests and the formatter benchmark). */
  toString(): string {
    return this.buf.toString('utf8', 0, this.pos);
  }
}

// Date#toISOString costs about as much as the rest of a line; entries arrive in time order, so
// the line's start up to the second is cached (as bytes) and only the milliseconds are written.
let cachedSecond = Number.NaN;
let cachedStart: Fragment = fragment('');

/** `{"time":"` and the time, ISO 8601 with milliseconds, UTC (what Date#toISOString writes), up to its Z. */
function lineStart(out: LineBuffer, ms: number): void {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    // "YYYY-MM-DDTHH:MM:SS." (throws a RangeError for a time Date cannot hold, as before)
    cachedStart = fragment(`{"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`);
    cachedSecond = second;
  }
  out.bytes(cachedStart);
  out.digits(Math.floor(ms - second * 1000), 3);
}

/** A string field: `,"name":"value"`, left out when the value is empty. */
function strField(name: string): (out: LineBuffer, value: string) => void {
  const prefix = fragment(`,"${name}":`);
  return (out, value) => {
    if (value === '') return;
    out.bytes(prefix);
    out.jsonString(value);
  };
}

// Values that repeat line after line (authority, route, cluster, upstream host, user agent,
// details; the decoder hands out one shared string per distinct value, whose hash V8 then keeps)
// keep their whole `,"name":"value"` bytes here, so the escape check and the encoding run once per
// value, not once per line. One map per field; each bounded (cleared when full).
const FRAGMENT_CACHE_MAX = 2048;

function cachedField(name: string, escaped: boolean): (out: LineBuffer, value: string) => void {
  const cache = new Map<string, Fragment>();
  return (out, value) => {
    if (value === '') return;
    let f = cache.get(value);
    if (f === undefined) {
      if (cache.size >= FRAGMENT_CACHE_MAX) cache.clear();
      f = fragment(`,"${name}":${escaped ? jsonString(value) : `"${value}"`}`);
      cache.set(value, f);
    }
    out.bytes(f);
  };
}

const authorityField = cachedField('authority', true);
const routeField = cachedField('route', true);
const clusterField = cachedField('upstream_cluster', true);
const upstreamHostField = cachedField('upstream_host', true);
const userAgentField = cachedField('user_agent', true);
const detailsField = cachedField('details', true);
// Values we produce ourselves (method and protocol names, flag codes): never need escaping.
const methodField = cachedField('method', false);
const protocolField = cachedField('protocol', false);
const flagsField = cachedField('flags', false);
const pathField = strField('path');
const downstreamField = strField('downstream');
const requestIdField = strField('request_id');

/** A field whose value is UTF-8 bytes of the decoded message (and maybe a port): left out when empty. */
function utf8Field(name: string): (out: LineBuffer, src: Uint8Array, start: number, end: number, port: number) => void {
  const prefix = fragment(`,"${name}":`);
  return (out, src, start, end, port) => {
    if (start === end && port < 0) return;
    out.bytes(prefix);
    out.jsonStringOfUtf8(src, start, end, port);
  };
}
const pathBytes = utf8Field('path');
const downstreamBytes = utf8Field('downstream');
const requestIdBytes = utf8Field('request_id');

const STATUS = fragment(',"status":');
const DURATION = fragment(',"duration_ms":');
const UPSTREAM_MS = fragment(',"upstream_ms":');
const BYTES_IN = fragment(',"bytes_in":');
const BYTES_OUT = fragment(',"bytes_out":');
const END = fragment('}\n');

/** What follows the time on every line of a stream, by entry kind: the type and the identity fields. */
export interface LineIdentity {
  readonly http: Fragment;
  readonly tcp: Fragment;
}

/** Identity fields are the same for every line of a stream: serialise them once per stream. */
export function identityFields(id: StreamIdentity): LineIdentity {
  const fields = `${id.node === '' ? '' : `,"node":${jsonString(id.node)}`}${id.logName === '' ? '' : `,"log_name":${jsonString(id.logName)}`}`;
  return { http: fragment(`Z","type":"http"${fields}`), tcp: fragment(`Z","type":"tcp"${fields}`) };
}

/** Appends the line of `r` (start time, else `nowMs`) to `out`. */
export function appendAccessLine(out: LineBuffer, r: AccessRecord, identity: LineIdentity, nowMs: number): void {
  lineStart(out, r.startMs > 0 ? r.startMs : nowMs);
  const http = r.kind === 'http';
  // Records from the wire reader hold their per-entry strings as bytes; others (tests) as strings.
  const wire = r instanceof WireRecord;
  out.bytes(http ? identity.http : identity.tcp);
  if (http) {
    methodField(out, r.method);
    authorityField(out, r.authority);
    if (wire) pathBytes(out, r.src, r.pathStart, r.pathEnd, -1);
    else pathField(out, r.path);
    protocolField(out, r.protocol);
    out.bytes(STATUS);
    out.number(r.status);
  }
  routeField(out, r.route);
  clusterField(out, r.cluster);
  upstreamHostField(out, r.upstreamHost);
  if (wire) downstreamBytes(out, r.src, r.downstreamStart, r.downstreamEnd, r.downstreamPort);
  else downstreamField(out, r.downstream);
  out.bytes(DURATION);
  out.millis(r.durationMs);
  if (r.upstreamMs >= 0) {
    out.bytes(UPSTREAM_MS);
    out.millis(r.upstreamMs);
  }
  out.bytes(BYTES_IN);
  out.number(r.bytesIn);
  out.bytes(BYTES_OUT);
  out.number(r.bytesOut);
  flagsField(out, r.flags);
  if (wire) requestIdBytes(out, r.src, r.requestIdStart, r.requestIdEnd, -1);
  else requestIdField(out, r.requestId);
  userAgentField(out, r.userAgent);
  detailsField(out, r.details);
  out.bytes(END);
}
