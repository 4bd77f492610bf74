/**
 * The smallest valid config: one listener, the seed's `route` and one cluster, `web` (its entry
 * `web: {}` is line 12). Unit tests and the config benchmark build their bad configs around it,
 * so their line numbers count from here.
 */
export const MINIMAL_CONFIG = `listener:
  listen:
    address: "127.0.0.1"
    port: 8000
route:
  domain: ["example.com"]
  cluster:
    web:
      prefix: ["/"]
cluster:
  loadbalancer:
    web: {}
`;

/**
 * One HTTP listener `edge` on 127.0.0.1 routing every path of any domain to one cluster, `web`,
 * with one static endpoint on 127.0.0.1; `accessLog` is the listener's `access-log` value as YAML
 * flow text. The shape the access-log tests share.
 */
export function oneWebClusterConfig(opts: { listenerPort: number; upstreamPort: number; accessLog?: string }): string {
  return `listener:
  edge:
    address: "127.0.0.1"
    port: ${opts.listenerPort}
${opts.accessLog === undefined ? '' : `    access-log: ${opts.accessLog}\n`}route:
  domain: ["*"]
  cluster:
    web: { prefix: ["/"] }
cluster:
  loadbalancer:
    web: {}
endpoint:
  eds:
    web: { static: [{ address: "127.0.0.1", port: ${opts.upstreamPort} }] }
`;
}
