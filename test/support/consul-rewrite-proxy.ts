/**
 * A tampering HTTP proxy in front of a real Consul agent, for records Consul 1.8.7 will not store:
 * its agent API refuses weights above 65535 and its catalog API resets them to 1, yet newer or
 * patched Consuls, and bugs, do send such answers. In: the agent's address and a rewrite of
 * decoded JSON bodies per path. Out: the proxy's address. Everything else (status, headers such as
 * X-Consul-Index, blocking waits) passes through, so the watch under test talks Consul's protocol
 * to a real agent. Loopback only.
 */
import http from 'node:http';
import { listenHttp } from './upstreams.js';

export interface RewriteProxy {
  /** http://127.0.0.1:<port> */
  readonly address: string;
  close(): Promise<void>;
}

export async function startRewriteProxy(target: string, rewrite: (path: string, json: unknown) => unknown): Promise<RewriteProxy> {
  const agent = new http.Agent({ keepAlive: true });
  const server = await listenHttp((req, res) => {
    const upstream = http.request(new URL(req.url ?? '/', target), { method: req.method, headers: req.headers, agent }, (up) => {
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', () => {
        let body = Buffer.concat(chunks).toString('utf8');
        const path = new URL(req.url ?? '/', target).pathname;
        if (up.statusCode === 200 && /json/.test(String(up.headers['content-type']))) body = JSON.stringify(rewrite(path, JSON.parse(body)));
        const headers = { ...up.headers, 'content-length': String(Buffer.byteLength(body)) };
        delete headers['transfer-encoding'];
        res.writeHead(up.statusCode ?? 502, headers);
        res.end(body);
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  return {
    address: `http://127.0.0.1:${server.port}`,
    async close() {
      await server.close();
      agent.destroy();
    },
  };
}
