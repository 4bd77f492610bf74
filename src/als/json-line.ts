/**
 * AccessRecord -> one JSON line (with its trailing newline). Hand-rolled because this runs once
 * per access-log entry: a fixed field order built by string concatenation, strings escaped only
 * when they need it. scripts/bench-als.ts measures it against pino on the same records (pino's
 * generic object serialisation costs several times as much per line; see docs/benchmarks.md).
 *
 * Empty strings and "not applicable" numbers are left out, so a TCP line carries no HTTP fields.
 * Field names: time (ISO, request start), type, node, log_name, method, authority, path,
 * protocol, status, route, upstream_cluster, upstream_host, downstream, duration_ms, upstream_ms,
 * bytes_in, bytes_out, flags, request_id, user_agent, details.
 */
import type { AccessRecord, StreamIdentity } from './access-record.js';

// Anything JSON must escape, plus lone surrogates (JSON.stringify writes them as \uXXXX).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what JSON must escape
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function str(name: string, value: string): string {
  return value === '' ? '' : `,"${name}":${jsonString(value)}`;
}

// Values that repeat line after line (authority, route, cluster, upstream host, user agent; the
// decoder hands out one shared string per distinct value, whose hash V8 then keeps) keep their
// JSON fragment here, so the escape check and the concatenation run once per value, not once per
// line. One map per field; each bounded (cleared when full).
const FRAGMENT_CACHE_MAX = 2048;

function repeatedField(name: string): (value: string) => string {
  const cache = new Map<string, string>();
  return (value) => {
    if (value === '') return '';
    let f = cache.get(value);
    if (f === undefined) {
      if (cache.size >= FRAGMENT_CACHE_MAX) cache.clear();
      f = `,"${name}":${jsonString(value)}`;
      cache.set(value, f);
    }
    return f;
  };
}

const authorityField = repeatedField('authority');
const routeField = repeatedField('route');
const clusterField = repeatedField('upstream_cluster');
const upstreamHostField = repeatedField('upstream_host');
const userAgentField = repeatedField('user_agent');
const detailsField = repeatedField('details');

/** For values we produce ourselves (method and protocol names, flag codes): never need escaping. */
function raw(name: string, value: string): string {
  return value === '' ? '' : `,"${name}":"${value}"`;
}

/** Milliseconds with microsecond precision, as a JSON number. */
function ms(v: number): number {
  return Math.round(v * 1000) / 1000;
}

// Date#toISOString costs about as much as the rest of a line; entries arrive in time order, so
// the part up to the second is cached and only the milliseconds are appended.
let cachedSecond = Number.NaN;
let cachedPrefix = '';

/** ISO 8601 with milliseconds, UTC (what Date#toISOString writes). */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20); // "YYYY-MM-DDTHH:MM:SS."
  }
  const frac = ms - second * 1000;
  return `${cachedPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${Math.floor(frac)}Z`;
}

/** Identity fields are the same for every line of a stream: serialise them once per stream. */
export function identityFields(id: StreamIdentity): string {
  return `${str('node', id.node)}${str('log_name', id.logName)}`;
}

export function formatAccessLine(r: AccessRecord, identity: string, nowMs: number): string {
  let line = `{"time":"${isoTime(r.startMs > 0 ? r.startMs : nowMs)}","type":"${r.kind}"${identity}`;
  if (r.kind === 'http') {
    line += `${raw('method', r.method)}${authorityField(r.authority)}${str('path', r.path)}${raw('protocol', r.protocol)},"status":${r.status}`;
  }
  line += `${routeField(r.route)}${clusterField(r.cluster)}${upstreamHostField(r.upstreamHost)}${str('downstream', r.downstream)}`;
  line += `,"duration_ms":${ms(r.durationMs)}`;
  if (r.upstreamMs >= 0) line += `,"upstream_ms":${ms(r.upstreamMs)}`;
  line += `,"bytes_in":${r.bytesIn},"bytes_out":${r.bytesOut}`;
  line += `${raw('flags', r.flags)}${str('request_id', r.requestId)}${userAgentField(r.userAgent)}${detailsField(r.details)}}\n`;
  return line;
}
