/**
 * A cheaper AsyncResource.prototype.bind for the proxy process on Node versions whose bind
 * attaches the deprecated `asyncResource` accessor (DEP0172) to every bound function.
 *
 * Why: node:http2's ClientHttp2Session.request() binds one callback per request through an
 * AsyncResource. On Node 20 each bind builds two deprecate() wrappers and defines properties on
 * the bound function; under gRPC load that was 11% of the proxy's CPU (the data-plane benchmark's
 * profile, docs/benchmarks.md "TS data plane vs Envoy"). The replacement keeps what bind is for, running `fn` in
 * the resource's async scope with the same `this` and arguments; it only leaves out the
 * deprecated accessor (and `length`), which nothing in this process reads.
 *
 * In: nothing. Out: true when the replacement was installed. Installed only by
 * `consul-xds proxy` (a process of its own), never by the library, and only when the running
 * Node's bind is the slow kind, so newer Node versions are left as they are.
 */
import { AsyncResource } from 'node:async_hooks';

let installed = false;

export function installFastAsyncBind(): boolean {
  if (installed) return true;
  const probe = new AsyncResource('consul-xds-probe').bind(() => undefined);
  const slow = typeof Object.getOwnPropertyDescriptor(probe, 'asyncResource')?.get === 'function';
  if (!slow) return false;
  type AnyFn = (this: unknown, ...args: unknown[]) => unknown;
  function bind(this: AsyncResource, fn: AnyFn, thisArg?: unknown): AnyFn {
    if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
    const resource = this;
    if (thisArg !== undefined) return (...args: unknown[]) => resource.runInAsyncScope(fn, thisArg, ...args);
    return function (this: unknown, ...args: unknown[]) {
      return resource.runInAsyncScope(fn, this, ...args);
    };
  }
  AsyncResource.prototype.bind = bind as typeof AsyncResource.prototype.bind;
  installed = true;
  return true;
}
