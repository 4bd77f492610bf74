/**
 * The access-log sink's cluster: an IP address gives a STATIC cluster, a host name (a compose
 * service name, `localhost`) a STRICT_DNS one with the same load_assignment, so Envoy resolves
 * it; anything else is refused with the path of the address.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/parse.js';
import { translate } from '../../../src/translate/index.js';
import { ConfigError } from '../../../src/errors.js';
import { oneWebClusterConfig } from '../../support/config-text.js';

function configWithSink(address: string): string {
  return oneWebClusterConfig({ listenerPort: 10000, upstreamPort: 8081, accessLog: `{ grpc: { address: "${address}", port: 9001 } }` });
}

function sinkCluster(address: string): Record<string, unknown> {
  const { clusters } = translate(parseConfig(configWithSink(address), 'test'), new Map());
  const sink = clusters.find((c) => String(c.name).startsWith('consul-xds-als-'));
  assert.ok(sink, `no sink cluster among ${clusters.map((c) => c.name).join(', ')}`);
  return sink as Record<string, unknown>;
}

it('an IP address: a STATIC cluster; a host name: STRICT_DNS to the same host and port', () => {
  assert.equal(sinkCluster('127.0.0.1').type, 'STATIC');
  for (const host of ['localhost', 'consul-xds', 'als.sidecar.internal', 'consul_xds']) {
    const c = sinkCluster(host);
    assert.equal(c.type, 'STRICT_DNS', host);
    assert.equal(c.name, `consul-xds-als-${host}-9001`);
    assert.deepEqual((c.load_assignment as { endpoints: Array<{ lb_endpoints: Array<{ endpoint: unknown }> }> }).endpoints[0]?.lb_endpoints[0]?.endpoint, {
      address: { socket_address: { protocol: 'TCP', address: host, port_value: 9001 } },
    });
  }
});

it('an address that is neither an IP nor a host name is refused with its path', () => {
  for (const bad of ['not a host', 'http://consul-xds', '-leading-dash', '']) {
    assert.throws(
      () => parseConfig(configWithSink(bad), 'test'),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.some((i) => i.path === 'listener.edge.access-log.grpc.address' && /expected an IP address or a host name/.test(i.message)),
      bad,
    );
  }
});
