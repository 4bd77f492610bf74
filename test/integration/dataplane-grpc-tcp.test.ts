/**
 * Seed 003 and seed 000 through our data plane, fed by `serve()` in file mode:
 *  - gRPC: ONE grpc-js client connection (h2c, prior knowledge) carrying 300 unary calls is
 *    spread over 3 backends per call, because the proxy balances per request/stream over its
 *    HTTP/2 upstream connections (round robin: exactly 100 each). gRPC errors come back with
 *    their status and message (trailers), and an unrouted method gets UNIMPLEMENTED from the
 *    proxy itself (a local 404 as a trailers-only gRPC answer).
 *  - TCP proxy (the MongoDB hop): connections are piped byte for byte to the cluster's hosts,
 *    balanced per connection.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { credentials, loadPackageDefinition, Server, ServerCredentials, status, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { startDataplane, type DataplaneHandle } from '../support/dataplane.js';
import { makeTempDir } from '../support/tmp.js';

const PROTO = fileURLToPath(new URL('../../../test/fixtures/greeter.proto', import.meta.url));
const Greeter = (loadPackageDefinition(loadSync(PROTO, { keepCase: true })) as unknown as {
  consulxds: { test: { Greeter: ServiceClientConstructor } };
}).consulxds.test.Greeter;

type HelloCall = (req: { name: string }, cb: (err: ServiceError | null, reply?: { backend: string }) => void) => void;

interface Closable {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A gRPC backend answering Hello with its name; name 'fail' gets NOT_FOUND "nope: <backend>". */
async function startGrpcBackend(name: string): Promise<Closable> {
  const server = new Server();
  server.addService(Greeter.service, {
    Hello: (call: { request: { name: string } }, cb: (err: Partial<ServiceError> | null, reply?: { backend: string }) => void) => {
      if (call.request.name === 'fail') cb({ code: status.NOT_FOUND, details: `nope: ${name}` });
      else cb(null, { backend: name });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { name, port, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

/** A TCP backend (a stand-in for mongod): greets with its name, then echoes. */
async function startEchoBackend(name: string): Promise<Closable & { connections: number }> {
  const b = { name, port: 0, connections: 0, close: async () => undefined as void };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    b.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.write(`${name}|`);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  b.port = (server.address() as AddressInfo).port;
  b.close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return b;
}

/** Opens a TCP connection, sends `text`, returns everything read until the echo came back. */
function tcpRoundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(text));
    s.on('data', (d: string) => {
      got += d;
      if (got.endsWith(text)) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('tcp round trip timed out')));
  });
}

describe('our proxy: gRPC balanced per request (seed 003) and TCP proxy (seed 000)', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let app: RunningApp | undefined;
  let dp: DataplaneHandle | undefined;
  let client: Client | undefined;
  const grpcBackends: Closable[] = [];
  const echoBackends: Array<Closable & { connections: number }> = [];
  let edgePort = 0;
  let mongoPort = 0;

  const proxy = (): DataplaneHandle => {
    assert.ok(dp, 'proxy not started');
    return dp;
  };
  const hello = (name: string): Promise<{ backend: string }> =>
    new Promise((resolve, reject) => {
      const call = (client as unknown as { Hello: HelloCall }).Hello.bind(client);
      call({ name }, (err, reply) => (err ? reject(err) : resolve(reply as { backend: string })));
    });

  before(async () => {
    dir = await makeTempDir('dataplane-grpc');
    grpcBackends.push(...(await Promise.all(['g1', 'g2', 'g3'].map(startGrpcBackend))));
    echoBackends.push(...(await Promise.all(['mongo-0', 'mongo-1'].map(startEchoBackend))));
    const configFile = join(dir.path, 'consul-xds.yaml');
    await writeFile(
      configFile,
      `# written by test/integration/dataplane-grpc-tcp.test.ts
listener:
  edge: { address: "127.0.0.1", port: 0, virtual-hosts: ["greeter"] }
  mongo: { address: "127.0.0.1", port: 0, type: tcp, cluster: mongo, stat-prefix: mongo_tcp }
virtual-hosts:
  greeter:
    domain: ["*"]
    cluster:
      greeter: { prefix: ["/consulxds.test.Greeter/"] }
cluster:
  loadbalancer:
    greeter: { lb-policy: round-robin, upstream-protocol: http2 }
    mongo: { lb-policy: round-robin, connect-timeout: 0.25 }
endpoint:
  eds:
    greeter:
      static:
${grpcBackends.map((b) => `        - { address: "127.0.0.1", port: ${b.port} }`).join('\n')}
    mongo:
      static:
${echoBackends.map((b) => `        - { address: "127.0.0.1", port: ${b.port} }`).join('\n')}
`,
    );
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
    dp = await startDataplane({ xdsPort: app.xdsPort, nodeId: 'dataplane-grpc', nodeCluster: 'edge' });
    await dp.proxy.whenLive(20_000);
    edgePort = dp.proxy.listenerPort('edge') ?? 0;
    mongoPort = dp.proxy.listenerPort('mongo') ?? 0;
    client = new Greeter(`127.0.0.1:${edgePort}`, credentials.createInsecure());
  });

  after(async () => {
    client?.close();
    await dp?.stop();
    await app?.close();
    await Promise.all([...grpcBackends, ...echoBackends].map((b) => b.close()));
    await dir?.remove();
  });

  it('spreads the calls of ONE client connection over all 3 backends, per call', async () => {
    const counts = new Map<string, number>();
    const calls = 300;
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < calls) {
          next++;
          const r = await hello('x');
          counts.set(r.backend, (counts.get(r.backend) ?? 0) + 1);
        }
      }),
    );
    assert.deepEqual(Object.fromEntries([...counts].sort()), { g1: 100, g2: 100, g3: 100 }, 'round robin per call');
    const st = await proxy().stats('^http\\.edge\\.downstream_cx_http2_total$|^cluster\\.greeter\\.upstream_rq_200$');
    assert.equal(st.get('http.edge.downstream_cx_http2_total'), 1, 'the client used a single HTTP/2 connection');
    assert.equal(st.get('cluster.greeter.upstream_rq_200'), calls);
  });

  it('passes gRPC error statuses and messages back (trailers)', async () => {
    await assert.rejects(hello('fail'), (err: ServiceError) => {
      assert.equal(err.code, status.NOT_FOUND);
      assert.match(err.details, /^nope: g[123]$/);
      return true;
    });
  });

  it('answers an unrouted method with UNIMPLEMENTED from the proxy itself', async () => {
    const err = await new Promise<ServiceError>((resolve) => {
      (client as Client).makeUnaryRequest(
        '/consulxds.test.Other/Nothing',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (e) => resolve(e as ServiceError),
      );
    });
    assert.equal(err.code, status.UNIMPLEMENTED);
  });

  it('proxies TCP connections byte for byte, balanced per connection', async () => {
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await tcpRoundTrip(mongoPort, `ping-${i}`));
    replies.forEach((r, i) => assert.match(r, new RegExp(`^mongo-[01]\\|ping-${i}$`)));
    assert.deepEqual(echoBackends.map((b) => b.connections), [2, 2], 'round robin per connection');
    const st = await proxy().stats('^tcp\\.mongo_tcp\\.');
    assert.equal(st.get('tcp.mongo_tcp.downstream_cx_total'), 4);
  });
});
