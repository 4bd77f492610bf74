/**
 * A listener's / HCM's / TCP proxy's `access_log` entries -> AccessLogModel. In: decoded
 * config.accesslog.v3.AccessLog messages. Out: file / stdout / stderr loggers with a compiled
 * format, or a gRPC (ALS) logger naming its cluster, log name and buffering; a ResourceError for
 * access-log filters and logger types the proxy does not implement.
 */
import type { FieldReader } from './field-reader.js';
import { structToJson } from './proto-json.js';
import { DEFAULT_FORMAT, DEFAULT_TCP_FORMAT, compileText, readSubstitutionFormat, compileJson, type LogFormatter } from '../access-log/formatter.js';
import { SUPPORT } from './support.js';

const T = 'type.googleapis.com/envoy.extensions.access_loggers.';
export const ACCESS_LOG_TYPES = {
  file: `${T}file.v3.FileAccessLog`,
  stdout: `${T}stream.v3.StdoutAccessLog`,
  stderr: `${T}stream.v3.StderrAccessLog`,
  httpGrpc: `${T}grpc.v3.HttpGrpcAccessLogConfig`,
  tcpGrpc: `${T}grpc.v3.TcpGrpcAccessLogConfig`,
} as const;

export interface StreamLogModel {
  readonly kind: 'file';
  /** '/dev/stdout' and '/dev/stderr' write to the process streams. */
  readonly path: string;
  readonly format: LogFormatter;
}

export interface GrpcLogModel {
  readonly kind: 'grpc';
  readonly logName: string;
  readonly cluster: string;
  readonly bufferSizeBytes: number;
  readonly flushIntervalMs: number;
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
}

export type AccessLogModel = StreamLogModel | GrpcLogModel;

export function readAccessLogs(r: FieldReader, key: string, kind: 'http' | 'tcp'): AccessLogModel[] {
  return r.list(key).map((entry) => readAccessLog(entry, kind));
}

function readAccessLog(r: FieldReader, kind: 'http' | 'tcp'): AccessLogModel {
  r.declare(SUPPORT.AccessLog);
  const tc = r.message('typed_config');
  if (!tc) throw r.error('typed_config', 'must be set');
  const type = tc.anyType();
  const fallback = kind === 'http' ? DEFAULT_FORMAT : DEFAULT_TCP_FORMAT;
  switch (type) {
    case ACCESS_LOG_TYPES.file: {
      const path = tc.requiredString('path');
      return Object.freeze({ kind: 'file' as const, path, format: readStreamFormat(tc, fallback) });
    }
    case ACCESS_LOG_TYPES.stdout:
    case ACCESS_LOG_TYPES.stderr:
      return Object.freeze({
        kind: 'file' as const,
        path: type === ACCESS_LOG_TYPES.stdout ? '/dev/stdout' : '/dev/stderr',
        format: readStreamFormat(tc, fallback),
      });
    case ACCESS_LOG_TYPES.httpGrpc:
    case ACCESS_LOG_TYPES.tcpGrpc: {
      if ((type === ACCESS_LOG_TYPES.httpGrpc) !== (kind === 'http')) {
        throw tc.error('@type', `${type} does not fit a ${kind} access log`);
      }
      const common = tc.message('common_config');
      if (!common) throw tc.error('common_config', 'must be set');
      const logName = common.requiredString('log_name');
      common.enumOf('transport_api_version', ['V3'] as const, 'V3');
      const svc = common.message('grpc_service');
      if (!svc) throw common.error('grpc_service', 'must be set');
      const eg = svc.message('envoy_grpc');
      svc.declare(SUPPORT['CommonGrpcAccessLogConfig.grpc_service']);
      if (!eg) throw svc.error('envoy_grpc', 'must be set');
      const cluster = eg.requiredString('cluster_name');
      eg.declare(SUPPORT['CommonGrpcAccessLogConfig.grpc_service.envoy_grpc']);
      common.declare(SUPPORT.CommonGrpcAccessLogConfig);
      const bufferSizeBytes = common.wrapped('buffer_size_bytes') ?? 16_384;
      const flushIntervalMs = common.durationMs('buffer_flush_interval') ?? 1000;
      const lower = (k: string) => (kind === 'http' ? tc.stringList(k).map((h) => h.toLowerCase()) : []);
      const requestHeaders = lower('additional_request_headers_to_log');
      const responseHeaders = lower('additional_response_headers_to_log');
      tc.declare(SUPPORT.HttpGrpcAccessLogConfig);
      return Object.freeze({ kind: 'grpc' as const, logName, cluster, bufferSizeBytes, flushIntervalMs, requestHeaders, responseHeaders });
    }
    default:
      throw tc.error('@type', `access logger ${type} is not implemented`);
  }
}

/** FileAccessLog / StdoutAccessLog formats: log_format, or the legacy format / json_format fields. */
function readStreamFormat(r: FieldReader, fallback: string): LogFormatter {
  const lf = r.message('log_format');
  if (lf) return readSubstitutionFormat(lf, fallback);
  const legacy = r.string('format');
  if (legacy !== undefined) return compileText(r, 'format', legacy);
  const json = r.message('json_format');
  if (json) return compileJson(r, 'json_format', structToJson(json.value()), false);
  r.declare(SUPPORT.FileAccessLog);
  return compileText(r, 'log_format', fallback);
}
