/**
 * Envoy's string matching (type.matcher.v3.StringMatcher, RegexMatcher and the legacy
 * HeaderMatcher shortcuts). In: a FieldReader over the matcher. Out: a predicate on a string,
 * built once per config so matching a request allocates nothing.
 *
 * Regexes are RE2 in Envoy and JavaScript RegExp here. The common subset behaves the same; RE2's
 * `(?P<name>` is rewritten to JS's `(?<name>`, and a pattern JavaScript rejects is NACKed. As in
 * Envoy, `safe_regex` must match the whole value.
 */
import type { FieldReader } from './field-reader.js';

export type StringPredicate = (value: string) => boolean;

/** Compiles an RE2 pattern as a JS RegExp; `anchored` wraps it so it must match the whole input. */
export function compileRegex(r: FieldReader, key: string, pattern: string, anchored: boolean, flags = ''): RegExp {
  const js = pattern.replace(/\(\?P</g, '(?<');
  try {
    return new RegExp(anchored ? `^(?:${js})$` : js, flags);
  } catch (err) {
    throw r.error(key, `invalid regex '${pattern}': ${(err as Error).message}`);
  }
}

/** A RegexMatcher message (`regex`, legacy `google_re2`). */
export function readRegexMatcher(r: FieldReader, anchored: boolean, flags = ''): RegExp {
  r.ignore('google_re2');
  const regex = r.requiredString('regex');
  return compileRegex(r, 'regex', regex, anchored, flags);
}

/** A type.matcher.v3.StringMatcher. */
export function readStringMatcher(r: FieldReader): StringPredicate {
  const ignoreCase = r.bool('ignore_case');
  r.refuse('custom', 'custom string matchers are not implemented');
  const exact = r.string('exact');
  const prefix = r.string('prefix');
  const suffix = r.string('suffix');
  const contains = r.string('contains');
  const regex = r.message('safe_regex');
  const norm = ignoreCase ? (s: string) => s.toLowerCase() : (s: string) => s;
  if (exact !== undefined) {
    const want = norm(exact);
    return ignoreCase ? (v) => v.toLowerCase() === want : (v) => v === want;
  }
  if (prefix !== undefined) {
    const want = norm(prefix);
    return (v) => norm(v).startsWith(want);
  }
  if (suffix !== undefined) {
    const want = norm(suffix);
    return (v) => norm(v).endsWith(want);
  }
  if (contains !== undefined) {
    const want = norm(contains);
    return (v) => norm(v).includes(want);
  }
  if (regex) {
    // Envoy ignores ignore_case for regexes; so do we.
    const re = readRegexMatcher(regex, true);
    return (v) => re.test(v);
  }
  // An empty StringMatcher in proto3 is `exact: ""`.
  return (v) => v === '';
}
