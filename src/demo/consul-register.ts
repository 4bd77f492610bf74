/**
 * A demo upstream announcing itself in Consul (`consul-xds demo-upstream --consul URL`), the way
 * a deployment registers instances: the agent API with this process's address and port and a
 * health check, deregistered again on shutdown. In: the agent, a service name, the instance's
 * address and port. Out: a deregister function. Used by docker-compose.yml, where each scaled
 * container registers its own IP.
 */
import { networkInterfaces } from 'node:os';
import { ConsulClient } from '../consul/client.js';
import type { DemoProtocol } from './upstream.js';

/** The first non-internal IPv4 address (a container's address on its network); loopback when there is none. */
export function advertiseAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export async function registerInConsul(
  consul: string,
  s: { service: string; address: string; port: number; protocol: DemoProtocol },
): Promise<() => Promise<void>> {
  const client = ConsulClient.fromOptions({ address: consul });
  const id = `${s.service}-${s.address}-${s.port}`;
  const target = `${s.address}:${s.port}`;
  // HTTP upstreams answer every path, so /health_check (seed 001's check path) works; others get a TCP check.
  const check = s.protocol === 'http1' ? { HTTP: `http://${target}/health_check` } : { TCP: target };
  const body = { ID: id, Name: s.service, Address: s.address, Port: s.port, Check: { ...check, Interval: '2s', DeregisterCriticalServiceAfter: '1m' } };
  ConsulClient.expect(await client.request('PUT', '/v1/agent/service/register', { body: JSON.stringify(body) }), `register ${id}`);
  return async () => {
    try {
      ConsulClient.expect(await client.request('PUT', `/v1/agent/service/deregister/${encodeURIComponent(id)}`), `deregister ${id}`);
    } finally {
      client.close();
    }
  };
}
