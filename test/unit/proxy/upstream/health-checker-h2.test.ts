/**
 * Active health checks over HTTP/2 (`codec_client_type: HTTP2`, src/proxy/upstream/health-checker.ts,
 * on the own HTTP/2 codec) against a node:http2 (nghttp2) server: the probe carries the configured
 * method, path, :authority and `user-agent: Envoy/HC`; an expected status keeps the host healthy,
 * another status fails it at once, a server that goes away counts as a network failure; a 1xx head
 * before the answer does not decide the check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { HealthChecker } from '../../../../src/proxy/upstream/health-checker.js';
import { Host } from '../../../../src/proxy/upstream/host.js';
import { ClusterStats } from '../../../../src/proxy/stats.js';
import type { HealthCheckModel } from '../../../../src/proxy/config/cluster-resource.js';

const MODEL: HealthCheckModel = {
  timeoutMs: 1000,
  intervalMs: 50,
  noTrafficIntervalMs: 50,
  noTrafficHealthyIntervalMs: 50,
  unhealthyIntervalMs: 50,
  unhealthyEdgeIntervalMs: 50,
  healthyEdgeIntervalMs: 50,
  initialJitterMs: 0,
  intervalJitterMs: 0,
  healthyThreshold: 1,
  unhealthyThreshold: 2,
  reuseConnection: true,
  kind: 'http',
  host: 'hc.test',
  path: '/healthz',
  method: 'GET',
  http2: true,
  expected: [{ start: 200, end: 201 }],
};

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('HTTP/2 health checks: expected status healthy, another unhealthy at once, a gone server a network failure', async () => {
  let status = 200;
  let early = false;
  const seen: http2.IncomingHttpHeaders[] = [];
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  server.on('stream', (stream, headers) => {
    seen.push(headers);
    if (early) stream.additionalHeaders({ ':status': 103 });
    stream.respond({ ':status': status });
    stream.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = new Host('127.0.0.1', (server.address() as AddressInfo).port);
  const stats = new ClusterStats();
  let changes = 0;
  const hc = new HealthChecker(
    MODEL,
    { stats, hasTraffic: () => false, onHealthChanged: () => void changes++, onHealthCheckSuccess: () => undefined },
    undefined,
  );
  try {
    hc.addHost(host);
    await hc.firstRound();
    assert.equal(host.failedActiveHc, false, 'a 200 makes the host healthy');
    const h = seen[0]!;
    assert.deepEqual([h[':method'], h[':path'], h[':authority'], h[':scheme'], h['user-agent']], ['GET', '/healthz', 'hc.test', 'http', 'Envoy/HC']);
    assert.equal(sessions.size, 1, 'checks reuse one connection');

    early = true;
    const before = stats.health_check.success;
    await until(() => stats.health_check.success > before + 2, 'checks answered 103 then 200');
    assert.equal(host.failedActiveHc, false, 'a 103 before the 200 does not fail the check');

    status = 503;
    await until(() => host.failedActiveHc, 'the host failing on a 503');
    assert.equal(stats.health_check.network_failure, 0, 'an unexpected status is a failure, not a network failure');

    status = 200;
    await until(() => !host.failedActiveHc, 'the host healthy again');

    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await until(() => stats.health_check.network_failure >= 2 && host.failedActiveHc, 'network failures after the server went');
    assert.ok(changes >= 3);
  } finally {
    hc.close();
    server.close();
  }
});
