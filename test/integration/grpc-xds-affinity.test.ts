/**
 * Session affinity for proxyless gRPC: a `type: grpc` listener routes to a `ring-hash` cluster
 * with `hash-policy: [{ header: x-user }]`; the route carries the hash policy, and the real
 * `@grpc/grpc-js-xds` client sends every call of one user (metadata `x-user`) to one backend,
 * while the users spread over all three. Without the hash policy the client hashes each call at
 * random, so one user's calls would land on several backends.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, type Client } from '@grpc/grpc-js';
import type { RunningApp } from '../../src/app.js';
import { startGreeterRig, type HelloWithMetadata, type GreeterRig } from '../support/greeter.js';
import { waitUntil } from '../support/tmp.js';

const TARGET = 'sticky-greeter:50051';
const NODE_ID = 'grpc-xds-affinity-client';
const USERS = 24;
const CALLS_PER_USER = 5;

function configYaml(ports: readonly number[]): string {
  return `# written by test/integration/grpc-xds-affinity.test.ts
listener:
  "${TARGET}": { type: grpc }
route:
  domain: ["${TARGET}"]
  cluster:
    greeter: { prefix: ["/consulxds.test.Greeter/"] }
cluster:
  loadbalancer:
    greeter: { lb-policy: ring-hash, hash-policy: [{ header: x-user }] }
endpoint:
  eds:
    greeter:
      static: [${ports.map((p) => `{ address: "127.0.0.1", port: ${p} }`).join(', ')}]
`;
}

describe('proxyless gRPC session affinity (ring-hash + header hash policy)', () => {
  let rig: GreeterRig | undefined;
  let app: RunningApp | undefined;
  let client: Client | undefined;

  const hello = (user: string): Promise<string> =>
    new Promise((resolve, reject) => {
      assert.ok(client, 'client not created');
      const call = (client as unknown as { Hello: HelloWithMetadata }).Hello.bind(client);
      const md = new Metadata();
      md.set('x-user', user);
      call({ name: user }, md, (err, reply) => (err ? reject(err) : resolve(reply?.backend ?? '')));
    });

  before(async () => {
    rig = await startGreeterRig({
      prefix: 'grpc-xds-affinity',
      backends: ['greeter-a', 'greeter-b', 'greeter-c'],
      config: configYaml,
      nodeId: NODE_ID,
      target: TARGET,
    });
    ({ app, client } = rig);
  });

  after(() => rig?.close());

  it('every call of one user reaches one backend; the users spread over all three; nothing NACKed', async () => {
    await waitUntil(() => hello('warm-up').then((b) => b !== ''), { what: `a first call through xds:///${TARGET}`, timeoutMs: 20_000 });
    const seen = new Set<string>();
    for (let u = 0; u < USERS; u++) {
      const user = `user-${u}`;
      const got = new Set<string>();
      for (let i = 0; i < CALLS_PER_USER; i++) got.add(await hello(user));
      assert.equal(got.size, 1, `${user} reached ${[...got].join(', ')}`);
      for (const b of got) seen.add(b);
    }
    assert.deepEqual([...seen].sort(), ['greeter-a', 'greeter-b', 'greeter-c'], 'the users spread over every backend');
    const status = app?.xdsServer.registry.nodeStatus(NODE_ID);
    assert.equal(status?.nacked, false, JSON.stringify(status));
  });
});
