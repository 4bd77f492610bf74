/**
 * The config edge. In: YAML text and where it came from (a file path or Consul key). Out: a
 * validated, deep-frozen Config, or a ConfigError listing the problems with their dotted path and,
 * where the YAML has it, line and column:
 *   cluster.loadbalancer.web-api-go.health-check.interval: expected a number ... (line 31, col 19)
 * A text over the size cap is refused unread (ConfigTooLargeError). Then three passes, each
 * reporting all it finds: YAML syntax, the schema (schema.ts), then the rules spanning sections
 * (validate.ts). A later pass runs only when the earlier ones found nothing.
 *
 * Refusing must stay cheap whatever the text (a stalled event loop stalls /health, xDS and the
 * Consul watches): every step is linear in the text, and only the problems the error lists
 * (MAX_LISTED_ISSUES) are described and located; the rest are counted.
 */
import { Composer, LineCounter, Parser, isAlias, isMap, isNode, isScalar, visit, type CST, type Document } from 'yaml';
import type { z } from 'zod';
import { clip, ConfigError, ConfigTooLargeError, MAX_LISTED_ISSUES, type ConfigIssue } from '../errors.js';
import { deepFreeze } from './deep-freeze.js';
import { locate } from './locate.js';
import { configSchema, type Config } from './schema.js';
import { formatPath, markValidated, validateConfig, type PathSegment } from './validate.js';

/** Consul's own limit on a KV value (512 KiB); `--config-max-bytes` changes it. */
export const DEFAULT_CONFIG_MAX_BYTES = 512 * 1024;
/**
 * Collections nested deeper than this are refused before yaml builds its tree: the config needs
 * about 7 levels, and yaml's composer recurses per level, so `[[[[...` 100,000 deep would exhaust
 * the stack (and can abort the process when V8 compiles a regexp at that depth).
 */
export const MAX_NESTING = 64;
/**
 * yaml resolves each alias by a scan over every anchor and alias before it (quadratic: 12,000
 * aliases take seconds); a config needs a handful, so more are refused before resolving any.
 */
export const MAX_ANCHORS_AND_ALIASES = 1000;
/** Longest rendering of a bad value inside a message. */
const MAX_VALUE_CHARS = 80;

export interface ParseOptions {
  /** Texts longer than this (UTF-8 bytes) are refused unread; default DEFAULT_CONFIG_MAX_BYTES. */
  readonly maxBytes?: number;
}

/** Throws ConfigTooLargeError naming `source` when `bytes` is over the cap. */
export function checkConfigSize(source: string, bytes: number, maxBytes = DEFAULT_CONFIG_MAX_BYTES): void {
  if (bytes > maxBytes) throw new ConfigTooLargeError(source, bytes, maxBytes);
}

export function parseConfig(text: string, source: string, opts: ParseOptions = {}): Config {
  checkConfigSize(source, Buffer.byteLength(text, 'utf8'), opts.maxBytes);
  const lines = new LineCounter();
  const doc = parseYaml(text, source, lines);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ConfigError(source, [{ path: '', message: `YAML: ${(err as Error).message}` }]);
  }
  if (raw === null || raw === undefined) throw new ConfigError(source, [{ path: '', message: 'the config is empty' }]);

  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const total = issues.reduce((n, issue) => n + (issue.code === 'unrecognized_keys' ? issue.keys.length : 1), 0);
    throw refusal(source, schemaProblems(issues, raw), total, doc, lines);
  }
  const problems = validateConfig(parsed.data);
  if (problems.length > 0) throw refusal(source, problems, problems.length, doc, lines);
  return markValidated(deepFreeze(parsed.data));
}

/**
 * yaml's parseDocument, except for three costs it would add: its duplicate-key check compares
 * each key with every earlier one of its mapping (quadratic; duplicateKeys() is one pass), its
 * pretty errors cut a snippet from the source per error, and its composer recurses once per
 * nesting level (so nesting is checked on the parser's output first, without recursion).
 */
function parseYaml(text: string, source: string, lines: LineCounter): Document.Parsed {
  const composer = new Composer({ uniqueKeys: false });
  let doc: Document.Parsed | undefined;
  const syntax: Array<{ offset: number; message: string }> = [];
  for (const next of composer.compose(nestingChecked(new Parser(lines.addNewLine).parse(text), source, lines), true, text.length)) {
    if (doc) {
      syntax.push({ offset: next.range[0], message: 'YAML: a second document starts here; the config is one document' });
      break;
    }
    doc = next;
  }
  // compose(…, forceDoc) always yields a document, if only an empty one.
  if (!doc) throw new ConfigError(source, [{ path: '', message: 'the config is empty' }]);
  for (const e of doc.errors) syntax.push({ offset: e.pos[0], message: `YAML syntax: ${e.message}` });
  syntax.push(...lint(doc));
  if (syntax.length > 0) {
    syntax.sort((a, b) => a.offset - b.offset);
    const listed = syntax.slice(0, MAX_LISTED_ISSUES).map(({ offset, message }): ConfigIssue => {
      return { path: '', message, ...position(lines, offset) };
    });
    throw new ConfigError(source, listed, syntax.length);
  }
  return doc;
}

