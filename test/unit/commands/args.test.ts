/**
 * The did-you-mean behind unknown flags and commands (src/commands/args.ts closest()): a typo or
 * an unfinished flag finds the one meant; a word far from every candidate finds nothing.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { closest } from '../../../src/commands/args.js';

const SERVE = ['config', 'xds-port', 'admin-port', 'als-port', 'no-als', 'log-level', 'maintenance-file'];

it('typos, swaps and prefixes find the flag meant', () => {
  assert.equal(closest('als-prot', SERVE), 'als-port');
  assert.equal(closest('confg', SERVE), 'config');
  assert.equal(closest('maintenance', SERVE), 'maintenance-file');
  assert.equal(closest('loglevel', SERVE), 'log-level');
  assert.equal(closest('serv', ['serve', 'validate', 'proxy']), 'serve');
});

it('nothing close: no suggestion', () => {
  assert.equal(closest('zzzzzzzz', SERVE), undefined);
  assert.equal(closest('dump', SERVE), undefined);
});
