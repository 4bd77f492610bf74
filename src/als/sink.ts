/**
 * Envoy Access Log Service sink: `envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs`
 * on its own grpc-js server (default 127.0.0.1:9001, as in seed 001). In: client-streamed
 * StreamAccessLogsMessage batches of HTTP or TCP entries; the `identifier` (node, log name) comes
 * only on the first message of a stream and is remembered for the stream's life. Out: one JSON
 * line per entry to the AccessLogWriter, and a record() into the live aggregates. Envoy expects
 * no reply until it closes the stream, so none is sent before that.
 *
 * Bounded work per entry and no waiting: the writer drops rather than blocks (see
 * access-log-writer.ts), so the only back-pressure Envoy ever sees is the CPU cost of decoding,
 * and grpc-js reads one message at a time per stream (HTTP/2 flow control bounds what is in
 * flight). A message that does not decode ends only that stream (INTERNAL), never the server.
 *
 * With TLS (`security`, from --als-tls-*): the sink speaks TLS, and with a client CA the node id
 * in a stream's identifier must be named by the client certificate (peer-identity.ts; no group
 * rule here: the sink serves no snapshot). A stream that fails ends with PERMISSION_DENIED and
 * none of its entries are written; it is counted and logged once (transport-security.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../envoy/protos.js';
import type { Logger } from '../log.js';
import type { AccessAggregates } from './aggregates.js';
import type { AccessLogWriter } from '../common/access-log-writer.js';
import type { StreamIdentity } from './access-record.js';
import { decodeAlsMessage, type DecodedAlsMessage } from './decode.js';
import { appendAccessLine, identityFields, LineBuffer, type LineIdentity } from './json-line.js';
import type { TransportSecurity } from '../common/transport-security.js';

export const ALS_METHOD_PATH = '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs';

export interface AlsSinkOptions {
  readonly writer: AccessLogWriter;
  readonly aggregates: AccessAggregates;
  readonly logger: Logger;
  /** TLS (and, with a client CA, the node-id rule); default plaintext. */
  readonly security?: TransportSecurity;
}

export interface AlsSinkStats {
  readonly streamsOpen: number;
  readonly streamsTotal: number;
  readonly messages: number;
  readonly httpEntries: number;
  readonly tcpEntries: number;
  /** Messages that arrived before any identifier on their stream (logged as node "unknown"). */
  readonly withoutIdentifier: number;
}

const UNKNOWN: StreamIdentity = Object.freeze({ node: 'unknown', cluster: '', logName: '' });

/**
 * The client-streaming method. The server side decodes with our wire reader (decode.ts);
 * the client side (tests, the benchmark) encodes plain objects with protobufjs.
 */
export function alsServiceDefinition(): grpc.ServiceDefinition {
  const request = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  return {
    StreamAccessLogs: {
      path: ALS_METHOD_PATH,
      requestStream: true,
      responseStream: false,
      requestSerialize: (m: object) => Buffer.from(request.encode(request.fromObject(m)).finish()),
      requestDeserialize: (b: Buffer) => decodeAlsMessage(b),
      // StreamAccessLogsResponse has no fields: its encoding is empty.
      responseSerialize: () => EMPTY,
      responseDeserialize: () => ({}),
    },
  };
}

const EMPTY = Buffer.alloc(0);

export class AlsSink {
  private readonly server = new grpc.Server();
  private readonly writer: AccessLogWriter;
  private readonly aggregates: AccessAggregates;
  private readonly logger: Logger;
  /** TLS and identity refusals (status and metrics read them); undefined when plaintext. */
  readonly security: TransportSecurity | undefined;
  private streamsOpen = 0;
  private streamsTotal = 0;
  private messages = 0;
  private httpEntries = 0;
  private tcpEntries = 0;
  private withoutIdentifier = 0;
  /** Scratch for one message's lines (ingest is synchronous, so one serves every stream). */
  private readonly lines = new LineBuffer();

