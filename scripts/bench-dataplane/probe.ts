/**
 * Readiness probes: is a target (an upstream, or a data plane with its config applied) answering
 * both benchmark protocols? In: a port on 127.0.0.1. Out: resolves once one HTTP/1.1 request
 * and one gRPC call through it succeed; rejects with what was last seen after the deadline.
 */
import http2 from 'node:http2';
import { waitUntil } from '../../test/support/tmp.js';
import { ECHO_PATH, framedRequest } from './echo.js';
import { H1_PATH } from './load.js';

async function h1Ok(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}${H1_PATH}`);
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${H1_PATH}: HTTP ${res.status} ${body.slice(0, 200)}`);
  return true;
}

/** One unary call; resolves with the grpc-status of the trailers (or of a trailers-only answer). */
function grpcStatus(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const done = (err: Error | undefined, status?: string): void => {
      session.close();
      if (err) reject(err);
      else resolve(status ?? 'none');
    };
    session.once('error', (err) => done(err));
    const req = session.request({ ':method': 'POST', ':path': ECHO_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    let status: string | undefined;
    req.once('response', (h) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    });
    req.once('trailers', (t) => {
      if (t['grpc-status'] !== undefined) status = String(t['grpc-status']);
    });
    req.once('error', (err) => done(err));
    req.on('data', () => undefined);
    req.once('end', () => done(undefined, status));
    req.setTimeout(2000, () => req.close());
    req.end(framedRequest());
  });
}

export async function waitServing(what: string, h1Port: number, grpcPort: number, timeoutMs = 30_000): Promise<void> {
  await waitUntil(() => h1Ok(h1Port), { what: `${what} to answer ${H1_PATH} with 200`, timeoutMs, intervalMs: 100 });
  await waitUntil(
    async () => {
      const s = await grpcStatus(grpcPort);
      if (s !== '0') throw new Error(`grpc-status ${s}`);
      return true;
    },
    { what: `${what} to answer ${ECHO_PATH} with grpc-status 0`, timeoutMs, intervalMs: 100 },
  );
}
