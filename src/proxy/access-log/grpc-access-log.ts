/**
 * Access logs over gRPC to an Access Log Service (envoy.service.accesslog.v3, what
 * `envoy.access_loggers.http_grpc` / `tcp_grpc` configure). In: finished requests as
 * LogRecords. Out: StreamAccessLogsMessage on a client-streaming call to a host of the named
 * cluster: the first message of each stream carries the identifier (node + log_name), entries
 * are batched until buffer_size_bytes or buffer_flush_interval (0 bytes: one message per entry,
 * as Envoy does), over TLS when the sink cluster has a transport_socket. When the sink is down, entries are dropped (counted), never queued without
 * bound; the next flush opens a new stream.
 *
 * A sink that is up but slow (or that accepts the stream and never reads) is bounded the way
 * Envoy bounds it: a message goes to the stream only while the bytes written to it and not yet
 * taken by HTTP/2 stay under STREAM_BUFFER_LIMIT (Envoy's write-buffer high watermark); until then
 * entries wait in `pending` (at most MAX_PENDING entries and MAX_PENDING_BYTES), and beyond that
 * they are dropped and counted in access_logs.grpc_access_log.logs_dropped. Traffic never waits.
 */
import { Client, type ClientWritableStream } from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { messageType } from '../../envoy/protos.js';
import { httpVersionName, responseFlagsObject } from '../../envoy/access-log-fields.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { GrpcLogModel } from '../config/access-log-resource.js';
import type { LogRecord } from './formatter.js';
import type { NodeModel } from '../config/bootstrap.js';
import { grpcCredentials } from '../config/tls-context.js';

