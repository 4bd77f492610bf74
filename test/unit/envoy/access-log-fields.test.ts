/**
 * The one access-log vocabulary table (src/envoy/access-log-fields.ts) against Envoy's proto, and
 * both ends of ALS through it: what the proxy's client writes (short codes and protocol strings ->
 * proto) the sink's decoder reads back unchanged, for every response flag and protocol.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { messageType } from '../../../src/envoy/protos.js';
import {
  FLAG_CODE_BY_FIELD,
  PROTOCOL_BY_HTTP_VERSION,
  UNAUTHORIZED_FLAG_FIELD,
  httpVersionName,
  responseFlagsObject,
} from '../../../src/envoy/access-log-fields.js';
import { decodeAlsMessage } from '../../../src/als/decode.js';

const T = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
const FlagsType = messageType('envoy.data.accesslog.v3.ResponseFlags');
const HttpVersion = messageType('envoy.data.accesslog.v3.HTTPAccessLogEntry').lookupEnum('HTTPVersion');

function roundTrip(entry: Record<string, unknown>): { flags: string; protocol: string } {
  const bytes = T.encode(T.fromObject({ http_logs: { log_entry: [entry] } })).finish();
  const rec = decodeAlsMessage(bytes).records[0]!;
  return { flags: rec.flags, protocol: rec.protocol };
}

test('the table has one short code per ResponseFlags field of the proto, by the same numbers and names', () => {
  const fields = FlagsType.fieldsArray;
  assert.equal(FLAG_CODE_BY_FIELD.length, Math.max(...fields.map((f) => f.id)) + 1);
  assert.equal(FLAG_CODE_BY_FIELD[0], '');
  for (const f of fields) {
    const code = FLAG_CODE_BY_FIELD[f.id]!;
    assert.match(code, /^[A-Z]+$/, `field ${f.id} ${f.name}`);
    if (f.id === UNAUTHORIZED_FLAG_FIELD) {
      assert.equal(f.name, 'unauthorized_details');
      assert.deepEqual(responseFlagsObject(code), {}, 'a message field has no bool to set');
    } else {
      assert.equal(f.type, 'bool', f.name);
      assert.deepEqual(responseFlagsObject(code), { [f.name]: true });
    }
  }
  assert.equal(new Set(FLAG_CODE_BY_FIELD).size, FLAG_CODE_BY_FIELD.length, 'codes are unique');
});

test('the protocol table follows HTTPAccessLogEntry.HTTPVersion', () => {
  for (const [name, id] of Object.entries(HttpVersion.values)) {
    assert.equal(httpVersionName(PROTOCOL_BY_HTTP_VERSION[id]!), name);
  }
  assert.equal(PROTOCOL_BY_HTTP_VERSION.length, Object.keys(HttpVersion.values).length);
  assert.equal(httpVersionName('HTTP/0.9'), 'PROTOCOL_UNSPECIFIED');
});

test('every bool flag and every protocol the client writes, the sink decodes back unchanged', () => {
  const codes = FLAG_CODE_BY_FIELD.filter((c, n) => c !== '' && n !== UNAUTHORIZED_FLAG_FIELD);
  for (const code of codes) {
    assert.equal(roundTrip({ common_properties: { response_flags: responseFlagsObject(code) } }).flags, code);
  }
  // Several at once come back in field-number order; unknown codes are left out.
  assert.equal(roundTrip({ common_properties: { response_flags: responseFlagsObject('SI,XX,UT,DR') } }).flags, 'UT,SI,DR');
  for (const protocol of PROTOCOL_BY_HTTP_VERSION.filter((p) => p !== '')) {
    assert.equal(roundTrip({ common_properties: {}, protocol_version: httpVersionName(protocol) }).protocol, protocol);
  }
});
