/**
 * Binds a server: the sidecar's and the data plane's admin servers (node:http) and the data
 * plane's listeners (node:net). In: the server, listen options, a logger. Out: the bound port.
 * A bind failure rejects; an `error` the server emits later (an accept that fails, EMFILE say) is
 * logged: without a listener it would be an uncaught exception, which ends the process
 * (commands/lifecycle.ts).
 */
import type http from 'node:http';
import type { AddressInfo, ListenOptions, Server } from 'node:net';
import { ListenError } from '../errors.js';
import type { Logger } from '../log.js';

export function bindServer(server: Server, opts: ListenOptions & { host: string; port: number }, logger: Logger, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts, () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      server.on('error', (err: NodeJS.ErrnoException) => logger.error({ err: err.message, code: err.code, address: `${opts.host}:${bound}` }, `${what} error`));
      resolve(bound);
    });
  });
}

export function bindHttpServer(server: http.Server, host: string, port: number, logger: Logger): Promise<number> {
  return bindServer(server, { host, port }, logger, 'HTTP server');
}

/** `bind()` (whatever binds the server and resolves with its port or handle), with a failure turned into a ListenError that names the endpoint (`xds`, `admin`, `als`) and the address. */
export async function bindNamed<T>(endpoint: string, host: string, port: number, bind: () => Promise<T>): Promise<T> {
  try {
    return await bind();
  } catch (err) {
    throw new ListenError(endpoint, `${host.includes(':') ? `[${host}]` : host}:${port}`, err);
  }
}
