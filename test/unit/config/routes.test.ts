/**
 * Route matching beyond prefixes and header rewrites in the config: `path`, `regex`, `headers`,
 * `request-headers` and `response-headers` of a route entry. What is accepted, what is refused
 * (each error naming path, line and column), and the order views.ts gives the routes (the more
 * specific first, whatever the order in the file).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { routeGroups, routeName } from '../../../src/config/views.js';
import { re2ProgramSize } from '../../../src/config/regex.js';
import { configErrors } from '../../support/config-errors.js';

/** A config whose `route.cluster` section is `entries` (indented 4), with clusters a..f defined. */
function withEntries(entries: string): string {
  return `listener:
  listen: { address: "127.0.0.1", port: 8000 }
route:
  domain: ["app.test"]
  cluster:
${entries}
cluster:
  loadbalancer: { a: {}, b: {}, c: {}, d: {}, e: {}, f: {} }
`;
}

function order(entries: string): string[] {
  const c = parseConfig(withEntries(entries), 'test.yaml');
  assert.ok(c.route);
  return routeGroups(c.route).map((g) => `${routeName(g)} -> ${g.members.map((m) => m.cluster).join('+')}`);
}

describe('config: route matches beyond prefixes', () => {
  it('accepts exact paths, regexes and every header matcher, YAML true/false read as text', () => {
    const c = parseConfig(
      withEntries(`    a:
      path: ["/api/foobar"]
      regex: ["/api/v[0-9]+/users"]
      headers:
        x-canary: true
        x-env: { prefix: "beta" }
        x-user: { regex: "[0-9]+" }
        x-debug: { present: false }
        x-trace: { present: true }
        x-flag: { exact: "on" }`),
      'test.yaml',
    );
    const a = c.route?.cluster.a;
    assert.deepEqual(a?.path, ['/api/foobar']);
    assert.deepEqual(a?.regex, ['/api/v[0-9]+/users']);
    assert.equal(a?.headers?.['x-canary'], 'true');
  });

  it('orders routes: exact paths, regexes in file order, prefixes longest first; on one path, header-matched before the catch-all', () => {
    assert.deepEqual(
      order(`    a: { prefix: ["/api"], weight: 90 }
    b: { prefix: ["/api"], weight: 10 }
    c: { prefix: ["/api"], headers: { x-canary: "true" } }
    d: { prefix: ["/"], regex: ["/z/[0-9]+", "/a/[0-9]+"] }
    e: { path: ["/api/foobar"], prefix: ["/api/foo"] }
    f: { prefix: ["/api"], headers: { x-canary: "true", x-env: { prefix: "beta" } } }`),
      [
        '= /api/foobar -> e',
        '~ /z/[0-9]+ -> d',
        '~ /a/[0-9]+ -> d',
        '/api/foo -> e',
        '/api if x-canary=true and x-env^=beta -> f',
        '/api if x-canary=true -> c',
        '/api -> a+b',
        '/ -> d',
      ],
    );
  });

  it('on one path, a narrower header condition comes before one it implies: exact, regex, longer prefix, prefix, presence', () => {
    assert.deepEqual(
      order(`    a: { prefix: ["/"], headers: { x-v: { present: true } } }
    b: { prefix: ["/"], headers: { x-v: { prefix: "be" } } }
    c: { prefix: ["/"], headers: { x-v: { prefix: "beta" } } }
    d: { prefix: ["/"], headers: { x-v: "beta-1" } }
    e: { prefix: ["/"], headers: { x-v: { regex: "beta-[0-9]" } } }
    f: { prefix: ["/"] }`),
      ['/ if x-v=beta-1 -> d', '/ if x-v~=beta-[0-9] -> e', '/ if x-v^=beta -> c', '/ if x-v^=be -> b', '/ if x-v -> a', '/ -> f'],
    );
  });

  it('clusters with the same path and the same headers share one route and need weights; different headers are separate routes', () => {
    const errors = configErrors(
      withEntries(`    a: { prefix: ["/api"], headers: { x-canary: "true" } }
    b: { prefix: ["/api"], headers: { X-Canary: "true" } }
    c: { prefix: ["/api"] }`),
    );
    assert.deepEqual(errors, [
      'route.cluster.a.weight: required: clusters a, b share prefix "/api" with header x-canary=true, so each needs a weight (line 6, col 5)',
      'route.cluster.b.weight: required: clusters a, b share prefix "/api" with header x-canary=true, so each needs a weight (line 7, col 5)',
    ]);
  });

  it('refuses, naming path, line and column: no match at all, bad paths and regexes, a bad header matcher, a header listed twice', () => {
    const errors = configErrors(
      withEntries(`    a: { weight: 1 }
    b: { path: ["/x?y=1", "nope"] }
    c: { regex: ["(a)\\\\1", "api/.*", "/id/[a-z0-9-]{1,64}"] }
    d: { prefix: ["/"], headers: { x-v: 2, "bad name": "x", x-w: { exact: "a", prefix: "b" }, x-z: "a\\nb" } }`),
    );
    assert.deepEqual(errors, [
      'route.cluster.b.path[0]: the query string is not part of the path matched; a path with "?" or "#" never matches (line 7, col 17)',
      'route.cluster.b.path[1]: a path starts with "/" (line 7, col 27)',
      'route.cluster.c.regex[0]: not a valid RE2 regex: error parsing regexp: invalid escape sequence: `\\1` (line 8, col 18)',
      'route.cluster.c.regex[1]: the regex must match the whole path, which starts with "/"; this one starts with another character and never matches (line 8, col 28)',
      'route.cluster.c.regex[2]: the regex compiles to about 263 RE2 instructions and Envoy refuses more than 100; simplify it (e.g. "+" instead of "{1,64}") (line 8, col 38)',
      'route.cluster.d.headers.x-v: expected a string value (quote numbers: "2"), true/false, or a mapping with one of exact, prefix, regex, present (line 9, col 41)',
      "route.cluster.d.headers.bad name: expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~; pseudo-headers such as :path are not allowed) (line 9, col 44)",
      'route.cluster.d.headers.x-w: set exactly one of exact, prefix, regex, present (line 9, col 66)',
      'route.cluster.d.headers.x-z: a header value cannot contain CR, LF or NUL (line 9, col 100)',
    ]);
    assert.deepEqual(configErrors(withEntries(`    a: { weight: 1 }\n    b: { prefix: ["/"], headers: { x-v: "1", X-V: "1", Host: "a" } }`)), [
      'route.cluster.a.prefix: required: at least one of prefix, path or regex (which requests go to this cluster) (line 6, col 5)',
      'route.cluster.b.headers.X-V: "X-V" is also listed as "x-v"; header names are case-insensitive, so list it once (line 7, col 51)',
      "route.cluster.b.headers.Host: the Host is matched by the virtual host's domain, not by a header condition (line 7, col 62)",
    ]);
  });

  it("estimates Envoy's RE2 program size as Envoy 1.40 counts it (envoy --mode validate)", () => {
    // Envoy's own counts for these patterns: 264, 168, 101, 124, 124, 184, 124, 64.
    const envoy: Array<[string, number]> = [
      ['/api/[a-z0-9-]{1,64}', 264],
      ['/api/[a-z0-9-]{1,40}', 168],
      ['a{1,49}', 101],
      ['(?:[a-z0-9]){60}', 124],
      ['(?:.){60}', 124],
      ['(?:[a-z0-9-]){60}', 184],
      ['(?:[^/]){60}', 124],
      ['(?:a){60}', 64],
    ];
    for (const [pattern, size] of envoy) assert.equal(re2ProgramSize(pattern), size, pattern);
  });
});

