/**
 * Prometheus metrics for /metrics (prom-client, one private Registry per sidecar so tests and
 * several instances never share state). In: stream-registry events (responses, ACKs, NACKs), the
 * pipeline's calls (snapshot build time, publishes, config errors), and on each scrape the ALS
 * sink, the writer and the access-log aggregates, and (Consul mode) the health source's status:
 * which services are held after Consul suddenly listed none of their instances, and how many
 * instances were skipped or adjusted. Out: Prometheus text.
 *
 * Every name starts with `consul_xds_`. Per-route and per-cluster series come from the bounded
 * aggregates, so their cardinality is capped by maxRouteKeys / maxClusterKeys (plus `(other)`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StreamRegistry, NackEvent, ResponseEvent, XdsEvent } from '../server/stream-registry.js';
import type { AccessAggregates, AggregatesSnapshot } from '../als/aggregates.js';
import type { AccessLogWriter } from '../common/access-log-writer.js';
import type { AlsSink } from '../als/sink.js';
import { STATUS_CLASSES, type WindowSummary } from '../als/sliding-window.js';
import { REFUSAL_REASONS, type TransportSecurityStatus } from '../common/transport-security.js';

export interface SidecarMetricsOptions {
  readonly registry: StreamRegistry;
  /** The ALS parts; absent when the sink is disabled (no access-log series then). */
  readonly accessLog?: { readonly aggregates: AccessAggregates; readonly writer: AccessLogWriter; readonly sink: AlsSink };
  /** Node.js process metrics (RSS, heap, event-loop lag); default true. */
  readonly processMetrics?: boolean;
}

/** What the pipeline reports; app.ts wires the Publisher's events to these. */
export interface PipelineMetrics {
  /** A snapshot was built and published in `ms` milliseconds. */
  observeSnapshotBuild(ms: number): void;
  /** A config (or snapshot build) was refused; `code` is the ConsulXdsError code. */
  recordConfigError(code: string): void;
  /** Consul mode: the health source's status, read at each scrape. */
  watchConsulHealth(status: () => ConsulHealthView): void;
}

/** What the metrics read from the Consul health source (HealthSourceStatus, structurally). */
export interface ConsulHealthView {
  readonly services: ReadonlyArray<{
    readonly service: string;
    readonly skipped: readonly string[];
    readonly held?: { readonly reason: string; readonly since: string };
  }>;
}

const QUANTILES = [
  ['0.5', 'p50_ms'],
  ['0.9', 'p90_ms'],
  ['0.99', 'p99_ms'],
] as const;

export class SidecarMetrics implements PipelineMetrics {
  readonly prometheus = new Registry();
  private readonly xds: StreamRegistry;
  private current?: AggregatesSnapshot;
  private readonly responses: Counter<'type'>;
  private readonly acks: Counter<'type'>;
  private readonly nacks: Counter<'type'>;
  private readonly buildSeconds: Histogram;
  private readonly configErrors: Counter<'code'>;
  private readonly onResponse = (e: ResponseEvent) => this.responses.inc({ type: e.type });
  private readonly onAck = (e: XdsEvent) => this.acks.inc({ type: e.type });
  private readonly onNack = (e: NackEvent) => this.nacks.inc({ type: e.type });

