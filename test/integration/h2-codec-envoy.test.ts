/**
 * The TS data plane's own HTTP/2 codec (src/proxy/codec/http2/) against real Envoy on both sides:
 * grpc-js client -> Envoy (`front`) -> our proxy (`mid`) -> Envoy (`back`) -> three grpc-js
 * backends, every hop HTTP/2 (h2c). Our server side decodes Envoy's HPACK and framing as a
 * downstream; our client side encodes for Envoy as an upstream. Each hop has its own `serve()`
 * (file mode serves one config to every node). 300 calls on one client connection must all succeed and
 * reach every backend (per-call balancing survives two proxies), and a large message (1 MiB each
 * way, beyond the 64 KiB default windows) must come back byte for byte, so flow control between
 * our codec and Envoy's works in both directions.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { credentials, Server, ServerCredentials, type Client, type ServiceDefinition } from '@grpc/grpc-js';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { startDataPlane, watchNode, type DataPlane, type NodeWatch } from '../support/dataplanes.js';
import { countAnswers, Greeter, type Backend, type HelloCall } from '../support/greeter.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const BACKENDS = ['g1', 'g2', 'g3'] as const;
const CALLS = 300;
const IN_FLIGHT = 10;

const raw = (b: Buffer): Buffer => b;
/** A raw-bytes method that answers with the request's bytes. */
const ECHO: ServiceDefinition = {
  Echo: {
    path: '/consulxds.test.Greeter/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};

/** A backend that answers Hello with its name and Echo with the request's bytes. */
async function startBackend(name: string): Promise<Backend> {
  const server = new Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  server.addService(Greeter.service, { Hello: (_call: unknown, cb: (err: null, reply: { backend: string }) => void) => cb(null, { backend: name }) });
  server.addService(ECHO, { Echo: (call: { request: Buffer }, cb: (err: null, reply: Buffer) => void) => cb(null, call.request) });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { name, port, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

/** One hop's config: listener `name` on `port` sends everything to cluster `to` (HTTP/2) at `targets`. */
function hopYaml(name: string, port: number, to: string, targets: readonly number[]): string {
  return `# written by test/integration/h2-codec-envoy.test.ts
listener:
  ${name}: { address: "127.0.0.1", port: ${port}, virtual-hosts: ["all"] }
virtual-hosts:
  all:
    domain: ["*"]
    cluster:
      ${to}: { prefix: ["/"] }
cluster:
  loadbalancer:
    ${to}: { lb-policy: round-robin, upstream-protocol: http2 }
endpoint:
  eds:
    ${to}:
      static:
${targets.map((p) => `        - { address: "127.0.0.1", port: ${p} }`).join('\n')}
`;
}

function hello(client: Client, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const call = (client as unknown as { Hello: HelloCall }).Hello.bind(client);
    call({ name }, (err, reply) => (err ? reject(err) : reply ? resolve(reply.backend) : reject(new Error('no reply'))));
  });
}

describe('own HTTP/2 codec between two real Envoys: client -> envoy -> ts-proxy -> envoy -> backends', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  const apps: RunningApp[] = [];
  const planes: DataPlane[] = [];
  const watches: NodeWatch[] = [];
  const backends: Backend[] = [];
  let frontPort = 0;

  before(async () => {
    dir = await makeTempDir('h2-codec-envoy');
    backends.push(...(await Promise.all(BACKENDS.map(startBackend))));
    const ports = { front: await freePort(), mid: await freePort(), back: await freePort() };
    frontPort = ports.front;
    // One control plane per hop: file mode serves one config to every node.
    for (const [kind, name, to, targets] of [
      ['envoy', 'back', 'greeter', backends.map((b) => b.port)],
      ['ts-proxy', 'mid', 'back', [ports.back]],
      ['envoy', 'front', 'mid', [ports.mid]],
    ] as const) {
      const configFile = join(dir.path, `${name}.yaml`);
      await writeFile(configFile, hopYaml(name, ports[name], to, targets));
      const app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
      apps.push(app);
      const nodeId = `h2-codec-${name}`;
      const watch = watchNode(app.xdsServer.registry, nodeId);
      watches.push(watch);
      const dp = await startDataPlane(kind, { xdsPort: app.xdsPort, nodeId, nodeCluster: name, context: () => watch.describe() });
      planes.push(dp);
      await dp.ready();
    }
    const probe = new Greeter(`127.0.0.1:${frontPort}`, credentials.createInsecure());
    try {
      await planes[2]!.waitFor(async () => (await hello(probe, 'probe')) !== '', { what: `a gRPC call through 127.0.0.1:${frontPort}`, intervalMs: 100 });
    } finally {
      probe.close();
    }
  });

  after(async () => {
    for (const w of watches) w.close();
    for (const dp of planes.reverse()) await dp.stop();
    for (const app of apps) await app.close();
    await Promise.all(backends.map((b) => b.close()));
    await dir?.remove();
  });

  it(`${CALLS} calls on one client connection: all answered, every backend reached`, async () => {
    const client = new Greeter(`127.0.0.1:${frontPort}`, credentials.createInsecure());
    let counts = new Map<string, number>();
    try {
      counts = await countAnswers(CALLS, IN_FLIGHT, () => hello(client, 'x'));
    } finally {
      client.close();
    }
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    assert.equal(total, CALLS);
    for (const b of BACKENDS) assert.ok((counts.get(b) ?? 0) > 0, `${b} got no call: ${JSON.stringify(Object.fromEntries(counts))}`);
    // Our proxy served them over HTTP/2 both ways.
    const mid = planes[1]!;
    assert.ok(((await mid.stat('http.mid.downstream_cx_http2_total')) ?? 0) >= 1, 'Envoy reached our proxy over HTTP/2');
    assert.ok(((await mid.stat('cluster.back.upstream_rq_total')) ?? 0) >= CALLS, 'our proxy sent every call on to Envoy');
  });

  it('a 1 MiB request name comes back in a 1 MiB reply, byte for byte (flow control with Envoy both ways)', async () => {
    const client = new Greeter(`127.0.0.1:${frontPort}`, credentials.createInsecure(), {
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      'grpc.max_send_message_length': 4 * 1024 * 1024,
    });
    const name = Array.from({ length: 1024 * 1024 }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
    try {
      const echoed = await new Promise<string>((resolve, reject) => {
        client.makeUnaryRequest(
          '/consulxds.test.Greeter/Echo',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from(name),
          (e, r) => (e ? reject(e) : resolve((r as Buffer).toString())),
        );
      });
      assert.equal(echoed.length, name.length);
      assert.ok(echoed === name, 'the reply differs from the request');
    } finally {
      client.close();
    }
  });

  it('no data plane NACKed an update', () => {
    for (const w of watches) assert.equal(w.nacks.length, 0, w.describe());
  });
});
