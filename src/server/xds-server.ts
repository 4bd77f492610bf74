/**
 * The xDS gRPC server: State-of-the-World ADS (`AggregatedDiscoveryService/StreamAggregatedResources`)
 * and the per-type services (`ClusterDiscoveryService/StreamClusters`, `EndpointDiscoveryService/
 * StreamEndpoints`, `ListenerDiscoveryService/StreamListeners`, `RouteDiscoveryService/StreamRoutes`).
 *
 * In: a SnapshotCache. Out: a grpc-js server streaming its snapshots; a StreamRegistry of the
 * connected clients; counters.
 *
 * Each SotW call becomes a SotwStream (sotw/sotw-stream.ts: the protocol rules), each delta call a
 * DeltaStream (delta/delta-stream.ts), on top of the protocol-neutral StreamSession
 * (stream-session.ts: lifecycle, node, watch, registry).
 *
 * Service definitions are built by hand: the request deserializer is our lean DiscoveryRequest
 * reader and the response serializer passes pre-encoded responses through (sotw/response-cache.ts),
 * so a change fanned out to 1,000 streams encodes each response once; response-writer.ts puts
 * the same framed bytes on every stream. The Client Status Discovery Service (csds.ts) answers on
 * the same port.
 *
 * Incremental (delta) xDS is served on the same port: `DeltaAggregatedResources` and the per-type
 * `DeltaClusters`, `DeltaEndpoints`, `DeltaListeners`, `DeltaRoutes`, each call a DeltaStream
 * (delta/delta-stream.ts) on the same StreamSession, snapshots and registry. Envoy chooses it
 * with `api_type: DELTA_GRPC`.
 */
