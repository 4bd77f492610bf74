/**
 * `consul-xds serve`: run the control plane until SIGINT/SIGTERM (SIGHUP reopens the access-log
 * file; signals and fatal errors: lifecycle.ts). Prints what it serves and how to point Envoy at it.
 */
import { serve, DEFAULT_XDS, type RunningApp } from '../app.js';
import { createLogger } from '../log.js';
import { TYPE_SHORT, TYPE_ORDER } from '../xds/resource-types.js';
import { ConsulXdsError, ListenError } from '../errors.js';
import { checkConfigText } from '../pipeline/build.js';
import { readConfigFile } from '../sources/config-file.js';
import {
  CONFIG_MAX_BYTES_FLAG,
  CONFIG_MAX_BYTES_USAGE,
  configMaxBytesOption,
  logLevelOption,
  nonNegativeIntOption,
  parseCommandArgs,
  portOption,
} from './args.js';
import { installLifecycle } from './lifecycle.js';
import { CONSUL_FLAGS, CONSUL_USAGE, consulOptions, wantsConsul } from './consul-flags.js';
import { DEFAULT_XDS_LIMITS, type XdsLimits } from '../server/index.js';
import { DEFAULT_TLS_POLL_MS, type TlsFilePaths } from '../common/tls-files.js';
import { compileGroupPattern } from '../common/peer-identity.js';
import { ConsulClient } from '../consul/client.js';
import type { ConsulOptions } from '../consul/options.js';
import type { Logger } from '../log.js';
import { RampPicker } from '../ramp/driver.js';
import { DEFAULT_SIDECAR_SERVICE, registerSidecar } from '../ramp/fleet.js';
import { RampMetrics } from '../ramp/metrics.js';
import { DEFAULT_RAMPS_PREFIX } from '../ramp/spec.js';

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
  --removal-timeout-ms N    make before break: removed clusters and route configurations stay until every
                            client of the group answered the routes without them, at most N ms (default 5000;
                            0 removes at once)
  --als-host HOST           Access Log Service sink address (default 127.0.0.1)
  --als-port N              Access Log Service sink port (default 9001)
  --access-log-file FILE    write access-log JSON lines to FILE (default stdout)
  --no-als                  run without the access-log sink
  --log-level LEVEL         trace|debug|info|warn|error|fatal|silent (default info)
  --health-host HOST        a second HTTP listener serving only the health path, e.g. 0.0.0.0 for the
  --health-port N           load balancer (404 for every other path; the admin port keeps the rest)

Fleet and canary ramps (Consul mode; docs/consul.md, "Canary ramp"):
  --register                register this sidecar in Consul as service consul-xds (meta: admin address
                            and --watch-node; an HTTP check on the health path), so 'ramp' reads its
                            access-log counts; the admin address must be reachable from the ramp driver
  --register-id ID          its Consul service ID (default consul-xds-<admin host>-<admin port>)
  --register-service NAME   service name to register as (default consul-xds)
  --ramp-driver             drive any recorded ramp whose lock is free (a Consul session lock: one driver
                            per ramp; if it dies, another --ramp-driver resumes at the recorded step)
  --ramps-prefix P          KV prefix of ramp state (default consul-xds/ramps/)

Transport security (docs/sidecar.md, "Transport security"; without these: plaintext, as before):
  --xds-tls-cert FILE       xDS server certificate (PEM, chain allowed); needs --xds-tls-key
  --xds-tls-key FILE        its private key
  --xds-tls-client-ca FILE  require client certificates signed by this CA (mTLS); a stream's node.id
                            must then be a DNS or URI SAN of the client's certificate
  --xds-identity-group-uri-pattern P
                            e.g. 'spiffe://example.org/group/{group}/node/{node}': a URI SAN matching P
                            must name the node group the node is served ({node}, if present, counts
                            as naming the node id, for the ALS sink too)
  --csds-admin-san SAN      (repeatable; needs --xds-tls-client-ca) a client certificate with this DNS or
                            URI SAN reads every node through CSDS (e.g. for 'consul-xds status --csds');
                            any other certificate reads only the nodes it may speak for, or the whole
                            group its URI SAN names with {node} '*' (docs/xds-server.md, "CSDS")
  --als-tls-cert FILE, --als-tls-key FILE, --als-tls-client-ca FILE
                            the same for the Access Log Service sink (node id of the log identifier)
  --tls-reload-ms N         how often the TLS files are checked for a change (default ${DEFAULT_TLS_POLL_MS})

