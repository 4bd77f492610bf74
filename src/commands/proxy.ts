/**
 * `consul-xds proxy`: run the TypeScript data plane until SIGINT/SIGTERM (or POST /quitquitquit;
 * signals and fatal errors: lifecycle.ts).
 * In: argv (--xds HOST:PORT --node-id ID --node-cluster NAME [--locality region/zone]
 * [--admin-port N], or --bootstrap FILE in Envoy's format). Out: an exit code.
 *
 * SIGTERM/SIGINT drain first (listeners closed, open requests finish within --drain-time-s), so
 * a rolling restart costs no request; /quitquitquit closes at once (as Envoy's does), and so does
 * a second signal (lifecycle.ts: exit 1). SIGUSR1 reopens the file access logs (as Envoy's).
 */
import { createLogger } from '../log.js';
import { ConsulXdsError, ListenError } from '../errors.js';
import { logLevelOption, parseCommandArgs, portOption } from './args.js';
import { installLifecycle } from './lifecycle.js';
import { nodeModel, parseHostPort, parseLocality, readBootstrapFile, type Bootstrap } from '../proxy/config/bootstrap.js';
import { startProxy } from '../proxy/server.js';
import { defaultMaxDownstreamConnections, openFileLimit } from '../proxy/listener/fd-limit.js';
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { startPrimary, type RunningPrimary } from '../proxy/workers/primary.js';
import { runWorker } from '../proxy/workers/worker.js';
import { WORKER_INDEX_ENV } from '../proxy/workers/messages.js';
import { workerShare } from '../proxy/workers/share.js';

/** The CLI script workers run (`cli.js proxy <the same flags>`), however this process was started. */
const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

/** stop() reason of POST /quitquitquit: close at once, no drain (Envoy's behaviour). */
const QUIT = 'quitquitquit';

