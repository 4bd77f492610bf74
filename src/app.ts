/**
 * `serve`: wires the stages together. Sources (config file or Consul KV, Consul health) feed the
 * publisher, which translates and publishes snapshots to the cache; the xDS server streams them
 * to Envoy, proxyless gRPC clients and our own data plane. Side duties (admin, ALS) only read
 * from the cache and the stream registry.
 */
import { ConfigFileSource } from './sources/config-file.js';
import { Publisher } from './pipeline/publisher.js';
import { SnapshotCache } from './cache/snapshot-cache.js';
import { createXdsServer, type XdsServer } from './server/index.js';
import { createLogger, type Logger } from './log.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface ServeOptions {
  /** File mode: the YAML config to serve and watch. */
  readonly configFile?: string;
  /** xDS (ADS + per-type SotW services). Default 127.0.0.1:9000 as in seed 001. */
  readonly xds?: Endpoint;
  readonly logger?: Logger;
  /** Coalescing window for changes, in ms. */
  readonly coalesceMs?: number;
}

export interface RunningApp {
  readonly xdsPort: number;
  readonly cache: SnapshotCache;
  readonly publisher: Publisher;
  readonly xdsServer: XdsServer;
  close(): Promise<void>;
}

export const DEFAULT_XDS: Endpoint = Object.freeze({ host: '127.0.0.1', port: 9000 });

export async function serve(opts: ServeOptions): Promise<RunningApp> {
  const logger = opts.logger ?? createLogger();
  const cache = new SnapshotCache();
  const publisher = new Publisher({ cache, logger, coalesceMs: opts.coalesceMs });
  const closers: Array<() => unknown> = [() => publisher.close()];

  if (!opts.configFile) throw new Error('serve: a config source is required (--config FILE)');
  const source = new ConfigFileSource(opts.configFile, {
    onConfig: (config, origin) => publisher.setConfig(config, origin),
    onError: (err) => logger.error({ code: (err as { code?: string }).code, err: err.message }, 'config refused; last good snapshot keeps serving'),
  });
  const first = await source.start();
  closers.push(() => source.close());
  publisher.setConfig(first, opts.configFile);
  if (!publisher.flush()) {
    source.close();
    throw new Error(publisher.status().lastError?.message ?? 'first snapshot could not be built');
  }

  const xds = opts.xds ?? DEFAULT_XDS;
  const xdsServer = createXdsServer({ cache, logger });
  const xdsPort = await xdsServer.listen(xds.host, xds.port);
  logger.info({ xds: `${xds.host}:${xdsPort}` }, 'xDS server listening');

  return {
    xdsPort,
    cache,
    publisher,
    xdsServer,
    async close() {
      for (const c of closers.reverse()) await c();
      await xdsServer.close();
    },
  };
}