import { Server, ServerCredentials, status as GrpcStatus, type ChannelOptions, type MethodDefinition } from '@grpc/grpc-js';
import type { TransportSecurity } from '../common/transport-security.js';
import { RESOURCE_TYPES } from '../xds/resource-types.js';
import { ConsulXdsError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import { SubscriptionTable } from './subscriptions.js';
import { StreamRegistry } from './stream-registry.js';
import type { MalformedRequest, ServedMethod, StreamSession, XdsCall } from './stream-session.js';
import type { StreamRecord } from './stream-state.js';
import { innerCallInterceptor } from './response-writer.js';
import { decodeRequest, type XdsRequest } from './sotw/discovery-codec.js';
import { ResponseCache } from './sotw/response-cache.js';
import { SotwStream, type SotwContext } from './sotw/sotw-stream.js';
import { addCsdsService } from './csds.js';
import { decodeDeltaRequest, type DeltaRequest } from './delta/delta-codec.js';
import { DeltaStream } from './delta/delta-stream.js';

export interface XdsServerOptions {
  readonly cache: SnapshotCache;
  readonly logger?: Logger;
  /** Default: insecure (plaintext HTTP/2), as Envoy's bootstrap in examples/ expects. */
  readonly credentials?: ServerCredentials;
  /**
   * TLS from rotating files and, with a client CA, the identity rule: a stream whose node the
   * client certificate does not name is ended with PERMISSION_DENIED (stream-session.ts).
   * Its credentials are used unless `credentials` is given.
   */
  readonly security?: TransportSecurity;
  /** Request limits (defaults: DEFAULT_XDS_LIMITS). */
  readonly limits?: Partial<XdsLimits>;
  /** Extra grpc-js server options; they override ours. */
  readonly grpcOptions?: ChannelOptions;
  /** close(): how long to wait for streams to finish before forcing the connections shut. */
  readonly shutdownGraceMs?: number;
  /**
   * Write responses as shared framed bytes straight onto each HTTP/2 stream, one write per flush
   * (default true). false: through grpc-js's stream, one message at a time, each copied; the
   * escape hatch should a grpc-js release misbehave (see response-writer.ts).
   */
  readonly directWrites?: boolean;
}

/** What one client may ask of the server. */
export interface XdsLimits {
  /** HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number;
  /** Largest DiscoveryRequest accepted; a larger one ends its stream with RESOURCE_EXHAUSTED (grpc-js). */
  readonly maxReceiveMessageBytes: number;
  /** resource_names in one request; more end the stream with INVALID_ARGUMENT naming both numbers. */
  readonly maxResourceNames: number;
}

/**
 * Envoy's requests are small: its node and the names it subscribes to. 1 MiB holds 10,000 names
 * of 100 bytes. grpc-js's own defaults (4 MiB, unlimited streams) let 3.5 MiB of names cost 1.1 s
 * of decoding and make /status/clients 12.5 MiB.
 */
export const DEFAULT_XDS_LIMITS: XdsLimits = Object.freeze({ maxConcurrentStreams: 100, maxReceiveMessageBytes: 1024 * 1024, maxResourceNames: 10_000 });

export interface XdsServerStats {
  /** Streams connected now. */
  readonly streams: number;
  readonly streamsTotal: number;
  readonly requests: number;
  readonly responses: number;
  readonly acks: number;
  readonly nacks: number;
  /** Requests ignored because their nonce was not the latest one. */
  readonly stale: number;
  readonly malformed: number;
  readonly unknownType: number;
  /** Response bodies encoded (each shared by every stream sending the same thing). */
  readonly sharedBuilds: number;
  /** Responses written as already encoded shared bytes. */
  readonly sharedHits: number;
  /** Shared responses renewed with a fresh nonce (a body sent before, e.g. a warming re-send). */
  readonly nonceCopies: number;
  /** Responses written as shared framed bytes straight onto the HTTP/2 stream (the fast path). */
  readonly directWrites: number;
  /** Responses written through grpc-js's stream (the fallback; see response-writer.ts). */
  readonly grpcWrites: number;
  /** Distinct resource-name subscriptions in use (streams with equal ones share one). */
  readonly subscriptions: number;
  /** Streams ended because a request named more resources than maxResourceNames. */
  readonly overLimit: number;
}

export interface XdsServer {
  /** Bind and serve; returns the bound port (pass 0 for an ephemeral one). */
  listen(host: string, port: number): Promise<number>;
  /** End every stream with UNAVAILABLE, then shut down (forced after the grace period). */
  close(): Promise<void>;
  readonly registry: StreamRegistry;
  readonly stats: XdsServerStats;
}

interface ServiceSpec extends ServedMethod {
  readonly service: string;
  readonly rpc: string;
}

const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

const SERVICES: readonly ServiceSpec[] = [
  { service: ADS_SERVICE, rpc: 'StreamAggregatedResources', name: 'ADS', protocol: 'sotw' },
  ...RESOURCE_TYPES.map((t): ServiceSpec => ({ service: t.service, rpc: t.sotwMethod, name: t.short, protocol: 'sotw', typeUrl: t.typeUrl })),
  { service: ADS_SERVICE, rpc: 'DeltaAggregatedResources', name: 'ADS', protocol: 'delta' },
  ...RESOURCE_TYPES.map((t): ServiceSpec => ({ service: t.service, rpc: t.deltaMethod, name: t.short, protocol: 'delta', typeUrl: t.typeUrl })),
];

const DEFAULT_GRPC_OPTIONS: ChannelOptions = {
  // channelz keeps per-call bookkeeping we do not use; it costs memory per stream.
  'grpc.enable_channelz': 0,
  // Find dead clients (a vanished Envoy) so their streams and watches are released.
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
};

function serverSideOnly(): never {
  throw new Error('client-side (de)serializer of a server-only method definition');
}

/** Responses are complete pre-encoded DiscoveryResponses (response-cache.ts): written as they are. */
const asIs = (bytes: Buffer): Buffer => bytes;

function methodDefinition(spec: ServiceSpec): MethodDefinition<XdsRequest | DeltaRequest | MalformedRequest, Buffer> {
  return {
    path: `/${spec.service}/${spec.rpc}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: serverSideOnly,
    requestDeserialize: spec.protocol === 'delta' ? decodeDeltaRequest : decodeRequest,
    responseSerialize: asIs,
    responseDeserialize: serverSideOnly,
  };
}

export function createXdsServer(opts: XdsServerOptions): XdsServer {
  const logger = (opts.logger ?? silentLogger).child({ component: 'xds' });
  const registry = new StreamRegistry(opts.cache);
  const responses = new ResponseCache();
  const sessions = new Map<StreamRecord, StreamSession>();
  const counters = {
    streamsTotal: 0,
    requests: 0,
    responses: 0,
    acks: 0,
    nacks: 0,
    stale: 0,
    malformed: 0,
    unknownType: 0,
    overLimit: 0,
    directWrites: 0,
    grpcWrites: 0,
  };
  const subscriptions = new SubscriptionTable();
  const limits: XdsLimits = { ...DEFAULT_XDS_LIMITS, ...opts.limits };
  const grpcOptions: ChannelOptions = {
    ...DEFAULT_GRPC_OPTIONS,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.max_receive_message_length': limits.maxReceiveMessageBytes,
    ...opts.grpcOptions,
  };
  const maxSendMessageBytes = typeof grpcOptions['grpc.max_send_message_length'] === 'number' ? grpcOptions['grpc.max_send_message_length'] : -1;
  const ctx: SotwContext = {
    cache: opts.cache,
    observer: registry,
    responses,
    subscriptions,
    logger,
    counters,
    sessions,
    sessionsOf: function* (nodeId) {
      for (const record of registry.streamsOf(nodeId)) {
        const session = sessions.get(record);
        if (session !== undefined) yield session;
      }
    },
    maxSendMessageBytes,
    maxResourceNames: limits.maxResourceNames,
    directWrites: opts.directWrites ?? true,
    ...(opts.security !== undefined ? { security: opts.security } : {}),
  };
  // The interceptor hands each session grpc-js's own call, so responses can skip grpc-js's
  // one-message-at-a-time write path (response-writer.ts). It is the only interceptor: one
  // wrapped around it would be bypassed by those writes.
  const server = new Server({ ...grpcOptions, interceptors: [innerCallInterceptor] });
  for (const spec of SERVICES) {
    server.addService(
      { [spec.rpc]: methodDefinition(spec) },
      {
        [spec.rpc]:
          spec.protocol === 'delta'
            ? (call: XdsCall<DeltaRequest>) => {
                new DeltaStream(call, spec, ctx);
              }
            : (call: XdsCall<XdsRequest>) => {
                new SotwStream(call, spec, ctx);
              },
      },
    );
  }
  addCsdsService(server, { registry, cache: opts.cache, logger, ...(opts.security !== undefined ? { security: opts.security } : {}) });
  let closing: Promise<void> | undefined;
  const graceMs = opts.shutdownGraceMs ?? 2_000;

  return {
    registry,
    get stats(): XdsServerStats {
      return Object.freeze({
        streams: registry.size,
        ...counters,
        sharedBuilds: responses.builds,
        sharedHits: responses.hits,
        nonceCopies: responses.copies,
        subscriptions: subscriptions.size,
      });
    },
    listen(host: string, port: number): Promise<number> {
      const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
      return new Promise((resolve, reject) => {
        server.bindAsync(address, opts.credentials ?? opts.security?.credentials ?? ServerCredentials.createInsecure(), (err, bound) => {
          if (err) reject(new ConsulXdsError('CXDS_XDS_LISTEN', `xDS server cannot listen on ${address}: ${err.message}`, { cause: err }));
          else {
            opts.security?.watchHandshakes(server);
            resolve(bound);
          }
        });
      });
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        // ADS streams never end on their own: end them (clients reconnect, to another replica if
        // there is one), then let grpc-js finish in-flight writes, and force it after the grace period.
        for (const session of [...sessions.values()]) session.close(GrpcStatus.UNAVAILABLE, 'xDS server shutting down');
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}