describe('config: header rewrites', () => {
  it('accepts set, append, add-if-absent and remove on requests and responses', () => {
    const c = parseConfig(
      withEntries(`    a:
      prefix: ["/"]
      request-headers: { set: { x-backend: "go" }, append: { x-via: "consul-xds" }, add-if-absent: { x-tenant: "default" }, remove: ["x-debug"] }
      response-headers: { set: { x-served-by: "go 100%" }, remove: ["server"] }`),
      'test.yaml',
    );
    assert.deepEqual(c.route?.cluster.a?.['request-headers']?.remove, ['x-debug']);
  });

  it('refuses a header rewritten twice in one direction, Host, pseudo-headers and empty values', () => {
    const errors = configErrors(
      withEntries(`    a:
      prefix: ["/"]
      request-headers: { set: { x-a: "1", Host: "h" }, append: { X-A: "2" }, remove: ["x-a"] }
      response-headers: { set: { ":status": "200", x-b: "" } }`),
    );
    assert.deepEqual(errors, [
      "route.cluster.a.response-headers.set.:status: expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~; pseudo-headers such as :path are not allowed) (line 9, col 34)",
      'route.cluster.a.response-headers.set.x-b: must not be empty (line 9, col 57)',
    ]);
    assert.deepEqual(
      configErrors(
        withEntries(`    a:
      prefix: ["/"]
      request-headers: { set: { x-a: "1", Host: "h" }, append: { X-A: "2" }, remove: ["x-a"] }`),
      ),
      [
        "route.cluster.a.request-headers.set.Host: Host cannot be rewritten here (Envoy refuses it); use the virtual host's host-header (line 8, col 49)",
        'route.cluster.a.request-headers.append.X-A: "X-A" is also under request-headers.set; rewrite each header once (line 8, col 71)',
        'route.cluster.a.request-headers.remove[0]: "x-a" is also under request-headers.set; rewrite each header once (line 8, col 87)',
      ],
    );
  });
});
