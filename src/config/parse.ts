/**
 * The config edge. In: YAML text and where it came from (a file path or Consul key). Out: a
 * validated, deep-frozen Config, or a ConfigError listing every problem with its dotted path and,
 * where the YAML has it, line and column:
 *   cluster.loadbalancer.web-api-go.health-check.interval: expected a number ... (line 31, col 19)
 * Three passes, each reporting all it finds: YAML syntax, the schema (schema.ts), then the rules
 * spanning sections (validate.ts). A later pass runs only when the earlier ones found nothing.
 */
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { deepFreeze } from './deep-freeze.js';
import { locate } from './locate.js';
import { configSchema, type Config } from './schema.js';
import { formatPath, validateConfig, type PathSegment } from './validate.js';

export function parseConfig(text: string, source: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => ({
        path: '',
        // prettyErrors adds linePos and appends " at line L, column C:" plus a snippet; we keep our own format.
        message: `YAML syntax: ${e.message.split(' at line ')[0] ?? e.message}`,
        ...(e.linePos ? { line: e.linePos[0].line, col: e.linePos[0].col } : {}),
      })),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ConfigError(source, [{ path: '', message: `YAML: ${(err as Error).message}` }]);
  }
  if (raw === null || raw === undefined) throw new ConfigError(source, [{ path: '', message: 'the config is empty' }]);

  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(source, parsed.error.issues.flatMap((issue) => schemaIssues(issue, raw, doc, lines)));
  }
  const problems = validateConfig(parsed.data);
  if (problems.length > 0) {
    throw new ConfigError(source, problems.map((p) => positioned(p.path, p.message, doc, lines)));
  }
  return deepFreeze(parsed.data);
}

function positioned(path: readonly PathSegment[], message: string, doc: Document, lines: LineCounter, key = false): ConfigIssue {
  const pos = locate(doc, lines, path, { key });
  return { path: formatPath(path), message, ...(pos ? { line: pos.line, col: pos.col } : {}) };
}

function schemaIssues(issue: z.core.$ZodIssue, raw: unknown, doc: Document, lines: LineCounter): ConfigIssue[] {
  const path = issue.path.filter((s): s is PathSegment => typeof s === 'string' || typeof s === 'number');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => positioned([...path, k], 'unknown key (misspelled, or not valid in this section)', doc, lines, true));
  }
  return [positioned(path, describe(issue, valueAt(raw, path)), doc, lines)];
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
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(value)}`;
    case 'too_small':
      if (issue.origin === 'array' || issue.origin === 'string') return 'must not be empty';
      return `must be ${issue.inclusive === false ? 'greater than' : 'at least'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array' || issue.origin === 'string') return `must have at most ${issue.maximum} ${issue.origin === 'array' ? 'items' : 'characters'}`;
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
