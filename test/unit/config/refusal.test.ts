/**
 * Refusing a config stays cheap and its error stays readable, whatever the text: the problem list
 * is capped with a count of the rest, long values and keys are cut with their full length noted,
 * duplicate keys keep yaml's message and position, deep nesting and alias floods are refused
 * before yaml recurses or resolves, and a text over the size cap is refused unread, naming the
 * source, its size and the cap, while the last good config keeps serving. (Timings are the
 * benchmark's job: npm run bench:config.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { DEFAULT_CONFIG_MAX_BYTES, MAX_ANCHORS_AND_ALIASES, MAX_NESTING, parseConfig, type ParseOptions } from '../../../src/config/parse.js';
import { clip, ConfigError, ConfigTooLargeError, MAX_LISTED_ISSUES } from '../../../src/errors.js';
import { ConfigFileSource, readConfigFile } from '../../../src/sources/config-file.js';
import { Publisher } from '../../../src/pipeline/publisher.js';
import { SnapshotCache } from '../../../src/cache/snapshot-cache.js';
import { silentLogger } from '../../../src/log.js';
import { MINIMAL_CONFIG } from '../../support/config-text.js';
import { makeTempDir, waitUntil } from '../../support/tmp.js';

const SEED = readFileSync(new URL('../../../../examples/seed-001.yaml', import.meta.url), 'utf8');

/** Ends with cluster `web`'s lb-policy on line 13, so keys appended to `web` start on line 14. */
const MINIMAL = MINIMAL_CONFIG.replace('web: {}', 'web:\n      lb-policy: random');

