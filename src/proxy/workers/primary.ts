/**
 * The primary of `consul-xds proxy --concurrency N`: N node:cluster workers share the listeners
 * (the primary holds each listen socket and hands connections to the workers in turn), and the
 * primary holds what there is one of per proxy, as Envoy's main thread does: the ADS stream, the
 * admin server, and the restart of a worker that died.
 *
 * In: ProxyOptions and N. Out: a RunningPrimary. An xDS update goes to every worker and is
 * ACKed only if every worker applied it (any refusal is the NACK, with its message). A worker
 * that exits unasked is forked again and given the accepted config (its open connections are
 * lost; the others keep serving). /stats sums the workers' counters and gauges (gauges that
 * describe the shared config, such as membership and the listener counts, are taken once);
 * /clusters and /listeners are worker 0's (it runs the health checks, the others follow it);
 * /config_dump is the primary's client's.
 */
import cluster, { type Worker } from 'node:cluster';
import { TypeUrl, type XdsTypeUrl } from '../../xds/resource-types.js';
import { silentLogger } from '../../log.js';
import type { ApplyError, XdsUpdate, XdsWatcher } from '../xds/ads-client.js';
import { adsClient, emitServerStats, type ProxyOptions } from '../server.js';
import { VERSION } from '../config/bootstrap.js';
import { startAdminServer, type AdminServer, type AdminView, type ServerState } from '../admin/admin-server.js';
import { configDump } from '../admin/config-dump.js';
import { ConsulXdsError } from '../../errors.js';
import { bindNamed } from '../../common/http-listen.js';
import { EXIT_WAIT_MS, WORKER_INDEX_ENV, type FromWorker, type ToWorker, type WorkerQuery } from './messages.js';

export interface RunningPrimary {
  readonly adminPort: number | undefined;
  /** Every worker drains (as a single proxy does on SIGTERM), then exits. */
  drain(): Promise<void>;
  reopenAccessLogs(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Node flags for the workers: the primary's, without the ones that name what to run (`-e`,
 * `-p`, `--input-type`): a worker runs the CLI script, however the primary was started.
 */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i] as string;
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print') i++;
    else if (!a.startsWith('--input-type') && !a.startsWith('--eval=') && !a.startsWith('--print=')) out.push(a);
  }
  return out;
}

/** Gauges of the shared config: every worker has the same value, so it is counted once. */
const SHARED_GAUGE =
  /^(cluster_manager\.(active|warming)_clusters|listener_manager\.total_listeners_\w+|cluster\..+\.(membership_\w+|health_check\.healthy|circuit_breakers\..+))$/;
/** Order of replay to a new worker: clusters before their endpoints, listeners before their routes. */
const REPLAY_ORDER: readonly XdsTypeUrl[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];

interface Slot {
  worker: Worker;
  ready: boolean;
  live: boolean;
  restarts: number;
  readonly waiting: Map<number, (m: FromWorker | undefined) => void>;
}

/** Sends `m` to a worker that is up; false when it is not (it exited, or has not said ready). */
function post(slot: Slot, m: ToWorker): boolean {
  if (!slot.ready || !slot.worker.isConnected()) return false;
  slot.worker.send(m);
  return true;
}

class Primary implements XdsWatcher {
  private readonly slots: Slot[] = [];
  private readonly logger;
  private readonly client;
  private nextId = 1;
  private stopping = false;
  private draining = false;
  private live = false;
  private restarts = 0;
  private readonly started = Date.now();
  /** Updates and replays one at a time, so a new worker gets each update once and in order. */
  private serial: Promise<unknown> = Promise.resolve();
  /** Health states worker 0 reported, for the followers and for a new worker. */
  private readonly health = new Map<string, { cluster: string; host: string; failed: boolean }>();
  private readonly answered = new Set<XdsTypeUrl>();
  private readonly missing = new Map<string, { typeUrl: XdsTypeUrl; name: string }>();

