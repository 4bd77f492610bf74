/**
 * The health decision (pure part) and the maintenance-file rule: maintenance wins, then missing
 * snapshot, missing node, NACKed, never ACKed, ACK overdue past the grace period, Envoy /ready;
 * an older ACKed version inside the grace period is still healthy. Whose state decides: the local
 * node (--watch-node, or the id Envoy's admin /server_info reports, asked again once that node's
 * stream is gone), else any one good client, with the others' problems listed but not failing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { evaluateHealth, HealthChecker, maintenanceFileExists, probeEnvoyReady, type HealthInput } from '../../../src/admin/health.js';
import type { NodeStatus, NodeTypeStatus } from '../../../src/server/stream-registry.js';
import { TypeUrl } from '../../../src/xds/resource-types.js';
import { ackUntilUpToDate, eventually, startXds } from '../../support/xds-harness.js';
import { resourceSet } from '../../support/xds-fixtures.js';

const NOW = 1_700_000_000_000;

function typeStatus(over: Partial<NodeTypeStatus>): NodeTypeStatus {
  return {
    typeUrl: TypeUrl.Cluster,
    type: 'CDS',
    wildcard: true,
    names: [],
    lastResponseNacked: false,
    responses: 1,
    acks: 1,
    nacks: 0,
    streamId: 1,
    currentVersion: 'v2',
    sentVersion: 'v2',
    ackedVersion: 'v2',
    upToDate: true,
    ...over,
  };
}

function node(id: string, types: Partial<Record<'CDS' | 'EDS' | 'LDS' | 'RDS', NodeTypeStatus>>): NodeStatus {
  const all = Object.values(types);
  return { nodeId: id, group: 'default', streams: 1, types, upToDate: all.every((t) => t.upToDate), nacked: all.some((t) => t.lastResponseNacked) };
}

function input(over: Partial<HealthInput>): HealthInput {
  return {
    maintenance: false,
    hasSnapshot: true,
    nodes: [node('envoy-1', { CDS: typeStatus({}), LDS: typeStatus({ typeUrl: TypeUrl.Listener, type: 'LDS' }) })],
    groupHasSnapshot: () => true,
    outstandingSince: () => undefined,
    now: NOW,
    graceMs: 5000,
    ...over,
  };
}

const reasons = (i: HealthInput) => evaluateHealth(i).problems.map((p) => p.reason);

test('all good: 200 OK', () => {
  const r = evaluateHealth(input({}));
  assert.deepEqual([r.status, r.body], [200, 'OK']);
});

test('maintenance wins over everything', () => {
  const r = evaluateHealth(input({ maintenance: true, hasSnapshot: false, nodes: [] }));
  assert.deepEqual([r.status, r.body], [599, 'MAINTENANCE']);
});

test('no snapshot, no node connected', () => {
  let r = evaluateHealth(input({ hasSnapshot: false, nodes: [] }));
  assert.equal(r.status, 503);
  assert.deepEqual(
    JSON.parse(r.body).problems.map((p: { reason: string }) => p.reason),
    ['no-snapshot', 'no-envoy-connected'],
  );
  r = evaluateHealth(input({ localNode: 'envoy-7', nodes: [] }));
  assert.deepEqual(r.problems, [{ reason: 'node-not-connected', node: 'envoy-7', detail: "Envoy node 'envoy-7' has no xDS stream open" }]);
  assert.deepEqual(reasons(input({ groupHasSnapshot: () => false })), ['no-snapshot']);
});

test('a NACKed last response fails at once and names the node, type and message', () => {
  const nacked = typeStatus({
    type: 'LDS',
    typeUrl: TypeUrl.Listener,
    upToDate: false,
    lastResponseNacked: true,
    sentVersion: 'v3',
    currentVersion: 'v3',
    lastNack: { version: 'v3', code: 13, message: 'bad listener', at: '2023-11-14T22:13:20.000Z', count: 1 },
  });
  const r = evaluateHealth(input({ nodes: [node('envoy-1', { CDS: typeStatus({}), LDS: nacked })] }));
  assert.equal(r.status, 503);
  assert.deepEqual(r.problems, [
    { reason: 'nacked', node: 'envoy-1', type: 'LDS', detail: "node 'envoy-1' rejected LDS version v3: bad listener", since: '2023-11-14T22:13:20.000Z' },
  ]);
});

test('after a NACK: rolled back to the ACKed version is fine; a newer version is pending like any other', () => {
  const lastNack = { version: 'v3', code: 13, message: 'bad', at: '2023-11-14T22:13:20.000Z', count: 1 };
  // The cache went back to v2, which the node ACKed before it NACKed v3; nothing is pending.
  const rolledBack = typeStatus({ upToDate: false, lastResponseNacked: true, lastNack, currentVersion: 'v2', ackedVersion: 'v2', sentVersion: 'v3' });
  assert.equal(evaluateHealth(input({ nodes: [node('e', { CDS: rolledBack })] })).status, 200);
  // The cache moved on to v4 and the server sent it: within the grace period that is fine, after it overdue.
  const movedOn = typeStatus({
    upToDate: false,
    lastResponseNacked: true,
    lastNack,
    currentVersion: 'v4',
    ackedVersion: 'v2',
    sentVersion: 'v4',
    pendingNonce: 'n4',
  });
  assert.equal(evaluateHealth(input({ nodes: [node('e', { CDS: movedOn })], outstandingSince: () => NOW - 10 })).status, 200);
  assert.deepEqual(reasons(input({ nodes: [node('e', { CDS: movedOn })], outstandingSince: () => NOW - 6000 })), ['ack-overdue']);
});

test('sent but never ACKed fails at once; nothing sent yet is not a problem', () => {
  const waiting = typeStatus({ upToDate: false, ackedVersion: undefined, pendingNonce: 'n1' });
  assert.deepEqual(reasons(input({ nodes: [node('e', { CDS: waiting })], outstandingSince: () => NOW - 10 })), ['awaiting-first-ack']);
  // Judged as the local node (with no local node named, a client that has ACKed nothing does not vouch: below).
  const notSent = typeStatus({ upToDate: false, ackedVersion: undefined, sentVersion: undefined });
  assert.deepEqual(reasons(input({ localNode: 'e', nodes: [node('e', { CDS: notSent })] })), []);
});

test('an older ACKed version is fine within the grace period and fails after it', () => {
  const behind = typeStatus({ upToDate: false, ackedVersion: 'v1', sentVersion: 'v2', pendingNonce: 'n2' });
  const nodes = [node('e', { CDS: behind })];
  assert.equal(evaluateHealth(input({ nodes, outstandingSince: () => NOW - 4999 })).status, 200);
  const r = evaluateHealth(input({ nodes, outstandingSince: () => NOW - 5001 }));
  assert.deepEqual(
    r.problems.map((p) => [p.reason, p.type]),
    [['ack-overdue', 'CDS']],
  );
});

test('no local node named: one good client is enough; the others are listed, not failing', () => {
  const lastNack = { version: 'v3', code: 13, message: 'bad', at: '2023-11-14T22:13:20.000Z', count: 1 };
  const bad = node('other', { CDS: typeStatus({ upToDate: false, lastResponseNacked: true, lastNack, currentVersion: 'v3', sentVersion: 'v3' }) });
  const silent = node('never-acks', { CDS: typeStatus({ upToDate: false, ackedVersion: undefined, pendingNonce: 'n1' }) });
  const good = node('envoy-1', { CDS: typeStatus({}) });
  const r = evaluateHealth(input({ nodes: [good, bad, silent], outstandingSince: () => NOW - 10 }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(
    r.others.map((p) => [p.reason, p.node]),
    [
      ['nacked', 'other'],
      ['awaiting-first-ack', 'never-acks'],
    ],
  );
  assert.equal(r.contentType, 'application/json');
  const body = JSON.parse(r.body) as { status: string; problems: unknown[]; others: Array<{ node: string }> };
  assert.deepEqual([body.status, body.problems, body.others.map((p) => p.node)], ['OK', [], ['other', 'never-acks']]);
  // No client good: every client's problems fail health.
  assert.deepEqual(reasons(input({ nodes: [bad, silent], outstandingSince: () => NOW - 10 })), ['nacked', 'awaiting-first-ack']);
  // A client with nothing wrong that has ACKed nothing yet does not vouch.
  const fresh = node('fresh', { CDS: typeStatus({ upToDate: false, ackedVersion: undefined, sentVersion: undefined }) });
  const waiting = evaluateHealth(input({ nodes: [fresh] }));
  assert.deepEqual(waiting.problems, [{ reason: 'awaiting-first-ack', node: 'fresh', detail: "node 'fresh' has not ACKed any version yet" }]);
  assert.equal(evaluateHealth(input({ nodes: [fresh, good] })).status, 200);
});

test('a local node decides alone: its problems fail health, nobody else can vouch for it', () => {
  const lastNack = { version: 'v3', code: 13, message: 'bad', at: '2023-11-14T22:13:20.000Z', count: 1 };
  const nacked = node('envoy-1', { CDS: typeStatus({ upToDate: false, lastResponseNacked: true, lastNack, currentVersion: 'v3', sentVersion: 'v3' }) });
  // The caller passes only the local node's status.
  assert.equal(evaluateHealth(input({ localNode: 'envoy-1', nodes: [node('envoy-1', { CDS: typeStatus({}) })] })).status, 200);
  assert.deepEqual(reasons(input({ localNode: 'envoy-1', nodes: [nacked] })), ['nacked']);
  assert.deepEqual(
    evaluateHealth(input({ localNode: 'envoy-1', nodes: [] })).problems.map((p) => [p.reason, p.node]),
    [['node-not-connected', 'envoy-1']],
  );
  const unknown = evaluateHealth(input({ localNodeUnknown: 'Envoy admin http://127.0.0.1:1/server_info did not say which node it is: refused', nodes: [] }));
  assert.deepEqual(
    unknown.problems.map((p) => p.reason),
    ['local-node-unknown'],
  );
});

test('the body lists at most 20 problems and counts the rest', () => {
  const many = Array.from({ length: 25 }, (_, i) => node(`n${i}`, { CDS: typeStatus({ upToDate: false, ackedVersion: undefined, pendingNonce: 'n1' }) }));
  const r = evaluateHealth(input({ nodes: many, outstandingSince: () => NOW - 10 }));
  assert.equal(r.problems.length, 25);
  const body = JSON.parse(r.body) as { problems: unknown[]; problemsNotShown: number };
  assert.deepEqual([body.problems.length, body.problemsNotShown], [20, 5]);
  const withGood = JSON.parse(evaluateHealth(input({ nodes: [...many, node('ok', { CDS: typeStatus({}) })], outstandingSince: () => NOW - 10 })).body) as {
    others: unknown[];
    othersNotShown: number;
  };
  assert.deepEqual([withGood.others.length, withGood.othersNotShown], [20, 5]);
});

test('Envoy /ready not LIVE fails', () => {
  assert.deepEqual(reasons(input({ envoy: { live: false, state: 'PRE_INITIALIZING' } })), ['envoy-not-ready']);
  assert.equal(evaluateHealth(input({ envoy: { live: true, state: 'LIVE' } })).status, 200);
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxds-health-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('maintenance file: present exactly while stat succeeds', async () => {
  const file = path.join(dir, 'maintenance');
  assert.equal(await maintenanceFileExists(undefined), false);
  assert.equal(await maintenanceFileExists(file), false);
  fs.writeFileSync(file, '');
  assert.equal(await maintenanceFileExists(file), true);
  fs.rmSync(file);
  assert.equal(await maintenanceFileExists(file), false);
});

test('probeEnvoyReady reads /ready over real HTTP', async () => {
  let answer: [number, string] = [503, 'PRE_INITIALIZING\n'];
  const server = http.createServer((req, res) => {
    res.statusCode = req.url === '/ready' ? answer[0] : 404;
    res.end(answer[1]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    assert.deepEqual(await probeEnvoyReady(url, 1000), { live: false, state: 'PRE_INITIALIZING' });
    answer = [200, 'LIVE\n'];
    assert.deepEqual(await probeEnvoyReady(url, 1000), { live: true, state: 'LIVE' });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  const down = await probeEnvoyReady(url, 500);
  assert.equal(down.live, false);
  assert.match(down.state, /^unreachable/);
});

test('--envoy-admin: the node its /server_info names decides alone; asked again once that node is gone', { timeout: 20_000 }, async (t) => {
  const h = await startXds({ set: resourceSet() });
  t.after(() => h.close());
  let envoyNode = 'local-envoy';
  let serverInfoGets = 0;
  const admin = http.createServer((req, res) => {
    if (req.url === '/ready') return void res.end('LIVE\n');
    if (req.url !== '/server_info') return void res.writeHead(404).end();
    serverInfoGets++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ version: 'test', state: 'LIVE', node: { id: envoyNode, cluster: 'edge' } }));
  });
  await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
  const adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
  const checker = new HealthChecker({ cache: h.cache, registry: h.server.registry, envoyAdminUrl: adminUrl, graceMs: 5000 });
  t.after(() => checker.close());
  const judged = async () => (await checker.check()).problems.map((p) => [p.reason, p.node]);

  assert.deepEqual(await judged(), [['node-not-connected', 'local-envoy']]);
  // A client that never ACKs is neither judged nor listed: only the local Envoy counts.
  const stranger = h.stream({ node: { id: 'never-acks' } });
  stranger.subscribe(TypeUrl.Cluster);
  await stranger.next();
  const local = h.stream({ node: { id: 'local-envoy' } });
  local.subscribe(TypeUrl.Cluster);
  await ackUntilUpToDate(h, local, 'local-envoy', 1);
  const ok = await checker.check();
  assert.deepEqual([ok.status, ok.body, ok.others], [200, 'OK', []]);
  const gets = serverInfoGets;
  for (let i = 0; i < 5; i++) assert.equal((await checker.check()).status, 200);
  assert.equal(serverInfoGets, gets, 'the id is kept while that node is connected');

  // The local node NACKs: health fails, whatever the other clients do.
  h.publish(resourceSet({ connectTimeoutS: 4 }));
  local.nack(await local.next(), 'not this one');
  await eventually(() => h.server.registry.nodeStatus('local-envoy')?.nacked === true, 2000, 'the NACK');
  assert.deepEqual(await judged(), [['nacked', 'local-envoy']]);

  // Envoy restarts under another id: its stream goes, the admin is asked again.
  envoyNode = 'local-envoy-2';
  local.cancel();
  await eventually(() => h.server.registry.nodeStatus('local-envoy') === undefined, 2000, 'the local stream to close');
  assert.deepEqual(await judged(), [['node-not-connected', 'local-envoy-2']]);
  assert.ok(serverInfoGets > gets);

  // An admin that does not answer: the local node is unknown, and Envoy is not ready.
  admin.closeAllConnections();
  await new Promise((r) => admin.close(r));
  const down = await checker.check();
  assert.deepEqual(
    down.problems.map((p) => p.reason),
    ['local-node-unknown', 'envoy-not-ready'],
  );
  assert.match(down.problems[0]!.detail, /\/server_info did not say which node it is/);
  stranger.cancel();
});
