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
 * It only reads from the cache, the stream registry and the sidecar's own state.
 */
import http from 'node:http';
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import type { StreamRegistry, NodeStatus } from '../server/stream-registry.js';
import type { Logger } from '../log.js';
import { bindHttpServer } from '../http-listen.js';
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

type Handler = (url: URL) => Promise<Reply> | Reply;
interface Reply {
  readonly status: number;
  /** Reason phrase, for statuses Node has none for (it would send `599 unknown`). */
  readonly reason?: string;
  readonly contentType: string;
  readonly body: string;
}

const json = (value: unknown, status = 200): Reply => ({ status, contentType: 'application/json', body: `${JSON.stringify(value, null, 2)}\n` });

export class AdminServer {
  private readonly server: http.Server;
  private readonly routes: ReadonlyMap<string, Handler>;
  private readonly logger: Logger;

  constructor(opts: AdminServerOptions) {
    this.logger = opts.logger.child({ component: 'admin' });
    const { cache, registry, health, metrics, accessLog } = opts;
    const routes = new Map<string, Handler>([
      ['/status/clients', () => json(clientStatus(registry))],
      ['/config_dump', (url) => configDump(cache, registry, url)],
      ['/metrics', async () => ({ status: 200, contentType: metrics.contentType, body: await metrics.text() })],
      [
        '/stats/access-log',
        () =>
          accessLog
            ? json({ ...accessLog.aggregates.snapshot(), sink: accessLog.sink.stats(), writer: accessLog.writer.stats() })
            : json({ error: 'the access-log sink is disabled' }, 404),
      ],
    ]);
    const status = opts.status;
    if (status) routes.set('/status', () => json(status()));
    // The health path is configurable (seed 001 used its own); it wins over a built-in path.
    routes.set(opts.healthPath, async () => {
      const r = await health.check();
      return { status: r.status, reason: r.status === 599 ? r.body : undefined, contentType: r.contentType, body: r.body };
    });
    routes.set('/', () => json({ endpoints: [...routes.keys()].filter((p) => p !== '/').sort() }));
    this.routes = routes;
    this.server = http.createServer((req, res) => void this.handle(req, res));
    // Health checkers and scrapers keep connections alive; don't let an idle one pin shutdown.
    this.server.keepAliveTimeout = 5_000;
  }

  /** Binds host:port (0 = ephemeral) and resolves with the bound port; later server errors are logged. */
  listen(host: string, port: number): Promise<number> {
    return bindHttpServer(this.server, host, port, this.logger);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      const url = new URL(req.url ?? '/', 'http://admin.local');
      const handler = this.routes.get(url.pathname);
      if (req.method !== 'GET' && req.method !== 'HEAD') reply = json({ error: `method ${req.method} not allowed` }, 405);
      else if (!handler) reply = json({ error: `no such path: ${url.pathname}`, endpoints: [...this.routes.keys()].sort() }, 404);
      else reply = await handler(url);
    } catch (err) {
      this.logger.error({ path: req.url, err: (err as Error).message }, 'admin request failed');
      reply = json({ error: (err as Error).message }, 500);
    }
    if (reply.reason !== undefined) res.statusMessage = reply.reason;
    res.writeHead(reply.status, { 'content-type': reply.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(reply.body) });
    res.end(req.method === 'HEAD' ? undefined : reply.body);
  }
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
    if (!st) return json({ error: `node '${node}' is not connected` }, 404);
    groups = [st.group];
  }
  const only = url.searchParams.get('group');
  if (only !== null) groups = groups.filter((g) => g === only);
  const out: Record<string, unknown> = {};
  for (const g of groups) {
    const snapshot = cache.get(g);
    if (snapshot) out[g] = snapshot.toJSON();
  }
  if (Object.keys(out).length === 0) return json({ error: 'no snapshot', groups: cache.groups() }, 404);
  return json({ groups: out });
}
