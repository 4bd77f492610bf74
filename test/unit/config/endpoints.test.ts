/**
 * staticEndpoints (file mode's instances) and edsServices (what the Consul health watcher
 * follows): which clusters each covers, port fallbacks, health names, service mapping.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../../src/config/parse.js';
import { staticEndpoints } from '../../../src/config/static-endpoints.js';
import { edsServices } from '../../../src/config/eds-services.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

const MIXED = `listener:
  listen: { address: "127.0.0.1", port: 8000 }
route:
  domain: ["*"]
  cluster:
    web: { prefix: ["/"] }
    api: { prefix: ["/api"] }
    shadow: { prefix: ["/shadow"] }
    empty: { prefix: ["/empty"] }
cluster:
  loadbalancer:
    web: {}
    api: {}
    shadow: {}
    empty: {}
    plain: {}
endpoint:
  eds:
    web:
      port: 8080
      static:
        - { address: "10.0.0.2", zone: "b", region: "r1", weight: 3 }
        - { address: "10.0.0.1", port: 9090, health: draining }
    api:
      port: 80
      balancing-policy: locality
    shadow:
      service: web-api-go
    empty:
      static: []
`;

describe('staticEndpoints', () => {
  it('lists the static instances of each cluster that has a static list, with port fallback and health', () => {
    const eps = staticEndpoints(parseConfig(MIXED, 't'));
    assert.deepEqual([...eps.keys()].sort(), ['empty', 'web']);
    assert.deepEqual(eps.get('empty'), []);
    assert.deepEqual(eps.get('web'), [
      { address: '10.0.0.2', port: 8080, health: 'HEALTHY', origin: 'static:endpoint.eds.web.static[0]', region: 'r1', zone: 'b', weight: 3 },
      { address: '10.0.0.1', port: 9090, health: 'DRAINING', origin: 'static:endpoint.eds.web.static[1]' },
    ]);
  });

  it('the npm start example has one static endpoint per cluster on 127.0.0.1:8081-8083', () => {
    const eps = staticEndpoints(parseConfig(readFileSync(`${root}examples/consul-xds.yaml`, 'utf8'), 'example'));
    const ports = [...eps.entries()].map(([c, list]) => [c, list.map((e) => `${e.address}:${e.port}`)]).sort();
    assert.deepEqual(ports, [
      ['web-api-go', ['127.0.0.1:8082']],
      ['web-api-perl', ['127.0.0.1:8081']],
      ['web-asset', ['127.0.0.1:8083']],
    ]);
  });

  it('the seed has no static endpoints', () => {
    assert.equal(staticEndpoints(parseConfig(readFileSync(`${root}examples/seed-001.yaml`, 'utf8'), 'seed')).size, 0);
  });
});

describe('edsServices', () => {
  it('covers every cluster without a static list; service defaults to the cluster name; port overrides', () => {
    assert.deepEqual(edsServices(parseConfig(MIXED, 't')), [
      { cluster: 'api', service: 'api', port: 80 },
      { cluster: 'plain', service: 'plain' },
      { cluster: 'shadow', service: 'web-api-go' },
    ]);
  });

  it('the seed: one Consul service per cluster, with the seed ports', () => {
    assert.deepEqual(edsServices(parseConfig(readFileSync(`${root}examples/seed-001.yaml`, 'utf8'), 'seed')), [
      { cluster: 'web-api-go', service: 'web-api-go', port: 8080 },
      { cluster: 'web-api-perl', service: 'web-api-perl', port: 80 },
      { cluster: 'web-asset', service: 'web-asset', port: 8080 },
    ]);
  });
});
