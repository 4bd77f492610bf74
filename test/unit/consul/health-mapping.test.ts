/**
 * Consul health entries -> endpoints: status aggregation (maintenance > critical > warning >
 * passing), address/port/locality/weight rules, and what is skipped. The bodies have the shape
 * Consul 1.8.7 returns for /v1/health/service/<name> (fields we do not read trimmed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateStatus, parseHealthEntries, toEndpoints } from '../../../src/consul/health-entries.js';
import { ConsulError } from '../../../src/errors.js';

interface EntryInput {
  node?: string;
  nodeAddress?: string;
  nodeMeta?: Record<string, string>;
  id: string;
  address?: string;
  port?: number;
  meta?: Record<string, string> | null;
  weights?: { Passing: number; Warning: number } | null;
  checks?: Array<[string, string]>;
}

function body(entries: EntryInput[]): string {
  return JSON.stringify(
    entries.map((e) => ({
      Node: { ID: 'x', Node: e.node ?? 'n1', Address: e.nodeAddress ?? '10.0.0.1', Datacenter: 'dc1', Meta: e.nodeMeta ?? { 'consul-network-segment': '' } },
      Service: {
        ID: e.id,
        Service: 'web',
        Tags: [],
        Address: e.address ?? '',
        Meta: e.meta ?? null,
        Port: e.port ?? 8080,
        Weights: e.weights === undefined ? { Passing: 1, Warning: 1 } : e.weights,
      },
      Checks: [['serfHealth', 'passing'], ...(e.checks ?? [])].map(([CheckID, Status]) => ({ CheckID, Status, Output: 'whatever', ServiceID: e.id })),
    })),
  );
}

test('aggregateStatus: maintenance beats critical beats warning beats passing; unknown counts as critical', () => {
  const c = (...pairs: Array<[string, string]>) => pairs.map(([CheckID, Status]) => ({ CheckID, Status }));
  assert.equal(aggregateStatus([]), 'passing');
  assert.equal(aggregateStatus(c(['a', 'passing'], ['b', 'warning'])), 'warning');
  assert.equal(aggregateStatus(c(['a', 'critical'], ['b', 'warning'])), 'critical');
  assert.equal(aggregateStatus(c(['a', 'passing'], ['_service_maintenance:web-1', 'critical'])), 'maintenance');
  assert.equal(aggregateStatus(c(['_node_maintenance', 'critical'], ['b', 'passing'])), 'maintenance');
  assert.equal(aggregateStatus(c(['a', 'bogus'])), 'critical');
});

test('parse + toEndpoints: address fallback, Service.Port, meta locality (service over node), weights and health', () => {
  const instances = parseHealthEntries(
    body([
      { id: 'web-1', address: '10.1.0.1', port: 8080, meta: { zone: 'z1', region: 'r1' }, weights: { Passing: 5, Warning: 2 } },
      {
        id: 'web-2',
        node: 'n2',
        nodeAddress: '10.1.0.2',
        nodeMeta: { zone: 'nz', region: 'nr' },
        meta: { zone: 'z2' },
        port: 8081,
        checks: [['ttl', 'warning']],
        weights: { Passing: 5, Warning: 2 },
      },
      { id: 'web-3', address: '10.1.0.3', checks: [['ttl', 'critical']] },
      { id: 'web-4', address: '10.1.0.4', checks: [['_service_maintenance:web-4', 'critical']], weights: null },
    ]),
    'web',
  ).instances;
  const { endpoints, skipped } = toEndpoints('web', instances);
  assert.deepEqual(skipped, []);
  assert.deepEqual(endpoints, [
    { address: '10.1.0.1', port: 8080, region: 'r1', zone: 'z1', health: 'HEALTHY', weight: 5, origin: 'n1/web-1' },
    { address: '10.1.0.2', port: 8081, region: 'nr', zone: 'z2', health: 'DEGRADED', weight: 2, origin: 'n2/web-2' },
    { address: '10.1.0.3', port: 8080, health: 'UNHEALTHY', weight: 1, origin: 'n1/web-3' },
    { address: '10.1.0.4', port: 8080, health: 'DRAINING', origin: 'n1/web-4' },
  ]);
});

test('toEndpoints: the config port overrides Service.Port; warning can map to HEALTHY; Warning weight 0 becomes 1', () => {
  const instances = parseHealthEntries(
    body([{ id: 'a', address: '10.0.0.5', port: 9999, checks: [['t', 'warning']], weights: { Passing: 3, Warning: 0 } }]),
    'web',
  ).instances;
  const { endpoints } = toEndpoints('web', instances, { port: 80, warningAs: 'HEALTHY' });
  assert.deepEqual(endpoints, [{ address: '10.0.0.5', port: 80, health: 'HEALTHY', weight: 1, origin: 'n1/a' }]);
});

test('toEndpoints: hostnames, missing ports and duplicates are skipped with a reason naming service and instance', () => {
  const instances = parseHealthEntries(
    body([
      { id: 'named', address: 'web.internal' },
      { id: 'noport', address: '10.0.0.7', port: 0 },
      { id: 'dup-a', address: '10.0.0.8' },
      { id: 'dup-b', address: '10.0.0.8' },
    ]),
    'web',
  ).instances;
  const { endpoints, skipped } = toEndpoints('web', instances);
  assert.deepEqual(
    endpoints.map((e) => e.origin),
    ['n1/dup-a'],
  );
  assert.equal(skipped.length, 3);
  assert.match(skipped.join('\n'), /consul health web: instance n1\/named: address 'web.internal' is not an IP literal/);
  assert.match(skipped.join('\n'), /instance n1\/noport: no usable port/);
  assert.match(skipped.join('\n'), /instance n1\/dup-b: 10\.0\.0\.8:8080 already listed/);
});

test('parseHealthEntries: custom locality keys; malformed answers name the service', () => {
  const [inst] = parseHealthEntries(body([{ id: 'a', address: '10.0.0.9', meta: { 'topology.zone': 'za', az: 'ignored' } }]), 'web', {
    zoneKey: 'topology.zone',
  }).instances;
  assert.equal(inst?.zone, 'za');
  assert.throws(
    () => parseHealthEntries('{"not":"a list"}', 'web'),
    (e: unknown) => e instanceof ConsulError && /^consul health web: unexpected answer/.test(e.message),
  );
  assert.throws(() => parseHealthEntries('<html>', 'web'), /consul health web: answer is not JSON/);
});

test('parseHealthEntries: result order is stable regardless of Consul order (node, then service id)', () => {
  const a = parseHealthEntries(
    body([
      { id: 'b', node: 'n2', address: '10.0.0.2' },
      { id: 'a', node: 'n1', address: '10.0.0.1' },
    ]),
    'web',
  );
  const b = parseHealthEntries(
    body([
      { id: 'a', node: 'n1', address: '10.0.0.1' },
      { id: 'b', node: 'n2', address: '10.0.0.2' },
    ]),
    'web',
  );
  assert.deepEqual(a, b);
});
