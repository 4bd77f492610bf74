/**
 * Who the proxy is and where it gets its config. In: command-line facts (--xds, --node-id,
 * --node-cluster, --locality, --admin-port) or an Envoy-style bootstrap file (YAML or JSON:
 * node, admin.address, dynamic_resources.ads_config naming a static cluster with the control
 * plane's address, and its transport_socket for TLS to it). Out: a frozen Bootstrap, validated
 * with zod; errors name the flag or the bootstrap path that is wrong. A TLS setting the proxy
 * cannot honour (SDS, another transport socket, google_grpc credentials) stops the start: it is
 * never dropped for plaintext.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, ConsulXdsError } from '../../errors.js';
import { FieldReader, ResourceError } from './field-reader.js';
import { readUpstreamTransportSocket, type UpstreamTlsModel } from './tls-context.js';

export interface NodeModel {
  readonly id: string;
  readonly cluster: string;
  readonly locality: { readonly region: string; readonly zone: string; readonly subZone: string };
  /** core.v3.Node in protobufjs fromObject shape, sent on the first request of every stream. */
  readonly proto: Record<string, unknown>;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** `dynamic_resources.ads_config.api_type`: State of the World, or incremental (delta) xDS. */
export type AdsApiType = 'GRPC' | 'DELTA_GRPC';

export interface Bootstrap {
  readonly xds: Endpoint;
  /** How to speak to the control plane (undefined: GRPC, State of the World). */
  readonly apiType?: AdsApiType;
  /** TLS to the control plane (the xDS cluster's transport_socket); undefined: plaintext. */
  readonly xdsTls?: UpstreamTlsModel | undefined;
  readonly node: NodeModel;
  /** undefined: no admin server. */
  readonly admin: Endpoint | undefined;
}

export const USER_AGENT = 'consul-xds-proxy';
export const VERSION = '0.1.0';

export function nodeModel(
  id: string,
  cluster: string,
  locality: { region?: string; zone?: string; subZone?: string } = {},
  metadata?: Record<string, unknown>,
): NodeModel {
  const loc = { region: locality.region ?? '', zone: locality.zone ?? '', subZone: locality.subZone ?? '' };
  const protoLocality: Record<string, string> = {};
  if (loc.region) protoLocality.region = loc.region;
  if (loc.zone) protoLocality.zone = loc.zone;
  if (loc.subZone) protoLocality.sub_zone = loc.subZone;
  const proto: Record<string, unknown> = {
    id,
    cluster,
    locality: protoLocality,
    user_agent_name: USER_AGENT,
    user_agent_version: VERSION,
  };
  if (metadata) proto.metadata = toStruct(metadata);
  return Object.freeze({ id, cluster, locality: Object.freeze(loc), proto: Object.freeze(proto) });
}

/** Plain JSON -> google.protobuf.Struct in fromObject shape (protobufjs' bundled struct.proto is camelCase). */
function toStruct(obj: Record<string, unknown>): Record<string, unknown> {
  const value = (v: unknown): Record<string, unknown> => {
    if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: toStruct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, value(v)])) };
}

/** "HOST:PORT" (IPv6 as [::1]:9000). */
export function parseHostPort(flag: string, text: string): Endpoint {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConsulXdsError('CXDS_USAGE', `--${flag}: expected HOST:PORT, got '${text}'`);
  }
  return { host, port };
}

/** "region/zone" or "region/zone/sub_zone". */
export function parseLocality(text: string): { region: string; zone: string; subZone: string } {
  const parts = text.split('/');
  if (parts.length < 1 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new ConsulXdsError('CXDS_USAGE', `--locality: expected region/zone[/sub_zone], got '${text}'`);
  }
  return { region: parts[0] ?? '', zone: parts[1] ?? '', subZone: parts[2] ?? '' };
}

const socketAddress = z.looseObject({
  socket_address: z.looseObject({
    address: z.string().min(1),
    port_value: z.coerce.number().int().min(0).max(65535),
  }),
});

