/**
 * `consul-xds proxy`: the TypeScript data plane, wired. In: a Bootstrap (node, control plane,
 * admin address). Out: a RunningProxy: the ADS client feeding the cluster manager (CDS, EDS),
 * the listener manager (LDS) and the route store (RDS); access-log sinks; the admin server.
 *
 * Order of application follows Envoy's: clusters before the endpoints they subscribe to,
 * listeners before the routes they subscribe to; every update names the EDS/RDS resources that
 * are now needed so the client subscribes to exactly those. /ready turns LIVE once CDS and LDS
 * have answered and every cluster and listener finished warming, and stays LIVE (a control
 * plane outage keeps the last config serving). drain() (the CLI's SIGTERM) turns it DRAINING while
 * the listeners let their open connections finish. reopenAccessLogs() (the CLI's SIGUSR1, as
 * Envoy's) reopens every file access log at its configured path after logrotate renamed it.
 */
import { silentLogger, type Logger } from '../log.js';
import { TypeUrl, type XdsTypeUrl } from '../xds/resource-types.js';
import type { BackoffPolicy } from '../common/backoff.js';
import type { Bootstrap } from './config/bootstrap.js';
import { VERSION } from './config/bootstrap.js';
import { ClusterManager } from './upstream/cluster-manager.js';
import { ListenerManager } from './listener/listener-manager.js';
import { RouteStore } from './router/route-store.js';
import { AccessLogService } from './access-log/access-log-manager.js';
import { XdsClient, type ApplyError, type KnownResource, type TypeStatus, type XdsUpdate, type XdsWatcher } from './xds/ads-client.js';
import { startAdminServer, type AdminServer, type AdminSource, type ServerState } from './admin/admin-server.js';
import { configDump } from './admin/config-dump.js';
import { defaultMaxDownstreamConnections, openFileLimit } from './listener/fd-limit.js';
import type { ClusterModel } from './config/cluster-resource.js';
import type { EndpointsModel } from './config/endpoint-resource.js';
import type { ListenerModel } from './config/listener-resource.js';
import type { RouteConfigModel } from './config/route-resource.js';
import type { StatEmitter, XdsTypeStats } from './stats.js';
import type { HealthMode } from './upstream/cluster.js';
import { bindNamed } from '../common/http-listen.js';

export interface ProxyOptions {
  readonly bootstrap: Bootstrap;
  readonly logger?: Logger;
  /** How long removed listeners, and all of them on drain(), may finish in-flight requests (default 10 s). */
  readonly drainTimeMs?: number;
  /**
   * Cap on open downstream connections across all listeners (Envoy's overload manager
   * global_downstream_max_connections); 0 = none. Default: fd-limit.ts.
   */
  readonly maxDownstreamConnections?: number;
  /** xDS reconnect back-off. */
  readonly backoff?: BackoffPolicy;
  /** Does-not-exist timeout for EDS/RDS names (default 15 s). */
  readonly doesNotExistMs?: number;
  /** Called when POST /quitquitquit asks the proxy to stop. */
  readonly onQuit?: () => void;
  /** Set in a worker of --concurrency > 1 (proxy/workers/): shared listen sockets, and who checks health. */
  readonly worker?: { readonly health: HealthMode };
}

/**
 * What the proxy needs of its xDS source: the ADS client itself, or in a worker the primary's
 * forwarding of that client's updates (proxy/workers/worker.ts).
 */
export interface XdsFeed {
  readonly connected: boolean;
  subscribe(url: XdsTypeUrl, names: Iterable<string>): void;
  typeStats(url: XdsTypeUrl): XdsTypeStats;
  status(): TypeStatus[];
  known(url: XdsTypeUrl): ReadonlyMap<string, KnownResource>;
  start(): void;
  close(): void;
}

export interface RunningProxy {
  readonly adminPort: number | undefined;
  readonly clusters: ClusterManager;
  readonly listeners: ListenerManager;
  readonly xds: XdsClient;
  state(): ServerState;
  /** Bound port of a listener by name (its configured port may be 0). */
  listenerPort(name: string): number | undefined;
  /** Resolves when /ready would say LIVE. */
  whenLive(timeoutMs?: number): Promise<void>;
  /**
   * Graceful stop, before close(): /ready turns DRAINING, every listener stops accepting, open
   * connections finish (HTTP/1.1 connection: close, HTTP/2 GOAWAY, TCP pipes run on) until none
   * is left or the drain time is over; what is left then is closed.
   */
  drain(): Promise<void>;
  /** Every file access log opens its path afresh (after logrotate renamed the file); stdout/stderr stay. */
  reopenAccessLogs(): Promise<void>;
  /** Stops at once: open connections are closed. */
  close(): Promise<void>;
}

