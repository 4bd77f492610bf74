/**
 * Envoy access-log format strings. In: a text format (`%REQ(:METHOD)% %RESPONSE_CODE% ...`) or a
 * JSON format (a Struct whose string values are format strings). Out: a function turning one
 * finished request's LogRecord into a line, compiled once per config (the hot path only runs
 * the compiled parts). An operator we do not know is a ResourceError, so a typo NACKs instead of
 * logging '-' forever.
 */
import type { FieldReader } from '../config/field-reader.js';
import { structToJson } from '../config/proto-json.js';
import { SUPPORT } from '../config/support.js';

/** What a finished request or TCP connection tells the access loggers. */
export interface LogRecord {
  kind: 'http' | 'tcp';
  startMs: number;
  method: string;
  /** Path as received (before any rewrite). */
  path: string;
  authority: string;
  protocol: string;
  /** 0 when no response was sent. */
  status: number;
  /** Envoy short flags (UH, UF, UT, NR, URX, UO, NC, DC, ...) joined with ','. */
  flags: string;
  details: string;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Time to the first upstream response byte, -1 when none. */
  upstreamMs: number;
  upstreamHost: string;
  cluster: string;
  routeName: string;
  downstreamRemote: string;
  downstreamLocal: string;
  requestId: string;
  userAgent: string;
  forwardedFor: string;
  reqHeader(name: string): string | undefined;
  respHeader(name: string): string | undefined;
}

export type LogFormatter = (r: LogRecord) => string;

export const DEFAULT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" ' +
  '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

export const DEFAULT_TCP_FORMAT = '[%START_TIME%] "- - -" 0 %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% - "-" "-" "-" "-" "%UPSTREAM_HOST%"\n';

type Part = (r: LogRecord) => string | number | undefined;

const dash = (v: string | number | undefined): string | number => (v === undefined || v === '' ? '-' : v);

function pseudo(r: LogRecord, name: string): string | undefined {
  switch (name) {
    case ':method':
      return r.method || undefined;
    case ':path':
      return r.path || undefined;
    case ':authority':
      return r.authority || undefined;
    case 'user-agent':
      return r.userAgent || r.reqHeader(name);
    case 'x-request-id':
      return r.requestId || r.reqHeader(name);
    default:
      return r.reqHeader(name);
  }
}

/** %REQ(A?B):N% and friends. */
function headerPart(which: 'REQ' | 'RESP', arg: string, maxLen: number | undefined): Part {
  const [main = '', alt] = arg.toLowerCase().split('?');
  const get = which === 'REQ' ? (r: LogRecord, n: string) => pseudo(r, n) : (r: LogRecord, n: string) => r.respHeader(n);
  return (r) => {
    let v = get(r, main);
    if (v === undefined && alt) v = get(r, alt);
    return v !== undefined && maxLen !== undefined ? v.slice(0, maxLen) : v;
  };
}

function operator(r: FieldReader, key: string, op: string, arg: string | undefined, maxLen: number | undefined): Part {
  if (op === 'REQ' || op === 'RESP') {
    if (!arg) throw r.error(key, `%${op}% needs a header name`);
    return headerPart(op, arg, maxLen);
  }
  switch (op) {
    case 'START_TIME':
      return (x) => new Date(x.startMs).toISOString();
    case 'PROTOCOL':
      return (x) => (x.kind === 'tcp' ? undefined : x.protocol);
    case 'RESPONSE_CODE':
      return (x) => x.status;
    case 'RESPONSE_FLAGS':
      return (x) => x.flags;
    case 'RESPONSE_CODE_DETAILS':
      return (x) => x.details;
    case 'BYTES_RECEIVED':
      return (x) => x.bytesIn;
    case 'BYTES_SENT':
      return (x) => x.bytesOut;
    case 'DURATION':
      return (x) => Math.round(x.durationMs);
    case 'RESPONSE_DURATION':
      return (x) => (x.upstreamMs < 0 ? undefined : Math.round(x.upstreamMs));
    case 'UPSTREAM_HOST':
    case 'UPSTREAM_REMOTE_ADDRESS':
      return (x) => x.upstreamHost;
    case 'UPSTREAM_CLUSTER':
      return (x) => x.cluster;
    case 'ROUTE_NAME':
      return (x) => x.routeName;
    case 'DOWNSTREAM_REMOTE_ADDRESS':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS':
      return (x) => x.downstreamRemote;
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT':
      return (x) => withoutPort(x.downstreamRemote);
    case 'DOWNSTREAM_LOCAL_ADDRESS':
      return (x) => x.downstreamLocal;
    case 'REQUEST_ID':
    case 'STREAM_ID':
      return (x) => x.requestId;
    case 'HOSTNAME':
      return () => HOSTNAME;
    default:
      throw r.error(key, `access-log operator %${op}% is not implemented`);
  }
}

function withoutPort(addr: string): string {
  const i = addr.lastIndexOf(':');
  return i < 0 ? addr : addr.slice(0, i).replace(/^\[|\]$/g, '');
}

const HOSTNAME = process.env.HOSTNAME ?? 'localhost';
const OPERATOR = /%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%/g;

/** Compiles a text format; literal text is kept as-is, `%%` is a literal percent. */
export function compileText(r: FieldReader, key: string, format: string): LogFormatter {
  const parts: Array<string | Part> = [];
  let last = 0;
  const text = format.replace(/%%/g, '\u0000');
  for (const m of text.matchAll(OPERATOR)) {
    if (m.index > last) parts.push(text.slice(last, m.index).replaceAll('\u0000', '%'));
    parts.push(operator(r, key, m[1] ?? '', m[2], m[3] !== undefined ? Number(m[3]) : undefined));
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last).replaceAll('\u0000', '%'));
  return (rec) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : dash(p(rec));
    return out;
  };
}

/** Compiles a json_format Struct: each string value is a format; numbers stay numbers. */
export function compileJson(r: FieldReader, key: string, struct: Record<string, unknown>, omitEmpty: boolean): LogFormatter {
  const fields: Array<[string, Part | string]> = [];
  for (const [name, value] of Object.entries(struct)) {
    if (typeof value !== 'string') throw r.error(`${key}.${name}`, 'only string values (format strings) are supported in json_format');
    const m = /^%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%$/.exec(value);
    if (m) fields.push([name, operator(r, key, m[1] ?? '', m[2], m[3] !== undefined ? Number(m[3]) : undefined)]);
    else {
      const f = compileText(r, key, value);
      fields.push([name, (x) => f(x)]);
    }
  }
  return (rec) => {
    const out: Record<string, string | number | null> = {};
    for (const [name, p] of fields) {
      const v = typeof p === 'string' ? p : p(rec);
      if (v === undefined || v === '') {
        if (!omitEmpty) out[name] = null;
      } else out[name] = v;
    }
    return `${JSON.stringify(out)}\n`;
  };
}

/** core.v3.SubstitutionFormatString. */
export function readSubstitutionFormat(r: FieldReader, fallback: string): LogFormatter {
  const omitEmpty = r.bool('omit_empty_values');
  r.declare(SUPPORT.SubstitutionFormatString);
  const text = r.string('text_format');
  const source = r.message('text_format_source');
  const json = r.message('json_format');
  if (json) return compileJson(r, 'json_format', structToJson(json.value()), omitEmpty);
  if (source) {
    source.declare(SUPPORT['SubstitutionFormatString.text_format_source']);
    return compileText(r, 'text_format_source', source.string('inline_string') ?? '');
  }
  return compileText(r, 'text_format', text ?? fallback);
}
