/**
 * Regular expressions from the wire, compiled for V8's linear-time engine (the `l` flag), so a
 * pattern sent by a client cannot stall the event loop: Envoy's `safe_regex` is RE2, which never
 * backtracks, and a JS `RegExp` does — `(a+)+` against forty `a`s and a `!` ran for minutes
 * before this. The linear engine refuses what cannot run in linear time (back-references,
 * lookarounds), as RE2 does; such a pattern is an error for the caller, like one that does not
 * compile.
 */
import { setFlagsFromString } from 'node:v8';

let enabled = false;

/** A RegExp that matches the whole of its input, or an Error saying why the pattern was refused. */
export function compileLinearRegex(pattern: string): RegExp | Error {
  if (!enabled) {
    // A compile-time switch of V8's regexp compiler; it changes nothing for existing RegExps.
    setFlagsFromString('--enable-experimental-regexp-engine');
    enabled = true;
  }
  try {
    return new RegExp(`^(?:${pattern})$`, 'l');
  } catch (err) {
    return new Error((err as Error).message.replace(/^Invalid regular expression: /, ''));
  }
}
