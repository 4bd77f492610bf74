/**
 * The config both data planes are fed in the data-plane benchmark, in our YAML format (file mode,
 * static endpoints). In: the listener port and the ports of the HTTP/1.1 and gRPC upstreams. Out:
 * YAML text for `serve`.
 *
 * One HTTP listener (codec AUTO: HTTP/1.1 and h2c on one port, as translate emits it) with two
 * prefix routes: the gRPC service's path to an HTTP/2 cluster, /h1 to an HTTP/1.1 cluster. Each
 * cluster has one endpoint per upstream port, balanced round robin, so every request is routed,
 * load-balanced and sent over a pooled upstream connection, the work a real deployment asks for.
 * No health checks, retries, mirrors or access logs: the benchmark measures the request path.
 */
import { ECHO_CALL } from './echo.js';
import { H1_PATH } from './load.js';

export interface BenchPorts {
  readonly listener: number;
  readonly h1Upstreams: readonly number[];
  readonly grpcUpstreams: readonly number[];
}

export const H1_CLUSTER = 'bench-http1';
export const GRPC_CLUSTER = 'bench-grpc';

function endpoints(ports: readonly number[]): string[] {
  return ports.map((p) => `        - { address: "127.0.0.1", port: ${p} }`);
}

export function benchDataplaneYaml(ports: BenchPorts): string {
  const h1Prefix = `/${H1_PATH.split('/')[1] ?? 'h1'}`;
  const grpcPrefix = `/${ECHO_CALL.split('/')[0] ?? ''}/`;
  return [
    '# consul-xds data-plane benchmark (scripts/bench-dataplane.ts)',
    'listener:',
    '  bench:',
    '    address: "127.0.0.1"',
    `    port: ${ports.listener}`,
    'route:',
    '  domain: ["*"]',
    '  cluster:',
    `    ${GRPC_CLUSTER}:`,
    `      prefix: ["${grpcPrefix}"]`,
    `    ${H1_CLUSTER}:`,
    `      prefix: ["${h1Prefix}"]`,
    'cluster:',
    '  loadbalancer:',
    `    ${GRPC_CLUSTER}:`,
    '      lb-policy: "round-robin"',
    '      upstream-protocol: "http2"',
    `    ${H1_CLUSTER}:`,
    '      lb-policy: "round-robin"',
    'endpoint:',
    '  eds:',
    `    ${GRPC_CLUSTER}:`,
    '      static:',
    ...endpoints(ports.grpcUpstreams),
    `    ${H1_CLUSTER}:`,
    '      static:',
    ...endpoints(ports.h1Upstreams),
    '',
  ].join('\n');
}
