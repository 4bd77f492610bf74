/**
 * `serve`: wires the stages together. Sources (a config file, or a Consul KV key per node group,
 * plus Consul service health) feed one Publisher per node group, which translates and publishes
 * snapshots to the cache; the xDS server streams them to Envoy, proxyless gRPC clients and our
 * own data plane. Side duties (admin, health, ALS) only read from the cache and the stream
 * registry, and hear about the pipeline through its events.
 */
import { ConfigFileSource } from './sources/config-file.js';
import { ConsulKvSource } from './sources/consul-kv.js';
import { ConsulHealthSource } from './sources/consul-health.js';
import { ConsulClient } from './consul/client.js';
import { kvBindings, resolveConnection, type ConsulOptions } from './consul/options.js';
import type { ParseOptions } from './config/parse.js';
import { inProcessParser, WorkerConfigParser, type ConfigParser, type WorkerParserOptions } from './config/parse-worker.js';
import { edsServices, type EdsService } from './config/eds-services.js';
import type { Config } from './config/schema.js';
import { Publisher, type PublishError, type PublisherStatus } from './pipeline/publisher.js';
import { DEFAULT_GROUP, SnapshotCache } from './cache/snapshot-cache.js';
import { clientKindGroupOf } from './cache/client-kind.js';
import { MakeBeforeBreak } from './cache/make-before-break.js';
import { createXdsServer, type XdsLimits, type XdsServer } from './server/index.js';
import { TransportSecurity, type TransportSecurityOptions } from './common/transport-security.js';
import { startSidecar, type AdminOptions, type AlsOptions, type PipelineMetrics, type Sidecar } from './sidecar.js';
import { ConsulXdsError } from './errors.js';
import { bindNamed } from './common/http-listen.js';
import { createLogger, type Logger } from './log.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface ServeOptions {
  /** File mode: the YAML config to serve and watch (node group `default`). */
  readonly configFile?: string;
  /** Consul mode: config from KV (a key per node group) and EDS from service health. */
  readonly consul?: ConsulOptions;
  /** The size cap on a config text, file or KV value (default 512 KiB): a larger one is refused unread. */
  readonly configLimits?: ParseOptions;
  /**
   * Config texts are parsed in a worker thread, so a slow parse never stalls /health, xDS or the
   * Consul watches (budget and heap cap: WorkerParserOptions). `inProcess` parses on the event
   * loop instead: for comparison in benchmarks and tests only.
   */
  readonly configParsing?: Omit<WorkerParserOptions, 'logger'> & { readonly inProcess?: boolean };
  /** xDS (ADS + per-type SotW services). Default 127.0.0.1:9000 as in seed 001. */
  readonly xds?: Endpoint;
  /** xDS over TLS (files re-read on change); with a client CA, mTLS and the identity rule. Default plaintext. */
  readonly xdsSecurity?: TransportSecurityOptions;
  /** Per-client limits of the xDS server (defaults: DEFAULT_XDS_LIMITS). */
  readonly xdsLimits?: Partial<XdsLimits>;
  /** Admin HTTP server (health, status, metrics); `false` runs without it. */
  readonly admin?: AdminOptions | false;
  /** Access Log Service sink; `false` disables it. Default 127.0.0.1:9001 as in seed 001. */
  readonly als?: AlsOptions | false;
  readonly logger?: Logger;
  /** Coalescing window for changes, in ms. */
  readonly coalesceMs?: number;
  /** Make before break: longest wait for clients to answer new routes before held removals go (default 5000; 0: no staging). */
  readonly removalTimeoutMs?: number;
}

export interface AppStatus {
  readonly mode: 'file' | 'consul';
  readonly groups: readonly PublisherStatus[];
  readonly consul?: { readonly kv: unknown[]; readonly health: unknown };
}

export interface RunningApp {
  readonly xdsPort: number;
  readonly adminPort: number | undefined;
  readonly alsPort: number | undefined;
  readonly cache: SnapshotCache;
  /** Publisher per node group (`default` in file mode and single-key Consul mode). */
  readonly publishers: ReadonlyMap<string, Publisher>;
  /** The `default` group's publisher (or the only one). */
  readonly publisher: Publisher;
  readonly xdsServer: XdsServer;
  readonly sidecar: Sidecar | undefined;
  status(): AppStatus;
  close(): Promise<void>;
}

