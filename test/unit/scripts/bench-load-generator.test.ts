/**
 * The fan-out benchmark's Delta load clients over a real HTTP/2 connection, against a small
 * Delta ADS server written here with grpc-js and Envoy's protos: the clients speak as Envoy does
 * (node on the first request, CDS and LDS by legacy wildcard, EDS and RDS subscribed by the names
 * they were sent, every response ACKed by its nonce), spread over two load-generator processes,
 * and a change is delivered when its resource arrives. A server without DeltaAggregatedResources
 * is reported as not supporting the protocol.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Server, ServerCredentials, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { parseConfig } from '../../../src/config/parse.js';
import { staticEndpoints } from '../../../src/config/static-endpoints.js';
import { translate } from '../../../src/translate/index.js';
import { buildSnapshot, type Snapshot } from '../../../src/cache/snapshot.js';
import { messageType, TO_OBJECT } from '../../../src/envoy/protos.js';
import { TYPE_ORDER, TypeUrl } from '../../../src/xds/resource-types.js';
import { benchConfigYaml } from '../../../scripts/bench/config-gen.js';
import { expectationOf, type SnapshotFacts } from '../../../scripts/bench/measure.js';
import { LoadGenerators, UnsupportedProtocolError } from '../../../scripts/bench/load-generator-handle.js';
import { rawStreamingMethod } from '../../../scripts/bench/wire.js';

const DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';
const Request = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const Response = messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
const Any = messageType('google.protobuf.Any');

interface DeltaRequest {
  node?: { id?: string };
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  response_nonce?: string;
}

function snapshotOf(change: number): Snapshot {
  const config = parseConfig(benchConfigYaml(6, change, 'flip'), `bench-${change}`);
  return buildSnapshot(translate(config, staticEndpoints(config)));
}

function factsOf(s: Snapshot): SnapshotFacts {
  return Object.fromEntries(TYPE_ORDER.map((t) => [t, { version: s.version(t), resources: new Map(s.type(t).list.map((r) => [r.name, r.version])) }]));
}

type Call = ServerDuplexStream<Buffer, Buffer>;

/** Just enough of a Delta ADS server: wildcard CDS/LDS, named EDS/RDS, changed resources pushed on publish. */
class DeltaServer {
  readonly requests: DeltaRequest[] = [];
  readonly sent = new Set<string>();
  readonly acked = new Set<string>();
  readonly #streams = new Map<Call, Map<string, Set<string> | '*'>>();
  #snapshot: Snapshot;
  #nonce = 0;

  constructor(snapshot: Snapshot) {
    this.#snapshot = snapshot;
  }

  handle(call: Call): void {
    const subs = new Map<string, Set<string> | '*'>();
    this.#streams.set(call, subs);
    call.on('data', (bytes: Buffer) => {
      const req = Request.toObject(Request.decode(bytes), { ...TO_OBJECT, arrays: false }) as DeltaRequest;
      this.requests.push(req);
      const type = req.type_url ?? '';
      if (req.response_nonce) this.acked.add(req.response_nonce);
      const added = req.resource_names_subscribe ?? [];
      if (!subs.has(type) && added.length === 0 && !req.response_nonce) {
        subs.set(type, '*');
        this.#send(call, type, this.#snapshot.names(type as never));
      } else if (added.length > 0) {
        const named = subs.get(type);
        const set = named instanceof Set ? named : new Set<string>();
        for (const n of added) set.add(n);
        subs.set(type, set);
        this.#send(call, type, added);
      }
    });
    call.on('end', () => call.end());
  }

  publish(next: Snapshot): void {
    const before = this.#snapshot;
    this.#snapshot = next;
    for (const [call, subs] of this.#streams) {
      for (const [type, sub] of subs) {
        const changed = next
          .type(type as never)
          .list.filter((r) => (sub === '*' || sub.has(r.name)) && before.type(type as never).resources.get(r.name)?.version !== r.version)
          .map((r) => r.name);
        if (changed.length > 0) this.#send(call, type, changed);
      }
    }
  }

