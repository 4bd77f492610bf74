/**
 * Runs our TypeScript data plane (`consul-xds proxy`) for integration tests, in this process.
 * In: the xDS port of a control plane on 127.0.0.1 and a node id/cluster. Out: a handle shaped
 * like the real-Envoy one (test/support/envoy.ts): admin URL, readers for /config_dump,
 * /clusters?format=json and /stats, a deadline poll, stop(); plus the running proxy itself for
 * bound listener ports.
 */
import { startProxy, type RunningProxy } from '../../src/proxy/server.js';
import { nodeModel } from '../../src/proxy/config/bootstrap.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { parseHosts, parseStats, type ConfigDump, type EnvoyHost } from './envoy.js';
import { waitUntil, type WaitOptions } from './tmp.js';

export interface StartDataplaneOptions {
  readonly xdsPort: number;
  readonly nodeId: string;
  readonly nodeCluster: string;
  readonly locality?: { region?: string; zone?: string };
  readonly logger?: Logger;
  /** Does-not-exist timeout for EDS/RDS names (default 15 s). */
  readonly doesNotExistMs?: number;
  readonly drainTimeMs?: number;
  /** Reconnect back-off (tests restarting the control plane want it short). */
  readonly backoff?: { baseMs: number; maxMs: number };
  /** Admin port (default: any free one). */
  readonly adminPort?: number;
}

export interface DataplaneHandle {
  readonly proxy: RunningProxy;
  readonly adminUrl: string;
  readonly adminPort: number;
  admin(path: string): Promise<string>;
  configDump(): Promise<ConfigDump>;
  clusters(): Promise<EnvoyHost[]>;
  stats(filter: string): Promise<Map<string, number>>;
  waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, opts: WaitOptions): Promise<T>;
  stop(): Promise<void>;
}

export async function startDataplane(opts: StartDataplaneOptions): Promise<DataplaneHandle> {
  const proxy = await startProxy({
    bootstrap: {
      xds: { host: '127.0.0.1', port: opts.xdsPort },
      node: nodeModel(opts.nodeId, opts.nodeCluster, opts.locality ?? {}),
      admin: { host: '127.0.0.1', port: opts.adminPort ?? 0 },
    },
    logger: opts.logger ?? silentLogger,
    drainTimeMs: opts.drainTimeMs ?? 1000,
    ...(opts.doesNotExistMs !== undefined ? { doesNotExistMs: opts.doesNotExistMs } : {}),
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
  });
  const adminUrl = `http://127.0.0.1:${proxy.adminPort ?? 0}`;
  const admin = async (path: string): Promise<string> => {
    const res = await fetch(`${adminUrl}${path}`);
    const body = await res.text();
    if (!res.ok) throw new Error(`proxy admin ${path}: HTTP ${res.status}: ${body.slice(0, 200)}`);
    return body;
  };
  let stopped = false;
  return {
    proxy,
    adminUrl,
    adminPort: proxy.adminPort ?? 0,
    admin,
    configDump: async () => JSON.parse(await admin('/config_dump?include_eds')) as ConfigDump,
    clusters: async () => parseHosts(await admin('/clusters?format=json')),
    stats: async (filter) => parseStats(await admin(`/stats?filter=${encodeURIComponent(filter)}`)),
    waitFor: (probe, waitOpts) =>
      waitUntil(probe, {
        ...waitOpts,
        context: async () =>
          `${waitOpts.context ? `${await waitOpts.context()}\n` : ''}proxy state ${proxy.state()}; xDS ${JSON.stringify(proxy.xds.status())}`,
      }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await proxy.close();
    },
  };
}
