/**
 * The sidecar duties in one call: the ALS sink (gRPC, default 127.0.0.1:9001), the bounded
 * access-log writer and live aggregates, the load balancer health answer, and the admin HTTP
 * server (/health, /status/clients, /config_dump, /metrics, /stats/access-log; loopback by
 * default), and optionally a health-only HTTP listener for the load balancer (healthHost/healthPort:
 * the health path and nothing else, so the admin port can stay on loopback). In: the snapshot cache and stream registry (read only) plus options validated here
 * with zod. Out: the bound ports, the PipelineMetrics the publisher reports into, and close().
 */
import { z } from 'zod';
import type { Registry } from 'prom-client';
import type { SnapshotCache } from './cache/snapshot-cache.js';
import type { StreamRegistry } from './server/stream-registry.js';
import { ConfigError } from './errors.js';
import type { Logger } from './log.js';
import { AccessAggregates, type AggregatesSnapshot } from './als/aggregates.js';
import { AccessLogWriter } from './common/access-log-writer.js';
import { AlsSink } from './als/sink.js';
import { HealthChecker, type HealthReport } from './admin/health.js';
import { SidecarMetrics, type PipelineMetrics } from './admin/metrics.js';
import { AdminServer, healthRoute } from './admin/admin-server.js';
import { AdminHttpServer } from './common/admin-http.js';
import { TransportSecurity, type TransportSecurityStatus } from './common/transport-security.js';
import { bindNamed } from './common/http-listen.js';

export type { PipelineMetrics } from './admin/metrics.js';
export type { HealthReport, HealthProblem, HealthReason } from './admin/health.js';

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);

const AdminOptionsSchema = z.strictObject({
  host: host.default('127.0.0.1'),
  port: port.default(9002),
  /** Path the load balancer checks (seed 001 used its own, e.g. /_my_health_check). */
  healthPath: z.string().startsWith('/').default('/health'),
  /** While this file exists, the health path answers 599 MAINTENANCE. */
  maintenanceFile: z.string().min(1).optional(),
  /** Node id whose xDS state decides health; default: the node Envoy's admin reports, else any up-to-date client (health.ts). */
  watchNode: z.string().min(1).optional(),
  /** How long a node may run an older ACKed version before health fails (ms). */
  graceMs: z.number().int().min(0).default(10_000),
  /** The local Envoy's admin base URL: its /ready must say LIVE, and its /server_info names the node judged. */
  envoyAdminUrl: z.url().optional(),
  envoyReadyTimeoutMs: z.number().int().min(1).default(1000),
  /** A second listener serving only the health path (404 for anything else), e.g. on 0.0.0.0 for the load balancer. */
  healthHost: host.optional(),
  healthPort: port.optional(),
});

const tlsFiles = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
  /** Client certificates are required, verified against this CA, and must name the stream's node id. */
  clientCa: z.string().min(1).optional(),
});

const AlsOptionsSchema = z.strictObject({
  host: host.default('127.0.0.1'),
  port: port.default(9001),
  /** Append access-log lines to this file; default stdout. */
  file: z.string().min(1).optional(),
  /** Write-queue bound in characters; lines beyond it are dropped and counted. */
  maxQueueBytes: z
    .number()
    .int()
    .min(4096)
    .default(8 * 1024 * 1024),
  windowSeconds: z.number().int().min(1).max(3600).default(60),
  maxRouteKeys: z.number().int().min(1).default(200),
  maxClusterKeys: z.number().int().min(1).default(100),
  /** The sink speaks TLS with these files (re-read when they change; common/tls-files.ts). */
  tls: tlsFiles.optional(),
  /** How often the TLS files are checked for a change (ms). */
  tlsPollMs: z.number().int().min(10).optional(),
  /** The xDS identity pattern: its `{node}` in a URI SAN names the node here too (no group check: the sink serves no snapshot). */
  identityUriPattern: z.string().min(1).optional(),
});

export type AdminOptions = z.input<typeof AdminOptionsSchema>;
export type AlsOptions = z.input<typeof AlsOptionsSchema>;

export interface SidecarOptions {
  readonly cache: SnapshotCache;
  readonly registry: StreamRegistry;
  readonly logger: Logger;
  readonly admin?: AdminOptions;
  /** `false` disables the ALS sink (no port, no access-log metrics). */
  readonly als?: AlsOptions | false;
  /** Node.js process metrics on /metrics (default true). */
  readonly processMetrics?: boolean;
  /** The pipeline's status for GET /status (config origin, versions, last error, Consul watches). */
  readonly status?: () => unknown;
  /** The xDS server's TLS and identity refusals, for /status and /metrics (absent: plaintext xDS). */
  readonly xdsSecurity?: () => TransportSecurityStatus;
}

export interface Sidecar {
  readonly adminPort: number;
  /** The health-only listener's port; undefined when none was asked for. */
  readonly healthPort: number | undefined;
  /** undefined when the ALS sink is disabled. */
  readonly alsPort: number | undefined;
  /** For the publisher: snapshot build time and config errors. */
  readonly metrics: PipelineMetrics;
  /** The /metrics registry, for series owned elsewhere (the ramp driver's). */
  readonly metricsRegistry: Registry;
  /** The current health answer (what GET {healthPath} returns). */
  health(): Promise<HealthReport>;
  /** Live access-log aggregates (what GET /stats/access-log returns, without counters). */
  accessLogStats(): AggregatesSnapshot | undefined;
  /** Reopen the access-log file at its configured path (SIGHUP after logrotate moved it). */
  reopenAccessLog(): Promise<void>;
  /** Stops both servers, flushes the access log (bounded wait), detaches from the registry. */
  close(): Promise<void>;
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return Object.freeze(r.data) as z.output<S>;
  throw new ConfigError(
    where,
    r.error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message })),
  );
}

