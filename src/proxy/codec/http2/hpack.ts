/**
 * HPACK (RFC 7541) for the HTTP/2 codec: HpackDecoder turns one complete header block into a flat
 * [name, value, ...] list, HpackEncoder turns such a list into one header block. One of each per
 * connection and direction; each keeps its dynamic table in step with the peer's.
 * Strings are latin1 (one byte per character), as node:http2 hands them out.
 */
import { ConsulXdsError } from '../../../errors.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.js';

/** A decode failure: the connection must end with COMPRESSION_ERROR (RFC 9113 4.3). message names what was wrong. */
export class HpackError extends ConsulXdsError {
  constructor(message: string) {
    super('CXDS_HPACK', message);
  }
}

/** RFC 7541 Appendix A. */
// biome-ignore format: five entries a line, in the RFC's order (an entry's index is its position + 1)
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length;
const STATIC_NAMES = STATIC_TABLE.map((e) => e[0]);
const STATIC_VALUES = STATIC_TABLE.map((e) => e[1]);
/** The protocol's initial SETTINGS_HEADER_TABLE_SIZE (RFC 9113 6.5.2). */
const DEFAULT_TABLE_SIZE = 4096;
/** RFC 7541 4.1: an entry's size is its name and value lengths plus 32. */
const ENTRY_OVERHEAD = 32;
/** Integers above this are refused: no legitimate index, length or table size comes near it. */
const MAX_INTEGER = 0x7fffffff;

/**
 * A dynamic table (RFC 7541 2.3.2, 4): entries numbered by an absolute insertion counter, live ones
 * [inserted - count, inserted), kept in a ring that starts small and doubles when full, so a new
 * connection costs little. The HPACK index of counter c is 61 + inserted - c.
 */
class DynamicTable {
  /** The current maximum size (the last size update, or the protocol default). */
  maxSize = DEFAULT_TABLE_SIZE;
  size = 0;
  inserted = 0;
  count = 0;
  private names: string[] = ['', '', '', '', '', '', '', ''];
  private values: string[] = ['', '', '', '', '', '', '', ''];
  private mask = 7;

  name(c: number): string {
    return this.names[c & this.mask]!;
  }

  value(c: number): string {
    return this.values[c & this.mask]!;
  }

  /** Adds an entry of `size` bytes after evicting for it; an entry larger than the table empties it and is not added (4.4). */
  add(name: string, value: string, size: number): boolean {
    this.evict(size);
    if (size > this.maxSize) return false;
    if (this.count > this.mask) this.grow();
    const slot = this.inserted++ & this.mask;
    this.names[slot] = name;
    this.values[slot] = value;
    this.count++;
    this.size += size;
    return true;
  }

  /** Evicts the oldest entries until `room` more bytes fit in maxSize (4.3, 4.4). */
  evict(room: number): void {
    while (this.count > 0 && this.size + room > this.maxSize) {
      const c = this.inserted - this.count;
      const slot = c & this.mask;
      const name = this.names[slot]!;
      const value = this.values[slot]!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
      this.count--;
      this.names[slot] = '';
      this.values[slot] = '';
      this.evicted(c, name, value);
    }
  }

  /** Called for each evicted entry, oldest first. */
  protected evicted(_c: number, _name: string, _value: string): void {}

  private grow(): void {
    const mask = this.mask * 2 + 1;
    const names = new Array<string>(mask + 1);
    const values = new Array<string>(mask + 1);
    for (let i = 0; i <= mask; i++) {
      names[i] = '';
      values[i] = '';
    }
    for (let c = this.inserted - this.count; c < this.inserted; c++) {
      names[c & mask] = this.names[c & this.mask]!;
      values[c & mask] = this.values[c & this.mask]!;
    }
    this.names = names;
    this.values = values;
    this.mask = mask;
  }
}

// ---------------------------------------------------------------------------------------------------
// Decoder

/** Buffer's latin1 fast paths (public at runtime, absent from @types/node); skip the argument checks of toString/write. */
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  latin1Write(s: string, offset: number): number;
}

function asBuffer(buf: Uint8Array): Latin1Buffer {
  return (Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)) as Latin1Buffer;
}

