/**
 * The test gRPC service (test/fixtures/greeter.proto) for proxyless gRPC tests: the Greeter client
 * constructor, a grpc-js-xds client of it bootstrapped against our xDS server, and backends on
 * 127.0.0.1 (ephemeral port) that answer Hello with their own name, so a test sees which backend
 * a call reached; and the rig the proxyless tests share: backends, `serve` on a config file
 * written from their ports, and a grpc-js-xds client through it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { makeTempDir } from './tmp.js';

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

export interface Backend {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A gRPC backend on 127.0.0.1 (ephemeral port) that answers Hello with its own name. */
export async function startBackend(name: string): Promise<Backend> {
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

export interface GreeterRig {
  /** In the order their names were given. */
  readonly backends: readonly Backend[];
  /** The config `serve` reads (file mode): a test rewrites it to change what is served. */
  readonly configFile: string;
  readonly app: RunningApp;
  readonly client: Client;
  close(): Promise<void>;
}

/**
 * One Greeter backend per name, `serve` (file mode, xDS only) on the YAML `config` makes of the
 * backends' ports, and a grpc-js-xds client of `xds:///<target>` announcing `nodeId`. What started
 * is closed again if a later part fails.
 */
export async function startGreeterRig(opts: {
  readonly prefix: string;
  readonly backends: readonly string[];
  readonly config: (ports: readonly number[]) => string | Promise<string>;
  readonly nodeId: string;
  readonly target: string;
}): Promise<GreeterRig> {
  const dir = await makeTempDir(opts.prefix);
  const backends: Backend[] = [];
  let app: RunningApp | undefined;
  const close = async (client?: Client): Promise<void> => {
    client?.close();
    await app?.close();
    await Promise.all(backends.map((b) => b.close()));
    await dir.remove();
  };
  try {
    for (const name of opts.backends) backends.push(await startBackend(name));
    const configFile = join(dir.path, 'consul-xds.yaml');
    await writeFile(configFile, await opts.config(backends.map((b) => b.port)));
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
    const client = xdsGreeterClient(app.xdsPort, opts.nodeId, opts.target);
    return { backends, configFile, app, client, close: () => close(client) };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Makes `calls` calls, `inFlight` at a time, and counts their answers (e.g. the backend that served each). */
export async function countAnswers(calls: number, inFlight: number, call: () => Promise<string>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < calls) {
        next++;
        const answer = await call();
        counts.set(answer, (counts.get(answer) ?? 0) + 1);
      }
    }),
  );
  return counts;
}
