/**
 * The access-log vocabulary both ends of ALS share: Envoy's %RESPONSE_FLAGS% short codes per
 * `ResponseFlags` field and our protocol strings per `HTTPAccessLogEntry.HTTPVersion`
 * (envoy/data/accesslog/v3/accesslog.proto). In: nothing. Out: lookup tables for the proxy's ALS
 * client (short codes and protocol strings -> proto fields) and the sink's wire decoder (field and
 * enum numbers -> short codes and protocol strings). The proto does not carry the short codes, so
 * they are written here once; test/unit/envoy/access-log-fields.test.ts checks the field numbers
 * and names against the loaded proto.
 */

/** ResponseFlags by field number: [proto field, short code]. Field 13 is a message, the rest bools. */
const RESPONSE_FLAGS: ReadonlyArray<readonly [field: string, code: string]> = [
  ['', ''],
  ['failed_local_healthcheck', 'LH'],
  ['no_healthy_upstream', 'UH'],
  ['upstream_request_timeout', 'UT'],
  ['local_reset', 'LR'],
  ['upstream_remote_reset', 'UR'],
  ['upstream_connection_failure', 'UF'],
  ['upstream_connection_termination', 'UC'],
  ['upstream_overflow', 'UO'],
  ['no_route_found', 'NR'],
  ['delay_injected', 'DI'],
  ['fault_injected', 'FI'],
  ['rate_limited', 'RL'],
  ['unauthorized_details', 'UAEX'],
  ['rate_limit_service_error', 'RLSE'],
  ['downstream_connection_termination', 'DC'],
  ['upstream_retry_limit_exceeded', 'URX'],
  ['stream_idle_timeout', 'SI'],
  ['invalid_envoy_request_headers', 'IH'],
  ['downstream_protocol_error', 'DPE'],
  ['upstream_max_stream_duration_reached', 'UMSDR'],
  ['response_from_cache_filter', 'RFCF'],
  ['no_filter_config_found', 'NFCF'],
  ['duration_timeout', 'DT'],
  ['upstream_protocol_error', 'UPE'],
  ['no_cluster_found', 'NC'],
  ['overload_manager', 'OM'],
  ['dns_resolution_failure', 'DF'],
  ['downstream_remote_reset', 'DR'],
];

/** The one ResponseFlags field that is a message (Unauthorized); present means UAEX. */
export const UNAUTHORIZED_FLAG_FIELD = 13;

/** Short code by ResponseFlags field number ('' for 0). */
export const FLAG_CODE_BY_FIELD: readonly string[] = Object.freeze(RESPONSE_FLAGS.map(([, code]) => code));

/** ResponseFlags bool field name by short code (UAEX, a message, has none). */
const FLAG_FIELD_BY_CODE: ReadonlyMap<string, string> = new Map(
  RESPONSE_FLAGS.filter((_, n) => n !== 0 && n !== UNAUTHORIZED_FLAG_FIELD).map(([field, code]) => [code, field]),
);

/** HTTPAccessLogEntry.HTTPVersion by number: [enum name, the protocol string we log]. */
const HTTP_VERSIONS: ReadonlyArray<readonly [name: string, protocol: string]> = [
  ['PROTOCOL_UNSPECIFIED', ''],
  ['HTTP10', 'HTTP/1.0'],
  ['HTTP11', 'HTTP/1.1'],
  ['HTTP2', 'HTTP/2'],
  ['HTTP3', 'HTTP/3'],
];

/** Protocol string by HTTPVersion number ('' for unspecified). */
export const PROTOCOL_BY_HTTP_VERSION: readonly string[] = Object.freeze(HTTP_VERSIONS.map(([, protocol]) => protocol));

const HTTP_VERSION_BY_PROTOCOL: ReadonlyMap<string, string> = new Map(HTTP_VERSIONS.slice(1).map(([name, protocol]) => [protocol, name]));

/** A protocol string (`HTTP/1.1`) -> the HTTPVersion enum name; unknown -> PROTOCOL_UNSPECIFIED. */
export function httpVersionName(protocol: string): string {
  return HTTP_VERSION_BY_PROTOCOL.get(protocol) ?? 'PROTOCOL_UNSPECIFIED';
}

/** Short codes joined with ',' (`UT,URX`) -> a ResponseFlags object; unknown codes are left out. */
export function responseFlagsObject(flags: string): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const code of flags.split(',')) {
    const field = FLAG_FIELD_BY_CODE.get(code);
    if (field) out[field] = true;
  }
  return out;
}