  constructor(
    private readonly opts: ProxyOptions,
    readonly concurrency: number,
    worker: WorkerCommand,
  ) {
    this.logger = opts.logger ?? silentLogger;
    this.client = adsClient(opts, this);
    cluster.setupPrimary({ exec: worker.script, args: [...worker.args], execArgv: workerExecArgv(process.execArgv), serialization: 'advanced' });
    // However the primary ends (a throw, process.exit, a signal it handles), no worker outlives it.
    process.once('exit', () => this.killWorkers());
  }

  /** SIGKILLs every worker still running (synchronous: safe in an 'exit' handler). */
  killWorkers(): void {
    this.stopping = true;
    for (const s of this.slots) if (!s.worker.isDead()) s.worker.process.kill('SIGKILL');
  }

  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.concurrency }, (_, i) => this.fork(i)));
    const failed = this.slots.filter((s) => !s.ready).length;
    if (failed > 0) {
      this.stopping = true;
      await this.stopWorkers('close', EXIT_WAIT_MS);
      throw new ConsulXdsError('CXDS_PROXY_WORKER', `proxy: ${failed} of ${this.concurrency} workers exited before they were up (see their output above)`);
    }
    this.client.start();
  }

  private fork(index: number): Promise<void> {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
    const slot: Slot = { worker, ready: false, live: false, restarts: this.slots[index]?.restarts ?? 0, waiting: new Map() };
    this.slots[index] = slot;
    return new Promise((resolve) => {
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          slot.ready = true;
          resolve();
        } else this.onMessage(slot, index, m);
      });
      worker.on('exit', (code, signal) => {
        for (const w of slot.waiting.values()) w(undefined);
        slot.waiting.clear();
        const wasUp = slot.ready;
        slot.ready = false;
        resolve();
        if (this.stopping || this.slots[index] !== slot) return;
        if (!wasUp) {
          // Dying before it was up is a start-up fault (bad flags, broken install): starting it again would loop.
          this.logger.fatal({ worker: index, code, signal }, 'worker exited before it was up: not starting it again');
          return;
        }
        this.restarts++;
        slot.restarts++;
        this.logger.error({ worker: index, pid: worker.process.pid, code, signal }, 'worker exited: starting it again (its connections are lost)');
        void this.fork(index).then(() => this.replay(index));
      });
    });
  }

  private onMessage(slot: Slot, index: number, m: FromWorker): void {
    if (m.t === 'live') {
      slot.live = true;
      if (this.slots.every((s) => s.live) && !this.live) {
        this.live = true;
        this.logger.info({ workers: this.concurrency }, 'proxy LIVE: first configuration applied in every worker');
      }
    } else if (m.t === 'health') {
      this.health.set(`${m.cluster}\u0000${m.host}`, m);
      this.broadcast({ t: 'health', cluster: m.cluster, host: m.host, failed: m.failed }, index);
    } else if (m.t === 'applied' || m.t === 'answer') {
      slot.waiting.get(m.id)?.(m);
      slot.waiting.delete(m.id);
    }
  }

  private broadcast(m: ToWorker, except?: number): void {
    this.slots.forEach((s, i) => {
      if (i !== except) post(s, m);
    });
  }

  /** Sends a message that expects a reply; undefined when the worker exits first. */
  private request(slot: Slot, make: (id: number) => ToWorker): Promise<FromWorker | undefined> {
    if (!slot.ready) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      slot.waiting.set(id, resolve);
      if (!post(slot, make(id))) resolve(undefined);
    });
  }

  private inOrder<T>(job: () => Promise<T>): Promise<T> {
    const run = this.serial.then(job, job);
    this.serial = run.catch(() => undefined);
    return run;
  }

  private async applyIn(
    slots: readonly Slot[],
    u: Pick<XdsUpdate, 'typeUrl' | 'version' | 'removals'> & { upserts: ReadonlyArray<{ name: string; bytes: Uint8Array }> },
  ) {
    const upserts = u.upserts.map((r) => ({ name: r.name, bytes: r.bytes }));
    const replies = await Promise.all(
      slots.map((s) => this.request(s, (id) => ({ t: 'update', id, typeUrl: u.typeUrl, version: u.version, upserts, removals: u.removals }))),
    );
    return replies.filter((r): r is Extract<FromWorker, { t: 'applied' }> => r?.t === 'applied');
  }

  // ---- XdsWatcher: the one ADS stream, fanned out ----

  onUpdate(u: XdsUpdate): Promise<readonly ApplyError[]> {
    return this.inOrder(async () => {
      for (const r of u.upserts) this.missing.delete(`${u.typeUrl}\u0000${r.name}`);
      const replies = await this.applyIn(this.slots, u);
      const errors = new Map<string, ApplyError>();
      for (const r of replies) for (const e of r.errors) if (!errors.has(e.name)) errors.set(e.name, e);
      const first = replies[0];
      if (first?.eds && u.typeUrl === TypeUrl.Cluster) this.client.subscribe(TypeUrl.ClusterLoadAssignment, first.eds);
      if (first?.rds && u.typeUrl === TypeUrl.Listener) this.client.subscribe(TypeUrl.RouteConfiguration, first.rds);
      return [...errors.values()];
    });
  }

  onDoesNotExist(typeUrl: XdsTypeUrl, name: string): void {
    this.missing.set(`${typeUrl}\u0000${name}`, { typeUrl, name });
    this.broadcast({ t: 'dne', typeUrl, name });
  }

  onAnswered(typeUrl: XdsTypeUrl): void {
    this.answered.add(typeUrl);
    this.broadcast({ t: 'answered', typeUrl });
  }

  onConnection(connected: boolean): void {
    if (connected) this.logger.info({ server: `${this.opts.bootstrap.xds.host}:${this.opts.bootstrap.xds.port}` }, 'xDS stream up');
  }

  /** A new worker gets the accepted config, what does not exist, what was answered, and the hosts' health. */
  private replay(index: number): Promise<void> {
    return this.inOrder(async () => {
      const slot = this.slots[index];
      if (!slot) return;
      for (const typeUrl of REPLAY_ORDER) {
        const known = [...this.client.known(typeUrl)];
        if (known.length === 0) continue;
        const version = this.client.typeStats(typeUrl).version_text;
        await this.applyIn([slot], { typeUrl, version, upserts: known.map(([name, r]) => ({ name, bytes: r.bytes })), removals: [] });
      }
      for (const m of this.missing.values()) post(slot, { t: 'dne', ...m });
      for (const typeUrl of this.answered) post(slot, { t: 'answered', typeUrl });
      if (index !== 0) for (const h of this.health.values()) post(slot, { t: 'health', ...h });
      this.logger.info({ worker: index }, 'worker started again: config replayed');
    });
  }

  // ---- admin ----

  private async ask(what: WorkerQuery, slots: readonly Slot[] = this.slots): Promise<unknown[]> {
    const replies = await Promise.all(slots.map((s) => this.request(s, (id) => ({ t: 'ask', id, what }))));
    return replies.flatMap((r) => (r?.t === 'answer' ? [r.value] : []));
  }

  /** Worker 0 when it is up, else any that is (its view of hosts and listeners is the shared one). */
  private one(): Slot[] {
    const s = this.slots.find((x) => x.ready);
    return s ? [s] : [];
  }

  view(): AdminView {
    return {
      state: () => this.state(),
      statRows: async () => {
        const sums = new Map<string, number>();
        emitServerStats((n, v) => sums.set(n, v), this.live, this.started, this.client);
        sums.set('server.concurrency', this.concurrency);
        sums.set('server.worker_restarts', this.restarts);
        for (const rows of (await this.ask('stats')) as Array<Array<[string, number]>>) {
          for (const [n, v] of rows) sums.set(n, SHARED_GAUGE.test(n) ? Math.max(sums.get(n) ?? 0, v) : (sums.get(n) ?? 0) + v);
        }
        return [...sums];
      },
      clustersOut: async (json) => String((await this.ask(json ? 'clusters-json' : 'clusters', this.one()))[0] ?? ''),
      listenersOut: async (json) => String((await this.ask(json ? 'listeners-json' : 'listeners', this.one()))[0] ?? ''),
      configDump: async (includeEds) => {
        const warm = new Set(((await this.ask('warm', this.one()))[0] ?? []) as string[]);
        return configDump(this.client, { get: (name) => ({ warm: warm.has(name) }) }, this.opts.bootstrap, includeEds);
      },
      serverInfo: () => ({
        version: `consul-xds-proxy/${VERSION}`,
        state: this.state(),
        uptime_current_epoch: `${Math.floor((Date.now() - this.started) / 1000)}s`,
        node: { id: this.opts.bootstrap.node.id, cluster: this.opts.bootstrap.node.cluster, locality: this.opts.bootstrap.node.locality },
        xds: { server: `${this.opts.bootstrap.xds.host}:${this.opts.bootstrap.xds.port}`, connected: this.client.connected, types: this.client.status() },
        concurrency: this.concurrency,
        workers: this.slots.map((s, index) => ({ index, pid: s.worker.process.pid, up: s.ready, restarts: s.restarts })),
      }),
      quit: () => this.opts.onQuit?.(),
    };
  }

  private state(): ServerState {
    if (this.draining) return 'DRAINING';
    if (this.live) return 'LIVE';
    return this.client.connected ? 'INITIALIZING' : 'PRE_INITIALIZING';
  }

  // ---- lifecycle ----

  /** Tells every worker `t` and waits for all to exit (killing one that takes longer than `waitMs`). */
  async stopWorkers(t: 'drain' | 'close', waitMs: number): Promise<void> {
    this.stopping = true;
    this.draining = true;
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.worker.isDead()) return;
        const exited = new Promise<void>((resolve) => s.worker.once('exit', () => resolve()));
        post(s, { t });
        const timer = setTimeout(() => s.worker.process.kill('SIGKILL'), waitMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Resolves once every worker reopened its access logs. */
  async reopen(): Promise<void> {
    await Promise.all(this.slots.map((s) => this.request(s, (id) => ({ t: 'reopen', id }))));
  }

  close(): void {
    this.client.close();
  }
}