/** The server's and the xDS client's stats (one set per proxy, whatever its worker count). */
export function emitServerStats(emit: StatEmitter, live: boolean, started: number, xds: XdsFeed): void {
  emit('server.live', live ? 1 : 0);
  emit('server.state', live ? 0 : 1);
  emit('server.uptime', Math.floor((Date.now() - started) / 1000));
  emit('control_plane.connected_state', xds.connected ? 1 : 0);
  xds.typeStats(TypeUrl.Cluster).emit('cluster_manager.cds', emit);
  xds.typeStats(TypeUrl.Listener).emit('listener_manager.lds', emit);
  xds.typeStats(TypeUrl.ClusterLoadAssignment).emit('cluster_manager.eds', emit);
  xds.typeStats(TypeUrl.RouteConfiguration).emit('listener_manager.rds', emit);
}

export class ProxyServer implements XdsWatcher, AdminSource {
  readonly clusters: ClusterManager;
  readonly routes = new RouteStore();
  readonly accessLogs: AccessLogService;
  readonly listeners: ListenerManager;
  readonly xds: XdsFeed;
  private readonly logger: Logger;
  private live = false;
  private draining = false;
  /**
   * Types the control plane sent resources of. Needed for LIVE because the client counts an
   * update only after onUpdate returns, and with STATIC clusters and inline routes no later
   * EDS/RDS update calls checkLive again. (Empty answers skip onUpdate: the counters cover those.)
   */
  private readonly applied = new Set<XdsTypeUrl>();
  private liveWaiters: Array<() => void> = [];
  private readonly started = Date.now();

  constructor(
    readonly bootstrap: Bootstrap,
    private readonly opts: ProxyOptions,
    feed: (watcher: ProxyServer) => XdsFeed,
  ) {
    this.logger = opts.logger ?? silentLogger;
    this.clusters = new ClusterManager(opts.worker?.health);
    this.accessLogs = new AccessLogService(this.clusters, bootstrap.node, this.logger);
    this.listeners = new ListenerManager({
      clusters: this.clusters,
      routes: this.routes,
      accessLogs: this.accessLogs,
      logger: this.logger,
      drainTimeMs: opts.drainTimeMs ?? 10_000,
      maxDownstreamConnections: opts.maxDownstreamConnections ?? defaultMaxDownstreamConnections(openFileLimit()),
      sharedSockets: opts.worker !== undefined,
    });
    this.xds = feed(this);
  }

  // ---- XdsWatcher ----

  async onUpdate(u: XdsUpdate): Promise<readonly ApplyError[]> {
    let errors: ApplyError[] = [];
    this.applied.add(u.typeUrl);
    switch (u.typeUrl) {
      case TypeUrl.Cluster:
        for (const r of u.upserts) this.clusters.addOrUpdate(r.model as ClusterModel);
        for (const name of u.removals) this.clusters.remove(name);
        this.xds.subscribe(TypeUrl.ClusterLoadAssignment, this.clusters.edsNames());
        break;
      case TypeUrl.ClusterLoadAssignment:
        for (const r of u.upserts) this.clusters.setEndpoints(r.name, r.model as EndpointsModel);
        break;
      case TypeUrl.Listener:
        errors = await this.listeners.apply(
          u.upserts.map((r) => ({ name: r.name, model: r.model as ListenerModel, version: u.version, bytes: r.bytes })),
          u.removals,
        );
        this.xds.subscribe(TypeUrl.RouteConfiguration, this.listeners.rdsNames());
        break;
      case TypeUrl.RouteConfiguration:
        for (const r of u.upserts) this.routes.set(r.name, r.model as RouteConfigModel, u.version);
        break;
    }
    this.checkLive();
    return errors;
  }

  onDoesNotExist(url: XdsTypeUrl, name: string): void {
    if (url === TypeUrl.ClusterLoadAssignment) this.clusters.endpointsDoNotExist(name);
    else if (url === TypeUrl.RouteConfiguration) this.routes.doesNotExist(name);
    this.checkLive();
  }

  /** The client answered a type: an empty answer calls no onUpdate, yet may complete LIVE. */
  onAnswered(): void {
    this.checkLive();
  }

  onConnection(connected: boolean): void {
    if (connected) this.logger.info({ server: `${this.bootstrap.xds.host}:${this.bootstrap.xds.port}` }, 'xDS stream up');
  }

