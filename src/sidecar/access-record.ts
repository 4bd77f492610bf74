/**
 * One access-log entry as we log and aggregate it. In: an `envoy.data.accesslog.v3`
 * HTTPAccessLogEntry or TCPAccessLogEntry as protobufjs decodes it (uint64 as Long, wrappers as
 * {value}, enums as numbers), plus the stream's identifier. Out: a flat AccessRecord with the
 * fields people grep for, numbers as plain numbers and durations in milliseconds.
 *
 * The decoded shapes below list only the fields we read; protobufjs leaves unset fields on the
 * prototype (defaults), so every read is a plain property access, no conversion pass.
 */
import { envoyRoot } from '../envoy/protos.js';

/** uint64/int64 as protobufjs decodes them: a Long when the `long` package is present, else a number. */
type Int64 = number | { low: number; high: number; unsigned: boolean } | null | undefined;
interface DurationMsg { seconds?: Int64; nanos?: number | null }
interface AddressMsg {
  socket_address?: { address?: string | null; port_value?: number | null } | null;
  pipe?: { path?: string | null } | null;
}

export interface DecodedCommon {
  start_time?: DurationMsg | null;
  duration?: DurationMsg | null;
  time_to_last_downstream_tx_byte?: DurationMsg | null;
  time_to_first_upstream_rx_byte?: DurationMsg | null;
  downstream_remote_address?: AddressMsg | null;
  upstream_remote_address?: AddressMsg | null;
  upstream_cluster?: string | null;
  route_name?: string | null;
  response_flags?: Record<string, unknown> | null;
}

export interface DecodedHttpEntry {
  common_properties?: DecodedCommon | null;
  protocol_version?: number | null;
  request?: {
    request_method?: number | null;
    authority?: string | null;
    path?: string | null;
    request_id?: string | null;
    user_agent?: string | null;
    request_body_bytes?: Int64;
  } | null;
  response?: {
    response_code?: { value?: number | null } | null;
    response_body_bytes?: Int64;
    response_code_details?: string | null;
  } | null;
}

export interface DecodedTcpEntry {
  common_properties?: DecodedCommon | null;
  connection_properties?: { received_bytes?: Int64; sent_bytes?: Int64 } | null;
}

/** The stream identifier (first message of each ALS stream). */
export interface StreamIdentity {
  readonly node: string;
  readonly cluster: string;
  readonly logName: string;
}

export interface AccessRecord {
  readonly kind: 'http' | 'tcp';
  /** Request start, epoch ms (0 when Envoy did not send it). */
  readonly startMs: number;
  readonly node: string;
  readonly logName: string;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly protocol: string;
  /** HTTP status, 0 when there was none (TCP, or reset before a response). */
  readonly status: number;
  readonly route: string;
  readonly cluster: string;
  readonly upstreamHost: string;
  readonly downstream: string;
  /** Total duration in ms (Envoy's `duration`, else time to last downstream byte). */
  readonly durationMs: number;
  /** Time to the first upstream response byte in ms, -1 when there was none. */
  readonly upstreamMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Envoy's short response flags (UH, UF, NR, ...) joined with ','; empty when none. */
  readonly flags: string;
  readonly requestId: string;
  readonly userAgent: string;
  readonly details: string;
}

/** Envoy's %RESPONSE_FLAGS% short codes, keyed by the ResponseFlags field name. */
const FLAG_CODES: Readonly<Record<string, string>> = {
  failed_local_healthcheck: 'LH',
  no_healthy_upstream: 'UH',
  upstream_request_timeout: 'UT',
  local_reset: 'LR',
  upstream_remote_reset: 'UR',
  upstream_connection_failure: 'UF',
  upstream_connection_termination: 'UC',
  upstream_overflow: 'UO',
  no_route_found: 'NR',
  delay_injected: 'DI',
  fault_injected: 'FI',
  rate_limited: 'RL',
  unauthorized_details: 'UAEX',
  rate_limit_service_error: 'RLSE',
  downstream_connection_termination: 'DC',
  upstream_retry_limit_exceeded: 'URX',
  stream_idle_timeout: 'SI',
  invalid_envoy_request_headers: 'IH',
  downstream_protocol_error: 'DPE',
  upstream_max_stream_duration_reached: 'UMSDR',
  response_from_cache_filter: 'RFCF',
  no_filter_config_found: 'NFCF',
  duration_timeout: 'DT',
  upstream_protocol_error: 'UPE',
  no_cluster_found: 'NC',
  overload_manager: 'OM',
  dns_resolution_failure: 'DF',
  downstream_remote_reset: 'DR',
};

