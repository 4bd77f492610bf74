/**
 * The cluster keys of seed 002 / 003 (`discovery` with `hosts`, stream and request limits per
 * connection, circuit breakers, outlier detection, panic threshold, hash policy): accepted
 * values, and refusals that name the path, line and column, each schema rule and each rule that
 * ties a key to another (DNS vs EDS, HTTP/2, lb policy, routes sharing a prefix, gRPC clients).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { edsServices } from '../../../src/config/eds-services.js';
import { configErrors } from '../../support/config-errors.js';
import { MINIMAL_CONFIG } from '../../support/config-text.js';

/** MINIMAL_CONFIG with `web`'s body (from line 13, indented 6) and `extra` sections after it. */
function withCluster(body: string, extra = ''): string {
  const indented = body
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');
  return `${MINIMAL_CONFIG.replace('    web: {}\n', `    web:\n${indented}\n`)}${extra}`;
}

describe('cluster options: accepted', () => {
  it('a strict-dns cluster with hosts, refresh rate and lookup family; no Consul watch for it', () => {
    const c = parseConfig(
      withCluster('discovery: strict-dns\nhosts: ["backend:50051", "10.0.0.7:80", "[::1]:8080"]\ndns-refresh-rate: 2\ndns-lookup-family: v4-only'),
      't',
    );
    const web = c.cluster.loadbalancer.web;
    assert.deepEqual(web?.hosts, [
      { address: 'backend', port: 50051 },
      { address: '10.0.0.7', port: 80 },
      { address: '::1', port: 8080 },
    ]);
    assert.deepEqual(web?.['dns-refresh-rate'], { seconds: 2, nanos: 0 });
    assert.deepEqual(edsServices(c), []);
  });

  it('limits, circuit breakers, outlier detection, panic threshold and a hash policy', () => {
    const c = parseConfig(
      withCluster(`lb-policy: ring-hash
upstream-protocol: http2
max-concurrent-streams: 4
max-requests-per-connection: 100
circuit-breakers: { max-connections: 10, max-pending-requests: 0, max-requests: 2, max-retries: 0 }
outlier-detection: { consecutive-5xx: 3, interval: 0.5, base-ejection-time: 30, max-ejection-percent: 100 }
healthy-panic-threshold: 0
hash-policy: [{ header: x-user }, { cookie: { name: session } }, { source-ip: true }]`),
      't',
    );
    const web = c.cluster.loadbalancer.web;
    assert.equal(web?.['max-concurrent-streams'], 4);
    assert.equal(web?.['healthy-panic-threshold'], 0);
    assert.deepEqual(web?.['circuit-breakers'], { 'max-connections': 10, 'max-pending-requests': 0, 'max-requests': 2, 'max-retries': 0 });
    assert.deepEqual(web?.['outlier-detection']?.interval, { seconds: 0, nanos: 500_000_000 });
    assert.equal(web?.['hash-policy']?.length, 3);
  });
});