Limits per xDS client:
  --xds-max-streams-per-connection N   HTTP/2 streams per connection (default ${DEFAULT_XDS_LIMITS.maxConcurrentStreams})
  --xds-max-request-bytes N            largest DiscoveryRequest (default ${DEFAULT_XDS_LIMITS.maxReceiveMessageBytes}; over: RESOURCE_EXHAUSTED)
  --xds-max-resource-names N           resource_names per request (default ${DEFAULT_XDS_LIMITS.maxResourceNames}; over: INVALID_ARGUMENT)

Signals: SIGINT/SIGTERM shut down (exit 0); SIGHUP reopens --access-log-file (logrotate without
copytruncate); SIGUSR1 is ignored (no debugger port).
`;

/** The flags that move each server serve binds, named when its address is taken. */
const LISTEN_FLAGS: Readonly<Record<string, string>> = {
  xds: '--xds-port / --xds-host',
  admin: '--admin-port / --admin-host',
  als: '--als-port / --als-host (or --no-als)',
  health: '--health-port / --health-host',
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
      'removal-timeout-ms': { type: 'string' },
      'als-host': { type: 'string' },
      'als-port': { type: 'string' },
      'access-log-file': { type: 'string' },
      'no-als': { type: 'boolean' },
      'log-level': { type: 'string' },
      'health-host': { type: 'string' },
      'health-port': { type: 'string' },
      'xds-tls-cert': { type: 'string' },
      'xds-tls-key': { type: 'string' },
      'xds-tls-client-ca': { type: 'string' },
      'xds-identity-group-uri-pattern': { type: 'string' },
      'csds-admin-san': { type: 'string', multiple: true },
      'als-tls-cert': { type: 'string' },
      'als-tls-key': { type: 'string' },
      'als-tls-client-ca': { type: 'string' },
      'tls-reload-ms': { type: 'string' },
      'xds-max-streams-per-connection': { type: 'string' },
      'xds-max-request-bytes': { type: 'string' },
      'xds-max-resource-names': { type: 'string' },
      register: { type: 'boolean' },
      'register-id': { type: 'string' },
      'register-service': { type: 'string' },
      'ramp-driver': { type: 'boolean' },
      'ramps-prefix': { type: 'string' },
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
  // Flags are checked before anything starts (no logger, no signal handlers yet).
  const tlsPollMs = countOption('tls-reload-ms', values['tls-reload-ms']);
  const xdsTls = tlsFlags('xds', values['xds-tls-cert'], values['xds-tls-key'], values['xds-tls-client-ca']);
  const alsTls = tlsFlags('als', values['als-tls-cert'], values['als-tls-key'], values['als-tls-client-ca']);
  const groupPattern = values['xds-identity-group-uri-pattern'];
  if (groupPattern !== undefined) {
    if (xdsTls?.clientCa === undefined) throw new ConsulXdsError('CXDS_USAGE', '--xds-identity-group-uri-pattern needs --xds-tls-client-ca (mTLS)');
    try {
      compileGroupPattern(groupPattern);
    } catch (err) {
      throw new ConsulXdsError('CXDS_USAGE', `--xds-identity-group-uri-pattern: ${(err as Error).message}`);
    }
  }
  const csdsAdminSans = values['csds-admin-san'];
  if (csdsAdminSans !== undefined) {
    if (xdsTls?.clientCa === undefined)
      throw new ConsulXdsError('CXDS_USAGE', '--csds-admin-san needs --xds-tls-client-ca (without mTLS every CSDS caller reads every node)');
    if (csdsAdminSans.some((san) => san.trim() === '')) throw new ConsulXdsError('CXDS_USAGE', '--csds-admin-san: empty SAN');
  }
  if (values['health-host'] !== undefined && values['health-port'] === undefined)
    throw new ConsulXdsError('CXDS_USAGE', '--health-host needs --health-port (the health-only listener)');
  const limits: Partial<XdsLimits> = {
    ...optional('maxConcurrentStreams', countOption('xds-max-streams-per-connection', values['xds-max-streams-per-connection'])),
    ...optional('maxReceiveMessageBytes', countOption('xds-max-request-bytes', values['xds-max-request-bytes'])),
    ...optional('maxResourceNames', countOption('xds-max-resource-names', values['xds-max-resource-names'])),
  };
  if (!consul && (values.register || values['ramp-driver']))
    throw new ConsulXdsError('CXDS_USAGE', '--register and --ramp-driver need Consul mode (--consul/--consul-key)');
  if (values.register && values['no-als'])
    throw new ConsulXdsError('CXDS_USAGE', '--register needs the access-log sink (it serves the counts the ramp reads); drop --no-als');
  const removalTimeoutMs = values['removal-timeout-ms'] === undefined ? undefined : nonNegativeIntOption('removal-timeout-ms', values['removal-timeout-ms']);
  const logger = createLogger({ level: logLevelOption(values['log-level']) });
  const configLimits = configMaxBytesOption(values['config-max-bytes']);
  // File mode: a bad config is refused before any port is bound (Consul mode reads KV after
  // the admin port is up, so /health can say what start-up waits for).
  if (values.config) checkConfigText(await readConfigFile(values.config, configLimits), values.config, configLimits);
  let reopenAccessLog: () => Promise<void> = async () => undefined; // nothing to reopen during start-up
  const life = installLifecycle(logger, { onHangup: () => reopenAccessLog() });
  const xdsHost = values['xds-host'] ?? DEFAULT_XDS.host;
  const app = await serve({
    ...(values.config ? { configFile: values.config } : { consul: consulOptions(values) }),
    configLimits,
    xds: { host: xdsHost, port: portOption('xds-port', values['xds-port'], DEFAULT_XDS.port) },
    ...(xdsTls
      ? {
          xdsSecurity: {
            tls: xdsTls,
            ...(groupPattern !== undefined ? { groupPattern } : {}),
            ...(tlsPollMs !== undefined ? { pollMs: tlsPollMs } : {}),
            ...(csdsAdminSans !== undefined ? { csdsAdminSans } : {}),
          },
        }
      : {}),
    xdsLimits: limits,
    admin: {
      ...(values['admin-host'] !== undefined ? { host: values['admin-host'] } : {}),
      ...(values['admin-port'] !== undefined ? { port: portOption('admin-port', values['admin-port'], 0) } : {}),
      ...(values['health-path'] !== undefined ? { healthPath: values['health-path'] } : {}),
      ...(values['maintenance-file'] !== undefined ? { maintenanceFile: values['maintenance-file'] } : {}),
      ...(values['watch-node'] !== undefined ? { watchNode: values['watch-node'] } : {}),
      ...(values['envoy-admin'] !== undefined ? { envoyAdminUrl: values['envoy-admin'] } : {}),
      ...(values['ack-grace-ms'] !== undefined ? { graceMs: Number(values['ack-grace-ms']) } : {}),
      ...(values['health-host'] !== undefined ? { healthHost: values['health-host'] } : {}),
      ...(values['health-port'] !== undefined ? { healthPort: portOption('health-port', values['health-port'], 0) } : {}),
    },
    als: values['no-als']
      ? false
      : {
          ...(values['als-host'] !== undefined ? { host: values['als-host'] } : {}),
          ...(values['als-port'] !== undefined ? { port: portOption('als-port', values['als-port'], 0) } : {}),
          ...(values['access-log-file'] !== undefined ? { file: values['access-log-file'] } : {}),
          ...(alsTls
            ? { tls: alsTls, ...(tlsPollMs !== undefined ? { tlsPollMs } : {}), ...(groupPattern !== undefined ? { identityUriPattern: groupPattern } : {}) }
            : {}),
        },
    ...optional('removalTimeoutMs', removalTimeoutMs),
    logger,
  }).catch((err: unknown) => {
    throw err instanceof ListenError ? new ConsulXdsError(err.code, `${LISTEN_FLAGS[err.endpoint] ?? err.endpoint}: ${err.message}`, { cause: err }) : err;
  });
  reopenAccessLog = async () => app.sidecar?.reopenAccessLog();
  const fleet = await startFleetDuties(
    app,
    {
      consul: consul ? consulOptions(values) : {},
      ...(values.register
        ? {
            register: {
              ...(values['register-id'] !== undefined ? { id: values['register-id'] } : {}),
              ...(values['register-service'] !== undefined ? { service: values['register-service'] } : {}),
              adminHost: values['admin-host'] ?? '127.0.0.1',
              healthPath: values['health-path'] ?? '/health',
              ...(values['watch-node'] !== undefined ? { node: values['watch-node'] } : {}),
            },
          }
        : {}),
      ...(values['ramp-driver'] ? { rampsPrefix: values['ramps-prefix'] ?? DEFAULT_RAMPS_PREFIX } : {}),
    },
    logger,
  );
  life.up();

  const lines = [`consul-xds serving ${values.config ?? 'Consul KV'} on ${xdsHost}:${app.xdsPort} (ADS, state of the world)`];
  for (const [group, publisher] of app.publishers) {
    const snapshot = publisher.snapshot;
    if (!snapshot) continue;
    lines.push(`  node group '${group}' (${publisher.status().configOrigin}):`);
    for (const type of TYPE_ORDER) lines.push(`    ${TYPE_SHORT[type]} ${snapshot.version(type)}: ${snapshot.names(type).join(', ') || '(none)'}`);
  }
  if (app.sidecar?.healthPort !== undefined)
    lines.push(`Health only: http://${values['health-host'] ?? '127.0.0.1'}:${app.sidecar.healthPort}${values['health-path'] ?? '/health'}`);
  if (app.adminPort !== undefined)
    lines.push(`Admin: http://${values['admin-host'] ?? '127.0.0.1'}:${app.adminPort}/health  /status/clients  /config_dump  /metrics`);
  if (app.alsPort !== undefined) lines.push(`Access Log Service: ${values['als-host'] ?? '127.0.0.1'}:${app.alsPort}`);
  if (xdsTls) lines.push(`xDS over TLS${xdsTls.clientCa ? ' with client certificates (mTLS): node.id must be a SAN of the certificate' : ''}`);
  lines.push(`Point Envoy at it:  envoy -c examples/envoy-bootstrap.yaml   (xds_cluster -> ${xdsHost}:${app.xdsPort}, api_type GRPC)`);
  process.stderr.write(`${lines.join('\n')}\n`);

  logger.info({ signal: await life.stopped }, 'shutting down');
  await fleet.close();
  await app.close();
  logger.flush();
  return 0;
}

