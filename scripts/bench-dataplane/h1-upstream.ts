/**
 * The benchmark's HTTP/1.1 upstream, run as its own process:
 *
 *   node dist/scripts/bench-dataplane/h1-upstream.js [PORT_COUNT]
 *
 * In: how many ports to listen on (default 3; each is one endpoint of the benchmark's cluster,
 * so the data planes balance over several hosts). Out: `READY <port>,<port>,...` on stdout, then
 * a fixed 200 response (13 bytes of body) to every request, keep-alive, on 127.0.0.1.
 *
 * Deliberately not node:http: the upstream shares two cores with the data plane and the load
 * generator, so it should cost as little as possible per request. It only frames requests
 * without a body (GET, what the load generator sends): every blank line that ends a request head
 * gets one response, in order, which also serves pipelined requests. It exits when its stdin
 * closes (the benchmark went away) or on SIGTERM.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { announcePorts } from './announce-ports.js';

const BODY = 'hello, bench\n';
const RESPONSE = Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${BODY.length}\r\n\r\n${BODY}`);

function onConnection(socket: net.Socket): void {
  socket.setNoDelay(true);
  // How much of "\r\n\r\n" the bytes seen so far end with (0..3); carried across chunks.
  let matched = 0;
  socket.on('data', (chunk: Buffer) => {
    let heads = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === (matched & 1 ? 10 : 13)) {
        if (++matched === 4) {
          heads++;
          matched = 0;
        }
      } else matched = c === 13 ? 1 : 0;
    }
    if (heads === 1) socket.write(RESPONSE);
    else if (heads > 1) socket.write(Buffer.concat(Array.from({ length: heads }, () => RESPONSE)));
  });
  socket.on('error', () => socket.destroy());
}

async function listen(): Promise<number> {
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

await announcePorts(listen);
