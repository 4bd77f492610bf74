/**
 * The config model: the YAML of seed 001 (sections `listener`, `route`, `cluster.loadbalancer`,
 * `endpoint.eds`) plus our documented extensions. In: the plain JS value of the YAML document.
 * Out: a validated `Config` (zod output: defaults filled in, durations as {seconds, nanos},
 * status codes as half-open ranges). Keys keep the YAML spelling (kebab-case) so an error path,
 * docs/configuration.md and the file read the same.
 *
 * Rules that span several sections (a route naming an undefined cluster, weights on a shared
 * prefix, listener kinds) live in validate.ts; this file checks each value on its own.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { DURATION_HINT, durationIsZero, parseDuration, type Duration } from './duration.js';
import { RE2_MAX_PROGRAM_SIZE, re2ProgramSize } from './regex.js';

export const UINT32_MAX = 4_294_967_295;

/** A map key or reference to one: non-empty. */
const name = z.string().min(1);

const ipAddress = z.string().refine((v) => isIP(v) !== 0, { message: 'expected an IP address (IPv4 or IPv6 literal)' });

/** An IP literal, or a host name (HOST_NAME, below) that the data plane resolves (a STRICT_DNS cluster). */
const ipOrHostName = z.string().refine((v) => isIP(v) !== 0 || HOST_NAME.test(v), {
  message: 'expected an IP address or a host name (e.g. "127.0.0.1", "consul-xds")',
});

/** Listener ports may be 0 (the OS picks one; handy in tests). */
const listenPort = z.int().min(0).max(65535);
/** A port we connect to. */
const targetPort = z.int().min(1).max(65535);

const uint32AtLeast1 = z.int().min(1).max(UINT32_MAX);

function duration(opts: { positive: boolean }): z.ZodType<Duration> {
  return z.unknown().transform((value, ctx): Duration => {
    const d = parseDuration(value);
    if (d === undefined) {
      ctx.addIssue({ code: 'custom', message: DURATION_HINT, input: value });
      return z.NEVER;
    }
    if (opts.positive && durationIsZero(d)) {
      ctx.addIssue({ code: 'custom', message: 'must be greater than 0', input: value });
      return z.NEVER;
    }
    return d;
  });
}
const positiveDuration = duration({ positive: true });
/** 0 means "disabled" for Envoy's route/stream timeouts. */
const anyDuration = duration({ positive: false });

/** An HTTP status range, half-open like Envoy's Int64Range: [start, end). */
export interface StatusRange {
  readonly start: number;
  readonly end: number;
}
const STATUS_TEXT = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/;
const STATUS_HINT = 'expected an HTTP status like "200" or an inclusive range like "200-299", within 100-599';

/** "200" -> [200, 201); "200-299" -> [200, 300). Envoy requires ranges within [100, 600). */
const statusRange = z.unknown().transform((value, ctx): StatusRange => {
  const m = STATUS_TEXT.exec(typeof value === 'number' ? String(value) : typeof value === 'string' ? value : '');
  const start = m ? Number(m[1]) : NaN;
  const last = m ? Number(m[2] ?? m[1]) : NaN;
  if (!(start >= 100 && last <= 599 && start <= last)) {
    ctx.addIssue({ code: 'custom', message: STATUS_HINT, input: value });
    return z.NEVER;
  }
  return { start, end: last + 1 };
});

/** (0, 100] with at most 4 decimals (Envoy's FractionalPercent goes down to per-million). */
const percent = z
  .number()
  .gt(0)
  .max(100)
  .refine((p) => Math.abs(p * 1e4 - Math.round(p * 1e4)) < 1e-6, { message: 'at most 4 decimals (0.0001% is the finest step)' });

