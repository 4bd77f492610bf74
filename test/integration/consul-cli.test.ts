/**
 * The operator CLI against a real Consul agent, run as the real `consul-xds` binary
 * (dist/src/cli.js): `kv put|get|validate` validate before writing and never store a config
 * `serve` would refuse; `weights set` keeps comments and layout, `--dry-run` writes nothing; two
 * concurrent edits never lose one: with check-and-set the loser fails with CXDS_CAS_CONFLICT and
 * succeeds on a retry against the fresh value; `--config-max-bytes` caps what any of them parses.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyKvWrite, planWeightEdit } from '../../src/commands/kv-write.js';
import { parseConfig } from '../../src/config/parse.js';
import { CasConflictError } from '../../src/errors.js';
import { startConsul, type ConsulAgent } from '../support/consul.js';
import { makeTempDir } from '../support/tmp.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const cli = join(repoRoot, 'dist/src/cli.js');
let consul: ConsulAgent;
let tmp: Awaited<ReturnType<typeof makeTempDir>>;
let seedText: string;

before(async () => {
  consul = await startConsul();
  tmp = await makeTempDir('consul-cli');
  seedText = await readFile(join(repoRoot, 'examples/seed-001.yaml'), 'utf8');
});

after(async () => {
  await consul?.destroy();
  await tmp?.remove();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolveRun) => {
    // CONSUL_HTTP_ADDR, not --consul: the environment path is what operators use most.
    execFile(
      process.execPath,
      [cli, ...args],
      { env: { PATH: process.env.PATH, CONSUL_HTTP_ADDR: consul.address, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

async function stored(key: string): Promise<string | undefined> {
  return (await consul.client.kvGet(key))?.value;
}

test('kv put validates first: the seed is stored, an invalid file is refused by path and line and nothing is written', async () => {
  const key = 'cli/put';
  const file = join(tmp.path, 'seed.yaml');
  await writeFile(file, seedText);
  const put = await run(['kv', 'put', '--consul-key', key, '--file', file]);
  assert.equal(put.code, 0, put.stderr);
  assert.match(put.stderr, /consul kv cli\/put: written \(check-and-set on ModifyIndex 0\)/);
  assert.equal(await stored(key), seedText);

  const get = await run(['kv', 'get', '--consul-key', key]);
  assert.equal(get.code, 0);
  assert.equal(get.stdout, seedText);
  assert.match(get.stderr, /ModifyIndex \d+/);
  const validate = await run(['kv', 'validate', '--consul-key', key, '--consul', consul.address]);
  assert.equal(validate.code, 0, validate.stderr);
  assert.match(validate.stdout, /consul kv cli\/put \(ModifyIndex \d+\): valid\n {2}CDS [0-9a-f]+: web-api-go, web-api-perl, web-asset/);

  const bad = join(tmp.path, 'bad.yaml');
  const badText = seedText.replace('interval: 1\n', 'interval: soon\n');
  await writeFile(bad, badText);
  const line = badText.split('\n').findIndex((l) => l.includes('interval: soon')) + 1;
  const refused = await run(['kv', 'put', '--consul-key', key, '--file', bad]);
  assert.equal(refused.code, 1);
  assert.ok(
    refused.stderr.includes(`${bad}: cluster.loadbalancer.web-api-perl.health-check.interval: expected a number`) &&
      refused.stderr.includes(`(line ${line}, col 19) [CXDS_CONFIG_INVALID]`),
    refused.stderr,
  );
  assert.equal(await stored(key), seedText, 'KV untouched');

  // A stale --cas (someone wrote since the operator read) is a conflict, not an overwrite.
  const stale = await run(['kv', 'put', '--consul-key', key, '--file', file, '--cas', '1']);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /consul kv cli\/put: the key changed since it was read \(another edit won\); read it again and retry \[CXDS_CAS_CONFLICT\]/);
});

test('--config-max-bytes: validate, kv put (file or stdin) and kv validate refuse a config over the cap, naming it, its size and the cap', async () => {
  const key = 'cli/cap';
  const file = join(tmp.path, 'cap.yaml');
  await writeFile(file, seedText);
  const size = Buffer.byteLength(seedText);
  const over = (source: string) => `${source}: the config is ${size} bytes, over the 1000-byte cap (--config-max-bytes); not parsed [CXDS_CONFIG_TOO_LARGE]`;

  const validate = await run(['validate', file, '--config-max-bytes', '1000']);
  assert.equal(validate.code, 1);
  assert.match(validate.stderr, new RegExp(escapeRegExp(over(file))));
  assert.equal((await run(['validate', file])).code, 0, 'the default cap (512 KiB) lets the seed through');
  const usage = await run(['validate', file, '--config-max-bytes', '0']);
  assert.match(usage.stderr, /--config-max-bytes: expected a number of bytes \(integer >= 1\), got '0' \[CXDS_USAGE\]/);

  const put = await run(['kv', 'put', '--consul-key', key, '--file', file, '--config-max-bytes', '1000']);
  assert.equal(put.code, 1);
  assert.match(put.stderr, new RegExp(escapeRegExp(over(file))));
  const piped = await runWithStdin(['kv', 'put', '--consul-key', key, '--file', '-', '--config-max-bytes', '1000'], seedText);
  assert.equal(piped.code, 1);
  assert.match(piped.stderr, new RegExp(escapeRegExp(over('<stdin>'))));
  assert.equal(await stored(key), undefined, 'nothing written');

  assert.equal((await run(['kv', 'put', '--consul-key', key, '--file', file])).code, 0);
  const stored1000 = await run(['kv', 'validate', '--consul-key', key, '--config-max-bytes', '1000']);
  assert.equal(stored1000.code, 1);
  assert.match(stored1000.stderr, new RegExp(escapeRegExp(over(`consul kv ${key}`))));
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function runWithStdin(args: string[], input: string): Promise<Run> {
  return new Promise((resolveRun) => {
    const child = execFile(
      process.execPath,
      [cli, ...args],
      { env: { PATH: process.env.PATH, CONSUL_HTTP_ADDR: consul.address }, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolveRun({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(input);
  });
}

test('weights set keeps comments and layout; --dry-run prints the YAML and Envoy diffs and writes nothing', async () => {
  const key = 'cli/weights';
  await consul.kvPut(key, seedText);
  const dry = await run(['weights', 'set', '/api', 'web-api-perl=60', 'web-api-go=40', '--consul-key', key, '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^# Config \(YAML\)\n--- consul kv cli\/weights \(ModifyIndex \d+\)\n/);
  assert.match(dry.stdout, /-      weight: 90\n\+      weight: 60\n/);
  assert.match(dry.stdout, /# Envoy resources\n~ RDS listen\n/);
  assert.match(dry.stderr, /\/api: web-api-perl 90 -> 60, web-api-go 10 -> 40; dry run, nothing written/);
  assert.equal(await stored(key), seedText, 'dry run wrote nothing');

  const real = await run(['weights', 'set', '/api', 'web-api-perl=60', 'web-api-go=40', '--consul-key', key]);
  assert.equal(real.code, 0, real.stderr);
  assert.equal(
    await stored(key),
    seedText.replace('weight: 90', 'weight: 60').replace('weight: 10', 'weight: 40'),
    'only the two numbers changed, comments and layout intact',
  );

  const wrong = await run(['weights', 'set', '/api', 'web-asset=5', '--consul-key', key]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /consul kv cli\/weights: route\.cluster\.web-asset\.prefix: cluster 'web-asset' does not route prefix "\/api"/);
  const zero = await run(['weights', 'set', '/api', 'web-api-perl=0', 'web-api-go=0', '--consul-key', key]);
  assert.equal(zero.code, 1);
  assert.match(zero.stderr, /add up to 0/);
  assert.equal(parseConfig((await stored(key)) ?? '', 'kv').route?.cluster['web-api-perl']?.weight, 60, 'refused edits wrote nothing');
});

test('two edits from the same read: one wins, the other gets CasConflictError; its retry keeps both edits', async () => {
  const key = 'cli/race';
  await consul.kvPut(key, seedText);
  // Both operators read ModifyIndex N, then both write.
  const a = await planWeightEdit(consul.client, key, '/api', [
    { cluster: 'web-api-perl', weight: 50 },
    { cluster: 'web-api-go', weight: 50 },
  ]);
  const b = await planWeightEdit(consul.client, key, '/asset', [{ cluster: 'web-asset', weight: 7 }]);
  assert.equal(a.plan.cas, b.plan.cas);
  const results = await Promise.allSettled([applyKvWrite(consul.client, a.plan), applyKvWrite(consul.client, b.plan)]);
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(won.length, 1, 'exactly one write wins');
  assert.equal(lost.length, 1);
  assert.ok(lost[0]?.reason instanceof CasConflictError, 'the other gets CasConflictError');
  assert.equal((lost[0]!.reason as CasConflictError).code, 'CXDS_CAS_CONFLICT');
  const winner = results[0]?.status === 'fulfilled' ? a : b;
  assert.equal(await stored(key), winner.plan.next.text, 'the loser overwrote nothing');

  // The loser reads again and retries: both edits are in the result.
  const loserChanges =
    winner === a
      ? { prefix: '/asset', changes: [{ cluster: 'web-asset', weight: 7 }] }
      : {
          prefix: '/api',
          changes: [
            { cluster: 'web-api-perl', weight: 50 },
            { cluster: 'web-api-go', weight: 50 },
          ],
        };
  const retry = await planWeightEdit(consul.client, key, loserChanges.prefix, loserChanges.changes);
  assert.equal(await applyKvWrite(consul.client, retry.plan), true);
  const final = parseConfig((await stored(key)) ?? '', 'kv').route?.cluster;
  assert.deepEqual([final?.['web-api-perl']?.weight, final?.['web-api-go']?.weight, final?.['web-asset']?.weight], [50, 50, 7]);
});

test('two concurrent `weights set` processes: every edit that reports success is in the final value, a loser exits with CXDS_CAS_CONFLICT', async () => {
  const key = 'cli/race-processes';
  await consul.kvPut(key, seedText);
  const [p, q] = await Promise.all([
    run(['weights', 'set', '/api', 'web-api-perl=30', 'web-api-go=70', '--consul-key', key]),
    run(['weights', 'set', '/asset', 'web-asset=9', '--consul-key', key]),
  ]);
  const final = parseConfig((await stored(key)) ?? '', 'kv').route?.cluster;
  for (const [r, check] of [
    [p, () => final?.['web-api-perl']?.weight === 30 && final?.['web-api-go']?.weight === 70],
    [q, () => final?.['web-asset']?.weight === 9],
  ] as const) {
    if (r.code === 0) assert.ok(check(), `a successful edit is in the final value (${r.stderr.trim()})`);
    else assert.match(r.stderr, /\[CXDS_CAS_CONFLICT\]/, 'a failed edit failed only by conflict');
  }
  assert.ok(p.code === 0 || q.code === 0, 'at least one edit wins');
});