export const DEFAULT_XDS: Endpoint = Object.freeze({ host: '127.0.0.1', port: 9000 });

type Closer = () => unknown;

export async function serve(opts: ServeOptions): Promise<RunningApp> {
  if (!opts.configFile === !opts.consul) {
    throw new ConsulXdsError('CXDS_USAGE', 'serve: give exactly one config source: a file (--config) or Consul (--consul / --consul-key)');
  }
  const logger = opts.logger ?? createLogger();
  // gRPC clients get their group's `/grpc` snapshot (API listeners only); Envoy never does.
  const cache = new SnapshotCache({ groupOf: clientKindGroupOf() });
  const closers: Closer[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    const parser: ConfigParser = opts.configParsing?.inProcess ? inProcessParser : new WorkerConfigParser({ ...opts.configParsing, logger });
    closers.push(() => parser.close());
    const parsing: Parsing = { parser, limits: opts.configLimits };
    let security: TransportSecurity | undefined;
    if (opts.xdsSecurity) {
      security = await TransportSecurity.open(opts.xdsSecurity, logger, 'xds');
      const opened = security;
      closers.push(() => opened.close());
    }
    const xdsServer = createXdsServer({ cache, logger, ...(security ? { security } : {}), ...(opts.xdsLimits ? { limits: opts.xdsLimits } : {}) });
    closers.push(() => xdsServer.close());
    const makeBeforeBreak = new MakeBeforeBreak({ cache, progress: xdsServer.registry, timeoutMs: opts.removalTimeoutMs, logger });
    closers.push(() => makeBeforeBreak.close());
    let sources: Sources | undefined;
    const status = (): AppStatus => ({
      mode: opts.configFile ? 'file' : 'consul',
      groups: sources ? [...sources.publishers.values()].map((p) => p.status()) : [],
      ...(sources?.consulStatus ? { consul: sources.consulStatus() } : {}),
    });

    // The sidecar starts first: during start-up its health answer says "no snapshot yet", and its
    // metrics see the first snapshot build too.
    let sidecar: Sidecar | undefined;
    if (opts.admin !== false) {
      const xdsSecurity = security;
      sidecar = await startSidecar({
        cache,
        registry: xdsServer.registry,
        logger,
        admin: opts.admin ?? {},
        als: opts.als ?? {},
        status,
        ...(xdsSecurity ? { xdsSecurity: () => xdsSecurity.status() } : {}),
      });
      closers.push(() => sidecar?.close());
    }
    const metrics = sidecar?.metrics;
    const newPublisher = (group: string): Publisher => {
      const p = new Publisher({ cache, makeBeforeBreak, logger, group, coalesceMs: opts.coalesceMs });
      closers.push(() => p.close());
      if (metrics) {
        p.on('published', (_snapshot, buildMs: number) => metrics.observeSnapshotBuild(buildMs));
        p.on('rejected', (e: PublishError) => metrics.recordConfigError(e.code));
      }
      return p;
    };
    sources = opts.configFile
      ? await startFileSource(opts.configFile, newPublisher, closers, parsing)
      : await startConsulSources(opts.consul ?? {}, newPublisher, logger, closers, parsing, metrics);

    const xds = opts.xds ?? DEFAULT_XDS;
    const xdsPort = await bindNamed('xds', xds.host, xds.port, () => xdsServer.listen(xds.host, xds.port));
    logger.info({ xds: `${xds.host}:${xdsPort}`, tls: security !== undefined, mtls: security?.checksIdentity ?? false }, 'xDS server listening');

    const publisher = sources.publishers.get(DEFAULT_GROUP) ?? [...sources.publishers.values()][0];
    if (!publisher) throw new Error('serve: no node group configured');

    return {
      xdsPort,
      adminPort: sidecar?.adminPort,
      alsPort: sidecar?.alsPort,
      cache,
      publishers: sources.publishers,
      publisher,
      xdsServer,
      sidecar,
      status,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** How the sources turn texts into configs: one parser per app, one size cap. */
interface Parsing {
  readonly parser: ConfigParser;
  readonly limits?: ParseOptions;
}

interface Sources {
  readonly publishers: ReadonlyMap<string, Publisher>;
  readonly consulStatus?: () => { kv: unknown[]; health: unknown };
}

async function startFileSource(file: string, newPublisher: (group: string) => Publisher, closers: Closer[], { parser, limits }: Parsing): Promise<Sources> {
  const publisher = newPublisher(DEFAULT_GROUP);
  const source = new ConfigFileSource(
    file,
    {
      onConfig: (config, origin) => publisher.setConfig(config, origin),
      onError: (err) => publisher.reject(file, err),
    },
    limits,
    parser,
  );
  const first = await source.start();
  closers.push(() => source.close());
  publisher.setConfig(first, file);
  requireFirstSnapshot(publisher);
  return { publishers: new Map([[DEFAULT_GROUP, publisher]]) };
}

async function startConsulSources(
  consul: ConsulOptions,
  newPublisher: (group: string) => Publisher,
  logger: Logger,
  closers: Closer[],
  { parser, limits }: Parsing,
  metrics?: PipelineMetrics,
): Promise<Sources> {
  const client = new ConsulClient(resolveConnection(consul));
  closers.push(() => client.close());
  const startupTimeoutMs = consul.startupTimeoutMs ?? 10_000;
  const publishers = new Map<string, Publisher>();
  // The services every group's latest config uses: health watches follow their union.
  const servicesByGroup = new Map<string, readonly EdsService[]>();

  const health = new ConsulHealthSource({
    client,
    mapping: consul.health,
    timing: consul.watch,
    emptyGraceMs: consul.emptyGraceMs,
    consistency: consul.consistency,
    logger,
    onChange: (endpoints) => {
      for (const p of publishers.values()) p.setEndpoints(endpoints);
    },
    onError: (err) => logger.warn({ code: err.code, err: err.message }, 'consul health watch failing; last endpoints keep serving'),
  });
  closers.push(() => health.close());
  metrics?.watchConsulHealth(() => health.status());
  const followServices = (group: string, config: Config) => {
    servicesByGroup.set(group, edsServices(config));
    health.setServices([...servicesByGroup.values()].flat());
  };

  const kvSources: ConsulKvSource[] = [];
  for (const binding of kvBindings(consul)) {
    const publisher = newPublisher(binding.group);
    publishers.set(binding.group, publisher);
    const kv: ConsulKvSource = new ConsulKvSource({
      client,
      key: binding.key,
      group: binding.group,
      timing: consul.watch,
      consistency: consul.consistency,
      logger,
      // Answers come back in the order the texts arrived; a text still queued when a newer one
      // arrives is skipped (undefined).
      onValue: (text) => {
        void parser
          .parseLatest(text, kv.origin, limits)
          .then((config) => {
            if (!config) return;
            followServices(binding.group, config);
            publisher.setConfig(config, kv.origin);
          })
          .catch((err: Error) => publisher.reject(kv.origin, err));
      },
      onError: (err) => publisher.reject(kv.origin, err),
    });
    closers.push(() => kv.close());
    kvSources.push(kv.start());
  }

  // Serve nothing until every group has its config and every watched service has answered once,
  // so Envoy never receives a half-built snapshot (bounded: startupTimeoutMs).
  await Promise.all(kvSources.map((kv) => kv.ready(startupTimeoutMs)));
  await parser.idle();
  await health.ready(startupTimeoutMs);
  for (const p of publishers.values()) {
    p.setEndpoints(health.endpoints());
    requireFirstSnapshot(p);
  }
  return {
    publishers,
    consulStatus: () => ({ kv: kvSources.map((kv) => kv.status()), health: health.status() }),
  };
}

/** The first snapshot must build: with nothing good to fall back on, a bad config stops start-up. */
function requireFirstSnapshot(publisher: Publisher): void {
  if (publisher.flush()) return;
  const e = publisher.status().lastError;
  throw new ConsulXdsError(e?.code ?? 'CXDS_CONFIG_INVALID', e ? `${e.message}` : `group ${publisher.status().group}: no valid config to serve`);
}
