/**
 * The health decision (pure part) and the maintenance-file rule: maintenance wins, then missing
 * snapshot, missing node, NACKed, never ACKed, ACK overdue past the grace period, Envoy /ready;
 * an older ACKed version inside the grace period is still healthy.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { evaluateHealth, maintenanceFileExists, probeEnvoyReady, type HealthInput } from '../../src/sidecar/health.js';
import type { NodeStatus, NodeTypeStatus } from '../../src/server/stream-registry.js';
import { TypeUrl } from '../../src/xds/resource-types.js';

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
  assert.deepEqual(JSON.parse(r.body).problems.map((p: { reason: string }) => p.reason), ['no-snapshot', 'no-envoy-connected']);
  r = evaluateHealth(input({ watchNode: 'envoy-7', nodes: [] }));
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
  const movedOn = typeStatus({ upToDate: false, lastResponseNacked: true, lastNack, currentVersion: 'v4', ackedVersion: 'v2', sentVersion: 'v4', pendingNonce: 'n4' });
  assert.equal(evaluateHealth(input({ nodes: [node('e', { CDS: movedOn })], outstandingSince: () => NOW - 10 })).status, 200);
  assert.deepEqual(reasons(input({ nodes: [node('e', { CDS: movedOn })], outstandingSince: () => NOW - 6000 })), ['ack-overdue']);
});

test('sent but never ACKed fails at once; nothing sent yet is not a problem', () => {
  const waiting = typeStatus({ upToDate: false, ackedVersion: undefined, pendingNonce: 'n1' });
  assert.deepEqual(reasons(input({ nodes: [node('e', { CDS: waiting })], outstandingSince: () => NOW - 10 })), ['awaiting-first-ack']);
  const notSent = typeStatus({ upToDate: false, ackedVersion: undefined, sentVersion: undefined });
  assert.deepEqual(reasons(input({ nodes: [node('e', { CDS: notSent })] })), []);
});

test('an older ACKed version is fine within the grace period and fails after it', () => {
  const behind = typeStatus({ upToDate: false, ackedVersion: 'v1', sentVersion: 'v2', pendingNonce: 'n2' });
  const nodes = [node('e', { CDS: behind })];
  assert.equal(evaluateHealth(input({ nodes, outstandingSince: () => NOW - 4999 })).status, 200);
  const r = evaluateHealth(input({ nodes, outstandingSince: () => NOW - 5001 }));
  assert.deepEqual(r.problems.map((p) => [p.reason, p.type]), [['ack-overdue', 'CDS']]);
});

test('every connected node must be good unless one node is watched', () => {
  const lastNack = { version: 'v3', code: 13, message: 'bad', at: '2023-11-14T22:13:20.000Z', count: 1 };
  const bad = node('other', { CDS: typeStatus({ upToDate: false, lastResponseNacked: true, lastNack, currentVersion: 'v3', sentVersion: 'v3' }) });
  const good = node('envoy-1', { CDS: typeStatus({}) });
  assert.equal(evaluateHealth(input({ nodes: [good, bad] })).status, 503);
  // With watchNode the caller passes only that node's status.
  assert.equal(evaluateHealth(input({ watchNode: 'envoy-1', nodes: [good] })).status, 200);
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
