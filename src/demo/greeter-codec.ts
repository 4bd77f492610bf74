/**
 * The demo gRPC service's wire format, by hand: `consulxds.demo.Greeter/Hello`
 * (examples/greeter.proto) takes HelloRequest{string name = 1} and answers
 * HelloReply{string backend = 1}. Each message has one string field, so encoding is a tag byte, a
 * varint length and the UTF-8 bytes; no .proto file has to be found at run time.
 */

export const GREETER_SERVICE = 'consulxds.demo.Greeter';
export const HELLO_PATH = `/${GREETER_SERVICE}/Hello`;

/** Field 1, wire type 2 (length-delimited). */
const FIELD_1 = 0x0a;

/** A message whose only field is string field 1. */
export function encodeStringField(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const len: number[] = [];
  let n = bytes.length;
  while (n > 0x7f) {
    len.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  len.push(n);
  return Buffer.concat([Buffer.from([FIELD_1, ...len]), bytes]);
}

/** String field 1 of a message (the last one wins, as protobuf merges); '' when absent. Other fields are skipped. */
export function decodeStringField(msg: Buffer): string {
  let value = '';
  let i = 0;
  const varint = (): number => {
    let out = 0;
    let shift = 0;
    for (;;) {
      if (i >= msg.length) throw new Error('truncated varint');
      const b = msg[i++]!;
      out += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return out;
      shift += 7;
    }
  };
  while (i < msg.length) {
    const tag = varint();
    const wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = varint();
      if (i + len > msg.length) throw new Error('truncated field');
      if (tag >>> 3 === 1) value = msg.toString('utf8', i, i + len);
      i += len;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return value;
}
