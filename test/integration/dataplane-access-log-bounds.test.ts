/**
 * Access logging of our data plane (`consul-xds proxy`, a child process through the real CLI)
 * when the log destinations stop taking data: a gRPC ALS sink that accepts the HTTP/2 stream but
 * never reads it (so flow control stops the proxy's writes), and a file access log on a FIFO
 * whose reader never reads (so writes stop once the pipe buffer is full). Both loggers sit on one
 * listener. Requests carry 12 KB paths, so every entry is big: without bounds the proxy would
 * hold ~100 MB of log data per logger after the second burst. Checked: every request is answered
 * 200, drops are counted (access_logs.grpc_access_log.logs_dropped, access_log.file.logs_dropped),
 * the buffered-bytes gauges stay under their bounds, and server.memory_allocated does not follow
 * the traffic (on the code before the bounds: +183 MiB over the second burst, no drop counted).
 * Then SIGTERM: the stuck destinations do not keep the process alive.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadExtras } from '../../src/proxy/xds/resource-types.js';
import { startDataPlane, type DataPlane } from '../support/dataplanes.js';
import { startXds, type XdsHarness } from '../support/xds-harness.js';
import { listenHttp } from '../support/upstreams.js';
import { sendMany } from '../support/traffic.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const HTTP_GRPC_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig';
const MiB = 1024 * 1024;
/** Bounds of src/proxy: ALS pending 4 MiB + 1 MiB on the stream; 8 MiB queued per log file. */
const ALS_BOUND = 5 * MiB;
const FILE_BOUND = 8 * MiB;

function address(port: number): Record<string, unknown> {
  return { socket_address: { address: '127.0.0.1', port_value: port } };
}

