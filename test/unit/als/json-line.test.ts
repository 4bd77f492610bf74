/**
 * The byte-writing JSON line formatter against a JSON.stringify-built line: byte for byte the same
 * for fuzzed strings (quotes, backslashes, every control character, DEL, non-ASCII, surrogate
 * pairs, lone surrogates) in every string field, for edge-case numbers, times and empty fields,
 * for HTTP and TCP records, and for records straight from the wire reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendAccessLine, identityFields, jsonString, LineBuffer } from '../../../src/als/json-line.js';
import { decodeAlsMessage } from '../../../src/als/decode.js';
import { messageType } from '../../../src/envoy/protos.js';
import type { AccessRecord, StreamIdentity } from '../../../src/als/access-record.js';

/** The line as JSON.stringify writes it: same fields, same order, same omissions. */
function reference(r: AccessRecord, id: StreamIdentity, nowMs: number): Buffer {
  const o: Record<string, unknown> = { time: new Date(r.startMs > 0 ? r.startMs : nowMs).toISOString(), type: r.kind };
  const put = (name: string, v: string) => {
    if (v !== '') o[name] = v;
  };
  const ms = (v: number) => Math.round(v * 1000) / 1000;
  put('node', id.node);
  put('log_name', id.logName);
  if (r.kind === 'http') {
    put('method', r.method);
    put('authority', r.authority);
    put('path', r.path);
    put('protocol', r.protocol);
    o.status = r.status;
  }
  put('route', r.route);
  put('upstream_cluster', r.cluster);
  put('upstream_host', r.upstreamHost);
  put('downstream', r.downstream);
  o.duration_ms = ms(r.durationMs);
  if (r.upstreamMs >= 0) o.upstream_ms = ms(r.upstreamMs);
  o.bytes_in = r.bytesIn;
  o.bytes_out = r.bytesOut;
  put('flags', r.flags);
  put('request_id', r.requestId);
  put('user_agent', r.userAgent);
  put('details', r.details);
  return Buffer.from(`${JSON.stringify(o)}\n`, 'utf8');
}

function line(r: AccessRecord, id: StreamIdentity, nowMs: number, out = new LineBuffer()): Buffer {
  const from = out.pos;
  appendAccessLine(out, r, identityFields(id), nowMs);
  return out.buf.subarray(from, out.pos);
}

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

// Pieces a fuzzed string is made of: plain ASCII, everything JSON escapes, DEL, 2- and 3-byte
// UTF-8, a surrogate pair, and both halves of one alone.
const PIECES = ['a', 'Z', '/', ' ', '~', '"', '\\', '\u007f', 'é', 'ü', '☃', '日本', '😀', '\ud800', '\udbff', '\udc00', '\udfff', '\u2028', '\ufeff'];
for (let c = 0; c < 0x20; c++) PIECES.push(String.fromCharCode(c));

function fuzz(rand: () => number): string {
  if (rand() < 0.15) return '';
  let s = '';
  const n = Math.floor(rand() * 12);
  for (let i = 0; i < n; i++) s += rand() < 0.5 ? 'abc/-_.?='.charAt(Math.floor(rand() * 9)) : PIECES[Math.floor(rand() * PIECES.length)]!;
  return s;
}

const base: AccessRecord = {
  kind: 'http',
  startMs: 1_700_000_000_250,
  method: 'GET',
  authority: 'www.example.com',
  path: '/api',
  protocol: 'HTTP/1.1',
  status: 200,
  route: 'api',
  cluster: 'web',
  upstreamHost: '10.0.0.1:8080',
  downstream: '203.0.113.9:41000',
  durationMs: 12.5,
  upstreamMs: 3,
  bytesIn: 0,
  bytesOut: 2048,
  flags: '',
  requestId: 'req-1',
  userAgent: 'curl/8',
  details: 'via_upstream',
};

test('fuzzed strings in every escaped field: bytes equal the JSON.stringify line', () => {
  const rand = rng(15);
  const out = new LineBuffer();
  for (let i = 0; i < 20_000; i++) {
    if (i % 50 === 0) out.reset();
    const r: AccessRecord = {
      ...base,
      kind: rand() < 0.8 ? 'http' : 'tcp',
      authority: fuzz(rand),
      path: fuzz(rand),
      route: fuzz(rand),
      cluster: fuzz(rand),
      upstreamHost: fuzz(rand),
      downstream: fuzz(rand),
      requestId: fuzz(rand),
      userAgent: fuzz(rand),
      details: fuzz(rand),
    };
    const id = { node: fuzz(rand), cluster: '', logName: fuzz(rand) };
    const got = line(r, id, 0, out);
    const want = reference(r, id, 0);
    if (!got.equals(want)) assert.fail(`record ${i}: ${JSON.stringify(r)}\n got ${got.toString('hex')}\nwant ${want.toString('hex')}`);
  }
});

