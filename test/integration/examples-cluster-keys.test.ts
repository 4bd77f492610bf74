/**
 * seed-002 and seed-003, the examples that use the cluster keys of issue 13 (branch
 * `seed-cluster`, merged): `max-concurrent-streams`, `circuit-breakers`, `discovery: strict-dns`,
 * `hosts`, `dns-lookup-family`, `healthy-panic-threshold`. Same shape as examples.test.ts: each
 * example runs by its one command on real Envoy and on the TS data plane, and each step's printed
 * `got:` line is checked against its `expect:`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { binomialBounds } from '../support/traffic.js';

const RUNNER = fileURLToPath(new URL('../../scripts/example.js', import.meta.url));

async function steps(name: string, dataPlane: string): Promise<{ out: string; got: (title: string) => Map<string, number> }> {
  const { stdout } = await promisify(execFile)(process.execPath, [RUNNER, name, '--free-ports', '--exit', '--data-plane', dataPlane], {
    timeout: 150_000,
  }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`example ${name} (${dataPlane}) failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  });
  const blocks = stdout.split('\n== ').slice(1);
  return {
    out: stdout,
    got: (title) => {
      const block = blocks.find((b) => b.startsWith(title));
      assert.ok(block, `no step '${title}' in\n${stdout}`);
      const line = /\n {2}got: {4}(.*)/.exec(block)?.[1] ?? '';
      return new Map(line.split(', ').map((p) => [p.replace(/ \d+$/, ''), Number(/(\d+)$/.exec(p)?.[1])] as [string, number]));
    },
  };
}

for (const kind of ['envoy', 'ts-proxy'] as const) {
  describe(`examples needing the cluster keys, on ${kind}`, () => {
    it('seed-002: a stream limit spreads requests over every worker process; the circuit breaker refuses the excess with 503', async () => {
      const { out, got } = await steps('seed-002', kind);
      const workers = got('max-concurrent-streams');
      // `out` carries the step's `stats:` line (the data plane's overflow/connect/reset counters): why a 503 came.
      assert.deepEqual([...workers.keys()].sort(), ['inference/w1', 'inference/w2', 'inference/w3', 'inference/w4'], out);
      assert.equal(
        [...workers.values()].reduce((s, v) => s + v, 0),
        200,
        out,
      );
      const burst = got('circuit-breakers');
      const ok = [...burst].filter(([k]) => k.startsWith('inference/')).reduce((s, [, v]) => s + v, 0);
      assert.ok(ok >= 8 && ok <= 16, `answered: ${ok} (8 active + at most 8 pending)\n${out}`);
      assert.equal(ok + (burst.get('status 503') ?? 0), 32, out);
    });

    it('seed-003: gRPC over one connection balanced per request; 2 -> 4 instances behind `localhost` with no config change', async () => {
      const { out, got } = await steps('seed-003', kind);
      for (const [title, names, n] of [
        ['2 instances', ['g1', 'g2'], 200],
        ['4 instances', ['g1', 'g2', 'g3', 'g4'], 400],
      ] as const) {
        const t = got(title);
        assert.deepEqual([...t.keys()].sort(), [...names], out);
        const { low, high } = binomialBounds(n, 1 / names.length);
        for (const name of names) assert.ok((t.get(name) ?? 0) >= low && (t.get(name) ?? 0) <= high, `${title}: ${name} ${t.get(name)}\n${out}`);
      }
    });
  });
}
