/**
 * Runs a real Envoy for integration tests. In: the xDS port of a control plane on 127.0.0.1, a node
 * id/cluster, optionally an access-log (ALS) gRPC port. Out: a handle with the admin URL, readers
 * for /config_dump, /clusters and /stats, a deadline poll that reports Envoy's log on failure, and
 * stop().
 *
 * The bootstrap is ADS-only (as in docs/sidecar.md, "Envoy bootstrap"): everything but the control-plane cluster
 * comes over xDS, so what Envoy does is what our server told it. Admin binds port 0 and Envoy
 * writes the port it took to --admin-address-path; --use-dynamic-base-id keeps parallel Envoys
 * from fighting over hot-restart shared memory. `xdsTls`/`alsTls` make the bootstrap's clusters dial
 * over TLS (the UpstreamTlsContext translate writes for the access-log sink).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GiveUp, makeTempDir, waitUntil, type WaitOptions } from './tmp.js';
import type { UpstreamTlsConfig } from '../../src/config/schema.js';
import { upstreamTlsSocket } from '../../src/translate/upstream-tls.js';

export interface StartEnvoyOptions {
  /** Port of the ADS server on 127.0.0.1. */
  readonly xdsPort: number;
  readonly nodeId: string;
  readonly nodeCluster: string;
  /** When set, a static `als_cluster` (HTTP/2) to 127.0.0.1:alsPort is added for access logs. */
  readonly alsPort?: number;
  /** Envoy's log level; `info` by default (debug floods the log file on a 2-core box). */
  readonly logLevel?: string;
  /** Worker threads (`--concurrency`); default 1. */
  readonly concurrency?: number;
  /** Extra node metadata, e.g. to select listeners per node. */
  readonly nodeMetadata?: Readonly<Record<string, unknown>>;
  /** `ads_config.api_type`: GRPC (State of the World, the default) or DELTA_GRPC (incremental). */
  readonly apiType?: 'GRPC' | 'DELTA_GRPC';
  /** Dial the xDS server over TLS (CA, optional client cert+key for mTLS, optional SNI). */
  readonly xdsTls?: UpstreamTlsConfig;
  /** Dial the static `als_cluster` over TLS. */
  readonly alsTls?: UpstreamTlsConfig;
}

/** One host as Envoy's `/clusters?format=json` reports it, flattened for assertions. */
export interface EnvoyHost {
  readonly cluster: string;
  readonly address: string;
  readonly port: number;
  /** Envoy's health flags set to true, e.g. `failed_active_health_check`; empty when the host is healthy. */
  readonly failedFlags: readonly string[];
  readonly edsHealth?: string;
  readonly weight?: number;
  readonly zone?: string;
  readonly region?: string;
}

export interface EnvoyHandle {
  readonly adminUrl: string;
  readonly adminPort: number;
  readonly pid: number;
  /** File holding Envoy's stdout+stderr. */
  readonly logFile: string;
  /** GET an admin path and return the body (throws on a non-2xx answer). */
  admin(path: string): Promise<string>;
  /** /config_dump?include_eds as parsed JSON. */
  configDump(): Promise<ConfigDump>;
  /** Hosts of every cluster, from /clusters?format=json. */
  clusters(): Promise<EnvoyHost[]>;
  /** Counter/gauge values whose names match `filter` (a regex, as /stats?filter= takes it). */
  stats(filter: string): Promise<Map<string, number>>;
  /** Polls `probe` with a deadline; on timeout the error carries the tail of Envoy's log. */
  waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, opts: WaitOptions): Promise<T>;
  /** The last `lines` lines of Envoy's log. */
  logTail(lines?: number): Promise<string>;
  /** Stops Envoy (SIGTERM, then SIGKILL) and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** The parts of /config_dump the tests read; the rest stays `unknown`. */
export interface ConfigDump {
  readonly configs: ReadonlyArray<{ readonly '@type': string } & Record<string, unknown>>;
}

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

let cachedBin: Promise<string> | undefined;

/** ENVOY_BIN, or whatever scripts/install-envoy.sh installs (and caches) and prints. */
export function envoyBinary(): Promise<string> {
  const fromEnv = process.env.ENVOY_BIN;
  if (fromEnv) return Promise.resolve(fromEnv);
  cachedBin ??= execFileAsync('bash', [join(repoRoot, 'scripts/install-envoy.sh')], {
    maxBuffer: 1 << 20,
  }).then(({ stdout }) => {
    const bin = stdout.trim();
    if (!bin) throw new Error('scripts/install-envoy.sh printed no binary path');
    return bin;
  });
  return cachedBin;
}

