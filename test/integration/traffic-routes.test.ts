/**
 * Route matching beyond prefixes and header rewrites, on every data plane (real Envoy and our TS
 * proxy, see test/support/dataplanes.ts): a YAML file in the seed's per-cluster route style ->
 * `serve()` -> ADS -> the data plane -> local HTTP upstreams that name themselves. Seed 001's
 * migration with a header canary: `/api` splits 90/10 between web-api-perl and web-api-go, and a
 * request carrying `x-canary: true` goes to web-api-go-canary instead. Around it:
 *  - an exact path (/api/foobar) goes to its own cluster, and only that path; /other to another;
 *  - an RE2 regex over the whole path (/api/v[0-9]+/users), narrowed by an absent header;
 *  - header prefix and regex matches on a catch-all prefix;
 *  - request headers set/appended/added-if-absent arrive at the upstream, removed ones do not;
 *  - response headers set/appended are seen by the client, removed ones are not; each route's
 *    rewrites apply to its own cluster only, and to the data plane's own 503 on that route;
 *  - Envoy rejected no update (update_rejected counters 0), and no data plane NACKed.
 *
 * Statistics: the 90/10 split is drawn per request, so web-api-go's count of n is Binomial(n, 0.1);
 * the assertion allows 4 standard deviations (a correct data plane fails about once in 15,000).
 * Timing: every wait is a poll with a deadline, never a fixed sleep.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { assertNoRejectedUpdate, DATA_PLANES, startDataPlane, watchNode, type DataPlane, type DataPlaneKind, type NodeWatch } from '../support/dataplanes.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { binomialBounds, send, sendMany, type Reply, type Tally } from '../support/traffic.js';
import { freePort, makeTempDir } from '../support/tmp.js';

const DOMAIN = 'app.test';
const N = 400;
const CLUSTERS = ['web-api-perl', 'web-api-go', 'web-api-go-canary', 'web-foobar', 'web-users', 'web-beta', 'web-other'] as const;
type ClusterName = (typeof CLUSTERS)[number];

function configYaml(listenerPort: number, ports: Readonly<Record<ClusterName, number>>): string {
  return `# written by test/integration/traffic-routes.test.ts
listener:
  listen:
    protocol: "tcp"
    address: "127.0.0.1"
    port: ${listenerPort}
route:
  domain: ["${DOMAIN}"]
  cluster:
    web-api-perl:
      prefix: ["/api"]
      weight: 90
      request-headers: { set: { x-backend: perl }, remove: ["x-debug"] }
      response-headers: { set: { x-served-by: "perl 100%" }, remove: ["x-internal"] }
    web-api-go:
      prefix: ["/api"]
      weight: 10
      request-headers: { set: { x-backend: go }, remove: ["x-debug"] }
      response-headers: { set: { x-served-by: go }, remove: ["x-internal"] }
    web-api-go-canary:
      prefix: ["/api"]
      headers: { x-canary: "true" }
      request-headers: { set: { x-backend: canary }, append: { x-via: consul-xds }, add-if-absent: { x-tenant: default } }
      response-headers: { append: { x-canary-served: "yes" } }
    web-foobar:
      path: ["/api/foobar"]
    web-users:
      regex: ["/api/v[0-9]+/users"]
      headers: { x-legacy: { present: false } }
    web-beta:
      prefix: ["/"]
      headers: { x-env: { prefix: beta }, x-id: { regex: "[0-9]+" } }
    web-other:
      prefix: ["/"]
    web-down:
      path: ["/down"]
      response-headers: { set: { x-route: down } }
cluster:
  loadbalancer:
${CLUSTERS.map((c) => `    ${c}: {}`).join('\n')}
    web-down: {}
endpoint:
  eds:
${CLUSTERS.map((c) => `    ${c}: { static: [{ address: "127.0.0.1", port: ${ports[c]} }] }`).join('\n')}
    web-down: { static: [] }
`;
}

function suite(kind: DataPlaneKind): void {
  describe(`route matches and header rewrites through ${kind}`, () => {
    const nodeId = `traffic-routes-${kind}`;
    let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
    let app: RunningApp | undefined;
    let dp: DataPlane | undefined;
    let node: NodeWatch | undefined;
    const up = new Map<ClusterName, Upstream>();
    let listenerPort = 0;

    const upstream = (c: ClusterName): Upstream => {
      const u = up.get(c);
      assert.ok(u, `upstream ${c} not started`);
      return u;
    };
    const many = (path: string, count: number, headers?: Record<string, string>): Promise<Tally> =>
      sendMany({ port: listenerPort, host: DOMAIN, path, count, ...(headers ? { headers } : {}) });
    const one = (path: string, headers?: Record<string, string>): Promise<Reply> =>
      send({ port: listenerPort, host: DOMAIN, path, ...(headers ? { headers } : {}) });
    /** Every request answered 200 by `cluster`. */
    const assertAll = (t: Tally, cluster: ClusterName, what: string): void => {
      assert.equal(t.byStatus.get(200), t.total, `${what}: every request answered 200: ${t.describe()}`);
      assert.equal(t.count(cluster), t.total, `${what}: every request went to ${cluster}: ${t.describe()}`);
    };
    /** Only the 90/10 default split answered. */
    const assertDefault = (t: Tally, what: string): void => {
      assert.equal(t.byStatus.get(200), t.total, `${what}: ${t.describe()}`);
      assert.equal(t.count('web-api-perl') + t.count('web-api-go'), t.total, `${what}: only the weighted default answered: ${t.describe()}`);
    };

    before(async () => {
      dir = await makeTempDir(`traffic-routes-${kind}`);
      // Every upstream adds x-internal to its answers: routes that remove it must hide it.
      for (const c of CLUSTERS) up.set(c, await startUpstream(c, { responseHeaders: { 'x-internal': 'secret' } }));
      listenerPort = await freePort();
      const ports = Object.fromEntries(CLUSTERS.map((c) => [c, upstream(c).port])) as Record<ClusterName, number>;
      const configFile = join(dir.path, 'consul-xds.yaml');
      await writeFile(configFile, configYaml(listenerPort, ports));
      app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
      const watching = watchNode(app.xdsServer.registry, nodeId);
      node = watching;
      dp = await startDataPlane(kind, { xdsPort: app.xdsPort, nodeId, nodeCluster: 'web', context: () => watching.describe() });
      await dp.ready();
      const plane = dp;
      await plane.waitFor(async () => (await one('/api/foobar')).upstream === 'web-foobar' && (await one('/other')).upstream === 'web-other', {
        what: `listener 127.0.0.1:${listenerPort} routing /api/foobar and /other`,
        timeoutMs: 20_000,
        intervalMs: 100,
      });
    });

    after(async () => {
      node?.close();
      await dp?.stop();
      await app?.close();
      await Promise.all([...up.values()].map((u) => u.close()));
      await dir?.remove();
    });

    it('an exact path goes to its cluster and only that path does; /other goes to the catch-all', async () => {
      assertAll(await many('/api/foobar', 20), 'web-foobar', '/api/foobar');
      assertAll(await many('/api/foobar?page=2', 20), 'web-foobar', 'the query string is not part of the exact path');
      assertAll(await many('/other', 20), 'web-other', '/other');
      assertDefault(await many('/api/foobar/more', 20), '/api/foobar/more is not the exact path');
      assertAll(await many('/api/foobar', 20, { 'x-canary': 'true' }), 'web-foobar', 'an exact path wins over a canary on a shorter prefix');
    });

    it('a regex matches the whole path, and its absent-header condition holds', async () => {
      assertAll(await many('/api/v2/users', 20), 'web-users', '/api/v2/users');
      assertAll(await many('/api/v10/users', 20), 'web-users', '/api/v10/users');
      assertDefault(await many('/api/v2/users/7', 20), 'the regex matches whole paths only');
      assertDefault(await many('/api/vx/users', 20), '/api/vx/users does not match [0-9]+');
      assertDefault(await many('/api/v2/users', 20, { 'x-legacy': '1' }), 'present: false fails when the header is there');
    });

    it('x-canary: true goes to the canary; no header (or another value) gets the weighted 90/10 default', async () => {
      assertAll(await many('/api/items', N, { 'x-canary': 'true' }), 'web-api-go-canary', 'x-canary: true');
      const t = await many('/api/items', N);
      assertDefault(t, 'no x-canary');
      const { low, high } = binomialBounds(N, 0.1);
      const go = t.count('web-api-go');
      assert.ok(go >= low && go <= high, `90/10 split: web-api-go ${go}/${N}, expected within [${low.toFixed(1)}, ${high.toFixed(1)}]: ${t.describe()}`);
      assertDefault(await many('/api/items', 50, { 'x-canary': 'false' }), 'x-canary: false');
      assertDefault(await many('/api/items', 50, { 'x-canary': 'TRUE' }), 'header values are matched case-sensitively');
    });

    it('header prefix and regex matches narrow a catch-all prefix', async () => {
      assertAll(await many('/other', 20, { 'x-env': 'beta-2', 'x-id': '42' }), 'web-beta', 'x-env beta-2, x-id 42');
      assertAll(await many('/other', 20, { 'x-env': 'beta-2', 'x-id': '42a' }), 'web-other', 'a header regex matches the whole value');
      assertAll(await many('/other', 20, { 'x-env': 'prod', 'x-id': '42' }), 'web-other', 'x-env prod is not the prefix beta');
      assertAll(await many('/other', 20, { 'x-env': 'beta-2' }), 'web-other', 'every condition must hold');
    });

    it('request headers set, appended and added-if-absent arrive at the upstream; removed ones do not', async () => {
      for (const u of up.values()) u.reset();
      const t = await many('/api/items', 100, { 'x-debug': '1', 'x-backend': 'forged' });
      assertDefault(t, 'default split');
      for (const [cluster, backend] of [
        ['web-api-perl', 'perl'],
        ['web-api-go', 'go'],
      ] as const) {
        for (const r of upstream(cluster).requests) {
          assert.equal(r.headers['x-backend'], backend, `${cluster}: x-backend set by its weighted cluster`);
          assert.equal(r.headers['x-debug'], undefined, `${cluster}: x-debug removed`);
        }
      }
      assert.equal(upstream('web-api-perl').requests.length + upstream('web-api-go').requests.length, 100);

      const canary = upstream('web-api-go-canary');
      await one('/api/items', { 'x-canary': 'true', 'x-via': 'client', 'x-tenant': 'acme', 'x-backend': 'forged', 'x-debug': '1' });
      await one('/api/items', { 'x-canary': 'true' });
      assert.equal(canary.requests.length, 2);
      const [withHeaders, bare] = canary.requests;
      assert.equal(withHeaders?.headers['x-backend'], 'canary', 'set replaces the client value');
      assert.deepEqual(String(withHeaders?.headers['x-via']).split(/,\s*/), ['client', 'consul-xds'], 'append keeps the client value');
      assert.equal(withHeaders?.headers['x-tenant'], 'acme', 'add-if-absent keeps the client value');
      assert.equal(withHeaders?.headers['x-debug'], '1', 'the canary route removes nothing');
      assert.equal(bare?.headers['x-via'], 'consul-xds');
      assert.equal(bare?.headers['x-tenant'], 'default', 'add-if-absent adds when absent');
    });

    it('response headers set and appended reach the client, removed ones do not, per route', async () => {
      const seen = new Map<string, Reply>();
      for (let i = 0; i < 200 && seen.size < 2; i++) {
        const r = await one('/api/items');
        seen.set(r.upstream, r);
      }
      const perl = seen.get('web-api-perl');
      const go = seen.get('web-api-go');
      assert.ok(perl && go, `both split targets answered: ${[...seen.keys()].join(', ')}`);
      assert.equal(perl.headers['x-served-by'], 'perl 100%', 'a literal % in a header value');
      assert.equal(perl.headers['x-internal'], undefined, 'x-internal removed on web-api-perl');
      assert.equal(go.headers['x-served-by'], 'go');
      assert.equal(go.headers['x-internal'], undefined, 'x-internal removed on web-api-go');
      const canary = await one('/api/items', { 'x-canary': 'true' });
      assert.equal(canary.upstream, 'web-api-go-canary');
      assert.equal(canary.headers['x-canary-served'], 'yes');
      assert.equal(canary.headers['x-internal'], 'secret', "the canary route's rewrites do not remove it");
      assert.equal(canary.headers['x-served-by'], undefined, "another cluster's rewrites do not apply");
      const other = await one('/other');
      assert.equal(other.headers['x-internal'], 'secret', 'untouched on a route without rewrites');
    });

    it("a route's response headers are on the data plane's own answer too (503, no healthy upstream)", async () => {
      const r = await one('/down');
      assert.equal(r.status, 503, r.body);
      assert.equal(r.upstream, '', 'answered by the data plane');
      assert.equal(r.headers['x-route'], 'down');
    });

    it('the data plane accepted every update (no NACK; Envoy: update_rejected 0)', async () => {
      assert.ok(dp && node);
      await assertNoRejectedUpdate(dp, node);
    });
  });
}

for (const kind of DATA_PLANES) suite(kind);
