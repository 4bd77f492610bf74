/**
 * Consul health source. In: the EDS clusters the current config uses (cluster, Consul service,
 * optional port override) via `setServices`. Out: an EndpointMap (cluster -> endpoints with
 * health, locality and weight) through `onChange`, whenever some cluster's endpoints really
 * change. One blocking watch per Consul service on /v1/health/service/<name>, started and
 * stopped as the config's services change; a service backing two clusters is watched once.
 *
 * A cluster whose service has not answered yet is absent from the map (no data is not "no
 * instances"). When Consul is unreachable the watches back off and the last endpoints stay.
 * When Consul answers "no instances" for a service that had some, or its index goes backwards
 * and instances are missing, the last instances are held for `emptyGraceMs` (see
 * src/consul/instance-hold.ts). A malformed entry costs only its instance (reported in status
 * `skipped`), and an answer Consul flags as filtered by ACLs is an error, not "no instances".
 * The pipeline coalesces bursts; here, content comparison drops answers that change nothing
 * (check output, an unrelated index bump).
 */
import type { EdsService } from '../config/eds-services.js';
import type { EndpointInfo, EndpointMap } from '../config/endpoints.js';
import { BlockingWatch, type WatchStatus } from '../consul/blocking-watch.js';
import type { ConsulClient } from '../consul/client.js';
import { decodeHealthAnswer, toEndpoints, type HealthAnswer, type HealthInstance } from '../consul/health-entries.js';
import { InstanceHold, type HoldStatus } from '../consul/instance-hold.js';
import {
  consistencyQuery,
  resolveEmptyGraceMs,
  resolveHealthMapping,
  type ConsulConsistency,
  type ConsulHealthMapping,
  type ConsulWatchTiming,
} from '../consul/options.js';
import { ConsulError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';

export type { EdsService };

export interface ConsulHealthSourceOptions {
  readonly client: ConsulClient;
  onChange(endpoints: EndpointMap): void;
  /** Failures of any service watch (each error names the service). */
  onError?(error: ConsulError): void;
  readonly mapping?: ConsulHealthMapping;
  readonly timing?: ConsulWatchTiming;
  /** Hold a service's last instances this long when Consul suddenly lists none (default 30 s; 0 = off). */
  readonly emptyGraceMs?: number;
  /** Read mode of the watches (default `stale`). */
  readonly consistency?: ConsulConsistency;
  readonly logger?: Logger;
  readonly random?: () => number;
}

export interface HealthServiceStatus extends WatchStatus {
  readonly service: string;
  readonly clusters: readonly string[];
  /** Instances in Consul's last answer (held ones not counted), and how many of those Consul reports passing. */
  readonly instances: number;
  readonly passing: number;
  /**
   * Instances left out of the assignment (malformed entry, hostname address, no port, duplicate)
   * or adjusted (weight clamped or scaled), with the reason.
   */
  readonly skipped: readonly string[];
  /** Set while the last instances are served although Consul's answer lacks them. */
  readonly held?: HoldStatus;
}

export interface HealthSourceStatus {
  readonly services: readonly HealthServiceStatus[];
  /** Every watched service has answered at least once. */
  readonly ready: boolean;
}

interface ServiceWatch {
  readonly watch: BlockingWatch<HealthAnswer>;
  readonly hold: InstanceHold;
  /** Consul's last answer, and the instances served (the answer, plus held ones during a hold). */
  answer?: HealthAnswer;
  instances?: readonly HealthInstance[];
  holdTimer?: NodeJS.Timeout;
}

export class ConsulHealthSource {
  private readonly opts: ConsulHealthSourceOptions;
  private readonly mapping: Required<ConsulHealthMapping>;
  private readonly logger: Logger;
  private readonly graceMs: number;
  private readonly query: Readonly<Record<string, string>>;
  private readonly watches = new Map<string, ServiceWatch>();
  private clusters: readonly EdsService[] = [];
  private current: EndpointMap = new Map();
  /** Starts as the empty map's: nothing is emitted before some service has answered. */
  private fingerprint = '[]';
  private skipped = new Map<string, readonly string[]>();
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(opts: ConsulHealthSourceOptions) {
    this.opts = opts;
    this.mapping = resolveHealthMapping(opts.mapping);
    this.graceMs = resolveEmptyGraceMs(opts.emptyGraceMs);
    this.query = consistencyQuery(opts.consistency);
    this.logger = (opts.logger ?? silentLogger).child({ component: 'consul-health' });
  }

  /** Sets the clusters to feed: starts watches for new services, stops those no longer used. */
  setServices(services: readonly EdsService[]): void {
    if (this.closed) return;
    this.clusters = Object.freeze(
      [...services].sort((a, b) => (a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0)).map((s) => Object.freeze({ ...s })),
    );
    const wanted = new Set(this.clusters.map((c) => c.service));
    for (const [service, w] of this.watches) {
      if (wanted.has(service)) continue;
      this.watches.delete(service);
      clearTimeout(w.holdTimer);
      void w.watch.stop();
      this.logger.info({ service }, 'stopped watching consul service (no longer in the config)');
    }
    for (const service of wanted) {
      if (this.watches.has(service)) continue;
      this.watches.set(service, { watch: this.createWatch(service), hold: new InstanceHold(this.graceMs) });
      this.logger.info({ service }, 'watching consul service health');
    }
    for (const w of this.watches.values()) w.watch.start();
    this.publish();
    this.settleWaiters();
  }

  /** The endpoints last emitted. */
  endpoints(): EndpointMap {
    return this.current;
  }

  /**
   * Resolves once every watched service has answered at least once (at once when none is
   * watched). With `timeoutMs`, rejects with a ConsulError naming the services still missing.
   */
  ready(timeoutMs?: number): Promise<void> {
    if (this.allAnswered()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.waiters.push(done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== done);
          const missing = [...this.watches.entries()]
            .filter(([, w]) => w.instances === undefined)
            .map(([service, w]) => `${service}${w.watch.status().lastError ? ` (${w.watch.status().lastError?.message})` : ''}`);
          reject(new ConsulError(`consul health: no answer within ${timeoutMs} ms for ${missing.join(', ')}`));
        }, timeoutMs);
        timer.unref();
      }
    });
  }

  status(): HealthSourceStatus {
    const services = [...this.watches.entries()].map(([service, w]): HealthServiceStatus => {
      const held = w.hold.status();
      return Object.freeze({
        ...w.watch.status(),
        service,
        clusters: this.clusters.filter((c) => c.service === service).map((c) => c.cluster),
        instances: w.answer?.instances.length ?? 0,
        passing: w.answer?.instances.filter((i) => i.status === 'passing').length ?? 0,
        skipped: this.skipped.get(service) ?? [],
        ...(held && { held }),
      });
    });
    return Object.freeze({ services: Object.freeze(services), ready: this.allAnswered() });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watches.values()) clearTimeout(w.holdTimer);
    const stopping = [...this.watches.values()].map((w) => w.watch.stop());
    this.watches.clear();
    await Promise.all(stopping);
  }

  private createWatch(service: string): BlockingWatch<HealthAnswer> {
    return new BlockingWatch<HealthAnswer>({
      client: this.opts.client,
      name: `consul health ${service}`,
      path: `/v1/health/service/${encodeURIComponent(service)}`,
      query: this.query,
      decode: (res) => decodeHealthAnswer(res, service, this.mapping),
      onChange: (answer, _index, { indexWentBackwards }) => {
        const entry = this.watches.get(service);
        if (!entry) return; // stopped meanwhile
        const wasHeld = entry.hold.status();
        entry.answer = answer;
        entry.instances = entry.hold.answer(answer.instances, indexWentBackwards, Date.now());
        this.holdChanged(service, entry, wasHeld);
        this.publish();
        this.settleWaiters();
      },
      onError: (err) => this.opts.onError?.(err),
      timing: this.opts.timing,
      logger: this.opts.logger,
      random: this.opts.random,
    });
  }

  /** Logs a hold starting or ending and (re)arms the timer that ends it when the grace is over. */
  private holdChanged(service: string, entry: ServiceWatch, before: HoldStatus | undefined): void {
    const now = entry.hold.status();
    if (now && !before) {
      this.logger.warn(
        { service, reason: now.reason, held: now.held, until: now.until },
        `consul health ${service}: Consul lists none of the last instances (${now.reason}); holding them for ${this.graceMs} ms`,
      );
    } else if (before && !now) {
      this.logger.info(
        { service, reason: before.reason },
        `consul health ${service}: hold ended; serving Consul's answer (${entry.instances?.length ?? 0} instances)`,
      );
    }
    clearTimeout(entry.holdTimer);
    entry.holdTimer = undefined;
    const deadline = entry.hold.deadline;
    if (deadline === undefined) return;
    entry.holdTimer = setTimeout(
      () => {
        if (this.watches.get(service) !== entry) return;
        const held = entry.hold.status();
        const instances = entry.hold.expire(Date.now());
        if (instances) entry.instances = instances;
        this.holdChanged(service, entry, held);
        this.publish();
      },
      Math.max(0, deadline - Date.now()),
    );
    entry.holdTimer.unref();
  }

  private allAnswered(): boolean {
    for (const w of this.watches.values()) if (w.instances === undefined) return false;
    return true;
  }

  private settleWaiters(): void {
    if (!this.allAnswered() || this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Rebuilds the map from the latest answers; emits only when some cluster's endpoints changed. */
  private publish(): void {
    const map = new Map<string, readonly EndpointInfo[]>();
    const skipped = new Map<string, string[]>();
    for (const c of this.clusters) {
      const w = this.watches.get(c.service);
      if (w?.instances === undefined) continue;
      const result = toEndpoints(c.service, w.instances, { port: c.port, warningAs: this.mapping.warningAs });
      map.set(c.cluster, result.endpoints);
      // A malformed entry is reported once per service, however many clusters it backs.
      const before = skipped.get(c.service) ?? [...(w.answer?.invalid ?? [])];
      skipped.set(c.service, [...before, ...result.skipped]);
    }
    for (const [service, reasons] of skipped) {
      const before = this.skipped.get(service);
      if (before?.join('\n') !== reasons.join('\n')) for (const r of reasons) this.logger.warn(r);
    }
    this.skipped = skipped;
    const fingerprint = JSON.stringify([...map.entries()]);
    if (fingerprint === this.fingerprint) return;
    this.fingerprint = fingerprint;
    this.current = map;
    this.opts.onChange(map);
  }
}
