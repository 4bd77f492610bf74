/**
 * Header fields between HPACK's flat lists ([name, value, ...]) and the proxy's HeaderMap, with
 * the checks RFC 9113 8.2-8.3 puts on a message: lower-case token names, no connection-specific
 * fields, `te` only "trailers", pseudo-header fields first, known, once each, and the ones a
 * request or a response must carry. A message that fails them is malformed (a stream error
 * PROTOCOL_ERROR), as nghttp2 and Envoy treat it.
 */
import type { HeaderMap } from '../../upstream/conn-pool.js';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
/** NUL, CR or LF anywhere (RFC 9113 8.2.1). */
const BAD_VALUE = /[\0\r\n]/;
/** Blanks at either end: RFC 9113 8.2.1 calls the message malformed, but Envoy 1.40 serves it; we drop them (RFC 9110 5.5). */
const EDGE_BLANK = /^[ \t]|[ \t]$/;
/** Fields that describe one connection: malformed in HTTP/2 (RFC 9113 8.2.2), never sent. */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const REQUEST_PSEUDO: ReadonlySet<string> = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);

/**
 * A request's fields as a HeaderMap (pseudo-header fields included under their names), or a
 * string saying why the request is malformed. Repeated fields become arrays; `cookie` fields are
 * joined with "; " (RFC 9113 8.2.3).
 */
export function requestMap(fields: readonly string[]): HeaderMap | string {
  const map = toMap(fields, REQUEST_PSEUDO);
  if (typeof map === 'string') return map;
  const method = map[':method'];
  if (method === undefined) return 'no :method';
  if (method !== 'CONNECT') {
    if (map[':scheme'] === undefined) return 'no :scheme';
    if (map[':path'] === undefined || map[':path'] === '') return 'no :path';
  }
  return map;
}

/** A response's (or trailers') fields as a HeaderMap, or why they are malformed. `head`: a response head, which must carry :status. */
export function responseMap(fields: readonly string[], head: boolean): HeaderMap | string {
  const map = toMap(fields, head ? STATUS_PSEUDO : NO_PSEUDO);
  if (typeof map === 'string') return map;
  if (head && map[':status'] === undefined) return 'no :status';
  return map;
}

const STATUS_PSEUDO: ReadonlySet<string> = new Set([':status']);
const NO_PSEUDO: ReadonlySet<string> = new Set();

function toMap(fields: readonly string[], pseudoAllowed: ReadonlySet<string>): HeaderMap | string {
  const map: HeaderMap = {};
  let regular = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    let value = fields[i + 1]!;
    if (BAD_VALUE.test(value)) return `the value of ${name} holds NUL, CR or LF`;
    if (EDGE_BLANK.test(value)) value = value.replace(/^[ \t]+|[ \t]+$/g, '');
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (regular) return `${name} after a regular field`;
      if (!pseudoAllowed.has(name)) return `pseudo-header field ${name} not allowed here`;
      if (map[name] !== undefined) return `${name} twice`;
      map[name] = value;
      continue;
    }
    regular = true;
    if (!TOKEN.test(name)) return `field name ${JSON.stringify(name)} is not a lower-case token`;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    if (name === 'te' && value !== 'trailers') return `te: ${value} (only "trailers" is allowed)`;
    const prev = map[name];
    if (prev === undefined) map[name] = value;
    else if (name === 'cookie') map[name] = `${prev}; ${value}`;
    else if (typeof prev === 'string') map[name] = [prev, value];
    else prev.push(value);
  }
  return map;
}

/**
 * Appends a HeaderMap's regular fields to `out` (pseudo-header keys are the caller's, written
 * first): names lower-cased, arrays as repeated fields, connection-specific fields dropped.
 */
export function pushFields(out: string[], map: HeaderMap): void {
  for (const k in map) {
    const v = map[k];
    if (v === undefined || k.charCodeAt(0) === 58) continue;
    const name = k.toLowerCase();
    if (CONNECTION_SPECIFIC.has(name)) continue;
    if (typeof v === 'string') out.push(name, v);
    else if (Array.isArray(v)) for (const x of v) out.push(name, String(x));
    else out.push(name, String(v));
  }
}