test('every single character, alone and between ASCII, as jsonString and the line write it', () => {
  const out = new LineBuffer();
  for (let c = 0; c <= 0xffff; c++) {
    for (const s of [String.fromCharCode(c), `a${String.fromCharCode(c)}b`]) {
      out.reset();
      out.jsonString(s);
      assert.equal(jsonString(s), JSON.stringify(s));
      assert.ok(out.buf.subarray(0, out.pos).equals(Buffer.from(JSON.stringify(s), 'utf8')), `U+${c.toString(16)}`);
    }
  }
});

test('numbers, durations and times: edge cases write what String() and toISOString write', () => {
  const out = new LineBuffer();
  const text = (write: (o: LineBuffer) => void) => {
    out.reset();
    write(out);
    return out.toString();
  };
  const rand = rng(7);
  const odd = [
    0,
    -0,
    1,
    9,
    10,
    99,
    100,
    2 ** 31,
    2 ** 32 + 1,
    2 ** 40,
    Number.MAX_SAFE_INTEGER,
    2 ** 53 + 2,
    1e21,
    1.5,
    -1,
    -12.25,
    Number.NaN,
    Number.POSITIVE_INFINITY,
  ];
  for (const v of odd)
    assert.equal(
      text((o) => o.number(v)),
      String(v),
      `number ${v}`,
    );
  const durations = [...odd, 0.0004, 0.0005, 0.001, 0.0015, 0.1, 0.999, 1.0005, 12.3456, 999999.9999, 1e12 - 0.001, 1e12, 1e15, 123456789.123];
  for (let i = 0; i < 20_000; i++) durations.push(rand() * 10 ** Math.floor(rand() * 14), Math.floor(rand() * 1e6) / 1e3, rand() * 1e6);
  for (const v of durations)
    assert.equal(
      text((o) => o.millis(v)),
      String(Math.round(v * 1000) / 1000),
      `duration ${v}`,
    );

  // Start times around second boundaries, fractional, and out of time order; 0 means "now".
  const starts = [
    1_700_000_000_000,
    1_700_000_000_999,
    1_700_000_001_000,
    1_700_000_000_001,
    1_700_000_000_000.5,
    1_700_000_000_009.9,
    1,
    999,
    86_400_000 * 366 * 30,
  ];
  for (let i = 0; i < 2000; i++) starts.push(1_600_000_000_000 + Math.floor(rand() * 1e11), rand() * 1e13);
  const id = { node: 'n', cluster: '', logName: '' };
  for (const startMs of [...starts, 0]) {
    const r = { ...base, startMs, durationMs: startMs % 1000, bytesIn: startMs % 7, upstreamMs: startMs % 2 === 0 ? -1 : 0 };
    assert.ok(line(r, id, 1_650_000_000_123).equals(reference(r, id, 1_650_000_000_123)), `start ${startMs}`);
  }
});

