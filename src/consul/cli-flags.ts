/**
 * The Consul flags every command shares (`serve`, `kv`, `weights`). In: parsed flag values. Out:
 * ConsulOptions (the environment fills what the flags leave out, in resolveConnection). One spec
 * and one help text, so the commands cannot drift apart.
 */
import type { ConsulOptions } from './options.js';
import { DEFAULT_CONSUL_KEY } from './options.js';

export const CONSUL_FLAGS = {
  consul: { type: 'string' },
  'consul-token': { type: 'string' },
  datacenter: { type: 'string' },
  'consul-ca-file': { type: 'string' },
  'consul-client-cert': { type: 'string' },
  'consul-client-key': { type: 'string' },
  'consul-tls-server-name': { type: 'string' },
  'consul-insecure': { type: 'boolean' },
  'consul-key': { type: 'string' },
} as const;

export const CONSUL_FLAGS_HELP = `Consul connection (flags win over the environment):
  --consul URL                 Consul HTTP address (env CONSUL_HTTP_ADDR; default http://127.0.0.1:8500)
  --consul-token TOKEN         ACL token, sent as X-Consul-Token (env CONSUL_HTTP_TOKEN; prefer the env:
                               a flag is visible in the process list)
  --datacenter DC              datacenter to read and write (default: the agent's)
  --consul-ca-file FILE        CA certificate for https (env CONSUL_CACERT)
  --consul-client-cert FILE    client certificate (env CONSUL_CLIENT_CERT), with --consul-client-key
  --consul-client-key FILE     client key (env CONSUL_CLIENT_KEY)
  --consul-tls-server-name N   expected server name / SNI (env CONSUL_TLS_SERVER_NAME)
  --consul-insecure            skip certificate verification (env CONSUL_HTTP_SSL_VERIFY=false)
  --consul-key KEY             KV key holding the YAML config (default ${DEFAULT_CONSUL_KEY})
`;

export interface ConsulFlagValues {
  readonly consul?: string;
  readonly 'consul-token'?: string;
  readonly datacenter?: string;
  readonly 'consul-ca-file'?: string;
  readonly 'consul-client-cert'?: string;
  readonly 'consul-client-key'?: string;
  readonly 'consul-tls-server-name'?: string;
  readonly 'consul-insecure'?: boolean;
  readonly 'consul-key'?: string;
}

export function consulOptionsFromFlags(v: ConsulFlagValues): ConsulOptions {
  return {
    address: v.consul,
    token: v['consul-token'],
    datacenter: v.datacenter,
    tls: {
      caFile: v['consul-ca-file'],
      certFile: v['consul-client-cert'],
      keyFile: v['consul-client-key'],
      serverName: v['consul-tls-server-name'],
      insecure: v['consul-insecure'],
    },
    key: v['consul-key'],
  };
}
