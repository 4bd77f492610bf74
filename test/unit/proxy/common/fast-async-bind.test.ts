/**
 * installFastAsyncBind (src/proxy/common/fast-async-bind.ts): the replacement must keep what
 * AsyncResource.bind is for - the bound function runs in the resource's async scope (async
 * context and executionAsyncId), with its `this` and arguments - and must drop the deprecated
 * per-call accessor it exists to avoid.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'node:async_hooks';
import { installFastAsyncBind } from '../../../../src/proxy/common/fast-async-bind.js';

describe('fast AsyncResource.bind', () => {
  const slowBefore =
    typeof Object.getOwnPropertyDescriptor(
      new AsyncResource('t').bind(() => 0),
      'asyncResource',
    )?.get === 'function';
  const installed = installFastAsyncBind();

  it('is installed exactly when the running Node binds with the deprecated accessor', () => {
    assert.equal(installed, slowBefore);
    const bound = new AsyncResource('t').bind(() => 0);
    assert.equal(typeof Object.getOwnPropertyDescriptor(bound, 'asyncResource')?.get, installed ? 'undefined' : 'function');
  });

  it('runs the function in the resource scope, with this and arguments', () => {
    const als = new AsyncLocalStorage<string>();
    const resource = als.run('captured', () => new AsyncResource('t'));
    let seen: { store?: string; id: number; self: unknown; args: unknown[] } | undefined;
    const fn = function (this: unknown, ...args: unknown[]): string {
      seen = { store: als.getStore(), id: executionAsyncId(), self: this, args };
      return 'result';
    };
    const self = { me: 1 };
    const bound = resource.bind(fn);
    assert.equal(
      als.run('other', () => bound.call(self, 1, 'two')),
      'result',
    );
    assert.deepEqual(seen, { store: 'captured', id: resource.asyncId(), self, args: [1, 'two'] });
    // bind(fn, thisArg) is documented Node API; @types/node only declares bind(fn).
    const withThis = (resource.bind as (f: typeof fn, t: unknown) => (n: number) => void)(fn, self);
    withThis(3);
    assert.deepEqual(seen, { store: 'captured', id: resource.asyncId(), self, args: [3] });
    assert.throws(() => resource.bind(42 as unknown as () => void), TypeError);
  });
});