export class HpackDecoder {
  /** SETTINGS_MAX_HEADER_LIST_SIZE we advertised; 0 = unlimited (default). */
  maxHeaderListSize = 0;
  /** The last decoded list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (name + value + 32 per field). */
  lastListSize = 0;
  private readonly maxTableSize: number;
  // Until the peer has seen our SETTINGS it may use the protocol default (4096), whatever maxTableSize is.
  private readonly table = new DynamicTable();
  private scratch = Buffer.allocUnsafe(256) as Latin1Buffer;
  // Decode cursor: kept on the instance so the helpers return values without allocating tuples.
  private pos = 0;

  /** maxTableSize: our SETTINGS_HEADER_TABLE_SIZE (default 4096): the ceiling for the peer's dynamic table size updates. */
  constructor(maxTableSize = DEFAULT_TABLE_SIZE) {
    if (!Number.isInteger(maxTableSize) || maxTableSize < 0 || maxTableSize > MAX_INTEGER) {
      throw new RangeError(`HpackDecoder: maxTableSize ${maxTableSize} is not an integer in [0, 2^31)`);
    }
    this.maxTableSize = maxTableSize;
  }

  /**
   * Decodes one complete header block from buf[start, end) into [name0, value0, name1, value1, ...]
   * in wire order. Throws HpackError on bad input; the table is then out of step with the peer's, so
   * the connection must end.
   */
  decode(buf: Uint8Array, start: number, end: number): string[] {
    const b = asBuffer(buf);
    const out: string[] = [];
    const limit = this.maxHeaderListSize;
    let listSize = 0;
    let fields = false; // a field was seen: size updates are no longer allowed
    this.pos = start;
    while (this.pos < end) {
      const first = b[this.pos]!;
      let name: string;
      let value: string;
      if (first & 0x80) {
        // 6.1 Indexed header field.
        const index = this.integer(b, end, 7);
        if (index === 0) throw new HpackError('indexed header field with index 0');
        if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index - 1]!;
          value = STATIC_VALUES[index - 1]!;
        } else {
          const c = this.counter(index);
          name = this.table.name(c);
          value = this.table.value(c);
        }
      } else if ((first & 0xe0) === 0x20) {
        // 6.3 Dynamic table size update.
        if (fields) throw new HpackError('dynamic table size update after the first header field of the block');
        const size = this.integer(b, end, 5);
        if (size > this.maxTableSize) {
          throw new HpackError(`dynamic table size update to ${size}, above our SETTINGS_HEADER_TABLE_SIZE ${this.maxTableSize}`);
        }
        this.table.maxSize = size;
        this.table.evict(0);
        continue;
      } else {
        // 6.2 Literal header field: with incremental indexing (01), without (0000), never indexed (0001).
        const indexing = (first & 0x40) !== 0;
        const index = this.integer(b, end, indexing ? 6 : 4);
        if (index === 0) name = this.string(b, end);
        else if (index <= STATIC_COUNT) name = STATIC_NAMES[index - 1]!;
        else name = this.table.name(this.counter(index));
        value = this.string(b, end);
        if (indexing) this.table.add(name, value, name.length + value.length + ENTRY_OVERHEAD);
      }
      fields = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (limit > 0 && listSize > limit) throw new HpackError(`header list larger than SETTINGS_MAX_HEADER_LIST_SIZE ${limit}`);
      out.push(name, value);
    }
    this.lastListSize = listSize;
    return out;
  }

  /** Insertion counter of the dynamic table entry at HPACK index (> 61). */
  private counter(index: number): number {
    const t = this.table;
    if (index - STATIC_COUNT > t.count) throw new HpackError(`header index ${index} beyond the ${STATIC_COUNT + t.count} entries of the tables`);
    return t.inserted + STATIC_COUNT - index;
  }

  /** RFC 7541 5.1: the integer with an N-bit prefix at this.pos; advances this.pos. */
  private integer(b: Buffer, end: number, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = b[this.pos++]! & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= end) throw new HpackError('integer runs past the end of the header block');
      const c = b[this.pos++]!;
      value += (c & 0x7f) * 2 ** shift;
      if (value > MAX_INTEGER) throw new HpackError('integer above 2^31 - 1');
      if ((c & 0x80) === 0) return value;
      shift += 7;
      // Five continuation bytes carry 35 bits; more can only be zero padding.
      if (shift > 28) throw new HpackError('integer encoded in more than 6 bytes');
    }
  }

  /** RFC 7541 5.2: the string literal at this.pos; advances this.pos. */
  private string(b: Latin1Buffer, end: number): string {
    if (this.pos >= end) throw new HpackError('string literal missing at the end of the header block');
    const huffman = (b[this.pos]! & 0x80) !== 0;
    const length = this.integer(b, end, 7);
    const start = this.pos;
    if (length > end - start) throw new HpackError(`string literal of ${length} bytes runs past the end of the header block`);
    this.pos = start + length;
    if (!huffman) return b.latin1Slice(start, start + length);
    const need = Math.ceil((length * 8) / 5);
    if (this.scratch.length < need) this.scratch = Buffer.allocUnsafe(Math.max(need, this.scratch.length * 2)) as Latin1Buffer;
    const n = huffmanDecode(b, start, start + length, this.scratch);
    if (n < 0) throw new HpackError('invalid Huffman string (EOS inside, or padding not up to 7 one bits)');
    return this.scratch.latin1Slice(0, n);
  }
}

