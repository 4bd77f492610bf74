/**
 * `consul-xds serve`: run the control plane until SIGINT/SIGTERM (SIGHUP reopens the access-log
 * file; signals and fatal errors: lifecycle.ts). Prints what it serves and how to point Envoy at it.
 */
import { serve, DEFAULT_XDS } from '../app.js';
import { createLogger } from '../log.js';
import { TYPE_SHORT, TYPE_ORDER } from '../xds/resource-types.js';
import { ConsulXdsError, ListenError } from '../errors.js';
import { checkConfigText } from '../pipeline/build.js';
import { readConfigFile } from '../sources/config-file.js';
import { CONFIG_MAX_BYTES_FLAG, CONFIG_MAX_BYTES_USAGE, configMaxBytesOption, logLevelOption, parseCommandArgs, portOption } from './args.js';
import { installLifecycle } from './lifecycle.js';
import { CONSUL_FLAGS, CONSUL_USAGE, consulOptions, wantsConsul } from './consul-flags.js';

const USAGE = `Usage: consul-xds serve (--config FILE | --consul URL --consul-key KEY) [options]

Source:
  --config FILE             YAML config to serve (watched: a saved edit is pushed within a second)
${CONFIG_MAX_BYTES_USAGE}${CONSUL_USAGE}
Serving:
  --xds-host HOST           xDS listen address (default ${DEFAULT_XDS.host})
  --xds-port N              xDS listen port (default ${DEFAULT_XDS.port})
  --admin-host HOST         admin HTTP (health, status, metrics) address (default 127.0.0.1)
  --admin-port N            admin HTTP port (default 9002)
  --health-path PATH        path the load balancer checks (default /health)
  --maintenance-file FILE   while FILE exists, the health path answers 599 MAINTENANCE
  --watch-node ID           Envoy node id whose xDS state decides health (default: the node --envoy-admin
                            reports, else any connected client that is up to date)
  --envoy-admin URL         the local Envoy's admin: its /ready must say LIVE, its /server_info names
                            the node whose xDS state decides health
  --ack-grace-ms N          how long a node may run an older ACKed version before health fails (default 10000)
  --als-host HOST           Access Log Service sink address (default 127.0.0.1)
  --als-port N              Access Log Service sink port (default 9001)
  --access-log-file FILE    write access-log JSON lines to FILE (default stdout)
  --no-als                  run without the access-log sink
  --log-level LEVEL         trace|debug|info|warn|error|fatal|silent (default info)

Signals: SIGINT/SIGTERM shut down (exit 0); SIGHUP reopens --access-log-file (logrotate without
copytruncate); SIGUSR1 is ignored (no debugger port).
`;

/** The flags that move each server serve binds, named when its address is taken. */
const LISTEN_FLAGS: Readonly<Record<string, string>> = {
  xds: '--xds-port / --xds-host',
  admin: '--admin-port / --admin-host',
  als: '--als-port / --als-host (or --no-als)',
};

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    'serve',
    argv,
    {
      config: { type: 'string' },
      ...CONSUL_FLAGS,
      ...CONFIG_MAX_BYTES_FLAG,
      'xds-host': { type: 'string' },
      'xds-port': { type: 'string' },
      'admin-host': { type: 'string' },
      'admin-port': { type: 'string' },
      'health-path': { type: 'string' },
      'maintenance-file': { type: 'string' },
      'watch-node': { type: 'string' },
      'envoy-admin': { type: 'string' },
      'ack-grace-ms': { type: 'string' },
      'als-host': { type: 'string' },
      'als-port': { type: 'string' },
      'access-log-file': { type: 'string' },
      'no-als': { type: 'boolean' },
      'log-level': { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const consul = wantsConsul(values);
  if (!values.config === !consul) {
    throw new ConsulXdsError('CXDS_USAGE', `serve: give either --config FILE or --consul/--consul-key\n\n${USAGE}`);
  }
  const logger = createLogger({ level: logLevelOption(values['log-level']) });
  const limits = configMaxBytesOption(values['config-max-bytes']);
  // File mode: a bad config is refused before any port is bound (Consul mode reads KV after
  // the admin port is up, so /health can say what start-up waits for).
  if (values.config) checkConfigText(await readConfigFile(values.config, limits), values.config, limits);
  let reopenAccessLog: () => Promise<void> = async () => undefined; // nothing to reopen during start-up
  const life = installLifecycle(logger, { onHangup: () => reopenAccessLog() });
  const xdsHost = values['xds-host'] ?? DEFAULT_XDS.host;
  const app = await serve({
    ...(values.config ? { configFile: values.config } : { consul: consulOptions(values) }),
    configLimits: limits,
    xds: { host: xdsHost, port: portOption('xds-port', values['xds-port'], DEFAULT_XDS.port) },
    admin: {
      ...(values['admin-host'] !== undefined ? { host: values['admin-host'] } : {}),
      ...(values['admin-port'] !== undefined ? { port: portOption('admin-port', values['admin-port'], 0) } : {}),
      ...(values['health-path'] !== undefined ? { healthPath: values['health-path'] } : {}),
      ...(values['maintenance-file'] !== undefined ? { maintenanceFile: values['maintenance-file'] } : {}),
      ...(values['watch-node'] !== undefined ? { watchNode: values['watch-node'] } : {}),
      ...(values['envoy-admin'] !== undefined ? { envoyAdminUrl: values['envoy-admin'] } : {}),
      ...(values['ack-grace-ms'] !== undefined ? { graceMs: Number(values['ack-grace-ms']) } : {}),
    },
    als: values['no-als']
      ? false
      : {
          ...(values['als-host'] !== undefined ? { host: values['als-host'] } : {}),
          ...(values['als-port'] !== undefined ? { port: portOption('als-port', values['als-port'], 0) } : {}),
          ...(values['access-log-file'] !== undefined ? { file: values['access-log-file'] } : {}),
        },
    logger,
  }).catch((err: unknown) => {
    throw err instanceof ListenError ? new ConsulXdsError(err.code, `${LISTEN_FLAGS[err.endpoint] ?? err.endpoint}: ${err.message}`, { cause: err }) : err;
  });
  reopenAccessLog = async () => app.sidecar?.reopenAccessLog();
  life.up();

  const lines = [`consul-xds serving ${values.config ?? 'Consul KV'} on ${xdsHost}:${app.xdsPort} (ADS, state of the world)`];
  for (const [group, publisher] of app.publishers) {
    const snapshot = publisher.snapshot;
    if (!snapshot) continue;
    lines.push(`  node group '${group}' (${publisher.status().configOrigin}):`);
    for (const type of TYPE_ORDER) lines.push(`    ${TYPE_SHORT[type]} ${snapshot.version(type)}: ${snapshot.names(type).join(', ') || '(none)'}`);
  }
  if (app.adminPort !== undefined)
    lines.push(`Admin: http://${values['admin-host'] ?? '127.0.0.1'}:${app.adminPort}/health  /status/clients  /config_dump  /metrics`);
  if (app.alsPort !== undefined) lines.push(`Access Log Service: ${values['als-host'] ?? '127.0.0.1'}:${app.alsPort}`);
  lines.push(`Point Envoy at it:  envoy -c examples/envoy-bootstrap.yaml   (xds_cluster -> ${xdsHost}:${app.xdsPort}, api_type GRPC)`);
  process.stderr.write(`${lines.join('\n')}\n`);

  logger.info({ signal: await life.stopped }, 'shutting down');
  await app.close();
  logger.flush();
  return 0;
}