describe('cluster options: refused with path, line and column', () => {
  it('hosts: required with DNS, refused with eds, one name for logical-dns, "name:port" only', () => {
    assert.deepEqual(configErrors(withCluster('discovery: strict-dns')), [
      'cluster.loadbalancer.web.hosts: required: discovery strict-dns resolves these names ("name:port") (line 12, col 5)',
    ]);
    assert.deepEqual(configErrors(withCluster('hosts: ["a:1"]')), [
      'cluster.loadbalancer.web.hosts: only applies to discovery: strict-dns or logical-dns (this cluster takes its endpoints from EDS) (line 13, col 14)',
    ]);
    assert.deepEqual(configErrors(withCluster('discovery: logical-dns\nhosts: ["a:1", "b:2"]')), [
      'cluster.loadbalancer.web.hosts: discovery logical-dns takes exactly one name (got 2); use strict-dns to balance over several (line 14, col 14)',
    ]);
    const hint = 'expected "name:port" (a DNS name or IP address and a port 1-65535; IPv6 in brackets: "[::1]:8080")';
    assert.deepEqual(configErrors(withCluster('discovery: strict-dns\nhosts: ["backend", "a:0", "http://x:80", "::1:80"]')), [
      `cluster.loadbalancer.web.hosts[0]: ${hint} (line 14, col 15)`,
      `cluster.loadbalancer.web.hosts[1]: ${hint} (line 14, col 26)`,
      `cluster.loadbalancer.web.hosts[2]: ${hint} (line 14, col 33)`,
      `cluster.loadbalancer.web.hosts[3]: ${hint} (line 14, col 48)`,
    ]);
    assert.deepEqual(configErrors(withCluster('dns-refresh-rate: 1')), [
      'cluster.loadbalancer.web.dns-refresh-rate: only applies to discovery: strict-dns or logical-dns (line 13, col 25)',
    ]);
  });

  it('a DNS cluster takes no endpoint.eds entry', () => {
    const text = withCluster('discovery: strict-dns\nhosts: ["localhost:80"]', 'endpoint:\n  eds:\n    web: { port: 80 }\n');
    assert.deepEqual(configErrors(text), [
      'endpoint.eds.web: cluster "web" has discovery: strict-dns and takes its endpoints from cluster.loadbalancer.web.hosts; remove this entry (line 17, col 10)',
    ]);
  });

  it('max-concurrent-streams needs HTTP/2; limits and percentages have bounds', () => {
    assert.deepEqual(configErrors(withCluster('max-concurrent-streams: 8')), [
      'cluster.loadbalancer.web.max-concurrent-streams: only applies to HTTP/2 upstreams: set upstream-protocol: http2 (line 13, col 31)',
    ]);
    const errors = configErrors(
      withCluster('upstream-protocol: http2\nmax-concurrent-streams: 0\nhealthy-panic-threshold: 101\noutlier-detection: { max-ejection-percent: 200 }'),
    ).sort();
    assert.equal(errors.length, 3, errors.join('\n'));
    assert.match(errors[0] ?? '', /^cluster\.loadbalancer\.web\.healthy-panic-threshold: .*\(line 15, col 32\)$/);
    assert.match(errors[1] ?? '', /^cluster\.loadbalancer\.web\.max-concurrent-streams: .*\(line 14, col 31\)$/);
    assert.match(errors[2] ?? '', /^cluster\.loadbalancer\.web\.outlier-detection\.max-ejection-percent: .*\(line 16, col 50\)$/);
  });

  it('hash-policy: one input per entry, only for ring-hash / maglev', () => {
    assert.deepEqual(configErrors(withCluster('hash-policy: [{ header: x-user }]')), [
      'cluster.loadbalancer.web.hash-policy: only applies to lb-policy ring-hash or maglev (this cluster has round-robin) (line 13, col 20)',
    ]);
    assert.deepEqual(configErrors(withCluster('lb-policy: maglev\nhash-policy: [{ header: x-user, source-ip: true }, {}]')), [
      'cluster.loadbalancer.web.hash-policy[0]: expected exactly one of header, cookie, source-ip (got header, source-ip) (line 14, col 21)',
      'cluster.loadbalancer.web.hash-policy[1]: expected exactly one of header, cookie, source-ip (line 14, col 58)',
    ]);
  });

  it('clusters sharing a prefix must agree on their hash policy', () => {
    const text = `listener: { listen: { address: "127.0.0.1", port: 8000 } }
route:
  domain: ["example.com"]
  cluster:
    a: { prefix: ["/"], weight: 1 }
    b: { prefix: ["/"], weight: 1 }
cluster:
  loadbalancer:
    a: { lb-policy: ring-hash, hash-policy: [{ header: x-user }] }
    b: { lb-policy: ring-hash, hash-policy: [{ header: x-session }] }
`;
    assert.deepEqual(configErrors(text), [
      'cluster.loadbalancer.b.hash-policy: differs from cluster.loadbalancer.a.hash-policy: clusters sharing prefix "/" (route.cluster) share one route, so their hash policies must be identical (line 10, col 45)',
    ]);
  });

  it('gRPC clients: no DNS discovery, no keys they would ignore, header hashing only', () => {
    const text = `listener:
  "greeter:50051": { type: grpc }
route:
  domain: ["*"]
  cluster:
    greeter: { prefix: ["/"] }
cluster:
  loadbalancer:
    greeter:
      lb-policy: ring-hash
      discovery: strict-dns
      hosts: ["localhost:50051"]
      max-requests-per-connection: 5
      circuit-breakers: { max-requests: 5, max-retries: 1 }
      hash-policy: [{ header: x-user }, { source-ip: true }]
`;
    const user = 'listener "greeter:50051" (type: grpc) routes to this cluster';
    assert.deepEqual(configErrors(text), [
      `cluster.loadbalancer.greeter.discovery: ${user}; they take endpoints from EDS only, not strict-dns (line 11, col 18)`,
      `cluster.loadbalancer.greeter.max-requests-per-connection: ${user}, and they do not act on max-requests-per-connection (line 13, col 36)`,
      `cluster.loadbalancer.greeter.circuit-breakers.max-retries: ${user}, and they do not act on max-retries (line 14, col 57)`,
      `cluster.loadbalancer.greeter.hash-policy[1]: ${user}, and they hash on headers only (line 15, col 41)`,
    ]);
  });
});