/** How a worker is started: the CLI script and its arguments (the primary's own, whatever started it). */
export interface WorkerCommand {
  readonly script: string;
  readonly args: readonly string[];
}

export async function startPrimary(opts: ProxyOptions, concurrency: number, worker: WorkerCommand): Promise<RunningPrimary> {
  const primary = new Primary(opts, concurrency, worker);
  await primary.start();
  let admin: AdminServer | undefined;
  const adminAddr = opts.bootstrap.admin;
  if (adminAddr) {
    admin = await bindNamed('admin', adminAddr.host, adminAddr.port, () =>
      startAdminServer(primary.view(), adminAddr.host, adminAddr.port, opts.logger ?? silentLogger),
    ).catch(async (err: unknown) => {
      await primary.stopWorkers('close', EXIT_WAIT_MS);
      primary.close();
      throw err;
    });
  }
  const drainMs = opts.drainTimeMs ?? 10_000;
  return {
    adminPort: admin?.port,
    drain: () => primary.stopWorkers('drain', drainMs + EXIT_WAIT_MS),
    reopenAccessLogs: () => primary.reopen(),
    close: async () => {
      await primary.stopWorkers('close', EXIT_WAIT_MS);
      primary.close();
      await admin?.close();
      // Whatever is still open once the workers are gone and the ADS stream and admin are closed
      // must not keep the primary (and the port it holds) alive: it ends within EXIT_WAIT_MS.
      setTimeout(() => process.exit(), EXIT_WAIT_MS).unref();
    },
  };
}
