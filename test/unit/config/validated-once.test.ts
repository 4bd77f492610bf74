/**
 * A config's cross-section rules are checked once: parseConfig (in this thread or the parser
 * thread) marks what it validated, and translate() re-checks only configs it was not given that
 * way. Without the mark, every rebuild (each endpoint flap) would run validateConfig again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { WorkerConfigParser } from '../../../src/config/parse-worker.js';
import type { Config } from '../../../src/config/schema.js';
import { isValidated, markValidated } from '../../../src/config/validate.js';
import { ConfigError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { translate } from '../../../src/translate/index.js';
import { MINIMAL_CONFIG } from '../../support/config-text.js';

test('parseConfig and the parser thread mark their configs validated; a copy is not', async (t) => {
  const parsed = parseConfig(MINIMAL_CONFIG, 'test.yaml');
  assert.equal(isValidated(parsed), true);
  assert.equal(isValidated({ ...parsed }), false);
  const parser = new WorkerConfigParser({ logger: silentLogger });
  t.after(() => parser.close());
  const fromThread = await parser.parse(MINIMAL_CONFIG, 'test.yaml');
  assert.ok(fromThread);
  assert.equal(isValidated(fromThread), true);
});

test('translate trusts the mark and re-checks an unmarked config', () => {
  const parsed = parseConfig(MINIMAL_CONFIG, 'test.yaml');
  // A route that names a cluster the config does not define: validateConfig refuses it.
  const vhost = Object.values(parsed['virtual-hosts'] ?? {})[0] ?? parsed.route;
  assert.ok(vhost, 'the minimal config has a route table');
  const [firstCluster] = Object.keys(vhost.cluster);
  assert.ok(firstCluster);
  const clusters = { ...parsed.cluster.loadbalancer };
  delete clusters[firstCluster];
  const broken = { ...parsed, cluster: { ...parsed.cluster, loadbalancer: clusters } } as Config;
  assert.throws(
    () => translate(broken, new Map()),
    (err: unknown) => err instanceof ConfigError && /is not defined under cluster\.loadbalancer/.test(err.message),
  );
  // Marked as validated, the cross-section check is skipped (translate proceeds or fails later, elsewhere).
  let skipped = true;
  try {
    translate(markValidated(broken), new Map());
  } catch (err) {
    if (err instanceof ConfigError && /is not defined under cluster\.loadbalancer/.test(err.message)) skipped = false;
  }
  assert.equal(skipped, true, 'a marked config is not validated again');
});
