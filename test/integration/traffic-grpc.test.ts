/**
 * Seed 003 on every data plane (real Envoy and our TS proxy): gRPC balanced per request, not per
 * connection. A YAML config (an http listener, which accepts h2c; a cluster with
 * `upstream-protocol: http2`) -> `serve()` -> ADS -> the data plane -> three @grpc/grpc-js
 * backends that answer with their own name (test/fixtures/greeter.proto). ONE grpc-js client
 * connection carries every call; the calls must still spread over all three backends. A gRPC error
 * status and message from a backend reach the client unchanged (trailers), and a method no route
 * matches gets UNIMPLEMENTED from the data plane itself (a local 404 as a trailers-only answer).
 * A grpc-go client (test/fixtures/grpc-go-client, another HTTP/2 and HPACK implementation than
 * grpc-js's node:http2) makes calls through the same listener without one failure.
 *
 * Statistics: whatever per-request policy the data plane uses, no backend may be far from a third.
 * The assertion allows 4 binomial standard deviations around n/3 (n = 300: 67..133 calls each; a
 * correct data plane fails it about once in 15,000 runs). Balancing per connection would put all
 * 300 on one backend.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  credentials,
  loadPackageDefinition,
  Server,
  ServerCredentials,
  status,
  type Client,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { DATA_PLANES, startDataPlane, watchNode, type DataPlane, type DataPlaneKind, type NodeWatch } from '../support/dataplanes.js';
import { countAnswers } from '../support/greeter.js';
import { binomialBounds } from '../support/traffic.js';
import { freePort, makeTempDir, waitUntil } from '../support/tmp.js';

const PROTO = fileURLToPath(new URL('../../../test/fixtures/greeter.proto', import.meta.url));
const Greeter = (
  loadPackageDefinition(loadSync(PROTO, { keepCase: true })) as unknown as {
    consulxds: { test: { Greeter: ServiceClientConstructor } };
  }
).consulxds.test.Greeter;

const GO_CLIENT = process.env.GRPC_GO_CLIENT ?? fileURLToPath(new URL('../../../.cache/grpc-go-client/client', import.meta.url));

const BACKENDS = ['g1', 'g2', 'g3'] as const;
const CALLS = 300;
/** Calls in flight at once on the one connection (HTTP/2 streams). */
const IN_FLIGHT = 10;

interface HelloReply {
  readonly backend: string;
}
type HelloCall = (req: { name: string }, cb: (err: ServiceError | null, reply?: HelloReply) => void) => void;

