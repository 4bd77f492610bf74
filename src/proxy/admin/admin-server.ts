/**
 * The proxy's admin port, Envoy-compatible where tools look: `/ready` (200 LIVE once the first
 * config is applied, 503 with the state otherwise), `/stats` (`name: value` lines, `?filter=`
 * regex, `?format=json`), `/clusters` (text or `?format=json` with host health flags, weights,
 * localities), `/config_dump` (`?include_eds`), `/listeners`, `/server_info`, and POST
 * `/quitquitquit`. In: an AdminSource. Out: an HTTP server on the admin address. Routing, errors
 * and replies follow the convention both admin servers share (common/admin-http.ts).
 */
import type { Logger } from '../../log.js';
import { AdminHttpServer, BadRequestError, JSON_TYPE, reply, type Route } from '../../common/admin-http.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { ListenerManager } from '../listener/listener-manager.js';
import type { StatEmitter } from '../stats.js';
import { RE2JS } from 're2js';

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

/**
 * What the admin endpoints read: one process's proxy (localView), or with --concurrency > 1 the
 * primary's view, which asks the workers and sums (proxy/workers/primary.ts).
 */
export interface AdminView {
  state(): ServerState;
  statRows(): Array<[string, number]> | Promise<Array<[string, number]>>;
  clustersOut(json: boolean): string | Promise<string>;
  listenersOut(json: boolean): string | Promise<string>;
  configDump(includeEds: boolean): unknown;
  serverInfo(): unknown;
  quit(): void;
}

/** Every stat of `src` as [name, value] rows. */
export function statRows(collect: (emit: StatEmitter) => void): Array<[string, number]> {
  const rows: Array<[string, number]> = [];
  collect((name, value) => rows.push([name, value]));
  return rows;
}

export function localView(src: AdminSource): AdminView {
  return {
    state: () => src.state(),
    statRows: () => statRows((emit) => src.collectStats(emit)),
    clustersOut: (json) => renderClusters(src.clusters, json),
    listenersOut: (json) => listenersOut(src.listeners, json),
    configDump: (includeEds) => src.configDump(includeEds),
    serverInfo: () => src.serverInfo(),
    quit: () => src.quit(),
  };
}

function statsText(all: Array<[string, number]>, filter: RE2JS | undefined, json: boolean, usedOnly: boolean): string {
  const rows = all.filter(([name, value]) => !(filter && !filter.matcher(name).find()) && !(usedOnly && value === 0));
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
          locality: {
            ...(h.locality.region ? { region: h.locality.region } : {}),
            ...(h.locality.zone ? { zone: h.locality.zone } : {}),
            ...(h.locality.subZone ? { sub_zone: h.locality.subZone } : {}),
          },
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

/** /clusters, text or JSON. */
export function renderClusters(clusters: ClusterManager, json: boolean): string {
  return json ? JSON.stringify(clustersJson(clusters), null, 2) : clustersText(clusters);
}

/** /listeners, text or JSON. */
export function listenersOut(listeners: ListenerManager, json: boolean): string {
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

/**
 * A `?filter=` regex, RE2 as Envoy's admin uses (re2js, as our route matchers and CSDS): linear in
 * the stat name, so no pattern stalls the proxy's event loop. One that does not compile is the
 * client's error (400), as in Envoy.
 */
function filterOf(q: URLSearchParams): RE2JS | undefined {
  const f = q.get('filter');
  if (!f) return undefined;
  try {
    return RE2JS.compile(f);
  } catch (err) {
    throw new BadRequestError(`filter: ${(err as Error).message}`);
  }
}

export async function startAdminServer(source: AdminSource | AdminView, host: string, port: number, logger: Logger): Promise<AdminServer> {
  const src = 'statRows' in source ? source : localView(source);
  const json = (q: URLSearchParams): boolean => q.get('format') === 'json';
  const typeOf = (q: URLSearchParams): string | undefined => (json(q) ? JSON_TYPE : undefined);
  // Envoy's admin takes any method on an endpoint that only reads; /quitquitquit wants POST.
  const read = (handle: Route['handle']): Route => ({ methods: '*', handle });
  const routes = new Map<string, Route>([
    [
      '/ready',
      read(() => {
        const state = src.state();
        return reply(`${state}\n`, undefined, state === 'LIVE' ? 200 : 503);
      }),
    ],
    ['/server_info', read(() => reply(JSON.stringify(src.serverInfo(), null, 2), JSON_TYPE))],
    [
      '/stats',
      read(async ({ searchParams: q }) => {
        const filter = filterOf(q);
        return reply(statsText(await src.statRows(), filter, json(q), q.has('usedonly')), typeOf(q));
      }),
    ],
    ['/clusters', read(async ({ searchParams: q }) => reply(await src.clustersOut(json(q)), typeOf(q)))],
    ['/config_dump', read(async ({ searchParams: q }) => reply(JSON.stringify(await src.configDump(q.has('include_eds')), null, 2), JSON_TYPE))],
    ['/listeners', read(async ({ searchParams: q }) => reply(await src.listenersOut(json(q)), typeOf(q)))],
    [
      '/quitquitquit',
      {
        methods: ['POST'],
        handle: () => {
          // After the reply is written (the server writes it once this handler has returned).
          setImmediate(() => src.quit());
          return reply('OK\n');
        },
      },
    ],
    ['/', read(() => reply(`${['/ready', '/stats', '/clusters', '/config_dump', '/listeners', '/server_info', '/quitquitquit (POST)'].join('\n')}\n`))],
  ]);
  const server = new AdminHttpServer(routes, logger.child({ component: 'admin' }));
  return { port: await server.listen(host, port), close: () => server.close() };
}
