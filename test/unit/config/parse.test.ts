/**
 * parseConfig: the seed 001 YAML accepted verbatim, defaults and value forms (durations, status
 * ranges), and errors that name the dotted path with line and column, all of them at once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../../src/config/parse.js';
import { ConfigError } from '../../../src/errors.js';
import { MINIMAL_CONFIG } from '../../support/config-text.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const SEED = readFileSync(`${root}examples/seed-001.yaml`, 'utf8');

/** Parse and return the ConfigError's formatted issues (fails the test if the text parses). */
function errorsOf(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CXDS_CONFIG_INVALID');
    assert.equal(err.source, 'test.yaml');
    return err.issues.map((i) => `${i.path}: ${i.message}${i.line !== undefined ? ` (line ${i.line}, col ${i.col})` : ''}`);
  }
  assert.fail('expected the config to be refused');
}

/** 1-based line of the first line containing `needle` in `text`. */
function lineOf(text: string, needle: string, from = 0): number {
  const at = text.indexOf(needle, from);
  assert.ok(at >= 0, `${needle} not in text`);
  return text.slice(0, at).split('\n').length;
}

/** Replace the n-th (0-based) occurrence of `search`. */
function replaceNth(text: string, search: string, replacement: string, n: number): string {
  let at = -1;
  for (let i = 0; i <= n; i++) at = text.indexOf(search, at + 1);
  assert.ok(at >= 0, `occurrence ${n} of ${search}`);
  return text.slice(0, at) + replacement + text.slice(at + search.length);
}

const MINIMAL = MINIMAL_CONFIG;

describe('parseConfig: seed 001', () => {
  it('accepts the seed YAML verbatim and keeps its meaning', () => {
    const c = parseConfig(SEED, 'seed-001.yaml');
    assert.deepEqual(Object.keys(c.listener), ['listen']);
    assert.deepEqual(c.listener.listen, { protocol: 'tcp', address: '0.0.0.0', port: 8000, type: 'http' });
    assert.deepEqual(c.route?.domain, ['mirrativ.com', 'www.mirrativ.com']);
    assert.equal(c.route?.['host-header'], 'www.mirrativ.com');
    assert.deepEqual(c.route?.cluster['web-api-perl'], { prefix: ['/api'], weight: 90 });
    assert.deepEqual(c.route?.cluster['web-api-go'], { prefix: ['/api'], weight: 10 });
    assert.deepEqual(c.route?.cluster['web-asset'], { prefix: ['/asset'], weight: 100 });
    assert.deepEqual(Object.keys(c.cluster.loadbalancer).sort(), ['web-api-go', 'web-api-perl', 'web-asset']);
    for (const name of ['web-api-perl', 'web-api-go', 'web-asset']) {
      const lb = c.cluster.loadbalancer[name];
      assert.ok(lb);
      assert.equal(lb['lb-policy'], 'round-robin');
      assert.equal(lb.discovery, 'eds');
      assert.deepEqual(lb['health-check'], {
        type: 'http',
        host: 'www.mirrativ.com',
        value: '/health_check',
        expected: [{ start: 200, end: 201 }],
        timeout: { seconds: 3, nanos: 0 },
        interval: { seconds: 1, nanos: 0 },
        healthy: 3,
        unhealthy: 4,
      });
    }
    assert.deepEqual(c.endpoint.eds['web-api-perl'], { protocol: 'tcp', port: 80, 'balancing-policy': 'locality' });
    assert.equal(c.endpoint.eds['web-api-go']?.port, 8080);
    assert.equal(c.endpoint.eds['web-asset']?.port, 8080);
  });

  it('returns a deeply frozen config', () => {
    const c = parseConfig(SEED, 'seed-001.yaml');
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.cluster.loadbalancer['web-api-go']?.['health-check']?.timeout));
    assert.ok(Object.isFrozen(c.route?.domain));
    assert.throws(() => {
      (c.route?.cluster['web-api-go'] as { weight?: number }).weight = 50;
    }, TypeError);
  });

  it('accepts examples/consul-xds.yaml (the npm start config)', () => {
    const c = parseConfig(readFileSync(`${root}examples/consul-xds.yaml`, 'utf8'), 'consul-xds.yaml');
    assert.deepEqual(c.listener.listen, { protocol: 'tcp', address: '127.0.0.1', port: 10000, type: 'http' });
    assert.equal(c.endpoint.eds['web-asset']?.static?.length, 1);
  });
});

