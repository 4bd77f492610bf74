/**
 * A TLS front for a plaintext port, for tests of clients that must speak TLS to our servers (the
 * TS proxy's xDS client) without a TLS option in the server itself. In: the server certificate,
 * optionally a client CA (then client certificates are required and verified) and the plaintext
 * port on 127.0.0.1. Out: a TLS port on 127.0.0.1 (ALPN h2, as gRPC needs) that pipes each
 * connection to the target, and a record of handshakes (SNI, client certificate CN) and failures.
 */
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { CertFiles } from './tls-certs.js';

export interface TlsForwarder {
  readonly port: number;
  /** Handshakes done: the SNI the client sent ('' none) and its certificate's CN ('' none). */
  readonly accepted: ReadonlyArray<{ readonly sni: string; readonly clientCn: string }>;
  /** Handshakes that failed (their error messages). */
  readonly failed: readonly string[];
  close(): Promise<void>;
}

export async function startTlsForwarder(opts: { server: CertFiles; clientCa?: string; targetPort: number }): Promise<TlsForwarder> {
  const accepted: Array<{ sni: string; clientCn: string }> = [];
  const failed: string[] = [];
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const server = tls.createServer(
    {
      cert: readFileSync(opts.server.cert),
      key: readFileSync(opts.server.key),
      ALPNProtocols: ['h2'],
      ...(opts.clientCa ? { ca: readFileSync(opts.clientCa), requestCert: true, rejectUnauthorized: true } : {}),
    },
    (down) => {
      const peer = down.getPeerCertificate();
      accepted.push({
        sni: typeof down.servername === 'string' ? down.servername : '',
        clientCn: typeof peer?.subject?.CN === 'string' ? peer.subject.CN : '',
      });
      const up = net.connect({ host: '127.0.0.1', port: opts.targetPort });
      track(down);
      track(up);
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
      down.pipe(up).pipe(down);
    },
  );
  server.on('tlsClientError', (err) => failed.push(err.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    failed,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