const METHOD = '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs';
/** Entries kept while the sink is unreachable or slow; beyond this they are dropped. */
const MAX_PENDING = 10_000;
/** The same bound in (estimated) bytes, so long paths or headers cannot make the queue big. */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** Bytes handed to one stream and not yet sent (Envoy's default per-connection buffer limit). */
const STREAM_BUFFER_LIMIT = 1024 * 1024;

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

function address(hostPort: string): Record<string, unknown> | undefined {
  const i = hostPort.lastIndexOf(':');
  if (i <= 0) return undefined;
  return { socket_address: { address: hostPort.slice(0, i).replace(/^\[|\]$/g, ''), port_value: Number(hostPort.slice(i + 1)) } };
}

function duration(ms: number): { seconds: number; nanos: number } {
  const whole = Math.floor(ms / 1000);
  return { seconds: whole, nanos: Math.round((ms - whole * 1000) * 1e6) };
}

export interface AlsStats {
  written: number;
  dropped: number;
  streams: number;
}

/** One open stream and the bytes written to it whose write callback has not fired yet. */
interface OpenStream {
  readonly call: ClientWritableStream<Buffer>;
  unsent: number;
}

export class AlsStream {
  private open: OpenStream | undefined;
  private client: Client | undefined;
  private clientTarget = '';
  private pending: Record<string, unknown>[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly messageType: protobuf.Type = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  readonly stats: AlsStats = { written: 0, dropped: 0, streams: 0 };
  private closed = false;

  constructor(
    private readonly model: GrpcLogModel,
    private readonly kind: 'http' | 'tcp',
    private readonly clusters: ClusterManager,
    private readonly node: NodeModel,
  ) {}

  log(r: LogRecord): void {
    if (this.closed) return;
    // A rough size estimate is enough to honour buffer_size_bytes and the queue bound.
    const size = 200 + r.path.length + r.authority.length + r.userAgent.length;
    if (!this.hasRoom(size)) {
      this.flush();
      if (!this.hasRoom(size)) {
        this.stats.dropped++;
        return;
      }
    }
    this.pending.push(this.kind === 'http' ? this.httpEntry(r) : this.tcpEntry(r));
    this.pendingBytes += size;
    if (this.pendingBytes >= this.model.bufferSizeBytes) this.flush();
    else this.timer ??= setTimeout(this.onTimer, this.model.flushIntervalMs);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.flush();
  };

  private hasRoom(size: number): boolean {
    return this.pending.length < MAX_PENDING && this.pendingBytes + size <= MAX_PENDING_BYTES;
  }

  /** Entries waiting for the stream, and bytes written to it but not yet sent: the bounded memory. */
  buffered(): { entries: number; bytes: number } {
    return { entries: this.pending.length, bytes: this.pendingBytes + (this.open?.unsent ?? 0) };
  }

  private common(r: LogRecord): Record<string, unknown> {
    const c: Record<string, unknown> = {
      downstream_remote_address: address(r.downstreamRemote),
      downstream_local_address: address(r.downstreamLocal),
      start_time: duration(r.startMs),
      time_to_last_downstream_tx_byte: duration(r.durationMs),
      duration: duration(r.durationMs),
      upstream_cluster: r.cluster,
      route_name: r.routeName,
    };
    if (r.upstreamMs >= 0) c.time_to_first_upstream_rx_byte = duration(r.upstreamMs);
    if (r.upstreamHost) c.upstream_remote_address = address(r.upstreamHost);
    if (r.flags) c.response_flags = responseFlagsObject(r.flags);
    return c;
  }

  private httpEntry(r: LogRecord): Record<string, unknown> {
    const reqHeaders: Record<string, string> = {};
    for (const h of this.model.requestHeaders) {
      const v = r.reqHeader(h);
      if (v !== undefined) reqHeaders[h] = v;
    }
    const respHeaders: Record<string, string> = {};
    for (const h of this.model.responseHeaders) {
      const v = r.respHeader(h);
      if (v !== undefined) respHeaders[h] = v;
    }
    return {
      common_properties: this.common(r),
      protocol_version: httpVersionName(r.protocol),
      request: {
        request_method: METHODS.has(r.method) ? r.method : 'METHOD_UNSPECIFIED',
        scheme: 'http',
        authority: r.authority,
        path: r.path,
        user_agent: r.userAgent,
        forwarded_for: r.forwardedFor,
        request_id: r.requestId,
        request_body_bytes: r.bytesIn,
        request_headers: reqHeaders,
      },
      response: {
        ...(r.status > 0 ? { response_code: { value: r.status } } : {}),
        response_body_bytes: r.bytesOut,
        response_code_details: r.details,
        response_headers: respHeaders,
      },
    };
  }

  private tcpEntry(r: LogRecord): Record<string, unknown> {
    return { common_properties: this.common(r), connection_properties: { received_bytes: r.bytesIn, sent_bytes: r.bytesOut } };
  }

  /** Opens (or re-opens) the stream to a host of the sink cluster; undefined when none is usable. */
  private stream(): OpenStream | undefined {
    if (this.open) return this.open;
    const cluster = this.clusters.get(this.model.cluster);
    const host = cluster?.pick(undefined);
    if (!cluster || !host) return undefined;
    // The sink cluster's transport_socket decides TLS; new settings get a new channel.
    const tls = cluster.model.tls;
    const target = `${host.key}\u0000${tls?.key ?? ''}`;
    if (!this.client || this.clientTarget !== target) {
      this.client?.close();
      this.client = new Client(host.key, grpcCredentials(tls), tls?.sni ? { 'grpc.ssl_target_name_override': tls.sni } : {});
      this.clientTarget = target;
    }
    const call = this.client.makeClientStreamRequest<Buffer, Buffer>(
      METHOD,
      (b: Buffer) => b,
      (b: Buffer) => b,
      () => {
        if (this.open?.call === call) this.open = undefined;
      },
    );
    call.on('error', () => {
      if (this.open?.call === call) this.open = undefined;
    });
    this.open = { call, unsent: 0 };
    this.stats.streams++;
    const identifier = { node: this.node.proto, log_name: this.model.logName };
    this.first = identifier;
    return this.open;
  }

  private first: Record<string, unknown> | undefined;

  flush(): void {
    if (this.pending.length === 0) return;
    const out = this.stream();
    if (out && out.unsent >= STREAM_BUFFER_LIMIT) {
      // The sink is not taking what it has: keep the entries (bounded) and look again later.
      if (!this.closed) this.timer ??= setTimeout(this.onTimer, this.model.flushIntervalMs);
      return;
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!out) {
      this.stats.dropped += this.pending.length;
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    const entries = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const msg: Record<string, unknown> = this.kind === 'http' ? { http_logs: { log_entry: entries } } : { tcp_logs: { log_entry: entries } };
    if (this.first) {
      msg.identifier = this.first;
      this.first = undefined;
    }
    const t = this.messageType;
    const bytes = t.encode(t.fromObject(msg)).finish();
    out.unsent += bytes.length;
    // The callback fires once HTTP/2 took the bytes (flow control), or when the call failed.
    out.call.write(Buffer.from(bytes), () => {
      out.unsent -= bytes.length;
    });
    this.stats.written += entries.length;
  }

  close(): void {
    this.flush();
    this.closed = true;
    // Whatever the stream could not take by now is lost with the process: count it.
    this.stats.dropped += this.pending.length;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.timer) clearTimeout(this.timer);
    const call = this.open?.call;
    call?.end();
    this.open = undefined;
    const client = this.client;
    // Give the final message a moment to leave, then close the channel. A sink that stopped
    // reading would keep the call (and the process) alive: cancel it.
    if (client) {
      setTimeout(() => {
        call?.cancel();
        client.close();
      }, 200).unref();
    }
  }
}
