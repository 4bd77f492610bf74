/**
 * Fault suite, control plane side (real Consul, `consul-xds serve` as a child process, every data
 * plane of DATA_PLANES under a paced load): the control plane is killed with SIGKILL and
 * restarted twice, then fed malformed and absurd xDS (garbage bytes on a gRPC stream and on a
 * raw TCP connection, 100,000 resource_names (refused by the request limits) and 10,000 (served),
 * unknown type URLs, stale and garbage nonces).
 * Each scenario prints one figure line per data plane and asserts that no request failed and
 * that the last good config (the 80:20 split) keeps serving. See test/support/fault.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { AdsConnection, type AdsStream } from '../support/ads-client.js';
import { DATA_PLANES } from '../support/dataplanes.js';
import { checkRuns, GOOD_WEIGHTS, faultRigHooks, watchHealth, type HealthWatch } from '../support/fault.js';
import { TypeUrl } from '../../src/xds/resource-types.js';

const rigOf = faultRigHooks('cp');

describe('fault: the control plane', () => {
  it('kill -9 of the control plane and a restart on the same port, twice: no request fails, the split holds', async (t) => {
    const r = rigOf();
    const reconnects = new Map<string, number[]>(r.planes.map((p) => [p.kind, []]));
    const runs = await r.underLoad(
      'cp-kill-9',
      async () => {
        let held = 0;
        for (let i = 0; i < 2; i++) {
          const t0 = performance.now();
          await r.cp.kill();
          await sleep(1_000); // the data planes are on their own
          await r.cp.start();
          await Promise.all(
            r.planes.map(async (p) => {
              await r.cp.waitForNodes([p.dp.nodeId], 30_000);
              reconnects.get(p.kind)?.push(performance.now() - t0);
            }),
          );
          held += performance.now() - t0;
        }
        return held;
      },
      (kind) => `kill -> reconnected ${(reconnects.get(kind) ?? []).map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}`,
    );
    await checkRuns(t, r, runs);
    await r.expectSplit(GOOD_WEIGHTS, 'after two kill -9 and restarts');
  });

  it('malformed and absurd xDS requests: abusive streams are refused or ignored, the data planes lose nothing', async (t) => {
    const r = rigOf();
    const group = DATA_PLANES[0] ?? 'envoy';
    const address = `127.0.0.1:${r.cp.xdsPort}`;
    const notes: string[] = [];
    let namesCpuMs = 0;
    const health = watchHealth(r.cp);
    const conns: AdsConnection[] = [];
    const connection = (): AdsConnection => {
      const c = new AdsConnection(address, { separateConnection: true });
      conns.push(c);
      return c;
    };
    /** The stream's end status within `ms`, or undefined if it stays open. */
    const endsWithin = async (s: AdsStream, ms: number): Promise<number | undefined> =>
      Promise.race([s.status.then((st) => st.code), sleep(ms).then(() => undefined)]);

    let healthFigures: Awaited<ReturnType<HealthWatch['stop']>> = { samples: 0, maxMs: 0, non200: 0 };
    const runs = await r.underLoad(
      'xds-abuse',
      async () => {
        try {
          // 1. Random bytes as the DiscoveryRequest of 20 streams: each ends with an error, or (bytes
          //    that happen to parse) is a request the server may ignore; either way nothing else moves.
          let refused = 0;
          await Promise.all(
            Array.from({ length: 20 }, async (_, i) => {
              const s = connection().stream();
              s.sendRaw(randomBytes(16 + ((i * 997) % 4096)));
              const code = await endsWithin(s, 2_000);
              if (code !== undefined && code !== 0) refused++;
              s.cancel();
            }),
          );
          notes.push(`random-bytes streams refused ${refused}/20`);

          // 2. Garbage on raw TCP connections to the xDS port (not even HTTP/2): each is closed.
          const closed = await Promise.all(
            Array.from(
              { length: 10 },
              () =>
                new Promise<boolean>((resolve) => {
                  const sock = connect(r.cp.xdsPort, '127.0.0.1', () => sock.write(randomBytes(2048)));
                  const timer = setTimeout(() => {
                    sock.destroy();
                    resolve(false);
                  }, 3_000);
                  sock.on('error', () => undefined);
                  sock.on('close', () => {
                    clearTimeout(timer);
                    resolve(true);
                  });
                  sock.resume();
                }),
            ),
          );
          assert.equal(closed.filter(Boolean).length, 10, 'the server closes every connection that sends garbage');

          // 3. 100,000 resource_names on EDS (2.4 MB): over the request cap (1 MiB), the stream ends
          //    with RESOURCE_EXHAUSTED and nothing is sent. Then 10,000 (the name limit, the real
          //    names among them), then the ACK repeating them.
          const huge = connection().stream({ node: { id: 'fault-abuse-huge', cluster: group } });
          huge.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: Array.from({ length: 100_000 }, (_, i) => `no-such-cluster-${i}`) });
          assert.equal(await endsWithin(huge, 5_000), 8, '100,000 names: RESOURCE_EXHAUSTED (request over 1 MiB)');
          assert.equal(huge.received.length, 0, 'nothing is sent for a refused request');
          notes.push('100k names refused (RESOURCE_EXHAUSTED)');
          const big = connection().stream({ node: { id: 'fault-abuse-names', cluster: group } });
          const names = Array.from({ length: 9_998 }, (_, i) => `no-such-cluster-${i}`).concat(['fault-a', 'fault-b']);
          let slowest = 0;
          const cpu0 = await r.cp.cpuMs();
          for (let i = 0; i < 2; i++) {
            const t0 = performance.now();
            big.send({
              typeUrl: TypeUrl.ClusterLoadAssignment,
              resourceNames: names,
              responseNonce: big.received.at(-1)?.nonce ?? '',
              versionInfo: big.received.at(-1)?.versionInfo ?? '',
            });
            if (i === 0) {
              const res = await big.next(15_000);
              assert.deepEqual([...res.names].sort(), ['fault-a', 'fault-b'], 'the existing clusters are served, the 9,998 unknown names are not');
              big.ack(res, names);
            } else {
              // An ACK with the same 10,000 names changes nothing: no response, and no stall.
              await big.expectSilence(300);
            }
            slowest = Math.max(slowest, performance.now() - t0);
          }
          namesCpuMs = (await r.cp.cpuMs()) - cpu0;
          notes.push(`10k-names answer ${(slowest / 1000).toFixed(2)} s (${namesCpuMs.toFixed(0)} ms CPU for it and its ACK)`);
          big.cancel();

          // 4. Unknown type URLs: ignored or refused, and the stream (if open) still serves CDS.
          const odd = connection().stream({ node: { id: 'fault-abuse-types', cluster: group } });
          for (const typeUrl of ['type.googleapis.com/envoy.config.nothing.v3.Nothing', 'garbage', '']) odd.send({ typeUrl, resourceNames: ['x'] });
          const oddEnd = await endsWithin(odd, 500);
          if (oddEnd === undefined) {
            odd.subscribe(TypeUrl.Cluster);
            const cds = await odd.next(5_000).catch((e: Error) => assert.fail(`CDS after unknown type URLs on the same stream: ${e.message}`));
            assert.deepEqual([...cds.names].sort(), ['fault-a', 'fault-b'], 'after unknown types, CDS is still served on the same stream');
            notes.push('unknown types ignored');
          } else {
            assert.notEqual(oddEnd, 0, 'an unknown type ends the stream with an error, not OK');
            notes.push(`unknown types: stream ended with code ${oddEnd}`);
          }
          odd.cancel();

          // 5. Stale and garbage nonces: ignored (no response, no NACK recorded); a real ACK still works.
          const nonce = connection().stream({ node: { id: 'fault-abuse-nonce', cluster: group } });
          nonce.subscribe(TypeUrl.Cluster);
          const first = await nonce.next(5_000).catch((e: Error) => assert.fail(`CDS on a fresh stream: ${e.message}`));
          for (const bad of ['garbage-nonce', '0', 'x'.repeat(10_000), `${first.nonce}-stale`]) {
            nonce.send({ typeUrl: TypeUrl.Cluster, versionInfo: first.versionInfo, responseNonce: bad });
            nonce.send({
              typeUrl: TypeUrl.Cluster,
              versionInfo: 'bogus-version',
              responseNonce: bad,
              errorDetail: { code: 13, message: 'fault suite: NACK with a garbage nonce' },
            });
          }
          await nonce.expectSilence(300);
          nonce.ack(first);
          await nonce.expectSilence(200);
          const st = (await r.cp.clients()).find((n) => n.nodeId === 'fault-abuse-nonce');
          assert.ok(st, 'the nonce-abusing node is connected');
          assert.equal(st.nacked, false, `a NACK with a garbage nonce is not recorded: ${JSON.stringify(st)}`);
          nonce.cancel();
        } finally {
          for (const c of conns) c.close();
          healthFigures = await health.stop();
        }
      },
      () => `${notes.join(', ')}, /health max ${healthFigures.maxMs.toFixed(0)} ms (${healthFigures.non200} non-200 of ${healthFigures.samples})`,
    );
    if (healthFigures.firstNon200 !== undefined) t.diagnostic(`first non-200 /health during the abuse: ${healthFigures.firstNon200}`);
    await checkRuns(t, r, runs);
    // Linear work: 100,000 names cost the control plane ~100-200 ms of CPU per request, 10,000 a
    // tenth. Bounded in CPU time, which a busy shared machine does not inflate; /health only
    // against a stall of seconds.
    assert.ok(namesCpuMs < 1_500, `a 10,000-name request and its ACK cost the control plane at most 1.5 s of CPU (${namesCpuMs.toFixed(0)} ms)`);
    assert.ok(healthFigures.maxMs < 5_000, `the control plane answered /health within 5 s throughout (max ${healthFigures.maxMs.toFixed(0)} ms)`);
    await r.cp.waitForNodes(r.planes.map((p) => p.dp.nodeId));
    // The server still pushes: a weight change reaches every data plane, and back.
    await r.writeConfigs({ a: 50, b: 50 });
    await r.expectSplit({ a: 50, b: 50 }, 'a config change after the abuse');
    await r.writeConfigs(GOOD_WEIGHTS);
    await r.expectSplit(GOOD_WEIGHTS, 'the good weights again');
  });
});
