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

export const UINT32_MAX = 4_294_967_295;

/** A map key or reference to one: non-empty. */
const name = z.string().min(1);

const ipAddress = z.string().refine((v) => isIP(v) !== 0, { message: 'expected an IP address (IPv4 or IPv6 literal)' });

/** A DNS name (letters, digits, `-` and `_` in dot-separated labels of up to 63), e.g. a compose service name. */
const HOST_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
/** An IP literal, or a host name that Envoy resolves (a STRICT_DNS cluster). */
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

/** `route.cluster.<cluster>`: which prefixes go to this cluster, and its share where prefixes are shared. */
const routeEntrySchema = z.strictObject({
  prefix: z.array(z.string().startsWith('/', { message: 'a path prefix starts with "/"' })).min(1),
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
  }),
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

const clusterSchema = z.strictObject({
  'lb-policy': z.enum(LB_POLICIES).default('round-robin'),
  /** Seed: where endpoints come from. Only EDS (fed by Consul health or static endpoints). */
  discovery: z.enum(['eds']).default('eds'),
  'health-check': healthCheckSchema.optional(),
  'connect-timeout': positiveDuration.default({ seconds: 5, nanos: 0 }),
  /** Extension: protocol towards the instances; http2 for gRPC upstreams. */
  'upstream-protocol': z.enum(['http1', 'http2']).default('http1'),
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
export type VirtualHostConfig = z.infer<typeof virtualHostSchema>;
export type RouteEntryConfig = z.infer<typeof routeEntrySchema>;
export type MirrorConfig = z.infer<typeof mirrorSchema>;
export type RetryConfig = z.infer<typeof retrySchema>;
export type ClusterConfig = z.infer<typeof clusterSchema>;
export type HealthCheckConfig = z.infer<typeof healthCheckSchema>;
export type EdsConfig = z.infer<typeof edsSchema>;
export type StaticEndpointConfig = z.infer<typeof staticEndpointSchema>;
export type { Duration };
