/**
 * The Consul flags every command shares (serve, kv, weights), and their translation into
 * ConsulOptions. Flags win over the environment (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, ...); the
 * token is best given through the environment or a file, so it never shows in `ps`.
 */
import { readFileSync } from 'node:fs';
import {
  CONSISTENCY_MODES,
  DEFAULT_CONSISTENCY,
  DEFAULT_EMPTY_GRACE_MS,
  resolveEmptyGraceMs,
  type ConsulConsistency,
  type ConsulOptions,
} from '../consul/options.js';
import { ConsulXdsError } from '../errors.js';
import type { OptionSpec } from './args.js';

export const CONSUL_FLAGS = {
  consul: { type: 'string' },
  'consul-key': { type: 'string' },
  'consul-key-prefix': { type: 'string' },
  group: { type: 'string', multiple: true },
  'consul-token-file': { type: 'string' },
  datacenter: { type: 'string' },
  'consul-cacert': { type: 'string' },
  'consul-client-cert': { type: 'string' },
  'consul-client-key': { type: 'string' },
  'consul-tls-server-name': { type: 'string' },
  'consul-empty-grace-ms': { type: 'string' },
  'consul-consistency': { type: 'string' },
} as const satisfies OptionSpec;

export const CONSUL_USAGE = `Consul:
  --consul URL              Consul HTTP address (default $CONSUL_HTTP_ADDR, else http://127.0.0.1:8500)
  --consul-key KEY          KV key holding the YAML config (default consul-xds/config)
  --consul-key-prefix P     one key per node group: P<group> for each --group (Envoy node.cluster)
  --group NAME              a node group (repeatable; with --consul-key-prefix)
  --consul-token-file FILE  ACL token read from FILE (default $CONSUL_HTTP_TOKEN); never logged
  --datacenter DC           Consul datacenter (default: the agent's)
  --consul-cacert FILE, --consul-client-cert FILE, --consul-client-key FILE, --consul-tls-server-name NAME
                            TLS to Consul (also $CONSUL_CACERT, $CONSUL_CLIENT_CERT, $CONSUL_CLIENT_KEY)
  --consul-empty-grace-ms N (serve) when Consul suddenly lists none of a service's instances (a
                            restart), keep serving the last ones for N ms first (default ${DEFAULT_EMPTY_GRACE_MS}; 0 = off)
  --consul-consistency M    (serve) read mode of the watches: ${CONSISTENCY_MODES.join(' | ')} (default
                            ${DEFAULT_CONSISTENCY}: any server answers, so a leader election is no outage)
`;

type ConsulFlagValues = { [K in keyof typeof CONSUL_FLAGS]?: (typeof CONSUL_FLAGS)[K] extends { multiple: true } ? string[] : string };

/** True when any Consul flag was given (or CONSUL_HTTP_ADDR is set and no file was). */
export function wantsConsul(values: ConsulFlagValues): boolean {
  return values.consul !== undefined || values['consul-key'] !== undefined || values['consul-key-prefix'] !== undefined;
}

export function consulOptions(values: ConsulFlagValues): ConsulOptions {
  const prefix = values['consul-key-prefix'];
  if (prefix !== undefined && !values.group?.length) {
    throw new ConsulXdsError('CXDS_USAGE', '--consul-key-prefix needs at least one --group (the node groups, i.e. Envoy node.cluster values)');
  }
  let token: string | undefined;
  const tokenFile = values['consul-token-file'];
  if (tokenFile !== undefined) {
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      throw new ConsulXdsError('CXDS_USAGE', `--consul-token-file ${tokenFile}: ${(err as Error).message}`);
    }
  }
  const graceText = values['consul-empty-grace-ms'];
  if (graceText !== undefined && !/^\d+$/.test(graceText)) {
    throw new ConsulXdsError('CXDS_USAGE', `--consul-empty-grace-ms: expected milliseconds (0 = off), got '${graceText}'`);
  }
  const grace = graceText === undefined ? undefined : resolveEmptyGraceMs(Number(graceText));
  const consistency = values['consul-consistency'];
  if (consistency !== undefined && !(CONSISTENCY_MODES as readonly string[]).includes(consistency)) {
    throw new ConsulXdsError('CXDS_USAGE', `--consul-consistency: expected one of ${CONSISTENCY_MODES.join(', ')}, got '${consistency}'`);
  }
  const tls = {
    ...(values['consul-cacert'] !== undefined ? { caFile: values['consul-cacert'] } : {}),
    ...(values['consul-client-cert'] !== undefined ? { certFile: values['consul-client-cert'] } : {}),
    ...(values['consul-client-key'] !== undefined ? { keyFile: values['consul-client-key'] } : {}),
    ...(values['consul-tls-server-name'] !== undefined ? { serverName: values['consul-tls-server-name'] } : {}),
  };
  return {
    ...(values.consul !== undefined ? { address: values.consul } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(values.datacenter !== undefined ? { datacenter: values.datacenter } : {}),
    ...(Object.keys(tls).length ? { tls } : {}),
    ...(values['consul-key'] !== undefined ? { key: values['consul-key'] } : {}),
    ...(prefix !== undefined ? { keyPrefix: prefix, groups: values.group } : {}),
    ...(grace !== undefined ? { emptyGraceMs: grace } : {}),
    ...(consistency !== undefined ? { consistency: consistency as ConsulConsistency } : {}),
  };
}