const PROTOCOLS = ['', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2', 'HTTP/3'];

let methodNames: readonly string[] | undefined;
/** core.v3.RequestMethod names by number, read from the loaded proto (not written twice). */
function methodName(n: number | null | undefined): string {
  if (!n) return '';
  if (!methodNames) {
    const values = envoyRoot().lookupEnum('envoy.config.core.v3.RequestMethod').valuesById;
    const names: string[] = [];
    for (const [id, name] of Object.entries(values)) names[Number(id)] = name;
    methodNames = names;
  }
  return methodNames[n] ?? String(n);
}

export function int64(v: Int64): number {
  if (typeof v === 'number') return v;
  if (!v) return 0;
  return (v.unsigned ? v.high >>> 0 : v.high) * 4294967296 + (v.low >>> 0);
}

function durationMs(d: DurationMsg | null | undefined): number {
  if (!d) return -1;
  return int64(d.seconds) * 1000 + (d.nanos ?? 0) / 1e6;
}

function address(a: AddressMsg | null | undefined): string {
  if (!a) return '';
  const s = a.socket_address;
  if (s) return `${s.address ?? ''}:${s.port_value ?? 0}`;
  return a.pipe?.path ?? '';
}

function flagsOf(f: Record<string, unknown> | null | undefined): string {
  if (!f) return '';
  let out = '';
  // Decoded messages carry only the fields present on the wire as own properties (proto3 sends
  // only `true` flags), so this loop is usually empty.
  for (const key of Object.keys(f)) {
    if (!f[key]) continue;
    const code = FLAG_CODES[key];
    if (code) out = out === '' ? code : `${out},${code}`;
  }
  return out;
}

function commonTimes(c: DecodedCommon | null | undefined): { start: number; total: number; upstream: number } {
  const total = durationMs(c?.duration);
  const start = c?.start_time;
  return {
    start: start ? int64(start.seconds) * 1000 + Math.floor((start.nanos ?? 0) / 1e6) : 0,
    total: total >= 0 ? total : Math.max(0, durationMs(c?.time_to_last_downstream_tx_byte)),
    upstream: durationMs(c?.time_to_first_upstream_rx_byte),
  };
}

export function httpRecord(e: DecodedHttpEntry, id: StreamIdentity): AccessRecord {
  const c = e.common_properties;
  const req = e.request;
  const res = e.response;
  const t = commonTimes(c);
  return {
    kind: 'http',
    startMs: t.start,
    node: id.node,
    logName: id.logName,
    method: methodName(req?.request_method),
    authority: req?.authority ?? '',
    path: req?.path ?? '',
    protocol: PROTOCOLS[e.protocol_version ?? 0] ?? '',
    status: res?.response_code?.value ?? 0,
    route: c?.route_name ?? '',
    cluster: c?.upstream_cluster ?? '',
    upstreamHost: address(c?.upstream_remote_address),
    downstream: address(c?.downstream_remote_address),
    durationMs: t.total,
    upstreamMs: t.upstream,
    bytesIn: int64(req?.request_body_bytes),
    bytesOut: int64(res?.response_body_bytes),
    flags: flagsOf(c?.response_flags),
    requestId: req?.request_id ?? '',
    userAgent: req?.user_agent ?? '',
    details: res?.response_code_details ?? '',
  };
}

export function tcpRecord(e: DecodedTcpEntry, id: StreamIdentity): AccessRecord {
  const c = e.common_properties;
  const t = commonTimes(c);
  return {
    kind: 'tcp',
    startMs: t.start,
    node: id.node,
    logName: id.logName,
    method: '',
    authority: '',
    path: '',
    protocol: '',
    status: 0,
    route: c?.route_name ?? '',
    cluster: c?.upstream_cluster ?? '',
    upstreamHost: address(c?.upstream_remote_address),
    downstream: address(c?.downstream_remote_address),
    durationMs: t.total,
    upstreamMs: -1,
    bytesIn: int64(e.connection_properties?.received_bytes),
    bytesOut: int64(e.connection_properties?.sent_bytes),
    flags: flagsOf(c?.response_flags),
    requestId: '',
    userAgent: '',
    details: '',
  };
}
