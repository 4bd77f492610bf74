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
