/**
 * Lazy protobuf wire reading on protobufjs' Reader, for the paths that decode only what they need:
 * the server's DiscoveryRequest readers (server/sotw/discovery-codec.ts, server/delta/delta-codec.ts), the ALS sink
 * (als/decode.ts) and the benchmark's simulated clients (scripts/bench/wire.ts).
 *
 * protobufjs' Reader gives the cursor, the varint and fixed-size reads and the bounds checks; what
 * a lazy reader needs on top of it is here: a varint as a plain number beyond 32 bits (uint64()
 * would allocate a Long), the end of a length-delimited value without copying it, a check that a
 * nested message ended where its length said, a string read that fails on a length past the end
 * (BufferReader.string() clamps instead), and a skip that refuses groups.
 *
 * Every decoding failure is a RangeError naming the byte offset; callers turn it into their own
 * error (a MalformedRequest, an AlsDecodeError).
 */
import protobuf from 'protobufjs';

export const WireType = { Varint: 0, I64: 1, Len: 2, I32: 5 } as const;

export class WireReader extends protobuf.BufferReader {
  declare buf: Buffer;

  constructor(bytes: Uint8Array) {
    super(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  /** A varint as a number: exact up to 2^53, which covers every counter, size and time we read. */
  uint53(): number {
    const buf = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.len) throw new RangeError(`truncated varint at byte ${this.pos}`);
      const b = buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new RangeError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /**
   * protobufjs' uint32() with the one-byte case read first: tags of fields 1-15 and most lengths
   * are one byte, and this is the reader's hottest call.
   */
  override uint32(): number {
    const pos = this.pos;
    if (pos < this.len) {
      const b = this.buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    return super.uint32();
  }

  /** Reads a length prefix; returns where the value ends (the reader is then at its first byte). */
  lengthEnd(): number {
    const n = this.uint32();
    const end = this.pos + n;
    if (end > this.len) throw new RangeError(`length ${n} at byte ${this.pos} runs past its message (ends at ${this.len})`);
    return end;
  }

  /**
   * A nested message read up to `end` (from lengthEnd) must stop exactly there: a field that ran
   * past it means the lengths lie. (protobufjs' Reader checks reads against the whole buffer.)
   */
  endsAt(end: number): void {
    if (this.pos !== end) throw new RangeError(`a field runs past the end of its message at byte ${end}`);
  }

  /** A length-delimited UTF-8 string; a length past the end is an error, not a shorter string. */
  override string(): string {
    const end = this.lengthEnd();
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  /**
   * Visits the top-level length-delimited fields from here to the end (the only kind the xDS
   * request readers keep): `visit(field, start, end, tagStart)`, the value being [start, end).
   * Fields of other wire types are skipped; field number 0 is an error.
   */
  lenFields(visit: (field: number, start: number, end: number, tagStart: number) => void): void {
    while (this.pos < this.len) {
      const tagStart = this.pos;
      const tag = this.uint32();
      if (tag >>> 3 === 0) throw new RangeError(`invalid field number 0 at byte ${tagStart}`);
      if ((tag & 7) !== WireType.Len) {
        this.skipField(tag & 7);
        continue;
      }
      const end = this.lengthEnd();
      const start = this.pos;
      this.pos = end;
      visit(tag >>> 3, start, end, tagStart);
    }
  }

  /** Skips the value of a field of this wire type. Groups (3, 4) and the unused types 6, 7 are errors. */
  skipField(wireType: number): void {
    switch (wireType) {
      case WireType.Varint:
        this.uint53();
        return;
      case WireType.I64:
        this.#skipBytes(8);
        return;
      case WireType.Len:
        this.pos = this.lengthEnd();
        return;
      case WireType.I32:
        this.#skipBytes(4);
        return;
      default:
        throw new RangeError(`unsupported wire type ${wireType} at byte ${this.pos}`);
    }
  }

  #skipBytes(n: number): void {
    if (this.pos + n > this.len) throw new RangeError(`fixed-size field runs past its message at byte ${this.pos}`);
    this.pos += n;
  }
}
