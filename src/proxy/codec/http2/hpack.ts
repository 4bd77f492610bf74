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
// biome-ignore format: one entry per line reads as the RFC's table
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

/** A power of two above the most entries a table of this size holds (each takes at least 32 bytes). */
function ringCapacity(tableSize: number): number {
  let capacity = 1;
  while (capacity <= tableSize / ENTRY_OVERHEAD) capacity <<= 1;
  return capacity;
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
  private readonly maxTableSize: number;
  /** The table size the peer's encoder last announced (starts at the protocol default). */
  private tableSize = DEFAULT_TABLE_SIZE;
  private size = 0;
  // Ring of entries; newest at `newest`, the count entries before it (mod capacity) are the rest.
  private readonly names: string[];
  private readonly values: string[];
  private readonly mask: number;
  private newest = 0;
  private count = 0;
  private scratch = Buffer.allocUnsafe(256) as Latin1Buffer;
  // Decode cursor: kept on the instance so the helpers return values without allocating tuples.
  private pos = 0;

  /** maxTableSize: our SETTINGS_HEADER_TABLE_SIZE (default 4096): the ceiling for the peer's dynamic table size updates. */
  constructor(maxTableSize = DEFAULT_TABLE_SIZE) {
    if (!Number.isInteger(maxTableSize) || maxTableSize < 0 || maxTableSize > MAX_INTEGER) {
      throw new RangeError(`HpackDecoder: maxTableSize ${maxTableSize} is not an integer in [0, 2^31)`);
    }
    this.maxTableSize = maxTableSize;
    // Until the peer has seen our SETTINGS it may use the protocol default, so the ring holds as many
    // entries as the larger of the two sizes allows.
    const capacity = ringCapacity(Math.max(maxTableSize, DEFAULT_TABLE_SIZE));
    this.names = new Array<string>(capacity).fill('');
    this.values = new Array<string>(capacity).fill('');
    this.mask = capacity - 1;
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
          const slot = this.slot(index);
          name = this.names[slot]!;
          value = this.values[slot]!;
        }
      } else if ((first & 0xe0) === 0x20) {
        // 6.3 Dynamic table size update.
        if (fields) throw new HpackError('dynamic table size update after the first header field of the block');
        const size = this.integer(b, end, 5);
        if (size > this.maxTableSize) {
          throw new HpackError(`dynamic table size update to ${size}, above our SETTINGS_HEADER_TABLE_SIZE ${this.maxTableSize}`);
        }
        this.tableSize = size;
        this.evict(0);
        continue;
      } else {
        // 6.2 Literal header field: with incremental indexing (01), without (0000), never indexed (0001).
        const indexing = (first & 0x40) !== 0;
        const index = this.integer(b, end, indexing ? 6 : 4);
        if (index === 0) name = this.string(b, end);
        else if (index <= STATIC_COUNT) name = STATIC_NAMES[index - 1]!;
        else name = this.names[this.slot(index)]!;
        value = this.string(b, end);
        if (indexing) this.insert(name, value);
      }
      fields = true;
      if (limit > 0) {
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        if (listSize > limit) throw new HpackError(`header list larger than SETTINGS_MAX_HEADER_LIST_SIZE ${limit}`);
      }
      out.push(name, value);
    }
    return out;
  }

  /** Ring slot of the dynamic table entry at HPACK index (> 61). */
  private slot(index: number): number {
    const d = index - STATIC_COUNT - 1;
    if (d >= this.count) throw new HpackError(`header index ${index} beyond the ${STATIC_COUNT + this.count} entries of the tables`);
    return (this.newest - d) & this.mask;
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.evict(size);
    // RFC 7541 4.4: an entry larger than the table empties it and is not added.
    if (size > this.tableSize) return;
    this.newest = (this.newest + 1) & this.mask;
    this.names[this.newest] = name;
    this.values[this.newest] = value;
    this.count++;
    this.size += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit in the table size (RFC 7541 4.3, 4.4). */
  private evict(room: number): void {
    while (this.count > 0 && this.size + room > this.tableSize) {
      const slot = (this.newest - this.count + 1) & this.mask;
      this.size -= this.names[slot]!.length + this.values[slot]!.length + ENTRY_OVERHEAD;
      this.names[slot] = '';
      this.values[slot] = '';
      this.count--;
    }
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

/** Per name: exact matches (value -> index or insertion counter) and the index/counter of the newest entry with the name. */
interface NameEntry {
  name: number;
  readonly values: Map<string, number>;
}

const STATIC_LOOKUP = new Map<string, NameEntry>();
for (let i = STATIC_COUNT - 1; i >= 0; i--) {
  // Backwards so the lowest index of a name wins.
  const [name, value] = STATIC_TABLE[i]!;
  const e = STATIC_LOOKUP.get(name) ?? { name: i + 1, values: new Map<string, number>() };
  STATIC_LOOKUP.set(name, e);
  e.name = i + 1;
  e.values.set(value, i + 1);
}

export class HpackEncoder {
  /** Our table size, as the peer's decoder knows it once the pending updates are sent. */
  private tableSize = DEFAULT_TABLE_SIZE;
  /** Smallest size since the last block, when a size update is owed (RFC 7541 4.2), else -1. */
  private pendingMin = -1;
  private size = 0;
  /** Dynamic table lookup: name -> exact values -> absolute insertion counter; `name` is the newest counter or -1. */
  private readonly lookup = new Map<string, NameEntry>();
  // Entries by insertion counter, in a ring sized for ENCODER_MAX_TABLE_SIZE: counters [inserted - count, inserted) are live.
  private readonly names: string[];
  private readonly values: string[];
  private readonly mask: number;
  private inserted = 0;
  private count = 0;
  private out = Buffer.allocUnsafe(1024) as Latin1Buffer;
  private pos = 0;

  constructor() {
    const capacity = ringCapacity(ENCODER_MAX_TABLE_SIZE);
    this.names = new Array<string>(capacity).fill('');
    this.values = new Array<string>(capacity).fill('');
    this.mask = capacity - 1;
  }

  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE (default 4096). Our table never exceeds it; a change is
   * announced by a dynamic table size update at the start of the next block (RFC 7541 4.2, 6.3).
   */
  setPeerMaxTableSize(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`HpackEncoder: table size ${n} is not a 32-bit unsigned integer`);
    const size = Math.min(n, ENCODER_MAX_TABLE_SIZE);
    if (size === this.tableSize) return;
    this.pendingMin = this.pendingMin < 0 ? Math.min(size, this.tableSize) : Math.min(size, this.pendingMin);
    this.tableSize = size;
    this.evict(0);
  }

  /** Encodes fields (flat [name, value, ...], names lower-case, pseudo headers first) into one header block. */
  encode(fields: readonly string[]): Buffer {
    this.pos = 0;
    if (this.pendingMin >= 0) {
      this.reserve(12);
      // The smallest size first, so the decoder evicts what we evicted, then the current one.
      if (this.pendingMin < this.tableSize) this.integer(0x20, 5, this.pendingMin);
      this.integer(0x20, 5, this.tableSize);
      this.pendingMin = -1;
    }
    for (let i = 0; i + 1 < fields.length; i += 2) this.field(fields[i]!, fields[i + 1]!);
    const block = Buffer.allocUnsafe(this.pos);
    this.out.copy(block, 0, 0, this.pos);
    return block;
  }

  private field(name: string, value: string): void {
    // Room for the worst case: three integers (6 bytes each at most) and the raw strings.
    this.reserve(20 + name.length + value.length);
    const fixed = STATIC_LOOKUP.get(name);
    const exactStatic = fixed?.values.get(value);
    if (exactStatic !== undefined) {
      this.integer(0x80, 7, exactStatic);
      return;
    }
    const dynamic = this.lookup.get(name);
    const exactDynamic = dynamic?.values.get(value);
    if (exactDynamic !== undefined) {
      this.integer(0x80, 7, this.index(exactDynamic));
      return;
    }
    const nameIndex = fixed !== undefined ? fixed.name : dynamic !== undefined && dynamic.name >= 0 ? this.index(dynamic.name) : 0;
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (NEVER_INDEXED.has(name) || (name === 'cookie' && value.length < COOKIE_NEVER_INDEXED_BELOW)) {
      this.integer(0x10, 4, nameIndex);
    } else if (entrySize > this.tableSize * INDEX_FRACTION || NOT_INDEXED.has(name)) {
      this.integer(0x00, 4, nameIndex);
    } else {
      this.integer(0x40, 6, nameIndex);
      this.insert(name, value, entrySize);
    }
    if (nameIndex === 0) this.string(name);
    this.string(value);
  }

  /** HPACK index of the dynamic entry with insertion counter c. */
  private index(c: number): number {
    return STATIC_COUNT + this.inserted - c;
  }

  private insert(name: string, value: string, size: number): void {
    this.evict(size);
    if (size > this.tableSize) return;
    const c = this.inserted++;
    this.names[c & this.mask] = name;
    this.values[c & this.mask] = value;
    this.count++;
    this.size += size;
    let e = this.lookup.get(name);
    if (e === undefined) {
      e = { name: c, values: new Map<string, number>() };
      this.lookup.set(name, e);
    }
    e.name = c;
    e.values.set(value, c);
  }

  /** Evicts the oldest entries until `room` more bytes fit, exactly as the peer's decoder does. */
  private evict(room: number): void {
    while (this.count > 0 && this.size + room > this.tableSize) {
      const c = this.inserted - this.count;
      const name = this.names[c & this.mask]!;
      const value = this.values[c & this.mask]!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
      this.count--;
      const e = this.lookup.get(name)!;
      if (e.values.get(value) === c) e.values.delete(value);
      // The oldest entry is the newest with its name only when it is the only one left.
      if (e.name === c) this.lookup.delete(name);
    }
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
