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

function formatIssue(issue: ConfigIssue): string {
  const where = issue.line !== undefined ? ` (line ${issue.line}, col ${issue.col ?? 1})` : '';
  return `${issue.path || '<root>'}: ${issue.message}${where}`;
}

/** The configuration is invalid: YAML syntax, schema, or a rule Envoy would NACK. */
export class ConfigError extends ConsulXdsError {
  readonly issues: readonly ConfigIssue[];
  readonly source: string;
  constructor(source: string, issues: ConfigIssue[]) {
    super('CXDS_CONFIG_INVALID', `${source}: ${issues.map(formatIssue).join('; ')}`);
    this.issues = Object.freeze(issues.map((i) => Object.freeze({ ...i })));
    this.source = source;
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