const USAGE = `Usage: consul-xds proxy (--xds HOST:PORT --node-id ID --node-cluster NAME | --bootstrap FILE) [options]

A small xDS-driven HTTP/TCP proxy: it takes listeners, routes, clusters and endpoints over ADS
(from consul-xds serve or any conforming control plane) and serves them like Envoy would.

Control plane and identity:
  --xds HOST:PORT           ADS server (state of the world)
  --node-id ID              node.id sent to the control plane
  --node-cluster NAME       node.cluster sent to the control plane
  --locality REGION/ZONE    node.locality (optional; REGION/ZONE/SUB_ZONE also accepted)
  --bootstrap FILE          Envoy-style bootstrap (node, admin, ads_config + xDS cluster) instead;
                            ads_config.api_type DELTA_GRPC speaks incremental (delta) xDS
Admin:
  --admin-host HOST         admin address (default 127.0.0.1)
  --admin-port N            admin port: /ready /stats /clusters /config_dump (default 9901; 0 = any)
  --no-admin                run without the admin server
Behaviour:
  --drain-time-s N          how long open connections may finish when their listener is removed,
                            or on SIGTERM/SIGINT before the proxy closes the rest and exits (default 10)
  --max-downstream-connections N
                            open client connections across all listeners; one more is closed at
                            accept and counted in listener.<addr>_<port>.downstream_global_cx_overflow
                            (default 20000, or about half the open-file limit if that is lower; 0 = no cap)
  --concurrency N           worker processes sharing the listeners, as Envoy's worker threads; one
                            ADS stream and one admin server for all, health checks run once
                            (default: the number of cores; 1 = a single process, no workers);
                            each worker enforces its share of the circuit breakers, connection_limit
                            and --max-downstream-connections, so their sum is the configured limit
  --log-level LEVEL         trace|debug|info|warn|error|fatal|silent (default info)
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    'proxy',
    argv,
    {
      xds: { type: 'string' },
      'node-id': { type: 'string' },
      'node-cluster': { type: 'string' },
      locality: { type: 'string' },
      bootstrap: { type: 'string' },
      'admin-host': { type: 'string' },
      'admin-port': { type: 'string' },
      'no-admin': { type: 'boolean' },
      'drain-time-s': { type: 'string' },
      'max-downstream-connections': { type: 'string' },
      'log-level': { type: 'string' },
      concurrency: { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let bootstrap: Bootstrap;
  if (values.bootstrap) {
    if (values.xds || values['node-id'] || values['node-cluster']) {
      throw new ConsulXdsError('CXDS_USAGE', `proxy: --bootstrap replaces --xds/--node-id/--node-cluster; give one or the other\n\n${USAGE}`);
    }
    bootstrap = readBootstrapFile(values.bootstrap);
  } else {
    const missing = (['xds', 'node-id', 'node-cluster'] as const).filter((k) => !values[k]);
    if (missing.length > 0) throw new ConsulXdsError('CXDS_USAGE', `proxy: missing ${missing.map((m) => `--${m}`).join(', ')}\n\n${USAGE}`);
    bootstrap = {
      xds: parseHostPort('xds', values.xds as string),
      xdsTls: undefined,
      node: nodeModel(values['node-id'] as string, values['node-cluster'] as string, values.locality ? parseLocality(values.locality) : {}),
      admin: undefined,
    };
  }
  if (values['no-admin']) bootstrap = { ...bootstrap, admin: undefined };
  else if (values['admin-port'] !== undefined || values['admin-host'] !== undefined || !bootstrap.admin) {
    bootstrap = {
      ...bootstrap,
      admin: {
        host: values['admin-host'] ?? bootstrap.admin?.host ?? '127.0.0.1',
        port: portOption('admin-port', values['admin-port'], bootstrap.admin?.port ?? 9901),
      },
    };
  }
  const drainS = values['drain-time-s'] === undefined ? 10 : Number(values['drain-time-s']);
  if (!Number.isFinite(drainS) || drainS < 0) throw new ConsulXdsError('CXDS_USAGE', `--drain-time-s: expected seconds >= 0, got '${values['drain-time-s']}'`);

  const fdLimit = openFileLimit();
  const capFlag = values['max-downstream-connections'];
  const maxConns = capFlag === undefined ? defaultMaxDownstreamConnections(fdLimit) : Number(capFlag);
  if (!Number.isInteger(maxConns) || maxConns < 0)
    throw new ConsulXdsError('CXDS_USAGE', `--max-downstream-connections: expected a whole number >= 0, got '${capFlag}'`);

  const concurrencyFlag = values.concurrency;
  const concurrency = concurrencyFlag === undefined ? availableParallelism() : Number(concurrencyFlag);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new ConsulXdsError('CXDS_USAGE', `--concurrency: expected a whole number >= 1, got '${concurrencyFlag}'`);

  const logger = createLogger({ level: logLevelOption(values['log-level']) });
  if (cluster.isWorker) {
    // A forked worker (proxy/workers/primary.ts): same flags, its share of the connection cap; the primary handles signals.
    const index = Number(process.env[WORKER_INDEX_ENV] ?? 0);
    const perWorker = workerShare(maxConns, index, concurrency);
    await runWorker({ bootstrap, logger, drainTimeMs: drainS * 1000, maxDownstreamConnections: perWorker }, index, concurrency);
    return new Promise<number>(() => undefined);
  }
  if (fdLimit !== undefined && (maxConns === 0 || maxConns * 2 > fdLimit)) {
    logger.warn(
      { maxDownstreamConnections: maxConns, openFileLimit: fdLimit },
      'the connection cap does not keep the proxy below its open-file limit: past it, accepts and upstream connects fail (EMFILE)',
    );
  }
  let running: RunningPrimary | undefined;
  const life = installLifecycle(logger, {
    onUser1: async () => {
      logger.info({ signal: 'SIGUSR1' }, 'SIGUSR1: reopening access logs');
      await running?.reopenAccessLogs();
    },
  });
  const proxyOpts = { bootstrap, logger, drainTimeMs: drainS * 1000, maxDownstreamConnections: maxConns, onQuit: () => life.stop(QUIT) };
  const start = (): Promise<RunningPrimary> =>
    concurrency === 1 ? startProxy(proxyOpts) : startPrimary(proxyOpts, concurrency, { script: CLI, args: ['proxy', ...argv] });
  const proxy = await start().catch((err: unknown) => {
    throw err instanceof ListenError ? new ConsulXdsError(err.code, `--admin-port / --admin-host (or --no-admin): ${err.message}`, { cause: err }) : err;
  });
  running = proxy;
  life.up();
  process.stderr.write(
    `consul-xds proxy: ${concurrency} worker${concurrency === 1 ? '' : 's'}, node ${bootstrap.node.id} (cluster ${bootstrap.node.cluster}) <- ADS${bootstrap.apiType === 'DELTA_GRPC' ? ' (delta)' : ''} ${bootstrap.xds.host}:${bootstrap.xds.port}` +
      (proxy.adminPort !== undefined ? `; admin http://${bootstrap.admin?.host}:${proxy.adminPort}/ready\n` : '\n'),
  );
  const reason = await life.stopped;
  if (reason !== QUIT) {
    logger.info({ signal: reason, drainTimeS: drainS }, 'draining: listeners closed, open requests may finish');
    await proxy.drain();
  }
  logger.info({ signal: reason }, 'shutting down');
  await proxy.close();
  logger.flush();
  return 0;
}
