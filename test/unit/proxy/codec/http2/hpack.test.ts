/**
 * HPACK (src/proxy/codec/http2/hpack.ts, huffman.ts): the RFC 7541 Appendix C examples, the Huffman
 * table's shape, interop with nghttp2 through node:http2 in both directions on real loopback
 * connections (its encoder against our decoder, our encoder against its decoder, table size changes
 * included), a round-trip fuzz with evicting table sizes, and every decode error.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { HpackDecoder, HpackEncoder, HpackError } from '../../../../../src/proxy/codec/http2/hpack.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../../../../../src/proxy/codec/http2/huffman.js';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from '../../../../../src/proxy/codec/http2/huffman-table.js';
import { CLIENT_PREFACE } from '../../../../../src/proxy/codec/http2/frames.js';
import { frameBytes } from './peers.js';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

function decodeAll(d: HpackDecoder, block: Buffer): string[] {
  return d.decode(block, 0, block.length);
}

/** Pairs of a flat list, for readable failures. */
function pairs(flat: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/** Asserts the dynamic table's entries, newest first, by decoding indexed fields 62.. on a probe. */
function assertTable(d: HpackDecoder, expected: string[][]): void {
  const probe = Buffer.from(expected.map((_, i) => 0x80 | (62 + i)));
  assert.deepEqual(pairs(decodeAll(d, probe)), expected);
  const beyond = Buffer.from([0x80 | (62 + expected.length)]);
  assert.throws(() => decodeAll(d, beyond), HpackError, 'table holds more entries than expected');
}

// RFC 7541 Appendix C (hex typed from the RFC).
const C3 = [
  '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '8286 84be 5808 6e6f 2d63 6163 6865',
  '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
];
const C4 = ['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf', '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'];
const REQUESTS = [
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'],
  [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'],
];
const REQUEST_TABLES = [
  [[':authority', 'www.example.com']],
  [
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ],
  [
    ['custom-key', 'custom-value'],
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ],
];
const C5 = [
  `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d
   546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
  '4803 3330 37c1 c0bf',
  `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f
   6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b
   2076 6572 7369 6f6e 3d31`,
];
const C6 = [
  `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7
   8f0b 97c8 e9ae 82ae 43d3`,
  '4883 640e ffc1 c0bf',
  `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335
   dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
];
const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESPONSES = [
  [':status', '302', 'cache-control', 'private', 'date', DATE1, 'location', LOCATION],
  [':status', '307', 'cache-control', 'private', 'date', DATE1, 'location', LOCATION],
  [':status', '200', 'cache-control', 'private', 'date', DATE2, 'location', LOCATION, 'content-encoding', 'gzip', 'set-cookie', COOKIE],
];
const RESPONSE_TABLES = [
  [
    ['location', LOCATION],
    ['date', DATE1],
    ['cache-control', 'private'],
    [':status', '302'],
  ],
  [
    [':status', '307'],
    ['location', LOCATION],
    ['date', DATE1],
    ['cache-control', 'private'],
  ],
  [
    ['set-cookie', COOKIE],
    ['content-encoding', 'gzip'],
    ['date', DATE2],
  ],
];

describe('HPACK: RFC 7541 Appendix C', () => {
  it('C.2: literal with and without indexing, never indexed, indexed', () => {
    const d = new HpackDecoder();
    assert.deepEqual(decodeAll(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')), ['custom-key', 'custom-header']);
    assertTable(d, [['custom-key', 'custom-header']]);
    const d2 = new HpackDecoder();
    assert.deepEqual(decodeAll(d2, hex('040c 2f73 616d 706c 652f 7061 7468')), [':path', '/sample/path']);
    assertTable(d2, []);
    assert.deepEqual(decodeAll(d2, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), ['password', 'secret']);
    assertTable(d2, []);
    assert.deepEqual(decodeAll(d2, hex('82')), [':method', 'GET']);
    assertTable(d2, []);
  });

  for (const [section, blocks] of [
    ['C.3 (raw strings)', C3],
    ['C.4 (Huffman)', C4],
  ] as const) {
    it(`${section}: three requests on one decoder`, () => {
      const d = new HpackDecoder();
      blocks.forEach((block, i) => {
        assert.deepEqual(decodeAll(d, hex(block)), REQUESTS[i]);
        assertTable(d, REQUEST_TABLES[i]!);
      });
    });
  }

  for (const [section, blocks] of [
    ['C.5 (raw strings)', C5],
    ['C.6 (Huffman)', C6],
  ] as const) {
    it(`${section}: three responses, table size 256, evictions`, () => {
      const d = new HpackDecoder(256);
      // The examples assume a 256-byte table from the start; the peer announces it with a size update.
      decodeAll(d, hex('3fe1 01'));
      blocks.forEach((block, i) => {
        assert.deepEqual(decodeAll(d, hex(block)), RESPONSES[i]);
        assertTable(d, RESPONSE_TABLES[i]!);
      });
    });
  }

  it('a size update evicts what no longer fits', () => {
    const d = new HpackDecoder();
    decodeAll(d, hex(C3[0]!));
    decodeAll(d, hex(C3[1]!));
    decodeAll(d, hex('3f 4b')); // 31 + 75 = 106: room for cache-control (53), not both (110)
    assertTable(d, [['cache-control', 'no-cache']]);
    decodeAll(d, hex('20 3fe1 1f')); // 0 (empties the table), then back to 4096: nothing returns
    assertTable(d, []);
  });

  it('C.4: our encoder writes the RFC bytes (Huffman when shorter, indexing, name from the static table)', () => {
    const e = new HpackEncoder();
    REQUESTS.forEach((fields, i) => {
      assert.equal(e.encode(fields).toString('hex'), hex(C4[i]!).toString('hex'));
    });
  });
});

describe('HPACK: Huffman code', () => {
  it('is canonical, complete, and EOS is 30 ones', () => {
    assert.equal(HUFFMAN_LENGTHS.length, 257);
    assert.equal(HUFFMAN_CODES.length, 257);
    assert.equal(HUFFMAN_LENGTHS[256], 30);
    assert.equal(HUFFMAN_CODES[256], 2 ** 30 - 1);
    const order = [...Array(257).keys()].sort((a, b) => HUFFMAN_LENGTHS[a]! - HUFFMAN_LENGTHS[b]! || a - b);
    let kraft = 0;
    let prev = -1;
    let prevLen = 0;
    for (const sym of order) {
      const len = HUFFMAN_LENGTHS[sym]!;
      const want = prev < 0 ? 0 : (prev + 1) * 2 ** (len - prevLen);
      assert.equal(HUFFMAN_CODES[sym], want, `symbol ${sym}`);
      prev = want;
      prevLen = len;
      kraft += 2 ** -len;
    }
    assert.equal(kraft, 1);
  });

  it('round-trips every byte value and agrees with node:http2 on the RFC example strings', () => {
    const all = Buffer.from([...Array(256).keys()]).toString('latin1');
    for (const s of [all, all.split('').reverse().join(''), '', 'a', 'www.example.com', 'no-cache', 'custom-key']) {
      const out = Buffer.alloc(huffmanEncodedLength(s));
      assert.equal(huffmanEncode(s, out, 0), out.length);
      const back = Buffer.alloc(out.length * 2);
      const n = huffmanDecode(out, 0, out.length, back);
      assert.equal(back.toString('latin1', 0, n), s);
    }
    const www = Buffer.alloc(huffmanEncodedLength('www.example.com'));
    huffmanEncode('www.example.com', www, 0);
    assert.equal(www.toString('hex'), 'f1e3c2e5f23a6ba0ab90f4ff');
  });
});

// --- Interop with nghttp2 (node:http2) ---------------------------------------------------------------

const PREFACE = CLIENT_PREFACE;
const frame = frameBytes;

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** Splits a socket's bytes into frames (after an optional preface) and joins HEADERS + CONTINUATION into header blocks. */
class FrameReader {
  private pending = Buffer.alloc(0);
  private block: Buffer[] | undefined;
  private prefaceLeft: number;
  readonly frames: Frame[] = [];
  constructor(
    socket: net.Socket,
    expectPreface: boolean,
    private readonly onBlock: (block: Buffer, stream: number) => void,
    private readonly onFrame: (f: Frame) => void = () => {},
  ) {
    this.prefaceLeft = expectPreface ? PREFACE.length : 0;
    socket.on('data', (chunk: Buffer) => this.push(chunk));
  }

  private push(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    if (this.prefaceLeft > 0) {
      if (this.pending.length < this.prefaceLeft) return;
      assert.deepEqual(this.pending.subarray(0, PREFACE.length), PREFACE);
      this.pending = this.pending.subarray(PREFACE.length);
      this.prefaceLeft = 0;
    }
    while (this.pending.length >= 9) {
      const len = this.pending.readUIntBE(0, 3);
      if (this.pending.length < 9 + len) return;
      const f = {
        type: this.pending[3]!,
        flags: this.pending[4]!,
        stream: this.pending.readUInt32BE(5) & 0x7fffffff,
        payload: this.pending.subarray(9, 9 + len),
      };
      this.pending = this.pending.subarray(9 + len);
      this.frames.push(f);
      this.onFrame(f);
      if (f.type === 1) {
        let p = f.payload;
        const pad = f.flags & 0x8 ? p[0]! : 0;
        if (f.flags & 0x8) p = p.subarray(1, p.length - pad);
        if (f.flags & 0x20) p = p.subarray(5);
        this.block = [p];
      } else if (f.type === 9) {
        this.block!.push(f.payload);
      } else {
        continue;
      }
      if (f.flags & 0x4) {
        this.onBlock(Buffer.concat(this.block!), f.stream);
        this.block = undefined;
      }
    }
  }
}

/** Deterministic PRNG (mulberry32), so a failing fuzz case can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomString(r: () => number, len: number, lo: number, hi: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(lo + Math.floor(r() * (hi - lo + 1)));
  return s;
}

/** Header sets a node:http2 client can send: printable values, repeats across requests, long values. */
function interopRequests(port: number): Record<string, string>[] {
  const r = rng(7);
  const out: Record<string, string>[] = [];
  for (let i = 0; i < 12; i++) {
    const h: Record<string, string> = {
      ':method': 'POST',
      ':scheme': 'http',
      ':authority': `127.0.0.1:${port}`,
      ':path': `/consulxds.bench.Echo/${i % 3 === 0 ? 'Unary' : `Method${i}`}`,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-accept-encoding': 'identity,deflate,gzip',
      'user-agent': 'grpc-go/1.70.0',
      // Every printable character, random lengths; some repeat, some new per request.
      'x-printable': randomString(r, 1 + Math.floor(r() * 60), 0x20, 0x7e).trim() || 'x',
      'x-repeat': `value-${i % 4}`,
      [`x-name-${i % 5}-${randomString(r, 4, 0x61, 0x7a)}`]: randomString(r, Math.floor(r() * 20), 0x21, 0x7e),
    };
    if (i % 4 === 1) h['x-long'] = randomString(r, 900 + Math.floor(r() * 2500), 0x21, 0x7e);
    if (i === 5) h.authorization = 'Bearer secret-token';
    out.push(h);
  }
  return out;
}

function sortedPairs(flat: readonly string[]): string[][] {
  return pairs(flat).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : a[1]! < b[1]! ? -1 : 1));
}

describe('HPACK: interop with nghttp2 (node:http2)', () => {
  for (const tableSize of [4096, 256]) {
    it(`decodes a node:http2 client's header blocks (our SETTINGS_HEADER_TABLE_SIZE ${tableSize})`, async () => {
      const decoder = new HpackDecoder(tableSize);
      const blocks: string[][] = [];
      let gotAll: () => void = () => {};
      const allDone = new Promise<void>((resolve) => {
        gotAll = resolve;
      });
      let expectedCount = 0;
      let firstByte = -1;
      const server = net.createServer((socket) => {
        socket.on('error', () => {});
        // Our SETTINGS (the table size when not the default), and the ACK of the client's.
        const settings = Buffer.alloc(tableSize === 4096 ? 0 : 6);
        if (tableSize !== 4096) {
          settings.writeUInt16BE(1, 0);
          settings.writeUInt32BE(tableSize, 2);
        }
        socket.write(Buffer.concat([frame(4, 0, 0, settings), frame(4, 1, 0)]));
        new FrameReader(socket, true, (block) => {
          if (blocks.length === 0) firstByte = block[0]!;
          blocks.push(decoder.decode(block, 0, block.length));
          if (blocks.length === expectedCount) gotAll();
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as net.AddressInfo).port;
      const client = http2.connect(`http://127.0.0.1:${port}`);
      client.on('error', () => {});
      try {
        const sent = interopRequests(port);
        expectedCount = sent.length;
        // With a small table, send after the client applied our SETTINGS, so nghttp2 announces the size.
        if (tableSize !== 4096) await once(client, 'remoteSettings');
        for (const h of sent) client.request(h, { endStream: true }).on('error', () => {});
        await allDone;
        assert.equal(blocks.length, sent.length);
        // nghttp2 announced our smaller size with a dynamic table size update (001xxxxx).
        if (tableSize !== 4096) assert.equal(firstByte & 0xe0, 0x20);
        blocks.forEach((got, i) => {
          assert.deepEqual(sortedPairs(got), sortedPairs(Object.entries(sent[i]!).flat()), `request ${i}`);
        });
      } finally {
        client.destroy();
        server.close();
      }
    });
  }

  it('encodes header blocks a node:http2 server decodes, before and after its SETTINGS_HEADER_TABLE_SIZE 256', async () => {
    const got: string[][] = [];
    let onStream: () => void = () => {};
    const server = http2.createServer({ settings: { headerTableSize: 256 } });
    server.on('stream', (stream: http2.ServerHttp2Stream, _headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      got.push(rawHeaders);
      stream.respond({ ':status': 200, 'x-reply': `r${got.length}` }, { endStream: true });
      onStream();
    });
    server.on('sessionError', () => {});
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    const encoder = new HpackEncoder();
    const responseDecoder = new HpackDecoder();
    const responses: string[][] = [];
    let serverSettings: Frame | undefined;
    let goaway: Frame | undefined;
    new FrameReader(
      socket,
      false,
      (block) => responses.push(responseDecoder.decode(block, 0, block.length)),
      (f) => {
        if (f.type === 4 && (f.flags & 1) === 0) serverSettings = f;
        if (f.type === 7) goaway = f;
      },
    );
    const sent = interopRequests(port).map((h) => Object.entries(h).flat());
    let streamId = 1;
    const blocks: Buffer[] = [];
    const send = (fields: string[]) => {
      blocks.push(encoder.encode(fields));
      socket.write(frame(1, 0x5, streamId, blocks.at(-1)!));
      streamId += 2;
    };
    const waitFor = async (n: number) => {
      while (got.length < n) {
        assert.equal(goaway, undefined, `server sent GOAWAY ${goaway?.payload.toString('hex')}`);
        await new Promise<void>((resolve) => {
          onStream = resolve;
          setTimeout(resolve, 50);
        });
      }
    };
    try {
      await once(socket, 'connect');
      socket.write(Buffer.concat([PREFACE, frame(4, 0, 0)]));
      // First half with the default 4096 table, before we have read the server's SETTINGS.
      const half = sent.length / 2;
      for (const fields of sent.slice(0, half)) send(fields);
      await waitFor(half);
      assert.ok(serverSettings, 'server SETTINGS seen');
      const p = serverSettings.payload;
      for (let i = 0; i < p.length; i += 6) if (p.readUInt16BE(i) === 1) encoder.setPeerMaxTableSize(p.readUInt32BE(i + 2));
      // ACK, then the rest: the first block now starts with a size update to 256, and entries evict.
      socket.write(frame(4, 1, 0));
      for (const fields of sent.slice(half)) send(fields);
      await waitFor(sent.length);
      assert.equal(goaway, undefined);
      assert.deepEqual(got, sent);
      // The block after the change started with the size update to 256 (RFC 7541 6.3).
      assert.equal(blocks[half]!.subarray(0, 3).toString('hex'), '3fe101');
      // The server's (nghttp2's) response blocks decode with our decoder too.
      while (responses.length < sent.length) await new Promise((resolve) => setTimeout(resolve, 20));
      responses.forEach((fields, i) => {
        assert.deepEqual(fields.slice(0, 2), [':status', '200']);
        assert.deepEqual(fields.slice(2, 4), ['x-reply', `r${i + 1}`]);
      });
    } finally {
      socket.destroy();
      server.close();
    }
  });
});

// --- Round trip fuzz -------------------------------------------------------------------------------------

describe('HPACK: round trip fuzz', () => {
  it('random names and byte values over many blocks, table sizes changing between blocks', () => {
    const r = rng(42);
    const names = [':path', ':authority', 'content-type', 'cookie', 'authorization', 'grpc-timeout', 'x-a', 'x-b', 'x-c'];
    const sizes = [0, 33, 64, 100, 256, 4096, 65536];
    for (let conn = 0; conn < 20; conn++) {
      const encoder = new HpackEncoder();
      const decoder = new HpackDecoder(4096);
      for (let block = 0; block < 200; block++) {
        if (r() < 0.1) encoder.setPeerMaxTableSize(sizes[Math.floor(r() * sizes.length)]!);
        if (r() < 0.05) {
          // Two changes before one block: the smallest has to reach the decoder too.
          encoder.setPeerMaxTableSize(sizes[Math.floor(r() * sizes.length)]!);
          encoder.setPeerMaxTableSize(sizes[Math.floor(r() * sizes.length)]!);
        }
        const fields: string[] = [];
        const n = Math.floor(r() * 12);
        for (let i = 0; i < n; i++) {
          const name = r() < 0.6 ? names[Math.floor(r() * names.length)]! : randomString(r, 1 + Math.floor(r() * 12), 0, 255);
          const long = r() < 0.05;
          const value = randomString(r, Math.floor(r() * (long ? 3000 : r() < 0.5 ? 4 : 40)), 0, 255);
          fields.push(name, value);
          if (r() < 0.3) fields.push(name, value); // exact repeats: the dynamic table's hits
        }
        const encoded = encoder.encode(fields);
        assert.deepEqual(decoder.decode(encoded, 0, encoded.length), fields, `connection ${conn}, block ${block}`);
      }
    }
  });

  it('repeated gRPC request fields become one byte each', () => {
    const fields = [
      ':method',
      'POST',
      ':scheme',
      'http',
      ':path',
      '/consulxds.bench.Echo/Unary',
      ':authority',
      'localhost:10000',
      'content-type',
      'application/grpc',
      'te',
      'trailers',
      'grpc-accept-encoding',
      'identity,deflate,gzip',
      'user-agent',
      'grpc-go/1.70.0',
    ];
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    const first = e.encode(fields);
    assert.deepEqual(d.decode(first, 0, first.length), fields);
    const second = e.encode(fields);
    assert.equal(second.length, fields.length / 2);
    assert.deepEqual(d.decode(second, 0, second.length), fields);
  });

  it('announces table size changes at the next block: the smallest since the last block first, then the current one', () => {
    const e = new HpackEncoder();
    e.setPeerMaxTableSize(65536); // above the 4096 we use at most: nothing to announce
    assert.equal(e.encode(['x-a', '1']).toString('hex').slice(0, 2), '40');
    e.setPeerMaxTableSize(0);
    e.setPeerMaxTableSize(100);
    assert.equal(e.encode([]).toString('hex'), '20' + '3f45');
    e.setPeerMaxTableSize(100);
    assert.equal(e.encode([]).length, 0);
  });

  it('sends credentials never-indexed and per-request values without indexing', () => {
    const e = new HpackEncoder();
    const block = e.encode(['authorization', 'Bearer x', 'cookie', 'a=b', 'cookie', 'session=0123456789abcdefghij', 'x-request-id', 'r-1']);
    const d = new HpackDecoder();
    assert.equal(block[0]! & 0xf0, 0x10, 'authorization never indexed');
    // The dynamic table holds only the long cookie.
    assert.deepEqual(d.decode(block, 0, block.length).length, 8);
    assertTable(d, [['cookie', 'session=0123456789abcdefghij']]);
  });
});

// --- Errors ------------------------------------------------------------------------------------------------

describe('HPACK: decode errors', () => {
  const cases: [string, string, RegExp, number?][] = [
    ['indexed field 0', '80', /index 0/],
    ['index past the tables', 'be', /index 62 beyond/],
    ['literal name index past the tables', '7e 0161', /index 62 beyond/],
    ['integer longer than 6 bytes', 'ff 80 80 80 80 80 80 01', /more than 6 bytes/],
    ['integer above 2^31 - 1', 'ff ff ff ff ff 0f', /above 2\^31/],
    ['integer cut short', 'ff 80', /past the end/],
    ['string past the end', '40 05 6162', /runs past the end/],
    ['string missing', '40', /missing/],
    ['Huffman string containing EOS', '00 84 ffffffff 00', /invalid Huffman/],
    ['Huffman padding longer than 7 bits', '00 82 1fff 00', /invalid Huffman/],
    ['Huffman padding not all ones', '00 81 18 00', /invalid Huffman/],
    ['Huffman padding of exactly 8 ones', '00 82 f8ff 00', /invalid Huffman/], // '&' is the 8-bit code 11111000
    ['size update above our SETTINGS_HEADER_TABLE_SIZE', '3fe1 1f', /size update to 4096, above our SETTINGS_HEADER_TABLE_SIZE 256/, 256],
    ['size update after a field', '82 20', /after the first header field/],
  ];
  for (const [what, bytes, message, tableSize] of cases) {
    it(what, () => {
      const d = new HpackDecoder(tableSize);
      assert.throws(
        () => decodeAll(d, hex(bytes)),
        (e: unknown) => e instanceof HpackError && message.test(e.message),
      );
    });
  }

  it('header list larger than maxHeaderListSize (name + value + 32 per field)', () => {
    const d = new HpackDecoder();
    d.maxHeaderListSize = 85; // :method GET (42) + :scheme http (43)
    assert.deepEqual(decodeAll(d, hex('8286')), [':method', 'GET', ':scheme', 'http']);
    d.maxHeaderListSize = 84;
    assert.throws(
      () => decodeAll(d, hex('8286')),
      (e: unknown) => e instanceof HpackError && /MAX_HEADER_LIST_SIZE 84/.test(e.message),
    );
  });

  it('decodes a block inside a larger buffer, from start to end only', () => {
    const d = new HpackDecoder();
    const buf = hex('ff 82 86 ff');
    assert.deepEqual(d.decode(buf, 1, 3), [':method', 'GET', ':scheme', 'http']);
    assert.deepEqual(d.decode(new Uint8Array(buf), 1, 3), [':method', 'GET', ':scheme', 'http']);
  });
});
