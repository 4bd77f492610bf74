/**
 * The fleet view: every `serve` sidecar registers itself in Consul (registerSidecar), and the ramp
 * reads each one's per-cluster counts (GET /stats/clusters on its admin port) and sums them. In: a
 * Consul client, the sidecars' service name and a window in seconds. Out: per cluster the summed
 * requests, 5xx and latency bins (bins add up, so the fleet p99 is the true one, not an average of
 * p99s), and which sidecars answered.
 */
import { z } from 'zod';
import { ConsulClient } from '../consul/client.js';
import { BIN_COUNT, percentileOf } from '../als/latency-histogram.js';
import type { Figures } from './spec.js';

export const DEFAULT_SIDECAR_SERVICE = 'consul-xds';

export interface SidecarRegistration {
  /** Consul service ID (default `consul-xds-<host>-<admin port>`). */
  readonly id: string;
  readonly service: string;
  /** host:port of the admin server: the ramp reads /stats/clusters there, Consul checks the health path. */
  readonly admin: string;
  readonly healthPath: string;
  /** The Envoy node id this sidecar watches, if one was named (meta only). */
  readonly node?: string;
}

/** Registers the sidecar with the local Consul agent; returns the deregistration. */
export async function registerSidecar(client: ConsulClient, reg: SidecarRegistration): Promise<() => Promise<void>> {
  const [host, port] = splitHostPort(reg.admin);
  const body = {
    ID: reg.id,
    Name: reg.service,
    Address: host,
    Port: port,
    Meta: { admin: reg.admin, ...(reg.node !== undefined ? { node: reg.node } : {}) },
    Check: { HTTP: `http://${reg.admin}${reg.healthPath}`, Interval: '10s', Timeout: '2s', DeregisterCriticalServiceAfter: '10m' },
  };
  ConsulClient.expect(await client.request('PUT', '/v1/agent/service/register', { body: JSON.stringify(body) }), `consul register service ${reg.id}`);
  return async () => {
    ConsulClient.expect(await client.request('PUT', `/v1/agent/service/deregister/${encodeURIComponent(reg.id)}`), `consul deregister service ${reg.id}`);
  };
}

function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, i).replace(/^\[(.*)\]$/, '$1'), Number(hostPort.slice(i + 1))];
}

const catalogSchema = z.array(z.object({ ServiceID: z.string(), ServiceMeta: z.record(z.string(), z.string()).nullable().optional() }));

const countsSchema = z.object({
  seconds: z.number(),
  clusters: z.array(
    z.object({
      cluster: z.string(),
      requests: z.number(),
      classes: z.record(z.string(), z.number()),
      bins: z.array(
        z.tuple([
          z
            .number()
            .int()
            .min(0)
            .max(BIN_COUNT - 1),
          z.number(),
        ]),
      ),
    }),
  ),
});

export interface SidecarAnswer {
  readonly id: string;
  readonly admin: string;
  /** Why it did not count; undefined when it answered. */
  readonly error?: string;
}

export interface ClusterTotals {
  requests: number;
  errors5xx: number;
  readonly bins: Float64Array;
}

export interface FleetView {
  readonly sidecars: readonly SidecarAnswer[];
  readonly answered: number;
  readonly clusters: ReadonlyMap<string, ClusterTotals>;
}

/** Reads every registered sidecar's counts over the last `seconds` (each within `timeoutMs`) and sums them. */
export async function readFleet(client: ConsulClient, service: string, seconds: number, timeoutMs = 1000): Promise<FleetView> {
  const res = ConsulClient.expect(await client.request('GET', `/v1/catalog/service/${encodeURIComponent(service)}`), `consul catalog service ${service}`);
  const entries = catalogSchema.parse(JSON.parse(res.body));
  const clusters = new Map<string, ClusterTotals>();
  const sidecars = await Promise.all(
    entries.map(async (e): Promise<SidecarAnswer> => {
      const admin = e.ServiceMeta?.admin;
      if (!admin) return { id: e.ServiceID, admin: '', error: 'no admin address in its meta' };
      try {
        const r = await fetch(`http://${admin}/stats/clusters?seconds=${seconds}`, { signal: AbortSignal.timeout(timeoutMs) });
        if (!r.ok) return { id: e.ServiceID, admin, error: `answered ${r.status}` };
        const body = countsSchema.parse(await r.json());
        for (const c of body.clusters) {
          const t = clusters.get(c.cluster) ?? { requests: 0, errors5xx: 0, bins: new Float64Array(BIN_COUNT) };
          clusters.set(c.cluster, t);
          t.requests += c.requests;
          t.errors5xx += c.classes['5xx'] ?? 0;
          for (const [bin, n] of c.bins) t.bins[bin]! += n;
        }
        return { id: e.ServiceID, admin };
      } catch (err) {
        return { id: e.ServiceID, admin, error: (err as Error).message };
      }
    }),
  );
  return { sidecars, answered: sidecars.filter((s) => s.error === undefined).length, clusters };
}

/** A cluster's fleet figures (zeros when no sidecar saw it). */
export function figuresOf(view: FleetView, cluster: string): Figures {
  const t = view.clusters.get(cluster);
  if (!t || t.requests === 0) return { requests: 0, errors5xx: 0, ratio5xx: 0 };
  const p99 = percentileOf(t.bins, t.requests, 0.99);
  return {
    requests: t.requests,
    errors5xx: t.errors5xx,
    ratio5xx: Math.round((t.errors5xx / t.requests) * 1e6) / 1e6,
    ...(p99 !== undefined ? { p99Ms: Math.round(p99 * 1000) / 1000 } : {}),
  };
}
