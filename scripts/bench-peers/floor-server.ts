/**
 * The "floor" peer for the fan-out benchmark: the least an ADS server can do per change, as
 * described in docs/benchmarks.md ("The peers"). It encodes each DiscoveryResponse
 * once per type version (the nonce is the version, so the bytes are the same for everyone) and
 * writes those same bytes to every stream subscribed to the type. No per-node state, no ACK/NACK
 * bookkeeping beyond stale-nonce filtering, no resource-name filtering, no warming re-sends.
 * Our server should stay within 1.5x of it.
 *
 * In: the server protocol on stdin (scripts/bench/server-process.ts). Out: replies on stdout, an ADS
 * server on 127.0.0.1 (ephemeral port). Run with --expose-gc so {"op":"gc"} can collect.
 */
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import type { PeerSnapshot, ServerCommand, ServerReply } from '../bench/server-process.js';
import { decodeRequestHead, encodeResponse, rawStreamingMethod } from '../bench/wire.js';

type AdsCall = grpc.ServerDuplexStream<Buffer, Buffer>;

const ADS_SERVICE: grpc.ServiceDefinition = {
  StreamAggregatedResources: rawStreamingMethod('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources'),
};

interface TypeResponse {
  readonly version: string;
  /** version_info = nonce = version: one encoding serves every stream. */
  readonly bytes: Buffer;
}

interface FloorStream {
  readonly call: AdsCall;
  /** type URL -> version last written to this stream ('' = subscribed, nothing sent yet). */
  readonly sent: Map<string, string>;
}

const current = new Map<string, TypeResponse>();
const streams = new Set<FloorStream>();

function onRequest(s: FloorStream, bytes: Buffer): void {
  const req = decodeRequestHead(bytes);
  const sent = s.sent.get(req.typeUrl);
  // A response is outstanding and this request answers an older one: stale, ignore it.
  if (sent !== undefined && sent !== '' && req.responseNonce !== '' && req.responseNonce !== sent) return;
  if (sent === undefined) s.sent.set(req.typeUrl, '');
  const response = current.get(req.typeUrl);
  if (response && response.version !== s.sent.get(req.typeUrl) && response.version !== req.versionInfo) {
    s.sent.set(req.typeUrl, response.version);
    s.call.write(response.bytes);
  } else if (response && sent === undefined) {
    s.sent.set(req.typeUrl, response.version); // the client already holds it (reconnect)
  }
}

/** Per type: version and its resources (encoded Anys), as the snapshot the driver sent holds them. */
type Resources = ReadonlyMap<string, { readonly version: string; readonly resources: readonly Buffer[] }>;

function resourcesOf(command: PeerSnapshot): Resources {
  return new Map(
    Object.entries(command.versions).map(([typeUrl, version]) => [
      typeUrl,
      { version, resources: (command.resources[typeUrl] ?? []).map((b64) => Buffer.from(b64, 'base64')) },
    ]),
  );
}

function publish(snapshot: Resources): void {
  const changed: TypeResponse[] = [];
  const changedTypes: string[] = [];
  for (const [typeUrl, { version, resources }] of snapshot) {
    if (current.get(typeUrl)?.version === version) continue;
    const response = { version, bytes: Buffer.from(encodeResponse(version, typeUrl, version, resources)) };
    current.set(typeUrl, response);
    changed.push(response);
    changedTypes.push(typeUrl);
  }
  for (const s of streams) {
    changedTypes.forEach((typeUrl, i) => {
      const response = changed[i];
      if (response && s.sent.has(typeUrl) && s.sent.get(typeUrl) !== response.version) {
        s.sent.set(typeUrl, response.version);
        s.call.write(response.bytes);
      }
    });
  }
}

function reply(r: ServerReply): void {
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function main(): Promise<void> {
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 1 << 20 });
  server.addService(ADS_SERVICE, {
    StreamAggregatedResources: (call: AdsCall) => {
      const s: FloorStream = { call, sent: new Map() };
      streams.add(s);
      call.on('data', (bytes: Buffer) => onRequest(s, bytes));
      const drop = () => streams.delete(s);
      call.on('end', () => {
        drop();
        call.end();
      });
      call.on('error', drop);
      call.on('cancelled', drop);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  reply({ op: 'listening', port });

  const gc = (globalThis as { gc?: () => void }).gc;
  let next: Resources | undefined;
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = JSON.parse(line) as ServerCommand;
    if (command.op === 'prepare') {
      if (!('versions' in command)) throw new Error('the floor is given encoded resources, not config text');
      next = resourcesOf(command);
      reply({ op: 'prepare' });
    } else if (command.op === 'publish') {
      if (!next) throw new Error('publish before prepare');
      // Resources are ready (as in our snapshot and Go's typed messages); encoding the responses
      // and writing them is the publish work being timed.
      const publishNs = process.hrtime.bigint();
      publish(next);
      reply({ op: 'publish', publishNs: publishNs.toString() });
    } else if (command.op === 'gc') {
      gc?.();
      reply({ op: 'gc' });
    }
  });
  lines.on('close', () => {
    server.forceShutdown();
    process.exit(0);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`floor-server: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