test('empty and TCP records, and records from the wire reader', () => {
  const empty: AccessRecord = {
    ...base,
    kind: 'tcp',
    method: '',
    authority: '',
    path: '',
    protocol: '',
    route: '',
    cluster: '',
    upstreamHost: '',
    downstream: '',
    requestId: '',
    userAgent: '',
    details: '',
    status: 0,
    upstreamMs: -1,
  };
  for (const r of [empty, { ...empty, kind: 'http' as const }, { ...base, flags: 'UH,URX', method: 'POST', protocol: 'HTTP/2' }]) {
    for (const id of [
      { node: '', cluster: '', logName: '' },
      { node: 'envoy-1', cluster: 'c', logName: 'als' },
    ]) {
      assert.ok(line(r, id, 1_700_000_000_000).equals(reference(r, id, 1_700_000_000_000)), JSON.stringify(r));
    }
  }
  const T = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  const bytes = T.encode(
    T.fromObject({
      http_logs: {
        log_entry: [
          {
            common_properties: {
              start_time: { seconds: 1_700_000_000, nanos: 5e6 },
              duration: { nanos: 1_234_567 },
              downstream_remote_address: { socket_address: { address: '2001:db8::1', port_value: 443 } },
              upstream_remote_address: { pipe: { path: '/run/ünï"x".sock' } },
              upstream_cluster: 'ünïcødé-☃',
              response_flags: { no_route_found: true },
            },
            request: { request_method: 'PATCH', path: '/ü/"q"\\\t\u0001', authority: 'a"b', request_id: '\u00e9\ud83d\ude00', user_agent: 'ua\n' },
            response: { response_code: { value: 404 }, response_code_details: 'route_not_found' },
          },
        ],
      },
      tcp_logs: { log_entry: [{ common_properties: { upstream_cluster: 'mongo' }, connection_properties: { received_bytes: 2 ** 40 } }] },
    }),
  ).finish();
  const id = { node: 'envoy-1', cluster: '', logName: 'als' };
  for (const r of decodeAlsMessage(bytes).records) assert.ok(line(r, id, 1_700_000_000_000).equals(reference(r, id, 1_700_000_000_000)), r.kind);
});

test('wire records: path and request id copied from arbitrary bytes (invalid UTF-8 too) and fuzzed addresses equal the JSON.stringify line', () => {
  const T = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  const rand = rng(99);
  const id = { node: 'envoy-1', cluster: '', logName: 'als' };
  const out = new LineBuffer();
  const PATH = 'P'.repeat(12);
  const REQ = 'Q'.repeat(9);
  for (let m = 0; m < 200; m++) {
    const entries = Array.from({ length: 20 }, () => {
      const host = rand() < 0.3 ? fuzz(rand) : `203.0.113.${Math.floor(rand() * 256)}`;
      const downstream =
        rand() < 0.1 ? { pipe: { path: fuzz(rand) } } : rand() < 0.1 ? {} : { socket_address: { address: host, port_value: Math.floor(rand() * 65536) } };
      return {
        common_properties: { start_time: { seconds: 1_700_000_000 + m }, downstream_remote_address: downstream },
        request: { path: rand() < 0.1 ? '' : PATH, request_id: rand() < 0.1 ? '' : REQ },
      };
    });
    const bytes = Buffer.from(T.encode(T.fromObject({ http_logs: { log_entry: entries } })).finish());
    // Overwrite the placeholders with random bytes: ASCII mostly, sometimes anything at all.
    for (const placeholder of [PATH, REQ]) {
      for (let at = bytes.indexOf(placeholder); at >= 0; at = bytes.indexOf(placeholder, at + 1)) {
        const any = rand() < 0.4;
        for (let k = 0; k < placeholder.length; k++) bytes[at + k] = any ? Math.floor(rand() * 256) : 0x20 + Math.floor(rand() * 0x5f);
      }
    }
    out.reset();
    for (const r of decodeAlsMessage(bytes).records) {
      const got = line(r, id, 0, out);
      const want = reference(r, id, 0);
      if (!got.equals(want))
        assert.fail(
          `message ${m}: path ${JSON.stringify(r.path)} id ${JSON.stringify(r.requestId)} downstream ${JSON.stringify(r.downstream)}\n got ${got}\nwant ${want}`,
        );
    }
  }
});

test('wire records: every byte value at every position of a path (in a 4-byte word and in the tail) writes as JSON.stringify does', () => {
  const T = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  const id = { node: '', cluster: '', logName: '' };
  const PATH = 'abcdefghijklmn'; // 14 bytes: three words and a two-byte tail
  const out = new LineBuffer();
  for (let c = 0; c < 256; c++) {
    const entries = Array.from({ length: PATH.length }, () => ({ request: { path: PATH } }));
    const bytes = Buffer.from(T.encode(T.fromObject({ http_logs: { log_entry: entries } })).finish());
    let k = 0;
    for (let at = bytes.indexOf(PATH); at >= 0; at = bytes.indexOf(PATH, at + 1)) bytes[at + k++] = c;
    out.reset();
    for (const r of decodeAlsMessage(bytes).records) {
      const got = line(r, id, 0, out);
      const want = reference(r, id, 0);
      if (!got.equals(want)) assert.fail(`byte ${c} in ${JSON.stringify(r.path)}\n got ${got}\nwant ${want}`);
    }
  }
});
