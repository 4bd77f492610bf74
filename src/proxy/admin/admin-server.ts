/**
 * The proxy's admin port, Envoy-compatible where tools look: `/ready` (200 LIVE once the first
 * config is applied, 503 with the state otherwise), `/stats` (`name: value` lines, `?filter=`
 * regex, `?format=json`), `/clusters` (text or `?format=json` with host health flags, weights,
 * localities), `/config_dump` (`?include_eds`), `/listeners`, `/server_info`, and POST
 * `/quitquitquit`. In: an AdminSource. Out: an HTTP server on the admin address.
 */
import http from 'node:http';
import type { Logger } from '../../log.js';
import { bindHttpServer } from '../../http-listen.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { ListenerManager } from '../listener/listener-manager.js';
import type { StatEmitter } from '../stats.js';

export type ServerState = 'LIVE' | 'PRE_INITIALIZING' | 'INITIALIZING' | 'DRAINING';

export interface AdminSource {
  state(): ServerState;
  collectStats(emit: StatEmitter): void;
  readonly clusters: ClusterManager;
  readonly listeners: ListenerManager;
  configDump(includeEds: boolean): unknown;
  serverInfo(): unknown;
  quit(): void;
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=UTF-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache, max-age=0' });
  res.end(body);
}

function statsText(src: AdminSource, filter: RegExp | undefined, json: boolean, usedOnly: boolean): string {
  const rows: Array<[string, number]> = [];
  src.collectStats((name, value) => {
    if (filter && !filter.test(name)) return;
    if (usedOnly && value === 0) return;
    rows.push([name, value]);
  });
  rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  if (json) return JSON.stringify({ stats: rows.map(([name, value]) => ({ name, value })) });
  return rows.map(([n, v]) => `${n}: ${v}\n`).join('');
}

function clustersJson(clusters: ClusterManager): unknown {
  return {
    cluster_statuses: [...clusters.all()].map((c) => ({
      name: c.name,
      added_via_api: true,
      host_statuses: c.hosts().map((h) => {
        const health: Record<string, unknown> = { eds_health_status: h.edsHealth };
        if (h.failedActiveHc) health.failed_active_health_check = true;
        if (h.pendingActiveHc) health.pending_active_hc = true;
        if (h.ejected) health.failed_outlier_check = true;
        if (h.edsHealth === 'DRAINING') health.pending_dynamic_removal = true;
        return {
          address: { socket_address: { address: h.address, port_value: h.port } },
          stats: [
            { name: 'cx_active', type: 'GAUGE', value: String(h.cxActive) },
            { name: 'cx_total', value: String(h.cxTotal) },
            { name: 'cx_connect_fail', value: String(h.cxConnectFail) },
            { name: 'rq_active', type: 'GAUGE', value: String(h.rqActive) },
            { name: 'rq_total', value: String(h.rqTotal) },
            { name: 'rq_success', value: String(h.rqSuccess) },
            { name: 'rq_error', value: String(h.rqError) },
            { name: 'rq_timeout', value: String(h.rqTimeout) },
          ],
          health_status: health,
          weight: h.weight,
          locality: { ...(h.locality.region ? { region: h.locality.region } : {}), ...(h.locality.zone ? { zone: h.locality.zone } : {}), ...(h.locality.subZone ? { sub_zone: h.locality.subZone } : {}) },
          priority: h.priority,
        };
      }),
    })),
  };
}

function clustersText(clusters: ClusterManager): string {
  const lines: string[] = [];
  for (const c of clusters.all()) {
    const t = c.model.thresholds;
    const n = c.name;
    lines.push(`${n}::observability_name::${n}`);
    lines.push(`${n}::default_priority::max_connections::${t.maxConnections}`);
    lines.push(`${n}::default_priority::max_pending_requests::${t.maxPendingRequests}`);
    lines.push(`${n}::default_priority::max_requests::${t.maxRequests}`);
    lines.push(`${n}::default_priority::max_retries::${t.maxRetries}`);
    lines.push(`${n}::added_via_api::true`);
    for (const h of c.hosts()) {
      const p = `${n}::${h.key}`;
      lines.push(`${p}::cx_active::${h.cxActive}`, `${p}::cx_connect_fail::${h.cxConnectFail}`, `${p}::cx_total::${h.cxTotal}`);
      lines.push(`${p}::rq_active::${h.rqActive}`, `${p}::rq_error::${h.rqError}`, `${p}::rq_success::${h.rqSuccess}`);
      lines.push(`${p}::rq_timeout::${h.rqTimeout}`, `${p}::rq_total::${h.rqTotal}`);
      lines.push(`${p}::hostname::${h.hostname}`, `${p}::health_flags::${h.healthFlags()}`, `${p}::weight::${h.weight}`);
      lines.push(`${p}::region::${h.locality.region}`, `${p}::zone::${h.locality.zone}`, `${p}::sub_zone::${h.locality.subZone}`);
      lines.push(`${p}::canary::false`, `${p}::priority::${h.priority}`, `${p}::success_rate::-1`, `${p}::local_origin_success_rate::-1`);
    }
  }
  return lines.map((l) => `${l}\n`).join('');
}

function listenersOut(listeners: ListenerManager, json: boolean): string {
  const ls = [...listeners.all()];
  if (json) {
    return JSON.stringify({
      listener_statuses: ls.map((l) => ({ name: l.name, local_address: { socket_address: { address: l.model.address, port_value: l.boundPort } } })),
    });
  }
  return ls.map((l) => `${l.name}::${l.model.address}:${l.boundPort}\n`).join('');
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startAdminServer(src: AdminSource, host: string, port: number, logger: Logger): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const q = url.searchParams;
    const json = q.get('format') === 'json';
    try {
      switch (url.pathname) {
        case '/ready': {
          const state = src.state();
          send(res, state === 'LIVE' ? 200 : 503, `${state}\n`);
          return;
        }
        case '/server_info':
          send(res, 200, JSON.stringify(src.serverInfo(), null, 2), 'application/json');
          return;
        case '/stats': {
          const f = q.get('filter');
          send(res, 200, statsText(src, f ? new RegExp(f) : undefined, json, q.has('usedonly')), json ? 'application/json' : undefined);
          return;
        }
        case '/clusters':
          if (json) send(res, 200, JSON.stringify(clustersJson(src.clusters), null, 2), 'application/json');
          else send(res, 200, clustersText(src.clusters));
          return;
        case '/config_dump':
          send(res, 200, JSON.stringify(src.configDump(q.has('include_eds')), null, 2), 'application/json');
          return;
        case '/listeners':
          send(res, 200, listenersOut(src.listeners, json), json ? 'application/json' : undefined);
          return;
        case '/quitquitquit':
          if (req.method !== 'POST') {
            send(res, 405, 'use POST\n');
            return;
          }
          send(res, 200, 'OK\n');
          src.quit();
          return;
        case '/':
          send(res, 200, ['/ready', '/stats', '/clusters', '/config_dump', '/listeners', '/server_info', '/quitquitquit (POST)'].join('\n') + '\n');
          return;
        default:
          send(res, 404, 'invalid path. admin commands are: / /ready /stats /clusters /config_dump /listeners /server_info /quitquitquit\n');
      }
    } catch (err) {
      send(res, 400, `${(err as Error).message}\n`);
    }
  });
  const bound = await bindHttpServer(server, host, port, logger.child({ component: 'admin' }));
  return {
    port: bound,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
