/**
 * Weight edits keep the operator's YAML byte for byte except the weights; errors name the path
 * and line; the `--dry-run` preview shows the YAML diff and only the Envoy resources that change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { editWeights, parseWeightArgs } from '../../../src/config/weights-edit.js';
import { parseConfig } from '../../../src/config/parse.js';
import { checkConfigText, previewKvWrite, resourceDiff } from '../../../src/commands/kv-write.js';
import { unifiedDiff } from '../../../src/commands/text-diff.js';
import { ConfigError, ConsulXdsError } from '../../../src/errors.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const seed = () => readFile(join(repoRoot, 'examples/seed-001.yaml'), 'utf8');

function changedLines(before: string, after: string): Array<[string, string]> {
  const a = before.split('\n');
  const b = after.split('\n');
  assert.equal(a.length, b.length, 'same number of lines');
  return a.flatMap((line, i): Array<[string, string]> => (line === b[i] ? [] : [[line, b[i] ?? '']]));
}

test('seed 001: shifting /api changes exactly the two weight values; comments, quoting and flow lists stay', async () => {
  const text = await seed();
  const edit = editWeights(text, 'seed', '/api', [
    { cluster: 'web-api-perl', weight: 50 },
    { cluster: 'web-api-go', weight: 50 },
  ]);
  assert.deepEqual(changedLines(text, edit.text), [
    ['      weight: 90', '      weight: 50'],
    ['      weight: 10', '      weight: 50'],
  ]);
  assert.deepEqual(edit.changes, [
    { cluster: 'web-api-perl', path: 'route.cluster.web-api-perl.weight', from: 90, to: 50, alsoOn: [] },
    { cluster: 'web-api-go', path: 'route.cluster.web-api-go.weight', from: 10, to: 50, alsoOn: [] },
  ]);
  const config = parseConfig(edit.text, 'edited');
  assert.equal(config.route?.cluster['web-api-go']?.weight, 50);
});

test("end-of-line comments on the weight survive; a missing weight is inserted in the entry's style", () => {
  const text = [
    '# routing for the canary',
    'listener:',
    '  l: { address: "127.0.0.1", port: 0 }',
    'route:',
    '    domain: ["*"]',
    '    cluster:',
    '        stable:',
    '            prefix: ["/api", "/v2"]   # two prefixes',
    '            weight: 95    # keep most traffic here',
    '        canary: {prefix: ["/api"], weight: 5}  # flow style',
    '        fresh:',
    '            prefix: ["/api"]',
    '        inline: {prefix: ["/api"]}',
    'cluster:',
    '  loadbalancer: { stable: {}, canary: {}, fresh: {}, inline: {} }',
    '',
  ].join('\n');
  const edit = editWeights(text, 'kv', '/api', [
    { cluster: 'stable', weight: 70 },
    { cluster: 'canary', weight: 20 },
    { cluster: 'fresh', weight: 7 },
    { cluster: 'inline', weight: 3 },
  ]);
  assert.equal(
    edit.text,
    text
      .replace('weight: 95    # keep', 'weight: 70    # keep')
      .replace('weight: 5}  # flow style', 'weight: 20}  # flow style')
      .replace('        fresh:\n            prefix', '        fresh:\n            weight: 7\n            prefix')
      .replace('inline: {prefix', 'inline: {weight: 3, prefix'),
  );
  assert.deepEqual(edit.changes.find((c) => c.cluster === 'stable')?.alsoOn, ['/v2'], 'the shared weight is reported');
  assert.equal(edit.changes.find((c) => c.cluster === 'fresh')?.from, undefined);
  const config = parseConfig(edit.text, 'edited');
  assert.deepEqual(Object.fromEntries(Object.entries(config.route?.cluster ?? {}).map(([k, v]) => [k, v.weight])), {
    stable: 70,
    canary: 20,
    fresh: 7,
    inline: 3,
  });
});

test("virtual-hosts are edited with --vhost; the seed's route is the default one", () => {
  const text = [
    'listener: { l: { address: "127.0.0.1", port: 0 } }',
    'virtual-hosts:',
    '  admin:',
    '    domain: ["admin.local"]',
    '    cluster:',
    '      a: { prefix: ["/"], weight: 1 }',
    '      b: { prefix: ["/"], weight: 1 }',
    'cluster: { loadbalancer: { a: {}, b: {} } }',
  ].join('\n');
  const edit = editWeights(text, 'kv', '/', [{ cluster: 'b', weight: 9 }], { vhost: 'admin' });
  assert.match(edit.text, /b: \{ prefix: \["\/"\], weight: 9 \}/);
  assert.throws(
    () => editWeights(text, 'kv', '/', [{ cluster: 'b', weight: 9 }]),
    (e: unknown) => e instanceof ConfigError && /virtual-hosts\.default: no virtual host 'default'/.test(e.message),
  );
});

test('errors name the config path and line: unknown cluster, prefix not routed, bad arguments', async () => {
  const text = await seed();
  assert.throws(
    () =>
      editWeights(text, 'consul kv consul-xds/config', '/api', [
        { cluster: 'web-api-rust', weight: 1 },
        { cluster: 'web-asset', weight: 5 },
      ]),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.issues.length === 2 &&
      /^consul kv consul-xds\/config: route\.cluster: no cluster 'web-api-rust' here \(routed clusters: web-api-perl, web-api-go, web-asset\)/.test(
        e.message,
      ) &&
      /route\.cluster\.web-asset\.prefix: cluster 'web-asset' does not route prefix "\/api" \(it routes "\/asset"\) \(line 24, col 15\)/.test(e.message),
  );
  assert.throws(
    () => editWeights('a: [', 'kv', '/api', [{ cluster: 'x', weight: 1 }]),
    (e: unknown) => e instanceof ConfigError && /YAML syntax/.test(e.message),
  );
  assert.deepEqual(parseWeightArgs(['a=1', 'b-c=0']), [
    { cluster: 'a', weight: 1 },
    { cluster: 'b-c', weight: 0 },
  ]);
  for (const bad of [[], ['a'], ['a=-1'], ['a=1.5'], ['a=1', 'a=2']])
    assert.throws(
      () => parseWeightArgs(bad),
      (e: unknown) => e instanceof ConsulXdsError && e.code === 'CXDS_USAGE',
    );
});

test('an edit Envoy would refuse is caught by the validation before any write (all weights 0)', async () => {
  const edit = editWeights(await seed(), 'kv', '/api', [
    { cluster: 'web-api-perl', weight: 0 },
    { cluster: 'web-api-go', weight: 0 },
  ]);
  assert.throws(
    () => checkConfigText(edit.text, 'consul kv k (after weights set /api)'),
    (e: unknown) => e instanceof ConfigError && /weights on prefix "\/api" add up to 0/.test(e.message),
  );
});

test('dry-run preview: YAML diff plus only the changed Envoy resource (the route table)', async () => {
  const text = await seed();
  const edit = editWeights(text, 'kv', '/api', [
    { cluster: 'web-api-perl', weight: 75 },
    { cluster: 'web-api-go', weight: 25 },
  ]);
  const current = { key: 'consul-xds/config', value: text, modifyIndex: 42 };
  const preview = previewKvWrite({ key: 'consul-xds/config', current, next: checkConfigText(edit.text, 'kv'), cas: 42 });
  assert.match(preview, /^# Config \(YAML\)\n--- consul kv consul-xds\/config \(ModifyIndex 42\)\n\+\+\+ consul kv consul-xds\/config \(proposed\)\n@@ /);
  assert.match(preview, /\n-      weight: 90\n\+      weight: 75\n/);
  assert.match(preview, /\n-      weight: 10\n\+      weight: 25\n/);
  const envoy = preview.slice(preview.indexOf('# Envoy resources'));
  assert.match(envoy, /^~ RDS listen$/m);
  assert.doesNotMatch(envoy, /^[~+-] (CDS|EDS|LDS) /m, 'clusters, endpoints and listeners unchanged');
  assert.match(envoy, /-\s+"value": 90\n\+\s+"value": 75/);
  assert.equal(resourceDiff(checkConfigText(text, 'a').resources, checkConfigText(text, 'b').resources), '');
});

test('unifiedDiff: hunks with context, removals before additions, empty for equal texts', () => {
  const a = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
  const b = a.replace('line 5', 'line five').replace('line 20', 'line twenty\nextra');
  assert.equal(
    unifiedDiff(a, b, { from: 'a', to: 'b' }),
    [
      '--- a',
      '+++ b',
      '@@ -3,7 +3,7 @@',
      ' line 2',
      ' line 3',
      ' line 4',
      '-line 5',
      '+line five',
      ' line 6',
      ' line 7',
      ' line 8',
      '@@ -18,7 +18,8 @@',
      ' line 17',
      ' line 18',
      ' line 19',
      '-line 20',
      '+line twenty',
      '+extra',
      ' line 21',
      ' line 22',
      ' line 23',
      '',
    ].join('\n'),
  );
  assert.equal(unifiedDiff(a, a, { from: 'a', to: 'b' }), '');
});
