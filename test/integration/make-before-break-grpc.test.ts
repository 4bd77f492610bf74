/**
 * Make before break with the real proxyless gRPC client (@grpc/grpc-js-xds): under a steady call
 * load over one `xds:///greeter:50051` channel, a YAML file is edited over and over, canary weight
 * 20 -> 0 (the canary cluster leaves the gRPC snapshot) -> 20, and the canary route and cluster
 * deleted from the file and put back. Not one call may fail: the cluster leaves CDS only after the
 * client has ACKed the routes that stopped naming it (src/cache/make-before-break.ts).
 *
 * grpc-js-xds processes the CDS and RDS responses of one write in one go, so the old order (CDS
 * without the cluster, then RDS) rarely fails one of its calls; grpc-go does (issue 12). So the
 * order is also checked on the wire: whenever the client is sent CDS, every cluster named by the
 * routes it holds (ACKed, or sent and not yet answered) must be in it.
 *
 * Each edit waits until serve() holds nothing any more and the client has ACKed the final
 * snapshot, then lets calls run on it for a moment, so every phase sees traffic. Runs in its own
 * process: grpc-js-xds reads its bootstrap once per process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client, ServiceError } from '@grpc/grpc-js';
import type { RunningApp } from '../../src/app.js';
import { grpcCanaryYaml, runCanaryEdits, type CanaryWeight } from '../support/canary-edits.js';
import { startGreeterRig, type HelloReply, type GreeterRig } from '../support/greeter.js';
import { watchRemovalOrder } from '../support/removal-order.js';
import { waitUntil } from '../support/tmp.js';

const TARGET = 'greeter:50051';
const NODE_ID = 'mbb-grpc-client';
type HelloCall = (req: { name: string }, opts: { deadline: number }, cb: (err: ServiceError | null, reply?: HelloReply) => void) => void;

describe('make before break: proxyless gRPC (grpc-js-xds) under load across canary edits', () => {
  let rig: GreeterRig | undefined;
  let app: RunningApp | undefined;
  let client: Client | undefined;
  let configFile = '';
  let ports: readonly number[] = [];
  const yaml = (w: CanaryWeight) => grpcCanaryYaml(TARGET, ports[0] ?? 0, ports[1] ?? 0, w);

  before(async () => {
    rig = await startGreeterRig({
      prefix: 'mbb-grpc',
      backends: ['greeter', 'canary'],
      config: (p) => {
        ports = p;
        return yaml(20);
      },
      nodeId: NODE_ID,
      target: TARGET,
    });
    ({ app, client, configFile } = rig);
  });

  after(() => rig?.close());

  it('zero failed calls across 24 edits: weight 20 <-> 0 and the canary deleted and restored', async (t) => {
    assert.ok(app && client);
    const running = app;
    const hello = (): Promise<string> =>
      new Promise((resolve, reject) => {
        (client as unknown as { Hello: HelloCall }).Hello.call(client, { name: 't' }, { deadline: Date.now() + 5_000 }, (err, reply) =>
          err ? reject(err) : resolve(reply?.backend ?? ''),
        );
      });
    await waitUntil(() => hello().then((b) => b !== ''), { what: 'a first call through the xds channel', timeoutMs: 20_000 });

    const order = watchRemovalOrder(running, NODE_ID);
    let ok = 0;
    const failures: string[] = [];
    const answered = new Map<string, number>();
    let stop = false;
    const caller = async (): Promise<void> => {
      while (!stop) {
        try {
          const b = await hello();
          ok++;
          answered.set(b, (answered.get(b) ?? 0) + 1);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const callers = Array.from({ length: 8 }, caller);

    let edits = 0;
    try {
      edits = await runCanaryEdits({ app: running, configFile, yaml, nodeId: NODE_ID });
    } finally {
      stop = true;
      await Promise.all(callers);
      order.stop();
    }
    t.diagnostic(`${edits} edits, ${ok} calls ok, ${failures.length} failed; answered: ${JSON.stringify(Object.fromEntries(answered))}`);
    assert.equal(edits, 24);
    assert.ok((answered.get('canary') ?? 0) > 0, 'the canary got calls while it was routed to');
    assert.deepEqual(order.breaks, [], 'no cluster left CDS before the routes naming it were answered');
    assert.deepEqual(order.nacks, [], 'every stage was accepted');
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} calls failed`);
  });
});
