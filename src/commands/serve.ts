/**
 * `consul-xds serve`: run the control plane until SIGINT/SIGTERM. Prints what it serves and how
 * to point Envoy at it.
 */
import { serve, DEFAULT_XDS } from '../app.js';
import { createLogger } from '../log.js';
import { TYPE_SHORT, TYPE_ORDER } from '../xds/type-urls.js';
import { parseCommandArgs, portOption } from './args.js';

const USAGE = `Usage: consul-xds serve --config FILE [options]

  --config FILE        YAML config to serve (watched: a saved edit is pushed within a second)
  --xds-host HOST      xDS listen address (default ${DEFAULT_XDS.host})
  --xds-port N         xDS listen port (default ${DEFAULT_XDS.port})
  --log-level LEVEL    trace|debug|info|warn|error (default info)
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('serve', argv, {
    config: { type: 'string' },
    'xds-host': { type: 'string' },
    'xds-port': { type: 'string' },
    'log-level': { type: 'string' },
  }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.config) {
    process.stderr.write(`serve: --config FILE is required\n\n${USAGE}`);
    return 2;
  }
  const logger = createLogger({ level: values['log-level'] });
  const app = await serve({
    configFile: values.config,
    xds: { host: values['xds-host'] ?? DEFAULT_XDS.host, port: portOption('xds-port', values['xds-port'], DEFAULT_XDS.port) },
    logger,
  });
  const snapshot = app.publisher.snapshot;
  const lines = [`consul-xds serving ${values.config} on ${values['xds-host'] ?? DEFAULT_XDS.host}:${app.xdsPort} (ADS, state of the world)`];
  if (snapshot) {
    for (const type of TYPE_ORDER) lines.push(`  ${TYPE_SHORT[type]} ${snapshot.version(type)}: ${snapshot.names(type).join(', ') || '(none)'}`);
  }
  lines.push(`Point Envoy at it:  envoy -c examples/envoy-bootstrap.yaml   (xds_cluster -> 127.0.0.1:${app.xdsPort}, api_type GRPC)`);
  process.stderr.write(`${lines.join('\n')}\n`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  logger.info('shutting down');
  await app.close();
  logger.flush();
  return 0;
}
