/**
 * Envoy's string matching (type.matcher.v3.StringMatcher, RegexMatcher and the legacy
 * HeaderMatcher shortcuts). In: a FieldReader over the matcher. Out: a predicate on a string,
 * built once per config so matching a request allocates nothing.
 *
 * Regexes run on RE2 as in Envoy (re2js, a pure-JS port of RE2): matching is linear in the input,
 * so a pattern like `(a+)+` cannot stall the event loop the way a backtracking RegExp does. A
 * pattern RE2 refuses (backreferences, lookaround) is NACKed with the field named, as Envoy does.
 * As in Envoy, `safe_regex` must match the whole value.
 */
import { RE2JS } from 're2js';
import type { FieldReader } from './field-reader.js';
import { SUPPORT } from './support.js';

export type StringPredicate = (value: string) => boolean;

/** A compiled RE2 pattern. */
export type Regex = RE2JS;

/** Compiles an RE2 pattern; an invalid one is a ResourceError on `key` of `r`. */
export function compileRegex(r: FieldReader, key: string, pattern: string, ignoreCase = false): Regex {
  try {
    return RE2JS.compile(pattern, ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (err) {
    throw r.error(key, `invalid RE2 regex '${pattern}': ${(err as Error).message}`);
  }
}

/** A RegexMatcher message (`regex`, legacy `google_re2`). */
export function readRegexMatcher(r: FieldReader, ignoreCase = false): Regex {
  r.declare(SUPPORT.RegexMatcher);
  const regex = r.requiredString('regex');
  return compileRegex(r, 'regex', regex, ignoreCase);
}

/**
 * Envoy's regex_rewrite (pattern + substitution) as a function of the path: every match replaced,
 * `\\N` in the substitution naming capture group N (RE2::GlobalReplace); anything else literal.
 */
export function readRegexRewrite(r: FieldReader): (value: string) => string {
  const pattern = r.message('pattern');
  if (!pattern) throw r.error('pattern', 'must be set');
  const re = readRegexMatcher(pattern);
  const substitution = r.string('substitution') ?? '';
  // re2js's java-mode replacement: `$N` is a group, `\x` the literal x.
  const java = substitution.replace(/\\(\d)|\\(\\)|([$\\])/g, (_m, group: string | undefined, slash: string | undefined, lit: string | undefined) =>
    group !== undefined ? `$${group}` : `\\${slash ?? lit}`,
  );
  return (value) => re.matcher(value).replaceAll(java, true);
}

/** A type.matcher.v3.StringMatcher. */
export function readStringMatcher(r: FieldReader): StringPredicate {
  const ignoreCase = r.bool('ignore_case');
  r.declare(SUPPORT.StringMatcher);
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
    const re = readRegexMatcher(regex);
    return (v) => re.testExact(v);
  }
  // An empty StringMatcher in proto3 is `exact: ""`.
  return (v) => v === '';
}