interface FleetDuties {
  readonly consul: ConsulOptions;
  /** Register with this service ID and name (undefined: no registration). */
  readonly register?: { readonly id?: string; readonly service?: string; readonly adminHost: string; readonly healthPath: string; readonly node?: string };
  /** Drive ramps stored under this KV prefix (undefined: no driver). */
  readonly rampsPrefix?: string;
}

/**
 * `--register` and `--ramp-driver`: the sidecar in Consul's catalog (deregistered at shutdown)
 * and the ramp picker (src/ramp/). Both use their own Consul client from the same flags.
 */
async function startFleetDuties(app: RunningApp, duties: FleetDuties, logger: Logger): Promise<{ close(): Promise<void> }> {
  if (!duties.register && duties.rampsPrefix === undefined) return { close: async () => undefined };
  const client = ConsulClient.fromOptions(duties.consul);
  const closers: Array<() => Promise<void>> = [];
  const reg = duties.register;
  if (reg && app.adminPort !== undefined) {
    const admin = `${reg.adminHost.includes(':') ? `[${reg.adminHost}]` : reg.adminHost}:${app.adminPort}`;
    const id = reg.id ?? `consul-xds-${reg.adminHost}-${app.adminPort}`;
    const deregister = await registerSidecar(client, {
      id,
      service: reg.service ?? DEFAULT_SIDECAR_SERVICE,
      admin,
      healthPath: reg.healthPath,
      ...(reg.node !== undefined ? { node: reg.node } : {}),
    });
    logger.info({ id, admin }, 'registered in Consul');
    closers.push(() => deregister().catch((err: Error) => logger.warn({ id, err: err.message }, 'Consul deregistration failed')));
  }
  if (duties.rampsPrefix !== undefined) {
    const picker = new RampPicker(duties.rampsPrefix, {
      client,
      logger: logger.child({ component: 'ramp' }),
      ...(app.sidecar ? { metrics: new RampMetrics(app.sidecar.metricsRegistry) } : {}),
    });
    closers.push(() => picker.close());
  }
  return {
    async close() {
      for (const c of closers.reverse()) await c();
      client.close();
    },
  };
}

/** `--<prefix>-tls-cert/-key/-client-ca` as TLS file paths; undefined when none is given. */
function tlsFlags(prefix: string, cert: string | undefined, key: string | undefined, clientCa: string | undefined): TlsFilePaths | undefined {
  if (cert === undefined && key === undefined && clientCa === undefined) return undefined;
  if (cert === undefined || key === undefined)
    throw new ConsulXdsError('CXDS_USAGE', `--${prefix}-tls-cert and --${prefix}-tls-key go together (and --${prefix}-tls-client-ca needs both)`);
  return { cert, key, ...(clientCa !== undefined ? { clientCa } : {}) };
}

/** A positive integer flag, named in the error when it is not one. */
function countOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new ConsulXdsError('CXDS_USAGE', `--${flag}: expected an integer >= 1, got '${value}'`);
  return n;
}

function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}
