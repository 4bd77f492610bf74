/**
 * An immutable, versioned snapshot of everything one node group is served.
 *
 * In: an XdsResourceSet (plain protobufjs `fromObject`-shaped objects from translate).
 * Out: a frozen Snapshot in which every resource is encoded exactly once as google.protobuf.Any
 * bytes (shared by every stream that sends it), with content-hash versions per resource and per
 * type, or a SnapshotError naming the resource and field that is wrong.
 *
 * Versions are sha256 content hashes (16 hex chars), never counters: two replicas given the same
 * input hand out identical versions, and a type whose resources did not change keeps its version,
 * so the server pushes nothing for it. A type's version hashes its sorted (name, version) pairs,
 * so the order translate emits resources in does not matter either.
 *
 * Before a snapshot exists it must be consistent (go-control-plane's Snapshot.Consistent, with
 * the missing references named): every cluster a route (cluster, weighted_clusters,
 * request_mirror_policies) or tcp_proxy names is in CDS, every EDS cluster has its
 * ClusterLoadAssignment, every RDS name a listener uses is in RDS.
 */
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { envoyRoot, messageType, TO_OBJECT } from '../envoy/protos.js';
import { RESOURCE_TYPES, resourceType, TYPE_ORDER, TYPE_SHORT, TypeUrl, type TypeShort, type XdsTypeUrl } from '../xds/resource-types.js';
import type { ProtoObject, XdsResourceSet } from '../xds/resources.js';
import { SnapshotError } from '../errors.js';
import { FrozenMap } from './frozen-map.js';

export type { TypeShort };

export interface SnapshotResource {
  readonly name: string;
  /** Content hash of `bytes`. */
  readonly version: string;
  /** The encoded google.protobuf.Any (type_url + value): one element of DiscoveryResponse.resources. */
  readonly bytes: Uint8Array;
  /** What the client receives, as plain JSON (nested Any shown with '@type'); deep-frozen. */
  readonly object: ProtoObject;
  /**
   * Names of next-stage resources that must follow whenever this one is (re)sent so the client
   * finishes warming: a Cluster's ClusterLoadAssignment, a Listener's RouteConfigurations.
   */
  readonly warms: readonly string[];
  /** Position within its type (resources are sorted by name). */
  readonly index: number;
}

export interface TypeSnapshot {
  readonly typeUrl: XdsTypeUrl;
  readonly version: string;
  readonly resources: ReadonlyMap<string, SnapshotResource>;
  /** The same resources, sorted by name. */
  readonly list: readonly SnapshotResource[];
}

export interface SnapshotJson {
  readonly version: string;
  readonly types: Readonly<
    Record<
      TypeShort,
      {
        readonly type_url: XdsTypeUrl;
        readonly version: string;
        readonly resources: ReadonlyArray<{ readonly name: string; readonly version: string; readonly resource: ProtoObject }>;
      }
    >
  >;
}

export interface Snapshot {
  /** The version of one type, or (no argument) of the whole snapshot. */
  version(typeUrl?: XdsTypeUrl): string;
  /** Versions per type, keyed CDS/EDS/LDS/RDS (for logs and status). */
  versions(): Readonly<Record<TypeShort, string>>;
  /** Resource names of a type, sorted. */
  names(typeUrl: XdsTypeUrl): readonly string[];
  type(typeUrl: XdsTypeUrl): TypeSnapshot;
  /** For /config_dump and `validate --dump`. */
  toJSON(): SnapshotJson;
}

/** Build, encode, version and check a snapshot. Throws SnapshotError. */
export function buildSnapshot(set: XdsResourceSet): Snapshot {
  const encoded = new Map<XdsTypeUrl, EncodedResource[]>();
  for (const t of RESOURCE_TYPES) encoded.set(t.typeUrl, encodeType(t.typeUrl, set[t.setKey]));
  const warms = checkConsistency(encoded);
  const types = {} as Record<XdsTypeUrl, TypeSnapshot>;
  for (const typeUrl of TYPE_ORDER) types[typeUrl] = freezeType(typeUrl, encoded.get(typeUrl) ?? [], warms);
  return new FrozenSnapshot(types);
}

