/**
 * The worker-thread parser `serve` uses (src/config/parse-worker.ts) answers exactly as
 * parseConfig does: the same frozen config, the same error classes with the same message, issues
 * and total. Texts are answered in the order they arrived; a text still queued when a newer one
 * from the same source arrives through parseLatest is skipped; idle() waits for all; close()
 * refuses what is left, naming the source. (Stalls, the time budget and a dying thread are tested
 * against serve() in test/integration/config-worker.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { ConfigParseAbortedError, WorkerConfigParser } from '../../../src/config/parse-worker.js';
import { ConfigError, ConfigTooLargeError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { MINIMAL_CONFIG } from '../../support/config-text.js';
import { EXPENSIVE_REFUSALS } from '../../support/config-stall.js';

const TEXTS: Readonly<Record<string, string>> = {
  valid: MINIMAL_CONFIG,
  'YAML syntax': 'listener: [\n',
  schema: MINIMAL_CONFIG.replace('port: 8000', 'port: eighty'),
  'cross-section rule': MINIMAL_CONFIG.replace('web: {}', 'other: {}'),
  '40,000 unknown keys': EXPENSIVE_REFUSALS['unknown keys: 40,000 in one section']?.() ?? '',
  'over the cap': `${MINIMAL_CONFIG}# ${'x'.repeat(2000)}\n`,
};

function inProcess(text: string): unknown {
  try {
    return parseConfig(text, 'test.yaml', { maxBytes: 1024 });
  } catch (err) {
    return err;
  }
}

describe('WorkerConfigParser', () => {
  it('answers as parseConfig: the same frozen config, the same error class, message, issues and total', async () => {
    const parser = new WorkerConfigParser({ logger: silentLogger });
    try {
      for (const [name, text] of Object.entries(TEXTS)) {
        const want = inProcess(text);
        const got = await parser.parse(text, 'test.yaml', { maxBytes: 1024 }).catch((err: unknown) => err);
        if (want instanceof Error) {
          assert.equal(got?.constructor, want.constructor, name);
          assert.equal((got as Error).message, want.message, name);
          assert.equal((got as ConfigError).code, (want as ConfigError).code, name);
          if (want instanceof ConfigError) {
            assert.deepEqual((got as ConfigError).issues, want.issues, name);
            assert.equal((got as ConfigError).total, want.total, name);
          }
          if (want instanceof ConfigTooLargeError) assert.equal((got as ConfigTooLargeError).bytes, want.bytes, name);
        } else {
          assert.deepEqual(got, want, name);
          assert.ok(Object.isFrozen(got) && Object.isFrozen((got as { listener: unknown }).listener), `${name}: frozen`);
        }
      }
    } finally {
      await parser.close();
    }
  });

  it('answers in arrival order; parseLatest skips a queued text of the same source; idle() waits for all', async () => {
    const parser = new WorkerConfigParser({ logger: silentLogger });
    try {
      const order: string[] = [];
      const note = (name: string) => (v: unknown) => void order.push(`${name}:${v === undefined ? 'skipped' : v instanceof Error ? 'refused' : 'config'}`);
      // Submitted in one tick: a1 is sent to the thread, the rest queue behind it.
      const all = [
        parser.parseLatest(TEXTS['cross-section rule'] ?? '', 'kv a').then(note('a1'), note('a1')),
        parser.parseLatest(MINIMAL_CONFIG, 'kv a').then(note('a2'), note('a2')), // superseded by a3
        parser.parse(TEXTS.schema ?? '', 'file b').then(note('b1'), note('b1')),
        parser.parseLatest(MINIMAL_CONFIG.replace('8000', '8001'), 'kv a').then(note('a3'), note('a3')),
      ];
      await parser.idle();
      // a2 is skipped the moment a3 arrives; the answers come in arrival order.
      assert.deepEqual(order, ['a2:skipped', 'a1:refused', 'b1:refused', 'a3:config']);
      await Promise.all(all);
    } finally {
      await parser.close();
    }
  });

  it('close() refuses the texts still waiting, naming their source', async () => {
    const parser = new WorkerConfigParser({ logger: silentLogger });
    const refused = assert.rejects(
      parser.parse(MINIMAL_CONFIG, 'consul kv web/config'),
      (err: unknown) => err instanceof ConfigParseAbortedError && err.message === 'consul kv web/config: config not parsed: serve is shutting down',
    );
    await parser.close();
    await refused;
  });
});