interface Backend {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A gRPC backend answering Hello with its name; the name 'fail' gets NOT_FOUND "nope: <backend>". */
async function startBackend(name: string): Promise<Backend> {
  const server = new Server();
  server.addService(Greeter.service, {
    Hello: (call: { request: { name: string } }, cb: (err: Partial<ServiceError> | null, reply?: HelloReply) => void) => {
      if (call.request.name === 'fail') cb({ code: status.NOT_FOUND, details: `nope: ${name}` });
      else cb(null, { backend: name });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { name, port, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

function hello(client: Client, name: string): Promise<HelloReply> {
  return new Promise((resolve, reject) => {
    const call = (client as unknown as { Hello: HelloCall }).Hello.bind(client);
    call({ name }, (err, reply) => (err ? reject(err) : reply ? resolve(reply) : reject(new Error('no reply'))));
  });
}

function configYaml(edgePort: number, backends: readonly Backend[]): string {
  return `# written by test/integration/traffic-grpc.test.ts
listener:
  edge: { address: "127.0.0.1", port: ${edgePort}, virtual-hosts: ["greeter"] }
virtual-hosts:
  greeter:
    domain: ["*"]
    cluster:
      greeter: { prefix: ["/consulxds.test.Greeter/"] }
cluster:
  loadbalancer:
    greeter: { lb-policy: round-robin, upstream-protocol: http2 }
endpoint:
  eds:
    greeter:
      static:
${backends.map((b) => `        - { address: "127.0.0.1", port: ${b.port} }`).join('\n')}
`;
}

function suite(kind: DataPlaneKind): void {
  describe(`gRPC through ${kind}`, () => {
    const nodeId = `traffic-grpc-${kind}`;
    let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
    let app: RunningApp | undefined;
    let dp: DataPlane | undefined;
    let node: NodeWatch | undefined;
    const backends: Backend[] = [];
    let edgePort = 0;

    const plane = (): DataPlane => {
      assert.ok(dp, `${kind} not started`);
      return dp;
    };
    const newClient = (): Client => new Greeter(`127.0.0.1:${edgePort}`, credentials.createInsecure());

    before(async () => {
      dir = await makeTempDir(`traffic-grpc-${kind}`);
      backends.push(...(await Promise.all(BACKENDS.map(startBackend))));
      edgePort = await freePort();
      const configFile = join(dir.path, 'consul-xds.yaml');
      await writeFile(configFile, configYaml(edgePort, backends));
      app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
      const watching = watchNode(app.xdsServer.registry, nodeId);
      node = watching;
      dp = await startDataPlane(kind, { xdsPort: app.xdsPort, nodeId, nodeCluster: 'edge', context: () => watching.describe() });
      await dp.ready();
      // A throwaway client proves the route works, so the measured client's connection is its only one.
      const probe = newClient();
      try {
        await dp.waitFor(async () => (await hello(probe, 'probe')).backend !== '', { what: `a gRPC call through 127.0.0.1:${edgePort}`, intervalMs: 100 });
      } finally {
        probe.close();
      }
    });

    after(async () => {
      node?.close();
      await dp?.stop();
      await app?.close();
      await Promise.all(backends.map((b) => b.close()));
      await dir?.remove();
    });

    it(`spreads ${CALLS} calls of ONE client connection over all ${BACKENDS.length} backends, per call`, async () => {
      const connectionsBefore = (await plane().stat('http.edge.downstream_cx_total')) ?? 0;
      const client = newClient();
      let counts = new Map<string, number>();
      try {
        counts = await countAnswers(CALLS, IN_FLIGHT, async () => (await hello(client, 'x')).backend);
      } finally {
        client.close();
      }
      const got = JSON.stringify(Object.fromEntries([...counts].sort()));
      const { low, high } = binomialBounds(CALLS, 1 / BACKENDS.length);
      for (const b of BACKENDS) {
        const n = counts.get(b) ?? 0;
        assert.ok(n >= low && n <= high, `${b} served ${n} of ${CALLS} calls, expected within [${low.toFixed(1)}, ${high.toFixed(1)}]: ${got}`);
      }
      // Envoy-style stat on both data planes: the HCM of listener `edge` accepted one connection.
      const connections = ((await plane().stat('http.edge.downstream_cx_total')) ?? 0) - connectionsBefore;
      assert.equal(connections, 1, `the client used a single connection to the data plane (${got})`);
    });

    it('passes a backend gRPC error status and message through to the client', async () => {
      const client = newClient();
      try {
        await assert.rejects(hello(client, 'fail'), (err: ServiceError) => {
          assert.equal(err.code, status.NOT_FOUND);
          assert.match(err.details, /^nope: g[123]$/);
          return true;
        });
      } finally {
        client.close();
      }
    });

    it('answers a method no route matches with UNIMPLEMENTED from the data plane itself', async () => {
      const client = newClient();
      try {
        const err = await new Promise<ServiceError | null>((resolve) => {
          client.makeUnaryRequest(
            '/consulxds.test.Other/Nothing',
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.alloc(0),
            (e) => resolve(e),
          );
        });
        assert.equal(err?.code, status.UNIMPLEMENTED);
      } finally {
        client.close();
      }
    });

    it('serves a grpc-go client too (a second HTTP/2 and HPACK implementation): 8 callers for 2 s, not one call failed', async (t) => {
      assert.ok(existsSync(GO_CLIENT), `no grpc-go client at ${GO_CLIENT}: scripts/test.sh builds it (scripts/build-grpc-go-client.sh)`);
      const child = spawn(GO_CLIENT, ['-target', `passthrough:///127.0.0.1:${edgePort}`, '-workers', '8'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString();
      });
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        await waitUntil(() => stdout.includes('ready'), {
          what: 'a first grpc-go call through the data plane',
          timeoutMs: 15_000,
          context: () => stderr.slice(-2_000),
        });
        await sleep(2_000);
      } finally {
        child.stdin.end();
        await exited;
      }
      const summary = /ok=(\d+) failed=(\d+)/.exec(stdout);
      t.diagnostic(`grpc-go: ${summary?.[0] ?? stdout}`);
      assert.ok(summary, `grpc-go printed no summary: ${stdout} ${stderr.slice(-2_000)}`);
      assert.ok(Number(summary[1]) >= 100, `grpc-go completed ${summary[1]} calls in 2 s`);
      assert.equal(Number(summary[2]), 0, `grpc-go calls failed: ${stderr.slice(-2_000)}`);
    });

    it('the data plane NACKed no update during the whole run', () => {
      assert.ok(node);
      assert.equal(node.nacks.length, 0, node.describe());
    });
  });
}

for (const kind of DATA_PLANES) suite(kind);
