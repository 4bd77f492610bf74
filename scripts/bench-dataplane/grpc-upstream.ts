/**
 * The benchmark's gRPC unary upstream, run as its own process:
 *
 *   node dist/scripts/bench-dataplane/grpc-upstream.js [PORT_COUNT]
 *
 * In: how many ports to listen on (default 3: the endpoints of the gRPC cluster, so per-request
 * balancing has hosts to spread over). Out: `READY <port>,<port>,...` on stdout, then cleartext
 * HTTP/2 on 127.0.0.1 serving consulxds.bench.Echo/Unary (echo.proto): the request message is
 * sent back as the response message, then trailers with grpc-status 0.
 *
 * Written on node:http2 rather than grpc-js: the same wire (length-prefixed messages, trailers),
 * at a fraction of the CPU per call, which matters when the upstream shares two cores with the
 * data plane under test. Echoing the framed bytes is a valid answer because request and response
 * are the same message type. It exits when its stdin closes or on SIGTERM.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { ECHO_PATH } from './echo.js';
import { announcePorts } from './announce-ports.js';

const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
const OK_TRAILERS = { 'grpc-status': '0' };
const UNIMPLEMENTED = { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown method' };

function onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  stream.on('error', () => undefined);
  if (headers[':path'] !== ECHO_PATH) {
    stream.respond(UNIMPLEMENTED, { endStream: true });
    return;
  }
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => {
    if (stream.destroyed) return;
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
    stream.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  });
}

async function listen(): Promise<number> {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', onStream);
  server.on('sessionError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

await announcePorts(listen);
