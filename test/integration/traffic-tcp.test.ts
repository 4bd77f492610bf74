/**
 * Seed 000's TCP hop (the MongoDB case) on every data plane (real Envoy and our TS proxy): a
 * `type: tcp` listener -> `serve()` -> ADS -> the data plane's TCP proxy -> two TCP echo
 * backends. Each backend first sends its name and a `|`, then echoes what it reads until the
 * client half-closes. Asserted on real connections: 1 MiB of random bytes comes back byte for
 * byte; a client's half-close (FIN) is forwarded as such, so the backend's answer still arrives;
 * connections are balanced per connection, round robin (4 connections: 2 per backend).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { DATA_PLANES, proxyConcurrency, startDataPlane, watchNode, type DataPlane, type DataPlaneKind, type NodeWatch } from '../support/dataplanes.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const BACKENDS = ['mongo-0', 'mongo-1'] as const;

interface EchoBackend {
  readonly name: string;
  readonly port: number;
  /** Connections accepted since the last reset. */
  readonly connections: number;
  reset(): void;
  close(): Promise<void>;
}

/** A TCP backend (a stand-in for mongod): writes `<name>|`, then echoes until the peer ends. */
async function startEchoBackend(name: string): Promise<EchoBackend> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.write(`${name}|`);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    reset() {
      connections = 0;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Connects, sends `payload` and returns everything read until the connection closed. With
 * `halfClose` the client ends its side right after sending (the backend's echo must still come
 * back); without, it ends only once the whole echo arrived (`<name>|` plus the payload).
 */
function roundTrip(port: number, payload: Buffer, halfClose: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let got = 0;
    /** Bytes of `<name>|` once the `|` arrived. */
    let header = -1;
    s.on('connect', () => (halfClose ? s.end(payload) : s.write(payload)));
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (header < 0) {
        const bar = Buffer.concat(chunks).indexOf('|');
        if (bar >= 0) header = bar + 1;
      }
      if (!halfClose && header > 0 && got >= header + payload.length) s.end();
    });
    s.on('close', (hadError) => (hadError ? undefined : resolve(Buffer.concat(chunks))));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error(`TCP round trip through 127.0.0.1:${port} timed out after ${got} bytes`)));
  });
}

/** Splits `<name>|<echo>` into its parts. */
function parseReply(reply: Buffer): { backend: string; echo: Buffer } {
  const bar = reply.indexOf('|');
  assert.ok(bar > 0, `reply starts with a backend name: ${reply.subarray(0, 40).toString('latin1')}`);
  return { backend: reply.subarray(0, bar).toString('utf8'), echo: reply.subarray(bar + 1) };
}

function configYaml(listenerPort: number, backends: readonly EchoBackend[]): string {
  return `# written by test/integration/traffic-tcp.test.ts
listener:
  mongo: { address: "127.0.0.1", port: ${listenerPort}, type: tcp, cluster: mongo, stat-prefix: mongo_tcp }
cluster:
  loadbalancer:
    mongo: { lb-policy: round-robin, connect-timeout: 1 }
endpoint:
  eds:
    mongo:
      static:
${backends.map((b) => `        - { address: "127.0.0.1", port: ${b.port} }`).join('\n')}
`;
}

function suite(kind: DataPlaneKind): void {
  describe(`TCP proxy through ${kind}`, () => {
    const nodeId = `traffic-tcp-${kind}`;
    let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
    let app: RunningApp | undefined;
    let dp: DataPlane | undefined;
    let node: NodeWatch | undefined;
    const backends: EchoBackend[] = [];
    let listenerPort = 0;

    before(async () => {
      dir = await makeTempDir(`traffic-tcp-${kind}`);
      backends.push(...(await Promise.all(BACKENDS.map(startEchoBackend))));
      listenerPort = await freePort();
      const configFile = join(dir.path, 'consul-xds.yaml');
      await writeFile(configFile, configYaml(listenerPort, backends));
      app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
      const watching = watchNode(app.xdsServer.registry, nodeId);
      node = watching;
      dp = await startDataPlane(kind, { xdsPort: app.xdsPort, nodeId, nodeCluster: 'db', context: () => watching.describe() });
      await dp.ready();
      await dp.waitFor(async () => parseReply(await roundTrip(listenerPort, Buffer.from('ping'), false)).echo.toString() === 'ping', {
        what: `a TCP round trip through 127.0.0.1:${listenerPort}`,
        intervalMs: 100,
      });
    });

    after(async () => {
      node?.close();
      await dp?.stop();
      await app?.close();
      await Promise.all(backends.map((b) => b.close()));
      await dir?.remove();
    });

    it('pipes 1 MiB byte for byte both ways', async () => {
      const payload = randomBytes(1 << 20);
      const { backend, echo } = parseReply(await roundTrip(listenerPort, payload, false));
      assert.ok((BACKENDS as readonly string[]).includes(backend), `answered by a backend: ${backend}`);
      assert.equal(echo.length, payload.length, 'echo length');
      assert.ok(echo.equals(payload), 'echo equals what was sent');
    });

    it("carries the client's half-close through: the backend's answer after the client's FIN still arrives", async () => {
      // Envoy's tcp_proxy forwards a FIN as a FIN (half-close), not as a full close: a client
      // that ends its side after a request still reads the whole reply.
      const payload = randomBytes(64 << 10);
      const { echo } = parseReply(await roundTrip(listenerPort, payload, true));
      assert.equal(echo.length, payload.length, 'bytes echoed after the client half-closed');
      assert.ok(echo.equals(payload), 'echo equals what was sent');
    });

    // With workers (ts-proxy-c2) round robin is per worker, as in Envoy at --concurrency 2: node:cluster
    // hands connections one after another to the two workers in turn, each alternates over the two
    // backends from its own random start, so each backend still gets 2, but two consecutive
    // connections (different workers) may reach the same backend.
    it('balances per connection, round robin: 4 connections, 2 per backend', async () => {
      for (const b of backends) b.reset();
      const seen: string[] = [];
      for (let i = 0; i < 4; i++) {
        const text = `ping-${i}`;
        const { backend, echo } = parseReply(await roundTrip(listenerPort, Buffer.from(text), false));
        assert.equal(echo.toString(), text);
        seen.push(backend);
      }
      assert.deepEqual(
        backends.map((b) => b.connections),
        [2, 2],
        `connections per backend (answered by ${seen.join(', ')})`,
      );
      // One round robin alternates: consecutive connections never land on the same backend.
      if (proxyConcurrency(kind) === 1) for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], `alternation: ${seen.join(', ')}`);
    });

    it('the data plane NACKed no update during the whole run', () => {
      assert.ok(node);
      assert.equal(node.nacks.length, 0, node.describe());
    });
  });
}

for (const kind of DATA_PLANES) suite(kind);