describe('our proxy: access logs to destinations that stopped reading stay bounded', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let xds: XdsHarness | undefined;
  let dp: DataPlane | undefined;
  let upstream: Awaited<ReturnType<typeof listenHttp>> | undefined;
  let sink: http2.Http2Server | undefined;
  let fifoReader: number | undefined;
  const sinkStreams: http2.ServerHttp2Stream[] = [];
  let port = 0;

  before(async () => {
    dir = await makeTempDir('dataplane-log-bounds');
    upstream = await listenHttp((_req, res) => res.end('ok'));
    // The ALS sink: takes the stream, never reads it, never answers.
    sink = http2.createServer();
    sink.on('stream', (stream) => {
      stream.pause();
      sinkStreams.push(stream);
    });
    await new Promise<void>((resolve) => sink?.listen(0, '127.0.0.1', resolve));
    const sinkPort = (sink.address() as AddressInfo).port;
    // The file: a FIFO with a reader that never reads (a disk that stopped taking writes).
    const fifo = join(dir.path, 'access.fifo');
    execFileSync('mkfifo', [fifo]);
    fifoReader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    port = await freePort();
    loadExtras();
    xds = await startXds({
      set: {
        clusters: [
          {
            name: 'web',
            type: 'STATIC',
            connect_timeout: { seconds: 1 },
            load_assignment: { cluster_name: 'web', endpoints: [{ lb_endpoints: [{ endpoint: { address: address(upstream.port) } }] }] },
          },
          {
            name: 'als',
            type: 'STATIC',
            connect_timeout: { seconds: 1 },
            load_assignment: { cluster_name: 'als', endpoints: [{ lb_endpoints: [{ endpoint: { address: address(sinkPort) } }] }] },
          },
        ],
        endpoints: [],
        routes: [],
        listeners: [
          {
            name: 'edge',
            address: address(port),
            filter_chains: [
              {
                filters: [
                  {
                    name: 'hcm',
                    typed_config: {
                      '@type': HCM,
                      stat_prefix: 'edge',
                      route_config: {
                        name: 'r',
                        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'web' } }] }],
                      },
                      http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }],
                      access_log: [
                        {
                          name: 'als',
                          typed_config: {
                            '@type': HTTP_GRPC_LOG,
                            common_config: {
                              log_name: 'stalled',
                              grpc_service: { envoy_grpc: { cluster_name: 'als' } },
                              transport_api_version: 'V3',
                              buffer_size_bytes: { value: 0 },
                            },
                          },
                        },
                        {
                          name: 'file',
                          typed_config: {
                            '@type': FILE_LOG,
                            path: fifo,
                            log_format: { json_format: { fields: { path: { stringValue: '%REQ(:PATH)%' }, code: { stringValue: '%RESPONSE_CODE%' } } } },
                          },
                        },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
      },
    });
    dp = await startDataPlane('ts-proxy', { xdsPort: xds.port, nodeId: 'dp-log-bounds', nodeCluster: 'edge' });
    await dp.ready();
  });

  after(async () => {
    await dp?.stop();
    await xds?.close();
    for (const s of sinkStreams) s.destroy();
    sink?.close();
    await upstream?.close();
    if (fifoReader !== undefined) closeSync(fifoReader);
    await dir?.remove();
  });

  it('keeps serving, counts drops, and holds memory flat', async () => {
    const d = dp as DataPlane;
    const path = `/big/${'a'.repeat(12 * 1024)}`;
    const burst = async (count: number): Promise<void> => {
      const t = await sendMany({ port, host: 'x', path, count, concurrency: 16 });
      assert.equal(t.byStatus.get(200), count, t.describe());
    };
    const stat = async (name: string): Promise<number> => {
      const v = await d.stat(name);
      assert.notEqual(v, undefined, `${name} missing from /stats`);
      return v as number;
    };
    // First burst: both destinations stall and their buffers fill to the bound.
    await burst(1500);
    const memBefore = await stat('server.memory_allocated');
    // Second burst: ~100 MB more log text per logger, which would all stay in memory unbounded.
    await burst(8000);
    const memAfter = await stat('server.memory_allocated');

    const alsDropped = await stat('access_logs.grpc_access_log.logs_dropped');
    const fileDropped = await stat('access_log.file.logs_dropped');
    const alsBuffered = await stat('access_log.grpc.buffered_bytes');
    const fileBuffered = await stat('access_log.file.buffered_bytes');
    const grown = memAfter - memBefore;
    process.stdout.write(
      `# stalled logs: 9500 requests of 12 KB paths: ALS dropped ${alsDropped}, buffered ${alsBuffered} B; file dropped ${fileDropped}, ` +
        `buffered ${fileBuffered} B; server.memory_allocated ${(memBefore / MiB).toFixed(1)} -> ${(memAfter / MiB).toFixed(1)} MiB\n`,
    );
    assert.ok(sinkStreams.length >= 1, 'the proxy opened an ALS stream to the sink');
    assert.ok(alsDropped >= 8000, `ALS drops counted (${alsDropped})`);
    assert.ok(fileDropped >= 8000, `file drops counted (${fileDropped})`);
    assert.ok(alsBuffered <= ALS_BOUND + 64 * 1024, `ALS buffer ${alsBuffered} B within its bound`);
    assert.ok(fileBuffered <= FILE_BOUND, `file queue ${fileBuffered} B within its bound`);
    // Unbounded, the second burst alone would add ~200 MB; garbage not yet collected is the slack.
    assert.ok(grown < 64 * MiB, `memory grew ${(grown / MiB).toFixed(1)} MiB over the second burst`);
  });

  it('exits on SIGTERM although both destinations are stuck', async () => {
    // stop() sends SIGTERM and SIGKILLs after 5 s; the drain time is 1 s, the log close waits 1 s.
    const t0 = Date.now();
    await (dp as DataPlane).stop();
    const tookMs = Date.now() - t0;
    assert.ok(tookMs < 4_000, `the proxy took ${tookMs} ms to exit (5 s means it was killed)`);
  });
});
