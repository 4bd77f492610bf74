/**
 * Our ALS wire reader against protobufjs on the same bytes: every field we log comes out as
 * protobufjs reads it, for HTTP and TCP entries, with and without the fields we skip (header
 * maps, TLS properties, metadata, sample rate), every response flag, pipes and sockets; and
 * malformed bytes throw AlsDecodeError (never anything else, never a hang).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { messageType } from '../../../src/envoy/protos.js';
import { decodeAlsMessage, AlsDecodeError } from '../../../src/als/decode.js';
import type { AccessRecord } from '../../../src/als/access-record.js';

const T = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
const FlagsType = messageType('envoy.data.accesslog.v3.ResponseFlags');
const encode = (m: object) => T.encode(T.fromObject(m)).finish();

/** Deterministic pseudo-random numbers, so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

const FLAG_FIELDS = FlagsType.fieldsArray.map((f) => f.name);

function randomHttp(rand: () => number, i: number): Record<string, unknown> {
  const pick = <V>(xs: readonly V[]): V => xs[Math.floor(rand() * xs.length)]!;
  const maybe = (o: object) => (rand() < 0.7 ? o : {});
  const flags: Record<string, unknown> = {};
  for (const f of FLAG_FIELDS) if (rand() < 0.1) flags[f] = f === 'unauthorized_details' ? { reason: 'EXTERNAL_SERVICE' } : true;
  return {
    common_properties: {
      sample_rate: 1,
      ...maybe({ start_time: { seconds: 1_700_000_000 + i, nanos: Math.floor(rand() * 1e9) } }),
      ...maybe({ duration: { seconds: Math.floor(rand() * 3), nanos: Math.floor(rand() * 1e9) } }),
      ...maybe({ time_to_last_downstream_tx_byte: { seconds: 0, nanos: Math.floor(rand() * 1e9) } }),
      ...maybe({ time_to_first_upstream_rx_byte: { nanos: Math.floor(rand() * 1e9) } }),
      ...maybe({ upstream_remote_address: { socket_address: { address: `10.0.0.${i % 255}`, port_value: 8000 + i } } }),
      ...maybe({ downstream_remote_address: rand() < 0.5 ? { pipe: { path: '/run/envoy.sock' } } : { socket_address: { address: '::1', port_value: 1 } } }),
      ...maybe({ upstream_cluster: pick(['web-api-perl', 'web-api-go', 'ünïcødé-☃']) }),
      ...maybe({ route_name: pick(['/api', '/asset', '']) }),
      ...(Object.keys(flags).length > 0 ? { response_flags: flags } : {}),
      metadata: { filter_metadata: { 'envoy.lb': { fields: { canary: { bool_value: true } } } } },
      tls_properties: { tls_version: 'TLSv1_3', tls_sni_hostname: 'www.example.com' },
      custom_tags: { team: 'infra' },
      upstream_request_attempt_count: 2,
    },
    protocol_version: pick(['HTTP10', 'HTTP11', 'HTTP2', 'HTTP3', 'PROTOCOL_UNSPECIFIED']),
    request: {
      request_method: pick(['GET', 'POST', 'PATCH', 'METHOD_UNSPECIFIED']),
      scheme: 'http',
      authority: pick(['www.mirrativ.com', 'a"b\\c', '']),
      port: { value: 8000 },
      path: `/api/${i}?q=${'x'.repeat(Math.floor(rand() * 300))}`,
      user_agent: 'curl/8',
      request_id: `id-${i}`,
      request_headers: { 'x-a': '1', 'x-b': '2' },
      request_body_bytes: Math.floor(rand() * 2 ** 40),
      request_headers_bytes: 100,
    },
    response: {
      ...maybe({ response_code: { value: pick([200, 204, 301, 404, 503]) } }),
      response_body_bytes: Math.floor(rand() * 1e6),
      response_headers: { server: 'envoy' },
      response_code_details: pick(['via_upstream', 'route_not_found', '']),
    },
  };
}

/** protobufjs' toObject output: untyped JSON, read only by the oracle below. */
// biome-ignore lint/suspicious/noExplicitAny: protobufjs' toObject output has no static type; the oracle reads it as is
type Json = any;