  constructor(opts: AlsSinkOptions) {
    this.writer = opts.writer;
    this.aggregates = opts.aggregates;
    this.logger = opts.logger.child({ component: 'als' });
    this.security = opts.security;
    this.server.addService(alsServiceDefinition(), {
      StreamAccessLogs: (call: grpc.ServerReadableStream<DecodedAlsMessage, object>, done: grpc.sendUnaryData<object>) => this.onStream(call, done),
    });
  }

  /** Binds host:port (0 = ephemeral) and resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(
        `${host.includes(':') ? `[${host}]` : host}:${port}`,
        this.security?.credentials ?? grpc.ServerCredentials.createInsecure(),
        (err, bound) => {
          if (err) return reject(err);
          this.security?.watchHandshakes(this.server);
          resolve(bound);
        },
      );
    });
  }

  stats(): AlsSinkStats {
    return {
      streamsOpen: this.streamsOpen,
      streamsTotal: this.streamsTotal,
      messages: this.messages,
      httpEntries: this.httpEntries,
      tcpEntries: this.tcpEntries,
      withoutIdentifier: this.withoutIdentifier,
    };
  }

  /** Envoy holds ALS streams open forever, so a graceful shutdown would wait forever: force it. */
  close(): void {
    this.server.forceShutdown();
  }

  private onStream(call: grpc.ServerReadableStream<DecodedAlsMessage, object>, done: grpc.sendUnaryData<object>): void {
    let id: StreamIdentity = UNKNOWN;
    let identity = identityFields(UNKNOWN);
    let identified = false;
    let ended = false;
    let refused = false;
    const security = this.security?.checksIdentity ? this.security : undefined;
    const peer = security?.peerOf(call);
    this.streamsOpen++;
    this.streamsTotal++;
    const finish = () => {
      if (ended) return;
      ended = true;
      this.streamsOpen--;
    };
    call.on('data', (msg: DecodedAlsMessage) => {
      if (refused) return;
      // The node is checked on the first message, and again should a later one name another.
      if (security && (!identified || (msg.identifier !== undefined && msg.identifier.node !== id.node))) {
        const denial = security.authorize(peer, msg.identifier?.node ?? '', call.getPeer());
        if (denial) {
          refused = true;
          finish();
          done({ code: grpc.status.PERMISSION_DENIED, details: denial.message });
          return;
        }
      }
      if (msg.identifier) {
        id = msg.identifier;
        identity = identityFields(id);
        identified = true;
        this.logger.debug({ node: id.node, logName: id.logName }, 'access log stream opened');
      } else if (!identified) {
        this.withoutIdentifier++;
      }
      this.ingest(msg, identity);
    });
    call.on('end', () => {
      if (refused) return;
      finish();
      done(null, {});
    });
    call.on('error', (err: Error) => {
      finish();
      this.logger.debug({ node: id.node, err: err.message }, 'access log stream ended with an error');
    });
    call.on('close', finish);
  }

  /** One decoded message: aggregates and lines. Public for bench-als's in-process measurement. */
  ingest(msg: DecodedAlsMessage, identity: LineIdentity): void {
    this.messages++;
    const nowMs = Date.now();
    const nowSec = Math.floor(nowMs / 1000);
    // The message's lines are written as bytes, then go to the writer in one copy.
    const lines = this.lines;
    lines.reset();
    for (const r of msg.records) {
      if (r.kind === 'http') this.httpEntries++;
      else this.tcpEntries++;
      // Aggregates first: they count every entry, including lines the writer has to drop.
      this.aggregates.record(nowSec, r.authority, r.route, r.cluster, r.status, r.durationMs);
      appendAccessLine(lines, r, identity, nowMs);
    }
    if (msg.records.length > 0) this.writer.writeBytes(lines.buf, 0, lines.pos, msg.records.length);
  }
}
