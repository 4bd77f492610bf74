/**
 * Consul service health -> endpoints. In: the body of GET /v1/health/service/<name> (every
 * instance, healthy or not: we do not ask for `passing`) and the mapping options. Out: instances
 * with their aggregated Consul status, then EndpointInfo per instance for one cluster.
 *
 * Rules (docs/consul.md, "Health -> EDS"):
 * - status: any maintenance check (`_node_maintenance`, `_service_maintenance:<id>`) -> DRAINING;
 *   else any critical -> UNHEALTHY; else any warning -> DEGRADED (or HEALTHY with
 *   `warningAs: 'HEALTHY'`); else HEALTHY. Node checks (serfHealth) count, as in Consul's own
 *   view. Unhealthy instances stay in the assignment with their status, so Envoy and operators
 *   see them; Envoy skips them while at least half of the cluster is healthy, and below that its
 *   panic threshold sends them traffic again (docs/consul.md).
 * - address: Service.Address, else Node.Address. It must be an IP literal (Envoy EDS does not
 *   resolve names); an instance with a hostname is skipped and reported.
 * - port: the config's `endpoint.eds.<name>.port` when set, else Service.Port.
 * - locality: region/zone from Service.Meta, else Node.Meta (keys default `region` / `zone`).
 * - weight: Service.Weights.Passing, or .Warning while the instance is in warning; at least 1
 *   (Envoy's minimum; Consul allows Warning 0). Absent Weights -> Envoy's default of 1.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { EndpointHealth, EndpointInfo } from '../config/endpoints.js';
import { ConsulError } from '../errors.js';
import { resolveHealthMapping, type ConsulHealthMapping } from './options.js';

export type ConsulStatus = 'passing' | 'warning' | 'critical' | 'maintenance';

export interface HealthInstance {
  readonly node: string;
  readonly serviceId: string;
  readonly address: string;
  readonly servicePort: number;
  readonly region?: string;
  readonly zone?: string;
  readonly status: ConsulStatus;
  readonly weights?: { readonly passing: number; readonly warning: number };
}

const meta = z.record(z.string(), z.string()).nullish();
const entriesSchema = z.array(
  z.object({
    Node: z.object({ Node: z.string(), Address: z.string(), Meta: meta }),
    Service: z.object({
      ID: z.string(),
      Address: z.string().nullish(),
      Port: z.number().int(),
      Meta: meta,
      Weights: z.object({ Passing: z.number().int(), Warning: z.number().int() }).nullish(),
    }),
    Checks: z.array(z.object({ CheckID: z.string(), Status: z.string() })).nullish(),
  }),
);

function isMaintenance(checkId: string): boolean {
  return checkId === '_node_maintenance' || checkId.startsWith('_service_maintenance:');
}

/** The worst status among an instance's checks; an unknown status string counts as critical. */
export function aggregateStatus(checks: ReadonlyArray<{ readonly CheckID: string; readonly Status: string }>): ConsulStatus {
  let worst: ConsulStatus = 'passing';
  for (const check of checks) {
    if (isMaintenance(check.CheckID)) return 'maintenance';
    if (check.Status === 'passing') continue;
    if (check.Status === 'warning') {
      if (worst === 'passing') worst = 'warning';
    } else {
      worst = 'critical';
    }
  }
  return worst;
}

/** Parses the health answer for `service`; throws a ConsulError naming the service when it is malformed. */
export function parseHealthEntries(body: string, service: string, mapping: ConsulHealthMapping = {}): HealthInstance[] {
  const m = resolveHealthMapping(mapping);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new ConsulError(`consul health ${service}: answer is not JSON`);
  }
  const parsed = entriesSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConsulError(`consul health ${service}: unexpected answer at ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data
    .map((e): HealthInstance => {
      const locality = (key: string) => e.Service.Meta?.[key] || e.Node.Meta?.[key] || undefined;
      const w = e.Service.Weights;
      return Object.freeze({
        node: e.Node.Node,
        serviceId: e.Service.ID,
        address: e.Service.Address || e.Node.Address,
        servicePort: e.Service.Port,
        region: locality(m.regionKey),
        zone: locality(m.zoneKey),
        status: aggregateStatus(e.Checks ?? []),
        weights: w ? Object.freeze({ passing: w.Passing, warning: w.Warning }) : undefined,
      });
    })
    .sort((a, b) => compare(a.node, b.node) || compare(a.serviceId, b.serviceId));
}

export function endpointHealth(status: ConsulStatus, warningAs: ConsulHealthMapping['warningAs'] = 'DEGRADED'): EndpointHealth {
  switch (status) {
    case 'maintenance':
      return 'DRAINING';
    case 'critical':
      return 'UNHEALTHY';
    case 'warning':
      return warningAs ?? 'DEGRADED';
    case 'passing':
      return 'HEALTHY';
  }
}

export interface ClusterEndpoints {
  readonly endpoints: readonly EndpointInfo[];
  /** Instances left out, each with the reason (hostname address, no port, duplicate address). */
  readonly skipped: readonly string[];
}

/** The endpoints of one cluster backed by `service`: port override applied, sorted, de-duplicated. */
export function toEndpoints(
  service: string,
  instances: readonly HealthInstance[],
  opts: { readonly port?: number; readonly warningAs?: ConsulHealthMapping['warningAs'] } = {},
): ClusterEndpoints {
  const endpoints: EndpointInfo[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const inst of instances) {
    const origin = `${inst.node}/${inst.serviceId}`;
    const where = `consul health ${service}: instance ${origin}`;
    if (isIP(inst.address) === 0) {
      skipped.push(`${where}: address '${inst.address}' is not an IP literal (EDS needs one); skipped`);
      continue;
    }
    const port = opts.port ?? inst.servicePort;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      skipped.push(`${where}: no usable port (Service.Port ${inst.servicePort}, no endpoint.eds port in the config); skipped`);
      continue;
    }
    const id = `${inst.address}:${port}`;
    if (seen.has(id)) {
      skipped.push(`${where}: ${id} already listed by another instance; skipped`);
      continue;
    }
    seen.add(id);
    const raw = inst.weights ? (inst.status === 'warning' ? inst.weights.warning : inst.weights.passing) : undefined;
    endpoints.push(
      Object.freeze({
        address: inst.address,
        port,
        ...(inst.region !== undefined && { region: inst.region }),
        ...(inst.zone !== undefined && { zone: inst.zone }),
        health: endpointHealth(inst.status, opts.warningAs),
        ...(raw !== undefined && { weight: Math.max(1, raw) }),
        origin,
      }),
    );
  }
  endpoints.sort((a, b) => compare(a.address, b.address) || a.port - b.port);
  return Object.freeze({ endpoints: Object.freeze(endpoints), skipped: Object.freeze(skipped) });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