/** Envoy's x-envoy-retry-on conditions (HTTP and gRPC) that need no further settings. */
export const RETRY_ON = [
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;

/** The retry-on conditions proxyless gRPC clients act on (gRPC status codes); they skip the rest. */
export const GRPC_RETRY_ON = [
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const satisfies readonly (typeof RETRY_ON)[number][];

// ---- route (seed) / virtual-hosts (extension) ----

/** Extension: copy a share of this route's requests to another cluster; responses are dropped. */
const mirrorSchema = z.strictObject({
  cluster: name,
  percent: percent.default(100),
});

/** Extension: Envoy retry policy of the route. `retry-on`, not `on`: YAML 1.1 tools read `on` as true. */
const retrySchema = z.strictObject({
  'retry-on': z.array(z.enum(RETRY_ON)).min(1).default(['5xx']),
  attempts: z.int().min(1).max(UINT32_MAX).default(1),
  'per-try-timeout': anyDuration.optional(),
});

// ---- route matching beyond prefixes, header rewriting (extension) ----

/** An HTTP header name (RFC 9110 token). Pseudo-headers (`:path`) are not matched or rewritten. */
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, {
  message: "expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~; pseudo-headers such as :path are not allowed)",
});
/** CR, LF or NUL would end or split the header on the wire; Envoy refuses them. */
const headerValue = z.string().refine((v) => !/[\r\n\0]/.test(v), { message: 'a header value cannot contain CR, LF or NUL' });

/** An RE2 pattern (Envoy's safe_regex): refused here when RE2 or Envoy's size limit would refuse it. */
const re2Pattern = z
  .string()
  .min(1)
  .superRefine((pattern, ctx) => {
    let size: number;
    try {
      size = re2ProgramSize(pattern);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not a valid RE2 regex: ${(err as Error).message}` });
      return;
    }
    if (size > RE2_MAX_PROGRAM_SIZE)
      ctx.addIssue({
        code: 'custom',
        message: `the regex compiles to about ${size} RE2 instructions and Envoy refuses more than ${RE2_MAX_PROGRAM_SIZE}; simplify it (e.g. "+" instead of "{1,64}")`,
      });
  });

/**
 * A request path matched as a whole (`path`, `regex`). The query string is never part of it, so
 * an exact path with "?" or "#" could never match.
 */
const exactPath = z
  .string()
  .startsWith('/', { message: 'a path starts with "/"' })
  .refine((p) => !/[?#]/.test(p), { message: 'the query string is not part of the path matched; a path with "?" or "#" never matches' });

/** A regex over the whole path: one that must start with a character other than "/" never matches. */
const pathRegex = re2Pattern.refine((p) => !/^\^?[A-Za-z0-9_~-]/.test(p), {
  message: 'the regex must match the whole path, which starts with "/"; this one starts with another character and never matches',
});

/** How one header is matched: a string (or YAML true/false) is an exact value; or one of exact/prefix/regex/present. */
const headerMatchSchema = z.union(
  [
    headerValue,
    z.boolean().transform(String),
    z
      .strictObject({
        exact: headerValue.optional(),
        prefix: headerValue.min(1).optional(),
        regex: re2Pattern.optional(),
        /** true: the header is there (any value); false: it is absent. */
        present: z.boolean().optional(),
      })
      .refine((m) => Object.values(m).filter((v) => v !== undefined).length === 1, {
        message: 'set exactly one of exact, prefix, regex, present',
      }),
  ],
  {
    // zod's own text is "Invalid input"; say what a user can write (a YAML number loses its spelling: 2.10 reads as 2.1).
    error: (issue) =>
      issue.code === 'invalid_union'
        ? 'expected a string value (quote numbers: "2"), true/false, or a mapping with one of exact, prefix, regex, present'
        : undefined,
  },
);

/** Header changes on the way to the upstream or back to the client. */
const headerRewriteSchema = z.strictObject({
  /** Replaces the header (adds it when absent). */
  set: z.record(headerName, headerValue.min(1)).optional(),
  /** Adds a value, keeping any the header already has. */
  append: z.record(headerName, headerValue.min(1)).optional(),
  /** Adds the header only when it is absent. */
  'add-if-absent': z.record(headerName, headerValue.min(1)).optional(),
  /** Removes the header (before any of the above is added). */
  remove: z.array(headerName).min(1).optional(),
});

/**
 * `route.cluster.<cluster>`: which requests go to this cluster (path prefixes, exact paths, path
 * regexes, each optionally narrowed by headers), its share where the same match is shared, and
 * header rewrites for the requests it gets. validate.ts requires at least one of prefix/path/regex.
 */
const routeEntrySchema = z.strictObject({
  prefix: z
    .array(z.string().startsWith('/', { message: 'a path prefix starts with "/"' }))
    .min(1)
    .optional(),
  /** Extension: exact paths (the query string is ignored). */
  path: z.array(exactPath).min(1).optional(),
  /** Extension: RE2 regexes matched against the whole path (Envoy's safe_regex). */
  regex: z.array(pathRegex).min(1).optional(),
  /** Extension: every listed header must match too (e.g. `x-canary: "true"`). Names are case-insensitive. */
  headers: z.record(headerName, headerMatchSchema).optional(),
  /** Extension: header rewrites on requests routed to this cluster. */
  'request-headers': headerRewriteSchema.optional(),
  /** Extension: header rewrites on the responses to those requests. */
  'response-headers': headerRewriteSchema.optional(),
  /** Relative weight among the clusters that list the same prefix; 0 takes the cluster out of rotation. */
  weight: z.int().min(0).max(UINT32_MAX).optional(),
  mirror: mirrorSchema.optional(),
  timeout: anyDuration.optional(),
  retry: retrySchema.optional(),
});

const DOMAIN_HINT = 'expected a host name; "*" may only stand at its start or end (e.g. "*.example.com", "*")';
const domain = z
  .string()
  .min(1)
  .refine((d) => !/\s/.test(d) && (d === '*' || !d.slice(1, -1).includes('*')), { message: DOMAIN_HINT });

/** The seed's `route` section: one virtual host. `virtual-hosts.<name>` entries have the same shape. */
const virtualHostSchema = z.strictObject({
  domain: z.array(domain).min(1),
  'host-header': z.string().min(1).optional(),
  cluster: z.record(name, routeEntrySchema),
});

// ---- listener ----

/**
 * TLS towards a gRPC server Envoy dials (the ALS sink): the CA that verifies it, and optionally
 * Envoy's client certificate (mTLS). Paths are read by Envoy on its own host, so they must be
 * absolute; they are not opened here.
 */
const envoyFilePath = z.string().startsWith('/', { message: 'must be an absolute path (Envoy reads it on its own host)' });
const upstreamTlsSchema = z
  .strictObject({
    ca: envoyFilePath,
    cert: envoyFilePath.optional(),
    key: envoyFilePath.optional(),
    /** SNI and the name the server certificate must carry (a DNS SAN); default: no SNI, any name the CA signed. */
    sni: z.string().min(1).max(255).optional(),
  })
  .superRefine((t, ctx) => {
    // Envoy's client certificate is a pair: the one missing is reported (as `required`).
    if (t.cert !== undefined && t.key === undefined) ctx.addIssue({ code: 'custom', message: 'key is required with cert', path: ['key'] });
    if (t.key !== undefined && t.cert === undefined) ctx.addIssue({ code: 'custom', message: 'cert is required with key', path: ['cert'] });
  });

const accessLogSchema = z.strictObject({
  /** Stream access logs over gRPC (Envoy's ALS) to a sink at address:port; translate adds its cluster. */
  grpc: z.strictObject({
    /** A host name is resolved by the data plane (STRICT_DNS), so the sink can be a service name. */
    address: ipOrHostName,
    port: targetPort,
    'log-name': name.optional(),
    /** 0 flushes every entry at once; Envoy's default buffers 16 KiB. */
    'buffer-size-bytes': z.int().min(0).max(UINT32_MAX).optional(),
    'flush-interval': positiveDuration.optional(),
    /** Dial the sink over TLS (the sink's --als-tls-* flags). */
    tls: upstreamTlsSchema.optional(),
  }),
});

/** Extension: the listener terminates TLS; with `client-ca`, clients must present a certificate signed by it. */
const listenerTlsSchema = z.strictObject({
  cert: envoyFilePath,
  key: envoyFilePath,
  'client-ca': envoyFilePath.optional(),
});

/** `listener.<name>` of type http (the default) or tcp: a socket that Envoy binds. */
const socketListenerSchema = z.strictObject({
  /** Seed: the socket protocol. Only TCP is served. */
  protocol: z.enum(['tcp']).default('tcp'),
  address: ipAddress,
  port: listenPort,
  /** Extension: `http` (HTTP connection manager + routes) or `tcp` (plain TCP proxy to `cluster`). */
  type: z.enum(['http', 'tcp']).default('http'),
  'stat-prefix': name.optional(),
  /** http: which virtual hosts this listener serves (`default` is the seed's `route`); all when absent. */
  'virtual-hosts': z.array(name).min(1).optional(),
  /** tcp: the cluster connections are proxied to. */
  cluster: name.optional(),
  'access-log': accessLogSchema.optional(),
  /** http: Envoy's HCM request_timeout (whole request), 0 disables. */
  'request-timeout': anyDuration.optional(),
  /** http: idle timeout of downstream connections; tcp: idle timeout of proxied connections. */
  'idle-timeout': anyDuration.optional(),
  tls: listenerTlsSchema.optional(),
});

/**
 * Extension: `type: grpc`, for proxyless gRPC clients (grpc-js-xds, grpc-go, grpc-java). The
 * entry's name is the target authority the clients dial: `xds:///greeter:50051` asks for the
 * Listener `greeter:50051`. It becomes an API listener, which only gRPC clients are sent (Envoy
 * refuses API listeners). Nothing is bound, so there is no address or port; each client connects
 * to the endpoints itself and balances every request. validate.ts picks the one virtual host the
 * client will use and refuses what gRPC clients cannot do.
 */
const grpcListenerSchema = z.strictObject({
  type: z.literal('grpc'),
  /** The virtual hosts to choose from (all when absent); the client takes the best domain match. */
  'virtual-hosts': z.array(name).min(1).optional(),
});

export const LISTENER_TYPES = ['http', 'tcp', 'grpc'] as const;

const listenerSchema = z.discriminatedUnion('type', [socketListenerSchema, grpcListenerSchema], {
  // zod's own text lists the default as 'undefined'; say what a user can write.
  error: (issue) => (issue.code === 'invalid_union' ? `expected one of ${LISTENER_TYPES.map((t) => `"${t}"`).join(', ')}` : undefined),
});

// ---- cluster.loadbalancer ----

export const LB_POLICIES = ['round-robin', 'least-request', 'random', 'ring-hash', 'maglev'] as const;
/** The lb policies proxyless gRPC clients accept; they NACK a Cluster with any other. */
export const GRPC_LB_POLICIES = ['round-robin', 'ring-hash'] as const satisfies readonly (typeof LB_POLICIES)[number][];

const healthCheckSchema = z.strictObject({
  /** http: GET `value` and expect `expected`; tcp (extension): a successful connect is healthy. */
  type: z.enum(['http', 'tcp']).default('http'),
  /** Host header of the check; Envoy uses the cluster name when absent. */
  host: z.string().min(1).optional(),
  /** The path to GET. */
  value: z.string().min(1).optional(),
  /** Accepted statuses; Envoy accepts only 200 when absent. */
  expected: z.array(statusRange).min(1).optional(),
  timeout: positiveDuration,
  interval: positiveDuration,
  /** Extension: check interval while the cluster has never had traffic (Envoy default 60 s). */
  'no-traffic-interval': positiveDuration.optional(),
  healthy: uint32AtLeast1,
  unhealthy: uint32AtLeast1,
});

/** Seed: where a cluster's endpoints come from. `eds`: Consul health or static endpoints; the DNS kinds: `hosts`. */
export const DISCOVERY = ['eds', 'strict-dns', 'logical-dns'] as const;
export const DNS_LOOKUP_FAMILIES = ['auto', 'v4-only', 'v6-only', 'v4-preferred', 'all'] as const;

const HOST_PORT_HINT = 'expected "name:port" (a DNS name or IP address and a port 1-65535; IPv6 in brackets: "[::1]:8080")';
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** A DNS cluster's `hosts` entry, "backend:50051" -> { address: "backend", port: 50051 }. */
export interface HostPort {
  readonly address: string;
  readonly port: number;
}
const hostPort = z.string().transform((value, ctx): HostPort => {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value.trim());
  const address = m ? (m[1] ?? m[2] ?? '') : '';
  const port = m ? Number(m[3]) : NaN;
  const okAddress = m?.[1] !== undefined ? isIP(address) === 6 : isIP(address) === 4 || HOST_NAME.test(address);
  if (!okAddress || !(port >= 1 && port <= 65535)) {
    ctx.addIssue({ code: 'custom', message: HOST_PORT_HINT, input: value });
    return z.NEVER;
  }
  return { address, port };
});

/** Extension: Envoy's circuit breaker thresholds (default priority); Envoy's defaults when absent. */
const circuitBreakersSchema = z.strictObject({
  'max-connections': uint32AtLeast1.optional(),
  'max-pending-requests': z.int().min(0).max(UINT32_MAX).optional(),
  'max-requests': uint32AtLeast1.optional(),
  'max-retries': z.int().min(0).max(UINT32_MAX).optional(),
});

/** Extension: Envoy's outlier detection (consecutive 5xx); Envoy's defaults for what is absent. */
const outlierDetectionSchema = z.strictObject({
  'consecutive-5xx': uint32AtLeast1.optional(),
  interval: positiveDuration.optional(),
  'base-ejection-time': positiveDuration.optional(),
  'max-ejection-percent': z.int().min(0).max(100).optional(),
});

/**
 * Extension: one input of the request hash of `ring-hash` / `maglev` clusters (Envoy's
 * RouteAction.hash_policy, put on every route to the cluster). Exactly one key per entry;
 * validate.ts checks that.
 */
const hashPolicySchema = z.strictObject({
  /** Hash the value of this request header. */
  header: z.string().min(1).optional(),
  /** Hash the value of this request cookie. */
  cookie: z.strictObject({ name: z.string().min(1) }).optional(),
  /** Hash the client's IP address. */
  'source-ip': z.literal(true).optional(),
});

const clusterSchema = z.strictObject({
  'lb-policy': z.enum(LB_POLICIES).default('round-robin'),
  /** Seed: where endpoints come from: EDS (Consul health or static endpoints), or DNS names in `hosts`. */
  discovery: z.enum(DISCOVERY).default('eds'),
  /** Extension: the names a DNS cluster resolves, "name:port" (required with a DNS discovery). */
  hosts: z.array(hostPort).min(1).optional(),
  /** Extension: how often a DNS cluster resolves its hosts again (Envoy default 5 s). */
  'dns-refresh-rate': positiveDuration.optional(),
  /** Extension: which address families a DNS cluster asks for (Envoy default `auto`: IPv6, else IPv4). */
  'dns-lookup-family': z.enum(DNS_LOOKUP_FAMILIES).optional(),
  'health-check': healthCheckSchema.optional(),
  'connect-timeout': positiveDuration.default({ seconds: 5, nanos: 0 }),
  /** Extension: protocol towards the instances; http2 for gRPC upstreams. */
  'upstream-protocol': z.enum(['http1', 'http2']).default('http1'),
  /** Extension (http2): streams per upstream connection; more open connections beyond it (seed 002). */
  'max-concurrent-streams': z.int().min(1).max(2_147_483_647).optional(),
  /** Extension: requests per upstream connection, after which it is closed and a new one opened. */
  'max-requests-per-connection': uint32AtLeast1.optional(),
  'circuit-breakers': circuitBreakersSchema.optional(),
  'outlier-detection': outlierDetectionSchema.optional(),
  /** Extension: percent of healthy hosts below which Envoy balances over all of them (default 50; 0: never). */
  'healthy-panic-threshold': z.number().min(0).max(100).optional(),
  /** Extension: what `ring-hash` / `maglev` hash, in order (session affinity). */
  'hash-policy': z.array(hashPolicySchema).min(1).optional(),
  /** Extension: dial the instances over TLS (the same keys as the sink's `access-log.grpc.tls`). */
  tls: upstreamTlsSchema.optional(),
});

// ---- endpoint.eds ----

export const ENDPOINT_HEALTH = ['healthy', 'unhealthy', 'draining', 'degraded', 'timeout', 'unknown'] as const;

/** Extension (file mode): an instance declared in the config instead of discovered in Consul. */
const staticEndpointSchema = z.strictObject({
  address: ipAddress,
  /** Defaults to `endpoint.eds.<cluster>.port`. */
  port: targetPort.optional(),
  region: z.string().min(1).optional(),
  zone: z.string().min(1).optional(),
  health: z.enum(ENDPOINT_HEALTH).default('healthy'),
  weight: uint32AtLeast1.optional(),
});

const edsSchema = z.strictObject({
  /** Seed: the socket protocol of the instances. Only TCP. */
  protocol: z.enum(['tcp']).default('tcp'),
  /** Seed: the port instances serve on; overrides Consul's Service.Port. */
  port: targetPort.optional(),
  /** Seed: `locality` turns on locality-weighted balancing. */
  'balancing-policy': z.enum(['locality']).optional(),
  /** Extension: the Consul service to watch; defaults to the cluster name. */
  service: name.optional(),
  /** Extension (file mode): fixed instances; when present, Consul is not consulted for this cluster. */
  static: z.array(staticEndpointSchema).optional(),
});

// ---- the whole file ----

export const configSchema = z.strictObject({
  listener: z.record(name, listenerSchema),
  /** Seed: the single virtual host, named `default`. */
  route: virtualHostSchema.optional(),
  /** Extension: more virtual hosts, same shape as `route`. */
  'virtual-hosts': z.record(name, virtualHostSchema).optional(),
  cluster: z.strictObject({
    loadbalancer: z.record(name, clusterSchema),
  }),
  endpoint: z
    .strictObject({
      eds: z.record(name, edsSchema).default({}),
    })
    .default({ eds: {} }),
});

export type Config = z.infer<typeof configSchema>;
export type ListenerConfig = z.infer<typeof listenerSchema>;
export type SocketListenerConfig = z.infer<typeof socketListenerSchema>;
export type GrpcListenerConfig = z.infer<typeof grpcListenerSchema>;
export type AccessLogConfig = z.infer<typeof accessLogSchema>;
export type UpstreamTlsConfig = z.infer<typeof upstreamTlsSchema>;
export type ListenerTlsConfig = z.infer<typeof listenerTlsSchema>;
export type VirtualHostConfig = z.infer<typeof virtualHostSchema>;
export type RouteEntryConfig = z.infer<typeof routeEntrySchema>;
export type MirrorConfig = z.infer<typeof mirrorSchema>;
export type RetryConfig = z.infer<typeof retrySchema>;
export type HeaderMatchConfig = z.infer<typeof headerMatchSchema>;
export type HeaderRewriteConfig = z.infer<typeof headerRewriteSchema>;
export type ClusterConfig = z.infer<typeof clusterSchema>;
export type HealthCheckConfig = z.infer<typeof healthCheckSchema>;
export type HashPolicyConfig = z.infer<typeof hashPolicySchema>;
export type CircuitBreakersConfig = z.infer<typeof circuitBreakersSchema>;
export type OutlierDetectionConfig = z.infer<typeof outlierDetectionSchema>;
export type EdsConfig = z.infer<typeof edsSchema>;
export type StaticEndpointConfig = z.infer<typeof staticEndpointSchema>;
export type { Duration };
