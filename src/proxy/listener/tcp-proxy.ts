/**
 * A TCP proxy listener (envoy.filters.network.tcp_proxy), e.g. seed 000's MongoDB hop. In:
 * accepted sockets and the TcpProxyModel (cluster or weighted clusters, idle timeout, connect
 * attempts). Out: each connection piped byte for byte to a host picked by the cluster's load
 * balancer (source-IP hashing when configured), over TLS when the cluster says so, with connect_timeout and up to
 * max_connect_attempts tries on other hosts; stats under tcp.<stat_prefix>; one access-log
 * record per connection when configured.
 */
import type { Socket } from 'node:net';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { Host } from '../upstream/host.js';
import type { TcpProxyModel } from '../config/listener-resource.js';
import { TcpProxyStats, type StatEmitter } from '../stats.js';
import type { LogFn } from '../access-log/access-log-manager.js';
import { hash32 } from '../common/hash.js';
import { stripPort } from '../router/route-table.js';
import { connectUpstream, connectedEvent } from '../upstream/upstream-connect.js';

export class TcpListener {
  readonly stats = new TcpProxyStats();
  private readonly conns = new Set<Socket>();

  constructor(
    public model: TcpProxyModel,
    private readonly clusters: ClusterManager,
    public accessLog: LogFn | undefined,
  ) {}

  update(model: TcpProxyModel, accessLog: LogFn | undefined): void {
    this.model = model;
    this.accessLog = accessLog;
  }

  private pickCluster(): string {
    const cs = this.model.clusters;
    if (cs.length === 1) return cs[0]?.name ?? '';
    let r = Math.random() * this.model.totalWeight;
    for (const c of cs) {
      r -= c.weight;
      if (r < 0) return c.name;
    }
    return cs[cs.length - 1]?.name ?? '';
  }

  handleConnection(down: Socket): void {
    const stats = this.stats;
    stats.downstream_cx_total++;
    this.conns.add(down);
    const startMs = Date.now();
    const startTick = performance.now();
    const model = this.model;
    const clusterName = this.pickCluster();
    const cluster = this.clusters.get(clusterName);
    const remote = `${down.remoteAddress ?? ''}:${down.remotePort ?? 0}`;
    const local = `${down.localAddress ?? ''}:${down.localPort ?? 0}`;
    let host: Host | undefined;
    let up: Socket | undefined;
    let flags = '';
    let bytesIn = 0;
    let bytesOut = 0;
    let closed = false;
    let upstreamMs = -1;
    down.pause();
    down.on('error', () => undefined);

    const finish = (): void => {
      if (closed) return;
      closed = true;
      this.conns.delete(down);
      down.destroy();
      up?.destroy();
      if (host) host.rqActive--;
      stats.downstream_cx_rx_bytes_total += bytesIn;
      stats.downstream_cx_tx_bytes_total += bytesOut;
      const log = this.accessLog;
      if (log) {
        log({
          kind: 'tcp',
          startMs,
          method: '',
          path: '',
          authority: '',
          protocol: '',
          status: 0,
          flags,
          details: '',
          bytesIn,
          bytesOut,
          durationMs: performance.now() - startTick,
          upstreamMs,
          upstreamHost: host?.key ?? '',
          cluster: clusterName,
          routeName: '',
          downstreamRemote: remote,
          downstreamLocal: local,
          requestId: '',
          userAgent: '',
          forwardedFor: '',
          reqHeader: () => undefined,
          respHeader: () => undefined,
        });
      }
    };

    if (!cluster) {
      stats.downstream_cx_no_route++;
      flags = 'NC';
      finish();
      return;
    }
    if (cluster.stats.upstream_cx_active >= cluster.model.thresholds.maxConnections) {
      cluster.stats.upstream_cx_overflow++;
      flags = 'UO';
      finish();
      return;
    }
    const hash = model.hashSourceIp ? hash32(stripPort(remote)) : undefined;
    const tried = new Set<Host>();

    const connect = (attempt: number): void => {
      const h = cluster.pick(hash, tried, 3);
      if (!h) {
        cluster.stats.upstream_cx_none_healthy++;
        flags = 'UH';
        finish();
        return;
      }
      // A TCP connection counts as one active "request" on its host, so least-request balances it.
      if (host) host.rqActive--;
      host = h;
      tried.add(h);
      h.rqActive++;
      h.rqTotal++;
      cluster.stats.upstream_cx_total++;
      cluster.stats.upstream_cx_active++;
      h.cxTotal++;
      h.cxActive++;
      const sock = connectUpstream(h.address, h.port, cluster.model.tls, []);
      up = sock;
      let connected = false;
      const timer = setTimeout(() => {
        cluster.stats.upstream_cx_connect_timeout++;
        sock.destroy(new Error('connect timeout'));
      }, cluster.model.connectTimeoutMs);
      sock.once('close', () => {
        cluster.stats.upstream_cx_active--;
        cluster.stats.upstream_cx_destroy++;
        h.cxActive--;
      });
      sock.once('error', () => {
        clearTimeout(timer);
        if (connected || closed) return;
        cluster.stats.upstream_cx_connect_fail++;
        h.cxConnectFail++;
        cluster.report(h, 0);
        if (attempt < model.maxConnectAttempts) connect(attempt + 1);
        else {
          flags = 'UF';
          finish();
        }
      });
      sock.once(connectedEvent(sock), () => {
        connected = true;
        clearTimeout(timer);
        upstreamMs = performance.now() - startTick;
        sock.setNoDelay(true);
        this.pipe(
          down,
          sock,
          (n) => (bytesIn += n),
          (n) => (bytesOut += n),
          finish,
          (f) => (flags = f),
        );
      });
    };
    connect(1);
  }

  private pipe(down: Socket, up: Socket, rx: (n: number) => void, tx: (n: number) => void, finish: () => void, setFlag: (f: string) => void): void {
    down.on('data', (c: Buffer) => {
      rx(c.length);
      if (!up.write(c)) down.pause();
    });
    up.on('drain', () => down.resume());
    up.on('data', (c: Buffer) => {
      tx(c.length);
      if (!down.write(c)) up.pause();
    });
    down.on('drain', () => up.resume());
    // Half-close follows through; the connection ends when both sides are done.
    down.on('end', () => up.end());
    up.on('end', () => down.end());
    up.on('error', () => setFlag('UR'));
    down.once('close', finish);
    up.once('close', () => {
      if (!down.destroyed && down.writableEnded) finish();
      else if (!down.destroyed) down.end();
    });
    const idle = this.model.idleTimeoutMs;
    if (idle > 0) {
      const onIdle = (): void => {
        this.stats.idle_timeout++;
        finish();
      };
      down.setTimeout(idle, onIdle);
      up.setTimeout(idle, onIdle);
    }
    down.resume();
  }

  connections(): number {
    return this.conns.size;
  }

  destroy(): void {
    for (const c of this.conns) c.destroy();
  }

  emitStats(emit: StatEmitter): void {
    this.stats.emit(this.model.statPrefix, emit);
  }
}
