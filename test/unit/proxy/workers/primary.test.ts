/**
 * workerExecArgv: the node flags a --concurrency worker is started with keep the primary's
 * tuning flags but not the ones that say what to run (a primary started with `node -e` would
 * otherwise fork workers that run that script, not the CLI).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { workerExecArgv } from '../../../../src/proxy/workers/primary.js';

describe('workerExecArgv', () => {
  it('drops -e/--eval/-p/--print with their script and --input-type, keeps the rest', () => {
    assert.deepEqual(workerExecArgv(['--input-type=module', '-e', 'run()', '--max-semi-space-size=32']), ['--max-semi-space-size=32']);
    assert.deepEqual(workerExecArgv(['--eval', 'x', '--print=y', '-p', 'z', '--cpu-prof']), ['--cpu-prof']);
    assert.deepEqual(workerExecArgv([]), []);
  });
});
