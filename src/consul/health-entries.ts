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
 *
 * Bad data costs one instance, never the service (one bad registration must not freeze a
 * fleet's EDS): entries are validated one by one, and a malformed entry (Port not a number, no
 * ID, a Meta value that is not a string) is skipped and reported; a weight above Envoy's uint32
 * range is clamped, and when a cluster's weights add up past it they are scaled down together
 * (ratios kept), each reported. Only an answer that is not a JSON array at all, or one Consul
 * flagged as filtered by ACLs (X-Consul-Results-Filtered-By-ACLs: the token may not see every
 * instance, so "fewer instances" would be a lie), fails as a whole: the last endpoints stay.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { EndpointHealth, EndpointInfo } from '../config/endpoints.js';
import { UINT32_MAX } from '../config/schema.js';
import { ConsulError } from '../errors.js';
import { TOKEN_SETTING, type ConsulResponse } from './client.js';
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

/** One health answer: the usable instances, and the entries skipped as malformed (each with the reason). */
export interface HealthAnswer {
  readonly instances: readonly HealthInstance[];
  readonly invalid: readonly string[];
}

const meta = z.record(z.string(), z.string()).nullish();
const entrySchema = z.object({
  Node: z.object({ Node: z.string(), Address: z.string(), Meta: meta }),
  Service: z.object({
    ID: z.string(),
    Address: z.string().nullish(),
    Port: z.number().int(),
    Meta: meta,
    // Any number: out-of-range weights are clamped per instance in toEndpoints, not refused.
    Weights: z.object({ Passing: z.number(), Warning: z.number() }).nullish(),
  }),
  Checks: z.array(z.object({ CheckID: z.string(), Status: z.string() })).nullish(),
});

/** Best-effort `node/id` of an entry that failed validation, for the report. */
function rawOrigin(entry: unknown): string {
  const field = (o: unknown, k: string): string => {
    const v = o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined;
    return typeof v === 'string' ? v : '?';
  };
  const e = entry !== null && typeof entry === 'object' ? (entry as Record<string, unknown>) : {};
  return `${field(e.Node, 'Node')}/${field(e.Service, 'ID')}`;
}

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

/**
 * A /v1/health/service/<service> response -> HealthAnswer. Throws a ConsulError naming the service
 * when Consul says it filtered the answer by ACLs (the hint names the permission to grant).
 */
export function decodeHealthAnswer(res: ConsulResponse, service: string, mapping: ConsulHealthMapping = {}): HealthAnswer {
  if (res.aclFiltered) {
    throw new ConsulError(
      `consul health ${service}: Consul left instances out of the answer (X-Consul-Results-Filtered-By-ACLs): the ACL token ` +
        `(${TOKEN_SETTING}) needs service:read on '${service}' and node:read on its nodes; the last endpoints keep serving`,
    );
  }
  return parseHealthEntries(res.body, service, mapping);
}

/**
 * Parses the health answer for `service`, entry by entry: a malformed entry is left out and
 * reported in `invalid`. Throws a ConsulError naming the service only when the answer is not a
 * JSON array.
 */
export function parseHealthEntries(body: string, service: string, mapping: ConsulHealthMapping = {}): HealthAnswer {
  const m = resolveHealthMapping(mapping);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new ConsulError(`consul health ${service}: answer is not JSON`);
  }
  if (!Array.isArray(json)) throw new ConsulError(`consul health ${service}: unexpected answer: expected a JSON array of entries`);
  const entries: Array<z.infer<typeof entrySchema>> = [];
  const invalid: string[] = [];
  json.forEach((raw: unknown, i) => {
    const parsed = entrySchema.safeParse(raw);
    if (parsed.success) {
      entries.push(parsed.data);
      return;
    }
    const issue = parsed.error.issues[0];
    invalid.push(`consul health ${service}: entry ${i} (instance ${rawOrigin(raw)}): ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}; skipped`);
  });
  const instances = entries
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
  return Object.freeze({ instances: Object.freeze(instances), invalid: Object.freeze(invalid) });
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
  /**
   * Instances left out (hostname address, no port, duplicate address) or adjusted (weight
   * clamped or scaled to Envoy's uint32 range), each with the reason.
   */
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
    if (raw !== undefined && raw > UINT32_MAX) skipped.push(`${where}: weight ${raw} is above Envoy's maximum ${UINT32_MAX}; clamped to it (kept)`);
    endpoints.push(
      Object.freeze({
        address: inst.address,
        port,
        ...(inst.region !== undefined && { region: inst.region }),
        ...(inst.zone !== undefined && { zone: inst.zone }),
        health: endpointHealth(inst.status, opts.warningAs),
        ...(raw !== undefined && { weight: Math.min(UINT32_MAX, Math.max(1, Math.round(raw))) }),
        origin,
      }),
    );
  }
  endpoints.sort((a, b) => compare(a.address, b.address) || a.port - b.port);
  const fitted = fitWeights(endpoints);
  if (fitted !== endpoints)
    skipped.push(`consul health ${service}: instance weights add up to more than ${UINT32_MAX}; all scaled down by the same factor (kept)`);
  return Object.freeze({ endpoints: Object.freeze(fitted), skipped: Object.freeze(skipped) });
}

/**
 * Envoy refuses a ClusterLoadAssignment whose weights add up past uint32 (per locality and
 * overall). When they would, every weight is scaled by one factor (ratios kept, each at least 1)
 * so the total fits; otherwise the same array is returned.
 */
export function fitWeights(endpoints: readonly EndpointInfo[]): readonly EndpointInfo[] {
  const total = endpoints.reduce((sum, ep) => sum + (ep.weight ?? 1), 0);
  if (total <= UINT32_MAX) return endpoints;
  // Room for the "at least 1" round-ups, so the scaled total cannot pass the maximum.
  const factor = (UINT32_MAX - endpoints.length) / total;
  return endpoints.map((ep) => Object.freeze({ ...ep, weight: Math.max(1, Math.floor((ep.weight ?? 1) * factor)) }));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
