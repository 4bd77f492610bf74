/**
 * The proxyless gRPC rig shared by the grpc-js-xds tests: the Greeter service
 * (test/fixtures/greeter.proto), a backend that answers Hello with its own name, and an
 * `xds:///` client of it. In: a backend name; the xDS port and node id. Out: a listening backend;
 * a Greeter client resolving through the xDS server.
 */
import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, Server, ServerCredentials, type Client, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { register as registerXds } from '@grpc/grpc-js-xds';

const PROTO = fileURLToPath(new URL('../../../test/fixtures/greeter.proto', import.meta.url));

export const Greeter = (
  loadPackageDefinition(loadSync(PROTO, { keepCase: true })) as unknown as {
    consulxds: { test: { Greeter: ServiceClientConstructor } };
  }
).consulxds.test.Greeter;

export interface HelloReply {
  readonly backend: string;
}

export interface GreeterBackend {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A gRPC backend on 127.0.0.1 (ephemeral port) that answers Hello with its own name. */
export async function startBackend(name: string): Promise<GreeterBackend> {
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
 * A Greeter client for `xds:///<target>`, its bootstrap pointing at the xDS server on 127.0.0.1.
 * grpc-js-xds reads the bootstrap once per process, when the first xds: channel resolves: one
 * xDS server and node id per test file.
 */
export function xdsGreeterClient(xdsPort: number, nodeId: string, target: string): Client {
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }] }],
    node: { id: nodeId, locality: {} },
  });
  registerXds();
  return new Greeter(`xds:///${target}`, credentials.createInsecure());
}