/** What protobufjs says each logged field is, converted the way the reader documents. */
function oracle(entryBytesOwner: Uint8Array): AccessRecord[] {
  const o = T.toObject(T.decode(entryBytesOwner), { longs: Number, enums: String, defaults: false }) as Json;
  const out: AccessRecord[] = [];
  const ms = (d: Json) => (d ? (d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6 : -1);
  const addr = (a: Json) => (a?.socket_address ? `${a.socket_address.address ?? ''}:${a.socket_address.port_value ?? 0}` : (a?.pipe?.path ?? ''));
  const flagCodes = [
    'LH',
    'UH',
    'UT',
    'LR',
    'UR',
    'UF',
    'UC',
    'UO',
    'NR',
    'DI',
    'FI',
    'RL',
    'UAEX',
    'RLSE',
    'DC',
    'URX',
    'SI',
    'IH',
    'DPE',
    'UMSDR',
    'RFCF',
    'NFCF',
    'DT',
    'UPE',
    'NC',
    'OM',
    'DF',
    'DR',
  ];
  const protocols: Record<string, string> = { HTTP10: 'HTTP/1.0', HTTP11: 'HTTP/1.1', HTTP2: 'HTTP/2', HTTP3: 'HTTP/3' };
  const push = (kind: 'http' | 'tcp', e: Json) => {
    const c = e.common_properties ?? {};
    const flags = FLAG_FIELDS.map((f, i) => (c.response_flags?.[f] ? flagCodes[i] : undefined))
      .filter(Boolean)
      .join(',');
    const duration = ms(c.duration) >= 0 ? ms(c.duration) : Math.max(0, ms(c.time_to_last_downstream_tx_byte));
    out.push({
      kind,
      startMs: c.start_time ? c.start_time.seconds * 1000 + Math.floor((c.start_time.nanos ?? 0) / 1e6) : 0,
      method: kind === 'http' && e.request?.request_method && e.request.request_method !== 'METHOD_UNSPECIFIED' ? e.request.request_method : '',
      authority: e.request?.authority ?? '',
      path: e.request?.path ?? '',
      protocol: protocols[e.protocol_version] ?? '',
      status: e.response?.response_code?.value ?? 0,
      route: c.route_name ?? '',
      cluster: c.upstream_cluster ?? '',
      upstreamHost: addr(c.upstream_remote_address),
      downstream: addr(c.downstream_remote_address),
      durationMs: duration,
      upstreamMs: ms(c.time_to_first_upstream_rx_byte),
      bytesIn: kind === 'http' ? (e.request?.request_body_bytes ?? 0) : (e.connection_properties?.received_bytes ?? 0),
      bytesOut: kind === 'http' ? (e.response?.response_body_bytes ?? 0) : (e.connection_properties?.sent_bytes ?? 0),
      flags,
      requestId: e.request?.request_id ?? '',
      userAgent: e.request?.user_agent ?? '',
      details: e.response?.response_code_details ?? '',
    });
  };
  for (const e of o.http_logs?.log_entry ?? []) push('http', e);
  for (const e of o.tcp_logs?.log_entry ?? []) push('tcp', e);
  return out;
}

const plain = (rs: readonly AccessRecord[]) =>
  rs.map((r) => {
    const {
      kind,
      startMs,
      method,
      authority,
      path,
      protocol,
      status,
      route,
      cluster,
      upstreamHost,
      downstream,
      durationMs,
      upstreamMs,
      bytesIn,
      bytesOut,
      flags,
      requestId,
      userAgent,
      details,
    } = r;
    return {
      kind,
      startMs,
      method,
      authority,
      path,
      protocol,
      status,
      route,
      cluster,
      upstreamHost,
      downstream,
      durationMs,
      upstreamMs,
      bytesIn,
      bytesOut,
      flags,
      requestId,
      userAgent,
      details,
    };
  });

test('HTTP entries: every logged field matches protobufjs on 2,000 random entries', () => {
  const rand = rng(42);
  for (let batch = 0; batch < 40; batch++) {
    const bytes = encode({ http_logs: { log_entry: Array.from({ length: 50 }, (_, k) => randomHttp(rand, batch * 50 + k)) } });
    const got = decodeAlsMessage(bytes);
    assert.equal(got.identifier, undefined);
    assert.deepEqual(plain(got.records), oracle(bytes));
  }
});

test('TCP entries and the identifier', () => {
  const bytes = encode({
    identifier: { node: { id: 'envoy-1', cluster: 'edge', metadata: { fields: { a: { string_value: 'b' } } } }, log_name: 'tcp_log' },
    tcp_logs: {
      log_entry: [
        {
          common_properties: { upstream_cluster: 'mongo', duration: { seconds: 2 }, response_flags: { upstream_connection_failure: true } },
          connection_properties: { received_bytes: 10, sent_bytes: 2 ** 40 },
        },
        {},
      ],
    },
  });
  const got = decodeAlsMessage(bytes);
  assert.deepEqual(got.identifier, { node: 'envoy-1', cluster: 'edge', logName: 'tcp_log' });
  assert.deepEqual(plain(got.records), oracle(bytes));
  assert.equal(got.records[0]?.bytesOut, 2 ** 40);
  assert.equal(got.records[0]?.flags, 'UF');
});

test('malformed bytes throw AlsDecodeError, and only that', () => {
  const bytes = encode({ identifier: { node: { id: 'n' }, log_name: 'l' }, http_logs: { log_entry: [randomHttp(rng(7), 1), randomHttp(rng(8), 2)] } });
  let threw = 0;
  for (let cut = 1; cut < bytes.length; cut++) {
    try {
      decodeAlsMessage(bytes.subarray(0, cut));
    } catch (err) {
      assert.ok(err instanceof AlsDecodeError, `cut at ${cut}: ${String(err)}`);
      assert.equal(err.code, 'CXDS_ALS_DECODE');
      threw++;
    }
  }
  assert.ok(threw > bytes.length / 2, 'most truncations are detected');
  assert.throws(() => decodeAlsMessage(Uint8Array.from([0x0b])), AlsDecodeError, 'a group wire type');
  assert.throws(() => decodeAlsMessage(Uint8Array.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f])), AlsDecodeError, 'a length past the end');
  assert.throws(() => decodeAlsMessage(Uint8Array.from(new Array(11).fill(0xff))), AlsDecodeError, 'an endless varint');
});