  #send(call: Call, type: string, names: readonly string[]): void {
    const nonce = String(++this.#nonce);
    this.sent.add(nonce);
    const resources = names.map((name) => {
      const r = this.#snapshot.type(type as never).resources.get(name);
      if (!r) throw new Error(`no ${type} ${name}`);
      return { name, version: r.version, resource: Any.decode(r.bytes) };
    });
    call.write(Buffer.from(Response.encode(Response.fromObject({ type_url: type, nonce, resources })).finish()));
  }
}

async function listen(service: ServiceDefinition, handler: (call: Call) => void): Promise<{ server: Server; port: number }> {
  const server = new Server();
  server.addService(service, { DeltaAggregatedResources: handler });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port };
}

test('Delta load clients subscribe as Envoy does, ACK every nonce, and see a one-endpoint change arrive', async () => {
  const [s0, s1] = [snapshotOf(0), snapshotOf(1)];
  const fake = new DeltaServer(s0);
  const service: ServiceDefinition = { DeltaAggregatedResources: rawStreamingMethod(DELTA_PATH) };
  const { server, port } = await listen(service, (call) => fake.handle(call));
  const lg = new LoadGenerators(process.hrtime.bigint(), 2);
  try {
    const ready = await lg.start(port, 'delta', 4, 10, 20_000);
    assert.equal(ready.clients, 4);
    for (const t of TYPE_ORDER) assert.equal(ready.counts[t], s0.names(t).length, `${t} held by every client`);

    const firsts = fake.requests.filter((r) => r.node);
    assert.deepEqual(firsts.map((r) => r.node?.id).sort(), ['bench-client-0', 'bench-client-1', 'bench-client-2', 'bench-client-3']);
    for (const t of [TypeUrl.Cluster, TypeUrl.Listener]) {
      const opens = fake.requests.filter((r) => r.type_url === t && !r.response_nonce);
      assert.equal(opens.length, 4, `one ${t} wildcard request per client`);
      assert.ok(
        opens.every((r) => !r.resource_names_subscribe),
        'legacy wildcard: no names',
      );
    }
    const edsSubscribes = fake.requests.filter((r) => r.type_url === TypeUrl.ClusterLoadAssignment && r.resource_names_subscribe);
    assert.equal(edsSubscribes.length, 4);
    for (const r of edsSubscribes) assert.deepEqual([...(r.resource_names_subscribe ?? [])].sort(), [...s0.names(TypeUrl.ClusterLoadAssignment)]);
    const rdsSubscribes = fake.requests.filter((r) => r.type_url === TypeUrl.RouteConfiguration && r.resource_names_subscribe);
    for (const r of rdsSubscribes) assert.deepEqual(r.resource_names_subscribe, [...s0.names(TypeUrl.RouteConfiguration)]);

    const expect = expectationOf(factsOf(s0), factsOf(s1));
    await lg.arm(1, expect, 10_000);
    const before = await lg.tally();
    fake.publish(s1);
    const report = await lg.change();
    assert.equal(report.missing, 0);
    assert.ok(report.received[TypeUrl.ClusterLoadAssignment]?.every((at) => typeof at === 'number'));
    assert.equal(report.responses, 4, 'one response per client');
    const after = await lg.tally();
    const changed = s1.type(TypeUrl.ClusterLoadAssignment).resources.get(expect[TypeUrl.ClusterLoadAssignment]?.names[0] ?? '');
    const perClient = (after.bytes - before.bytes) / 4;
    assert.ok(perClient > (changed?.bytes.length ?? 0) && perClient < (changed?.bytes.length ?? 0) + 200, `${perClient} bytes per client`);

    await sleep(200);
    assert.deepEqual(
      [...fake.sent].filter((n) => !fake.acked.has(n)),
      [],
      'every response ACKed',
    );
  } finally {
    await lg.stop();
    server.forceShutdown();
  }
});

test('a server without DeltaAggregatedResources is reported unsupported (UNIMPLEMENTED), not as a failure', async () => {
  const server = new Server();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const lg = new LoadGenerators(process.hrtime.bigint(), 1);
  try {
    await assert.rejects(lg.start(port, 'delta', 3, 3, 10_000), (err: unknown) => err instanceof UnsupportedProtocolError && err.status === 'UNIMPLEMENTED');
  } finally {
    await lg.stop();
    server.forceShutdown();
  }
});
