/**
 * The admin HTTP server (node:http, loopback by default). In: GET requests from operators, the
 * load balancer and Prometheus. Out:
 *   GET {healthPath}       200 OK | 599 MAINTENANCE | 503 JSON reasons   (health.ts)
 *   GET /status/clients    every connected node: per type sent/ACKed version, pending nonce,
 *                          last NACK with its time; plus the raw stream list
 *   GET /status            the pipeline: per node group the config origin, snapshot versions,
 *                          last error and clusters whose endpoints are refused; in Consul mode
 *                          every watch, with the services held (Consul suddenly listed none of
 *                          their instances: reason, since, until) and the instances skipped
 *   GET /config_dump       the current snapshot(s) as JSON (?group=NAME or ?node=ID for one)
 *   GET /metrics           Prometheus text (metrics.ts)
 *   GET /stats/access-log  access-log aggregates, sink and writer counters as JSON
 *   GET /stats/clusters    per upstream cluster, raw counts and latency bins over the last
 *                          ?seconds=N (default and cap: the sink's window); the ramp sums these
 * It only reads from the cache, the stream registry and the sidecar's own state. Routing, errors
 * and replies follow the convention both admin servers share (common/admin-http.ts).
 */
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import type { StreamRegistry, NodeStatus } from '../server/stream-registry.js';
import type { Logger } from '../log.js';
import { AdminHttpServer, errorReply, jsonReply as json, type Reply, type Route } from '../common/admin-http.js';
import type { HealthChecker } from './health.js';
import type { SidecarMetrics } from './metrics.js';
import type { AccessAggregates } from '../als/aggregates.js';
import type { AccessLogWriter } from '../common/access-log-writer.js';
import type { AlsSink } from '../als/sink.js';

export interface AdminServerOptions {
  readonly cache: SnapshotCache;
  readonly registry: StreamRegistry;
  readonly health: HealthChecker;
  readonly healthPath: string;
  readonly metrics: SidecarMetrics;
  /** Access-log parts; absent when the ALS sink is disabled. */
  readonly accessLog?: { readonly aggregates: AccessAggregates; readonly writer: AccessLogWriter; readonly sink: AlsSink };
  readonly logger: Logger;
  /** The pipeline's own status (config origin, versions, last error, Consul watches) for GET /status. */
  readonly status?: () => unknown;
}

export class AdminServer extends AdminHttpServer {
  constructor(opts: AdminServerOptions) {
    const { cache, registry, health, metrics, accessLog } = opts;
    const routes = new Map<string, Route>([
      ['/status/clients', { handle: () => json(clientStatus(registry)) }],
      ['/config_dump', { handle: (url) => configDump(cache, registry, url) }],
      ['/metrics', { handle: async () => ({ status: 200, contentType: metrics.contentType, body: await metrics.text() }) }],
      [
        '/stats/access-log',
        {
          handle: () =>
            accessLog
              ? json({ ...accessLog.aggregates.snapshot(), sink: accessLog.sink.stats(), writer: accessLog.writer.stats() })
              : errorReply(404, 'the access-log sink is disabled'),
        },
      ],
      [
        '/stats/clusters',
        {
          handle: (url) => {
            if (!accessLog) return errorReply(404, 'the access-log sink is disabled');
            const asked = url.searchParams.get('seconds');
            const seconds = asked === null ? accessLog.aggregates.windowSeconds : Number(asked);
            if (!Number.isInteger(seconds) || seconds < 1) return errorReply(400, `seconds: expected an integer >= 1, got '${asked}'`);
            return json(accessLog.aggregates.clusterCounts(seconds));
          },
        },
      ],
    ]);
    const status = opts.status;
    if (status) routes.set('/status', { handle: () => json(status()) });
    // The health path is configurable (seed 001 used its own); it wins over a built-in path.
    routes.set(opts.healthPath, healthRoute(health));
    routes.set('/', { handle: () => json({ endpoints: [...routes.keys()].filter((p) => p !== '/').sort() }) });
    super(routes, opts.logger.child({ component: 'admin' }));
  }
}

/** The health answer as a route: the admin server's and the health-only listener's (sidecar.ts). */
export function healthRoute(health: HealthChecker): Route {
  return {
    handle: async () => {
      const r = await health.check();
      return { status: r.status, reason: r.status === 599 ? r.body : undefined, contentType: r.contentType, body: r.body };
    },
  };
}

/** Per node (all its live streams merged) and per type: versions, pending nonce, last NACK. */
export function clientStatus(registry: StreamRegistry): { nodes: NodeStatus[]; streams: ReturnType<StreamRegistry['list']> } {
  const nodes: NodeStatus[] = [];
  for (const id of registry.nodes().sort()) {
    const st = registry.nodeStatus(id);
    if (st) nodes.push(st);
  }
  return { nodes, streams: registry.list() };
}

function configDump(cache: SnapshotCache, registry: StreamRegistry, url: URL): Reply {
  const node = url.searchParams.get('node');
  let groups = cache.groups().sort();
  if (node !== null) {
    const st = registry.nodeStatus(node);
    if (!st) return errorReply(404, `node '${node}' is not connected`);
    groups = [st.group];
  }
  const only = url.searchParams.get('group');
  if (only !== null) groups = groups.filter((g) => g === only);
  const out: Record<string, unknown> = {};
  for (const g of groups) {
    const snapshot = cache.get(g);
    if (snapshot) out[g] = snapshot.toJSON();
  }
  if (Object.keys(out).length === 0) return errorReply(404, 'no snapshot', { groups: cache.groups() });
  return json({ groups: out });
}