const bootstrapSchema = z.looseObject({
  node: z.looseObject({
    id: z.string().min(1),
    cluster: z.string().min(1),
    locality: z.looseObject({ region: z.string().optional(), zone: z.string().optional(), sub_zone: z.string().optional() }).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  }),
  admin: z.looseObject({ address: socketAddress }).optional(),
  dynamic_resources: z.looseObject({
    ads_config: z.looseObject({
      api_type: z.enum(['GRPC', 'DELTA_GRPC']).default('GRPC'),
      grpc_services: z
        .array(
          z.looseObject({
            envoy_grpc: z.looseObject({ cluster_name: z.string().min(1) }).optional(),
            google_grpc: z
              .looseObject({
                target_uri: z.string().min(1),
                channel_credentials: z.unknown().refine((v) => v === undefined, {
                  message: 'google_grpc credentials are not implemented; use envoy_grpc and a transport_socket on its cluster',
                }),
              })
              .optional(),
          }),
        )
        .min(1),
    }),
  }),
  static_resources: z
    .looseObject({
      clusters: z
        .array(
          z.looseObject({
            name: z.string().min(1),
            load_assignment: z.looseObject({
              endpoints: z
                .array(z.looseObject({ lb_endpoints: z.array(z.looseObject({ endpoint: z.looseObject({ address: socketAddress }) })).min(1) }))
                .min(1),
            }),
          }),
        )
        .default([]),
      listeners: z.array(z.unknown()).max(0, { message: 'static listeners are not supported; serve them over LDS' }).optional(),
    })
    .optional(),
});

/** Reads an Envoy-style bootstrap file. */
export function readBootstrapFile(file: string): Bootstrap {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: (err as Error).message }]);
  }
  const parsed = bootstrapSchema.safeParse(doc);
  if (!parsed.success) {
    throw new ConfigError(
      file,
      parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    );
  }
  const b = parsed.data;
  const svc = b.dynamic_resources.ads_config.grpc_services[0];
  let xds: Endpoint;
  let xdsTls: UpstreamTlsModel | undefined;
  if (svc?.google_grpc) {
    xds = parseHostPort('bootstrap dynamic_resources.ads_config.grpc_services[0].google_grpc.target_uri', svc.google_grpc.target_uri);
  } else {
    const name = svc?.envoy_grpc?.cluster_name;
    const clusters = b.static_resources?.clusters ?? [];
    const index = clusters.findIndex((c) => c.name === name);
    const cluster = clusters[index];
    const sa = cluster?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address;
    if (!sa) {
      throw new ConfigError(file, [
        {
          path: 'dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name',
          message: `no static cluster '${name ?? ''}' with an endpoint address`,
        },
      ]);
    }
    xds = { host: sa.address, port: sa.port_value };
    xdsTls = readXdsTls(file, cluster, `static_resources.clusters[${index}]`);
  }
  const loc = b.node.locality;
  const adminSa = b.admin?.address.socket_address;
  if (adminSa && isIP(adminSa.address) === 0) {
    throw new ConfigError(file, [{ path: 'admin.address.socket_address.address', message: 'expected an IP address' }]);
  }
  return Object.freeze({
    xds,
    apiType: b.dynamic_resources.ads_config.api_type,
    xdsTls,
    node: nodeModel(b.node.id, b.node.cluster, { region: loc?.region, zone: loc?.zone, subZone: loc?.sub_zone }, b.node.metadata),
    admin: adminSa ? { host: adminSa.address, port: adminSa.port_value } : undefined,
  });
}

/** The xDS cluster's transport_socket (read as the CDS reader reads one), or undefined for plaintext. */
function readXdsTls(file: string, cluster: Record<string, unknown>, path: string): UpstreamTlsModel | undefined {
  if (cluster.transport_socket_matches !== undefined) {
    throw new ConfigError(file, [{ path: `${path}.transport_socket_matches`, message: 'not implemented (set transport_socket)' }]);
  }
  const ts = cluster.transport_socket;
  if (ts === undefined || ts === null) return undefined;
  const where = `${path}.transport_socket`;
  if (typeof ts !== 'object' || Array.isArray(ts)) throw new ConfigError(file, [{ path: where, message: 'expected a TransportSocket' }]);
  const r = new FieldReader(ts as Record<string, unknown>, file, where);
  try {
    const model = readUpstreamTransportSocket(r);
    r.finish();
    return model;
  } catch (err) {
    if (err instanceof ResourceError) throw new ConfigError(file, [{ path: err.field, message: err.reason }]);
    throw err;
  }
}
