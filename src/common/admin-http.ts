/**
 * The small HTTP layer both admin servers stand on: the control plane's (src/admin/admin-server.ts)
 * and the proxy's (src/proxy/admin/admin-server.ts). In: a route table, path -> the methods it takes
 * and a handler that returns a Reply. Out: a node:http server (bound by http-listen.ts) that
 * answers with one convention:
 *  - a Reply goes out with its content type, content-length and `cache-control: no-store` (admin
 *    answers are live state); a HEAD gets the head only; a reason phrase Node has no name for
 *    (599) is sent as given;
 *  - a path not in the table is 404 with the list of paths; a method the route does not take is
 *    405 with `allow`; a handler that throws BadRequestError is 400 (a bad query parameter);
 *    anything else it throws is 500, and logged;
 *  - every error body is JSON, `{"error": "<what is wrong>", ...details}`.
 */
import http from 'node:http';
import { ConsulXdsError } from '../errors.js';
import { bindHttpServer } from './http-listen.js';
import type { Logger } from '../log.js';

export const JSON_TYPE = 'application/json';
export const TEXT_TYPE = 'text/plain; charset=UTF-8';

export interface Reply {
  readonly status: number;
  /** Reason phrase, for statuses Node has none for (it would send `599 unknown`). */
  readonly reason?: string;
  readonly contentType: string;
  readonly body: string;
}

export interface Route {
  /** The methods the route takes, or '*' for any; default GET and HEAD. */
  readonly methods?: readonly string[] | '*';
  readonly handle: (url: URL) => Reply | Promise<Reply>;
}

const READ_METHODS: readonly string[] = ['GET', 'HEAD'];

/** A body as given (text by default). */
export function reply(body: string, contentType = TEXT_TYPE, status = 200): Reply {
  return { status, contentType, body };
}

/** A value as indented JSON with a trailing newline. */
export function jsonReply(value: unknown, status = 200): Reply {
  return reply(`${JSON.stringify(value, null, 2)}\n`, JSON_TYPE, status);
}

/** The error body of both admin servers: `{"error": message, ...details}`. */
export function errorReply(status: number, message: string, details: Readonly<Record<string, unknown>> = {}): Reply {
  return jsonReply({ error: message, ...details }, status);
}

/** A request the handler cannot answer as asked (a query parameter that does not parse): 400. */
export class BadRequestError extends ConsulXdsError {
  constructor(message: string) {
    super('CXDS_ADMIN_BAD_REQUEST', message);
  }
}

export class AdminHttpServer {
  private readonly server: http.Server;

  constructor(
    private readonly routes: ReadonlyMap<string, Route>,
    private readonly logger: Logger,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    // Health checkers and scrapers keep connections alive; don't let an idle one pin shutdown.
    this.server.keepAliveTimeout = 5_000;
  }

  /** Binds host:port (0 = ephemeral) and resolves with the bound port; later server errors are logged. */
  listen(host: string, port: number): Promise<number> {
    return bindHttpServer(this.server, host, port, this.logger);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    let out: Reply;
    try {
      const url = new URL(req.url ?? '/', 'http://admin.local');
      const route = this.routes.get(url.pathname);
      const methods = route?.methods ?? READ_METHODS;
      if (!route) out = errorReply(404, `no such path: ${url.pathname}`, { endpoints: [...this.routes.keys()].sort() });
      else if (methods !== '*' && !methods.includes(method)) {
        res.setHeader('allow', methods.join(', '));
        out = errorReply(405, `method ${method} not allowed`);
      } else out = await route.handle(url);
    } catch (err) {
      if (err instanceof BadRequestError) out = errorReply(400, err.message);
      else {
        this.logger.error({ path: req.url, err: (err as Error).message }, 'admin request failed');
        out = errorReply(500, (err as Error).message);
      }
    }
    if (out.reason !== undefined) res.statusMessage = out.reason;
    res.writeHead(out.status, { 'content-type': out.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(out.body) });
    res.end(method === 'HEAD' ? undefined : out.body);
  }
}
