/**
 * The admin server end to end over loopback, with our real xDS server and a raw ADS client
 * (test/support/ads-client.ts) standing in for Envoy's protocol behaviour: health is not ready
 * before a snapshot and before the first ACK, ready after; the maintenance file flips it to 599
 * and back on the very next request; an unACKed new version is tolerated for the grace period
 * and then reported; a NACK shows on /status/clients (message and time) and fails health;
 * /metrics and /config_dump reflect it all.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SnapshotCache } from '../../../src/cache/snapshot-cache.js';
import { buildSnapshot, type Snapshot } from '../../../src/cache/snapshot.js';
import { createXdsServer, type XdsServer, type NodeStatus } from '../../../src/server/index.js';
import { startSidecar, type Sidecar } from '../../../src/sidecar.js';
import { silentLogger } from '../../../src/log.js';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import { AdsConnection, type AdsResponse, type AdsStream } from '../../support/ads-client.js';

const GRACE_MS = 800;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxds-admin-'));
const maintenanceFile = path.join(dir, 'maintenance');
const cache = new SnapshotCache();
let xds: XdsServer;
let sidecar: Sidecar;
let watching: Sidecar;
let conn: AdsConnection;
let base = '';

function snapshotWith(timeoutSeconds: number): Snapshot {
  return buildSnapshot({
    clusters: [{ name: 'web', type: 'EDS', connect_timeout: { seconds: timeoutSeconds }, eds_cluster_config: { eds_config: { ads: {} } } }],
    endpoints: [{ cluster_name: 'web', endpoints: [] }],
    listeners: [],
    routes: [],
  });
}

async function get(p: string, at = base): Promise<{ status: number; body: string; type: string }> {
  const res = await fetch(`${at}${p}`);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') ?? '' };
}

async function health(at = base): Promise<{ status: number; reasons: string[]; body: string }> {
  const r = await get('/_my_health_check', at);
  const reasons = r.status === 503 ? (JSON.parse(r.body) as { problems: Array<{ reason: string }> }).problems.map((p) => p.reason) : [];
  return { status: r.status, reasons, body: r.body };
}

before(async () => {
  xds = createXdsServer({ cache, logger: silentLogger });
  const xdsPort = await xds.listen('127.0.0.1', 0);
  sidecar = await startSidecar({
    cache,
    registry: xds.registry,
    logger: silentLogger,
    admin: { port: 0, healthPath: '/_my_health_check', maintenanceFile, graceMs: GRACE_MS },
    als: { port: 0, file: path.join(dir, 'access.log') },
    processMetrics: false,
  });
  watching = await startSidecar({
    cache,
    registry: xds.registry,
    logger: silentLogger,
    admin: { port: 0, healthPath: '/_my_health_check', watchNode: 'envoy-elsewhere' },
    als: false,
    processMetrics: false,
  });
  base = `http://127.0.0.1:${sidecar.adminPort}`;
  conn = new AdsConnection(`127.0.0.1:${xdsPort}`);
});

after(async () => {
  conn.close();
  await sidecar.close();
  await watching.close();
  await xds.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

let stream: AdsStream;

test('not ready without a snapshot and without a connected node', async () => {
  const h = await health();
  assert.equal(h.status, 503);
  assert.deepEqual(h.reasons, ['no-snapshot', 'no-envoy-connected']);
  assert.equal((await get('/config_dump')).status, 404);
  cache.set('default', snapshotWith(1));
  assert.deepEqual((await health()).reasons, ['no-envoy-connected']);
});

test('not ready before the first ACK, ready right after it', async () => {
  stream = conn.stream({ node: { id: 'envoy-1', cluster: 'edge' } });
  stream.subscribe(TypeUrl.Cluster);
  const cds = await take(TypeUrl.Cluster);
  assert.deepEqual(cds.names, ['web']);
  const before = await health();
  assert.deepEqual([before.status, before.reasons], [503, ['awaiting-first-ack']]);
  stream.ack(cds);
  stream.subscribe(TypeUrl.ClusterLoadAssignment, ['web']);
  stream.ack(await take(TypeUrl.ClusterLoadAssignment));
  await drain();
  await waitFor(async () => (await health()).status === 200, 'health 200 after the ACKs');
  assert.equal((await get('/_my_health_check')).body, 'OK');
});

test('the maintenance file flips health to 599 MAINTENANCE and back on the next request', async () => {
  fs.writeFileSync(maintenanceFile, '');
  const m = await get('/_my_health_check');
  assert.deepEqual([m.status, m.body], [599, 'MAINTENANCE']);
  fs.rmSync(maintenanceFile);
  assert.equal((await get('/_my_health_check')).status, 200);
});

test('a new version is tolerated for the grace period, then reported', async () => {
  const sentAt = Date.now();
  cache.set('default', snapshotWith(2));
  const cds = await take(TypeUrl.Cluster);
  const eds = await take(TypeUrl.ClusterLoadAssignment);
  assert.equal((await health()).status, 200, 'inside the grace period the old ACKed version is fine');
  await waitFor(async () => (await health()).status === 503, 'health 503 after the grace period');
  assert.ok(Date.now() - sentAt >= GRACE_MS, 'not before the grace period is over');
  // A CDS change re-sends the CLA (warming), so both types are outstanding.
  const overdue = JSON.parse((await health()).body) as { problems: Array<{ reason: string; type: string; node: string }> };
  assert.deepEqual(
    overdue.problems.map((p) => [p.reason, p.type, p.node]),
    [
      ['ack-overdue', 'CDS', 'envoy-1'],
      ['ack-overdue', 'EDS', 'envoy-1'],
    ],
  );
  stream.ack(cds);
  stream.ack(eds);
  await drain();
  await waitFor(async () => (await health()).status === 200, 'health 200 once ACKed');
});

test('a NACK shows on /status/clients and fails health', async () => {
  cache.set('default', snapshotWith(3));
  const cds = await take(TypeUrl.Cluster);
  stream.nack(cds, 'cluster web: connect_timeout not liked');
  await drain(); // ACKs the warming CLA
  await waitFor(async () => (await health()).reasons.includes('nacked'), 'health to report the NACK');
  const h = await health();
  assert.equal(h.status, 503);
  assert.match(h.body, /connect_timeout not liked/);

  const status = JSON.parse((await get('/status/clients')).body) as { nodes: NodeStatus[] };
  const node = status.nodes.find((n) => n.nodeId === 'envoy-1');
  assert.ok(node, 'envoy-1 listed');
  const cdsStatus = node.types.CDS!;
  assert.equal(cdsStatus.sentVersion, cds.versionInfo);
  assert.notEqual(cdsStatus.ackedVersion, cds.versionInfo, 'the ACKed version stays the previous one');
  assert.equal(cdsStatus.lastNack?.message, 'cluster web: connect_timeout not liked');
  assert.equal(cdsStatus.lastNack?.version, cds.versionInfo);
  assert.ok(Date.now() - Date.parse(cdsStatus.lastNack!.at) < 10_000, 'the NACK time is recent');
  assert.equal(node.nacked, true);

  const metrics = (await get('/metrics')).body;
  assert.match(metrics, /^consul_xds_xds_nacks_total\{type="CDS"\} 1$/m);
  assert.match(metrics, /^consul_xds_xds_acks_total\{type="CDS"\} 2$/m);
  assert.match(metrics, /^consul_xds_xds_responses_total\{type="CDS"\} 3$/m);
  assert.match(metrics, /^consul_xds_xds_streams 1$/m);
});

test('/config_dump serves the current snapshot; /metrics carries pipeline figures', async () => {
  const dump = JSON.parse((await get('/config_dump')).body) as {
    groups: Record<string, { types: { CDS: { resources: Array<{ name: string; resource: { connect_timeout: unknown } }> } } }>;
  };
  const web = dump.groups.default?.types.CDS.resources[0];
  assert.equal(web?.name, 'web');
  assert.deepEqual(web?.resource.connect_timeout, { seconds: 3 }, 'the latest snapshot, not the first');
  assert.equal((await get('/config_dump?node=envoy-1')).status, 200);
  assert.equal((await get('/config_dump?node=nobody')).status, 404);

  sidecar.metrics.observeSnapshotBuild(12);
  sidecar.metrics.recordConfigError('CXDS_CONFIG_INVALID');
  const metrics = (await get('/metrics')).body;
  assert.match(metrics, /^consul_xds_snapshot_build_seconds_count 1$/m);
  assert.match(metrics, /^consul_xds_snapshot_build_seconds_bucket\{le="0.025"\} 1$/m);
  assert.match(metrics, /^consul_xds_config_errors_total\{code="CXDS_CONFIG_INVALID"\} 1$/m);
  assert.match(metrics, /^consul_xds_access_log_lines_dropped_total 0$/m);
});

test('a watched node that is not connected fails health even while others are fine', async () => {
  const h = await health(`http://127.0.0.1:${watching.adminPort}`);
  assert.deepEqual([h.status, h.reasons], [503, ['node-not-connected']]);
  assert.equal((await get('/stats/access-log', `http://127.0.0.1:${watching.adminPort}`)).status, 404);
  assert.equal((await get('/stats/clusters', `http://127.0.0.1:${watching.adminPort}`)).status, 404);
});

test('/stats/clusters answers raw counts over ?seconds (capped at the window); a bad value is named', async () => {
  const r = await get('/stats/clusters?seconds=5');
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body) as { seconds: number; windowSeconds: number; clusters: unknown[] };
  assert.equal(body.seconds, 5);
  assert.ok(Array.isArray(body.clusters));
  assert.equal((JSON.parse((await get('/stats/clusters?seconds=100000')).body) as { seconds: number }).seconds, body.windowSeconds);
  const bad = await get('/stats/clusters?seconds=abc');
  assert.equal(bad.status, 400);
  assert.match(bad.body, /seconds: expected an integer >= 1, got 'abc'/);
});

test('unknown paths 404 with the list of endpoints; other methods 405', async () => {
  const r = await get('/nope');
  assert.equal(r.status, 404);
  assert.deepEqual((JSON.parse(r.body) as { endpoints: string[] }).endpoints, [
    '/',
    '/_my_health_check',
    '/config_dump',
    '/metrics',
    '/stats/access-log',
    '/stats/clusters',
    '/status/clients',
  ]);
  assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
});

test('options are validated at the edge, errors name the option; an unopenable log file fails start-up', async () => {
  const base = { cache, registry: xds.registry, logger: silentLogger, processMetrics: false };
  await assert.rejects(startSidecar({ ...base, admin: { port: 70000 }, als: false }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CXDS_CONFIG_INVALID');
    assert.match(err.message, /sidecar\.admin\.port/);
    return true;
  });
  await assert.rejects(startSidecar({ ...base, admin: { port: 0, healthPath: 'health' }, als: false }), /sidecar\.admin\.healthPath/);
  await assert.rejects(startSidecar({ ...base, admin: { port: 0 }, als: { port: 0, file: path.join(dir, 'no-such-dir', 'access.log') } }), /ENOENT/);
});

test('the node disconnecting makes health fail again', async () => {
  stream.cancel();
  await waitFor(async () => (await health()).reasons.includes('no-envoy-connected'), 'health to see the node gone');
});

/**
 * The next response of `typeUrl`. Responses of other types arriving first are ACKed: they are not
 * what the test step is about, and leaving them unanswered would make health report them.
 */
async function take(typeUrl: string): Promise<AdsResponse> {
  for (;;) {
    const r = await stream.next(3000);
    if (r.typeUrl === typeUrl) return r;
    stream.ack(r);
  }
}

/** ACK whatever else arrives until the server has been quiet for 150 ms. */
async function drain(): Promise<void> {
  for (;;) {
    const r = await stream.next(150).catch(() => undefined);
    if (!r) return;
    stream.ack(r);
  }
}

async function waitFor(probe: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
