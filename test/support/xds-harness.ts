/**
 * A real xDS server on 127.0.0.1:<ephemeral> over a fresh SnapshotCache, for loopback tests:
 * publish resource sets, open raw ADS streams (test/support/ads-client.ts), close everything.
 */
import { buildSnapshot, type Snapshot } from '../../src/cache/snapshot.js';
import { DEFAULT_GROUP, SnapshotCache } from '../../src/cache/snapshot-cache.js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { createXdsServer, type XdsLimits, type XdsServer } from '../../src/server/index.js';
import type { TransportSecurity } from '../../src/common/transport-security.js';
import { silentLogger, type Logger } from '../../src/log.js';
import type { XdsResourceSet } from '../../src/xds/resources.js';
import { AdsConnection, type AdsStream, type AdsStreamOptions } from './ads-client.js';

export interface XdsHarness {
  readonly cache: SnapshotCache;
  readonly server: XdsServer;
  readonly port: number;
  readonly conn: AdsConnection;
  /** Build and set a snapshot for a group (default 'default'). */
  publish(set: XdsResourceSet, group?: string): Snapshot;
  stream(opts?: AdsStreamOptions): AdsStream;
  close(): Promise<void>;
}

export interface XdsHarnessOptions {
  readonly set?: XdsResourceSet;
  readonly logger?: Logger;
  readonly cache?: SnapshotCache;
  readonly grpcOptions?: ChannelOptions;
  /** false: responses through grpc-js's stream (the server's fallback write path). */
  readonly directWrites?: boolean;
  readonly limits?: Partial<XdsLimits>;
  /** TLS and the identity rule; then `conn` is plaintext: open TLS connections with AdsConnection. */
  readonly security?: TransportSecurity;
}

export async function startXds(opts: XdsHarnessOptions = {}): Promise<XdsHarness> {
  const cache = opts.cache ?? new SnapshotCache();
  if (opts.set) cache.set(DEFAULT_GROUP, buildSnapshot(opts.set));
  const server = createXdsServer({
    cache,
    logger: opts.logger ?? silentLogger,
    shutdownGraceMs: 500,
    ...(opts.grpcOptions !== undefined ? { grpcOptions: opts.grpcOptions } : {}),
    ...(opts.directWrites !== undefined ? { directWrites: opts.directWrites } : {}),
    ...(opts.limits !== undefined ? { limits: opts.limits } : {}),
    ...(opts.security !== undefined ? { security: opts.security } : {}),
  });
  const port = await server.listen('127.0.0.1', 0);
  const conn = new AdsConnection(`127.0.0.1:${port}`);
  return {
    cache,
    server,
    port,
    conn,
    publish(set, group = DEFAULT_GROUP) {
      const s = buildSnapshot(set);
      cache.set(group, s);
      return s;
    },
    stream: (o) => conn.stream({ node: { id: 'node-1', cluster: 'web' }, ...o }),
    async close() {
      conn.close();
      await server.close();
    },
  };
}

/** Poll until `cond` holds (for state that settles after a network round trip). */
export async function eventually(cond: () => boolean, timeoutMs = 2_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * ACK whatever the stream receives until the server reports the node up to date on `types`
 * (deterministic, unlike waiting for a quiet period, which a loaded machine can fool).
 */
export async function ackUntilUpToDate(h: XdsHarness, s: AdsStream, nodeId: string, types: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const st = h.server.registry.nodeStatus(nodeId);
    if (st?.upToDate && Object.keys(st.types).length === types) return;
    if (Date.now() > end) throw new Error(`${nodeId} not up to date after ${timeoutMs} ms: ${JSON.stringify(st)}`);
    const r = await s.next(50).catch(() => undefined);
    if (r) s.ack(r);
  }
}
