/**
 * AccessRecord -> one JSON line (with its trailing newline). Hand-rolled because this runs once
 * per access-log entry: a fixed field order built by string concatenation, strings escaped only
 * when they need it. scripts/bench-als.ts measures it against pino on the same records (pino's
 * generic object serialisation costs several times as much per line; see the readme).
 *
 * Empty strings and "not applicable" numbers are left out, so a TCP line carries no HTTP fields.
 * Field names: time (ISO, request start), type, node, log_name, method, authority, path,
 * protocol, status, route, upstream_cluster, upstream_host, downstream, duration_ms, upstream_ms,
 * bytes_in, bytes_out, flags, request_id, user_agent, details.
 */
import type { AccessRecord } from './access-record.js';

// Anything JSON must escape, plus lone surrogates (JSON.stringify writes them as \uXXXX).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function str(name: string, value: string): string {
  return value === '' ? '' : `,"${name}":${jsonString(value)}`;
}

/** Milliseconds with microsecond precision, as a JSON number. */
function ms(v: number): number {
  return Math.round(v * 1000) / 1000;
}

export function formatAccessLine(r: AccessRecord, nowMs: number): string {
  const time = new Date(r.startMs > 0 ? r.startMs : nowMs).toISOString();
  let line = `{"time":"${time}","type":"${r.kind}"${str('node', r.node)}${str('log_name', r.logName)}`;
  if (r.kind === 'http') {
    line += `${str('method', r.method)}${str('authority', r.authority)}${str('path', r.path)}${str('protocol', r.protocol)},"status":${r.status}`;
  }
  line += `${str('route', r.route)}${str('upstream_cluster', r.cluster)}${str('upstream_host', r.upstreamHost)}${str('downstream', r.downstream)}`;
  line += `,"duration_ms":${ms(r.durationMs)}`;
  if (r.upstreamMs >= 0) line += `,"upstream_ms":${ms(r.upstreamMs)}`;
  line += `,"bytes_in":${r.bytesIn},"bytes_out":${r.bytesOut}`;
  line += `${str('flags', r.flags)}${str('request_id', r.requestId)}${str('user_agent', r.userAgent)}${str('details', r.details)}}\n`;
  return line;
}
