/**
 * The proxy's listeners. In: LDS updates (validated ListenerModels and removed names). Out:
 * bound sockets serving HTTP or TCP, bind errors as per-listener apply errors (-> NACK, as
 * Envoy NACKs a listener it cannot bind), the RDS names in use, readiness and stats. A listener
 * whose filter chain has a transport_socket runs each accepted connection through the TLS
 * handshake (tls-context.ts) before its filter sees it.
 *
 * Updates never drop in-flight traffic: a listener whose address and kind stay the same takes
 * its new settings in place (new requests use them; connections stay open). A listener that
 * moves or changes kind is rebuilt: the new one binds (after the old stopped accepting, when
 * they share the port), the old one drains. A removed listener stops accepting, drains (GOAWAY
 * / connection: close) and is closed after the drain time. An HTTP listener using RDS binds at
 * once (so bind errors surface) but holds its connections until its routes arrive (warming).
 *
 * drainAll() (SIGTERM) drains every listener the same way and resolves once no connection is
 * left or the drain time is over, whichever comes first; a drain never waits longer than it must.
 *
 * One cap holds across all listeners, HTTP and TCP, draining ones included (Envoy's overload
 * manager `global_downstream_max_connections`): at the cap a new connection is closed as soon as
 * it is accepted, before any byte is read, and counted in
 * listener.<address>_<port>.downstream_global_cx_overflow. It keeps the process below its fd
 * limit: past that, accepts fail (EMFILE) for every listener and upstream connects fail too.
 */
import net, { type Socket } from 'node:net';
import type { Logger } from '../../log.js';
import { bindServer } from '../../common/http-listen.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { ListenerModel, HcmModel, TcpProxyModel } from '../config/listener-resource.js';
import type { RouteStore, RouteSlotEntry } from '../router/route-store.js';
import type { AccessLogService } from '../access-log/access-log-manager.js';
import { HttpListener, type RouteSlot } from './http-connection-manager.js';
import { TcpListener } from './tcp-proxy.js';
import { ListenerStats, type StatEmitter } from '../stats.js';
import { RouteTable } from '../router/route-table.js';
import { tlsTerminator, type DownstreamTlsModel } from '../config/tls-context.js';
import type { ApplyError } from '../xds/ads-client.js';

export interface ListenerUpsert {
  readonly name: string;
  readonly model: ListenerModel;
  readonly version: string;
  readonly bytes: Uint8Array;
}

/** Open downstream connections of all listeners, against the proxy-wide cap (0 = no cap). */
export class DownstreamConnections {
  active = 0;

  constructor(readonly max: number) {}

  /** Takes a place for a new connection; false when the cap is reached. */
  admit(): boolean {
    if (this.max > 0 && this.active >= this.max) return false;
    this.active++;
    return true;
  }

  release(): void {
    this.active--;
  }
}

export class ManagedListener {
  warm = false;
  boundPort = 0;
  private held: Socket[] = [];
  private readonly sockets = new Set<Socket>();
  private onIdle: (() => void) | undefined;
  private tls: { readonly model: DownstreamTlsModel; readonly accept: (socket: Socket) => void } | undefined;

  constructor(
    public model: ListenerModel,
    public version: string,
    public bytes: Uint8Array,
    public updated: Date,
    readonly server: net.Server,
    public impl: HttpListener | TcpListener,
    readonly stats: ListenerStats,
    private readonly global: DownstreamConnections,
  ) {
    server.on('connection', (socket: Socket) => this.onConnection(socket));
  }

  get name(): string {
    return this.model.name;
  }