/** An HTTP/2 STATIC cluster to 127.0.0.1:port, the shape Envoy needs for a gRPC service; over TLS with `tls`. */
function grpcCluster(name: string, port: number, tls?: UpstreamTlsConfig): Record<string, unknown> {
  return {
    ...(tls !== undefined ? { transport_socket: upstreamTlsSocket(tls) } : {}),
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };
}

/** The ADS bootstrap as a plain object (JSON is valid YAML, so Envoy reads it as-is). */
export function adsBootstrap(opts: StartEnvoyOptions): Record<string, unknown> {
  const clusters = [grpcCluster('xds_cluster', opts.xdsPort, opts.xdsTls)];
  if (opts.alsPort !== undefined) clusters.push(grpcCluster('als_cluster', opts.alsPort, opts.alsTls));
  return {
    node: { id: opts.nodeId, cluster: opts.nodeCluster, ...(opts.nodeMetadata ? { metadata: opts.nodeMetadata } : {}) },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    dynamic_resources: {
      ads_config: {
        api_type: opts.apiType ?? 'GRPC',
        transport_api_version: 'V3',
        // Short reconnect backoff: a test that restarts the control plane should not wait
        // Envoy's default (up to 30 s) before the stream comes back.
        grpc_services: [
          {
            envoy_grpc: {
              cluster_name: 'xds_cluster',
              retry_policy: { retry_back_off: { base_interval: '0.1s', max_interval: '1s' } },
            },
          },
        ],
      },
      cds_config: { resource_api_version: 'V3', ads: {} },
      lds_config: { resource_api_version: 'V3', ads: {} },
    },
    static_resources: { clusters },
  };
}

/** Envoy's `/clusters?format=json` (our proxy serves the same shape), flattened to hosts. */
export function parseHosts(body: string): EnvoyHost[] {
  interface HostJson {
    address?: { socket_address?: { address?: string; port_value?: number } };
    health_status?: Record<string, unknown> & { eds_health_status?: string };
    weight?: number;
    locality?: { zone?: string; region?: string };
  }
  const parsed = JSON.parse(body) as { cluster_statuses?: Array<{ name: string; host_statuses?: HostJson[] }> };
  const hosts: EnvoyHost[] = [];
  for (const c of parsed.cluster_statuses ?? []) {
    for (const h of c.host_statuses ?? []) {
      const health = h.health_status ?? {};
      const failedFlags = Object.entries(health)
        .filter(([k, v]) => k !== 'eds_health_status' && v === true)
        .map(([k]) => k);
      hosts.push({
        cluster: c.name,
        address: h.address?.socket_address?.address ?? '',
        port: h.address?.socket_address?.port_value ?? 0,
        failedFlags,
        ...(health.eds_health_status !== undefined ? { edsHealth: health.eds_health_status } : {}),
        ...(h.weight !== undefined ? { weight: h.weight } : {}),
        ...(h.locality?.zone !== undefined ? { zone: h.locality.zone } : {}),
        ...(h.locality?.region !== undefined ? { region: h.locality.region } : {}),
      });
    }
  }
  return hosts;
}

/** Envoy's text `/stats` (`name: value` lines) as a map. */
export function parseStats(body: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    const m = /^([^:]+): (-?\d+(?:\.\d+)?)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(m[1], Number(m[2]));
  }
  return out;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