describe('parseConfig: values', () => {
  const withTimeout = (v: string): string =>
    MINIMAL.replace('port: 8000', 'port: 8000').replace('      prefix: ["/"]', `      prefix: ["/"]\n      timeout: ${v}`);
  const timeoutOf = (v: string): unknown => parseConfig(withTimeout(v), 't').route?.cluster.web?.timeout;

  it('reads durations as seconds (fractions allowed) or strings with a unit', () => {
    assert.deepEqual(timeoutOf('3'), { seconds: 3, nanos: 0 });
    assert.deepEqual(timeoutOf('1.5'), { seconds: 1, nanos: 500_000_000 });
    assert.deepEqual(timeoutOf('0.1'), { seconds: 0, nanos: 100_000_000 });
    assert.deepEqual(timeoutOf('"250ms"'), { seconds: 0, nanos: 250_000_000 });
    assert.deepEqual(timeoutOf('"1.5s"'), { seconds: 1, nanos: 500_000_000 });
    assert.deepEqual(timeoutOf('"2m"'), { seconds: 120, nanos: 0 });
    assert.deepEqual(timeoutOf('0'), { seconds: 0, nanos: 0 });
  });

  it('refuses durations that are negative, unit-less garbage or zero where Envoy needs > 0', () => {
    const hint = 'expected a number (seconds) or a duration string like "250ms" or "1.5s"';
    assert.deepEqual(errorsOf(withTimeout('-1')), [`route.cluster.web.timeout: ${hint} (line 10, col 16)`]);
    assert.deepEqual(errorsOf(withTimeout('"3 sec"')), [`route.cluster.web.timeout: ${hint} (line 10, col 16)`]);
    const zeroHc = MINIMAL.replace('web: {}', 'web:\n      health-check: { value: "/h", timeout: 0, interval: 1, healthy: 1, unhealthy: 1 }');
    assert.deepEqual(errorsOf(zeroHc), ['cluster.loadbalancer.web.health-check.timeout: must be greater than 0 (line 13, col 45)']);
  });

  it('turns expected statuses into half-open ranges, numbers or strings', () => {
    const text = MINIMAL.replace(
      'web: {}',
      'web:\n      health-check: { value: "/h", expected: ["200", "300-399", 204], timeout: 1, interval: 1, healthy: 1, unhealthy: 1 }',
    );
    assert.deepEqual(parseConfig(text, 't').cluster.loadbalancer.web?.['health-check']?.expected, [
      { start: 200, end: 201 },
      { start: 300, end: 400 },
      { start: 204, end: 205 },
    ]);
  });

  it('refuses statuses outside [100, 600) and reversed ranges', () => {
    const text = MINIMAL.replace(
      'web: {}',
      'web:\n      health-check:\n        value: "/h"\n        expected: ["99", "200-600", "300-200", "abc"]\n        timeout: 1\n        interval: 1\n        healthy: 1\n        unhealthy: 1',
    );
    const hint = 'expected an HTTP status like "200" or an inclusive range like "200-299", within 100-599';
    assert.deepEqual(errorsOf(text), [
      `cluster.loadbalancer.web.health-check.expected[0]: ${hint} (line 15, col 20)`,
      `cluster.loadbalancer.web.health-check.expected[1]: ${hint} (line 15, col 26)`,
      `cluster.loadbalancer.web.health-check.expected[2]: ${hint} (line 15, col 37)`,
      `cluster.loadbalancer.web.health-check.expected[3]: ${hint} (line 15, col 48)`,
    ]);
  });

  it('fills defaults: http listener, round-robin, eds, 5 s connect timeout, http1', () => {
    const c = parseConfig(MINIMAL, 't');
    assert.equal(c.listener.listen?.type, 'http');
    assert.deepEqual(c.cluster.loadbalancer.web, {
      'lb-policy': 'round-robin',
      discovery: 'eds',
      'connect-timeout': { seconds: 5, nanos: 0 },
      'upstream-protocol': 'http1',
    });
    assert.deepEqual(c.endpoint, { eds: {} });
  });
});