  private onConnection(socket: Socket): void {
    const stats = this.stats;
    const global = this.global;
    if (!global.admit()) {
      stats.downstream_global_cx_overflow++;
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    stats.downstream_cx_total++;
    stats.downstream_cx_active++;
    this.sockets.add(socket);
    socket.once('close', () => {
      global.release();
      stats.downstream_cx_active--;
      stats.downstream_cx_destroy++;
      this.sockets.delete(socket);
      if (this.sockets.size === 0) this.onIdle?.();
    });
    if (this.warm) this.handOff(socket);
    else {
      socket.on('error', () => undefined);
      this.held.push(socket);
    }
  }

  markWarm(): void {
    if (this.warm) return;
    this.warm = true;
    for (const s of this.held.splice(0)) if (!s.destroyed) this.handOff(s);
  }

  /** To the listener's filter, through the TLS handshake when the filter chain terminates TLS. */
  private handOff(socket: Socket): void {
    const tls = this.model.tls;
    if (!tls) this.impl.handleConnection(socket);
    else this.terminator(tls)(socket);
  }

  /** The TLS server of the current TLS settings (an update with new ones gets a new one). */
  private terminator(tls: DownstreamTlsModel): (socket: Socket) => void {
    if (this.tls?.model !== tls) {
      const ssl = this.stats.ssl;
      const accept = tlsTerminator(
        tls,
        this.model.tlsHandshakeTimeoutMs,
        (secure) => {
          ssl.handshake++;
          this.impl.handleConnection(secure);
        },
        (why) => ssl[why]++,
      );
      this.tls = { model: tls, accept };
    }
    return this.tls.accept;
  }

  openConnections(): number {
    return this.sockets.size;
  }

  /** Calls `fn` once no connection is open (at once if none is). */
  whenIdle(fn: () => void): void {
    if (this.sockets.size === 0) fn();
    else this.onIdle = fn;
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }
}

export interface ListenerManagerDeps {
  readonly clusters: ClusterManager;
  readonly routes: RouteStore;
  readonly accessLogs: AccessLogService;
  readonly logger: Logger;
  /** How long removed listeners may finish their requests. */
  readonly drainTimeMs: number;
  /** Cap on open downstream connections across all listeners; 0 = none. */
  readonly maxDownstreamConnections: number;
  /**
   * A worker of --concurrency > 1 (node:cluster): bind through the primary, which holds one
   * socket per address and hands its connections to the workers in turn.
   */
  readonly sharedSockets?: boolean;
}

function sameAddress(a: ListenerModel, b: ListenerModel): boolean {
  return a.address === b.address && a.port === b.port;
}

export class ListenerManager {
  private readonly active = new Map<string, ManagedListener>();
  /** Listeners draining, each with the promise that settles when it is closed. */
  private readonly draining = new Map<ManagedListener, Promise<void>>();
  private closed = false;
  private readonly downstream: DownstreamConnections;

  constructor(private readonly deps: ListenerManagerDeps) {
    this.downstream = new DownstreamConnections(deps.maxDownstreamConnections);
  }

  get(name: string): ManagedListener | undefined {
    return this.active.get(name);
  }

  all(): IterableIterator<ManagedListener> {
    return this.active.values();
  }

  /** The RouteConfiguration names HTTP listeners reference. */
  rdsNames(): Set<string> {
    const names = new Set<string>();
    for (const l of this.active.values()) {
      const f = l.model.filter;
      if (f.kind === 'http' && f.rdsName !== undefined) names.add(f.rdsName);
    }
    return names;
  }

  allWarm(): boolean {
    for (const l of this.active.values()) if (!l.warm) return false;
    return true;
  }

  private routeSlot(hcm: HcmModel): RouteSlotEntry | RouteSlot {
    if (hcm.rdsName !== undefined) return this.deps.routes.slot(hcm.rdsName);
    return { routeTable: hcm.inlineRoutes ? new RouteTable(hcm.inlineRoutes) : undefined };
  }

  private createImpl(model: ListenerModel, port: number, stats: ListenerStats): HttpListener | TcpListener {
    const f = model.filter;
    const logs = this.deps.accessLogs;
    if (f.kind === 'http') return new HttpListener(f, this.routeSlot(f), this.deps.clusters, port, logs.compile(f.accessLogs, 'http'), stats);
    return new TcpListener(f, this.deps.clusters, logs.compile(f.accessLogs, 'tcp'));
  }

  private warmUp(l: ManagedListener): void {
    const f = l.model.filter;
    if (f.kind === 'http' && f.rdsName !== undefined) {
      const slot = this.deps.routes.slot(f.rdsName);
      void slot.whenReady().then(() => {
        if (this.active.get(l.name) === l) l.markWarm();
      });
    } else {
      l.markWarm();
    }
  }

  private async start(u: ListenerUpsert): Promise<ManagedListener> {
    const server = net.createServer({ pauseOnConnect: false, noDelay: true, allowHalfOpen: true });
    // After the bind, a failed accept (EMFILE, ENFILE) is logged; the listener keeps listening.
    const port = await bindServer(
      server,
      { host: u.model.address, port: u.model.port, exclusive: this.deps.sharedSockets !== true },
      this.deps.logger.child({ listener: u.name }),
      'listener socket',
    );
    const stats = new ListenerStats();
    const l = new ManagedListener(u.model, u.version, u.bytes, new Date(), server, this.createImpl(u.model, port, stats), stats, this.downstream);
    l.boundPort = port;
    this.warmUp(l);
    return l;
  }