function refusal(text: string, opts: ParseOptions = {}): ConfigError {
  try {
    parseConfig(text, 'test.yaml', opts);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the config to be refused');
}

const unknownKeys = (n: number): string => MINIMAL + Array.from({ length: n }, (_, i) => `      k${i}: 1\n`).join('');

describe('the problem list is capped', () => {
  it(`lists the first ${MAX_LISTED_ISSUES} problems, located, and counts the rest`, () => {
    const err = refusal(unknownKeys(45));
    assert.equal(err.issues.length, MAX_LISTED_ISSUES);
    assert.equal(err.total, 45);
    assert.deepEqual(err.issues[0], {
      path: 'cluster.loadbalancer.web.k0',
      message: 'unknown key (misspelled, or not valid in this section)',
      line: 14,
      col: 7,
    });
    assert.deepEqual(err.issues[19], {
      path: 'cluster.loadbalancer.web.k19',
      message: 'unknown key (misspelled, or not valid in this section)',
      line: 33,
      col: 7,
    });
    assert.ok(
      err.message.endsWith('cluster.loadbalancer.web.k19: unknown key (misspelled, or not valid in this section) (line 33, col 7); and 25 more'),
      err.message.slice(-200),
    );
  });

  it('40,000 unknown keys make a message of bounded length', () => {
    // 615 KB with this indentation: the cap is raised, the point is the message.
    const err = refusal(unknownKeys(40_000), { maxBytes: 2 ** 20 });
    assert.equal(err.total, 40_000);
    assert.equal(err.issues.length, MAX_LISTED_ISSUES);
    assert.ok(err.message.length < 3000, `message of ${err.message.length} characters`);
    assert.match(err.message, /; and 39980 more$/);
  });

  it('the cap holds for every pass: syntax (duplicate keys), schema values and cross-section rules', () => {
    const dups = refusal(MINIMAL + '      lb-policy: random\n'.repeat(30));
    assert.equal(dups.total, 30);
    assert.equal(dups.issues.length, MAX_LISTED_ISSUES);
    const statuses = refusal(
      MINIMAL.replace(
        'lb-policy: random',
        `health-check: { value: /h, timeout: 1, interval: 1, healthy: 1, unhealthy: 1, expected: [${Array(50).fill(99).join(', ')}] }`,
      ),
    );
    assert.equal(statuses.total, 50);
    assert.match(statuses.message, /; and 30 more$/);
    const routes = MINIMAL.replace('    web:\n      prefix: ["/"]\n', Array.from({ length: 30 }, (_, i) => `    c${i}: { prefix: ["/x"] }\n`).join(''));
    const rules = refusal(routes);
    // Each of the 30 routes names an undefined cluster and lacks the weight a shared prefix needs.
    assert.equal(rules.total, 60);
    assert.equal(rules.issues.length, MAX_LISTED_ISSUES);
  });

  it('a message names a few of many clusters sharing a prefix, and counts the others', () => {
    const names = Array.from({ length: 30 }, (_, i) => `c${String(i).padStart(2, '0')}`);
    const text = MINIMAL.replace('    web:\n      prefix: ["/"]\n', names.map((n) => `    ${n}: { prefix: ["/x"] }\n`).join('')).replace(
      '    web:\n      lb-policy: random\n',
      names.map((n) => `    ${n}: {}\n`).join(''),
    );
    const err = refusal(text);
    assert.equal(err.total, 30);
    assert.equal(err.issues[0]?.message, 'required: clusters c00, c01, c02, c03, c04, and 25 more share prefix "/x", so each needs a weight');
  });
});

describe('long values are cut', () => {
  it('a 400 KB bad value: the message keeps its start and end and notes its full length', () => {
    const value = `fast${'x'.repeat(400_000)}est`;
    const err = refusal(MINIMAL.replace('lb-policy: random', `lb-policy: ${value}`));
    const issue = err.issues[0];
    assert.ok(issue);
    assert.equal(issue.path, 'cluster.loadbalancer.web.lb-policy');
    assert.match(
      issue.message,
      /^expected one of "round-robin", "least-request", "random", "ring-hash", "maglev", got "fastxxx+…x+est" \(cut, 400009 characters\)$/,
    );
    assert.deepEqual([issue.line, issue.col], [13, 18]);
    assert.ok(err.message.length < 600, `message of ${err.message.length} characters`);
  });

  it('a 400 KB unknown key: the path is cut the same way', () => {
    // An explicit key (`? key`): YAML limits implicit keys to 1024 characters.
    const err = refusal(`${MINIMAL}      ? ${'k'.repeat(400_000)}\n      : 1\n`);
    assert.match(err.issues[0]?.path ?? '', /^cluster\.loadbalancer\.web\.k+…k+ \(cut, 400025 characters\)$/);
    assert.ok(err.message.length < 600, `message of ${err.message.length} characters`);
  });

  it('clip keeps short text and cuts long text to the given length, idempotently', () => {
    assert.equal(clip('short', 10), 'short');
    const cut = clip('a'.repeat(1000), 100);
    assert.ok(cut.length <= 100, cut);
    assert.match(cut, /^a+…a+ \(cut, 1000 characters\)$/);
    assert.equal(clip(cut, 100), cut);
  });
});

describe('YAML costs bounded by our own checks', () => {
  /** Positions yaml's own (quadratic) duplicate-key check reports. */
  const yamlDuplicates = (text: string): string[] =>
    parseDocument(text, { prettyErrors: true })
      .errors.filter((e) => e.code === 'DUPLICATE_KEY')
      .map((e) => `: YAML syntax: Map keys must be unique (line ${e.linePos?.[0].line}, col ${e.linePos?.[0].col})`);
  const formatted = (err: ConfigError): string[] => err.issues.map((i) => `${i.path}: ${i.message} (line ${i.line}, col ${i.col})`);

  it("duplicate keys: yaml's message at yaml's position, in block and flow mappings, quoted or with anchors", () => {
    const text = `${MINIMAL}      lb-policy: random\n    web: {}\ncluster: {"a": 1, a: 2, 'b': &x 3, b: 4}\n  ? web\n  : 1\n`;
    const ours = formatted(refusal(text));
    assert.ok(ours.length >= 4, ours.join('\n'));
    assert.deepEqual(
      ours.filter((l) => l.includes('unique')),
      yamlDuplicates(text),
    );
  });

  it('keys that differ in type are not duplicates (yaml\'s rule: 1 and "1" differ)', () => {
    const text = MINIMAL.replace('    web:\n      lb-policy: random\n', '    web: {}\n    1: {}\n    "1": {}\n');
    assert.deepEqual(yamlDuplicates(text), []);
    assert.doesNotThrow(() => parseConfig(text, 't'));
  });

  it(`collections nested more than ${MAX_NESTING} deep are refused with their position, however deep`, () => {
    for (const depth of [MAX_NESTING + 1, 200_000]) {
      const err = refusal(`${MINIMAL}      x: ${'['.repeat(depth)}${']'.repeat(depth)}\n`);
      // The root, cluster, loadbalancer and web mappings are 4 levels: the first refused `[` (col 10 is the first) is the 61st.
      assert.deepEqual(formatted(err), [
        `: YAML: collections nested more than ${MAX_NESTING} deep; a config needs about 7 levels (line 14, col ${10 + MAX_NESTING - 4})`,
      ]);
    }
    const compact = refusal(`${MINIMAL}      x:\n${'- '.repeat(100_000)}1\n`);
    assert.match(compact.message, /collections nested more than 64 deep/);
  });

  it(`more than ${MAX_ANCHORS_AND_ALIASES} anchors and aliases are refused before any is resolved; a few still work`, () => {
    const marks = (n: number): string => Array.from({ length: n }, (_, i) => `    a${i}: &x${i} {}\n    b${i}: *x${i}\n`).join('');
    const err = refusal(MINIMAL + marks(MAX_ANCHORS_AND_ALIASES / 2 + 1));
    // The first one over: the anchored value `{}` of a500, after `    a500: &x500 `.
    assert.deepEqual(formatted(err), [
      `: YAML: more than ${MAX_ANCHORS_AND_ALIASES} anchors and aliases (&name, *name); a config needs few (line ${14 + MAX_ANCHORS_AND_ALIASES}, col 17)`,
    ]);
    const config = parseConfig(MINIMAL.replace('    web:\n      lb-policy: random\n', `    web: &shared\n      lb-policy: random\n    api: *shared\n`), 't');
    assert.equal(config.cluster.loadbalancer.api?.['lb-policy'], 'random');
  });
});

describe('the size cap', () => {
  it(`refuses a text over the cap (default ${DEFAULT_CONFIG_MAX_BYTES} bytes) unparsed, naming the source, its size and the cap`, () => {
    const big = `${SEED}#${'x'.repeat(DEFAULT_CONFIG_MAX_BYTES)}\n`;
    const bytes = Buffer.byteLength(big);
    assert.throws(
      () => parseConfig(big, 'consul kv consul-xds/config'),
      (err: unknown) => {
        assert.ok(err instanceof ConfigTooLargeError);
        assert.equal(err.code, 'CXDS_CONFIG_TOO_LARGE');
        assert.deepEqual([err.source, err.bytes, err.maxBytes], ['consul kv consul-xds/config', bytes, DEFAULT_CONFIG_MAX_BYTES]);
        assert.equal(
          err.message,
          `consul kv consul-xds/config: the config is ${bytes} bytes, over the ${DEFAULT_CONFIG_MAX_BYTES}-byte cap (--config-max-bytes); not parsed`,
        );
        return true;
      },
    );
    // The cap counts UTF-8 bytes, not characters; a text at the cap is parsed.
    const text = `${SEED}# ${'é'.repeat(100)}\n`;
    const size = Buffer.byteLength(text);
    assert.throws(() => parseConfig(text, 't', { maxBytes: size - 1 }), { code: 'CXDS_CONFIG_TOO_LARGE' });
    assert.doesNotThrow(() => parseConfig(text, 't', { maxBytes: size }));
  });

  it('a file over the cap is refused from its size, naming its path', async () => {
    const dir = await makeTempDir('config-cap');
    try {
      const file = path.join(dir.path, 'big.yaml');
      await writeFile(file, SEED);
      await assert.rejects(readConfigFile(file, { maxBytes: 100 }), {
        code: 'CXDS_CONFIG_TOO_LARGE',
        message: `${file}: the config is ${Buffer.byteLength(SEED)} bytes, over the 100-byte cap (--config-max-bytes); not parsed`,
      });
      assert.equal(await readConfigFile(file), SEED);
      await assert.rejects(readConfigFile(path.join(dir.path, 'missing.yaml')), { code: 'CXDS_CONFIG_FILE' });
    } finally {
      await dir.remove();
    }
  });

  it('a watched file growing over the cap is refused and the last good config keeps serving; a good edit then publishes', async () => {
    const dir = await makeTempDir('config-cap-watch');
    const cache = new SnapshotCache();
    const publisher = new Publisher({ cache, logger: silentLogger, coalesceMs: 5 });
    const maxBytes = SEED.length + 1000;
    const file = path.join(dir.path, 'consul-xds.yaml');
    await writeFile(file, SEED);
    const source = new ConfigFileSource(
      file,
      { onConfig: (config, origin) => publisher.setConfig(config, origin), onError: (err) => publisher.reject(file, err) },
      { maxBytes },
    );
    try {
      publisher.setConfig(await source.start(), file);
      const good = publisher.flush();
      assert.ok(good);
      await writeFile(file, `${SEED}#${'x'.repeat(2000)}\n`);
      const lastError = await waitUntil(() => publisher.status().lastError, { what: 'the oversized file refused' });
      assert.equal(lastError.code, 'CXDS_CONFIG_TOO_LARGE');
      assert.match(lastError.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the config is \\d+ bytes, over the ${maxBytes}-byte cap`));
      assert.equal(cache.get('default'), good, 'the last good snapshot keeps serving');

      await writeFile(file, SEED.replace('weight: 90', 'weight: 80').replace('weight: 10', 'weight: 20'));
      await waitUntil(() => cache.get('default') !== good || undefined, { what: 'the good edit published' });
    } finally {
      source.close();
      publisher.close();
      await dir.remove();
    }
  });
});