interface EncodedResource {
  readonly name: string;
  readonly version: string;
  readonly bytes: Uint8Array;
  readonly object: ProtoObject;
}

function encodeType(typeUrl: XdsTypeUrl, inputs: readonly ProtoObject[]): EncodedResource[] {
  const type = messageType(resourceType(typeUrl).messageName);
  const out: EncodedResource[] = [];
  const seen = new Set<string>();
  inputs.forEach((input, i) => {
    const resource = encodeResource(typeUrl, type, input, i);
    if (seen.has(resource.name)) throw new SnapshotError(`${resourceType(typeUrl).kind} '${resource.name}' is defined twice`);
    seen.add(resource.name);
    out.push(resource);
  });
  return out.sort(byName);
}

/** Like TO_OBJECT, without the empty arrays of every unset repeated field (config_dump stays readable). */
const DUMP_OPTIONS: protobuf.IConversionOptions = { ...TO_OBJECT, arrays: false };

let anyType: protobuf.Type | undefined;

function encodeResource(typeUrl: XdsTypeUrl, type: protobuf.Type, input: ProtoObject, index: number): EncodedResource {
  const { nameField, kind } = resourceType(typeUrl);
  const name = input[nameField];
  if (typeof name !== 'string' || name === '') {
    throw new SnapshotError(`${kind} #${index}: '${nameField}' must be a non-empty string`);
  }
  const label = `${kind} '${name}'`;
  const declared = input['@type'];
  if (declared !== undefined && declared !== typeUrl) {
    throw new SnapshotError(`${label}: '@type' is ${String(declared)} but it is served as ${typeUrl}`);
  }
  let message: protobuf.Message;
  try {
    message = type.fromObject(input);
  } catch (err) {
    throw new SnapshotError(`${label}: cannot be encoded as ${type.fullName.slice(1)}: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  checkAnys(type, message, input, '', problems);
  if (problems.length > 0) throw new SnapshotError(`${label}: ${problems.join('; ')}`);

  anyType ??= messageType('google.protobuf.Any');
  const value = type.encode(message).finish();
  const bytes = anyType.encode(anyType.create({ type_url: typeUrl, value })).finish();
  const packed = anyType.decode(bytes) as unknown as { type_url?: string };
  if (packed.type_url !== typeUrl) throw new SnapshotError(`${label}: packed type_url is ${String(packed.type_url)}, expected ${typeUrl}`);
  const object = deepFreeze(type.toObject(message, DUMP_OPTIONS)) as ProtoObject;
  if (object[nameField] !== name) throw new SnapshotError(`${label}: '${nameField}' did not survive encoding`);
  return { name, version: hash(bytes), bytes, object };
}

const ANY_FULL_NAME = '.google.protobuf.Any';

/**
 * protobufjs turns `{'@type': <unknown or unloaded type>, ...}` into an empty Any without a word;
 * Envoy would then NACK (or worse, accept a filter with no config). Walk the message and every
 * nested Any, and report each empty or unresolvable one with its field path.
 */
function checkAnys(type: protobuf.Type, message: protobuf.Message, input: unknown, path: string, problems: string[]): void {
  const fields = message as unknown as Record<string, unknown>;
  const inputs = isObject(input) ? input : undefined;
  for (const field of type.fieldsArray) {
    const fieldType = field.resolvedType;
    if (!(fieldType instanceof protobuf.Type)) continue;
    const value = fields[field.name];
    if (value === undefined || value === null) continue;
    const at = path ? `${path}.${field.name}` : field.name;
    const given = inputs?.[field.name];
    if (field.map && isObject(value)) {
      for (const [key, v] of Object.entries(value)) checkValue(fieldType, v, isObject(given) ? given[key] : undefined, `${at}["${key}"]`, problems);
    } else if (field.repeated && Array.isArray(value)) {
      value.forEach((v: unknown, i) => {
        checkValue(fieldType, v, Array.isArray(given) ? given[i] : undefined, `${at}[${i}]`, problems);
      });
    } else {
      checkValue(fieldType, value, given, at, problems);
    }
  }
}

function checkValue(type: protobuf.Type, value: unknown, input: unknown, path: string, problems: string[]): void {
  if (type.fullName !== ANY_FULL_NAME) {
    checkAnys(type, value as protobuf.Message, input, path, problems);
    return;
  }
  const any = value as { type_url?: string; value?: Uint8Array };
  const url = any.type_url ?? '';
  if (url === '') {
    const declared = isObject(input) ? input['@type'] : undefined;
    problems.push(
      typeof declared === 'string'
        ? `${path}: '@type' ${declared} is not a loaded message type (misspelled, or its proto is missing from src/envoy/protos.ts); it would be sent as an empty Any`
        : `${path}: empty google.protobuf.Any (no '@type')`,
    );
    return;
  }
  let inner: protobuf.Type;
  try {
    inner = envoyRoot().lookupType(url.slice(url.lastIndexOf('/') + 1));
  } catch {
    problems.push(`${path}: Any of unknown type ${url}`);
    return;
  }
  // A packed Any's fields sit beside '@type' in the input object, so the same input object goes down.
  checkAnys(inner, inner.decode(any.value ?? new Uint8Array(0)), input, path, problems);
}

/** Consistency check; returns the warming links (resource name -> next-stage names) per type. */
function checkConsistency(encoded: ReadonlyMap<XdsTypeUrl, EncodedResource[]>): Map<XdsTypeUrl, Map<string, string[]>> {
  const namesOf = (t: XdsTypeUrl) => new Set((encoded.get(t) ?? []).map((r) => r.name));
  const clusters = namesOf(TypeUrl.Cluster);
  const assignments = namesOf(TypeUrl.ClusterLoadAssignment);
  const routeConfigs = namesOf(TypeUrl.RouteConfiguration);
  const problems: string[] = [];
  const warms = new Map<XdsTypeUrl, Map<string, string[]>>([
    [TypeUrl.Cluster, new Map()],
    [TypeUrl.Listener, new Map()],
  ]);

  const needCluster = (owner: string, refs: Ref[]) => {
    for (const ref of refs) {
      if (!clusters.has(ref.name)) problems.push(`${owner} ${ref.path} references cluster '${ref.name}', which is not in CDS`);
    }
  };

  for (const c of encoded.get(TypeUrl.Cluster) ?? []) {
    if (c.object.type !== 'EDS') continue;
    const eds = asObject(c.object.eds_cluster_config);
    const serviceName = typeof eds?.service_name === 'string' && eds.service_name !== '' ? eds.service_name : c.name;
    if (!assignments.has(serviceName)) problems.push(`cluster '${c.name}' (type EDS) needs cluster load assignment '${serviceName}', which is not in EDS`);
    warms.get(TypeUrl.Cluster)?.set(c.name, [serviceName]);
  }
  for (const l of encoded.get(TypeUrl.Listener) ?? []) {
    const refs = listenerRefs(l.object);
    needCluster(`listener '${l.name}'`, refs.clusters);
    const rds: string[] = [];
    for (const ref of refs.routeConfigs) {
      if (!routeConfigs.has(ref.name)) problems.push(`listener '${l.name}' ${ref.path} references route configuration '${ref.name}', which is not in RDS`);
      if (!rds.includes(ref.name)) rds.push(ref.name);
    }
    warms.get(TypeUrl.Listener)?.set(l.name, rds);
  }
  for (const r of encoded.get(TypeUrl.RouteConfiguration) ?? []) {
    const refs: Ref[] = [];
    routeConfigClusterRefs(r.object, '', refs);
    needCluster(`route configuration '${r.name}'`, refs);
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 20).join('; ');
    throw new SnapshotError(`snapshot is inconsistent: ${shown}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`);
  }
  return warms;
}

interface Ref {
  readonly path: string;
  readonly name: string;
}

const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY_TYPE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

function listenerRefs(listener: ProtoObject): { clusters: Ref[]; routeConfigs: Ref[] } {
  const clusters: Ref[] = [];
  const routeConfigs: Ref[] = [];
  const chains: Array<[unknown, string]> = asArray(listener.filter_chains).map((c, i) => [c, `filter_chains[${i}]`]);
  if (listener.default_filter_chain !== undefined) chains.push([listener.default_filter_chain, 'default_filter_chain']);
  const onConfig = (config: ProtoObject | undefined, path: string) => {
    const kind = typeof config?.['@type'] === 'string' ? config['@type'].slice(config['@type'].lastIndexOf('/') + 1) : '';
    if (!config) return;
    if (kind === HCM_TYPE) {
      const rds = asObject(config.rds);
      if (typeof rds?.route_config_name === 'string') routeConfigs.push({ path: `${path}.rds.route_config_name`, name: rds.route_config_name });
      const inline = asObject(config.route_config);
      if (inline) routeConfigClusterRefs(inline, `${path}.route_config.`, clusters);
    } else if (kind === TCP_PROXY_TYPE) {
      if (typeof config.cluster === 'string') clusters.push({ path: `${path}.cluster`, name: config.cluster });
      weightedClusterRefs(config.weighted_clusters, `${path}.weighted_clusters`, clusters);
    }
  };
  for (const [chain, chainPath] of chains) {
    asArray(asObject(chain)?.filters).forEach((f, i) => {
      onConfig(asObject(asObject(f)?.typed_config), `${chainPath}.filters[${i}].typed_config`);
    });
  }
  onConfig(asObject(asObject(listener.api_listener)?.api_listener), 'api_listener.api_listener');
  return { clusters, routeConfigs };
}

function routeConfigClusterRefs(routeConfig: ProtoObject, prefix: string, out: Ref[]): void {
  asArray(routeConfig.virtual_hosts).forEach((vhValue, i) => {
    const vh = asObject(vhValue);
    const vhPath = `${prefix}virtual_hosts[${i}]`;
    mirrorRefs(vh?.request_mirror_policies, `${vhPath}.request_mirror_policies`, out);
    asArray(vh?.routes).forEach((routeValue, j) => {
      const action = asObject(asObject(routeValue)?.route);
      if (!action) return;
      const at = `${vhPath}.routes[${j}].route`;
      if (typeof action.cluster === 'string') out.push({ path: `${at}.cluster`, name: action.cluster });
      weightedClusterRefs(action.weighted_clusters, `${at}.weighted_clusters`, out);
      mirrorRefs(action.request_mirror_policies, `${at}.request_mirror_policies`, out);
    });
  });
}

function weightedClusterRefs(value: unknown, path: string, out: Ref[]): void {
  asArray(asObject(value)?.clusters).forEach((wc, k) => {
    const name = asObject(wc)?.name;
    if (typeof name === 'string') out.push({ path: `${path}.clusters[${k}].name`, name });
  });
}

function mirrorRefs(value: unknown, path: string, out: Ref[]): void {
  asArray(value).forEach((p, k) => {
    const cluster = asObject(p)?.cluster;
    if (typeof cluster === 'string') out.push({ path: `${path}[${k}].cluster`, name: cluster });
  });
}

function freezeType(typeUrl: XdsTypeUrl, encoded: readonly EncodedResource[], warms: ReadonlyMap<XdsTypeUrl, ReadonlyMap<string, string[]>>): TypeSnapshot {
  const links = warms.get(typeUrl);
  return typeSnapshot(
    typeUrl,
    encoded.map((r) => ({ ...r, warms: Object.freeze([...(links?.get(r.name) ?? [])]) })),
  );
}

/** A type snapshot of these resources (sorted by name), indexed and versioned. */
function typeSnapshot(typeUrl: XdsTypeUrl, sorted: ReadonlyArray<Omit<SnapshotResource, 'index'>>): TypeSnapshot {
  const list = sorted.map(
    (r, index): SnapshotResource =>
      Object.freeze({
        name: r.name,
        version: r.version,
        bytes: r.bytes,
        object: r.object,
        warms: r.warms,
        index,
      }),
  );
  return Object.freeze({
    typeUrl,
    version: hash(list.map((r) => `${r.name}\u0000${r.version}\n`).join('')),
    resources: new FrozenMap(list.map((r) => [r.name, r] as const)),
    list: Object.freeze(list),
  });
}

/**
 * `next` with resources of `from` added back: for each type, the named resources of `from` that
 * `next` lacks, and the types in `whole` taken from `from` as they are. Make before break serves
 * such mixes for a while (see make-before-break.ts): removed Clusters, their
 * ClusterLoadAssignments and RouteConfigurations held, or new Clusters sent before the routes
 * that name them. Nothing is encoded again: resources keep their bytes and versions, and a type
 * with nothing added is `next`'s (or `from`'s) own object. The result is consistent when both
 * inputs are and what is taken from `from` is closed under references (a held Cluster's
 * assignment, the Clusters of `from`'s routes).
 */
export function withResourcesOf(
  next: Snapshot,
  from: Snapshot,
  names: ReadonlyMap<XdsTypeUrl, readonly string[]>,
  whole: readonly XdsTypeUrl[] = [],
): Snapshot {
  const types = {} as Record<XdsTypeUrl, TypeSnapshot>;
  for (const t of TYPE_ORDER) {
    if (whole.includes(t)) {
      types[t] = from.type(t);
      continue;
    }
    const own = next.type(t);
    const extra = (names.get(t) ?? []).flatMap((n) => {
      const r = from.type(t).resources.get(n);
      return r !== undefined && !own.resources.has(n) ? [r] : [];
    });
    types[t] = extra.length === 0 ? own : typeSnapshot(t, [...own.list, ...extra].sort(byName));
  }
  return new FrozenSnapshot(types);
}

/**
 * `s` with its RouteConfigurations replaced by `routes` (encoded anew, the rest kept as it is):
 * the routes of make before break's 'route' stage, which name new Clusters before any call can
 * be sent to them. The caller keeps it consistent (every cluster named is in `s`'s CDS).
 */
export function withRouteConfigurations(s: Snapshot, routes: readonly ProtoObject[]): Snapshot {
  const types = {} as Record<XdsTypeUrl, TypeSnapshot>;
  for (const t of TYPE_ORDER) types[t] = s.type(t);
  types[TypeUrl.RouteConfiguration] = freezeType(TypeUrl.RouteConfiguration, encodeType(TypeUrl.RouteConfiguration, routes), new Map());
  return new FrozenSnapshot(types);
}

class FrozenSnapshot implements Snapshot {
  readonly #types: Readonly<Record<XdsTypeUrl, TypeSnapshot>>;
  readonly #version: string;
  readonly #names: ReadonlyMap<XdsTypeUrl, readonly string[]>;

  constructor(types: Record<XdsTypeUrl, TypeSnapshot>) {
    this.#types = Object.freeze(types);
    this.#version = hash(TYPE_ORDER.map((t) => types[t].version).join('\n'));
    this.#names = new FrozenMap(TYPE_ORDER.map((t) => [t, Object.freeze(types[t].list.map((r) => r.name))] as const));
    Object.freeze(this);
  }

  version(typeUrl?: XdsTypeUrl): string {
    return typeUrl === undefined ? this.#version : this.#types[typeUrl].version;
  }

  versions(): Readonly<Record<TypeShort, string>> {
    const out = {} as Record<TypeShort, string>;
    for (const t of TYPE_ORDER) out[TYPE_SHORT[t]] = this.#types[t].version;
    return Object.freeze(out);
  }

  names(typeUrl: XdsTypeUrl): readonly string[] {
    return this.#names.get(typeUrl) ?? [];
  }

  type(typeUrl: XdsTypeUrl): TypeSnapshot {
    return this.#types[typeUrl];
  }

  toJSON(): SnapshotJson {
    const types = {} as Record<TypeShort, SnapshotJson['types'][TypeShort]>;
    for (const t of TYPE_ORDER) {
      const ts = this.#types[t];
      types[TYPE_SHORT[t]] = { type_url: t, version: ts.version, resources: ts.list.map((r) => ({ name: r.name, version: r.version, resource: r.object })) };
    }
    return { version: this.#version, types };
  }
}

function byName(a: { readonly name: string }, b: { readonly name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function hash(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function asObject(value: unknown): ProtoObject | undefined {
  return isObject(value) ? value : undefined;
}

function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}
