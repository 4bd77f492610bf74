/**
 * Proxyless gRPC end to end, with the real client: a YAML file with a `type: grpc` listener ->
 * `serve()` -> `@grpc/grpc-js-xds` (target `xds:///greeter:50051`) -> three @grpc/grpc-js
 * backends on loopback, each answering with its own name (test/fixtures/greeter.proto).
 *
 * Seed 003's point is that gRPC must be balanced per request, not per connection: one HTTP/2
 * connection carries every call, so an L4 balancer pins a client to one backend. Here every call
 * goes over ONE channel, and the calls must still spread over all three backends. Then a weighted
 * split between two clusters (80/20), and a weight edit in the file that moves it (50/50); a
 * header canary (calls with `x-canary: true` metadata go to the canary cluster). On the
 * same server, a real Envoy is sent the http listener and never the API listener, and a node that
 * says it is Envoy cannot get it by name either. (Envoy does not NACK an API listener over LDS: it
 * ACKs the update, drops the listener and logs "can not be added because currently only one
 * ApiListener is allowed", so the test reads Envoy's log.)
 *
 * Statistics: the gRPC client picks a weighted cluster independently per call, so a cluster's
 * count is Binomial(n, p); assertions allow 4 standard deviations (a correct server fails one
 * about once in 15,000 runs) and the bands of 80/20 and 50/50 do not overlap.
 * Timing: every wait is a poll with a deadline on the server's own record of what the client
 * ACKed, never a fixed sleep.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { Metadata, type Client } from '@grpc/grpc-js';
import type { RunningApp } from '../../src/app.js';
import { grpcGroup } from '../../src/cache/client-kind.js';
import { DEFAULT_GROUP } from '../../src/cache/snapshot-cache.js';
import { TypeUrl } from '../../src/xds/resource-types.js';
import { AdsConnection } from '../support/ads-client.js';
import { dynamicVersions, startEnvoy } from '../support/envoy.js';
import { binomialBounds } from '../support/traffic.js';
import { freePort, waitUntil } from '../support/tmp.js';
import { startGreeterRig, type HelloWithMetadata, type GreeterRig } from '../support/greeter.js';

const TARGET = 'greeter:50051';
const NODE_ID = 'grpc-xds-test-client';
interface Weights {
  readonly main: number;
  /** Absent: the canary cluster is not routed to at all. */
  readonly canary?: number;
  /** EDS health of the third main backend (default healthy). */
  readonly thirdHealth?: string;
  /** The canary cluster takes the calls with `x-canary: true` and no `x-legacy` metadata (no weights). */
  readonly headerCanary?: boolean;
}

/** A gRPC listener for the target, plus an http listener for Envoys (no Envoy runs here). */
function configYaml(ports: { edge: number; main: readonly number[]; canary: number }, w: Weights): string {
  const routes = w.headerCanary
    ? `      greeter: { prefix: ["/consulxds.test.Greeter/"] }
      greeter-canary: { prefix: ["/consulxds.test.Greeter/"], headers: { x-canary: "true", x-legacy: { present: false } } }`
    : w.canary === undefined
      ? `      greeter: { prefix: ["/consulxds.test.Greeter/"] }`
      : `      greeter: { prefix: ["/consulxds.test.Greeter/"], weight: ${w.main} }
      greeter-canary: { prefix: ["/consulxds.test.Greeter/"], weight: ${w.canary} }`;
  return `# written by test/integration/grpc-xds.test.ts
listener:
  edge: { address: "127.0.0.1", port: ${ports.edge}, virtual-hosts: ["web"] }
  "${TARGET}": { type: grpc, virtual-hosts: ["greeter"] }
virtual-hosts:
  web:
    domain: ["web.test"]
    cluster: { web: { prefix: ["/"] } }
  greeter:
    domain: ["${TARGET}"]
    cluster:
${routes}
cluster:
  loadbalancer:
    web: {}
    greeter: { lb-policy: round-robin }
    greeter-canary: { lb-policy: round-robin }
endpoint:
  eds:
    web:
      static: [{ address: "127.0.0.1", port: ${ports.canary} }]
    greeter:
      static:
${ports.main.map((p, i) => `        - { address: "127.0.0.1", port: ${p}${i === 2 && w.thirdHealth ? `, health: ${w.thirdHealth}` : ''} }`).join('\n')}
    greeter-canary:
      static: [{ address: "127.0.0.1", port: ${ports.canary} }]
`;
}