  /** LIVE needs: CDS and LDS answered once, every cluster and listener warm. */
  private checkLive(): void {
    if (this.live) return;
    const answered = (url: XdsTypeUrl): boolean => {
      const s = this.xds.typeStats(url);
      return this.applied.has(url) || s.update_success + s.update_rejected > 0;
    };
    if (!answered(TypeUrl.Cluster) || !answered(TypeUrl.Listener)) return;
    if (!this.clusters.allInitialized()) {
      void this.clusters.whenInitialized().then(() => this.checkLive());
      return;
    }
    if (!this.listeners.allWarm()) {
      setTimeout(() => this.checkLive(), 20).unref();
      return;
    }
    this.live = true;
    this.logger.info('proxy LIVE: first configuration applied');
    for (const w of this.liveWaiters.splice(0)) w();
  }

  whenLive(timeoutMs: number): Promise<void> {
    if (this.live) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`proxy not LIVE after ${timeoutMs} ms (state ${this.state()})`)), timeoutMs);
      this.liveWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // ---- AdminSource ----

  state(): ServerState {
    if (this.draining) return 'DRAINING';
    if (this.live) return 'LIVE';
    return this.xds.connected ? 'INITIALIZING' : 'PRE_INITIALIZING';
  }

  collectStats(emit: StatEmitter): void {
    emitServerStats(emit, this.live, this.started, this.xds);
    this.collectDataStats(emit);
  }

  /** The data plane's own stats (what a worker reports; the xDS and server ones come from the primary). */
  collectDataStats(emit: StatEmitter): void {
    this.clusters.emitStats(emit);
    this.listeners.emitStats(emit);
    this.accessLogs.emitStats(emit);
    // Envoy's memory gauges, mapped to V8's figures: what is allocated (JS heap in use plus
    // buffers), the heap reserved, and the resident set.
    const mem = process.memoryUsage();
    emit('server.memory_allocated', mem.heapUsed + mem.external);
    emit('server.memory_heap_size', mem.heapTotal);
    emit('server.memory_physical_size', mem.rss);
  }

  configDump(includeEds: boolean): unknown {
    return configDump(this.xds, this.listeners, this.bootstrap, includeEds);
  }

  serverInfo(): unknown {
    return {
      version: `consul-xds-proxy/${VERSION}`,
      state: this.state(),
      uptime_current_epoch: `${Math.floor((Date.now() - this.started) / 1000)}s`,
      node: { id: this.bootstrap.node.id, cluster: this.bootstrap.node.cluster, locality: this.bootstrap.node.locality },
      xds: { server: `${this.bootstrap.xds.host}:${this.bootstrap.xds.port}`, connected: this.xds.connected, types: this.xds.status() },
    };
  }

  quit(): void {
    this.opts.onQuit?.();
  }

  /** Listeners drain; clusters, xDS and access logs keep serving the requests that finish. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.listeners.drainAll();
  }

  async close(): Promise<void> {
    this.draining = true;
    this.xds.close();
    await this.listeners.close();
    await this.accessLogs.close();
    this.clusters.close();
  }
}

/** The ADS client of a proxy that runs in one process (or of the primary of several workers). */
export function adsClient(opts: ProxyOptions, watcher: XdsWatcher): XdsClient {
  const { bootstrap } = opts;
  return new XdsClient({
    server: bootstrap.xds,
    tls: bootstrap.xdsTls,
    node: bootstrap.node,
    watcher,
    logger: opts.logger ?? silentLogger,
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
    ...(opts.doesNotExistMs !== undefined ? { doesNotExistMs: opts.doesNotExistMs } : {}),
    delta: bootstrap.apiType === 'DELTA_GRPC',
  });
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  let client: XdsClient | undefined;
  const proxy = new ProxyServer(opts.bootstrap, opts, (w) => {
    client = adsClient(opts, w);
    return client;
  });
  const xds = client as XdsClient;
  let admin: AdminServer | undefined;
  const adminAddr = opts.bootstrap.admin;
  if (adminAddr)
    admin = await bindNamed('admin', adminAddr.host, adminAddr.port, () =>
      startAdminServer(proxy, adminAddr.host, adminAddr.port, opts.logger ?? silentLogger),
    );
  proxy.xds.start();
  return {
    adminPort: admin?.port,
    clusters: proxy.clusters,
    listeners: proxy.listeners,
    xds,
    state: () => proxy.state(),
    listenerPort: (name) => proxy.listeners.get(name)?.boundPort,
    whenLive: (timeoutMs = 30_000) => proxy.whenLive(timeoutMs),
    drain: () => proxy.drain(),
    reopenAccessLogs: () => proxy.accessLogs.reopen(),
    close: async () => {
      await admin?.close();
      await proxy.close();
    },
  };
}