export async function startEnvoy(opts: StartEnvoyOptions): Promise<EnvoyHandle> {
  const bin = await envoyBinary();
  const dir = await makeTempDir(`envoy-${opts.nodeId}`);
  const bootstrapPath = join(dir.path, 'bootstrap.json');
  const adminPath = join(dir.path, 'admin-address');
  const logFile = join(dir.path, 'envoy.log');
  await writeFile(bootstrapPath, JSON.stringify(adsBootstrap(opts), null, 2));

  const logFd = openSync(logFile, 'a');
  const child = spawn(
    bin,
    [
      '-c',
      bootstrapPath,
      '--admin-address-path',
      adminPath,
      '--concurrency',
      String(opts.concurrency ?? 1),
      '--use-dynamic-base-id',
      '--log-level',
      opts.logLevel ?? 'info',
      // Short drain so stop() and listener updates are quick in tests.
      '--drain-time-s',
      '1',
      '--parent-shutdown-time-s',
      '2',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));

  const logTail = async (lines = 40): Promise<string> => {
    const text = await readFile(logFile, 'utf8').catch(() => '');
    // Skip the startup banner (extension and header-map listings): long and never the cause.
    const useful = text.split('\n').filter((l) => !/\[source\/server\/server\.cc:\d+\] {3}/.test(l));
    return `--- last ${lines} lines of ${logFile} ---\n${useful.slice(-lines - 1).join('\n')}`;
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited(child);
      clearTimeout(killer);
    }
    await dir.remove();
  };

  let adminUrl: string;
  try {
    const address = await waitUntil(
      async () => {
        if (spawnError) throw new GiveUp(`could not start ${bin}: ${spawnError.message}`);
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new GiveUp(`Envoy exited early (code ${child.exitCode}, signal ${child.signalCode})`);
        }
        const text = (await readFile(adminPath, 'utf8').catch(() => '')).trim();
        return text.length > 0 ? text : undefined;
      },
      { what: `Envoy (node ${opts.nodeId}) to write its admin address`, timeoutMs: 20_000, context: () => logTail() },
    );
    adminUrl = `http://${address}`;
    await waitUntil(
      async () => {
        if (child.exitCode !== null) throw new GiveUp(`Envoy exited (code ${child.exitCode})`);
        const res = await fetch(`${adminUrl}/server_info`);
        await res.arrayBuffer();
        return res.ok;
      },
      { what: `Envoy admin at ${adminUrl} to answer`, timeoutMs: 20_000, context: () => logTail() },
    );
  } catch (err) {
    const tail = await logTail();
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tail}`);
  }

  const admin = async (path: string): Promise<string> => {
    const res = await fetch(`${adminUrl}${path}`);
    const body = await res.text();
    if (!res.ok) throw new Error(`Envoy admin ${path}: HTTP ${res.status}: ${body.slice(0, 200)}`);
    return body;
  };

  return {
    adminUrl,
    adminPort: Number(new URL(adminUrl).port),
    pid: child.pid ?? -1,
    logFile,
    admin,
    configDump: async () => JSON.parse(await admin('/config_dump?include_eds')) as ConfigDump,
    clusters: async () => parseHosts(await admin('/clusters?format=json')),
    stats: async (filter) => parseStats(await admin(`/stats?filter=${encodeURIComponent(filter)}`)),
    waitFor: (probe, waitOpts) =>
      waitUntil(probe, {
        ...waitOpts,
        context: async () => `${waitOpts.context ? `${await waitOpts.context()}\n` : ''}${await logTail()}`,
      }),
    logTail,
    stop,
  };
}

// ---- reading a /config_dump ----

type Json = Record<string, unknown>;

function section(dump: ConfigDump, typeSuffix: string): Json {
  // Exact suffix after the package dot: ScopedRoutesConfigDump must not match RoutesConfigDump.
  return (dump.configs.find((c) => c['@type'].endsWith(`.${typeSuffix}`)) ?? {}) as Json;
}

function list(value: unknown): Json[] {
  return Array.isArray(value) ? (value as Json[]) : [];
}

/** Version Envoy accepted per dynamic resource name, by type: what the control plane last got ACKed. */
export function dynamicVersions(dump: ConfigDump): {
  clusters: Record<string, string>;
  listeners: Record<string, string>;
  routes: Record<string, string>;
} {
  const clusters: Record<string, string> = {};
  for (const c of list(section(dump, 'ClustersConfigDump').dynamic_active_clusters)) {
    const name = (c.cluster as Json | undefined)?.name;
    if (typeof name === 'string') clusters[name] = String(c.version_info ?? '');
  }
  const listeners: Record<string, string> = {};
  for (const l of list(section(dump, 'ListenersConfigDump').dynamic_listeners)) {
    const active = l.active_state as Json | undefined;
    if (typeof l.name === 'string' && active) listeners[l.name] = String(active.version_info ?? '');
  }
  const routes: Record<string, string> = {};
  for (const r of list(section(dump, 'RoutesConfigDump').dynamic_route_configs)) {
    const name = (r.route_config as Json | undefined)?.name;
    if (typeof name === 'string') routes[name] = String(r.version_info ?? '');
  }
  return { clusters, listeners, routes };
}

/**
 * Where Envoy's active routes send `prefix`: cluster name -> weight (a plain `cluster` route
 * counts as weight 1). Undefined when no dynamic route matches that prefix.
 */
export function routeTargets(dump: ConfigDump, prefix: string): Map<string, number> | undefined {
  for (const rc of list(section(dump, 'RoutesConfigDump').dynamic_route_configs)) {
    for (const vh of list((rc.route_config as Json | undefined)?.virtual_hosts)) {
      for (const r of list(vh.routes)) {
        if ((r.match as Json | undefined)?.prefix !== prefix) continue;
        const action = (r.route ?? {}) as Json;
        if (typeof action.cluster === 'string') return new Map([[action.cluster, 1]]);
        const weighted = action.weighted_clusters as Json | undefined;
        if (weighted) return new Map(list(weighted.clusters).map((c) => [String(c.name), Number(c.weight ?? 0)]));
      }
    }
  }
  return undefined;
}