// ---------------------------------------------------------------------------------------------------
// Encoder

/**
 * The largest table our encoder uses, whatever the peer allows: 4096 holds the repeated fields of
 * many gRPC requests; a larger table would cost memory per connection for entries that rarely repeat.
 */
const ENCODER_MAX_TABLE_SIZE = DEFAULT_TABLE_SIZE;
/**
 * Fields with a larger entry are sent without indexing: an entry above 3/4 of the table evicts nearly
 * all the others for one value, which big values (tokens, long paths with ids) rarely repay.
 */
const INDEX_FRACTION = 3 / 4;
/**
 * Names whose values are unique per request or message: indexing them would only push the repeated
 * fields out of the table (FIFO eviction), so they go without indexing (their name still indexed).
 */
const NOT_INDEXED = new Set(['content-length', 'date', 'grpc-timeout', 'x-request-id', 'x-envoy-expected-rq-timeout-ms']);
/** Credentials are sent never-indexed (RFC 7541 7.1.3) so intermediaries do not index them either. */
const NEVER_INDEXED = new Set(['authorization', 'proxy-authorization']);
/** Short cookies are guessable from compressed sizes (RFC 7541 7.1.3), longer ones are worth indexing. */
const COOKIE_NEVER_INDEXED_BELOW = 20;

/** The encoder's view of one name: static and dynamic matches together, found with one lookup by name. */
interface NameEntry {
  /** Static table index of the name, 0 when it is not there. */
  readonly staticName: number;
  /** value -> static index (shared by all encoders), undefined when the name is not in the static table. */
  readonly staticValues: ReadonlyMap<string, number> | undefined;
  /** Insertion counter of the newest dynamic entry with the name, -1 when none. */
  newest: number;
  /** value -> insertion counter of a dynamic entry; created on the name's first insertion. */
  values: Map<string, number> | undefined;
}

/** Static table by name: the lowest index of the name, and value -> index. */
const STATIC_LOOKUP = new Map<string, { index: number; values: Map<string, number> }>();
for (let i = STATIC_COUNT - 1; i >= 0; i--) {
  // Backwards so the lowest index of a name wins.
  const [name, value] = STATIC_TABLE[i]!;
  const e = STATIC_LOOKUP.get(name) ?? { index: i + 1, values: new Map<string, number>() };
  STATIC_LOOKUP.set(name, e);
  e.index = i + 1;
  e.values.set(value, i + 1);
}

/** The encoder's table keeps its lookup in step with insertions and evictions. */
class EncoderTable extends DynamicTable {
  private readonly lookup = new Map<string, NameEntry>();

  /** What the tables hold for name, undefined when neither has it. */
  entry(name: string): NameEntry | undefined {
    let e = this.lookup.get(name);
    if (e === undefined) {
      const fixed = STATIC_LOOKUP.get(name);
      if (fixed === undefined) return undefined;
      e = { staticName: fixed.index, staticValues: fixed.values, newest: -1, values: undefined };
      this.lookup.set(name, e);
    }
    return e;
  }

  insert(name: string, value: string, size: number): void {
    if (!this.add(name, value, size)) return;
    const c = this.inserted - 1;
    let e = this.lookup.get(name);
    if (e === undefined) {
      e = { staticName: 0, staticValues: undefined, newest: c, values: undefined };
      this.lookup.set(name, e);
    }
    e.newest = c;
    e.values ??= new Map<string, number>();
    e.values.set(value, c);
  }

  protected override evicted(c: number, name: string, value: string): void {
    const e = this.lookup.get(name)!;
    if (e.values!.get(value) === c) e.values!.delete(value);
    // The oldest entry is the newest with its name only when it is the only one left; a name outside
    // the static table then leaves the lookup, so random names do not pile up over a connection.
    if (e.newest === c) {
      e.newest = -1;
      if (e.staticName === 0) this.lookup.delete(name);
    }
  }
}