describe('parseConfig: errors name path, line and column', () => {
  it('a wrong type in the seed: path, "expected a number", line and column of the value', () => {
    const text = replaceNth(SEED, 'healthy: 3', 'healthy: "three"', 1); // web-api-go's
    const line = lineOf(text, 'healthy: "three"');
    assert.deepEqual(errorsOf(text), [`cluster.loadbalancer.web-api-go.health-check.healthy: expected a number (line ${line}, col 18)`]);
  });

  it('a bad duration in the seed names cluster.loadbalancer.web-api-go.health-check.interval', () => {
    const text = replaceNth(SEED, 'interval: 1', 'interval: "often"', 1);
    const line = lineOf(text, 'interval: "often"');
    assert.deepEqual(errorsOf(text), [
      `cluster.loadbalancer.web-api-go.health-check.interval: expected a number (seconds) or a duration string like "250ms" or "1.5s" (line ${line}, col 19)`,
    ]);
  });

  it('reports every issue, not only the first', () => {
    const text = MINIMAL.replace('port: 8000', 'port: 70000').replace('web: {}', 'web:\n      lb-policy: "fastest"\n      helth-check: {}');
    assert.deepEqual(errorsOf(text), [
      'listener.listen.port: must be at most 65535 (line 4, col 11)',
      'cluster.loadbalancer.web.lb-policy: expected one of "round-robin", "least-request", "random", "ring-hash", "maglev", got "fastest" (line 13, col 18)',
      'cluster.loadbalancer.web.helth-check: unknown key (misspelled, or not valid in this section) (line 14, col 7)',
    ]);
  });

  it('a missing required key is reported at its parent key', () => {
    const text = MINIMAL.replace('web: {}', 'web:\n      health-check:\n        value: "/h"\n        timeout: 1\n        healthy: 1\n        unhealthy: 1');
    assert.deepEqual(errorsOf(text), ['cluster.loadbalancer.web.health-check.interval: required (line 13, col 7)']);
  });

  it('YAML syntax errors carry line and column', () => {
    const issues = errorsOf('listener:\n  listen:\n    port: [8000\nroute: {}\n');
    assert.ok(issues.length >= 1);
    assert.match(issues[0] ?? '', /^: YAML syntax: .+ \(line \d+, col \d+\)$/);
    assert.deepEqual(errorsOf('a: 1\na: 2\n'), [': YAML syntax: Map keys must be unique (line 2, col 1)']);
  });

  it('an empty document is refused', () => {
    assert.deepEqual(errorsOf('# nothing\n'), [': the config is empty']);
  });

  it('the formatted message starts with the source and joins all issues', () => {
    const text = MINIMAL.replace('port: 8000', 'port: "x"');
    assert.throws(() => parseConfig(text, 'consul-kv:consul-xds/config'), {
      message: 'consul-kv:consul-xds/config: listener.listen.port: expected a number (line 4, col 11)',
    });
  });
});