export async function startSidecar(opts: SidecarOptions): Promise<Sidecar> {
  const admin = parse(AdminOptionsSchema, opts.admin, 'sidecar.admin');
  if (admin.healthHost !== undefined && admin.healthPort === undefined) {
    throw new ConfigError('sidecar.admin', [{ path: 'sidecar.admin.healthPort', message: 'healthHost is set but healthPort is not' }]);
  }
  const als = opts.als === false ? undefined : parse(AlsOptionsSchema, opts.als, 'sidecar.als');
  const logger = opts.logger.child({ component: 'sidecar' });
  const closers: Array<() => unknown> = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };

  try {
    let accessLog: { aggregates: AccessAggregates; writer: AccessLogWriter; sink: AlsSink } | undefined;
    let alsPort: number | undefined;
    if (als) {
      const aggregates = new AccessAggregates(als);
      const writer = new AccessLogWriter({ ...(als.file !== undefined ? { file: als.file } : {}), maxQueueBytes: als.maxQueueBytes, logger });
      // Open errors (no such folder, no permission) fail start-up; a FIFO still waiting for its
      // reader does not hold it up (lines queue, bounded, meanwhile).
      const opened = writer.open();
      const waiting = new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 500).unref());
      if ((await Promise.race([opened, waiting])) === 'waiting') {
        opened.catch((err: Error) => logger.error({ file: als.file, err: err.message }, 'access log file could not be opened'));
      }
      closers.push(() => writer.close());
      let security: TransportSecurity | undefined;
      if (als.tls !== undefined) {
        security = await TransportSecurity.open(
          {
            tls: als.tls,
            ...(als.tlsPollMs !== undefined ? { pollMs: als.tlsPollMs } : {}),
            ...(als.identityUriPattern !== undefined ? { groupPattern: als.identityUriPattern } : {}),
          },
          logger,
          'als',
        );
        const opened = security;
        closers.push(() => opened.close());
      }
      const sink = new AlsSink({ writer, aggregates, logger, ...(security ? { security } : {}) });
      closers.push(() => sink.close());
      alsPort = await bindNamed('als', als.host, als.port, () => sink.listen(als.host, als.port));
      accessLog = { aggregates, writer, sink };
      logger.info(
        { als: `${als.host}:${alsPort}`, file: als.file ?? 'stdout', tls: security !== undefined, mtls: security?.checksIdentity ?? false },
        'access log service listening',
      );
    }

    const health = new HealthChecker({
      cache: opts.cache,
      registry: opts.registry,
      ...(admin.maintenanceFile !== undefined ? { maintenanceFile: admin.maintenanceFile } : {}),
      ...(admin.watchNode !== undefined ? { watchNode: admin.watchNode } : {}),
      graceMs: admin.graceMs,
      ...(admin.envoyAdminUrl !== undefined ? { envoyAdminUrl: admin.envoyAdminUrl } : {}),
      envoyReadyTimeoutMs: admin.envoyReadyTimeoutMs,
    });
    closers.push(() => health.close());
    const metrics = new SidecarMetrics({ registry: opts.registry, ...(accessLog ? { accessLog } : {}), processMetrics: opts.processMetrics ?? true });
    closers.push(() => metrics.close());
    const security = (): Record<string, TransportSecurityStatus> => {
      const out: Record<string, TransportSecurityStatus> = {};
      if (opts.xdsSecurity) out.xds = opts.xdsSecurity();
      const als = accessLog?.sink.security;
      if (als) out.als = als.status();
      return out;
    };
    const secure = opts.xdsSecurity !== undefined || accessLog?.sink.security !== undefined;
    // Plaintext (the default): /status and /metrics stay as they were, without TLS entries.
    if (secure) metrics.watchSecurity(security);
    const status = opts.status;
    const server = new AdminServer({
      cache: opts.cache,
      registry: opts.registry,
      health,
      healthPath: admin.healthPath,
      metrics,
      ...(status ? { status: secure ? () => ({ ...(status() as object), transportSecurity: security() }) : status } : {}),
      ...(accessLog ? { accessLog } : {}),
      logger,
    });
    const adminPort = await bindNamed('admin', admin.host, admin.port, () => server.listen(admin.host, admin.port));
    closers.push(() => server.close());
    logger.info(
      { admin: `${admin.host}:${adminPort}`, healthPath: admin.healthPath, maintenanceFile: admin.maintenanceFile, judges: health.describeRule() },
      'admin server listening',
    );
    let healthPort: number | undefined;
    const wantedHealthPort = admin.healthPort;
    if (wantedHealthPort !== undefined) {
      // Only the health path: /config_dump, /status/clients and the rest stay on the admin port.
      const healthServer = new AdminHttpServer(new Map([[admin.healthPath, healthRoute(health)]]), logger.child({ component: 'health-listener' }));
      healthPort = await bindNamed('health', admin.healthHost ?? '127.0.0.1', wantedHealthPort, () =>
        healthServer.listen(admin.healthHost ?? '127.0.0.1', wantedHealthPort),
      );
      closers.push(() => healthServer.close());
      logger.info({ health: `${admin.healthHost ?? '127.0.0.1'}:${healthPort}`, healthPath: admin.healthPath }, 'health-only listener');
    }

    return {
      adminPort,
      healthPort,
      alsPort,
      metrics,
      metricsRegistry: metrics.prometheus,
      health: () => health.check(),
      accessLogStats: () => accessLog?.aggregates.snapshot(),
      reopenAccessLog: async () => accessLog?.writer.reopen(),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
