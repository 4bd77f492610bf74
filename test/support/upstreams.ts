/**
 * Small HTTP upstreams for integration tests. In: a name and the health-check path. Out: a server
 * on 127.0.0.1 (ephemeral port) that names itself in every answer (header `x-upstream` and the
 * JSON body, sent once the request body has arrived), records what reached it (hits, Host
 * headers, paths, every request header, health checks), optionally adds fixed response headers,
 * and serves a health path whose status the test flips. With `tls` it speaks HTTPS (and, given a
 * CA, requires client certificates).
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** The response header that says which upstream answered. */
export const UPSTREAM_HEADER = 'x-upstream';

export interface UpstreamRequest {
  readonly path: string;
  readonly host: string;
  readonly userAgent: string;
  /** Every request header as it arrived (lower-case names). */
  readonly headers: IncomingHttpHeaders;
  /** HTTPS upstreams: the CN of the client certificate the data plane presented ('' for none). */
  readonly clientCertCn: string;
}

/** PEM files for an HTTPS upstream; with `ca`, a client certificate signed by it is required. */
export interface UpstreamTls {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

export interface Upstream {
  readonly name: string;
  readonly port: number;
  readonly healthPath: string;
  /** Non-health requests, in arrival order. */
  readonly requests: readonly UpstreamRequest[];
  /** Health-check requests, in arrival order. */
  readonly healthChecks: readonly UpstreamRequest[];
  /** Status the health path answers with (200 at start). */
  setHealthStatus(status: number): void;
  /** Status every other request is answered with (200 at start), e.g. 503 for a failing canary. */
  setResponseStatus(status: number): void;
  /** When the first answer other than 200 went out since the last setResponseStatus (performance.now()); undefined if none yet. */
  readonly firstFailureAt: number | undefined;
  /** Forget recorded requests and health checks. */
  reset(): void;
  close(): Promise<void>;
}

export async function startUpstream(
  name: string,
  opts: { healthPath?: string; responseHeaders?: Readonly<Record<string, string>>; tls?: UpstreamTls } = {},
): Promise<Upstream> {
  const healthPath = opts.healthPath ?? '/health_check';
  const requests: UpstreamRequest[] = [];
  const healthChecks: UpstreamRequest[] = [];
  let healthStatus = 200;
  let responseStatus = 200;
  let firstFailureAt: number | undefined;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '/';
    const peer = (req.socket as Partial<TLSSocket>).getPeerCertificate?.();
    const clientCertCn = typeof peer?.subject?.CN === 'string' ? peer.subject.CN : '';
    const seen = { path, host: req.headers.host ?? '', userAgent: req.headers['user-agent'] ?? '', headers: req.headers, clientCertCn };
    res.setHeader(UPSTREAM_HEADER, name);
    if (path.split('?')[0] === healthPath) {
      healthChecks.push(seen);
      res.statusCode = healthStatus;
      res.end(healthStatus === 200 ? 'OK' : 'UNHEALTHY');
      return;
    }
    requests.push(seen);
    for (const [k, v] of Object.entries(opts.responseHeaders ?? {})) res.setHeader(k, v);
    // Answer once the whole request body is in (a proxy's stream timeouts see a waiting upstream);
    // draining it also keeps keep-alive connections reusable.
    req.resume();
    req.once('end', () => {
      res.setHeader('content-type', 'application/json');
      res.statusCode = responseStatus;
      if (responseStatus !== 200) firstFailureAt ??= performance.now();
      res.end(JSON.stringify({ upstream: name, host: seen.host, path }));
    });
  };

  const { port, close } = await listenHttp(handler, opts.tls);

  return {
    name,
    port,
    healthPath,
    requests,
    healthChecks,
    setHealthStatus(status) {
      healthStatus = status;
    },
    setResponseStatus(status) {
      responseStatus = status;
      firstFailureAt = undefined;
    },
    get firstFailureAt() {
      return firstFailureAt;
    },
    reset() {
      requests.length = 0;
      healthChecks.length = 0;
    },
    close,
  };
}

/** A keep-alive HTTP (or, with `tls`, HTTPS) server on 127.0.0.1 (ephemeral port) running `handler`. */
export async function listenHttp(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  tls?: UpstreamTls,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = tls
    ? createHttpsServer(
        {
          keepAlive: true,
          cert: readFileSync(tls.cert),
          key: readFileSync(tls.key),
          ...(tls.ca ? { ca: readFileSync(tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
        },
        handler,
      )
    : createServer({ keepAlive: true }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Data planes keep pooled connections open; drop them so close() returns promptly.
        server.closeAllConnections();
      }),
  };
}
