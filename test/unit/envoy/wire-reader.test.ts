/**
 * The shared lazy protobuf reader (src/envoy/wire-reader.ts): it reads what protobufjs' Reader
 * reads on the same bytes, and it is stricter where a lazy reader must be (varints beyond 32 bits
 * as exact numbers, lengths past the end, nested messages that overrun, groups).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { WireReader, WireType } from '../../../src/envoy/wire-reader.js';

test('varints, lengths and strings read as protobufjs writes them', () => {
  const w = protobuf.Writer.create();
  w.uint32(0x08).uint32(300); // field 1 varint, two bytes
  w.uint32((200 << 3) | WireType.Len).string('héllo'); // a two-byte tag
  w.uint32(0x18).uint64(2 ** 40 + 7); // beyond 32 bits
  w.uint32(0x21).fixed64(1); // field 4, I64
  w.uint32(0x2d).fixed32(1); // field 5, I32
  w.uint32(0x32).bytes(new Uint8Array([1, 2, 3]));
  const r = new WireReader(w.finish());
  assert.equal(r.uint32(), 0x08);
  assert.equal(r.uint32(), 300);
  assert.equal(r.uint32(), (200 << 3) | WireType.Len);
  assert.equal(r.string(), 'héllo');
  assert.equal(r.uint32(), 0x18);
  assert.equal(r.uint53(), 2 ** 40 + 7);
  assert.equal(r.uint32(), 0x21);
  r.skipField(WireType.I64);
  assert.equal(r.uint32(), 0x2d);
  r.skipField(WireType.I32);
  assert.equal(r.uint32(), 0x32);
  const end = r.lengthEnd();
  assert.equal(end - r.pos, 3);
  r.pos = end;
  r.endsAt(end);
  assert.equal(r.pos, r.len);
});

test('malformed bytes are RangeErrors, where protobufjs would read on or clamp', () => {
  // A string whose length runs past the end: protobufjs' BufferReader returns a shorter string.
  const cut = Buffer.from([0x05, 0x61, 0x62]);
  assert.equal(protobuf.Reader.create(cut).string(), 'ab');
  assert.throws(() => new WireReader(cut).string(), RangeError);
  assert.throws(() => new WireReader(Buffer.from([0x05, 0x61])).lengthEnd(), RangeError);
  assert.throws(() => new WireReader(Buffer.alloc(11, 0xff)).uint53(), RangeError, 'an endless varint');
  assert.throws(() => new WireReader(Buffer.from([0xff])).uint53(), RangeError, 'a truncated varint');
  assert.throws(() => new WireReader(Buffer.from([0x01])).skipField(WireType.I64), RangeError);
  for (const groupOrUnused of [3, 4, 6, 7]) assert.throws(() => new WireReader(Buffer.alloc(4)).skipField(groupOrUnused), RangeError);
  // A nested message {1: 'abc'} whose declared length (2) cuts its only field in half.
  const nested = new WireReader(Buffer.from([0x02, 0x0a, 0x03, 0x61, 0x62, 0x63]));
  const end = nested.lengthEnd();
  while (nested.pos < end) {
    nested.uint32();
    nested.skipField(WireType.Len);
  }
  assert.throws(() => nested.endsAt(end), RangeError);
});