  /**
   * start(), unless the drain (SIGTERM) began while the socket was binding: then the new socket is
   * closed at once (undefined), so no listener takes connections after the drain began.
   */
  private async startUnlessClosed(u: ListenerUpsert): Promise<ManagedListener | undefined> {
    const l = await this.start(u);
    if (!this.closed) return l;
    l.server.close();
    l.impl.destroy();
    return undefined;
  }

  async apply(upserts: readonly ListenerUpsert[], removals: readonly string[]): Promise<ApplyError[]> {
    const errors: ApplyError[] = [];
    for (const name of removals) {
      const l = this.active.get(name);
      if (!l) continue;
      this.active.delete(name);
      void this.drain(l);
    }
    for (const u of upserts) {
      if (this.closed) break;
      const old = this.active.get(u.name);
      try {
        if (old && sameAddress(old.model, u.model) && old.model.filter.kind === u.model.filter.kind) {
          this.updateInPlace(old, u);
          continue;
        }
        if (old && sameAddress(old.model, u.model)) {
          // Same port, new kind: the old socket must let go of the port first.
          this.active.delete(u.name);
          void this.drain(old);
          const l = await this.startUnlessClosed(u);
          if (l) this.active.set(u.name, l);
        } else {
          const l = await this.startUnlessClosed(u);
          if (l) this.active.set(u.name, l);
          if (old) void this.drain(old);
        }
      } catch (err) {
        const e = err as Error & { code?: string };
        errors.push({
          name: u.name,
          message: `Listener '${u.name}': cannot bind ${u.model.address}:${u.model.port}: ${e.code ?? e.message}`,
        });
      }
    }
    this.deps.routes.retain(this.rdsNames());
    return errors;
  }

  private updateInPlace(l: ManagedListener, u: ListenerUpsert): void {
    const f = u.model.filter;
    const logs = this.deps.accessLogs;
    const apply = (): void => {
      l.model = u.model;
      l.version = u.version;
      l.bytes = u.bytes;
      l.updated = new Date();
      if (f.kind === 'http') (l.impl as HttpListener).update(f, this.routeSlot(f), logs.compile(f.accessLogs, 'http'));
      else (l.impl as TcpListener).update(f as TcpProxyModel, logs.compile(f.accessLogs, 'tcp'));
    };
    // New routes not known yet: keep serving the old ones until they arrive (Envoy's warming).
    if (f.kind === 'http' && f.rdsName !== undefined) {
      const slot = this.deps.routes.slot(f.rdsName);
      if (!slot.ready) {
        l.model = { ...l.model, filter: { ...(l.model.filter as HcmModel), rdsName: f.rdsName } } as ListenerModel;
        void slot.whenReady().then(() => {
          if (this.active.get(l.name) === l) apply();
        });
        return;
      }
    }
    apply();
  }

  /**
   * Stops accepting on `l`, asks its connections to finish (GOAWAY / connection: close; TCP
   * pipes run on) and closes what is left when the drain time is over. Settles when `l` is closed.
   */
  private drain(l: ManagedListener): Promise<void> {
    const pending = this.draining.get(l);
    if (pending) return pending;
    l.server.close();
    if (l.impl instanceof HttpListener) l.impl.drain();
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    this.draining.set(l, done);
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      l.destroyAll();
      l.impl.destroy();
      this.draining.delete(l);
      resolve();
    };
    const timer = setTimeout(finish, this.deps.drainTimeMs);
    timer.unref();
    l.whenIdle(finish);
    return done;
  }

  /**
   * Shutdown: no listener takes new connections (new ones are refused), open ones finish within
   * the drain time, then the rest is closed. Later LDS updates bind nothing.
   */
  async drainAll(): Promise<void> {
    this.closed = true;
    const all = [...this.active.values()];
    this.active.clear();
    for (const l of all) void this.drain(l);
    await Promise.all(this.draining.values());
  }

  emitStats(emit: StatEmitter): void {
    for (const l of [...this.active.values(), ...this.draining.keys()]) {
      l.stats.emit(l.model.address, l.boundPort, emit);
      l.impl.emitStats(emit);
    }
    emit('listener_manager.total_listeners_active', [...this.active.values()].filter((l) => l.warm).length);
    emit('listener_manager.total_listeners_warming', [...this.active.values()].filter((l) => !l.warm).length);
    emit('listener_manager.total_listeners_draining', this.draining.size);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.active.values(), ...this.draining.keys()];
    this.active.clear();
    this.draining.clear();
    await Promise.all(
      all.map(
        (l) =>
          new Promise<void>((resolve) => {
            l.server.close(() => resolve());
            l.destroyAll();
            l.impl.destroy();
          }),
      ),
    );
  }
}
