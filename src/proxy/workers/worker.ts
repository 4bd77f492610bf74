/**
 * One worker of `consul-xds proxy --concurrency N` (a node:cluster child). In: the primary's
 * messages (messages.ts). Out: a full ProxyServer (listeners, routes, clusters with their own
 * upstream pools, access logs) whose xDS feed is the primary's forwarding, not an ADS stream.
 * Worker 0 runs the health checks and reports each host's state; the others follow it. Each
 * enforces its share of the circuit breakers and connection_limit caps (share.ts).
 * Signals are the primary's to handle; a worker whose primary went away closes and exits.
 */
import { TypeUrl, type XdsTypeUrl } from '../../xds/resource-types.js';
import { decodeResource, isRejected, type DecodedResource } from '../xds/resource-types.js';
import { XdsTypeStats } from '../stats.js';
import type { ApplyError, KnownResource } from '../xds/ads-client.js';
import { ProxyServer, type ProxyOptions, type XdsFeed } from '../server.js';
import { listenersOut, renderClusters, statRows } from '../admin/admin-server.js';
import { EXIT_WAIT_MS, type FromWorker, type ToWorker, type WorkerQuery } from './messages.js';
import type { HealthMode } from '../upstream/cluster.js';
import type { ClusterModel } from '../config/cluster-resource.js';
import type { ListenerModel } from '../config/listener-resource.js';
import { clusterShare, listenerShare } from './share.js';

/** The primary's ADS client as a worker sees it: updates arrive by message, subscriptions go back. */
class ForwardedXds implements XdsFeed {
  readonly connected = true;
  readonly subscriptions = new Map<XdsTypeUrl, string[]>();
  private readonly stats = new Map<XdsTypeUrl, XdsTypeStats>();

  subscribe(url: XdsTypeUrl, names: Iterable<string>): void {
    this.subscriptions.set(url, [...names]);
  }

  typeStats(url: XdsTypeUrl): XdsTypeStats {
    let s = this.stats.get(url);
    if (!s) {
      s = new XdsTypeStats();
      this.stats.set(url, s);
    }
    return s;
  }

  status(): [] {
    return [];
  }

  known(): ReadonlyMap<string, KnownResource> {
    return new Map();
  }

  start(): void {}
  close(): void {}
}

function send(m: FromWorker): void {
  process.send?.(m);
}

/** Worker `index` of `count`: its share of the proxy-wide limits (share.ts) in the models it runs. */
function shareOf(d: DecodedResource, typeUrl: XdsTypeUrl, index: number, count: number): DecodedResource {
  if (typeUrl === TypeUrl.Cluster) return { ...d, model: clusterShare(d.model as ClusterModel, index, count) };
  if (typeUrl === TypeUrl.Listener) return { ...d, model: listenerShare(d.model as ListenerModel, index, count) };
  return d;
}

export async function runWorker(opts: ProxyOptions, index: number, count: number): Promise<void> {
  const health: HealthMode =
    index === 0 ? { kind: 'run', onHostHealth: (cluster, host, failed) => send({ t: 'health', cluster, host, failed }) } : { kind: 'follow' };
  const feed = new ForwardedXds();
  const proxy = new ProxyServer(opts.bootstrap, { ...opts, worker: { health } }, () => feed);
  const logger = opts.logger?.child({ worker: index });
  const exit = async (drain: boolean): Promise<never> => {
    // The primary waits (then SIGKILLs); without a primary (its IPC channel gone) nobody would, so a bound.
    if (!process.connected) setTimeout(() => process.exit(1), EXIT_WAIT_MS).unref();
    if (drain) await proxy.drain();
    await proxy.close();
    logger?.flush();
    process.exit(0);
  };
  const apply = async (m: Extract<ToWorker, { t: 'update' }>): Promise<void> => {
    const errors: ApplyError[] = [];
    const upserts: DecodedResource[] = [];
    m.upserts.forEach((r, i) => {
      // The primary validated these bytes too; decoding them here applies the same checks to this worker's model.
      const d = decodeResource(m.typeUrl, r.bytes, i);
      if (isRejected(d)) errors.push({ name: r.name, message: d.error });
      else upserts.push(shareOf(d, m.typeUrl, index, count));
    });
    errors.push(...(await proxy.onUpdate({ typeUrl: m.typeUrl, version: m.version, upserts, removals: m.removals })));
    const eds = feed.subscriptions.get(TypeUrl.ClusterLoadAssignment);
    const rds = feed.subscriptions.get(TypeUrl.RouteConfiguration);
    send({ t: 'applied', id: m.id, errors, eds, rds });
  };
  const answer = (what: WorkerQuery): unknown => {
    switch (what) {
      case 'stats':
        return statRows((emit) => proxy.collectDataStats(emit));
      case 'clusters':
      case 'clusters-json':
        return renderClusters(proxy.clusters, what === 'clusters-json');
      case 'listeners':
      case 'listeners-json':
        return listenersOut(proxy.listeners, what === 'listeners-json');
      case 'warm':
        return [...proxy.listeners.all()].filter((l) => l.warm).map((l) => l.name);
    }
  };
  const handle = async (m: ToWorker): Promise<void> => {
    switch (m.t) {
      case 'update':
        return apply(m);
      case 'dne':
        return proxy.onDoesNotExist(m.typeUrl, m.name);
      case 'answered':
        feed.typeStats(m.typeUrl).update_success++;
        return proxy.onAnswered();
      case 'health':
        return proxy.clusters.get(m.cluster)?.applyHealth(m.host, m.failed);
      case 'ask':
        return send({ t: 'answer', id: m.id, value: answer(m.what) });
      case 'reopen':
        await proxy.accessLogs.reopen();
        return send({ t: 'answer', id: m.id, value: true });
      case 'drain':
      case 'close':
        await exit(m.t === 'drain');
    }
  };
  // In order: an LDS update still binding must not be overtaken by the RDS one that follows it.
  let queue = Promise.resolve();
  process.on('message', (m: ToWorker) => {
    queue = queue.then(() => handle(m)).catch((err: Error) => logger?.error({ err: err.message, message: m.t }, 'worker: message failed'));
  });
  process.on('disconnect', () => void exit(false));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => undefined);
  void proxy.whenLive(2_000_000_000).then(() => send({ t: 'live' }));
  send({ t: 'ready' });
}
