/**
 * Binds a node:http server (the sidecar's and the data plane's admin servers). In: the server,
 * host, port, and a logger. Out: the bound port. A bind failure rejects; an `error` the server
 * emits later (an accept that fails, say) is logged: without a listener it would be an uncaught
 * exception, which ends the process (commands/lifecycle.ts).
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.js';

export function bindHttpServer(server: http.Server, host: string, port: number, logger: Logger): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      server.on('error', (err: NodeJS.ErrnoException) => logger.error({ err: err.message, code: err.code, address: `${host}:${bound}` }, 'HTTP server error'));
      resolve(bound);
    });
  });
}
