/**
 * The test gRPC service (test/fixtures/greeter.proto) for proxyless gRPC tests: the Greeter client
 * constructor, a grpc-js-xds client of it bootstrapped against our xDS server, and backends on
 * 127.0.0.1 (ephemeral port) that answer Hello with their own name, so a test sees which backend
 * a call reached.
 */
import { fileURLToPath } from 'node:url';
import {
  credentials,
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type Client,
  type Metadata,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { register as registerXds } from '@grpc/grpc-js-xds';
import { loadSync } from '@grpc/proto-loader';

const PROTO = fileURLToPath(new URL('../../../test/fixtures/greeter.proto', import.meta.url));

const greeterPackage = loadPackageDefinition(loadSync(PROTO, { keepCase: true })) as unknown as {
  consulxds: { test: { Greeter: ServiceClientConstructor } };
};
export const Greeter = greeterPackage.consulxds.test.Greeter;

export interface HelloReply {
  readonly backend: string;
}
export type HelloCall = (req: { name: string }, cb: (err: ServiceError | null, reply?: HelloReply) => void) => void;
/** Hello with request metadata (headers a hash policy reads). */
export type HelloWithMetadata = (req: { name: string }, metadata: Metadata, cb: (err: ServiceError | null, reply?: HelloReply) => void) => void;

/** A gRPC backend on 127.0.0.1 (ephemeral port) that answers Hello with its own name. */
export async function startBackend(name: string): Promise<{ name: string; port: number; close(): Promise<void> }> {
  const server = new Server();
  server.addService(Greeter.service, {
    Hello: (_call: unknown, cb: (err: null, reply: HelloReply) => void) => cb(null, { backend: name }),
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { name, port, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

/**
 * A Greeter client on `xds:///<target>` whose xDS server is 127.0.0.1:`xdsPort`. The bootstrap is
 * read once per process, when the first xds: channel resolves: one node per test file.
 */
export function xdsGreeterClient(xdsPort: number, nodeId: string, target: string): Client {
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }] }],
    node: { id: nodeId, locality: {} },
  });
  registerXds();
  return new Greeter(`xds:///${target}`, credentials.createInsecure());
}
