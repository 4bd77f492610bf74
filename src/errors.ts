/**
 * One base error with a stable `code` per subclass, so callers, tests and logs match on codes,
 * never on message text. Every message names where the problem is (config path, Consul key,
 * node id or resource name).
 */
export class ConsulXdsError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export interface ConfigIssue {
  /** Dotted config path, e.g. `cluster.loadbalancer.web-api-go.health-check.interval`. */
  path: string;
  message: string;
  line?: number;
  col?: number;
}

/** A ConfigError lists this many problems and counts the rest: a refusal stays one readable log line. */
export const MAX_LISTED_ISSUES = 20;
/** Longest path, and longest message, an issue keeps; a 400 KB key or value must not become a 400 KB log line. */
const MAX_PATH_CHARS = 200;
const MAX_MESSAGE_CHARS = 400;

/**
 * `text` cut to at most `max` characters: its start and end around `…`, then its full length, so
 * both a value's beginning and a message's closing words stay readable.
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = ` (cut, ${text.length} characters)`;
  const keep = Math.max(0, max - note.length - 1);
  const tail = Math.floor(keep / 4);
  return `${text.slice(0, keep - tail)}…${text.slice(text.length - tail)}${note}`;
}

function formatIssue(issue: ConfigIssue): string {
  const where = issue.line !== undefined ? ` (line ${issue.line}, col ${issue.col ?? 1})` : '';
  return `${issue.path || '<root>'}: ${issue.message}${where}`;
}

/**
 * The configuration is invalid: YAML syntax, schema, or a rule Envoy would NACK. `issues` holds the
 * first MAX_LISTED_ISSUES problems (paths and messages clipped), `total` counts them all; the
 * message lists the same and ends with "and N more".
 */
export class ConfigError extends ConsulXdsError {
  readonly issues: readonly ConfigIssue[];
  readonly total: number;
  readonly source: string;
  /** `total` > issues.length when the caller only built the first issues (parse.ts locates only what is listed). */
  constructor(source: string, issues: readonly ConfigIssue[], total = issues.length) {
    const listed = issues
      .slice(0, MAX_LISTED_ISSUES)
      .map((i) => Object.freeze({ ...i, path: clip(i.path, MAX_PATH_CHARS), message: clip(i.message, MAX_MESSAGE_CHARS) }));
    const rest = Math.max(total, issues.length) - listed.length;
    super('CXDS_CONFIG_INVALID', `${source}: ${listed.map(formatIssue).join('; ')}${rest > 0 ? `; and ${rest} more` : ''}`);
    this.issues = Object.freeze(listed);
    this.total = listed.length + rest;
    this.source = source;
  }
}

/** A config text over the size cap: refused unread, so one oversized value cannot stall the process. */
export class ConfigTooLargeError extends ConsulXdsError {
  readonly source: string;
  readonly bytes: number;
  readonly maxBytes: number;
  constructor(source: string, bytes: number, maxBytes: number) {
    super('CXDS_CONFIG_TOO_LARGE', `${source}: the config is ${bytes} bytes, over the ${maxBytes}-byte cap (--config-max-bytes); not parsed`);
    this.source = source;
    this.bytes = bytes;
    this.maxBytes = maxBytes;
  }
}

/** A snapshot failed its consistency check (a referenced name is missing). */
export class SnapshotError extends ConsulXdsError {
  constructor(message: string) {
    super('CXDS_SNAPSHOT_INCONSISTENT', message);
  }
}

/** Consul answered with an error or could not be reached. */
export class ConsulError extends ConsulXdsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CXDS_CONSUL', message, options);
  }
}

/** A check-and-set write lost against a concurrent edit. */
export class CasConflictError extends ConsulXdsError {
  constructor(key: string) {
    super('CXDS_CAS_CONFLICT', `${key}: the key changed since it was read (another edit won); read it again and retry`);
  }
}

/**
 * A server could not bind its address. `endpoint` says which one (`xds`, `admin`, `als`), so the
 * command can name the flag that sets it; `inUse` when another process holds the port.
 */
export class ListenError extends ConsulXdsError {
  readonly endpoint: string;
  readonly address: string;
  readonly inUse: boolean;
  constructor(endpoint: string, address: string, cause: unknown) {
    const text = cause instanceof Error ? cause.message : String(cause);
    const inUse = (cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE' || /EADDRINUSE/.test(text);
    super('CXDS_LISTEN', `${endpoint} cannot listen on ${address}: ${inUse ? 'the address is in use (another process holds the port)' : text}`, { cause });
    this.endpoint = endpoint;
    this.address = address;
    this.inUse = inUse;
  }
}
