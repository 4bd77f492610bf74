/**
 * What a refused config text reads like to its author. In: YAML text. Out: each issue of the
 * ConfigError as `path: message (line L, col C)`; the test fails when the text is accepted.
 */
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/parse.js';
import { ConfigError } from '../../src/errors.js';

export function configErrors(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.issues.map((i) => `${i.path}: ${i.message}${i.line !== undefined ? ` (line ${i.line}, col ${i.col})` : ''}`);
  }
  assert.fail('expected the config to be refused');
}