describe('proxyless gRPC (grpc-js-xds) against serve() in file mode', () => {
  let rig: GreeterRig | undefined;
  let app: RunningApp | undefined;
  let client: Client | undefined;
  let configFile: string;
  let ports: { edge: number; main: number[]; canary: number };

  const theApp = (): RunningApp => {
    assert.ok(app, 'serve() not started');
    return app;
  };

  /** Saves the config the way editors do (write a temp file, rename it over the original). */
  const saveConfig = async (text: string): Promise<void> => {
    const tmp = `${configFile}.tmp-${process.pid}`;
    await writeFile(tmp, text);
    await rename(tmp, configFile);
  };

  const hello = (metadata = new Metadata()): Promise<string> =>
    new Promise((resolve, reject) => {
      assert.ok(client, 'client not created');
      const call = (client as unknown as { Hello: HelloWithMetadata }).Hello.bind(client);
      call({ name: 'test' }, metadata, (err, reply) => (err ? reject(err) : resolve(reply?.backend ?? '')));
    });

  /** `count` calls over the one channel, `concurrency` in flight; returns calls per backend. */
  const calls = async (count: number, concurrency = 10, metadata?: Metadata): Promise<Map<string, number>> => {
    const tally = new Map<string, number>();
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < count) {
        started++;
        const backend = await hello(metadata);
        tally.set(backend, (tally.get(backend) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return tally;
  };

  /**
   * Waits until the gRPC client has ACKed the current gRPC snapshot on every type it subscribes
   * to (the server's registry says so), served from the `/grpc` group.
   */
  const waitClientSynced = async (what: string): Promise<void> => {
    await waitUntil(
      () => {
        const st = theApp().xdsServer.registry.nodeStatus(NODE_ID);
        return (
          st !== undefined && st.group === grpcGroup(DEFAULT_GROUP) && st.upToDate && !st.nacked && st.types.RDS !== undefined && st.types.EDS !== undefined
        );
      },
      { what, timeoutMs: 20_000, context: () => JSON.stringify(theApp().xdsServer.registry.nodeStatus(NODE_ID)) },
    );
  };

  /** Waits for the publisher to publish a gRPC snapshot whose RDS differs from `before`. */
  const waitRoutesPublished = (before: string | undefined): Promise<string> =>
    waitUntil(
      () => {
        const v = theApp().publisher.grpcSnapshot?.version(TypeUrl.RouteConfiguration);
        return v !== undefined && v !== before && v;
      },
      { what: 'a new gRPC route table to be published', timeoutMs: 10_000, intervalMs: 10 },
    );

  const assertShare = (tally: Map<string, number>, backend: string, n: number, p: number, label: string): void => {
    const { low, high } = binomialBounds(n, p);
    const got = tally.get(backend) ?? 0;
    assert.ok(
      got >= low && got <= high,
      `${label}: ${backend} answered ${got}/${n}, expected ${(n * p).toFixed(0)} within 4 sigma [${low.toFixed(1)}, ${high.toFixed(1)}]; tally: ${JSON.stringify([...tally])}`,
    );
  };

  before(async () => {
    rig = await startGreeterRig({
      prefix: 'grpc-xds',
      backends: ['greeter-a', 'greeter-b', 'greeter-c', 'canary'],
      config: async (p) => {
        ports = { edge: await freePort(), main: p.slice(0, 3), canary: p[3] ?? 0 };
        return configYaml(ports, { main: 1 });
      },
      nodeId: NODE_ID,
      target: TARGET,
    });
    ({ app, client, configFile } = rig);
  });

  after(() => rig?.close());

  it('balances per request: 300 calls over one channel reach all three backends evenly', async (t) => {
    // The first call waits for LDS -> RDS -> CDS -> EDS; it must succeed, not time out.
    await waitUntil(() => hello().then((b) => b !== ''), { what: `a first call through xds:///${TARGET}`, timeoutMs: 20_000 });
    await waitClientSynced('the gRPC client to ACK the gRPC snapshot');
    const n = 300;
    const tally = await calls(n);
    t.diagnostic(`calls per backend: ${JSON.stringify(Object.fromEntries(tally))}`);
    assert.deepEqual(
      [...tally.keys()].sort(),
      ['greeter-a', 'greeter-b', 'greeter-c'],
      `every main backend served, the canary none: ${JSON.stringify([...tally])}`,
    );
    // Round robin per request over one HTTP/2 connection per backend; even a random pick would
    // stay inside these bands, a per-connection balancer (all on one backend) would not.
    for (const b of ['greeter-a', 'greeter-b', 'greeter-c']) assertShare(tally, b, n, 1 / 3, 'round robin');
    const status = theApp().xdsServer.registry.nodeStatus(NODE_ID);
    assert.deepEqual(status?.types.LDS?.names, [TARGET], 'the client subscribes to the listener named after its target');
  });

  it('splits 80/20 between two clusters, and a weight edit in the file moves it to 50/50', async (t) => {
    const n = 500;
    let before = theApp().publisher.grpcSnapshot?.version(TypeUrl.RouteConfiguration);
    await saveConfig(configYaml(ports, { main: 80, canary: 20 }));
    before = await waitRoutesPublished(before);
    await waitClientSynced('the gRPC client to ACK the 80/20 split');
    // The new cluster's endpoints arrive just after the route table that names it.
    await waitUntil(() => hello().then((b) => b === 'canary'), { what: 'a call to reach the canary cluster', timeoutMs: 10_000, intervalMs: 0 });
    const split = await calls(n);
    t.diagnostic(`80/20: ${JSON.stringify(Object.fromEntries(split))}`);
    assertShare(split, 'canary', n, 0.2, '80/20 split');
    assert.equal((split.get('greeter-a') ?? 0) + (split.get('greeter-b') ?? 0) + (split.get('greeter-c') ?? 0) + (split.get('canary') ?? 0), n);

    const started = Date.now();
    await saveConfig(configYaml(ports, { main: 50, canary: 50 }));
    await waitRoutesPublished(before);
    await waitClientSynced('the gRPC client to ACK the 50/50 split');
    t.diagnostic(`file save -> 50/50 ACKed by the gRPC client: ${Date.now() - started} ms`);
    const moved = await calls(n);
    t.diagnostic(`50/50: ${JSON.stringify(Object.fromEntries(moved))}`);
    assertShare(moved, 'canary', n, 0.5, '50/50 split after the edit');
  });

  it('an endpoint whose EDS health is not HEALTHY/UNKNOWN gets no calls', async () => {
    const before = theApp().publisher.grpcSnapshot?.version(TypeUrl.ClusterLoadAssignment);
    await saveConfig(configYaml(ports, { main: 1, thirdHealth: 'draining' }));
    await waitUntil(
      () => {
        const v = theApp().publisher.grpcSnapshot?.version(TypeUrl.ClusterLoadAssignment);
        return v !== undefined && v !== before;
      },
      { what: 'the draining endpoint to be published', timeoutMs: 10_000, intervalMs: 10 },
    );
    await waitClientSynced('the gRPC client to ACK the draining endpoint');
    const tally = await calls(150);
    assert.deepEqual([...tally.keys()].sort(), ['greeter-a', 'greeter-b'], `greeter-c is draining: ${JSON.stringify([...tally])}`);
  });

  it('a header canary: calls with x-canary: true (and no x-legacy) metadata go to the canary cluster, the others to the main one', async () => {
    const before = theApp().publisher.grpcSnapshot?.version(TypeUrl.RouteConfiguration);
    await saveConfig(configYaml(ports, { main: 1, headerCanary: true }));
    await waitRoutesPublished(before);
    await waitClientSynced('the gRPC client to ACK the header canary route');
    const canaryCall = new Metadata();
    canaryCall.set('x-canary', 'true');
    // The canary cluster's endpoints arrive just after the route table that names it.
    await waitUntil(() => hello(canaryCall).then((b) => b === 'canary'), {
      what: 'a call with x-canary to reach the canary',
      timeoutMs: 10_000,
      intervalMs: 0,
    });
    const canary = await calls(100, 10, canaryCall);
    assert.deepEqual([...canary], [['canary', 100]], 'every x-canary call went to the canary');
    const plain = await calls(150);
    assert.deepEqual([...plain.keys()].sort(), ['greeter-a', 'greeter-b', 'greeter-c'], `calls without the header: ${JSON.stringify([...plain])}`);
    const other = new Metadata();
    other.set('x-canary', 'false');
    assert.equal((await calls(30, 10, other)).get('canary'), undefined, 'x-canary: false is not the canary');
    const legacy = new Metadata();
    legacy.set('x-canary', 'true');
    legacy.set('x-legacy', '1');
    assert.equal((await calls(30, 10, legacy)).get('canary'), undefined, 'present: false: a call carrying x-legacy is not the canary');
  });

  it('a real Envoy on the same server is sent the http listener only, and ACKs everything', async () => {
    const envoy = await startEnvoy({ xdsPort: theApp().xdsPort, nodeId: 'grpc-xds-test-envoy', nodeCluster: 'edge' });
    try {
      const dump = await envoy.waitFor(
        async () => {
          const st = theApp().xdsServer.registry.nodeStatus('grpc-xds-test-envoy');
          return st?.upToDate && st.types.RDS !== undefined && (await envoy.configDump());
        },
        { what: 'Envoy to ACK its snapshot', timeoutMs: 20_000 },
      );
      const st = theApp().xdsServer.registry.nodeStatus('grpc-xds-test-envoy');
      assert.equal(st?.group, DEFAULT_GROUP, 'Envoy is served the Envoy snapshot');
      assert.equal(st?.nacked, false, 'Envoy NACKed nothing');
      assert.deepEqual(
        Object.values(st?.types ?? {}).map((ts) => ts.nacks),
        [0, 0, 0, 0],
        'no NACK on any type',
      );
      assert.deepEqual(Object.keys(dynamicVersions(dump).listeners), ['edge']);
      assert.deepEqual(Object.keys(dynamicVersions(dump).routes), ['edge']);
      const log = await readFile(envoy.logFile, 'utf8');
      assert.doesNotMatch(log, /ApiListener/, 'Envoy was sent no API listener (it would drop it with a warning)');
    } finally {
      await envoy.stop();
    }
  });

  it('an Envoy node on the same server gets the http listener and no API listener', async () => {
    const conn = new AdsConnection(`127.0.0.1:${theApp().xdsPort}`);
    const wildcard = conn.stream({ node: { id: 'envoy-kind', userAgentName: 'envoy' } });
    const named = conn.stream({ node: { id: 'envoy-named', userAgentName: 'envoy' } });
    try {
      wildcard.subscribe(TypeUrl.Listener);
      const lds = await wildcard.next();
      assert.deepEqual(lds.names, ['edge']);
      for (const r of lds.resources) assert.equal(r.object?.api_listener, undefined, `listener ${r.name} has no api_listener`);
      // Asking for the gRPC listener by name does not get it either.
      named.subscribe(TypeUrl.Listener, [TARGET]);
      const none = await named.next();
      assert.deepEqual(none.names, [], 'the API listener is not in the Envoy snapshot');
    } finally {
      wildcard.cancel();
      named.cancel();
      conn.close();
    }
  });
});
