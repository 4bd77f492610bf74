/**
 * Fault suite, Consul side (real Consul, `consul-xds serve` as a child process, every data plane
 * of DATA_PLANES under a paced load): Consul restarts and comes back at once; Consul restarts and
 * its catalog stays empty for 5 s (a dev agent loses its state, like a rebuilt cluster), then the
 * instances come back; bad registrations (extreme weights, a hostname where an IP is needed, no
 * port, ports out of range) beside the good ones. After each, a health
 * change of a good instance must still reach the data planes. Each scenario prints one figure
 * line per data plane and asserts that no request failed. See test/support/fault.ts.
 */
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkRuns, GOOD_WEIGHTS, faultRigHooks, type FaultPlane, type FaultRig } from '../support/fault.js';

const rigOf = faultRigHooks('consul');

/**
 * a2 goes critical in Consul: every data plane stops sending it traffic; passing again: it gets
 * traffic again. Returns how long the two changes took to reach the slowest data plane.
 */
async function healthChangeArrives(r: FaultRig, why: string): Promise<number> {
  const t0 = performance.now();
  const follows = (ok: (p: FaultPlane, a2: number) => boolean, what: string): Promise<unknown> =>
    Promise.all(
      r.planes.map((p) =>
        p.dp.waitFor(async () => ok(p, (await p.send(40)).count('a2')), {
          what: `${what} (${why})`,
          timeoutMs: 15_000,
          intervalMs: 100,
          context: () => r.cp.logTail(),
        }),
      ),
    );
  await r.setHealth('a2', 'fail');
  await follows((_p, a2) => a2 === 0, 'a2 (critical in Consul) out of rotation');
  await r.setHealth('a2', 'pass');
  await follows((_p, a2) => a2 > 0, 'a2 (passing again) back in rotation');
  return performance.now() - t0;
}

describe('fault: Consul', () => {
  /**
   * Consul stops and starts on the same ports, answering with an empty catalog and no config key
   * for `emptyMs`; then the instances and configs are written again and a health change must
   * still arrive. Held = the empty time (with emptyMs 0: from the stop until re-registered).
   */
  const restart = (scenario: string, emptyMs: number) => async (t: TestContext) => {
    const r = rigOf();
    let change = 0;
    const runs = await r.underLoad(
      scenario,
      async () => {
        let t0 = performance.now();
        await r.consul.stop();
        await r.consul.start();
        if (emptyMs > 0) {
          t0 = performance.now();
          await sleep(emptyMs);
        }
        await r.registerAll();
        await r.writeConfigs(GOOD_WEIGHTS);
        const held = performance.now() - t0;
        change = await healthChangeArrives(r, `${scenario}: after Consul came back`);
        return held;
      },
      () => `health change after it reached the data plane in ${(change / 1000).toFixed(1)} s`,
    );
    await checkRuns(t, r, runs);
    await r.expectSplit(GOOD_WEIGHTS, `after ${scenario}`);
  };

  it('Consul restarts and the instances are registered again at once: no request fails', restart('consul-restart', 0));

  it('Consul restarts with an empty catalog for 5 s: the last endpoints keep serving, no request fails', restart('consul-restart-empty', 5_000));

  it('bad registrations beside good ones: no request fails, and a later health change still reaches the data planes', async (t) => {
    const r = rigOf();
    const b1 = r.upstreams.b1.port;
    // Consul 1.8 keeps a weight above 65535 out (the agent API refuses it, the catalog API resets it
    // to 1), so Envoy's uint32 overflow cannot come from this Consul; the extremes it does accept:
    // the largest Passing weight and a Warning weight of 0 (below Envoy's minimum of 1).
    const badWeights = [{ ID: 'fault-bad-weight', Passing: 65_535, Warning: 0 }] as const;
    const badNodes = [
      // A hostname where Envoy needs an IP (loopback, so nothing leaves the machine if it were resolved).
      { id: 'fault-bad-hostname', address: 'localhost', port: b1 },
      // No port at all; ports out of range (the catalog API stores them as given).
      { id: 'fault-bad-no-port', address: '127.0.0.1' },
      { id: 'fault-bad-port-big', address: '127.0.0.1', port: 70_000 },
      { id: 'fault-bad-port-negative', address: '127.0.0.1', port: -1 },
    ] as const;
    let change = 0;
    try {
      const runs = await r.underLoad(
        'bad-instances',
        async () => {
          const t0 = performance.now();
          for (const b of badWeights) {
            await r.consul.registerService({
              Name: 'fault-b',
              ID: b.ID,
              Address: '127.0.0.1',
              Port: b1,
              Weights: { Passing: b.Passing, Warning: b.Warning },
              Checks: [{ CheckID: `${b.ID}-ttl`, TTL: '10m', Status: 'passing' }],
            });
          }
          for (const b of badNodes)
            await r.consul.catalogRegister({ node: `node-${b.id}`, address: '127.0.0.1', service: { name: 'fault-b', ...b }, status: 'passing' });
          await sleep(1_500); // the control plane has seen them (and built, or failed to build, a snapshot)
          change = await healthChangeArrives(r, 'bad instances registered beside good ones');
          return performance.now() - t0;
        },
        () => `health change after bad registrations reached the data plane in ${(change / 1000).toFixed(1)} s`,
      );
      await checkRuns(t, r, runs);
    } finally {
      for (const b of badWeights) await r.consul.deregisterService(b.ID).catch(() => undefined);
      for (const b of badNodes) await r.consul.catalogDeregister(`node-${b.id}`).catch(() => undefined);
    }
    await r.expectSplit(GOOD_WEIGHTS, 'after the bad registrations are gone');
  });
});
