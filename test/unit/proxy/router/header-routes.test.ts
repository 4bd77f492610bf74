/**
 * The TS data plane on the routes our control plane emits for header canaries, exact paths and
 * regexes, and the header mutations of routes and weighted clusters: RouteConfiguration bytes ->
 * the proxy's decoder -> RouteTable.match and header-parser.ts, checked request by request.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../../src/config/parse.js';
import { staticEndpoints } from '../../../../src/config/static-endpoints.js';
import { translate } from '../../../../src/translate/index.js';
import { messageType } from '../../../../src/envoy/protos.js';
import { TypeUrl, messageNameOf } from '../../../../src/xds/resource-types.js';
import type { ProtoObject } from '../../../../src/xds/resources.js';
import { decodeResource, isRejected } from '../../../../src/proxy/xds/resource-types.js';
import type { RouteConfigModel, RouteModel } from '../../../../src/proxy/config/route-resource.js';
import { RouteTable } from '../../../../src/proxy/router/route-table.js';
import { mutateRequestHeaders, mutateResponseHeaders, mutationLevels } from '../../../../src/proxy/router/header-parser.js';
import type { HeaderMap } from '../../../../src/proxy/upstream/conn-pool.js';

const CONFIG = `
listener:
  listen: { address: "127.0.0.1", port: 8000 }
route:
  domain: ["app.test"]
  cluster:
    perl:
      prefix: ["/api"]
      weight: 90
      request-headers: { set: { x-backend: perl }, remove: ["x-debug"] }
      response-headers: { set: { x-served-by: "perl 100%" }, remove: ["x-internal"] }
    go: { prefix: ["/api"], weight: 10 }
    canary:
      prefix: ["/api"]
      headers: { x-canary: "true" }
      request-headers: { set: { x-backend: canary }, append: { x-via: consul-xds }, add-if-absent: { x-tenant: default } }
      response-headers: { append: { x-canary-served: "yes" } }
    exact: { path: ["/api/foobar"] }
    users: { regex: ["/api/v[0-9]+/users"], headers: { x-legacy: { present: false } } }
    beta: { prefix: ["/"], headers: { x-env: { prefix: beta }, x-id: { regex: "[0-9]+" } } }
    other: { prefix: ["/"] }
cluster:
  loadbalancer: { perl: {}, go: {}, canary: {}, exact: {}, users: {}, beta: {}, other: {} }
`;

function decodeRoutes(obj: ProtoObject): RouteConfigModel {
  const t = messageType(messageNameOf(TypeUrl.RouteConfiguration));
  const d = decodeResource(TypeUrl.RouteConfiguration, t.encode(t.fromObject(obj)).finish(), 0);
  assert.ok(!isRejected(d), isRejected(d) ? d.error : '');
  return d.model as RouteConfigModel;
}

const config = parseConfig(CONFIG, 'header-routes.yaml');
const [rds] = translate(config, staticEndpoints(config)).routes;
assert.ok(rds);
const model = decodeRoutes(rds);
const table = new RouteTable(model);

function route(path: string, headers: Record<string, string> = {}): RouteModel | undefined {
  return table.match({ authority: 'app.test', path, header: (n) => headers[n] });
}

function target(path: string, headers: Record<string, string> = {}): string {
  const r = route(path, headers);
  if (r?.action.kind !== 'forward') return 'none';
  return r.action.cluster ?? (r.action.weighted ?? []).map((w) => w.name).join('+');
}

describe('proxy: routes for header canaries, exact paths and regexes', () => {
  it('exact path, regex, header canary, weighted default, in that order', () => {
    assert.equal(target('/api/foobar'), 'exact');
    assert.equal(target('/api/foobar?x=1'), 'exact', 'the query string is not part of an exact path');
    assert.equal(target('/api/foobar/x'), 'go+perl');
    assert.equal(target('/api/foobar', { 'x-canary': 'true' }), 'exact', 'the exact path wins over a header canary on a shorter prefix');
    assert.equal(target('/api/v2/users'), 'users');
    assert.equal(target('/api/v2/users/7'), 'go+perl', 'a regex matches the whole path');
    assert.equal(target('/api/v2/users', { 'x-legacy': '1' }), 'go+perl', 'present: false: the header must be absent');
    assert.equal(target('/api/items', { 'x-canary': 'true' }), 'canary');
    assert.equal(target('/api/items', { 'x-canary': 'false' }), 'go+perl');
    assert.equal(target('/api/items'), 'go+perl');
    assert.equal(target('/other'), 'other');
    assert.equal(target('/other', { 'x-env': 'beta-2', 'x-id': '42' }), 'beta');
    assert.equal(target('/other', { 'x-env': 'beta-2', 'x-id': '42a' }), 'other', 'a header regex matches the whole value');
    assert.equal(target('/other', { 'x-env': 'prod', 'x-id': '42' }), 'other');
  });

  it('runs the header mutations of the weighted cluster and the route on requests and responses', () => {
    const api = route('/api/items');
    assert.ok(api?.action.kind === 'forward');
    const perl = api.action.weighted?.find((w) => w.name === 'perl');
    assert.ok(perl?.headerMutations);
    const levels = mutationLevels(perl.headerMutations, api.headerMutations, model.mostSpecificHeaderMutationsWins);
    const req: HeaderMap = { host: 'app.test', 'x-debug': '1', 'x-backend': 'evil' };
    mutateRequestHeaders(req, levels);
    assert.deepEqual(req, { host: 'app.test', 'x-backend': 'perl' });
    const res: HeaderMap = { 'x-internal': 'secret', 'content-type': 'text/plain' };
    mutateResponseHeaders(res, levels);
    assert.deepEqual(res, { 'content-type': 'text/plain', 'x-served-by': 'perl 100%' }, '%% in the resource is a literal %');

    const canary = route('/api/items', { 'x-canary': 'true' });
    assert.ok(canary?.headerMutations);
    const c = mutationLevels(undefined, canary.headerMutations, false);
    const sent: HeaderMap = { 'x-via': 'client', 'x-tenant': 'acme' };
    mutateRequestHeaders(sent, c);
    assert.deepEqual(sent, { 'x-via': ['client', 'consul-xds'], 'x-tenant': 'acme', 'x-backend': 'canary' });
    const bare: HeaderMap = {};
    mutateRequestHeaders(bare, c);
    assert.deepEqual(bare, { 'x-backend': 'canary', 'x-via': 'consul-xds', 'x-tenant': 'default' });
  });
});

describe('proxy: header mutations as Envoy defines them', () => {
  const routeWith = (route: Record<string, unknown>, extra: Record<string, unknown> = {}): RouteConfigModel =>
    decodeRoutes({ name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, ...route }] }], ...extra });

  it('removes before it adds; OVERWRITE_IF_EXISTS only replaces; the legacy append flag; empty values only with keep_empty_value', () => {
    const m = routeWith({
      route: { cluster: 'c' },
      request_headers_to_remove: ['X-A'],
      request_headers_to_add: [
        { header: { key: 'X-A', value: 'new' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
        { header: { key: 'x-b', value: 'b2' }, append_action: 'OVERWRITE_IF_EXISTS' },
        { header: { key: 'x-c', value: 'c2' }, append_action: 'OVERWRITE_IF_EXISTS' },
        { header: { key: 'x-d', value: 'd2' }, append: { value: false } },
        { header: { key: 'x-e', value: '' } },
        { header: { key: 'x-f', value: '' }, keep_empty_value: true },
      ],
    }).virtualHosts[0]?.routes[0];
    assert.ok(m?.headerMutations);
    const h: HeaderMap = { 'x-a': 'old', 'x-b': 'b1', 'x-d': 'd1' };
    mutateRequestHeaders(h, [m.headerMutations]);
    assert.deepEqual(h, { 'x-a': 'new', 'x-b': 'b2', 'x-d': 'd2', 'x-f': '' });
  });

  it('the route level runs last (its value wins) unless most_specific_header_mutations_wins', () => {
    const rc = (mostSpecific: boolean): RouteConfigModel =>
      routeWith(
        {
          route: {
            weighted_clusters: {
              clusters: [
                {
                  name: 'c',
                  weight: { value: 1 },
                  response_headers_to_add: [{ header: { key: 'x', value: 'cluster' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
                },
              ],
            },
          },
          response_headers_to_add: [{ header: { key: 'x', value: 'route' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        },
        mostSpecific ? { most_specific_header_mutations_wins: true } : {},
      );
    for (const [mostSpecific, want] of [
      [false, 'route'],
      [true, 'cluster'],
    ] as const) {
      const m = rc(mostSpecific);
      const r = m.virtualHosts[0]?.routes[0];
      assert.ok(r?.action.kind === 'forward');
      const h: HeaderMap = {};
      mutateResponseHeaders(h, mutationLevels(r.action.weighted?.[0]?.headerMutations, r.headerMutations, m.mostSpecificHeaderMutationsWins));
      assert.equal(h.x, want);
    }
  });
});
