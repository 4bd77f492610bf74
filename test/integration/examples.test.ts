/**
 * Every example under examples/ runs by its one command (`npm run example -- <name>`, here with
 * `--free-ports --exit` so runs never collide) on real Envoy and on the TS data plane, and what
 * its walkthrough prints holds: each step's `got:` line is parsed and checked against the
 * outcome the step promises (`expect:`). Splits are checked with 4 binomial standard deviations
 * (a correct data plane fails one about once in 15,000 runs).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { binomialBounds } from '../support/traffic.js';

const RUNNER = fileURLToPath(new URL('../../scripts/example.js', import.meta.url));
const KINDS = ['envoy', 'ts-proxy'] as const;

interface Step {
  readonly title: string;
  readonly got: string;
}

/** Runs an example to the end of its walkthrough; resolves with its steps (title, got). */
async function runExample(name: string, dataPlane: string): Promise<{ out: string; steps: Step[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, [RUNNER, name, '--free-ports', '--exit', '--data-plane', dataPlane], {
    timeout: 150_000,
    env: { ...process.env },
  }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`example ${name} (${dataPlane}) failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  });
  const steps = stdout
    .split('\n== ')
    .slice(1)
    .map((block) => ({ title: block.split('\n')[0] as string, got: /\n {2}got: {4}(.*)/.exec(block)?.[1] ?? '' }));
  return { out: stdout, steps };
}

/** "web-api-go-1 21, web-api-perl-1 90" -> counts by name; `prefix` sums the names starting with it. */
function counts(got: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const part of got.split(/[;|]/)[0]?.split(', ') ?? []) {
    const hit = /^(.*) (\d+)$/.exec(part.trim());
    if (hit) m.set(hit[1] as string, Number(hit[2]));
  }
  return m;
}
function sum(m: ReadonlyMap<string, number>, prefix: string): number {
  let n = 0;
  for (const [k, v] of m) if (k.startsWith(prefix)) n += v;
  return n;
}
function assertShare(actual: number, n: number, p: number, what: string, out: string): void {
  const { low, high } = binomialBounds(n, p);
  assert.ok(actual >= low && actual <= high, `${what}: ${actual} of ${n}, expected ${low.toFixed(0)}..${high.toFixed(0)}\n${out}`);
}
function stepNamed(steps: readonly Step[], start: string, out: string): Step {
  const s = steps.find((x) => x.title.startsWith(start));
  assert.ok(s, `no step '${start}' in\n${out}`);
  return s;
}

for (const kind of KINDS) {
  describe(`examples on ${kind}`, () => {
    it('quickstart: the 90/10 split on /api and /asset to web-asset', async () => {
      const { out, steps } = await runExample('quickstart', kind);
      const split = counts(stepNamed(steps, "the seed's 90/10", out).got);
      assert.equal(sum(split, 'web-api-'), 200, out);
      assertShare(sum(split, 'web-api-go'), 200, 0.1, 'web-api-go', out);
      assert.deepEqual([...counts(stepNamed(steps, '/asset', out).got)], [['web-asset', 10]], out);
    });

    it('seed-000: mirroring at 10 % then 50 % (answers only from service-a), and the TCP proxy echoes over both instances', async () => {
      const { out, steps } = await runExample('seed-000', kind);
      for (const [title, p] of [
        ['mirror 10 %', 0.1],
        ['mirror 50 %', 0.5],
      ] as const) {
        const got = stepNamed(steps, title, out).got;
        assert.deepEqual([...counts(got)], [['service-a', 200]], out);
        const copies = Number(/service-b received (\d+) copies \(last Host: [^)]*-shadow/.exec(got)?.[1] ?? NaN);
        assertShare(copies, 200, p, `${title}: copies at service-b`, out);
      }
      const tcp = stepNamed(steps, 'the TCP proxy', out).got;
      assert.match(tcp, /^10 of 10 echoed; /, out);
      const conns = counts(tcp.split('; ')[1]?.replace(' connections', '') ?? '');
      assert.equal(sum(conns, 'mongodb-'), 10, out);
      assert.ok((conns.get('mongodb-0') ?? 0) > 0 && (conns.get('mongodb-1') ?? 0) > 0, `both instances get connections\n${out}`);
    });

    it('seed-001: Consul instances, weights 90/10 -> 50/50 -> 0/100 with `weights set`, maintenance file, every request in the access log', async () => {
      const { out, steps } = await runExample('seed-001', kind);
      const first = counts(stepNamed(steps, '90/10', out).got);
      assert.equal(sum(first, 'web-api-'), 200, out);
      assertShare(sum(first, 'web-api-go'), 200, 0.1, '90/10: web-api-go', out);
      assert.ok((first.get('web-api-perl-1') ?? 0) > 0 && (first.get('web-api-perl-2') ?? 0) > 0, `both perl instances serve\n${out}`);
      const half = counts(stepNamed(steps, '50/50', out).got);
      assert.equal(sum(half, 'web-api-'), 200, out);
      assertShare(sum(half, 'web-api-go'), 200, 0.5, '50/50: web-api-go', out);
      assert.deepEqual([...counts(stepNamed(steps, '0/100', out).got)], [['web-api-go-1', 200]], out);
      assert.equal(stepNamed(steps, 'the maintenance file', out).got, '200 OK | with the file: 599 MAINTENANCE | removed: 200 OK', out);
      const logs = stepNamed(steps, 'access logs', out);
      const lines = Number(/^(\d+) lines/.exec(logs.got)?.[1]);
      const promised = Number(/expect: (\d+) lines/.exec(out)?.[1]);
      assert.ok(promised >= 600 && lines >= promised, `access-log lines: ${lines}, promised ${promised}\n${out}`);
      assert.match(logs.got, /"upstream_cluster":"web-api-go"/, out);
    });
  });
}