describe('parseConfig: rules across sections', () => {
  it('a route naming an undefined cluster', () => {
    const text = SEED.replace('    web-asset:\n      prefix: ["/asset"]', '    web-assets:\n      prefix: ["/asset"]');
    const line = lineOf(text, 'web-assets:');
    assert.deepEqual(errorsOf(text).slice(0, 1), [
      `route.cluster.web-assets: cluster "web-assets" is not defined under cluster.loadbalancer (line ${line}, col 5)`,
    ]);
  });

  it('clusters sharing a prefix all need a weight, and the weights must not add up to 0', () => {
    const missing = SEED.replace('      weight: 10\n', '');
    assert.deepEqual(errorsOf(missing), [
      `route.cluster.web-api-go.weight: required: clusters web-api-go, web-api-perl share prefix "/api", so each needs a weight (line ${lineOf(missing, 'web-api-go:')}, col 5)`,
    ]);
    const zero = SEED.replace('weight: 90', 'weight: 0').replace('weight: 10', 'weight: 0');
    assert.deepEqual(errorsOf(zero), [
      `route.cluster.web-api-go.weight: the weights on prefix "/api" add up to 0; at least one cluster must receive traffic (line ${lineOf(zero, 'weight: 0', zero.indexOf('web-api-go:'))}, col 15)`,
    ]);
    // 100/0 is a valid shift: all /api traffic to perl.
    assert.doesNotThrow(() => parseConfig(SEED.replace('weight: 90', 'weight: 100').replace('weight: 10', 'weight: 0'), 't'));
    const lone = SEED.replace('weight: 100', 'weight: 0');
    assert.match(errorsOf(lone)[0] ?? '', /^route\.cluster\.web-asset\.weight: weight 0 on the only cluster for prefix "\/asset"/);
  });

  it('route options of clusters sharing a prefix must agree', () => {
    const text = SEED.replace('      weight: 90\n', '      weight: 90\n      timeout: 2\n').replace(
      '      weight: 10\n',
      '      weight: 10\n      timeout: 3\n',
    );
    assert.deepEqual(errorsOf(text), [
      `route.cluster.web-api-perl.timeout: conflicts with route.cluster.web-api-go.timeout: clusters sharing prefix "/api" share one route, so its timeout must be set once or identically (line ${lineOf(text, 'timeout: 2')}, col 16)`,
    ]);
  });

  it('a mirror to an undefined cluster, and mirror percentages out of range', () => {
    const text = SEED.replace('      weight: 10\n', '      weight: 10\n      mirror: { cluster: shadow, percent: 10 }\n');
    assert.deepEqual(errorsOf(text), [
      `route.cluster.web-api-go.mirror.cluster: cluster "shadow" is not defined under cluster.loadbalancer (line ${lineOf(text, 'mirror:')}, col 26)`,
    ]);
    const bad = (p: string): string[] =>
      errorsOf(SEED.replace('      weight: 10\n', `      weight: 10\n      mirror: { cluster: web-asset, percent: ${p} }\n`));
    assert.match(bad('0')[0] ?? '', /mirror\.percent: must be greater than 0/);
    assert.match(bad('150')[0] ?? '', /mirror\.percent: must be at most 100/);
    assert.match(bad('0.00001')[0] ?? '', /mirror\.percent: at most 4 decimals/);
  });

  it('listener kinds: tcp needs a defined cluster, http takes no cluster and needs a virtual host', () => {
    const tcp = MINIMAL.replace('port: 8000', 'port: 8000\n    type: tcp\n    virtual-hosts: ["default"]');
    assert.deepEqual(errorsOf(tcp), [
      'listener.listen.cluster: required: a tcp listener proxies to this cluster (line 2, col 3)',
      'listener.listen.virtual-hosts: only applies to http listeners (this one has type: tcp) (line 6, col 20)',
    ]);
    const tcpUnknown = MINIMAL.replace('port: 8000', 'port: 8000\n    type: tcp\n    cluster: mongo');
    assert.deepEqual(errorsOf(tcpUnknown), ['listener.listen.cluster: cluster "mongo" is not defined under cluster.loadbalancer (line 6, col 14)']);
    const http = MINIMAL.replace('port: 8000', 'port: 8000\n    cluster: web');
    assert.match(errorsOf(http)[0] ?? '', /^listener\.listen\.cluster: only applies to tcp listeners/);
    const noRoute = 'listener:\n  listen: { address: "127.0.0.1", port: 1 }\ncluster:\n  loadbalancer: {}\n';
    assert.deepEqual(errorsOf(noRoute), [
      'listener.listen: an http listener needs a virtual host: add a `route` section (or `virtual-hosts`), or set type: tcp (line 2, col 11)',
    ]);
  });

  it('two listeners on one address and port', () => {
    const text = MINIMAL.replace('listener:\n', 'listener:\n  other: { address: "127.0.0.1", port: 8000 }\n');
    assert.deepEqual(errorsOf(text), ['listener.listen.port: 127.0.0.1:8000 is already used by listener "other" (line 5, col 11)']);
  });

  it('virtual hosts: unknown names, the reserved name "default", duplicate domains in one route table', () => {
    const text = MINIMAL.replace('port: 8000', 'port: 8000\n    virtual-hosts: ["default", "admin", "nope"]').replace(
      'cluster:\n  loadbalancer:',
      'virtual-hosts:\n  admin:\n    domain: ["EXAMPLE.com"]\n    cluster: { web: { prefix: ["/admin"] } }\n  default:\n    domain: ["x.example.com"]\n    cluster: { web: { prefix: ["/"] } }\ncluster:\n  loadbalancer:',
    );
    assert.deepEqual(errorsOf(text), [
      'virtual-hosts.default: the name "default" belongs to the top-level `route` section; pick another name (line 15, col 3)',
      'listener.listen.virtual-hosts[2]: virtual host "nope" is not defined (known: admin, default; "default" is the top-level `route`) (line 5, col 41)',
      'route.domain[0]: domain "example.com" is also claimed by virtual host "admin", and listener "listen" serves both (line 7, col 12)',
    ]);
  });

  it('health checks: http needs a path, tcp takes none of the http fields', () => {
    const http = MINIMAL.replace('web: {}', 'web:\n      health-check: { timeout: 1, interval: 1, healthy: 1, unhealthy: 1 }');
    assert.deepEqual(errorsOf(http), ['cluster.loadbalancer.web.health-check.value: required: the path an http health check requests (line 13, col 7)']);
    const tcp = MINIMAL.replace('web: {}', 'web:\n      health-check: { type: tcp, value: "/", timeout: 1, interval: 1, healthy: 1, unhealthy: 1 }');
    assert.deepEqual(errorsOf(tcp), [
      'cluster.loadbalancer.web.health-check.value: only applies to http health checks (this one has type: tcp) (line 13, col 41)',
    ]);
  });

  it('endpoint.eds: entries for undefined clusters, static endpoints without a port, non-IP addresses', () => {
    const text = `${MINIMAL}endpoint:\n  eds:\n    web:\n      static:\n        - { address: "10.0.0.1" }\n        - { address: "db.internal", port: 80 }\n    other: { port: 80 }\n`;
    assert.deepEqual(errorsOf(text), ['endpoint.eds.web.static[1].address: expected an IP address (IPv4 or IPv6 literal) (line 18, col 22)']);
    const fixed = text.replace('"db.internal"', '"10.0.0.2"');
    assert.deepEqual(errorsOf(fixed), [
      'endpoint.eds.web.static[0].port: required: neither this endpoint nor endpoint.eds.web.port sets a port (line 17, col 11)',
      'endpoint.eds.other: cluster "other" is not defined under cluster.loadbalancer; endpoint.eds entries configure the endpoints of a defined cluster (line 19, col 12)',
    ]);
  });
});
