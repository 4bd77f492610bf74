/**
 * Demo upstreams for the quick start and the examples (`consul-xds demo-upstream`). In: a name, a
 * protocol and a port. Out: a server on it that answers every request and names itself, so a
 * tally of answers shows where a proxy sent each request:
 *   http1, h2c  any method and path: 200, header `x-upstream: <name>`, JSON body
 *               {"upstream", "path", "host", "protocol"} (h2c: cleartext HTTP/2, prior knowledge);
 *               `?delay=MS` holds the answer that long (at most 10 s: a slow backend, for
 *               circuit breakers and timeouts)
 *   grpc        consulxds.demo.Greeter/Hello (examples/greeter.proto) answers {backend: <name>}
 *   tcp         echoes every byte back (a stand-in for a TCP service such as MongoDB)
 * It also counts the connections it accepted (seed 002: how many an HTTP/2 client opens).
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { decodeStringField, encodeStringField, HELLO_PATH } from './greeter-codec.js';

export const DEMO_PROTOCOLS = ['http1', 'h2c', 'grpc', 'tcp'] as const;
export type DemoProtocol = (typeof DEMO_PROTOCOLS)[number];

/** The response header that names the upstream (HTTP/1.1 and h2c). */
export const UPSTREAM_HEADER = 'x-upstream';

export interface DemoUpstreamOptions {
  readonly name: string;
  readonly protocol: DemoProtocol;
  /** 0: any free port. */
  readonly port: number;
  readonly host?: string;
}

export interface DemoUpstream {
  readonly name: string;
  readonly protocol: DemoProtocol;
  readonly port: number;
  /** Connections accepted so far (grpc: not counted, 0). */
  connections(): number;
  /** HTTP requests answered so far, and the Host of the latest (http1, h2c; 0 and '' otherwise). */
  requests(): { readonly count: number; readonly lastHost: string };
  close(): Promise<void>;
}

/** The JSON body an HTTP demo upstream answers with. */
export interface DemoAnswer {
  readonly upstream: string;
  readonly path: string;
  readonly host: string;
  readonly protocol: string;
}

/** HelloRequest -> HelloReply of the demo Greeter: both are one string field. */
export const GREETER_DEFINITION = {
  Hello: {
    path: HELLO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (name: string) => encodeStringField(name),
    requestDeserialize: (buf: Buffer) => decodeStringField(buf),
    responseSerialize: (backend: string) => encodeStringField(backend),
    responseDeserialize: (buf: Buffer) => decodeStringField(buf),
  },
} as const satisfies ServiceDefinition;

export async function startDemoUpstream(opts: DemoUpstreamOptions): Promise<DemoUpstream> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.protocol === 'grpc') return startGreeter(opts.name, host, opts.port);
  let accepted = 0;
  const seen = { count: 0, lastHost: '' };
  const server = serverFor(opts.name, opts.protocol, (host) => {
    seen.count++;
    seen.lastHost = host;
  });
  server.on('connection', () => accepted++);
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return {
    name: opts.name,
    protocol: opts.protocol,
    port,
    connections: () => accepted,
    requests: () => ({ ...seen }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Proxies keep pooled connections open; drop them so close() returns promptly.
        for (const s of sockets) s.destroy();
      }),
  };
}

/** The `delay` query parameter in ms, within 0..10,000 (0 when absent or not a number). */
export function delayOf(path: string): number {
  const q = path.indexOf('?');
  const ms = q < 0 ? 0 : Number(new URLSearchParams(path.slice(q + 1)).get('delay') ?? 0);
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 10_000) : 0;
}

function serverFor(name: string, protocol: Exclude<DemoProtocol, 'grpc'>, onRequest: (host: string) => void): net.Server {
  const answer = (path: string, host: string, proto: string): string => {
    onRequest(host);
    return JSON.stringify({ upstream: name, path, host, protocol: proto } satisfies DemoAnswer);
  };
  switch (protocol) {
    case 'http1':
      return http.createServer({ keepAlive: true }, (req, res) => {
        // Answer once the request body is in: draining it keeps the connection reusable.
        req.resume();
        req.once('end', () =>
          setTimeout(
            () => {
              res.setHeader(UPSTREAM_HEADER, name);
              res.setHeader('content-type', 'application/json');
              res.end(`${answer(req.url ?? '/', req.headers.host ?? '', `HTTP/${req.httpVersion}`)}\n`);
            },
            delayOf(req.url ?? ''),
          ),
        );
      });
    case 'h2c': {
      const server = http2.createServer();
      server.on('stream', (stream, headers) => {
        stream.on('error', () => undefined);
        stream.resume();
        const path = String(headers[':path'] ?? '/');
        stream.once('end', () =>
          setTimeout(() => {
            if (stream.destroyed) return;
            stream.respond({ ':status': 200, 'content-type': 'application/json', [UPSTREAM_HEADER]: name });
            stream.end(`${answer(path, String(headers[':authority'] ?? ''), 'HTTP/2')}\n`);
          }, delayOf(path)),
        );
      });
      server.on('sessionError', () => undefined);
      return server;
    }
    case 'tcp':
      return net.createServer((socket) => {
        socket.on('error', () => socket.destroy());
        socket.pipe(socket);
      });
  }
}

async function startGreeter(name: string, host: string, port: number): Promise<DemoUpstream> {
  const server = new Server();
  server.addService(GREETER_DEFINITION, {
    Hello: (_call: unknown, cb: (err: null, reply: string) => void) => cb(null, name),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    name,
    protocol: 'grpc',
    port: bound,
    connections: () => 0,
    requests: () => ({ count: 0, lastHost: '' }),
    close: async () => server.forceShutdown(),
  };
}