/** Passes the parser's documents on, refusing one whose collections nest deeper than MAX_NESTING. */
function* nestingChecked(tokens: Iterable<CST.Token>, source: string, lines: LineCounter): Generator<CST.Token> {
  for (const token of tokens) {
    // An explicit stack: the point is to look at the depth without recursing into it.
    const stack: Array<{ token: CST.Token | null | undefined; depth: number }> = [{ token, depth: 0 }];
    for (let top = stack.pop(); top; top = stack.pop()) {
      const t = top.token;
      if (!t) continue;
      if (t.type === 'document') {
        stack.push({ token: t.value, depth: top.depth });
      } else if ('items' in t) {
        const depth = top.depth + 1;
        if (depth > MAX_NESTING) {
          throw new ConfigError(source, [
            { path: '', message: `YAML: collections nested more than ${MAX_NESTING} deep; a config needs about 7 levels`, ...position(lines, t.offset) },
          ]);
        }
        for (const item of t.items) stack.push({ token: 'key' in item ? item.key : undefined, depth }, { token: item.value, depth });
      }
    }
    yield token;
  }
}

/**
 * One pass over the document for what yaml would find too slowly: keys given twice in one
 * mapping, by yaml's own rule (scalar keys with the same value: `1` and `"1"` differ), with its
 * message and at its position, using one Set per mapping instead of comparing each key with all
 * earlier ones; and more anchors and aliases than MAX_ANCHORS_AND_ALIASES.
 */
function lint(doc: Document.Parsed): Array<{ offset: number; message: string }> {
  const found: Array<{ offset: number; message: string }> = [];
  let marks = 0;
  visit(doc, (_key, node) => {
    if ((isAlias(node) || (isNode(node) && node.anchor)) && ++marks === MAX_ANCHORS_AND_ALIASES + 1) {
      found.push({
        offset: node.range?.[0] ?? -1,
        message: `YAML: more than ${MAX_ANCHORS_AND_ALIASES} anchors and aliases (&name, *name); a config needs few`,
      });
    }
    if (!isMap(node)) return;
    const seen = new Set<unknown>();
    for (const { key } of node.items) {
      // yaml compares with ===, under which NaN never equals itself.
      if (!isScalar(key) || Number.isNaN(key.value)) continue;
      if (seen.has(key.value)) found.push({ offset: key.range?.[0] ?? -1, message: 'YAML syntax: Map keys must be unique' });
      else seen.add(key.value);
    }
  });
  return found;
}

function position(lines: LineCounter, offset: number): { line?: number; col?: number } {
  if (offset < 0) return {};
  const { line, col } = lines.linePos(offset);
  return { line, col };
}

/** A problem found by the schema or validate.ts; `message` is worked out only if the problem is listed. */
interface Problem {
  readonly path: readonly PathSegment[];
  readonly message: string | (() => string);
  /** Point at the key rather than the value (unknown keys). */
  readonly key?: boolean;
}

/** The ConfigError for `problems` (of `total`): the first MAX_LISTED_ISSUES described and located. */
function refusal(source: string, problems: Iterable<Problem>, total: number, doc: Document, lines: LineCounter): ConfigError {
  const issues: ConfigIssue[] = [];
  for (const p of problems) {
    if (issues.length === MAX_LISTED_ISSUES) break;
    const pos = locate(doc, lines, p.path, { key: p.key });
    const message = typeof p.message === 'string' ? p.message : p.message();
    issues.push({ path: formatPath(p.path), message, ...(pos ? { line: pos.line, col: pos.col } : {}) });
  }
  return new ConfigError(source, issues, total);
}

function* schemaProblems(issues: readonly z.core.$ZodIssue[], raw: unknown): Generator<Problem> {
  for (const issue of issues) {
    const path = issue.path.filter((s): s is PathSegment => typeof s === 'string' || typeof s === 'number');
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) yield { path: [...path, k], message: 'unknown key (misspelled, or not valid in this section)', key: true };
    } else if (issue.code === 'invalid_key') {
      // A mapping key that fails its own schema (a header name): at the key, with that schema's words.
      yield { path, message: issue.issues[0]?.message ?? issue.message, key: true };
    } else {
      yield { path, message: () => describe(issue, valueAt(raw, path)) };
    }
  }
}

const NOUN: Readonly<Record<string, string>> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
};

function describe(issue: z.core.$ZodIssue, value: unknown): string {
  if (value === undefined) return 'required';
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${NOUN[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${clip(JSON.stringify(value) ?? String(value), MAX_VALUE_CHARS)}`;
    case 'too_small':
      if (issue.origin === 'array' || issue.origin === 'string') return 'must not be empty';
      return `must be ${issue.inclusive === false ? 'greater than' : 'at least'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array' || issue.origin === 'string')
        return `must have at most ${issue.maximum} ${issue.origin === 'array' ? 'items' : 'characters'}`;
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${issue.maximum}`;
    default:
      return issue.message;
  }
}

function valueAt(raw: unknown, path: readonly PathSegment[]): unknown {
  let v = raw;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PathSegment, unknown>)[seg];
  }
  return v;
}