  constructor(opts: SidecarMetricsOptions) {
    const registers = [this.prometheus];
    const xds = opts.registry;
    this.xds = xds;
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.prometheus, prefix: 'consul_xds_' });

    // ---- xDS ----
    new Gauge({
      name: 'consul_xds_xds_streams',
      help: 'Connected xDS streams',
      registers,
      collect() {
        this.set(xds.size);
      },
    });
    new Gauge({
      name: 'consul_xds_xds_nodes',
      help: 'Distinct connected node ids',
      registers,
      collect() {
        this.set(xds.nodeCount);
      },
    });
    this.responses = new Counter({ name: 'consul_xds_xds_responses_total', help: 'DiscoveryResponses pushed, by type', labelNames: ['type'], registers });
    this.acks = new Counter({ name: 'consul_xds_xds_acks_total', help: 'ACKs received, by type', labelNames: ['type'], registers });
    this.nacks = new Counter({ name: 'consul_xds_xds_nacks_total', help: 'NACKs received (error_detail set), by type', labelNames: ['type'], registers });
    xds.on('response', this.onResponse);
    xds.on('ack', this.onAck);
    xds.on('nack', this.onNack);

    // ---- pipeline ----
    this.buildSeconds = new Histogram({
      name: 'consul_xds_snapshot_build_seconds',
      help: 'Time to translate, encode and publish a snapshot',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.configErrors = new Counter({
      name: 'consul_xds_config_errors_total',
      help: 'Configs or snapshots refused (last good snapshot kept), by error code',
      labelNames: ['code'],
      registers,
    });
    if (opts.accessLog) this.accessLogMetrics(opts.accessLog);
  }

  private accessLogMetrics({ aggregates, writer, sink }: NonNullable<SidecarMetricsOptions['accessLog']>): void {
    const registers = [this.prometheus];

    // ---- access-log sink and writer (read at scrape time) ----
    new Gauge({
      name: 'consul_xds_access_log_streams',
      help: 'Open ALS streams',
      registers,
      collect() {
        this.set(sink.stats().streamsOpen);
      },
    });
    new Counter({
      name: 'consul_xds_access_log_entries_total',
      help: 'Access-log entries received, by kind (http, tcp)',
      labelNames: ['kind'],
      registers,
      collect() {
        const s = sink.stats();
        this.reset();
        this.inc({ kind: 'http' }, s.httpEntries);
        this.inc({ kind: 'tcp' }, s.tcpEntries);
      },
    });
    const writerCounter = (name: string, help: string, field: 'written' | 'dropped' | 'writeErrors') =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(writer.stats()[field]);
        },
      });
    writerCounter('consul_xds_access_log_lines_written_total', 'Access-log lines written', 'written');
    writerCounter('consul_xds_access_log_lines_dropped_total', 'Access-log lines dropped because the write queue was full (drop-newest)', 'dropped');
    writerCounter('consul_xds_access_log_write_errors_total', 'Failed access-log writes (their batch is dropped)', 'writeErrors');
    new Gauge({
      name: 'consul_xds_access_log_queue_bytes',
      help: 'Bytes of access-log text queued or being written (never above the queue limit, default 8 MiB)',
      registers,
      collect() {
        this.set(writer.stats().queuedBytes);
      },
    });

    // ---- access-log aggregates ----
    const snap = () => (this.current ??= aggregates.snapshot());
    new Counter({
      name: 'consul_xds_access_log_overflow_total',
      help: 'Entries counted under the (other) key because the distinct-key cap was reached',
      labelNames: ['scope'],
      registers,
      collect() {
        const s = snap();
        this.reset();
        this.inc({ scope: 'route' }, s.overflowed.routes);
        this.inc({ scope: 'cluster' }, s.overflowed.clusters);
      },
    });
    const classCounter = <L extends string>(name: string, help: string, keyLabels: readonly L[], rows: () => Array<[Record<L, string>, WindowSummary]>) =>
      new Counter({
        name,
        help,
        labelNames: [...keyLabels, 'class'],
        registers,
        collect() {
          this.reset();
          for (const [labels, s] of rows()) {
            for (const cls of STATUS_CLASSES) this.inc({ ...labels, class: cls } as Record<L | 'class', string>, s.total.classes[cls]);
          }
        },
      });
    const latencyGauge = <L extends string>(name: string, help: string, keyLabels: readonly L[], rows: () => Array<[Record<L, string>, WindowSummary]>) =>
      new Gauge({
        name,
        help,
        labelNames: [...keyLabels, 'quantile'],
        registers,
        collect() {
          this.reset();
          for (const [labels, s] of rows()) {
            for (const [q, field] of QUANTILES) {
              const ms = s.window[field];
              if (ms !== undefined) this.set({ ...labels, quantile: q } as Record<L | 'quantile', string>, ms / 1000);
            }
          }
        },
      });
    const routeRows = () => snap().routes.map((r): [Record<'vhost' | 'route', string>, WindowSummary] => [{ vhost: r.vhost, route: r.route }, r]);
    const clusterRows = () => snap().clusters.map((c): [Record<'cluster', string>, WindowSummary] => [{ cluster: c.cluster }, c]);
    classCounter('consul_xds_route_requests_total', 'Requests per virtual host (authority) and route name, by status class', ['vhost', 'route'], routeRows);
    classCounter('consul_xds_cluster_requests_total', 'Requests per upstream cluster, by status class', ['cluster'], clusterRows);
    latencyGauge('consul_xds_route_latency_seconds', 'Request duration quantiles per route over the sliding window', ['vhost', 'route'], routeRows);
    latencyGauge('consul_xds_cluster_latency_seconds', 'Request duration quantiles per upstream cluster over the sliding window', ['cluster'], clusterRows);
  }

  observeSnapshotBuild(ms: number): void {
    this.buildSeconds.observe(ms / 1000);
  }

  recordConfigError(code: string): void {
    this.configErrors.inc({ code });
  }

  /** Consul mode: exports the health source's holds and skipped instances, read at each scrape. */
  watchConsulHealth(status: () => ConsulHealthView): void {
    const registers = [this.prometheus];
    new Gauge({
      name: 'consul_xds_consul_service_held_since_seconds',
      help: "Unix time since which a service's last instances are held because Consul lists none of them (reason: empty | index-backwards); absent when not held",
      labelNames: ['service', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const s of status().services) if (s.held) this.set({ service: s.service, reason: s.held.reason }, Date.parse(s.held.since) / 1000);
      },
    });
    new Gauge({
      name: 'consul_xds_consul_instances_skipped',
      help: 'Consul instances left out of (or adjusted in) the endpoints because their registration is unusable, per service; /status lists why',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const s of status().services) this.set({ service: s.service }, s.skipped.length);
      },
    });
  }

  /**
   * TLS servers (`xds`, `als`): refused clients by reason, CSDS answers that left nodes out, TLS reload outcomes and the served
   * certificate's expiry, read at each scrape.
   */
  watchSecurity(status: () => Readonly<Record<string, TransportSecurityStatus>>): void {
    const registers = [this.prometheus];
    for (const server of ['xds', 'als'] as const) {
      new Counter({
        name: `consul_xds_${server}_identity_denied_total`,
        help: `${server === 'xds' ? 'xDS' : 'ALS'} clients refused: failed TLS handshake (no or untrusted client certificate, plaintext), no certificate on the stream, node id not named by the certificate, or (xDS) another node group`,
        labelNames: ['reason'],
        registers,
        collect() {
          this.reset();
          const st = status()[server];
          if (st) for (const reason of REFUSAL_REASONS) this.inc({ reason }, st.refused[reason]);
        },
      });
    }
    new Counter({
      name: 'consul_xds_csds_withheld_total',
      help: 'xDS with mTLS: CSDS answers that left out nodes their node matchers selected but the client certificate may not read',
      registers,
      collect() {
        this.reset();
        const csds = status().xds?.csds;
        if (csds) this.inc(csds.withheld);
      },
    });
    new Counter({
      name: 'consul_xds_tls_reloads_total',
      help: 'Changed TLS files applied (ok) or refused, the previous certificate kept serving (error), by server',
      labelNames: ['server', 'result'],
      registers,
      collect() {
        this.reset();
        for (const [server, st] of Object.entries(status())) {
          this.inc({ server, result: 'ok' }, st.tls.reloads);
          this.inc({ server, result: 'error' }, st.tls.reloadFailures);
        }
      },
    });
    new Gauge({
      name: 'consul_xds_tls_reload_failing',
      help: 'The TLS files on disk cannot be used and the previous certificate is served (1), by server',
      labelNames: ['server'],
      registers,
      collect() {
        this.reset();
        for (const [server, st] of Object.entries(status())) this.set({ server }, st.tls.lastError ? 1 : 0);
      },
    });
    new Gauge({
      name: 'consul_xds_tls_cert_not_after_seconds',
      help: 'Unix time the served certificate expires, by server',
      labelNames: ['server'],
      registers,
      collect() {
        this.reset();
        for (const [server, st] of Object.entries(status())) this.set({ server }, Date.parse(st.tls.notAfter) / 1000);
      },
    });
  }

  get contentType(): string {
    return this.prometheus.contentType;
  }

  /** Prometheus text; the aggregates are summarised once per scrape. */
  async text(): Promise<string> {
    this.current = undefined;
    try {
      return await this.prometheus.metrics();
    } finally {
      this.current = undefined;
    }
  }

  close(): void {
    this.xds.off('response', this.onResponse);
    this.xds.off('ack', this.onAck);
    this.xds.off('nack', this.onNack);
  }
}