export class HpackEncoder {
  /** Our table; its maxSize is what the peer's decoder knows once the pending updates are sent. */
  private readonly table = new EncoderTable();
  /** Smallest size since the last block, when a size update is owed (RFC 7541 4.2), else -1. */
  private pendingMin = -1;
  private out = Buffer.allocUnsafe(1024) as Latin1Buffer;
  private pos = 0;

  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE (default 4096). Our table never exceeds it; a change is
   * announced by a dynamic table size update at the start of the next block (RFC 7541 4.2, 6.3).
   */
  setPeerMaxTableSize(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`HpackEncoder: table size ${n} is not a 32-bit unsigned integer`);
    const size = Math.min(n, ENCODER_MAX_TABLE_SIZE);
    const t = this.table;
    if (size === t.maxSize) return;
    this.pendingMin = this.pendingMin < 0 ? Math.min(size, t.maxSize) : Math.min(size, this.pendingMin);
    t.maxSize = size;
    t.evict(0);
  }

  /** Encodes fields (flat [name, value, ...], names lower-case, pseudo headers first) into one header block. */
  encode(fields: readonly string[]): Buffer {
    this.pos = 0;
    if (this.pendingMin >= 0) {
      this.reserve(12);
      // The smallest size first, so the decoder evicts what we evicted, then the current one.
      if (this.pendingMin < this.table.maxSize) this.integer(0x20, 5, this.pendingMin);
      this.integer(0x20, 5, this.table.maxSize);
      this.pendingMin = -1;
    }
    for (let i = 0; i + 1 < fields.length; i += 2) this.field(fields[i]!, fields[i + 1]!);
    const n = this.pos;
    const block = Buffer.allocUnsafe(n);
    // Buffer#copy costs more than a loop over the few bytes of a block of indexed fields.
    if (n > 64) this.out.copy(block, 0, 0, n);
    else for (let i = 0; i < n; i++) block[i] = this.out[i]!;
    return block;
  }

  private field(name: string, value: string): void {
    // Room for the worst case: three integers (6 bytes each at most) and the raw strings.
    this.reserve(20 + name.length + value.length);
    const e = this.table.entry(name);
    if (e !== undefined) {
      const c = e.values?.get(value);
      const index = c === undefined ? e.staticValues?.get(value) : this.index(c);
      if (index !== undefined) {
        this.integer(0x80, 7, index);
        return;
      }
    }
    const nameIndex = e === undefined ? 0 : e.staticName > 0 ? e.staticName : e.newest >= 0 ? this.index(e.newest) : 0;
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (NEVER_INDEXED.has(name) || (name === 'cookie' && value.length < COOKIE_NEVER_INDEXED_BELOW)) {
      this.integer(0x10, 4, nameIndex);
    } else if (entrySize > this.table.maxSize * INDEX_FRACTION || NOT_INDEXED.has(name)) {
      this.integer(0x00, 4, nameIndex);
    } else {
      this.integer(0x40, 6, nameIndex);
      this.table.insert(name, value, entrySize);
    }
    if (nameIndex === 0) this.string(name);
    this.string(value);
  }

  /** HPACK index of the dynamic entry with insertion counter c. */
  private index(c: number): number {
    return STATIC_COUNT + this.table.inserted - c;
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.pos + n, this.out.length * 2)) as Latin1Buffer;
    this.out.copy(bigger, 0, 0, this.pos);
    this.out = bigger;
  }

  /** RFC 7541 5.1: value with an N-bit prefix, the first byte's other bits from `flags`. */
  private integer(flags: number, prefixBits: number, value: number): void {
    const out = this.out;
    const max = (1 << prefixBits) - 1;
    if (value < max) {
      out[this.pos++] = flags | value;
      return;
    }
    out[this.pos++] = flags | max;
    value -= max;
    while (value >= 0x80) {
      out[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    out[this.pos++] = value;
  }

  /** RFC 7541 5.2: Huffman when that is shorter, raw otherwise. */
  private string(s: string): void {
    const huffman = huffmanEncodedLength(s);
    if (huffman < s.length) {
      this.integer(0x80, 7, huffman);
      this.pos = huffmanEncode(s, this.out, this.pos);
    } else {
      this.integer(0x00, 7, s.length);
      this.pos += this.out.latin1Write(s, this.pos);
    }
  }
}
